package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// env is a throwaway host: a spec with file blocks, its own state and lock.
type env struct {
	t     testing.TB
	dir   string
	spec  string
	state string
	lock  string
}

func newEnv(t testing.TB, files string) *env {
	dir := t.TempDir()
	e := &env{t: t, dir: dir, spec: filepath.Join(dir, "host.hcl"), state: filepath.Join(dir, "state.json"), lock: filepath.Join(dir, "lock")}
	e.write(files)
	return e
}

// write puts a spec with the given file blocks on host files.example.org.
func (e *env) write(files string) {
	spec := `
variable "motd" {
  type    = string
  default = "welcome"
}
variable "token" {
  type      = string
  sensitive = true
  default   = "s3cr3t-token"
}
deployment "d" {
  openbis_host    = "openbis.example.org"
  jupyterhub_host = "hub.example.org"
}
host "hub.example.org" {
  jupyterhub {
    image {
      name = "openbis/jupyterhub-openbis-sis-20180405"
      load = "/srv/images/hub.tar"
    }
  }
}
host "openbis.example.org" {
  eln_instance_profile { path = "/opt/openbis/InstanceProfile.js" }
}
host "files.example.org" {
` + strings.ReplaceAll(files, "DIR", e.dir) + `
}
`
	if err := os.WriteFile(e.spec, []byte(spec), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) run(args ...string) (int, string) {
	var out bytes.Buffer
	full := append([]string{args[0]}, args[1:]...)
	if args[0] == "plan" || args[0] == "apply" {
		if args[len(args)-1] == e.spec {
			full = append(full, "--host", "files.example.org")
		}
		full = append(full, "--state", e.state)
		if args[0] == "apply" {
			full = append(full, "--lock-file", e.lock)
		}
	}
	code := run(context.Background(), full, strings.NewReader(""), &out, &out)
	return code, out.String()
}

const motd = `
  file "motd" {
    path    = "DIR/etc/motd"
    content = "${var.motd}\n"
  }
  file "token" {
    path    = "DIR/etc/token"
    content = "TOKEN=${var.token}\n"
    mode    = "0600"
  }`

func TestPlanApplyConverge(t *testing.T) {
	e := newEnv(t, motd)
	code, out := e.run("plan", e.spec)
	if code != exitDrift || !strings.Contains(out, "+ file.motd") || !strings.Contains(out, "+welcome") {
		t.Fatalf("first plan: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("sensitive value in plan:\n%s", out)
	}
	if code, out = e.run("apply", e.spec); code != exitOK || !strings.Contains(out, "Apply complete! 2 created") {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	if fi, err := os.Stat(filepath.Join(e.dir, "etc/token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	if code, out = e.run("plan", e.spec); code != exitOK || !strings.Contains(out, "No changes.") {
		t.Fatalf("second plan: exit %d\n%s", code, out)
	}
	if code, out = e.run("apply", e.spec); code != exitOK || strings.Contains(out, "Apply complete") {
		t.Fatalf("second apply changed something: exit %d\n%s", code, out)
	}

	// Drift: an edit by hand is named, with a diff, and repaired.
	os.WriteFile(filepath.Join(e.dir, "etc/motd"), []byte("hacked\n"), 0o644)
	if code, out = e.run("plan", e.spec); code != exitDrift || !strings.Contains(out, "~ file.motd") || !strings.Contains(out, "-hacked") {
		t.Fatalf("drift plan: exit %d\n%s", code, out)
	}
	if code, _ = e.run("apply", e.spec); code != exitOK {
		t.Fatal("repair failed")
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "etc/motd.provision-bak")); string(b) != "hacked\n" {
		t.Errorf("backup holds %q", b)
	}

	// A block removed from the spec is deleted, since provision created it.
	e.write(motd[:strings.Index(motd, `  file "token"`)])
	if code, out = e.run("plan", e.spec); code != exitDrift || !strings.Contains(out, "- file.token") {
		t.Fatalf("delete plan: exit %d\n%s", code, out)
	}
	if code, out = e.run("apply", e.spec); code != exitOK {
		t.Fatalf("delete apply: %s", out)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "etc/token")); !os.IsNotExist(err) {
		t.Errorf("token still there: %v", err)
	}
	if code, _ = e.run("plan", e.spec); code != exitOK {
		t.Error("not converged after delete")
	}
}

func TestSavedPlan(t *testing.T) {
	e := newEnv(t, motd)
	planFile := filepath.Join(e.dir, "plan.out")
	if code, out := e.run("plan", "-out", planFile, e.spec); code != exitDrift {
		t.Fatalf("plan -out: %d %s", code, out)
	}
	if fi, _ := os.Stat(planFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("plan file mode %o", fi.Mode().Perm())
	}
	// The host changes between plan and apply: the saved plan is refused.
	os.MkdirAll(filepath.Join(e.dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(e.dir, "etc/motd"), []byte("meanwhile\n"), 0o644)
	code, out := e.run("apply", planFile)
	if code != exitError || !strings.Contains(out, "file.motd: planned \"create\", now \"update\"") {
		t.Fatalf("stale plan applied: %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "etc/motd")); string(b) != "meanwhile\n" {
		t.Error("stale plan changed the host")
	}
	if code, _ := e.run("plan", "-out", planFile, e.spec); code != exitDrift {
		t.Fatal("re-plan")
	}
	if code, out := e.run("apply", planFile); code != exitOK {
		t.Fatalf("fresh saved plan: %d\n%s", code, out)
	}
}

func TestExitCodesAndErrors(t *testing.T) {
	e := newEnv(t, motd)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"validate examples", []string{"validate", "../../examples/jupyterhub-openbis.hcl", "../../examples/offline-tar.hcl", "../../examples/extended-image.hcl"}, exitOK, "valid"},
		{"unknown host", []string{"plan", "--host", "nope.example.org", e.spec}, exitError, `hosts: "hub.example.org", "openbis.example.org", "files.example.org"`},
		{"missing file", []string{"plan", filepath.Join(e.dir, "missing.hcl")}, exitError, "no such file"},
		{"version", []string{"version"}, exitOK, "provision "},
		{"fmt check", []string{"fmt", "--check", e.ugly()}, exitUnformat, "ugly.hcl"},
		{"completion", []string{"completion", "bash"}, exitOK, "bash completion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code := run(context.Background(), tt.args, strings.NewReader(""), &out, &out)
			if code != tt.code || !strings.Contains(out.String(), tt.want) {
				t.Errorf("exit %d (want %d), output:\n%s", code, tt.code, out.String())
			}
		})
	}
}

func TestJSONOutput(t *testing.T) {
	e := newEnv(t, motd)
	code, out := e.run("plan", "--json", e.spec)
	if code != exitDrift {
		t.Fatalf("exit %d: %s", code, out)
	}
	var types []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		types = append(types, line["type"].(string))
	}
	if strings.Join(types, ",") != "change,change,summary" || strings.Contains(out, "s3cr3t") {
		t.Errorf("lines %v:\n%s", types, out)
	}
	// Diagnostics are JSON too.
	os.WriteFile(e.spec, []byte("deployment \"d\" {\n  bogus = 1\n}\n"), 0o644)
	code, out = e.run("validate", "--json", e.spec)
	if code != exitError || !strings.Contains(out, `"type":"diagnostic"`) || !strings.Contains(out, `"line":2`) {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func TestApplyRefusesSymlink(t *testing.T) {
	e := newEnv(t, motd)
	os.MkdirAll(filepath.Join(e.dir, "etc"), 0o755)
	victim := filepath.Join(e.dir, "victim")
	os.WriteFile(victim, []byte("keep\n"), 0o644)
	os.Symlink(victim, filepath.Join(e.dir, "etc/motd"))
	code, out := e.run("apply", e.spec)
	if code != exitError || !strings.Contains(out, "symlink") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep\n" {
		t.Error("symlink target written")
	}
}

func (e *env) ugly() string {
	p := filepath.Join(e.dir, "ugly.hcl")
	os.WriteFile(p, []byte("deployment \"d\" {\nopenbis_host=\"a\"\n}\n"), 0o644)
	return p
}

// BenchmarkPlanConverged measures a whole `provision plan` run (decode,
// compile, read, diff, render) on a converged host of files.
func BenchmarkPlanConverged(b *testing.B) {
	e := newEnv(b, motd)
	if code, out := e.run("apply", e.spec); code != exitOK {
		b.Fatal(out)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if code, out := e.run("plan", e.spec); code != exitOK {
			b.Fatal(out)
		}
	}
}
