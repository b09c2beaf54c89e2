package elnprofile

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/openbis/provision/internal/engine"
)

// values are the wanted property values, indexed like propNames.
type values [2]string

// result is a patched (or unpatched) file and what the edit means.
type result struct {
	out      []byte
	reasons  []string
	fields   []engine.Field
	warnings []string
}

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// patch returns src with both properties set to want in init, touching no
// other byte. It refuses (returns an error) rather than write something it
// cannot verify: src must parse, have one init, and the result must parse
// and assign each property exactly once in init, to the wanted value.
func patch(name string, src []byte, want values) (*result, error) {
	p, err := analyze(name, src)
	if err != nil {
		return nil, err
	}
	r := &result{}
	var edits []edit
	reason := func(s string) {
		for _, x := range r.reasons {
			if x == s {
				return
			}
		}
		r.reasons = append(r.reasons, s)
	}

	for i, prop := range propNames {
		if len(p.compound[i]) > 0 {
			return nil, fmt.Errorf("%s: init modifies %s with a compound assignment; set it with a plain assignment or let provision manage it", p.where(p.compound[i][0]), prop)
		}
		for _, o := range p.elsewhere[i] {
			r.warnings = append(r.warnings, fmt.Sprintf("%s is also assigned at %s, outside the code init runs; that assignment may override this one", prop, p.where(o)))
		}
	}

	for _, li := range p.unpaired {
		r.warnings = append(r.warnings, fmt.Sprintf("%s:%d: managed-block BEGIN marker without its END marker; ignored", name, li+1))
	}

	// An active assignment outside the managed block is kept and updated in
	// place; otherwise the property lives in the block. Everything else
	// assigning it in init is a duplicate.
	var homeInBlock [2]bool
	var dups [2][]assignment
	for i, prop := range propNames {
		var outside, inside []assignment
		for _, a := range p.assigns[i] {
			if p.inBlock(p.off(a.expr.Idx0())) {
				inside = append(inside, a)
			} else {
				outside = append(outside, a)
			}
		}
		if len(outside) == 0 {
			homeInBlock[i] = true
			switch {
			case len(inside) == 0 && len(p.commented[i]) > 0:
				reason(prop + " commented out")
			case len(inside) == 0:
				reason(prop + " missing")
			case len(inside) > 1:
				reason(prop + " duplicated")
			}
			if len(inside) > 0 && !(inside[0].literal && inside[0].value == want[i]) {
				reason(prop + " changed")
				r.fields = append(r.fields, engine.Field{Name: prop, Old: inside[0].value, New: want[i]})
			} else if len(inside) == 0 {
				r.fields = append(r.fields, engine.Field{Name: prop, New: want[i]})
			}
			continue
		}
		home := outside[0]
		if !(home.literal && home.value == want[i]) {
			reason(prop + " changed")
			r.fields = append(r.fields, engine.Field{Name: prop, Old: home.value, New: want[i]})
			rhs := home.expr.Right
			edits = append(edits, edit{p.off(rhs.Idx0()), p.off(rhs.Idx1()), jsString(want[i])})
		}
		if home.nested {
			r.warnings = append(r.warnings, fmt.Sprintf("%s is set at %s inside a nested statement; it takes effect only when that code runs", prop, p.where(p.off(home.expr.Idx0()))))
		}
		dups[i] = append(outside[1:len(outside):len(outside)], inside...)
		if len(dups[i]) > 0 {
			reason(prop + " duplicated")
		}
	}

	blockEdit, err := p.blockEdit(homeInBlock, want)
	if err != nil {
		return nil, err
	}
	if blockEdit != nil {
		edits = append(edits, *blockEdit)
		if len(r.reasons) == 0 {
			reason("managed block (jupyter) content differs")
		}
	}
	rewritten := blockEdit != nil && p.block != nil
	var removals []edit
	for i := range propNames {
		for _, a := range dups[i] {
			if rewritten && p.inBlock(p.off(a.expr.Idx0())) {
				continue // the block rewrite drops it
			}
			e, err := p.removal(i, a)
			if err != nil {
				return nil, err
			}
			removals = append(removals, e)
		}
	}
	edits = append(edits, p.wholeLines(removals)...)

	r.out, err = p.apply(edits)
	if err != nil {
		return nil, err
	}
	q := p
	if len(edits) > 0 {
		if q, err = analyze(name, r.out); err != nil {
			return nil, fmt.Errorf("refusing the patch, the result would be broken: %w", err)
		}
	}
	if err := q.check(want); err != nil {
		return nil, err
	}
	return r, nil
}

