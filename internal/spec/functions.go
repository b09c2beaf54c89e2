package spec

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions is what expressions in a spec may call: cty's standard library
// under Terraform's names, Terraform's try, can, templatefile and type
// conversions, a few of its string, encoding and hash functions, plus
// file (relative to the spec) and env.
func functions(dir string, reads *reader) map[string]function.Function {
	fns := map[string]function.Function{
		"abs": stdlib.AbsoluteFunc, "ceil": stdlib.CeilFunc, "chomp": stdlib.ChompFunc,
		"chunklist": stdlib.ChunklistFunc, "coalesce": coalesceFunc, "coalescelist": stdlib.CoalesceListFunc,
		"compact": stdlib.CompactFunc, "concat": stdlib.ConcatFunc, "contains": stdlib.ContainsFunc,
		"csvdecode": stdlib.CSVDecodeFunc, "distinct": stdlib.DistinctFunc, "element": stdlib.ElementFunc,
		"flatten": stdlib.FlattenFunc, "floor": stdlib.FloorFunc, "format": stdlib.FormatFunc,
		"formatdate": stdlib.FormatDateFunc, "formatlist": stdlib.FormatListFunc, "indent": stdlib.IndentFunc,
		"index": stdlib.IndexFunc, "join": stdlib.JoinFunc, "jsondecode": stdlib.JSONDecodeFunc,
		"jsonencode": stdlib.JSONEncodeFunc, "keys": stdlib.KeysFunc, "length": lengthFunc,
		"log": stdlib.LogFunc, "lookup": stdlib.LookupFunc, "lower": stdlib.LowerFunc, "max": stdlib.MaxFunc,
		"merge": stdlib.MergeFunc, "min": stdlib.MinFunc, "parseint": stdlib.ParseIntFunc, "pow": stdlib.PowFunc,
		"range": stdlib.RangeFunc, "regex": stdlib.RegexFunc, "regexall": stdlib.RegexAllFunc,
		"regex_replace": stdlib.RegexReplaceFunc, "replace": stdlib.ReplaceFunc, "reverse": stdlib.ReverseListFunc,
		"setintersection": stdlib.SetIntersectionFunc, "setproduct": stdlib.SetProductFunc,
		"setsubtract": stdlib.SetSubtractFunc, "setunion": stdlib.SetUnionFunc, "signum": stdlib.SignumFunc,
		"slice": stdlib.SliceFunc, "sort": stdlib.SortFunc, "split": stdlib.SplitFunc, "strrev": stdlib.ReverseFunc,
		"substr": stdlib.SubstrFunc, "timeadd": stdlib.TimeAddFunc, "title": stdlib.TitleFunc, "trim": stdlib.TrimFunc,
		"trimprefix": stdlib.TrimPrefixFunc, "trimspace": stdlib.TrimSpaceFunc, "trimsuffix": stdlib.TrimSuffixFunc,
		"upper": stdlib.UpperFunc, "values": stdlib.ValuesFunc, "zipmap": stdlib.ZipmapFunc,
		"setsymmetricdifference": stdlib.SetSymmetricDifferenceFunc,

		"try": tryfunc.TryFunc, "can": tryfunc.CanFunc,
		"tostring": stdlib.MakeToFunc(cty.String), "tonumber": stdlib.MakeToFunc(cty.Number),
		"tobool": stdlib.MakeToFunc(cty.Bool), "tolist": stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"toset": stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)), "tomap": stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),

		"startswith": stringPredicate(strings.HasPrefix), "endswith": stringPredicate(strings.HasSuffix),
		"strcontains": stringPredicate(strings.Contains),
		"basename":    stringFunc(func(s string) (string, error) { return filepath.Base(s), nil }),
		"dirname":     stringFunc(func(s string) (string, error) { return filepath.Dir(s), nil }),
		"base64encode": stringFunc(func(s string) (string, error) {
			return base64.StdEncoding.EncodeToString([]byte(s)), nil
		}),
		"base64decode": stringFunc(func(s string) (string, error) {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return "", errors.New("the string is not valid base64")
			}
			if !utf8.Valid(b) {
				return "", errors.New("the decoded bytes are not UTF-8 text")
			}
			return string(b), nil
		}),
		"md5":    hashFunc(func(b []byte) []byte { s := md5.Sum(b); return s[:] }),
		"sha1":   hashFunc(func(b []byte) []byte { s := sha1.Sum(b); return s[:] }),
		"sha256": hashFunc(func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }),
		"sha512": hashFunc(func(b []byte) []byte { s := sha512.Sum512(b); return s[:] }),

		"file": fileFunc(dir, reads), "env": envFunc(reads),
	}
	// A template's own functions are the spec's, but a template may not
	// call templatefile again (as in Terraform).
	inner := maps.Clone(fns)
	inner["templatefile"] = function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}, {Name: "vars", Type: cty.DynamicPseudoType}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func([]cty.Value, cty.Type) (cty.Value, error) {
			return cty.NilVal, errors.New("templatefile cannot be called from a template")
		},
	})
	fns["templatefile"] = templateFileFunc(dir, inner, reads)
	return fns
}

