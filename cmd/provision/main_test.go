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

// TestShowSavedPlan: show prints a saved plan as plan printed it, text or
// JSON, without the host, the state or the spec file, and the plan file
// holds no secret beyond the spec snapshot.
func TestShowSavedPlan(t *testing.T) {
	e := newEnv(t, motd)
	planFile := filepath.Join(e.dir, "plan.out")
	code, planOut := e.run("plan", "--out", planFile, e.spec)
	if code != exitDrift {
		t.Fatalf("plan --out: %d\n%s", code, planOut)
	}
	planText, _, _ := strings.Cut(planOut, "\nSaved the plan")
	os.Remove(e.spec)
	os.Remove(e.state)

	for _, tt := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"text", []string{"show", planFile}, exitOK, []string{planText}},
		{"terraform spelling", []string{"show", "-no-color", planFile}, exitOK, []string{planText}},
		{"json", []string{"show", "--json", planFile}, exitOK, []string{`{"type":"change","verb":"create"`, `"address":"file.token"`, `"type":"summary"`}},
		{"spec file", []string{"show", filepath.Join("../../examples/offline-tar.hcl")}, exitError, []string{"is not a saved plan", "provision plan --out"}},
		{"missing", []string{"show", filepath.Join(e.dir, "nope")}, exitError, []string{"no such file"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out := e.run(tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d:\n%s", code, tt.code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "s3cr3t") {
				t.Errorf("secret shown:\n%s", out)
			}
		})
	}

	b, _ := os.ReadFile(planFile)
	var saved map[string]json.RawMessage
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	delete(saved, "source") // the spec snapshot: the spec's own text
	rest, _ := json.Marshal(saved)
	if strings.Contains(string(rest), "s3cr3t") || strings.Contains(string(rest), `"data"`) {
		t.Errorf("saved changes hold a secret or executor data:\n%s", rest)
	}
}

// TestSavedPlanHint: the hint prints the apply command with the flags the
// plan was made with that apply needs, and that command works as printed.
func TestSavedPlanHint(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    options
		want string
	}{
		{"defaults", options{statePath: "/var/lib/provision/state.json", lockPath: "/run/provision/apply.lock"}, "provision apply p.plan"},
		{"state and lock", options{statePath: "/srv/st.json", lockPath: "/tmp/x/lock"}, "provision apply --state /srv/st.json --lock-file /tmp/x/lock p.plan"},
		{"daemons and refresh", options{statePath: "/var/lib/provision/state.json", lockPath: "/run/provision/apply.lock", dockerHost: "tcp://d:2375", bus: "unix:path=/run/b", refresh: true},
			"provision apply --docker-host tcp://d:2375 --bus unix:path=/run/b --refresh p.plan"},
		{"quoting", options{statePath: "/srv/my state.json", lockPath: "/run/provision/apply.lock"}, "provision apply --state '/srv/my state.json' p.plan"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.o.applyCommand("p.plan"); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}

	e := newEnv(t, motd)
	planFile := filepath.Join(e.dir, "plan.out")
	code, out := e.run("plan", "--out", planFile, "--lock-file", e.lock, e.spec)
	want := "provision apply --state " + e.state + " --lock-file " + e.lock + " " + planFile
	if code != exitDrift || !strings.Contains(out, "Apply exactly it with: "+want+"\n") {
		t.Fatalf("exit %d, want hint %q:\n%s", code, want, out)
	}
	var buf bytes.Buffer
	if code := run(context.Background(), strings.Fields(want)[1:], strings.NewReader(""), &buf, &buf); code != exitOK {
		t.Fatalf("the printed command failed: %d\n%s", code, buf.String())
	}
}