// blockEdit returns the edit that makes the managed block hold exactly the
// properties homed there (inserting the block if needed), or nil.
func (p *profile) blockEdit(home [2]bool, want values) (*edit, error) {
	if !home[0] && !home[1] {
		return nil, nil
	}
	if b := p.block; b != nil {
		eol := p.eol(b.begin)
		indent := p.stmtIndent()
		var body strings.Builder
		for i := range propNames {
			if home[i] {
				body.WriteString(assignLine(indent, i, want[i], eol))
			}
		}
		start, end := p.lines[b.begin].next, p.lines[b.end].start
		if string(p.src[start:end]) == body.String() {
			return nil, nil
		}
		return &edit{start, end, body.String()}, nil
	}

	at, indent, err := p.anchor()
	if err != nil {
		return nil, err
	}
	eol := p.eol(at)
	var b strings.Builder
	b.WriteString(indent + beginMarker + eol)
	for i := range propNames {
		if home[i] {
			b.WriteString(assignLine(indent, i, want[i], eol))
		}
	}
	b.WriteString(indent + endMarker + eol)
	o := p.lines[at].next
	return &edit{o, o, b.String()}, nil
}

func assignLine(indent string, i int, v, eol string) string {
	return indent + "this." + propNames[i] + " = " + jsString(v) + ";" + eol
}

// eol returns line li's terminator, or "\n" for the last line lacking one.
func (p *profile) eol(li int) string {
	if t := string(p.src[p.lines[li].end:p.lines[li].next]); t != "" {
		return t
	}
	return "\n"
}

// anchor returns the line after which a new block goes — the
// `StandardProfile.prototype.init.call(…);` line, or else the line opening
// init's body — and the indentation of init's statements.
func (p *profile) anchor() (int, string, error) {
	if s := p.superCall(p.init); s != nil {
		end := p.off(s.Idx1())
		if !p.restIsBlank(end, true) {
			return 0, "", fmt.Errorf("%s: code follows StandardProfile.prototype.init.call(…) on its line; put it on a line of its own so the Jupyter settings can go after it", p.where(end))
		}
		return p.lineAt(end), p.stmtIndent(), nil
	}
	if !p.restIsBlank(p.open+1, false) {
		return 0, "", fmt.Errorf("%s: code follows the opening brace of init on its line; put it on a line of its own so the Jupyter settings can go after it", p.where(p.open))
	}
	return p.lineAt(p.open), p.stmtIndent(), nil
}

// stmtIndent is the indentation of init's statements: that of the first
// statement starting a line, else one unit more than the line of `init`.
func (p *profile) stmtIndent() string {
	for _, s := range p.init.Body.List {
		o := p.off(s.Idx0())
		li := p.lineAt(o)
		if ind := p.indentOf(li); p.lines[li].start+len(ind) == o {
			return ind
		}
	}
	return p.indentOf(p.lineAt(p.open)) + p.unit
}

