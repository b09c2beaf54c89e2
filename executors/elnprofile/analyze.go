package elnprofile

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/file"
	"github.com/dop251/goja/parser"
	"github.com/dop251/goja/token"
)

// The two properties the ELN reads, in the order they are written.
const (
	propIntegration = "jupyterIntegrationServerEndpoint"
	propEndpoint    = "jupyterEndpoint"
)

var propNames = [2]string{propIntegration, propEndpoint}

// Markers of the block provision inserts. Ansible's blockinfile markers
// ("// BEGIN ANSIBLE MANAGED BLOCK (jupyter)") are adopted as they are.
const (
	beginMarker = "// BEGIN PROVISION MANAGED BLOCK (jupyter)"
	endMarker   = "// END PROVISION MANAGED BLOCK (jupyter)"
)

// markerRE matches a whole marker line; groups: BEGIN/END, owner, name.
var markerRE = regexp.MustCompile(`^[ \t]*//[ \t]*(BEGIN|END) (ANSIBLE|PROVISION) MANAGED BLOCK(?: \(([^()]*)\))?[ \t]*$`)

// commentedRE matches, per property, a line that is a commented-out
// assignment of it ("//\t\tthis.jupyterEndpoint = ...").
var commentedRE = [2]*regexp.Regexp{
	regexp.MustCompile(`^[ \t]*//.*\bthis\s*\.\s*` + propIntegration + `\s*=`),
	regexp.MustCompile(`^[ \t]*//.*\bthis\s*\.\s*` + propEndpoint + `\s*=`),
}

// line is one line of the file: content is src[start:end], its terminator
// ("\n", "\r\n" or none at EOF) is src[end:next].
type line struct{ start, end, next int }

func splitLines(src []byte) []line {
	ls := make([]line, 0, bytes.Count(src, []byte{'\n'})+1)
	for start := 0; start < len(src); {
		i := bytes.IndexByte(src[start:], '\n')
		if i < 0 {
			ls = append(ls, line{start, len(src), len(src)})
			break
		}
		end := start + i
		next := end + 1
		if end > start && src[end-1] == '\r' {
			end--
		}
		ls = append(ls, line{start, end, next})
		start = next
	}
	return ls
}

// assignment is an active `this.PROP = VALUE` executed by init itself.
type assignment struct {
	expr *ast.AssignExpression
	// stmt is set when the assignment is a whole statement of a statement
	// list, so it can be removed without touching anything around it.
	stmt *ast.ExpressionStatement
	// nested is true when it is not a statement of init's own body (inside
	// an if, a try, a loop …): it runs only when that code does.
	nested  bool
	literal bool   // the value is a string literal
	value   string // the literal's value, or the source text otherwise
}

// block is a pair of managed-block marker lines inside init.
type block struct {
	begin, end int // line indexes of the marker lines
	owner      string
	name       string
}

// profile is what one read of InstanceProfile.js tells about it.
type profile struct {
	name  string
	src   []byte
	lines []line
	file  *file.File

	init        *ast.FunctionLiteral
	open, close int // offsets of the braces of init's body
	unit        string

	assigns   [2][]assignment // in source order
	compound  [2][]int        // offsets of `this.PROP += …` and friends
	elsewhere [2][]int        // offsets of assignments not run by init itself
	commented [2][]int        // line indexes of commented-out assignments
	block     *block          // the jupyter block, nil when there is none
	unpaired  []int           // line indexes of BEGIN markers without END
}

func (p *profile) off(idx file.Idx) int { return int(idx) - 1 }

// lineAt returns the index of the line holding offset o.
func (p *profile) lineAt(o int) int {
	i := sort.Search(len(p.lines), func(i int) bool { return p.lines[i].next > o })
	if i == len(p.lines) {
		i = len(p.lines) - 1
	}
	return i
}

// where names an offset for messages: "InstanceProfile.js:12:3".
func (p *profile) where(o int) string {
	pos := p.file.Position(o)
	return fmt.Sprintf("%s:%d:%d", p.name, pos.Line, pos.Column)
}