// readSpecFile reads a UTF-8 file; a relative path is relative to the
// spec. A sensitive path is not repeated in the error.
func readSpecFile(dir, p string, sens bool, reads *reader) (string, error) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	key := p
	if abs, aerr := filepath.Abs(p); aerr == nil {
		key = abs // the same file whichever directory plan and apply ran in
	}
	b, err := reads.file(key)
	reads.digests.add("file "+shownPath(key, sens), b, err)
	if err != nil {
		if sens {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return "", fmt.Errorf("read %s: %v", redactedValue, err)
		}
		return "", fmt.Errorf("read %s: %v", p, unwrapPathErr(err))
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%s is not UTF-8 text", shownPath(p, sens))
	}
	return string(b), nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func shownPath(p string, sens bool) string {
	if sens {
		return redactedValue
	}
	return p
}

// fileFunc reads a UTF-8 file; a relative path is relative to the spec.
func fileFunc(dir string, reads *reader) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String, AllowMarked: true}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p, marks := args[0].Unmark()
			s, err := readSpecFile(dir, p.AsString(), len(marks) > 0, reads)
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			return cty.StringVal(s).WithMarks(marks), nil
		},
	})
}

// templateFileFunc is Terraform's templatefile(path, vars): the file is
// an HCL template, relative to the spec, evaluated with vars as its only
// variables and fns as its functions. Sensitive vars make the result
// sensitive.
func templateFileFunc(dir string, fns map[string]function.Function, reads *reader) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{
			{Name: "path", Type: cty.String, AllowMarked: true},
			{Name: "vars", Type: cty.DynamicPseudoType, AllowMarked: true},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			pathV, pathMarks := args[0].Unmark()
			sensPath := len(pathMarks) > 0
			src, err := readSpecFile(dir, pathV.AsString(), sensPath, reads)
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			name := shownPath(pathV.AsString(), sensPath)
			vars, varsMarks := args[1].Unmark()
			switch {
			case vars.IsNull():
				return cty.NilVal, function.NewArgErrorf(1, "vars must be a map or an object, not null")
			case !vars.IsKnown():
				return cty.UnknownVal(cty.String).WithMarks(pathMarks, varsMarks), nil
			case !vars.Type().IsObjectType() && !vars.Type().IsMapType():
				return cty.NilVal, function.NewArgErrorf(1, "vars must be a map or an object, not %s", vars.Type().FriendlyName())
			}
			ctx := &hcl.EvalContext{Variables: map[string]cty.Value{}, Functions: fns}
			for it := vars.ElementIterator(); it.Next(); {
				k, v := it.Element()
				if !hclsyntax.ValidIdentifier(k.AsString()) {
					return cty.NilVal, function.NewArgErrorf(1, "vars key %q is not a valid identifier", k.AsString())
				}
				ctx.Variables[k.AsString()] = v
			}
			expr, diags := hclsyntax.ParseTemplate([]byte(src), name, hcl.InitialPos)
			if diags.HasErrors() {
				return cty.NilVal, function.NewArgErrorf(0, "template %s: %s", name, diagsText(diags))
			}
			for _, t := range expr.Variables() {
				if _, ok := ctx.Variables[t.RootName()]; !ok {
					return cty.NilVal, function.NewArgErrorf(1, "vars has no key %q, which the template uses at %s", t.RootName(), t.SourceRange())
				}
			}
			val, diags := expr.Value(ctx)
			if diags.HasErrors() {
				if vars.ContainsMarked() || len(varsMarks) > 0 {
					return cty.NilVal, function.NewArgErrorf(1, "template %s failed; the reason is withheld: vars hold a sensitive value", name)
				}
				return cty.NilVal, function.NewArgErrorf(1, "template %s: %s", name, diagsText(diags))
			}
			val, valMarks := val.UnmarkDeep()
			if !val.IsKnown() {
				return cty.UnknownVal(cty.String).WithMarks(pathMarks, varsMarks, valMarks), nil
			}
			sv, err := convert.Convert(val, cty.String)
			if err != nil || sv.IsNull() {
				return cty.NilVal, fmt.Errorf("template %s does not produce a string", name)
			}
			return sv.WithMarks(pathMarks, varsMarks, valMarks), nil
		},
	})
}

