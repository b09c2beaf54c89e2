package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openbis/provision/internal/remote"
)

// TestMain lets the test binary play the host's provision: the fleet
// tests copy it to the fake host's cache, which runs it as __remote.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == remote.Command {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// fakeSSH is an ssh client that runs the command on this machine, with the
// binary cache moved into the test's directory, and fails like ssh for
// the destination "down.example.org".
func fakeSSH(t *testing.T, dir string) (cache string) {
	cache = filepath.Join(dir, "cache")
	script := `#!/bin/sh
while [ "$1" != "--" ]; do shift; done
dest=$2 cmd=$3
echo "$dest" >>` + dir + `/ssh.log
if [ "$dest" = down.example.org ]; then echo "ssh: connect to host down.example.org port 22: Connection refused" >&2; exit 255; fi
if [ "$dest" = silent.example.org ]; then cat >/dev/null; exit 0; fi
if [ "$dest" = odd.example.org ]; then exit 127; fi
exec sh -c "$(printf %s "$cmd" | sed "s|` + remote.BinDir + `|` + cache + `|g")"
`
	prog := filepath.Join(dir, "ssh")
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PROVISION_SSH", prog)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "xdg"))
	return cache
}

func TestFleetOverSSH(t *testing.T) {
	e := newEnv(t, `
  ssh { destination = "root@files.example.org" }
  file "motd" {
    path    = "DIR/motd"
    content = file("motd.txt")
  }`)
	// file() reads on this machine, the admin's: the host gets the bytes.
	if err := os.WriteFile(filepath.Join(e.dir, "motd.txt"), []byte("from the admin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := fakeSSH(t, e.dir)
	args := func(cmd string, more ...string) []string {
		return append([]string{cmd, "--host", "files.example.org", "--state", e.state, "--lock-file", e.lock}, append(more, e.spec)...)
	}
	run := func(a []string) (int, string) {
		var out strings.Builder
		code := run(context.Background(), a, strings.NewReader(""), &out, &out)
		return code, out.String()
	}

	code, out := run(args("plan"))
	if code != exitDrift || !strings.Contains(out, "copying provision") || !strings.Contains(out, "file.motd will be created") {
		t.Fatalf("first plan: exit %d\n%s", code, out)
	}
	bins, _ := filepath.Glob(filepath.Join(cache, "provision-*"))
	if len(bins) != 1 {
		t.Fatalf("cache holds %v", bins)
	}
	if st, err := os.Stat(bins[0]); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("cached binary: %v %v", st.Mode(), err)
	}

	t.Logf("first plan:\n%s", out)
	code, out = run(args("apply"))
	t.Logf("apply:\n%s", out)
	if code != exitOK || !strings.Contains(out, "Apply complete!") || strings.Contains(out, "copying") {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "motd")); string(b) != "from the admin\n" {
		t.Fatalf("motd = %q", b)
	}
	if code, out = run(args("plan")); code != exitOK || !strings.Contains(out, "No changes. Host files.example.org matches the spec.") {
		t.Fatalf("converged plan: exit %d\n%s", code, out)
	}

	// JSON lines carry the host.
	code, out = run(args("plan", "--json"))
	var l struct{ Type, Host string }
	last := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(last[len(last)-1]), &l); code != exitOK || err != nil || l.Type != "summary" || l.Host != "files.example.org" {
		t.Fatalf("--json: exit %d, %+v %v\n%s", code, l, err, out)
	}

	// A copy that does not match its hash is replaced.
	if err := os.WriteFile(bins[0], []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if code, out = run(args("plan")); code != exitOK || !strings.Contains(out, "copying provision") {
		t.Fatalf("plan after corrupting the cache: exit %d\n%s", code, out)
	}

	// A saved plan of a host reached through SSH applies through it.
	planFile := filepath.Join(e.dir, "change.plan")
	os.WriteFile(filepath.Join(e.dir, "motd.txt"), []byte("changed\n"), 0o644)
	if code, out = run(args("plan", "--out", planFile)); code != exitDrift {
		t.Fatalf("plan --out: exit %d\n%s", code, out)
	}
	if code, out = run([]string{"apply", "--state", e.state, "--lock-file", e.lock, planFile}); code != exitOK || !strings.Contains(out, "Apply complete!") {
		t.Fatalf("apply saved: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "motd")); string(b) != "changed\n" {
		t.Fatalf("motd = %q", b)
	}
}

// TestFleetSavedPlan: plan --out of hosts reached through SSH saves every
// host's plan in one file, show prints it without any host, and apply
// refuses it once a host changed.
func TestFleetSavedPlan(t *testing.T) {
	e := newEnv(t, `
  ssh { destination = "files.example.org" }
  file "motd" {
    path    = "DIR/motd"
    content = file("motd.txt")
  }`)
	fakeSSH(t, e.dir)
	os.WriteFile(filepath.Join(e.dir, "motd.txt"), []byte("planned"), 0o644)
	planFile := filepath.Join(e.dir, "all.plan")
	var out strings.Builder
	do := func(args ...string) int {
		out.Reset()
		return run(context.Background(), args, strings.NewReader(""), &out, &out)
	}
	if code := do("plan", "--host", "files.example.org", "--state", e.state, "--out", planFile, e.spec); code != exitDrift {
		t.Fatalf("plan --out: exit %d\n%s", code, out.String())
	}
	if st, err := os.Stat(planFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("plan file: %v", err)
	}
	if code := do("show", planFile); code != exitOK || !strings.Contains(out.String(), "# file.motd will be created") {
		t.Fatalf("show: exit %d\n%s", code, out.String())
	}
	// What file() read changed since.
	os.WriteFile(filepath.Join(e.dir, "motd.txt"), []byte("other"), 0o644)
	if code := do("apply", "--state", e.state, "--lock-file", e.lock, planFile); code != exitError || !strings.Contains(out.String(), "motd.txt changed since the plan") {
		t.Fatalf("apply with other inputs: exit %d\n%s", code, out.String())
	}
	os.WriteFile(filepath.Join(e.dir, "motd.txt"), []byte("planned"), 0o644)
	// The host changes behind the plan's back.
	os.WriteFile(filepath.Join(e.dir, "motd"), []byte("by hand"), 0o644)
	if code := do("apply", "--state", e.state, "--lock-file", e.lock, planFile); code != exitError || !strings.Contains(out.String(), "the host changed since the plan was made") {
		t.Fatalf("stale apply: exit %d\n%s", code, out.String())
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "motd")); string(b) != "by hand" {
		t.Errorf("a refused plan changed the host: %q", b)
	}
}

