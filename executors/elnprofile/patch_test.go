package elnprofile

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/openbis/provision/internal/engine"

	"github.com/dop251/goja"
)

var update = flag.Bool("update", false, "rewrite the golden after.js files")

// testWant are the values the golden files are patched with.
var testWant = values{"https://jupyterhub.example.org:8002", "https://jupyterhub.example.org/"}

func readFixture(t testing.TB, name, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPatchGolden(t *testing.T) {
	tests := []struct {
		name     string
		reasons  []string
		warnings int
	}{
		{"ansible-jupyter", []string{"jupyterIntegrationServerEndpoint commented out", "jupyterEndpoint commented out"}, 0},
		{"ansible-bare", []string{"jupyterIntegrationServerEndpoint commented out", "jupyterEndpoint commented out"}, 0},
		{"ansible-active", []string{"jupyterIntegrationServerEndpoint changed", "jupyterEndpoint changed"}, 0},
		{"ansible-bare-other", []string{"jupyterIntegrationServerEndpoint missing", "jupyterEndpoint missing"}, 0},
		{"other-block", []string{"jupyterIntegrationServerEndpoint missing", "jupyterEndpoint missing"}, 0},
		{"active-inplace", []string{"jupyterIntegrationServerEndpoint changed", "jupyterEndpoint changed"}, 0},
		{"active-one", []string{"jupyterIntegrationServerEndpoint missing", "jupyterEndpoint changed"}, 0},
		{"duplicated", []string{"jupyterIntegrationServerEndpoint changed", "jupyterIntegrationServerEndpoint duplicated", "jupyterEndpoint changed", "jupyterEndpoint duplicated"}, 0},
		{"commented-out", []string{"jupyterIntegrationServerEndpoint commented out", "jupyterEndpoint commented out"}, 0},
		{"empty-init", []string{"jupyterIntegrationServerEndpoint missing", "jupyterEndpoint missing"}, 0},
		{"no-super-call", []string{"jupyterIntegrationServerEndpoint missing", "jupyterEndpoint missing"}, 0},
		{"spaces", []string{"jupyterIntegrationServerEndpoint missing", "jupyterEndpoint missing"}, 0},
		{"crlf", []string{"jupyterIntegrationServerEndpoint commented out", "jupyterEndpoint commented out"}, 0},
		{"crlf-insert", []string{"jupyterIntegrationServerEndpoint missing", "jupyterEndpoint missing"}, 0},
		{"no-final-newline", []string{"jupyterIntegrationServerEndpoint missing", "jupyterEndpoint missing"}, 0},
		{"provision-stale", []string{"jupyterIntegrationServerEndpoint changed", "jupyterEndpoint changed"}, 0},
		{"provision-and-ansible", []string{"jupyterIntegrationServerEndpoint commented out", "jupyterEndpoint changed"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := readFixture(t, tt.name, "before.js")
			r, err := patch("InstanceProfile.js", before, testWant)
			if err != nil {
				t.Fatalf("patch: %v", err)
			}
			golden := filepath.Join("testdata", tt.name, "after.js")
			if *update {
				if err := os.WriteFile(golden, r.out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			after := readFixture(t, tt.name, "after.js")
			if !bytes.Equal(r.out, after) {
				t.Errorf("patched file differs from %s:\n%s", golden, r.out)
			}
			if !reflect.DeepEqual(r.reasons, tt.reasons) {
				t.Errorf("reasons = %q, want %q", r.reasons, tt.reasons)
			}
			if len(r.warnings) != tt.warnings {
				t.Errorf("warnings = %q, want %d", r.warnings, tt.warnings)
			}

			// Idempotent: the patched file needs nothing more.
			again, err := patch("InstanceProfile.js", after, testWant)
			if err != nil {
				t.Fatalf("patch of after.js: %v", err)
			}
			if !bytes.Equal(again.out, after) {
				t.Errorf("second patch changed the file:\n%s", again.out)
			}
			if len(again.reasons) != 0 {
				t.Errorf("second patch reasons = %q, want none", again.reasons)
			}
			assertRuns(t, after, testWant)
		})
	}
}

func TestPatchRefuses(t *testing.T) {
	tests := []struct {
		name string
		want string // in the error
	}{
		{"bad-syntax", "InstanceProfile.js: Line 8:"},
		{"no-init", "no init function found"},
		{"code-after-super", "InstanceProfile.js:2:"},
		{"dup-in-expression", "InstanceProfile.js:9:11: jupyterEndpoint is assigned again inside a larger expression"},
		{"block-in-comment", "init would assign jupyterIntegrationServerEndpoint 0 times"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := patch("InstanceProfile.js", readFixture(t, tt.name, "before.js"), testWant)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("patch error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestUnpatchGolden removes the managed block again: for files where
// provision inserted the block, that restores the original bytes.
func TestUnpatchGolden(t *testing.T) {
	restores := map[string]bool{
		"ansible-bare-other": true, "other-block": true, "commented-out": true,
		"empty-init": true, "no-super-call": true, "crlf-insert": true, "spaces": true, "no-final-newline": true,
	}
	dirs, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		after, err := os.ReadFile(filepath.Join("testdata", d.Name(), "after.js"))
		if err != nil {
			continue // a refusal fixture
		}
		t.Run(d.Name(), func(t *testing.T) {
			r, err := unpatch("InstanceProfile.js", after)
			if err != nil {
				t.Fatalf("unpatch: %v", err)
			}
			if bytes.Contains(r.out, []byte("MANAGED BLOCK (jupyter)\n")) && !strings.HasPrefix(d.Name(), "provision-and-ansible") {
				t.Errorf("a jupyter block is left:\n%s", r.out)
			}
			if restores[d.Name()] {
				before := readFixture(t, d.Name(), "before.js")
				if !bytes.Equal(r.out, before) {
					t.Errorf("unpatch did not restore before.js:\n%s", r.out)
				}
			}
			// Everything else survives: the sso block, the other settings.
			for _, keep := range []string{"hideSectionsByDefault", "MANAGED BLOCK (sso)"} {
				if bytes.Contains(after, []byte(keep)) && !bytes.Contains(r.out, []byte(keep)) {
					t.Errorf("unpatch removed %q", keep)
				}
			}
		})
	}
}

// TestPatchDrift edits a converged file the ways admins do and checks that
// the plan names what is wrong and the patch converges again.
func TestPatchDrift(t *testing.T) {
	const (
		integ = "\t\tthis.jupyterIntegrationServerEndpoint = \"https://jupyterhub.example.org:8002\";\n"
		endp  = "\t\tthis.jupyterEndpoint = \"https://jupyterhub.example.org/\";\n"
		other = "\t\tthis.hideSectionsByDefault = true;\n"
	)
	tests := []struct {
		name    string
		old     string
		new     string
		reasons []string
		fields  []engine.Field
	}{
		{"missing", endp, "", []string{"jupyterEndpoint missing"}, []engine.Field{{Name: "jupyterEndpoint", New: testWant[1]}}},
		{"changed", endp, "\t\tthis.jupyterEndpoint = \"https://evil.example.org/\";\n", []string{"jupyterEndpoint changed"},
			[]engine.Field{{Name: "jupyterEndpoint", Old: "https://evil.example.org/", New: testWant[1]}}},
		{"not a literal", endp, "\t\tthis.jupyterEndpoint = base + \"/\";\n", []string{"jupyterEndpoint changed"},
			[]engine.Field{{Name: "jupyterEndpoint", Old: `base + "/"`, New: testWant[1]}}},
		{"commented out", endp, "//" + endp, []string{"jupyterEndpoint commented out"}, []engine.Field{{Name: "jupyterEndpoint", New: testWant[1]}}},
		{"duplicated in block", integ, integ + integ, []string{"jupyterIntegrationServerEndpoint duplicated"}, nil},
		{"duplicated outside", other, other + integ, []string{"jupyterIntegrationServerEndpoint duplicated"}, nil},
		{"reformatted", endp, "\t\tthis.jupyterEndpoint='https://jupyterhub.example.org/'\n", []string{"managed block (jupyter) content differs"}, nil},
	}
	converged := readFixture(t, "ansible-bare-other", "after.js")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Contains(converged, []byte(tt.old)) {
				t.Fatalf("fixture lacks %q", tt.old)
			}
			drifted := bytes.Replace(converged, []byte(tt.old), []byte(tt.new), 1)
			r, err := patch("InstanceProfile.js", drifted, testWant)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.reasons, tt.reasons) {
				t.Errorf("reasons = %q, want %q", r.reasons, tt.reasons)
			}
			if !reflect.DeepEqual(r.fields, tt.fields) {
				t.Errorf("fields = %+v, want %+v", r.fields, tt.fields)
			}
			again, err := patch("InstanceProfile.js", r.out, testWant)
			if err != nil || !bytes.Equal(again.out, r.out) {
				t.Errorf("not converged after one patch (%v):\n%s", err, again.out)
			}
			assertRuns(t, r.out, testWant)
		})
	}
}

func TestPatchHostileValues(t *testing.T) {
	hostile := []string{
		`"; alert(1); "`,
		`'; alert(1); '`,
		`\"; alert(1); //`,
		"</script><script>alert(1)</script>",
		"a\nalert(1)\n",
		"a\r\n\u2028\u2029b",
		"`${alert(1)}`",
		"*/ alert(1); /*",
		"\x00\x1b\x7f",
		"ünïcödé 😀",
	}
	before := readFixture(t, "ansible-jupyter", "before.js")
	for _, h := range hostile {
		want := values{"https://jh.example.org:8002/" + h, "https://jh.example.org/" + h + "/"}
		r, err := patch("InstanceProfile.js", before, want)
		if err != nil {
			t.Fatalf("patch with %q: %v", h, err)
		}
		if bytes.Contains(r.out, []byte("</script>")) || bytes.Contains(r.out, []byte("alert(1)\n")) {
			t.Errorf("value %q reached the file unescaped:\n%s", h, r.out)
		}
		for _, b := range r.out {
			if b > 0x7e {
				t.Errorf("value %q produced a non-ASCII byte", h)
				break
			}
		}
		assertRuns(t, r.out, want)
	}
}

func TestJSString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://h:8002", `"https://h:8002"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"</script>", `"\u003c/script\u003e"`},
		{"a\nb\u2028", `"a\nb\u2028"`},
		{"😀", `"\ud83d\ude00"`},
	}
	for _, tt := range tests {
		if got := jsString(tt.in); got != tt.want {
			t.Errorf("jsString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// assertRuns executes the profile in a JavaScript engine with a minimal
// jQuery and StandardProfile, and checks what the ELN would see.
func assertRuns(t testing.TB, src []byte, want values) {
	t.Helper()
	vm := goja.New()
	_, err := vm.RunString(`
		var $ = { extend: function(t) {
			for (var i = 1; i < arguments.length; i++) for (var k in arguments[i]) t[k] = arguments[i][k];
			return t;
		} };
		function StandardProfile() {}
		StandardProfile.prototype.init = function() {};
		function alert() { throw new Error("alert called"); }`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vm.RunScript("InstanceProfile.js", string(src)); err != nil {
		t.Fatalf("run patched file: %v", err)
	}
	v, err := vm.RunString(`var p = new InstanceProfile({}); [p.jupyterIntegrationServerEndpoint, p.jupyterEndpoint]`)
	if err != nil {
		t.Fatalf("construct InstanceProfile: %v", err)
	}
	var got []string
	if err := vm.ExportTo(v, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("the ELN would see %q, want %q", got, want)
	}
}
