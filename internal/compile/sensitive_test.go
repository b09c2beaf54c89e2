package compile

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openbis/provision/internal/engine"
	"github.com/openbis/provision/internal/render"
	"github.com/openbis/provision/internal/spec"
)

const secret = "hunter2-zz"

// sensitiveSpec is a deployment whose openBIS host has the given blocks;
// DIR stands for a temporary directory.
func sensitiveSpec(dir, hub, openbis string) []byte {
	return []byte(strings.ReplaceAll(`
variable "secret" {
  type      = string
  sensitive = true
}
deployment "d" {
  openbis_host    = "openbis.example.org"
  jupyterhub_host = "hub.example.org"
}
host "hub.example.org" {
`+hub+`
}
host "openbis.example.org" {
`+openbis+`
}
`, "DIR", dir))
}

// outputs sends apply's progress to both renderers.
type outputs []engine.Output

func (o outputs) Progress(addr, msg string) {
	for _, out := range o {
		out.Progress(addr, msg)
	}
}

func (o outputs) Transfer(addr, msg string, cur, total int64) {
	for _, out := range o {
		out.Transfer(addr, msg, cur, total)
	}
}

func (outputs) Terminal() (io.Writer, uintptr, bool) { return nil, 0, false }

// run plans and applies the nodes of host whose address starts with
// prefix, rendering both ways, and returns everything printed.
func run(t *testing.T, dir, host, prefix string, src []byte, target Target) (printed string, c *Compiled) {
	t.Helper()
	f, diags := spec.Decode(filepath.Join(dir, "spec.hcl"), src, spec.Inputs{Vars: []string{"secret=" + secret}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	c, err := Host(context.Background(), f.Spec, host, target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var nodes []engine.Node
	for _, n := range c.Nodes {
		if strings.HasPrefix(n.Resource.Address(), prefix) {
			nodes = append(nodes, n)
		}
	}
	st, err := engine.LoadState(filepath.Join(dir, "state.json"), host)
	if err != nil {
		t.Fatal(err)
	}
	p, err := engine.Make(context.Background(), host, nodes, st, c.Deleters)
	if err != nil {
		t.Fatal(err)
	}
	p.Warnings = append(c.Warnings, p.Warnings...)
	var out bytes.Buffer
	text, js := render.NewText(&out, &out, false), render.NewJSON(&out)
	if err := text.Plan(p); err != nil {
		t.Fatal(err)
	}
	if err := js.Plan(p); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(context.Background(), st, outputs{text, js}); err != nil {
		t.Fatal(err)
	}
	return out.String(), c
}

// TestSensitiveNeverShown: a sensitive variable in a file's path or
// content, or in openbis_url, shows in no plan (text or JSON), in no
// progress line of apply, of the delete once it leaves the spec, and in
// no error. The state file keeps a sensitive path in clear, on purpose:
// the delete needs it, and the file is root's alone (0600).
func TestSensitiveNeverShown(t *testing.T) {
	for _, tt := range []struct {
		name        string
		hub, block  string
		host        string
		prefix      string
		pathInState string // the one place the secret may be: the state's path
	}{
		{name: "file path", block: `file "f" {
  path    = "DIR/${var.secret}/f"
  content = "plain\n"
}`, host: "openbis.example.org", prefix: "file.", pathInState: "DIR/" + secret + "/f"},
		{name: "file content", block: `file "f" {
  path    = "DIR/f"
  content = "token=${var.secret}\n"
}`, host: "openbis.example.org", prefix: "file."},
		{name: "file content from templatefile", block: `file "f" {
  path    = "DIR/f"
  content = templatefile("t.tmpl", { token = var.secret })
}`, host: "openbis.example.org", prefix: "file."},
		{name: "openbis_url", hub: `jupyterhub {
  image {
    name = "openbis/jupyterhub-openbis-sis-20180405"
    load = "/srv/images/hub.tar"
  }
  start_script = "DIR/start.sh"
  openbis_url  = "https://svc:${var.secret}@openbis.example.org"
}`, host: "hub.example.org", prefix: "file.start_script"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "t.tmpl"), []byte("token=${token}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			target := testTarget
			target.Dial = func(context.Context, string, string) (net.Conn, error) {
				return nil, errors.New("connection refused")
			}
			printed, c := run(t, dir, tt.host, tt.prefix, sensitiveSpec(dir, tt.hub, tt.block), target)
			if !strings.Contains(printed, "done") || !strings.Contains(printed, "(sensitive)") {
				t.Fatalf("nothing applied, or nothing redacted:\n%s", printed)
			}
			if testing.Verbose() {
				t.Logf("printed:\n%s", printed)
			}
			state, err := os.ReadFile(filepath.Join(dir, "state.json"))
			if err != nil {
				t.Fatal(err)
			}
			rest := string(state)
			if tt.pathInState != "" {
				p := `"path": "` + strings.ReplaceAll(tt.pathInState, "DIR", dir) + `"`
				if !strings.Contains(rest, p) {
					t.Errorf("state has no %s:\n%s", p, state)
				}
				rest = strings.ReplaceAll(rest, p, "")
			}
			if strings.Contains(rest, secret) {
				t.Errorf("state shows the secret:\n%s", state)
			}
			// Once the file leaves the spec, its delete is planned from the
			// state record, and printed the same way.
			gone, _ := run(t, dir, tt.host, tt.prefix, sensitiveSpec(dir, "", ""), target)
			if tt.prefix == "file." && !strings.Contains(gone, "no longer in the spec") {
				t.Errorf("no delete planned:\n%s", gone)
			}
			for what, s := range map[string]string{"apply": printed, "delete": gone, "warnings": strings.Join(c.Warnings, "\n")} {
				if strings.Contains(s, secret) {
					t.Errorf("%s shows the secret:\n%s", what, s)
				}
			}
			if w := strings.Join(c.Warnings, "\n"); tt.name == "openbis_url" && !strings.Contains(w, "openBIS at (sensitive)") {
				t.Errorf("warning not redacted: %q", w)
			}
		})
	}
}

// TestSensitivePathErrors: a file at a sensitive path that cannot be read
// fails without naming the path.
func TestSensitivePathErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plain"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	src := sensitiveSpec(dir, "", `file "f" {
  path    = "DIR/plain/${var.secret}"
  content = ""
}`)
	f, diags := spec.Decode("spec.hcl", src, spec.Inputs{Vars: []string{"secret=" + secret}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	c, err := Host(context.Background(), f.Spec, "openbis.example.org", testTarget)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := engine.LoadState(filepath.Join(dir, "state.json"), "openbis.example.org")
	_, err = engine.Make(context.Background(), "openbis.example.org", c.Nodes, st, c.Deleters)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "(sensitive)") {
		t.Errorf("err = %v, want it redacted", err)
	}
}

// TestSensitiveEnv: a sensitive openbis_url is a sensitive variable of
// the container, and makes the start script sensitive.
func TestSensitiveEnv(t *testing.T) {
	dir := t.TempDir()
	f, diags := spec.Decode("spec.hcl", sensitiveSpec(dir, `jupyterhub {
  image {
    name = "openbis/jupyterhub-openbis-sis-20180405"
    load = "/srv/images/hub.tar"
  }
  openbis_url = "https://svc:${var.secret}@openbis.example.org"
}`, ""), spec.Inputs{Vars: []string{"secret=" + secret}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	hub := Container(f.Spec, f.Spec.Host("hub.example.org").JupyterHub)
	if e := hub.Env[0]; e.Name != "OPENBIS_URL" || !e.Sensitive {
		t.Errorf("env %+v, want OPENBIS_URL sensitive", e)
	}
}