// A host that cannot be reached, answers no plan or exits oddly is a
// failure named as such: plan does not count it as converged, and apply
// touches no host.
func TestFleetOddHosts(t *testing.T) {
	for _, tt := range []struct{ dest, want string }{
		{"down.example.org", "host files.example.org (ssh down.example.org): cannot reach it over SSH: ssh: connect to host down.example.org port 22: Connection refused"},
		{"silent.example.org", "no plan came back"},
		{"odd.example.org", "provision exited with 127"},
	} {
		t.Run(tt.dest, func(t *testing.T) {
			e := newEnv(t, `
  ssh { destination = "`+tt.dest+`" }
  file "motd" {
    path    = "DIR/motd"
    content = "x"
  }`)
			fakeSSH(t, e.dir)
			for _, cmd := range []string{"plan", "apply"} {
				var out strings.Builder
				code := run(context.Background(), []string{cmd, "--host", "files.example.org", "--state", e.state, "--lock-file", e.lock, e.spec}, strings.NewReader(""), &out, &out)
				if code != exitError || !strings.Contains(out.String(), tt.want) {
					t.Errorf("%s: exit %d\n%s", cmd, code, out.String())
				}
			}
			if _, err := os.Stat(filepath.Join(e.dir, "motd")); !os.IsNotExist(err) {
				t.Errorf("apply touched the host: %v", err)
			}
		})
	}
}