// TestSavedPlanStateChanged: a saved plan refused because of the state
// file says so, not that the host changed.
func TestSavedPlanStateChanged(t *testing.T) {
	e := newEnv(t, motd)
	first, second := filepath.Join(e.dir, "first.plan"), filepath.Join(e.dir, "second.plan")
	for _, f := range []string{first, second} {
		if code, out := e.run("plan", "--out", f, e.spec); code != exitDrift {
			t.Fatalf("plan: %d\n%s", code, out)
		}
	}
	// Another state file.
	var buf bytes.Buffer
	code := run(context.Background(), []string{"apply", "--state", filepath.Join(e.dir, "other.json"), "--lock-file", e.lock, first}, strings.NewReader(""), &buf, &buf)
	if out := buf.String(); code != exitError || !strings.Contains(out, "the state file changed since the plan") || !strings.Contains(out, "made with --state "+e.state) || strings.Contains(out, "host changed") {
		t.Errorf("other state: exit %d\n%s", code, out)
	}
	// The records changed: another plan was applied since.
	if code, out := e.run("apply", second); code != exitOK {
		t.Fatalf("apply second: %d\n%s", code, out)
	}
	code, out := e.run("apply", first)
	if code != exitError || !strings.Contains(out, "the state file changed since the plan") || !strings.Contains(out, "records of files.example.org changed") {
		t.Errorf("records changed: exit %d\n%s", code, out)
	}
}

