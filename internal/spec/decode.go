package spec

import (
	"fmt"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
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
}

// File is a loaded spec file: its parser (for diagnostic snippets) and
// the decoded spec when it decoded without errors.
type File struct {
	Filename string
	Bytes    []byte
	Parser   *hclparse.Parser
	Spec     *Spec
}

// Snapshot is what a saved plan keeps of the spec: the file and the
// inputs it was decoded with, so that apply decodes exactly the same.
type Snapshot struct {
	Filename string `json:"filename"`
	Spec     []byte `json:"spec"`
	Inputs   Inputs `json:"inputs"`
}

// Snapshot captures f decoded with in: the provision variables of the
// environment (nothing else of it) and the contents of the var files.
func (f *File) Snapshot(in Inputs) (Snapshot, error) {
	s := Snapshot{Filename: f.Filename, Spec: f.Bytes, Inputs: in}
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
	d := &decoder{dir: filepath.Dir(filename), parser: s.Parser}
	spec := d.decode(f.Body, in)
	diags = append(diags, d.diags...)
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
	d.ctx = &hcl.EvalContext{Functions: functions(d.dir)}
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
		spec.Deployment = d.deployment(deployments[0])
	}
	dep := spec.Deployment
	d.ctx.Variables["deployment"] = cty.ObjectVal(map[string]cty.Value{
		"name":               cty.StringVal(dep.Name),
		"openbis_host":       cty.StringVal(dep.OpenBISHost),
		"jupyterhub_host":    cty.StringVal(dep.JupyterHubHost),
		"communication_port": cty.NumberIntVal(int64(dep.CommunicationPort)),
		"hub_port":           cty.NumberIntVal(int64(dep.HubPort)),
	})
	seen := map[string]*hcl.Block{}
	for _, b := range hosts {
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
		for _, vb := range c.Blocks {
			v.checks = append(v.checks, vb)
		}
		decl[name] = v
	}

	given := map[string]cty.Value{}
	set := func(name, raw string, rng *hcl.Range, origin string, literal bool) {
		v, ok := decl[name]
		if !ok {
			if origin != "environment" {
				d.errorf(rng, "Undeclared variable", "%s sets variable %q, which the spec does not declare. Declared: %s.", origin, name, strings.Join(sortedKeys(decl), ", "))
			}
			return
		}
		var val cty.Value
		if literal && (v.typ == cty.String || v.typ == cty.DynamicPseudoType) {
			val = cty.StringVal(raw)
		} else {
			expr, diags := hclsyntax.ParseExpression([]byte(raw), origin, hcl.InitialPos)
			if !diags.HasErrors() {
				val, diags = expr.Value(nil)
			}
			if diags.HasErrors() {
				d.errorf(rng, "Invalid value for variable", "%s: the value of %q must be an HCL expression of type %s: %s.", origin, name, v.typ.FriendlyName(), diags.Error())
				return
			}
		}
		given[name] = val
	}
	for _, kv := range in.Environ {
		if k, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			set(strings.TrimPrefix(k, EnvPrefix), val, nil, "environment", true)
		}
	}
	for _, fn := range in.VarFiles {
		var f *hcl.File
		var diags hcl.Diagnostics
		if src, ok := in.VarFileSrc[fn]; ok {
			f, diags = d.parser.ParseHCL(src, fn)
		} else {
			f, diags = d.parser.ParseHCLFile(fn)
		}
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
				d.errorf(a.NameRange.Ptr(), "Undeclared variable", "Variable %q is not declared in the spec. Declared: %s.", name, strings.Join(sortedKeys(decl), ", "))
				continue
			}
			given[name] = val
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
				d.errorf(v.block.DefRange.Ptr(), "No value for required variable",
					"Variable %q has no default: give it with -var %s=VALUE, a -var-file, or %s%s.", name, name, EnvPrefix, name)
				vals[name] = cty.DynamicVal // reported once, not again where it is used
				continue
			}
			val = v.def
		}
		cv, err := convert.Convert(val, v.typ)
		if err != nil {
			d.errorf(v.block.DefRange.Ptr(), "Invalid value for variable", "Variable %q must be %s: %s.", name, v.typ.FriendlyName(), err)
			vals[name] = cty.DynamicVal
			continue
		}
		if v.sensitive {
			cv = cv.Mark(sensitive)
		}
		vals[name] = cv
		d.validateVariable(name, cv, v.checks)
	}
	return cty.ObjectVal(vals)
}

