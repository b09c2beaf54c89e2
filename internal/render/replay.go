package render

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/openbis/provision/internal/engine"
)

// Outcome is what a host's JSON lines said.
type Outcome struct {
	// Planned: a plan was printed; Pending: it had changes.
	Planned, Pending bool
	// Failed: the host reported an error.
	Failed bool
	// Saved is the host's plan, when it sent one ("saved" line).
	Saved *engine.Saved
}

// Replay renders the JSON lines a host's provision wrote (render.JSON,
// with notes) on out, as if the plan or apply had run here: the plan is
// rebuilt from its lines and printed whole, progress and notes are passed
// on, and every error names host. A line that is not JSON is reported,
// never printed raw.
func Replay(r io.Reader, host string, out Renderer) (Outcome, error) {
	var o Outcome
	if h, ok := out.(interface{ ForHost(string) }); ok {
		h.ForHost(host)
	}
	lim := &io.LimitedReader{R: r, N: MaxAnswer + 1}
	r = lim
	var p *engine.Plan
	plan := func() *engine.Plan {
		if p == nil {
			p = &engine.Plan{Host: host}
		}
		return p
	}
	// flush prints warnings that came without a plan (those of a plan
	// that failed are printed with its error).
	flush := func() {
		if p != nil {
			for _, w := range p.Warnings {
				out.Warning(w)
			}
			p = nil
		}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var head struct{ Type string }
		var l Line
		var d diagnostic
		err := json.Unmarshal(sc.Bytes(), &head)
		switch {
		case err != nil:
		case head.Type == "diagnostic":
			err = json.Unmarshal(sc.Bytes(), &d)
		default:
			err = json.Unmarshal(sc.Bytes(), &l)
		}
		if err == nil && l.Change != nil {
			err = engine.CheckChange(l.Change)
		}
		if err != nil {
			flush()
			return o, fmt.Errorf("host %s answered with something that is not provision's JSON: %q", host, truncate(sc.Text(), 200))
		}
		switch l.Type {
		case "warning":
			pl := plan()
			if l.Address == "" {
				pl.Warnings = append(pl.Warnings, l.Message)
				break
			}
			// A change's warning: kept with the change, printed where the
			// host's own plan prints it.
			w := strings.TrimPrefix(l.Message, l.Address+": ")
			if n := len(pl.Changes); n > 0 && pl.Changes[n-1].Address == l.Address && !pl.Changes[n-1].Pending() {
				pl.Changes[n-1].Warnings = append(pl.Changes[n-1].Warnings, w)
			} else {
				pl.Changes = append(pl.Changes, &engine.Change{Address: l.Address, Warnings: []string{w}})
			}
		case "change":
			if l.Change == nil {
				break
			}
			pl := plan()
			// Its warnings came as lines just before it.
			if n := len(pl.Changes); n > 0 && pl.Changes[n-1].Address == l.Change.Address && !pl.Changes[n-1].Pending() {
				pl.Changes = pl.Changes[:n-1]
			}
			pl.Changes = append(pl.Changes, l.Change)
		case "summary":
			pl := plan()
			p = nil
			o.Planned = true
			o.Pending = l.Pending != nil && *l.Pending
			if err := out.Plan(pl); err != nil {
				return o, err
			}
		case "progress":
			if l.Total > 0 || l.Current > 0 {
				out.Transfer(l.Address, l.Message, l.Current, l.Total)
			} else {
				out.Progress(l.Address, l.Message)
			}
		case "note":
			out.Note(host + ": " + l.Message)
		case "applied":
			var s engine.Summary
			if l.Summary != nil {
				s = *l.Summary
			}
			out.Applied(host, s)
		case "saved":
			sp, err := engine.ReadSaved(l.Plan)
			if err == nil && sp.Host != host {
				err = fmt.Errorf("it is the plan of %q", sp.Host)
			}
			if err != nil {
				return o, fmt.Errorf("host %s sent a plan that is not its own: %w", host, err)
			}
			o.Saved = sp
		case "error":
			flush()
			o.Failed = true
			out.Error(fmt.Errorf("%s: %s", host, l.Message))
		}
		if d.Type == "diagnostic" {
			// The spec decoded on the admin's machine; a host that finds
			// otherwise says so here.
			msg := fmt.Errorf("%s: %s: %s", host, d.Summary, d.Detail)
			if d.Severity == "warning" {
				out.Warning(msg.Error())
				continue
			}
			flush()
			o.Failed = true
			out.Error(msg)
		}
	}
	flush()
	if lim.N <= 0 {
		return o, fmt.Errorf("host %s: its answer is longer than %d MiB", host, MaxAnswer>>20)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return o, fmt.Errorf("read the answer of host %s: %w", host, err)
	}
	return o, nil
}

// MaxAnswer bounds what Replay reads of one host: a broken or hostile
// host must not fill the admin's memory.
const MaxAnswer = 64 << 20

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
