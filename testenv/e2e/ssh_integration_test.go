//go:build integration

package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAdminOverSSH: an admin in a namespace of its own, with real OpenSSH
// to two fresh servers that have no provision, runs plan and apply --all
// of examples/demo.hcl. An unknown host key is refused and nothing is
// changed; one apply bootstraps both hosts, the JupyterHub host first, and
// a user creates a notebook; plans exit 0 and 2 across hosts; a saved plan
// covers both; a host with another provision binary gets this one; an
// unreachable host stops apply before any host changes; two admins
// applying at once wait on each host's lock.
func TestAdminOverSSH(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	w, err := NewWorld(ctx, WorldOptions{Users: []string{"admin", "admin2", "alice"}, Log: os.Stderr})
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// The admin knows only the JupyterHub server's key at first.
	adm, err := w.NewAdmin(ctx, "admin", t.TempDir(), provisionBin, []string{WorldHub})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := adm.Close(); err != nil {
			t.Error(err)
		}
	})
	spec, err := w.Spec("")
	if err != nil {
		t.Fatal(err)
	}
	specPath, err := adm.WriteSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	provision := func(a *Admin, want int, args ...string) Result {
		t.Helper()
		r, err := a.Provision(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		if r.Code != want {
			t.Fatalf("want exit %d:\n%s", want, r)
		}
		return r
	}
	has := func(r Result, wants ...string) {
		t.Helper()
		for _, want := range wants {
			if !strings.Contains(r.Stdout+r.Stderr, want) {
				t.Errorf("no %q in:\n%s", want, r)
			}
		}
	}
	const script = "/usr/local/bin/jupyterhub-openbis-start.sh"
	sum := fileSum(t, provisionBin)
	cached := "/var/lib/provision/bin/provision-" + sum

	// An unknown host key: refused, named, the other host still planned,
	// and apply changes nothing.
	r := provision(adm, 1, "plan", "--all", specPath)
	has(r, "provision will perform the following actions on "+WorldHub, "host "+WorldOpenBIS+": cannot reach it over SSH", "Host key verification failed", "provision checks host keys strictly")
	r = provision(adm, 1, "apply", "--all", specPath)
	has(r, "no host was changed, because of "+WorldOpenBIS)
	if _, err := w.Hub.ReadFile(script); !os.IsNotExist(err) {
		t.Fatalf("apply changed the JupyterHub host although openBIS was not reachable: %v", err)
	}

	// One apply bootstraps both: the JupyterHub host first, healthy, then
	// the openBIS host's profile. Neither had provision before.
	if err := adm.Trust(WorldOpenBIS, adm.HostKeys[WorldOpenBIS]); err != nil {
		t.Fatal(err)
	}
	r = provision(adm, 0, "apply", "--all", specPath)
	has(r, WorldOpenBIS+": copying provision", "systemd_unit.jupyterhub: checking…", "Apply complete!")
	if hub, ob := strings.Index(r.Stdout, "actions on "+WorldHub), strings.Index(r.Stdout, "actions on "+WorldOpenBIS); hub < 0 || ob < hub {
		t.Errorf("the openBIS host was not applied after the JupyterHub host:\n%s", r)
	}
	for _, h := range []Host{w.Hub, w.OpenBIS} {
		if out, err := h.Exec(ctx, "sh", "-c", "echo '"+sum+"  "+cached+"' | sha256sum -c && stat -c '%U %a' "+cached+" /var/lib/provision/bin"); err != nil || !strings.Contains(string(out), "root 755\nroot 755") {
			t.Errorf("the cached binary on a host: %v\n%s", err, out)
		}
	}
	if status, url, err := w.Notebook(ctx, "alice", "over-ssh", "", time.Minute); err != nil || !strings.Contains(url, "/user/alice/notebooks/openbis/over-ssh.ipynb") {
		t.Fatalf("after apply --all, the browser ended on %q (status %q, %v)", url, status, err)
	}

	// Converged: exit 0 across hosts; JSON lines carry the host.
	r = provision(adm, 0, "plan", "--all", specPath)
	has(r, "No changes. Host "+WorldHub+" matches the spec.", "No changes. Host "+WorldOpenBIS+" matches the spec.", "2 hosts: 0 with changes pending, 2 matching the spec.")
	r = provision(adm, 0, "plan", "--all", "--json", specPath)
	summaries := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(r.Stdout))
	for sc.Scan() {
		var l struct{ Type, Host string }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Host == "" {
			t.Errorf("JSON line without a host: %q (%v)", sc.Text(), err)
		}
		if l.Type == "summary" {
			summaries[l.Host] = true
		}
	}
	if !summaries[WorldHub] || !summaries[WorldOpenBIS] {
		t.Errorf("summaries of %v:\n%s", summaries, r)
	}

	// Drift on one host: exit 2. A saved plan covers both and applies.
	profile, err := w.OpenBIS.ReadFile(ELNRoot + "/etc/InstanceProfile.js")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.OpenBIS.WriteFile(ELNRoot+"/etc/InstanceProfile.js", []byte(InstanceProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	r = provision(adm, 2, "plan", "--all", specPath)
	has(r, "No changes. Host "+WorldHub, "eln_profile.instance_profile will be updated", "2 hosts: 1 with changes pending")
	planFile := filepath.Join(adm.Dir, "change.plan")
	provision(adm, 2, "plan", "--all", "--out", planFile, specPath)
	has(provision(adm, 0, "show", planFile), "No changes. Host "+WorldHub, "actions on "+WorldOpenBIS)
	provision(adm, 0, "apply", planFile)
	if got, _ := w.OpenBIS.ReadFile(ELNRoot + "/etc/InstanceProfile.js"); got != profile {
		t.Errorf("the saved plan did not patch the profile back:\n%s", got)
	}

	// A host with another (older) provision gets this one; the old one is
	// kept among the last three.
	old := filepath.Join(t.TempDir(), "provision-old")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-X main.version=0.0.1-old", "-o", old, "./cmd/provision")
	build.Dir, build.Env = repoRoot(t), append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build an older provision: %v\n%s", err, out)
	}
	oldBin, err := os.ReadFile(old)
	if err != nil {
		t.Fatal(err)
	}
	oldCached := "/var/lib/provision/bin/provision-" + fileSum(t, old)
	if err := w.OpenBIS.WriteFile(oldCached, oldBin, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := w.OpenBIS.Exec(ctx, "rm", cached); err != nil {
		t.Fatal(err)
	}
	r = provision(adm, 0, "plan", "--all", specPath)
	has(r, WorldOpenBIS+": copying provision")
	if strings.Contains(r.Stderr, WorldHub+": copying") {
		t.Errorf("the JupyterHub host got a binary it had:\n%s", r)
	}
	if out, err := w.OpenBIS.Exec(ctx, "sh", "-c", "echo '"+sum+"  "+cached+"' | sha256sum -c && ls "+oldCached); err != nil {
		t.Errorf("after the upgrade: %v\n%s", err, out)
	}

	// An unreachable host: plan shows the other and names it; apply
	// changes neither.
	if out, err := adm.SSH(ctx, "-O", "exit", WorldOpenBIS).CombinedOutput(); err != nil {
		t.Logf("stop the master connection to openBIS: %v %s", err, out)
	}
	if _, err := w.OpenBIS.Exec(ctx, "systemctl", "stop", "ssh.service"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Hub.Exec(ctx, "rm", script); err != nil {
		t.Fatal(err)
	}
	r = provision(adm, 1, "plan", "--all", specPath)
	has(r, "# file.start_script will be created", "host "+WorldOpenBIS+": cannot reach it over SSH", "Connection refused")
	r = provision(adm, 1, "apply", "--all", specPath)
	has(r, "no host was changed, because of "+WorldOpenBIS)
	if _, err := w.Hub.ReadFile(script); !os.IsNotExist(err) {
		t.Fatalf("apply changed the JupyterHub host although openBIS was unreachable: %v", err)
	}
	if _, err := w.OpenBIS.Exec(ctx, "systemctl", "start", "ssh.service"); err != nil {
		t.Fatal(err)
	}

	// Two admins at once, while something else holds the JupyterHub
	// host's lock for a moment: both wait, both converge, and the host is
	// changed once.
	adm2, err := adm.Another(ctx, w, "admin2", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := adm2.Close(); err != nil {
			t.Error(err)
		}
	})
	spec2, err := adm2.WriteSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	holder := w.Hub.Command(ctx, "flock", "/run/provision/apply.lock", "sleep", "3")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	var wg sync.WaitGroup
	results := make([]Result, 2)
	for i, a := range []*Admin{adm, adm2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := specPath
			if i == 1 {
				p = spec2
			}
			results[i], _ = a.Provision(ctx, "apply", "--all", p)
		}()
	}
	wg.Wait()
	holder.Wait()
	created := 0
	for _, r := range results {
		if r.Code != 0 {
			t.Errorf("a concurrent apply failed:\n%s", r)
		}
		has(r, "Waiting for another provision apply")
		created += strings.Count(r.Stdout, "file.start_script: create…")
	}
	if created != 1 {
		t.Errorf("the start script was created %d times by two admins", created)
	}
	provision(adm, 0, "plan", "--all", specPath)
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