// validateVariable runs a variable's validation blocks.
func (d *decoder) validateVariable(name string, val cty.Value, checks []*hcl.Block) {
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
		cond, diags := c.Attributes["condition"].Expr.Value(ctx)
		d.diags = append(d.diags, diags...)
		if diags.HasErrors() {
			continue
		}
		cond, _ = cond.Unmark()
		if cond.Type() != cty.Bool || cond.IsNull() {
			d.errorf(c.Attributes["condition"].Expr.Range().Ptr(), "Invalid validation condition", "The condition must be true or false.")
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
			d.errorf(c.Attributes["condition"].Expr.Range().Ptr(), "Invalid value for variable", "var.%s: %s", name, text)
		}
	}
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
			v, diags := a.Expr.Value(d.ctx)
			d.diags = append(d.diags, diags...)
			if !diags.HasErrors() {
				vals[name] = v
			}
			delete(pending, name)
			progress = true
		}
		if !progress {
			for _, name := range sortedKeys(pending) {
				d.errorf(pending[name].Expr.Range().Ptr(), "Cycle in local values", "local.%s depends on itself through other locals.", name)
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

// value evaluates an attribute, unmarking it; sens reports the mark.
func (d *decoder) value(a *hcl.Attribute, want cty.Type) (val cty.Value, sens bool, ok bool) {
	v, diags := a.Expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal, false, false
	}
	v, marks := v.UnmarkDeep()
	_, sens = marks[sensitive]
	if !v.IsWhollyKnown() {
		// Unknown: it depends on a value already reported as wrong.
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
	s, ok, _ := d.sensitiveStr(attrs, name, def)
	return s, ok
}

// sensitiveStr is checked that also reports whether the value derives
// from a sensitive variable.
func (d *decoder) sensitiveStr(attrs hcl.Attributes, name, def string) (s string, ok, sens bool) {
	a, present := attrs[name]
	if !present {
		return def, false, false
	}
	v, sens, ok := d.value(a, cty.String)
	if !ok || v.IsNull() {
		return def, false, sens
	}
	s = v.AsString()
	return s, d.checkSafe(a, s), sens
}

// text decodes a multi-line string attribute (file content) and whether
// it is sensitive.
func (d *decoder) text(attrs hcl.Attributes, name string) (string, bool) {
	a, ok := attrs[name]
	if !ok {
		return "", false
	}
	v, sens, ok := d.value(a, cty.String)
	if !ok || v.IsNull() {
		return "", sens
	}
	s := v.AsString()
	if strings.ContainsRune(s, 0) {
		d.errorf(a.Expr.Range().Ptr(), "Unsafe value", "%s contains a NUL byte, which no file format here can carry.", name)
	}
	return s, sens
}

func (d *decoder) checkSafe(a *hcl.Attribute, s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			d.errorf(a.Expr.Range().Ptr(), "Unsafe value",
				"%s contains the control character %q; values end up in a shell script, a JavaScript file and firewall rules, where it cannot be made safe. Remove it.", a.Name, r)
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
	v, _, ok := d.value(a, cty.List(cty.String))
	if !ok || v.IsNull() {
		return nil
	}
	var out []string
	for _, e := range v.AsValueSlice() {
		if e.IsNull() {
			d.errorf(a.Expr.Range().Ptr(), "Invalid list element", "%s must not contain null.", name)
			continue
		}
		if d.checkSafe(a, e.AsString()) {
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
	v, _, ok := d.value(a, cty.Number)
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
	v, _, ok := d.value(a, cty.Bool)
	if !ok || v.IsNull() {
		return def
	}
	return v.True()
}

func rangeOf(attrs hcl.Attributes, name string, fallback hcl.Range) *hcl.Range {
	if a, ok := attrs[name]; ok {
		return a.Expr.Range().Ptr()
	}
	return fallback.Ptr()
}
