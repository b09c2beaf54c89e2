// Package render prints what provision does, for people (Text, in
// Terraform's shape) and for machines (JSON, one object per line). It is
// the only place that writes either format: plans, diagnostics, errors,
// apply progress and summaries. Sensitive values are redacted here, and
// text output escapes control characters so that no value from a host or
// a spec can drive the admin's terminal.
package render

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/openbis/provision/internal/engine"
)

// Renderer is what a command prints through. Both renderers implement
// engine.Output, so apply's progress goes the same way.
type Renderer interface {
	engine.Output
	// Plan prints a plan of one host.
	Plan(p *engine.Plan) error
	// Diagnostics prints spec diagnostics; files give the snippets.
	Diagnostics(files map[string]*hcl.File, diags hcl.Diagnostics)
	// Error reports a failure.
	Error(err error)
	// Applied reports a finished apply.
	Applied(host string, s engine.Summary)
	// Note is a line for people only (hints, waiting messages); JSON drops it.
	Note(msg string)
	// Warning reports a host fact outside a plan: the warnings of a plan
	// that failed are printed with its error.
	Warning(msg string)
}

// Colors is the palette of text output; the zero value prints no colour.
type Colors struct{ Add, Change, Delete, Bold, Faint, Reset string }

// ANSI is the palette for terminals.
var ANSI = Colors{Add: "\x1b[32m", Change: "\x1b[33m", Delete: "\x1b[31m", Bold: "\x1b[1m", Faint: "\x1b[2m", Reset: "\x1b[0m"}

func (c Colors) action(a engine.Action) string {
	switch a {
	case engine.Create:
		return c.Add
	case engine.Delete, engine.Replace:
		return c.Delete
	}
	return c.Change
}

// Redacted stands for a sensitive value wherever one would be printed.
const Redacted = "(sensitive)"

// Public is what may be shown of a change, and all a saved plan keeps of
// it: without the executor's private data, sensitive field values
// replaced by Redacted (an empty value stays empty, so a value that
// appears or goes still reads as one). ch is not modified.
func Public(ch *engine.Change) *engine.Change {
	pub := *ch
	pub.Data = nil
	pub.Fields = nil
	for _, f := range ch.Fields {
		if f.Sensitive {
			if f.Old != "" {
				f.Old = Redacted
			}
			if f.New != "" {
				f.New = Redacted
			}
		}
		pub.Fields = append(pub.Fields, f)
	}
	return &pub
}

// Text renders for people.
type Text struct {
	out, err io.Writer
	c        Colors
	term     *os.File        // out, when it is a terminal docker may draw on
	seen     map[string]bool // transfer messages already printed
	// planned: a plan with changes was printed, and the apply's first
	// line is set off from it by a blank line.
	planned bool
	bar     string // the transfer whose bar the cursor's line shows
}

// NewText prints to out, and diagnostics, errors and notes to errw. With
// color, out gets ANSI colours, and docker's progress bars when it is a
// terminal (the caller decides color from the terminal and NO_COLOR).
func NewText(out, errw io.Writer, color bool) *Text {
	t := &Text{out: out, err: errw, seen: map[string]bool{}}
	if color {
		t.c = ANSI
		if f, ok := out.(*os.File); ok {
			t.term = f
		}
	}
	return t
}

// Plan prints p in Terraform's shape.
func (t *Text) Plan(p *engine.Plan) error {
	w, c := t.out, t.c
	for _, warn := range p.Warnings {
		t.Warning(warn)
	}
	if !p.Pending() {
		for _, ch := range p.Changes {
			t.warnings(ch)
		}
		fmt.Fprintf(w, "%sNo changes.%s Host %s matches the spec.\n", c.Bold, c.Reset, Escape(p.Host))
		return nil
	}
	fmt.Fprintf(w, "provision will perform the following actions on %s%s%s:\n\n", c.Bold, Escape(p.Host), c.Reset)
	for _, ch := range p.Changes {
		if !ch.Pending() {
			t.warnings(ch)
			continue
		}
		addr := Escape(ch.Address)
		fmt.Fprintf(w, "  %s# %s%s %s\n", c.Bold, addr, c.Reset, headline(ch))
		if ch.Action != engine.NoOp {
			fmt.Fprintf(w, "  %s%s%s %s\n", c.action(ch.Action), Escape(string(ch.Action)), c.Reset, addr)
		}
		for _, r := range ch.Reasons {
			fmt.Fprintf(w, "      %s%s%s\n", c.Faint, Escape(r), c.Reset)
		}
		for _, f := range ch.Fields {
			old, new := quote(f.Old), quote(f.New)
			if f.Sensitive {
				old, new = Redacted, Redacted
			}
			switch {
			case f.Old == "":
				fmt.Fprintf(w, "      %s+%s %s = %s\n", c.Add, c.Reset, Escape(f.Name), new)
			case f.New == "":
				fmt.Fprintf(w, "      %s-%s %s = %s\n", c.Delete, c.Reset, Escape(f.Name), old)
			default:
				fmt.Fprintf(w, "      %s~%s %s = %s -> %s\n", c.Change, c.Reset, Escape(f.Name), old, new)
			}
		}
		if ch.Diff != "" {
			t.diff(ch.Diff)
		}
		t.warnings(ch)
		fmt.Fprintln(w)
	}
	t.planned = true
	s := p.Summary()
	fmt.Fprintf(w, "%sPlan:%s %d to create, %d to update, %d to replace, %d to delete, %d to restart.\n",
		c.Bold, c.Reset, s.Create, s.Update, s.Replace, s.Delete, s.Restart)
	return nil
}

