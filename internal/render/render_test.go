package render

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openbis/provision/internal/engine"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenPlan has one change of each shape the renderers print.
func goldenPlan() *engine.Plan {
	return &engine.Plan{Host: "hub.example.org", Changes: []*engine.Change{
		{Address: "docker_image.jupyterhub", Action: engine.Create,
			Fields:   []engine.Field{{Name: "value", New: "sha256:new"}},
			Diff:     "--- a\n+++ a\n@@ -1 +1 @@\n-old\n+new\n",
			Warnings: []string{"pip-installed packages in the running container will be lost"}},
		{Address: "secret.password", Action: engine.Update, Fingerprint: "45254fb80c0fee5bcbf53b7f9fceda70",
			Fields: []engine.Field{{Name: "value", Old: "hunter1", New: "hunter2", Sensitive: true}}},
		{Address: "systemd_unit.jupyterhub", Fingerprint: "d167504da6f9aa495aa863e6860c4c1e",
			TriggeredBy: []string{"docker_image.jupyterhub"}},
	}}
}

func TestGolden(t *testing.T) {
	for _, tt := range []struct {
		name   string
		render func(*bytes.Buffer) Renderer
	}{
		{"plan.txt", func(b *bytes.Buffer) Renderer { return NewText(b, b, false) }},
		{"plan-color.txt", func(b *bytes.Buffer) Renderer { return NewText(b, b, true) }},
		{"plan.jsonl", func(b *bytes.Buffer) Renderer { return NewJSON(b) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.render(&b).Plan(goldenPlan()); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(b.String(), "hunter") {
				t.Errorf("sensitive value printed:\n%s", b.String())
			}
			golden := filepath.Join("testdata", tt.name)
			if *update {
				os.WriteFile(golden, b.Bytes(), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != string(want) {
				t.Errorf("%s differs (go test ./internal/render -update):\n%s", tt.name, b.String())
			}
		})
	}
}

// TestSensitiveCreateDelete: a sensitive value that appears or goes is a
// + or a -, never "~ (sensitive) -> (sensitive)".
func TestSensitiveCreateDelete(t *testing.T) {
	p := &engine.Plan{Host: "h", Changes: []*engine.Change{
		{Address: "file.key", Action: engine.Create, Fields: []engine.Field{{Name: "content", New: "s3cret", Sensitive: true}}},
		{Address: "file.old", Action: engine.Delete, Fields: []engine.Field{{Name: "content", Old: "s3cret", Sensitive: true}}},
	}}
	var text, js bytes.Buffer
	NewText(&text, &text, false).Plan(p)
	NewJSON(&js).Plan(p)
	for _, want := range []string{"+ content = (sensitive)", "- content = (sensitive)"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String()+js.String(), "s3cret") || strings.Contains(js.String(), `"old":"(sensitive)","new"`) {
		t.Errorf("sensitive value shown or create rendered as update:\n%s\n%s", text.String(), js.String())
	}
}

// TestEscapesControlCharacters: nothing read from a host or a spec can
// reach the terminal as an escape sequence.
func TestEscapesControlCharacters(t *testing.T) {
	evil := "x\x1b]0;pwned\x07\x1b[2J\u009b"
	p := &engine.Plan{Host: evil, Warnings: []string{evil}, Changes: []*engine.Change{
		{Address: "file." + evil, Action: engine.Update, Reasons: []string{evil},
			Fields: []engine.Field{{Name: evil, Old: evil, New: "b"}},
			Diff:   "--- p\n+++ p\n@@ -1 +1 @@\n-\told" + evil + "\n+new\n", Warnings: []string{evil}},
	}}
	var b bytes.Buffer
	r := NewText(&b, &b, false)
	r.Plan(p)
	r.Progress(evil, evil)
	r.Transfer(evil, evil, 1, 2)
	r.Error(errors.New(evil))
	r.Note(evil)
	for _, c := range []string{"\x1b", "\x07", "\u009b"} {
		if strings.Contains(b.String(), c) {
			t.Fatalf("control character %q printed raw:\n%q", c, b.String())
		}
	}
	if !strings.Contains(b.String(), `x\x1b]0;pwned\a`) || !strings.Contains(b.String(), "-\told") {
		t.Errorf("escapes not visible or tab in diff lost:\n%s", b.String())
	}
}

func TestTransferThrottled(t *testing.T) {
	var text, js bytes.Buffer
	tr, jr := NewText(&text, &text, false), NewJSON(&js)
	for i := int64(0); i <= 1000; i++ {
		tr.Transfer("docker_image.x", "abc: Loading layer", i, 1000)
		jr.Transfer("docker_image.x", "abc: Loading layer", i, 1000)
	}
	if n := strings.Count(text.String(), "\n"); n != 1 {
		t.Errorf("text printed %d lines for one step", n)
	}
	if n := strings.Count(js.String(), "\n"); n != 101 {
		t.Errorf("json printed %d lines, want one per percent (101)", n)
	}
}
