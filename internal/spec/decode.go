package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// sensitive is the cty mark on values of variables declared sensitive; it
// travels through expressions and functions into whatever uses the value.
const sensitive = "sensitive"

// EnvPrefix names environment variables that set spec variables.
const EnvPrefix = "PROVISION_VAR_"

// Inputs are the values given for the spec's variables, in Terraform's
// order of precedence: environment, then var files, then -var flags.
type Inputs struct {
	Vars     []string // "name=value"
	VarFiles []string
	Environ  []string // os.Environ()
	// VarFileSrc holds var files' contents by name; a file not in it is
	// read from disk. Saved plans carry their inputs this way.
	VarFileSrc map[string][]byte `json:",omitempty"`
	// Captured is what file(), templatefile() and env() read on the
	// admin's machine (File.Captured), by "file ABSPATH" and "env NAME".
	// When set, they read only from it: a host evaluates the spec sent to
	// it with the admin's files and environment, not its own.
	Captured map[string][]byte `json:",omitempty"`
	// AllowUnset lets required variables go without a value, for
	// validate: they become unknown, and the checks that depend on them
	// are skipped. The Spec then holds zero values where they flow, so
	// it is for validation only; plan and apply leave this false.
	AllowUnset bool `json:"-"`
}

// File is a loaded spec file: its parser (for diagnostic snippets) and
// the decoded spec when it decoded without errors.
type File struct {
	Filename string
	Bytes    []byte
	Parser   *hclparse.Parser
	Spec     *Spec
	// Reads are what file(), templatefile() and env() read while decoding.
	Reads Reads
	// Captured is what they read, for Inputs.Captured of a host the spec
	// is sent to.
	Captured map[string][]byte
}

// Snapshot is what a saved plan keeps of the spec: the file and the
// inputs it was decoded with, so that apply decodes exactly the same.
type Snapshot struct {
	Filename string `json:"filename"`
	Spec     []byte `json:"spec"`
	Inputs   Inputs `json:"inputs"`
	// Reads are the digests of what the spec read from outside it; apply
	// refuses the plan when they differ now.
	Reads Reads `json:"reads,omitempty"`
}

// Snapshot captures f decoded with in: the provision variables of the
// environment (nothing else of it) and the contents of the var files.
func (f *File) Snapshot(in Inputs) (Snapshot, error) {
	// Absolute: file() paths are relative to the spec, wherever apply runs.
	name, err := filepath.Abs(f.Filename)
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %s: %w", f.Filename, err)
	}
	s := Snapshot{Filename: name, Spec: f.Bytes, Inputs: in, Reads: f.Reads}
	s.Inputs.Environ = nil
	for _, kv := range in.Environ {
		if strings.HasPrefix(kv, EnvPrefix) {
			s.Inputs.Environ = append(s.Inputs.Environ, kv)
		}
	}
	s.Inputs.VarFileSrc = maps.Clone(in.VarFileSrc)
	for _, fn := range in.VarFiles {
		if _, ok := s.Inputs.VarFileSrc[fn]; ok {
			continue
		}
		b, err := os.ReadFile(fn)
		if err != nil {
			return s, fmt.Errorf("read var file: %w", err)
		}
		if s.Inputs.VarFileSrc == nil {
			s.Inputs.VarFileSrc = map[string][]byte{}
		}
		s.Inputs.VarFileSrc[fn] = b
	}
	return s, nil
}

// Load reads and decodes the spec file at filename.
func Load(filename string, in Inputs) (*File, hcl.Diagnostics) {
	src, err := os.ReadFile(filename)
	if err != nil {
		return &File{Filename: filename, Parser: hclparse.NewParser()}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read spec file",
			Detail:   fmt.Sprintf("%s. Check the path given on the command line.", err),
		}}
	}
	return Decode(filename, src, in)
}

// Decode parses and validates a spec held in memory. Every problem found is
// returned at once; Spec is set only when there are no errors.
func Decode(filename string, src []byte, in Inputs) (*File, hcl.Diagnostics) {
	s := &File{Filename: filename, Bytes: src, Parser: hclparse.NewParser()}
	f, diags := s.Parser.ParseHCL(src, filename)
	if diags.HasErrors() {
		return s, diags
	}
	s.Reads, s.Captured = Reads{}, map[string][]byte{}
	if in.Captured != nil {
		s.Captured = in.Captured
	}
	rd := &reader{digests: s.Reads, read: s.Captured, captured: in.Captured}
	d := &decoder{dir: filepath.Dir(filename), parser: s.Parser, unknown: map[*hcl.Attribute]bool{}, reads: rd}
	spec := d.decode(f.Body, in)
	diags = append(diags, d.diags...)
	if scrubDiagnostics {
		d.scrub(diags)
	}
	if !diags.HasErrors() {
		s.Spec = spec
	}
	return s, diags
}

