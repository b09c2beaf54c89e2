package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/openbis/provision/executors"
)

// Colors is the palette of text output; the zero value prints no colour.
type Colors struct{ Add, Change, Delete, Bold, Faint, Reset string }

// ANSI is the palette for terminals.
var ANSI = Colors{Add: "\x1b[32m", Change: "\x1b[33m", Delete: "\x1b[31m", Bold: "\x1b[1m", Faint: "\x1b[2m", Reset: "\x1b[0m"}

func (c Colors) action(a executors.Action) string {
	switch a {
	case executors.Create:
		return c.Add
	case executors.Update:
		return c.Change
	case executors.Delete, executors.Replace:
		return c.Delete
	}
	return c.Change
}

const redacted = "(sensitive)"

// Text renders the plan for people, in Terraform's shape.
func (p *Plan) Text(w io.Writer, c Colors) {
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "%sWarning:%s %s\n\n", c.Change+c.Bold, c.Reset, warn)
	}
	if !p.Pending() {
		for _, ch := range p.Changes {
			printWarnings(w, ch, c)
		}
		fmt.Fprintf(w, "%sNo changes.%s Host %s matches the spec.\n", c.Bold, c.Reset, p.Host)
		return
	}
	fmt.Fprintf(w, "provision will perform the following actions on %s%s%s:\n\n", c.Bold, p.Host, c.Reset)
	for _, ch := range p.Changes {
		if !ch.Pending() {
			printWarnings(w, ch, c)
			continue
		}
		fmt.Fprintf(w, "  %s# %s%s %s\n", c.Bold, ch.Address, c.Reset, headline(ch))
		if ch.Action != executors.NoOp {
			fmt.Fprintf(w, "  %s%s%s %s\n", c.action(ch.Action), ch.Action, c.Reset, ch.Address)
		}
		for _, r := range ch.Reasons {
			fmt.Fprintf(w, "      %s%s%s\n", c.Faint, r, c.Reset)
		}
		for _, f := range ch.Fields {
			old, new := quoteField(f.Old), quoteField(f.New)
			if f.Sensitive {
				old, new = redacted, redacted
			}
			switch {
			case f.Old == "" && !f.Sensitive:
				fmt.Fprintf(w, "      %s+%s %s = %s\n", c.Add, c.Reset, f.Name, new)
			case f.New == "" && !f.Sensitive:
				fmt.Fprintf(w, "      %s-%s %s = %s\n", c.Delete, c.Reset, f.Name, old)
			default:
				fmt.Fprintf(w, "      %s~%s %s = %s -> %s\n", c.Change, c.Reset, f.Name, old, new)
			}
		}
		if ch.Diff != "" {
			printDiff(w, ch.Diff, c)
		}
		printWarnings(w, ch, c)
		fmt.Fprintln(w)
	}
	s := p.Summary()
	fmt.Fprintf(w, "%sPlan:%s %d to create, %d to update, %d to replace, %d to delete, %d to restart.\n",
		c.Bold, c.Reset, s.Create, s.Update, s.Replace, s.Delete, s.Restart)
}

func headline(ch *executors.Change) string {
	var s string
	switch ch.Action {
	case executors.Create:
		s = "will be created"
	case executors.Update:
		s = "will be updated in-place"
	case executors.Replace:
		s = "must be replaced"
	case executors.Delete:
		s = "will be deleted"
	default:
		s = "will be restarted"
	}
	if ch.Deferred {
		s = "will be read and converged during apply"
	}
	if len(ch.TriggeredBy) > 0 {
		if ch.Action != executors.NoOp {
			s += " and restarted"
		}
		s += " (" + strings.Join(ch.TriggeredBy, ", ") + " changed)"
	}
	return s
}

func quoteField(s string) string { return fmt.Sprintf("%q", s) }

func printWarnings(w io.Writer, ch *executors.Change, c Colors) {
	for _, warn := range ch.Warnings {
		fmt.Fprintf(w, "  %sWarning:%s %s: %s\n", c.Change+c.Bold, c.Reset, ch.Address, warn)
	}
}

func printDiff(w io.Writer, diff string, c Colors) {
	for _, line := range strings.SplitAfter(strings.TrimSuffix(diff, "\n"), "\n") {
		line = strings.TrimSuffix(line, "\n")
		color := ""
		switch {
		case strings.HasPrefix(line, "+++"), strings.HasPrefix(line, "---"):
			color = c.Bold
		case strings.HasPrefix(line, "+"):
			color = c.Add
		case strings.HasPrefix(line, "-"):
			color = c.Delete
		case strings.HasPrefix(line, "@@"):
			color = c.Faint
		}
		fmt.Fprintf(w, "      %s%s%s\n", color, line, c.Reset)
	}
}

// JSONLine is one line of --json output.
type JSONLine struct {
	Type    string            `json:"type"`
	Verb    string            `json:"verb,omitempty"` // create, update, replace, delete, restart
	Change  *executors.Change `json:"change,omitempty"`
	Summary *Summary          `json:"summary,omitempty"`
	Message string            `json:"message,omitempty"`
	Host    string            `json:"host,omitempty"`
	Pending *bool             `json:"pending,omitempty"`
}

// JSON renders the plan for machines: one object per line, a change per
// pending resource, then warnings and a summary. Sensitive values are
// redacted here as in text, and executor-private data is left out.
func (p *Plan) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, warn := range p.Warnings {
		if err := enc.Encode(JSONLine{Type: "warning", Message: warn, Host: p.Host}); err != nil {
			return err
		}
	}
	for _, ch := range p.Changes {
		for _, warn := range ch.Warnings {
			if err := enc.Encode(JSONLine{Type: "warning", Message: ch.Address + ": " + warn, Host: p.Host}); err != nil {
				return err
			}
		}
		if !ch.Pending() {
			continue
		}
		pub := *ch
		pub.Data = nil
		pub.Fields = make([]executors.Field, len(ch.Fields))
		for i, f := range ch.Fields {
			if f.Sensitive {
				f.Old, f.New = redacted, redacted
			}
			pub.Fields[i] = f
		}
		verb := ch.Action.Verb()
		if ch.Action == executors.NoOp {
			verb = "restart"
		}
		if err := enc.Encode(JSONLine{Type: "change", Verb: verb, Change: &pub, Host: p.Host}); err != nil {
			return err
		}
	}
	s, pending := p.Summary(), p.Pending()
	return enc.Encode(JSONLine{Type: "summary", Summary: &s, Host: p.Host, Pending: &pending})
}