func (p *profile) text(n ast.Node) string {
	return string(p.src[p.off(n.Idx0()):p.off(n.Idx1())])
}

// indentOf returns the leading blanks of line i.
func (p *profile) indentOf(i int) string {
	l := p.lines[i]
	j := l.start
	for j < l.end && (p.src[j] == ' ' || p.src[j] == '\t') {
		j++
	}
	return string(p.src[l.start:j])
}

// restIsBlank reports whether only blanks, an optional semicolon and an
// optional line comment follow offset o on its line.
func (p *profile) restIsBlank(o int, semicolon bool) bool {
	l := p.lines[p.lineAt(o)]
	if o > l.end {
		return true
	}
	rest := bytes.TrimLeft(p.src[o:l.end], " \t")
	if semicolon && len(rest) > 0 && rest[0] == ';' {
		rest = bytes.TrimLeft(rest[1:], " \t")
	}
	return len(rest) == 0 || bytes.HasPrefix(rest, []byte("//"))
}

// analyze parses src and finds init, the assignments of both properties,
// their commented-out forms and the managed block. It fails when src does
// not parse or has no recognisable init.
func analyze(name string, src []byte) (*profile, error) {
	prog, err := parser.ParseFile(nil, name, src, parser.IgnoreRegExpErrors, parser.WithDisableSourceMaps)
	if err != nil {
		return nil, fmt.Errorf("%s is not valid JavaScript: %w", name, err)
	}
	p := &profile{name: name, src: src, lines: splitLines(src), file: prog.File, unit: "    "}
	for _, l := range p.lines {
		if l.end > l.start && src[l.start] == '\t' {
			p.unit = "\t"
			break
		}
	}

	var inits []*ast.FunctionLiteral
	all := map[*ast.AssignExpression]int{}
	walk(prog, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.PropertyKeyed:
			if f, ok := n.Value.(*ast.FunctionLiteral); ok && keyName(n.Key) == "init" &&
				(n.Kind == ast.PropertyKindValue || n.Kind == ast.PropertyKindMethod) {
				inits = append(inits, f)
			}
		case *ast.MethodDefinition:
			if keyName(n.Key) == "init" && n.Kind == ast.PropertyKindMethod && !n.Static {
				inits = append(inits, n.Body)
			}
		case *ast.AssignExpression:
			if d, ok := n.Left.(*ast.DotExpression); ok && n.Operator == token.ASSIGN && d.Identifier.Name == "init" {
				if f, ok := n.Right.(*ast.FunctionLiteral); ok {
					inits = append(inits, f)
				}
			}
			if i := target(n.Left); i >= 0 {
				all[n] = i
			}
		}
		return true
	})
	if err := p.pickInit(inits); err != nil {
		return nil, err
	}
	p.collect(all)
	p.findBlocks()
	return p, nil
}

// pickInit chooses the init function to patch: the only one, or the only
// one calling StandardProfile's init.
func (p *profile) pickInit(inits []*ast.FunctionLiteral) error {
	if len(inits) > 1 {
		var calling []*ast.FunctionLiteral
		for _, f := range inits {
			if p.superCall(f) != nil {
				calling = append(calling, f)
			}
		}
		if len(calling) == 1 {
			inits = calling
		}
	}
	switch len(inits) {
	case 0:
		return fmt.Errorf("%s: no init function found (expected `init: function(serverFacade){ … }` in `$.extend(InstanceProfile.prototype, StandardProfile.prototype, { … })`)", p.name)
	case 1:
	default:
		var at []string
		for _, f := range inits {
			at = append(at, p.where(p.off(f.Idx0())))
		}
		return fmt.Errorf("%s: %d init functions found (%s); cannot tell which one the ELN runs", p.name, len(inits), strings.Join(at, ", "))
	}
	p.init = inits[0]
	p.open, p.close = p.off(p.init.Body.LeftBrace), p.off(p.init.Body.RightBrace)
	return nil
}