var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "deployment", LabelNames: []string{"name"}},
		{Type: "host", LabelNames: []string{"name"}},
	},
}

type decoder struct {
	dir    string
	parser *hclparse.Parser
	ctx    *hcl.EvalContext
	diags  hcl.Diagnostics
	reads  *reader

	declared   map[string]bool // variables, for references to undeclared ones
	localNames map[string]bool // local values, likewise
	// unknown holds the attributes whose value depends on a variable left
	// unset (Inputs.AllowUnset) or already reported as wrong.
	unknown map[*hcl.Attribute]bool
	// secrets are the values of sensitive variables as text, taken out of
	// every diagnostic as a last resort (see scrub).
	secrets []string
}

func (d *decoder) errorf(rng *hcl.Range, summary, detail string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(detail, args...), Subject: rng,
	})
}

func (d *decoder) decode(body hcl.Body, in Inputs) *Spec {
	content, diags := body.Content(rootSchema)
	d.diags = append(d.diags, diags...)
	var vars, locals, deployments, hosts []*hcl.Block
	for _, b := range content.Blocks {
		switch b.Type {
		case "variable":
			vars = append(vars, b)
		case "locals":
			locals = append(locals, b)
		case "deployment":
			deployments = append(deployments, b)
		case "host":
			hosts = append(hosts, b)
		}
	}
	d.ctx = &hcl.EvalContext{Functions: functions(d.dir, d.reads)}
	d.ctx.Variables = map[string]cty.Value{"var": d.variables(vars, in)}
	d.ctx.Variables["local"] = d.locals(locals)

	spec := &Spec{}
	switch len(deployments) {
	case 0:
		d.errorf(nil, "Missing deployment block",
			`The spec needs one deployment "NAME" { openbis_host = ..., jupyterhub_host = ... } block holding the values both hosts share.`)
	default:
		for _, b := range deployments[1:] {
			d.errorf(b.DefRange.Ptr(), "Duplicate deployment block",
				"A spec describes one deployment; the first is at %s. Split other deployments into their own files.", deployments[0].DefRange)
		}
		d.checkLabels(deployments[0])
		spec.Deployment = d.deployment(deployments[0])
	}
	dep := spec.Deployment
	depVals := map[string]cty.Value{
		"name":               cty.StringVal(dep.Name),
		"openbis_host":       cty.StringVal(dep.OpenBISHost),
		"jupyterhub_host":    cty.StringVal(dep.JupyterHubHost),
		"communication_port": cty.NumberIntVal(int64(dep.CommunicationPort)),
		"hub_port":           cty.NumberIntVal(int64(dep.HubPort)),
	}
	for _, name := range dep.unknown {
		depVals[name] = cty.UnknownVal(depVals[name].Type())
	}
	d.ctx.Variables["deployment"] = cty.ObjectVal(depVals)
	seen := map[string]*hcl.Block{}
	for _, b := range hosts {
		if !d.checkLabels(b) {
			continue
		}
		if prev, ok := seen[b.Labels[0]]; ok {
			d.errorf(b.LabelRanges[0].Ptr(), "Duplicate host block", "Host %q is already described at %s; merge the two blocks.", b.Labels[0], prev.DefRange)
			continue
		}
		seen[b.Labels[0]] = b
		spec.Hosts = append(spec.Hosts, d.host(b, dep))
	}
	if len(deployments) > 0 {
		d.checkHosts(spec)
	}
	return spec
}