func headline(ch *engine.Change) string {
	var s string
	switch ch.Action {
	case engine.Create:
		s = "will be created"
	case engine.Update:
		s = "will be updated in-place"
	case engine.Replace:
		s = "must be replaced"
	case engine.Delete:
		s = "will be deleted"
	default:
		s = "will be restarted"
	}
	if ch.Deferred {
		s = "will be read and converged during apply"
	}
	if len(ch.TriggeredBy) > 0 {
		if ch.Action != engine.NoOp {
			s += " and restarted"
		}
		s += " (" + Escape(strings.Join(ch.TriggeredBy, ", ")) + " changed)"
	}
	return s
}

// quote writes a field value as a Go string literal: control characters
// come out escaped.
func quote(s string) string { return strconv.Quote(s) }

func (t *Text) warnings(ch *engine.Change) {
	for _, warn := range ch.Warnings {
		fmt.Fprintf(t.out, "  %sWarning:%s %s: %s\n", t.c.Change+t.c.Bold, t.c.Reset, Escape(ch.Address), Escape(warn))
	}
}

func (t *Text) diff(diff string) {
	c := t.c
	for _, line := range strings.Split(strings.TrimSuffix(diff, "\n"), "\n") {
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
		fmt.Fprintf(t.out, "      %s%s%s\n", color, escapeKeepTabs(line), c.Reset)
	}
}

// Diagnostics prints diagnostics with their source snippets, as hcl does.
func (t *Text) Diagnostics(files map[string]*hcl.File, diags hcl.Diagnostics) {
	if len(diags) == 0 {
		return
	}
	hcl.NewDiagnosticTextWriter(t.err, files, 100, t.c != (Colors{})).WriteDiagnostics(diags)
}

// Warning prints "Warning: …" and a blank line, as a plan's warnings.
func (t *Text) Warning(msg string) {
	t.endBar()
	fmt.Fprintf(t.out, "%sWarning:%s %s\n\n", t.c.Change+t.c.Bold, t.c.Reset, Escape(msg))
}

// Error prints "Error: …".
func (t *Text) Error(err error) {
	t.endBar()
	fmt.Fprintf(t.err, "%sError:%s %s\n", t.c.Delete+t.c.Bold, t.c.Reset, escapeKeepNewlines(err.Error()))
}

// Applied prints the closing line of an apply.
func (t *Text) Applied(_ string, s engine.Summary) {
	t.endBar()
	fmt.Fprintf(t.out, "\n%sApply complete!%s %d created, %d updated, %d replaced, %d deleted, %d restarted.\n",
		t.c.Add+t.c.Bold, t.c.Reset, s.Create, s.Update, s.Replace, s.Delete, s.Restart)
}

// Note prints a line for people.
func (t *Text) Note(msg string) {
	t.endBar()
	fmt.Fprintln(t.err, escapeKeepNewlines(msg))
}

// Progress prints one step: "addr: msg".
func (t *Text) Progress(addr, msg string) {
	t.endBar()
	if t.planned {
		t.planned = false
		fmt.Fprintln(t.out)
	}
	fmt.Fprintf(t.out, "%s: %s\n", Escape(addr), Escape(msg))
}

// Transfer prints a transfer step once, not every tick: a 5 GB load would
// otherwise print thousands of lines.
func (t *Text) Transfer(addr, msg string, current, total int64) {
	key := addr + "\x00" + msg
	if t.term == nil || total <= 0 {
		if !t.seen[key] {
			t.seen[key] = true
			t.Progress(addr, msg)
		}
		return
	}
	// On a terminal, a bar redrawn in place, as docker draws its own (a
	// host's transfers reach the admin's terminal as these ticks).
	if t.bar != key {
		t.Progress(addr, msg) // sets the bar off from what came before
	}
	const width = 30
	frac := float64(min(max(current, 0), total)) / float64(total)
	n := int(frac * width)
	fmt.Fprintf(t.out, "\r  [%s%s] %3d%% %s/%s", strings.Repeat("=", n), strings.Repeat(" ", width-n), int(frac*100), bytesText(current), bytesText(total))
	t.bar = key
	if current >= total {
		t.endBar()
	}
}

// endBar ends the line a transfer bar is drawn on.
func (t *Text) endBar() {
	if t.bar != "" {
		t.bar = ""
		fmt.Fprintln(t.out)
	}
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

// Terminal implements engine.Output.
func (t *Text) Terminal() (io.Writer, uintptr, bool) {
	if t.term == nil {
		return nil, 0, false
	}
	return t.term, t.term.Fd(), true
}

// Escape makes s safe to print on a terminal: control characters (and the
// C1 range and DEL) are written as Go escapes, so a value read from a host
// cannot move the cursor, clear the screen or set the window title.
func Escape(s string) string { return escape(s, "") }

func escapeKeepTabs(s string) string     { return escape(s, "\t") }
func escapeKeepNewlines(s string) string { return escape(s, "\n\t") }

func escape(s, keep string) string {
	clean := true
	for _, r := range s {
		if isControl(r) && !strings.ContainsRune(keep, r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) && !strings.ContainsRune(keep, r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }
