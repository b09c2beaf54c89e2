package render

import (
	"encoding/json"
	"io"

	"github.com/hashicorp/hcl/v2"

	"github.com/openbis/provision/internal/engine"
)

// Line is one line of --json output. Its Type is one of "change",
// "warning", "summary", "applied", "progress", "diagnostic" and "error";
// a host answering the admin's provision also writes "note" and "saved".
type Line struct {
	Type string `json:"type"`
	// Verb is create, update, replace, delete or restart (type change).
	Verb    string          `json:"verb,omitempty"`
	Change  *engine.Change  `json:"change,omitempty"`
	Summary *engine.Summary `json:"summary,omitempty"`
	Message string          `json:"message,omitempty"`
	Host    string          `json:"host,omitempty"`
	Pending *bool           `json:"pending,omitempty"`
	// Address, Current and Total describe progress; Address also names
	// the resource a warning is about.
	Address string `json:"address,omitempty"`
	Current int64  `json:"current,omitempty"`
	Total   int64  `json:"total,omitempty"`
	// Plan is a host's saved plan (type saved).
	Plan json.RawMessage `json:"plan,omitempty"`
}

// diagnostic is a "diagnostic" line: its summary is the diagnostic's
// title, not a plan summary.
type diagnostic struct {
	Type     string    `json:"type"`
	Severity string    `json:"severity"`
	Summary  string    `json:"summary"`
	Detail   string    `json:"detail"`
	Range    *srcRange `json:"range,omitempty"`
}

type srcRange struct {
	Filename string `json:"filename"`
	Start    srcPos `json:"start"`
	End      srcPos `json:"end"`
}

type srcPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

// JSON renders for machines: one JSON object per line on one writer.
type JSON struct {
	enc  *json.Encoder
	host string
	pct  map[string]int64 // transfer message → last percent sent
	// notes: write notes too, for the admin's provision to show them.
	notes bool
}

// NewJSON writes lines to w.
func NewJSON(w io.Writer) *JSON { return &JSON{enc: json.NewEncoder(w), pct: map[string]int64{}} }

// NewHostJSON writes lines to w for the admin's provision, which renders
// them (Replay): notes included.
func NewHostJSON(w io.Writer) *JSON {
	j := NewJSON(w)
	j.notes = true
	return j
}

// ForHost makes the lines that follow carry host, until a plan names
// another: Replay renders each host's answer so.
func (j *JSON) ForHost(host string) { j.host = host }

// Saved sends a host's saved plan to the admin's provision.
func (j *JSON) Saved(sp *engine.Saved) error {
	b, err := json.Marshal(sp)
	if err != nil {
		return err
	}
	return j.put(Line{Type: "saved", Plan: b})
}

func (j *JSON) put(l Line) error {
	if l.Host == "" {
		l.Host = j.host
	}
	return j.enc.Encode(l)
}

// Plan prints a change per pending resource, then the warnings and a
// summary. Sensitive values are redacted as in text, and executor-private
// data is left out.
func (j *JSON) Plan(p *engine.Plan) error {
	j.host = p.Host
	for _, warn := range p.Warnings {
		if err := j.put(Line{Type: "warning", Message: warn}); err != nil {
			return err
		}
	}
	for _, ch := range p.Changes {
		for _, warn := range ch.Warnings {
			if err := j.put(Line{Type: "warning", Message: ch.Address + ": " + warn, Address: ch.Address}); err != nil {
				return err
			}
		}
		if !ch.Pending() {
			continue
		}
		verb := ch.Action.Verb()
		if ch.Action == engine.NoOp {
			verb = "restart"
		}
		if err := j.put(Line{Type: "change", Verb: verb, Change: Public(ch)}); err != nil {
			return err
		}
	}
	s, pending := p.Summary(), p.Pending()
	return j.put(Line{Type: "summary", Summary: &s, Pending: &pending})
}

// Warning prints {"type":"warning","message":…}, as a plan's warnings are.
func (j *JSON) Warning(msg string) { j.put(Line{Type: "warning", Message: msg}) }

// Diagnostics prints one line per diagnostic, with its range.
func (j *JSON) Diagnostics(_ map[string]*hcl.File, diags hcl.Diagnostics) {
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		l := diagnostic{Type: "diagnostic", Severity: sev, Summary: d.Summary, Detail: d.Detail}
		if r := d.Subject; r != nil {
			l.Range = &srcRange{r.Filename, srcPos{r.Start.Line, r.Start.Column}, srcPos{r.End.Line, r.End.Column}}
		}
		j.enc.Encode(l)
	}
}

// Error prints {"type":"error","message":…}.
func (j *JSON) Error(err error) { j.put(Line{Type: "error", Message: err.Error()}) }

// Applied prints the summary of a finished apply.
func (j *JSON) Applied(host string, s engine.Summary) {
	j.put(Line{Type: "applied", Summary: &s, Host: host})
}

// Note is for people only: dropped, unless the lines go to the admin's
// provision.
func (j *JSON) Note(msg string) {
	if j.notes {
		j.put(Line{Type: "note", Message: msg})
	}
}

// Progress prints {"type":"progress","address":…,"message":…}.
func (j *JSON) Progress(addr, msg string) {
	j.put(Line{Type: "progress", Address: addr, Message: msg})
}

// Transfer prints a progress line per percent, not per chunk.
func (j *JSON) Transfer(addr, msg string, current, total int64) {
	if total > 0 {
		key := addr + "\x00" + msg
		p := current * 100 / total
		if old, ok := j.pct[key]; ok && p == old && current < total {
			return
		}
		j.pct[key] = p
	}
	j.put(Line{Type: "progress", Address: addr, Message: msg, Current: current, Total: total})
}

// Terminal implements engine.Output: JSON never draws bars.
func (j *JSON) Terminal() (io.Writer, uintptr, bool) { return nil, 0, false }