// variables decodes variable blocks and resolves their values.
func (d *decoder) variables(blocks []*hcl.Block, in Inputs) cty.Value {
	type variable struct {
		block     *hcl.Block
		typ       cty.Type
		def       cty.Value
		sensitive bool
		checks    []*hcl.Block
		bad       bool // its declaration was reported already
	}
	decl := map[string]*variable{}
	schema := &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "validation"}},
	}
	for _, b := range blocks {
		name := b.Labels[0]
		if !hclsyntax.ValidIdentifier(name) {
			d.errorf(b.LabelRanges[0].Ptr(), "Invalid variable name", "%q is not a valid identifier: use letters, digits, underscores and dashes, starting with a letter.", name)
			continue
		}
		if prev, ok := decl[name]; ok {
			d.errorf(b.DefRange.Ptr(), "Duplicate variable", "Variable %q is already declared at %s.", name, prev.block.DefRange)
			continue
		}
		c, diags := b.Body.Content(schema)
		d.diags = append(d.diags, diags...)
		v := &variable{block: b, typ: cty.DynamicPseudoType, def: cty.NilVal}
		if a, ok := c.Attributes["type"]; ok {
			t, diags := typeexpr.TypeConstraint(a.Expr)
			d.diags = append(d.diags, diags...)
			if !diags.HasErrors() {
				v.typ = t
			}
		}
		if a, ok := c.Attributes["sensitive"]; ok {
			val, diags := a.Expr.Value(nil)
			d.diags = append(d.diags, diags...)
			if !diags.HasErrors() {
				if val.Type() != cty.Bool || val.IsNull() {
					d.errorf(a.Expr.Range().Ptr(), "Invalid sensitive flag", "sensitive must be true or false.")
				} else {
					v.sensitive = val.True()
				}
			}
		}
		if a, ok := c.Attributes["default"]; ok {
			val, diags := a.Expr.Value(nil)
			d.diags = append(d.diags, diags...)
			v.bad = diags.HasErrors()
			if !diags.HasErrors() {
				if cv, err := convert.Convert(val, v.typ); err != nil {
					d.errorf(a.Expr.Range().Ptr(), "Invalid default value", "The default of variable %q does not match its type: %s.", name, err)
					v.bad = true
				} else {
					v.def = cv
				}
			}
		}
		v.checks = append(v.checks, c.Blocks...)
		decl[name] = v
	}
	d.declared = map[string]bool{}
	for name := range decl {
		d.declared[name] = true
	}

	given := map[string]cty.Value{}
	origin := map[string]string{} // where each given value came from
	set := func(name, raw string, rng *hcl.Range, from string, literal bool) {
		v, ok := decl[name]
		if !ok {
			if !strings.HasPrefix(from, "environment") {
				d.errorf(rng, "Undeclared variable", "%s sets variable %q, which the spec does not declare.%s", from, name, d.suggestVar(name))
			}
			return
		}
		var val cty.Value
		if literal && (v.typ == cty.String || v.typ == cty.DynamicPseudoType) {
			val = cty.StringVal(raw)
		} else {
			expr, diags := hclsyntax.ParseExpression([]byte(raw), from, hcl.InitialPos)
			if !diags.HasErrors() {
				val, diags = expr.Value(nil)
			}
			if diags.HasErrors() {
				why := ": " + diags.Error()
				if v.sensitive {
					why = " (sensitive value)"
				}
				d.errorf(rng, "Invalid value for variable", "%s: the value of %q must be an HCL expression of type %s%s.", from, name, v.typ.FriendlyName(), why)
				return
			}
		}
		given[name], origin[name] = val, from
	}
	for _, kv := range in.Environ {
		if k, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			set(strings.TrimPrefix(k, EnvPrefix), val, nil, "environment variable "+k, true)
		}
	}
	for _, fn := range in.VarFiles {
		src, ok := in.VarFileSrc[fn]
		if !ok {
			var err error
			if src, err = os.ReadFile(fn); err != nil {
				d.errorf(nil, "Cannot read var file", "-var-file %s: %s.", fn, unwrapPathError(err))
				continue
			}
		}
		f, diags := d.parser.ParseHCL(src, fn)
		d.diags = append(d.diags, diags...)
		if diags.HasErrors() {
			continue
		}
		attrs, diags := f.Body.JustAttributes()
		d.diags = append(d.diags, diags...)
		for name, a := range attrs {
			val, diags := a.Expr.Value(nil)
			d.diags = append(d.diags, diags...)
			if diags.HasErrors() {
				continue
			}
			if _, ok := decl[name]; !ok {
				d.errorf(a.NameRange.Ptr(), "Undeclared variable", "Variable %q is not declared in the spec.%s", name, d.suggestVar(name))
				continue
			}
			given[name], origin[name] = val, "var file "+fn
		}
	}
	for _, kv := range in.Vars {
		name, val, ok := strings.Cut(kv, "=")
		if !ok {
			d.errorf(nil, "Invalid -var option", "%q: write -var NAME=VALUE.", kv)
			continue
		}
		set(name, val, nil, "-var "+name, true)
	}

	vals := map[string]cty.Value{}
	for _, name := range sortedKeys(decl) {
		v := decl[name]
		val, ok := given[name]
		if !ok {
			if v.def == cty.NilVal {
				if v.bad {
					vals[name] = cty.DynamicVal
					continue
				}
				if in.AllowUnset {
					// validate: the spec's shape is checked, not its values.
					vals[name] = cty.UnknownVal(v.typ)
					if v.sensitive {
						vals[name] = vals[name].Mark(sensitive)
					}
					continue
				}
				d.errorf(v.block.DefRange.Ptr(), "No value for required variable",
					"Variable %q has no default: give it with -var %s=VALUE, a -var-file, or %s%s.", name, name, EnvPrefix, name)
				vals[name] = cty.DynamicVal // reported once, not again where it is used
				continue
			}
			val, origin[name] = v.def, "the default"
		}
		cv, err := convert.Convert(val, v.typ)
		if err != nil {
			d.errorf(v.block.DefRange.Ptr(), "Invalid value for variable", "Variable %q must be %s: %s (from %s).", name, v.typ.FriendlyName(), err, origin[name])
			vals[name] = cty.DynamicVal
			continue
		}
		if v.sensitive {
			d.secrets = append(d.secrets, secretTexts(cv)...)
			cv = cv.Mark(sensitive)
		}
		vals[name] = cv
		if !d.validateVariable(name, cv, origin[name], v.checks) {
			vals[name] = cty.DynamicVal // reported once, not again where it is used
		}
	}
	return cty.ObjectVal(vals)
}

// validateVariable runs a variable's validation blocks. A failed one
// shows the value, unless it is sensitive, and where it came from. It
// reports whether the value passed.
func (d *decoder) validateVariable(name string, val cty.Value, from string, checks []*hcl.Block) bool {
	passed := true
	schema := &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "condition", Required: true}, {Name: "error_message", Required: true},
	}}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{name: val})},
		Functions: d.ctx.Functions,
	}
	for _, b := range checks {
		c, diags := b.Body.Content(schema)
		d.diags = append(d.diags, diags...)
		if diags.HasErrors() {
			continue
		}
		condExpr := c.Attributes["condition"].Expr
		cond, ok := d.eval(condExpr, ctx, name)
		if !ok {
			continue
		}
		cond, _ = cond.Unmark()
		if !cond.IsKnown() {
			continue // it depends on a value given at plan time
		}
		if cond.Type() != cty.Bool || cond.IsNull() {
			d.errorf(condExpr.Range().Ptr(), "Invalid validation condition", "The condition must be true or false.")
			continue
		}
		if cond.False() {
			// The message may interpolate the variable, as Terraform's do:
			// evaluate it in the same context as the condition.
			msg, mdiags := c.Attributes["error_message"].Expr.Value(ctx)
			text := "The value is not allowed."
			if msg, marks := msg.UnmarkDeep(); !mdiags.HasErrors() && msg.Type() == cty.String && !msg.IsNull() && msg.IsKnown() {
				text = msg.AsString()
				if _, ok := marks[sensitive]; ok {
					text = "The value is not allowed (the message is withheld: it shows a sensitive value)."
				}
			}
			d.errorf(condExpr.Range().Ptr(), "Invalid value for variable", "var.%s: %s\n\nvar.%s is %s, from %s.", name, text, name, valueString(val), from)
			passed = false
		}
	}
	return passed
}

