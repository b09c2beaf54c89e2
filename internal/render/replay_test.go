package render

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/openbis/provision/internal/engine"
)

// A host's lines replayed on the admin's machine print what the host's
// own renderer would have printed.
func TestReplayRoundTrip(t *testing.T) {
	converged := &engine.Plan{Host: "hub.example.org", Warnings: []string{"plan-wide"}, Changes: []*engine.Change{
		{Address: "file.start_script", Warnings: []string{"not drift, but worth knowing"}},
	}}
	applied := func(r Renderer) {
		r.Note("Waiting for another provision apply (pid 7) to finish…")
		r.Progress("file.start_script", "create…")
		r.Transfer("docker_image.jupyterhub", "loading", 50, 100)
		r.Applied("hub.example.org", engine.Summary{Create: 1})
		r.Error(errors.New("hub.example.org: boom"))
	}
	for _, tt := range []struct {
		name string
		plan *engine.Plan
		more func(Renderer)
	}{
		{"pending", goldenPlan(), nil},
		{"converged with warnings", converged, nil},
		{"apply", goldenPlan(), applied},
	} {
		for _, format := range []string{"text", "json"} {
			t.Run(tt.name+"/"+format, func(t *testing.T) {
				mk := func(b *bytes.Buffer) Renderer {
					if format == "json" {
						return NewJSON(b)
					}
					return NewText(b, b, false)
				}
				var want, lines, got bytes.Buffer
				direct, host := mk(&want), NewHostJSON(&lines)
				for _, r := range []Renderer{direct, host} {
					if err := r.Plan(tt.plan); err != nil {
						t.Fatal(err)
					}
					if tt.more != nil {
						tt.more(r)
					}
				}
				o, err := Replay(&lines, "hub.example.org", mk(&got))
				if err != nil {
					t.Fatal(err)
				}
				w := strings.ReplaceAll(want.String(), "Waiting for", "hub.example.org: Waiting for")
				if format == "text" {
					// Replay names the host in errors; the direct error did.
					w = strings.ReplaceAll(w, "Error: hub.example.org: boom", "Error: hub.example.org: hub.example.org: boom")
				} else {
					w = strings.ReplaceAll(w, `"message":"hub.example.org: boom"`, `"message":"hub.example.org: hub.example.org: boom"`)
				}
				if got.String() != w {
					t.Errorf("replayed:\n%s\nwant:\n%s", got.String(), w)
				}
				if !o.Planned || o.Pending != tt.plan.Pending() || o.Failed != (tt.more != nil) {
					t.Errorf("outcome %+v", o)
				}
			})
		}
	}
}

func TestReplayRefusesGarbage(t *testing.T) {
	var got bytes.Buffer
	_, err := Replay(strings.NewReader("\x1b[2Jnot json\n"), "h", NewText(&got, &got, false))
	if err == nil || !strings.Contains(err.Error(), `\x1b[2J`) {
		t.Errorf("err = %v", err)
	}
}

// On a terminal, a host's transfer ticks draw one bar, redrawn in place.
func TestTransferBar(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	text := NewText(w, io.Discard, true)
	for _, n := range []int64{0, 50, 100} {
		text.Transfer("docker_image.jupyterhub", "Loading layer", n<<20, 100<<20)
	}
	text.Progress("docker_image.jupyterhub", "done")
	w.Close()
	b, _ := io.ReadAll(r)
	got := string(b)
	for _, want := range []string{"docker_image.jupyterhub: Loading layer\n", "\r  [===============               ]  50% 50.0MiB/100.0MiB", "100% 100.0MiB/100.0MiB\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in %q", want, got)
		}
	}
	if strings.Count(got, "Loading layer") != 1 {
		t.Errorf("the bar was not redrawn in place: %q", got)
	}
}

// What a broken or hostile host may send: refused or rendered harmlessly,
// never a crash, never raw terminal control, always under its own name.
func TestReplayHostile(t *testing.T) {
	for _, tt := range []struct {
		name, lines string
		err         string // "" means replayed without error
		want        string // in the text output
	}{
		{"escape in an action", `{"type":"change","change":{"address":"a","action":"\u001b]0;pwned\u0007"}}`, "not provision's JSON", ""},
		{"an empty change", `{"type":"change","change":null}` + "\n" + `{"type":"summary","summary":{},"pending":false}`, "", "No changes."},
		{"negative progress", `{"type":"progress","address":"a","message":"m","current":-5,"total":10}`, "", "a: m"},
		{"diagnostic", `{"type":"diagnostic","severity":"error","summary":"Bad","detail":"worse"}`, "", "h: Bad: worse"},
		{"another host's plan", `{"type":"saved","plan":{"format":"provision-plan/v1","host":"other","changes":[]}}`, "not its own", ""},
		{"a saved plan with a null change", `{"type":"saved","plan":{"format":"provision-plan/v1","host":"h","changes":[null]}}`, "not its own", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, w, _ := os.Pipe() // a terminal-like writer: bars are drawn
			text := NewText(w, w, true)
			_, err := Replay(strings.NewReader(tt.lines+"\n"), "h", text)
			w.Close()
			got, _ := io.ReadAll(r)
			if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			if !strings.Contains(string(got), tt.want) || strings.Contains(string(got), "\x1b]") {
				t.Errorf("output %q, want %q", got, tt.want)
			}
		})
	}
}

// In JSON, every line of a host's answer carries that host, also when a
// plan of another host came before.
func TestReplayJSONHost(t *testing.T) {
	var b bytes.Buffer
	j := NewJSON(&b)
	j.Plan(&engine.Plan{Host: "first"})
	b.Reset()
	Replay(strings.NewReader(`{"type":"error","message":"down"}`+"\n"), "second", j)
	if !strings.Contains(b.String(), `"host":"second"`) {
		t.Errorf("%s", b.String())
	}
}
