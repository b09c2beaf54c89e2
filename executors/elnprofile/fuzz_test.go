package elnprofile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzPatch checks the patcher's promise for any input: it either refuses,
// or its output parses, init assigns each property exactly once (to the
// wanted value), a second patch changes nothing, and removing the managed
// block again leaves a file that parses.
func FuzzPatch(f *testing.F) {
	befores, _ := filepath.Glob(filepath.Join("testdata", "*", "*.js"))
	for _, name := range befores {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"$.extend(P.prototype, {init: function(){}})",
		"$.extend(P.prototype, {init(s) {\nthis.jupyterEndpoint = 'a';\n}})",
		"X.prototype.init = function(s) {\r\n\tStandardProfile.prototype.init.call(this, s);\r\n}",
		"$.extend(P.prototype, {init: function(s){\n\tif (s) { this.jupyterEndpoint = \"a/\"; }\n\tthis.jupyterEndpoint = \"b/\";\n}})",
		"$.extend(P.prototype, {init: function(s){\n// BEGIN PROVISION MANAGED BLOCK (jupyter)\n\tvar s = `\n// END PROVISION MANAGED BLOCK (jupyter)\n`;\n}})",
		"$.extend(P.prototype, {init: function(s){\n/*\n// BEGIN ANSIBLE MANAGED BLOCK (jupyter)\n// END ANSIBLE MANAGED BLOCK (jupyter)\n*/\n}})",
		"$.extend(P.prototype, {init: function(s){\n\tthis['jupyterEndpoint'] = 1; this.jupyterEndpoint = 2;\n}})",
	} {
		f.Add([]byte(s))
	}
	want := values{"https://jh.example.org:8002", "https://jh.example.org/\"'</script>\n"}
	f.Fuzz(func(t *testing.T, src []byte) {
		r, err := patch("f.js", src, want)
		if err != nil {
			return // refused: nothing is written
		}
		// verify already ran inside patch; check it independently here.
		p, err := analyze("f.js", r.out)
		if err != nil {
			t.Fatalf("patched output does not parse: %v\n%s", err, r.out)
		}
		for i := range propNames {
			if as := p.assigns[i]; len(as) != 1 || !as[0].literal || as[0].value != want[i] {
				t.Fatalf("%s assigned %d times in init:\n%s", propNames[i], len(as), r.out)
			}
		}
		again, err := patch("f.js", r.out, want)
		if err != nil {
			t.Fatalf("second patch refused: %v\n%s", err, r.out)
		}
		if !bytes.Equal(again.out, r.out) {
			t.Fatalf("second patch changed the file:\n%s\n---\n%s", r.out, again.out)
		}
		if _, err := unpatch("f.js", r.out); err != nil {
			t.Fatalf("removing the block again refused: %v\n%s", err, r.out)
		}
	})
}