// superCall returns init's top-level `StandardProfile.prototype.init.call(…)`.
func (p *profile) superCall(f *ast.FunctionLiteral) *ast.ExpressionStatement {
	for _, s := range f.Body.List {
		if es, ok := s.(*ast.ExpressionStatement); ok {
			if c, ok := es.Expression.(*ast.CallExpression); ok && dotted(c.Callee) == "StandardProfile.prototype.init.call" {
				return es
			}
		}
	}
	return nil
}

// collect sorts the assignments into those init runs itself and the others,
// and finds compound assignments and commented-out lines inside init.
func (p *profile) collect(all map[*ast.AssignExpression]int) {
	top := map[ast.Statement]bool{}
	for _, s := range p.init.Body.List {
		top[s] = true
	}
	stmts := map[*ast.AssignExpression]*ast.ExpressionStatement{}
	list := func(l []ast.Statement) {
		for _, s := range l {
			if es, ok := s.(*ast.ExpressionStatement); ok {
				if a, ok := es.Expression.(*ast.AssignExpression); ok {
					stmts[a] = es
				}
			}
		}
	}
	own := map[*ast.AssignExpression]bool{}
	walk(p.init.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FunctionLiteral, *ast.ArrowFunctionLiteral, *ast.ClassLiteral:
			return false // another `this`, or code that runs later
		case *ast.BlockStatement:
			list(n.List)
		case *ast.CaseStatement:
			list(n.Consequent)
		case *ast.AssignExpression:
			i, ok := all[n]
			if !ok {
				break
			}
			own[n] = true
			if n.Operator != token.ASSIGN {
				p.compound[i] = append(p.compound[i], p.off(n.Idx0()))
				break
			}
			a := assignment{expr: n, stmt: stmts[n]}
			a.nested = a.stmt == nil || !top[a.stmt]
			if s, ok := n.Right.(*ast.StringLiteral); ok {
				a.literal, a.value = true, s.Value.String()
			} else {
				a.value = p.text(n.Right)
			}
			p.assigns[i] = append(p.assigns[i], a)
		}
		return true
	})
	for a, i := range all {
		if !own[a] {
			p.elsewhere[i] = append(p.elsewhere[i], p.off(a.Idx0()))
		}
	}
	for i := range propNames {
		sort.Slice(p.assigns[i], func(x, y int) bool {
			return p.assigns[i][x].expr.Idx0() < p.assigns[i][y].expr.Idx0()
		})
		sort.Ints(p.elsewhere[i])
	}
	for li := p.lineAt(p.open) + 1; li < len(p.lines) && p.lines[li].start < p.close; li++ {
		l := p.src[p.lines[li].start:p.lines[li].end]
		if !bytes.Contains(l, []byte("//")) {
			continue
		}
		for i := range propNames {
			if bytes.Contains(l, []byte(propNames[i])) && commentedRE[i].Match(l) {
				p.commented[i] = append(p.commented[i], li)
			}
		}
	}
}

// findBlocks finds the marker pairs between init's statements and picks the
// jupyter block: provision's own first, then Ansible's "(jupyter)", then a
// bare Ansible block whose content is about Jupyter.
func (p *profile) findBlocks() {
	stmts := p.init.Body.List
	si := 0
	var markers []int
	for li := p.lineAt(p.open) + 1; li < len(p.lines); li++ {
		l := p.lines[li]
		if l.end > p.close {
			break
		}
		// A marker inside a statement (a string, an object literal) is not one.
		for si < len(stmts) && p.off(stmts[si].Idx1()) <= l.start {
			si++
		}
		if si < len(stmts) && p.off(stmts[si].Idx0()) < l.start {
			continue
		}
		if bytes.Contains(p.src[l.start:l.end], []byte("MANAGED BLOCK")) && markerRE.Match(p.src[l.start:l.end]) {
			markers = append(markers, li)
		}
	}
	var blocks []block
	for k := 0; k < len(markers); k++ {
		m := markerRE.FindSubmatch(p.src[p.lines[markers[k]].start:p.lines[markers[k]].end])
		if string(m[1]) != "BEGIN" {
			continue
		}
		if k+1 < len(markers) {
			n := markerRE.FindSubmatch(p.src[p.lines[markers[k+1]].start:p.lines[markers[k+1]].end])
			if string(n[1]) == "END" && bytes.Equal(n[2], m[2]) && bytes.Equal(n[3], m[3]) {
				blocks = append(blocks, block{begin: markers[k], end: markers[k+1], owner: string(m[2]), name: string(m[3])})
				k++
				continue
			}
		}
		p.unpaired = append(p.unpaired, markers[k])
	}
	rank := func(b block) int {
		switch {
		case b.name == "jupyter" && b.owner == "PROVISION":
			return 1
		case b.name == "jupyter":
			return 2
		case b.name == "" && bytes.Contains(bytes.ToLower(p.src[p.lines[b.begin].next:p.lines[b.end].start]), []byte("jupyter")):
			return 3
		}
		return 0
	}
	best := 0
	for _, b := range blocks {
		if r := rank(b); r > 0 && (best == 0 || r < best) {
			b := b
			p.block, best = &b, r
		}
	}
}