// locals evaluates locals blocks, in dependency order among themselves.
func (d *decoder) locals(blocks []*hcl.Block) cty.Value {
	pending := map[string]*hcl.Attribute{}
	for _, b := range blocks {
		attrs, diags := b.Body.JustAttributes()
		d.diags = append(d.diags, diags...)
		for name, a := range attrs {
			if prev, ok := pending[name]; ok {
				d.errorf(a.NameRange.Ptr(), "Duplicate local value", "local.%s is already defined at %s.", name, prev.NameRange)
				continue
			}
			pending[name] = a
		}
	}
	d.localNames = map[string]bool{}
	for name := range pending {
		d.localNames[name] = true
	}
	vals := map[string]cty.Value{}
	for len(pending) > 0 {
		progress := false
		for _, name := range sortedKeys(pending) {
			a := pending[name]
			ready := true
			for _, t := range a.Expr.Variables() {
				if t.RootName() != "local" || len(t) < 2 {
					continue
				}
				if attr, ok := t[1].(hcl.TraverseAttr); ok {
					if _, waiting := pending[attr.Name]; waiting && attr.Name != name {
						ready = false
					}
				}
			}
			if !ready {
				continue
			}
			d.ctx.Variables["local"] = cty.ObjectVal(vals)
			if v, ok := d.eval(a.Expr, d.ctx, ""); ok {
				vals[name] = v
			} else {
				vals[name] = cty.DynamicVal // reported; not again where it is used
			}
			delete(pending, name)
			progress = true
		}
		if !progress {
			for _, name := range sortedKeys(pending) {
				d.errorf(pending[name].Expr.Range().Ptr(), "Cycle in local values", "local.%s depends on itself through other locals.", name)
				vals[name] = cty.DynamicVal
			}
			break
		}
	}
	return cty.ObjectVal(vals)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// redactedValue stands for a sensitive value in diagnostics.
const redactedValue = "(sensitive value)"

// shown quotes s for a diagnostic, or hides it when it is sensitive.
func shown(s string, sens bool) string {
	if sens {
		return redactedValue
	}
	return strconv.Quote(s)
}

// eval evaluates expr in ctx. A reference to an undeclared variable or
// local value is reported by name, with a suggestion, instead of hcl's
// "Unsupported attribute"; self, when set, is the variable whose
// validation this is, the only one it may refer to. When expr refers to
// a sensitive value, the details of hcl's diagnostics (a function's
// error quotes its arguments) are withheld.
func (d *decoder) eval(expr hcl.Expression, ctx *hcl.EvalContext, self string) (cty.Value, bool) {
	if !d.checkRefs(expr, self) {
		return cty.NilVal, false
	}
	v, diags := expr.Value(ctx)
	if diags.HasErrors() && refersToSensitive(expr, ctx) {
		for _, dg := range diags {
			if i := strings.Index(dg.Detail, ": "); i >= 0 {
				dg.Detail = dg.Detail[:i] + ": " + redactedValue + "."
			} else {
				dg.Detail = "The details are withheld: the expression uses a sensitive value."
			}
		}
	}
	d.diags = append(d.diags, diags...)
	return v, !diags.HasErrors()
}

func (d *decoder) checkRefs(expr hcl.Expression, self string) bool {
	ok := true
	for _, t := range expr.Variables() {
		if len(t) < 2 {
			continue
		}
		attr, isAttr := t[1].(hcl.TraverseAttr)
		if !isAttr {
			continue
		}
		switch t.RootName() {
		case "var":
			switch {
			case !d.declared[attr.Name]:
				d.errorf(t.SourceRange().Ptr(), "Reference to undeclared input variable",
					"An input variable with the name %q has not been declared.%s", attr.Name, d.suggestVar(attr.Name))
				ok = false
			case self != "" && attr.Name != self:
				d.errorf(t.SourceRange().Ptr(), "Invalid reference in variable validation",
					"The condition for variable %q can only refer to the variable itself, using var.%s.", self, self)
				ok = false
			}
		case "local":
			if self == "" && !d.localNames[attr.Name] {
				hint := ""
				if s := suggest(attr.Name, sortedKeys(d.localNames)); s != "" {
					hint = fmt.Sprintf(" Did you mean local.%s?", s)
				}
				d.errorf(t.SourceRange().Ptr(), "Reference to undeclared local value",
					"A local value with the name %q has not been declared.%s", attr.Name, hint)
				ok = false
			}
		}
	}
	return ok
}

// suggestVar is " Did you mean var.x?" for a misspelt variable name, or
// the list of declared variables.
func (d *decoder) suggestVar(name string) string {
	names := sortedKeys(d.declared)
	if s := suggest(name, names); s != "" {
		return fmt.Sprintf(" Did you mean var.%s?", s)
	}
	if len(names) == 0 {
		return fmt.Sprintf(" Declare it with a variable %q { } block.", name)
	}
	return " Declared: " + strings.Join(names, ", ") + "."
}

// suggest returns the candidate closest to name, if one is close enough
// to be a typo (hcl's own rule: an edit distance below 3).
func suggest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if dist := editDistance(name, c); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// refersToSensitive reports whether a variable or local that expr refers
// to holds a sensitive value.
func refersToSensitive(expr hcl.Expression, ctx *hcl.EvalContext) bool {
	if ctx == nil {
		return false
	}
	for _, t := range expr.Variables() {
		for n := min(len(t), 2); n <= len(t); n++ {
			if v, diags := t[:n].TraverseAbs(ctx); !diags.HasErrors() && v.ContainsMarked() {
				return true
			}
		}
	}
	return false
}

// scrubDiagnostics is false in tests that check the decoder's own
// redaction, without the last resort.
var scrubDiagnostics = true

// scrub takes the text of sensitive values out of every diagnostic. The
// decoder never prints one on purpose; this is the last resort for
// messages hcl and cty write themselves. Values shorter than 4
// characters are left alone: replacing them would garble every message.
func (d *decoder) scrub(diags hcl.Diagnostics) {
	for _, s := range d.secrets {
		if len(s) < 4 {
			continue
		}
		for _, dg := range diags {
			dg.Summary = strings.ReplaceAll(dg.Summary, s, redactedValue)
			dg.Detail = strings.ReplaceAll(dg.Detail, s, redactedValue)
		}
	}
}

// secretTexts lists v's primitive values as text, as messages show them.
func secretTexts(v cty.Value) []string {
	var out []string
	cty.Walk(v, func(_ cty.Path, v cty.Value) (bool, error) {
		v, _ = v.Unmark()
		if v.IsNull() || !v.IsKnown() {
			return true, nil
		}
		switch v.Type() {
		case cty.String:
			out = append(out, strconv.Quote(v.AsString()), v.AsString())
		case cty.Number:
			out = append(out, v.AsBigFloat().Text('f', -1))
		}
		return true, nil
	})
	return out
}

// valueString shows a value in a diagnostic, as HCL would write it.
func valueString(v cty.Value) string {
	v, marks := v.UnmarkDeep()
	switch {
	case len(marks) > 0:
		return redactedValue
	case !v.IsKnown():
		return "not known yet"
	case v.IsNull():
		return "null"
	case v.Type() == cty.String:
		return strconv.Quote(v.AsString())
	case v.Type() == cty.Number:
		return v.AsBigFloat().Text('f', -1)
	case v.Type() == cty.Bool:
		return strconv.FormatBool(v.True())
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return v.Type().FriendlyName()
	}
	return string(b)
}

// unwrapPathError drops the operation from an *fs.PathError ("open x:
// ..." becomes "x: ..."): the diagnostic says what was done.
func unwrapPathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

// checkLabels refuses block labels with control characters: they name
// hosts, files and addresses in plans and on the command line.
func (d *decoder) checkLabels(b *hcl.Block) bool {
	for i, l := range b.Labels {
		for _, r := range l {
			if r < 0x20 || r == 0x7f {
				d.errorf(b.LabelRanges[i].Ptr(), "Invalid block label",
					"The label of this %s block, %q, contains the control character %q; labels name hosts, files and addresses in plans and on the command line. Remove it.", b.Type, l, r)
				return false
			}
		}
	}
	return true
}

// value evaluates an attribute, unmarking it; sens reports the mark. A
// sensitive value is refused unless sensOK: only attributes whose value
// provision keeps out of plans, output and state may take one.
func (d *decoder) value(a *hcl.Attribute, want cty.Type, sensOK bool) (val cty.Value, sens bool, ok bool) {
	v, ok := d.eval(a.Expr, d.ctx, "")
	if !ok {
		return cty.NilVal, false, false
	}
	v, marks := v.UnmarkDeep()
	_, sens = marks[sensitive]
	if sens && !sensOK {
		d.errorf(a.Expr.Range().Ptr(), "Sensitive value not allowed",
			"%s derives from a sensitive variable, and provision shows %s in plans, apply's output and the state file. Sensitive values may be used in a file's path and content, openbis_url, and an image's auth { username, password }.", a.Name, a.Name)
		return cty.NilVal, sens, false
	}
	if !v.IsWhollyKnown() {
		// Unknown: it depends on a value already reported as wrong, or on
		// a variable validate runs without.
		d.unknown[a] = true
		return cty.NilVal, sens, false
	}
	if v.IsNull() {
		return v, sens, true
	}
	cv, err := convert.Convert(v, want)
	if err != nil {
		d.errorf(a.Expr.Range().Ptr(), "Incorrect attribute value type", "%s must be %s: %s.", a.Name, want.FriendlyName(), err)
		return cty.NilVal, sens, false
	}
	return cv, sens, true
}

// str decodes a single-line string attribute. Control characters are
// refused: no quoting makes a newline safe in a shell line, a JS statement
// or a firewalld rule.
func (d *decoder) str(attrs hcl.Attributes, name, def string) string {
	s, _ := d.checked(attrs, name, def)
	return s
}

// checked is str that also reports whether the attribute was given and
// passed so far, so later checks run on it once and a value already
// reported is not reported again.
func (d *decoder) checked(attrs hcl.Attributes, name, def string) (string, bool) {
	a, present := attrs[name]
	if !present {
		return def, false
	}
	v, _, ok := d.value(a, cty.String, false)
	if !ok || v.IsNull() {
		return def, false
	}
	s := v.AsString()
	return s, d.checkSafe(a, s, false)
}

// sensitiveStr is checked for an attribute that may take a sensitive
// value; sens reports whether it did. always treats the value as
// sensitive whatever its origin (a password).
func (d *decoder) sensitiveStr(attrs hcl.Attributes, name, def string, always bool) (s string, ok, sens bool) {
	a, present := attrs[name]
	if !present {
		return def, false, always
	}
	v, sens, ok := d.value(a, cty.String, true)
	sens = sens || always
	if !ok || v.IsNull() {
		return def, false, sens
	}
	s = v.AsString()
	return s, d.checkSafe(a, s, sens), sens
}

// text decodes a multi-line string attribute (file content) and whether
// it is sensitive.
func (d *decoder) text(attrs hcl.Attributes, name string) (string, bool) {
	a, ok := attrs[name]
	if !ok {
		return "", false
	}
	v, sens, ok := d.value(a, cty.String, true)
	if !ok || v.IsNull() {
		return "", sens
	}
	s := v.AsString()
	if strings.ContainsRune(s, 0) {
		d.errorf(a.Expr.Range().Ptr(), "Unsafe value", "%s contains a NUL byte, which no file format here can carry.", name)
	}
	return s, sens
}

func (d *decoder) checkSafe(a *hcl.Attribute, s string, sens bool) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			char := fmt.Sprintf("the control character %q", r)
			if sens {
				char = "a control character " + redactedValue
			}
			d.errorf(a.Expr.Range().Ptr(), "Unsafe value",
				"%s contains %s; values end up in a shell script, a JavaScript file and firewall rules, where it cannot be made safe. Remove it.", a.Name, char)
			return false
		}
	}
	return true
}

func (d *decoder) strList(attrs hcl.Attributes, name string) []string {
	a, ok := attrs[name]
	if !ok {
		return nil
	}
	v, _, ok := d.value(a, cty.List(cty.String), false)
	if !ok || v.IsNull() {
		return nil
	}
	var out []string
	for _, e := range v.AsValueSlice() {
		if e.IsNull() {
			d.errorf(a.Expr.Range().Ptr(), "Invalid list element", "%s must not contain null.", name)
			continue
		}
		if d.checkSafe(a, e.AsString(), false) {
			out = append(out, e.AsString())
		}
	}
	return out
}

func (d *decoder) integer(attrs hcl.Attributes, name string, def int) int {
	a, ok := attrs[name]
	if !ok {
		return def
	}
	v, _, ok := d.value(a, cty.Number, false)
	if !ok || v.IsNull() {
		return def
	}
	bf := v.AsBigFloat()
	i, acc := bf.Int64()
	if acc != big.Exact || !bf.IsInt() {
		d.errorf(a.Expr.Range().Ptr(), "Invalid number", "%s must be a whole number.", name)
		return def
	}
	return int(i)
}

func (d *decoder) boolean(attrs hcl.Attributes, name string, def bool) bool {
	a, ok := attrs[name]
	if !ok {
		return def
	}
	v, _, ok := d.value(a, cty.Bool, false)
	if !ok || v.IsNull() {
		return def
	}
	return v.True()
}

// isUnknown reports whether the attribute name depends on a value not
// known at validate time; checks involving it are skipped.
func (d *decoder) isUnknown(attrs hcl.Attributes, name string) bool {
	a, ok := attrs[name]
	return ok && d.unknown[a]
}

func rangeOf(attrs hcl.Attributes, name string, fallback hcl.Range) *hcl.Range {
	if a, ok := attrs[name]; ok {
		return a.Expr.Range().Ptr()
	}
	return fallback.Ptr()
}