// TestHelp: every command's help has examples and its exit codes, names
// PROVISION_VAR_NAME where variables apply, and value names are right;
// Terraform's -help, -version and --version work.
func TestHelp(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		want    []string
		notWant []string
	}{
		{[]string{"--help"}, []string{"Examples:", "Exit status", "PROVISION_VAR_NAME", "show"}, nil},
		{[]string{"-help"}, []string{"Examples:", "Exit status"}, nil},
		{[]string{"plan", "--help"}, []string{"Examples:", "Exit status: 0 no changes, 2 changes pending", "PROVISION_VAR_NAME", "--out FILE ", "--state FILE ", "--var NAME=VALUE ", "--docker-host ADDRESS ", "--bus ADDRESS "}, []string{"--out apply"}},
		{[]string{"plan", "-help"}, []string{"Examples:"}, nil},
		{[]string{"apply", "--help"}, []string{"Examples:", "Exit status: 0 converged", "PROVISION_VAR_NAME", "--lock-file FILE ", "--lock-timeout DURATION "}, nil},
		{[]string{"show", "--help"}, []string{"Examples:", "Exit status", "provision show change.plan"}, nil},
		{[]string{"validate", "--help"}, []string{"Examples:", "Exit status", "PROVISION_VAR_NAME"}, nil},
		{[]string{"fmt", "--help"}, []string{"Examples:", "Exit status", "3 with --check"}, nil},
		{[]string{"version", "--help"}, []string{"Examples:"}, nil},
		{[]string{"completion", "--help"}, []string{"Examples:", "bash_completion.d"}, nil},
		{[]string{"--version"}, []string{"provision "}, []string{"Usage"}},
		{[]string{"-version"}, []string{"provision "}, []string{"Usage"}},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			if code := run(context.Background(), tt.args, strings.NewReader(""), &out, &out); code != exitOK {
				t.Errorf("exit %d:\n%s", code, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out.String(), w) {
					t.Errorf("has %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestFailedPlanKeepsWarnings: warnings found before a plan fails are
// printed with the error, in text and JSON.
func TestFailedPlanKeepsWarnings(t *testing.T) {
	e := newEnv(t, "")
	b, _ := os.ReadFile(e.spec)
	b = bytes.Replace(b, []byte("    image {"), []byte("    persist_home = false\n    certificates = \""+filepath.Join(e.dir, "no-certs")+"\"\n    image {"), 1)
	os.WriteFile(e.spec, b, 0o644)
	for _, args := range [][]string{{"plan", e.spec, "--host", "hub.example.org"}, {"plan", "--json", e.spec, "--host", "hub.example.org"}} {
		code, out := e.run(args...)
		warn, errAt := strings.Index(out, "persist_home = false"), strings.Index(out, "certificates:")
		if code != exitError || warn < 0 || errAt < warn {
			t.Errorf("%v: exit %d, want the warning before the error:\n%s", args, code, out)
		}
		if args[1] == "--json" && !strings.Contains(out, `{"type":"warning","message":"persist_home = false`) {
			t.Errorf("no JSON warning line:\n%s", out)
		}
	}
}

// TestValidateWithoutRequiredValues: validate checks a spec's shape with
// required variables unset; plan needs their values.
func TestValidateWithoutRequiredValues(t *testing.T) {
	e := newEnv(t, `file "motd" {
    path    = "DIR/motd"
    content = var.required
  }`)
	b, _ := os.ReadFile(e.spec)
	os.WriteFile(e.spec, append([]byte("variable \"required\" {\n  type = string\n}\n"), b...), 0o644)
	if code, out := e.run("validate", e.spec); code != 0 {
		t.Errorf("validate without a value: exit %d\n%s", code, out)
	}
	if code, out := e.run("plan", "--host", "files.example.org", e.spec); code != 1 || !strings.Contains(out, "No value for required variable") {
		t.Errorf("plan without a value: exit %d\n%s", code, out)
	}
}

// TestSavedPlanInputsChanged: a saved plan whose file() or env() would now
// read something else than what was reviewed is refused.
func TestSavedPlanInputsChanged(t *testing.T) {
	for _, tt := range []struct {
		name, content string
		change        func(e *env)
		want          string
	}{
		{"file()", `file("DIR/motd.src")`, func(e *env) { os.WriteFile(filepath.Join(e.dir, "motd.src"), []byte("changed\n"), 0o644) }, "file " + "DIR/motd.src changed since the plan"},
		{"env()", `env("PROVISION_TEST_MOTD")`, func(*env) { os.Setenv("PROVISION_TEST_MOTD", "changed") }, "env PROVISION_TEST_MOTD changed since the plan"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PROVISION_TEST_MOTD", "reviewed")
			e := newEnv(t, `file "motd" {
    path    = "DIR/etc/motd"
    content = `+tt.content+`
  }`)
			os.WriteFile(filepath.Join(e.dir, "motd.src"), []byte("reviewed\n"), 0o644)
			planFile := filepath.Join(e.dir, "plan.out")
			if code, out := e.run("plan", "-out", planFile, e.spec); code != exitDrift {
				t.Fatalf("plan -out: %d %s", code, out)
			}
			tt.change(e)
			want := strings.ReplaceAll(tt.want, "DIR", e.dir)
			if code, out := e.run("apply", planFile); code != exitError || !strings.Contains(out, want) {
				t.Fatalf("apply after the input changed: %d\n%s", code, out)
			}
			if _, err := os.Stat(filepath.Join(e.dir, "etc/motd")); err == nil {
				t.Error("the plan was applied")
			}
		})
	}
}

// TestSavedPlanRelativeSpec: a plan made from a relative spec path that
// reads a file relative to it applies from another directory.
func TestSavedPlanRelativeSpec(t *testing.T) {
	e := newEnv(t, `file "motd" {
    path    = "DIR/etc/motd"
    content = file("motd.src")
  }`)
	os.WriteFile(filepath.Join(e.dir, "motd.src"), []byte("reviewed\n"), 0o644)
	t.Chdir(e.dir)
	planFile := filepath.Join(e.dir, "plan.out")
	var out bytes.Buffer
	args := []string{"plan", "--state", e.state, "--host", "files.example.org", "-out", planFile, "host.hcl"}
	if code := run(context.Background(), args, nil, &out, &out); code != exitDrift {
		t.Fatalf("plan: %d\n%s", code, out.String())
	}
	t.Chdir(t.TempDir())
	out.Reset()
	if code := run(context.Background(), []string{"apply", "--state", e.state, "--lock-file", e.lock, planFile}, nil, &out, &out); code != exitOK {
		t.Fatalf("apply from another directory: %d\n%s", code, out.String())
	}
}