// inBlock reports whether offset o lies between the block's markers.
func (p *profile) inBlock(o int) bool {
	return p.block != nil && o >= p.lines[p.block.begin].next && o < p.lines[p.block.end].start
}

// target returns which property e assigns on `this`, or -1.
func target(e ast.Expression) int {
	var name string
	switch e := e.(type) {
	case *ast.DotExpression:
		if _, ok := e.Left.(*ast.ThisExpression); !ok {
			return -1
		}
		name = e.Identifier.Name.String()
	case *ast.BracketExpression:
		if _, ok := e.Left.(*ast.ThisExpression); !ok {
			return -1
		}
		s, ok := e.Member.(*ast.StringLiteral)
		if !ok {
			return -1
		}
		name = s.Value.String()
	default:
		return -1
	}
	for i, n := range propNames {
		if n == name {
			return i
		}
	}
	return -1
}

// keyName returns the name of a non-computed property key.
func keyName(e ast.Expression) string {
	switch k := e.(type) {
	case *ast.StringLiteral:
		return k.Value.String()
	case *ast.Identifier:
		return k.Name.String()
	}
	return ""
}

// dotted returns "a.b.c" for a chain of plain member accesses, else "".
func dotted(e ast.Expression) string {
	switch e := e.(type) {
	case *ast.Identifier:
		return e.Name.String()
	case *ast.DotExpression:
		if l := dotted(e.Left); l != "" {
			return l + "." + e.Identifier.Name.String()
		}
	}
	return ""
}

var fileType = reflect.TypeOf((*file.File)(nil))

// walk calls fn for every AST node under n, parents first; fn returning
// false skips the node's children. goja's ast has no walker of its own, so
// this one goes by reflection, remembering per type which fields can hold
// nodes.
func walk(n any, fn func(ast.Node) bool) {
	w := walker{fn: fn, fields: map[reflect.Type][]int{}}
	w.value(reflect.ValueOf(n))
}

type walker struct {
	fn     func(ast.Node) bool
	fields map[reflect.Type][]int
}

func (w *walker) value(v reflect.Value) {
	switch v.Kind() {
	case reflect.Interface:
		if !v.IsNil() {
			w.value(v.Elem())
		}
	case reflect.Pointer:
		if v.IsNil() || v.Type() == fileType {
			return
		}
		if n, ok := v.Interface().(ast.Node); ok && !w.fn(n) {
			return
		}
		w.value(v.Elem())
	case reflect.Struct:
		for _, i := range w.structFields(v.Type()) {
			w.value(v.Field(i))
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			w.value(v.Index(i))
		}
	}
}

// structFields lists the exported fields of t that may hold nodes.
// DeclarationList is left out: it repeats declarations found in the body.
func (w *walker) structFields(t reflect.Type) []int {
	if f, ok := w.fields[t]; ok {
		return f
	}
	var idx []int
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		switch f.Type.Kind() {
		case reflect.Interface, reflect.Pointer, reflect.Slice, reflect.Struct:
			if f.IsExported() && f.Name != "DeclarationList" {
				idx = append(idx, i)
			}
		}
	}
	w.fields[t] = idx
	return idx
}