// diagsText joins diagnostics into one line, with their positions.
func diagsText(diags hcl.Diagnostics) string {
	var parts []string
	for _, d := range diags {
		s := d.Summary
		if d.Detail != "" {
			s += ": " + strings.TrimSuffix(d.Detail, ".")
		}
		if d.Subject != nil {
			s = fmt.Sprintf("%s:%d,%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, s)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// stringFunc is a function of one string to a string.
func stringFunc(f func(string) (string, error)) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "str", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			s, err := f(args[0].AsString())
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			return cty.StringVal(s), nil
		},
	})
}

// stringPredicate is Terraform's startswith and the like: f(str, other).
func stringPredicate(f func(string, string) bool) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "str", Type: cty.String}, {Name: "substr", Type: cty.String}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.BoolVal(f(args[0].AsString(), args[1].AsString())), nil
		},
	})
}

// hashFunc is Terraform's md5, sha1, sha256 and sha512: the hash of the
// string's UTF-8 bytes, in lowercase hex.
func hashFunc(sum func([]byte) []byte) function.Function {
	return stringFunc(func(s string) (string, error) { return hex.EncodeToString(sum([]byte(s))), nil })
}

// envFunc returns an environment variable, or "" when it is unset.
func envFunc(reads *reader) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "name", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			v := reads.env(args[0].AsString())
			reads.digests.add("env "+args[0].AsString(), []byte(v), nil)
			return cty.StringVal(v), nil
		},
	})
}

// reader is where file(), templatefile() and env() read: this machine's
// disk and environment, or what they read on the admin's machine
// (Inputs.Captured), so that a host evaluates the spec exactly as the
// admin's machine did. It keeps what was read, for sending to hosts.
type reader struct {
	digests  Reads
	read     map[string][]byte // by "file ABSPATH" and "env NAME"
	captured map[string][]byte // nil: read the disk and environment
}

func (r *reader) file(abs string) ([]byte, error) {
	key := "file " + abs
	if r.captured != nil {
		b, ok := r.captured[key]
		if !ok {
			return nil, &fs.PathError{Op: "read", Path: abs, Err: errors.New("not sent by the admin's provision")}
		}
		return b, nil
	}
	b, err := os.ReadFile(abs)
	if err == nil {
		r.read[key] = b
	}
	return b, err
}

func (r *reader) env(name string) string {
	key := "env " + name
	if r.captured != nil {
		return string(r.captured[key])
	}
	v := os.Getenv(name)
	r.read[key] = []byte(v)
	return v
}

// Reads are what evaluating a spec read from outside it, by digest:
// "file PATH" and "env NAME" → SHA-256 of what was read. A saved plan
// keeps them, so apply refuses a plan whose file() or env() would now
// give something else than what was reviewed.
type Reads map[string]string

func (r Reads) add(key string, b []byte, err error) {
	if r == nil {
		return
	}
	sum := sha256.Sum256(b)
	v := hex.EncodeToString(sum[:])
	if err != nil {
		v = "error: " + unwrapPathErr(err).Error()
	}
	r[key] = v
}

// Changed lists what now reads otherwise than in r (the reviewed reads).
func (r Reads) Changed(now Reads) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(r)) {
		if now[k] != r[k] {
			out = append(out, k+" changed since the plan")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(now)) {
		if _, ok := r[k]; !ok {
			out = append(out, k+" is read now but was not when the plan was made")
		}
	}
	return out
}

// lengthFunc is Terraform's length: the number of characters of a string,
// the number of elements of a collection.
var lengthFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowDynamicType: true, AllowMarked: true}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v, marks := args[0].Unmark()
		switch {
		case v.Type() == cty.String:
			n, err := stdlib.Strlen(v)
			return n.WithMarks(marks), err
		case v.Type().IsObjectType():
			return cty.NumberIntVal(int64(len(v.Type().AttributeTypes()))).WithMarks(marks), nil
		}
		n, err := stdlib.Length(v)
		return n.WithMarks(marks), err
	},
})

// coalesceFunc is Terraform's coalesce: the first argument that is
// neither null nor an empty string (cty's skips only nulls).
var coalesceFunc = function.New(&function.Spec{
	VarParam: &function.Parameter{Name: "vals", Type: cty.DynamicPseudoType, AllowUnknown: true, AllowDynamicType: true, AllowNull: true},
	Type: func(args []cty.Value) (cty.Type, error) {
		args = nonEmpty(args)
		if len(args) == 0 {
			return cty.NilType, errors.New("no non-null, non-empty-string arguments")
		}
		types := make([]cty.Type, len(args))
		for i, a := range args {
			types[i] = a.Type()
		}
		return stdlib.CoalesceFunc.ReturnType(types)
	},
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) { return stdlib.Coalesce(nonEmpty(args)...) },
})

func nonEmpty(args []cty.Value) []cty.Value {
	var out []cty.Value
	for _, a := range args {
		if a.IsKnown() && !a.IsNull() && a.Type() == cty.String && a.AsString() == "" {
			continue
		}
		out = append(out, a)
	}
	return out
}
