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
		// Body snippets: spliced into a real init below.
		"\t\tthis.jupyterEndpoint = \"a/\";\n// BEGIN ANSIBLE MANAGED BLOCK (jupyter)\n// END ANSIBLE MANAGED BLOCK (jupyter)\n",
		"// BEGIN ANSIBLE MANAGED BLOCK\n\t\t// this.jupyterEndpoint = 1;\n// END ANSIBLE MANAGED BLOCK\n\t\tthis.jupyterIntegrationServerEndpoint = x; this.jupyterIntegrationServerEndpoint = y;\n",
		"\t\ttry { this.jupyterEndpoint = \"a/\"; } finally {}\n\t\tswitch (1) { case 1: this.jupyterEndpoint = 'b'; }\n",
	} {
		f.Add([]byte(s))
	}
	want := values{"https://jh.example.org:8002", "https://jh.example.org/\"'</script>\n"}
	f.Fuzz(func(t *testing.T, src []byte) {
		checkPatch(t, src, want)
		// The same bytes as the body of a real init reach the patcher's
		// logic far more often than whole random files do.
		body := make([]byte, 0, len(fuzzHead)+len(src)+len(fuzzTail))
		body = append(append(append(body, fuzzHead...), src...), fuzzTail...)
		checkPatch(t, body, want)
	})
}

const (
	fuzzHead = "function InstanceProfile(serverFacade) {\n\tthis.init(serverFacade);\n}\n\n$.extend(InstanceProfile.prototype, StandardProfile.prototype, {\n\tinit: function(serverFacade){\n\t\tStandardProfile.prototype.init.call(this, serverFacade);\n"
	fuzzTail = "\n\t\tthis.hideSectionsByDefault = true;\n}\n})\n"
)

func checkPatch(t *testing.T, src []byte, want values) {
	r, err := patch("f.js", src, want)
	if err != nil {
		return // refused: nothing is written
	}
	// patch checked its result already; check it independently here.
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
	// Removing the block may refuse (the code around it could need the
	// block's lines to parse), but must never produce a broken file.
	if u, err := unpatch("f.js", r.out); err == nil {
		if _, err := analyze("f.js", u.out); err != nil {
			t.Fatalf("file without the block does not parse: %v\n%s", err, u.out)
		}
	}
}