// removal returns the edit deleting a duplicate assignment statement and
// its semicolon.
func (p *profile) removal(i int, a assignment) (edit, error) {
	if a.stmt == nil {
		return edit{}, fmt.Errorf("%s: %s is assigned again inside a larger expression or statement; remove that assignment by hand", p.where(p.off(a.expr.Idx0())), propNames[i])
	}
	start, end := p.off(a.stmt.Idx0()), p.off(a.stmt.Idx1())
	if j := skipBlanks(p.src, end); j < len(p.src) && p.src[j] == ';' {
		end = j + 1
	}
	return edit{start, end, ""}, nil
}

// wholeLines merges deletions separated only by blanks and semicolons, and
// widens each to whole lines when nothing else is left on them, so removing
// duplicates leaves no blank husk of a line behind.
func (p *profile) wholeLines(dels []edit) []edit {
	sort.Slice(dels, func(a, b int) bool { return dels[a].start < dels[b].start })
	var merged []edit
	for _, d := range dels {
		if n := len(merged); n > 0 {
			last := &merged[n-1]
			gap := p.src[min(last.end, d.start):d.start]
			if len(bytes.Trim(gap, " \t;")) == 0 {
				last.end = max(last.end, d.end)
				continue
			}
		}
		merged = append(merged, d)
	}
	for k, d := range merged {
		first, last := p.lineAt(d.start), p.lineAt(d.end)
		if p.lines[first].start+len(p.indentOf(first)) == d.start && p.restIsBlank(d.end, true) {
			merged[k] = edit{start: p.lines[first].start, end: p.lines[last].next}
		}
	}
	return merged
}

func skipBlanks(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

// apply performs non-overlapping edits on p.src.
func (p *profile) apply(edits []edit) ([]byte, error) {
	sort.SliceStable(edits, func(a, b int) bool { return edits[a].start < edits[b].start })
	var out bytes.Buffer
	out.Grow(len(p.src) + 512)
	pos := 0
	for _, e := range edits {
		if e.start < pos {
			return nil, fmt.Errorf("%s: the assignments to change overlap; edit the Jupyter settings by hand", p.where(e.start))
		}
		out.Write(p.src[pos:e.start])
		out.WriteString(e.text)
		pos = e.end
	}
	out.Write(p.src[pos:])
	return out.Bytes(), nil
}

// check verifies a (patched) file the way the ELN will read it: init
// assigns each property exactly once, to the wanted value.
func (p *profile) check(want values) error {
	for i, prop := range propNames {
		as := p.assigns[i]
		switch {
		case len(as) != 1:
			return fmt.Errorf("%s: refusing the patch, init would assign %s %d times instead of once; check the file's Jupyter settings and managed-block markers by hand", p.name, prop, len(as))
		case !as[0].literal || as[0].value != want[i]:
			return fmt.Errorf("%s: refusing the patch, init would set %s to %s; check the file's Jupyter settings and managed-block markers by hand", p.where(p.off(as[0].expr.Idx0())), prop, as[0].value)
		}
	}
	return nil
}

// unpatch removes the managed jupyter block from init, leaving every other
// byte as it is.
func unpatch(name string, src []byte) (*result, error) {
	p, err := analyze(name, src)
	if err != nil {
		return nil, err
	}
	r := &result{out: src}
	b := p.block
	if b == nil {
		return r, nil
	}
	r.reasons = []string{fmt.Sprintf("managed block (jupyter) at %s:%d no longer in the spec", name, b.begin+1)}
	for i, prop := range propNames {
		for _, a := range p.assigns[i] {
			if !p.inBlock(p.off(a.expr.Idx0())) {
				r.warnings = append(r.warnings, fmt.Sprintf("%s stays set at %s, outside the managed block", prop, p.where(p.off(a.expr.Idx0()))))
			}
		}
	}
	r.out, err = p.apply([]edit{{p.lines[b.begin].start, p.lines[b.end].next, ""}})
	if err != nil {
		return nil, err
	}
	if _, err := analyze(name, r.out); err != nil {
		return nil, fmt.Errorf("refusing to remove the managed block, the result would be broken: %w", err)
	}
	return r, nil
}
