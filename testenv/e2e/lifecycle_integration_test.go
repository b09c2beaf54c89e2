//go:build integration

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// starts counts how often the unit has been started since boot.
func (h Host) starts(t *testing.T, ctx context.Context) int {
	t.Helper()
	out := h.sh(t, ctx, "journalctl -q --no-pager -o cat -u "+unitName+" | grep -c '^Started ' || true")
	n, _ := strconv.Atoi(out)
	return n
}

// TestUpgradeRollback switches the image to a new tar (one apply: load,
// new script, one restart, the previous image kept), then to a broken one
// (apply fails, the previous version runs and answers again).
func TestUpgradeRollback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h, v1 := newHost(t)
	h.provision(t, ctx, 0, "apply", JupyterHubHost)
	if _, _, err := h.WriteImage("2", false, 0); err != nil {
		t.Fatal(err)
	}

	before := h.starts(t, ctx)
	r := h.provision(t, ctx, 0, "apply", JupyterHubHost, "-var", "image_version=2")
	if !strings.Contains(r.Stdout, "jupyterhub-standin-2.tar") {
		t.Errorf("upgrade did not load the new tar:\n%s", r)
	}
	if n := h.starts(t, ctx) - before; n != 1 {
		t.Errorf("upgrade started the unit %d times, want once:\n%s", n, r)
	}
	if page := h.page(t, ctx); !strings.Contains(page, "standin version: 2\n") {
		t.Errorf("after the upgrade the page is:\n%s", page)
	}
	if script, _ := h.ReadFile(startScript); !strings.Contains(script, ImageRepo+":2") {
		t.Errorf("start script does not run version 2:\n%s", script)
	}
	if r, _ := h.Run(ctx, "docker", "image", "inspect", v1); r.Code != 0 {
		t.Errorf("the previous image %s is gone after the upgrade:\n%s", v1, r)
	}
	h.provision(t, ctx, 0, "plan", JupyterHubHost, "-var", "image_version=2")

	// Rollback: version 3 exits at once.
	if _, _, err := h.WriteImage("3", true, 0); err != nil {
		t.Fatal(err)
	}
	r = h.provision(t, ctx, 1, "apply", JupyterHubHost, "-var", "image_version=3", "-var", "health_timeout=15s")
	t.Logf("failed upgrade took %s", r.Took)
	if page := h.page(t, ctx); !strings.Contains(page, "standin version: 2\n") {
		t.Errorf("after the failed upgrade the page is:\n%s", page)
	}
	if script, _ := h.ReadFile(startScript); !strings.Contains(script, ImageRepo+":2") || strings.Contains(script, ImageRepo+":3") {
		t.Errorf("start script is not back to version 2:\n%s", script)
	}
	if got := h.sh(t, ctx, "systemctl is-active "+unitName); got != "active" {
		t.Errorf("unit is %s after the rollback", got)
	}
}

// TestConcurrentApply starts two applies at once on a fresh server: one
// waits for the other's lock, both succeed, the host ends converged.
func TestConcurrentApply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h, _ := newHost(t)
	var wg sync.WaitGroup
	results := make([]Result, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = h.Provision(ctx, append(append([]string{"apply"}, HostArgs(JupyterHubHost)...), SpecPath)...)
		}()
	}
	wg.Wait()
	waited := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if r.Code != 0 {
			t.Errorf("apply %d exited %d:\n%s", i, r.Code, r)
		}
		if strings.Contains(r.Stderr, "Waiting for another provision apply") {
			waited++
			if !strings.Contains(r.Stdout, "No changes.") {
				t.Errorf("the apply that waited still found changes:\n%s", r)
			}
		}
	}
	if waited != 1 {
		t.Errorf("%d applies waited for the lock, want 1:\n%s\n%s", waited, results[0], results[1])
	}
	h.plan(t, ctx, 0, JupyterHubHost)
}

// files hashes the files provision manages on the server.
func (h Host) files() string {
	var b strings.Builder
	for _, p := range []string{startScript, unitPath, ProfilePath, StatePath} {
		c, err := os.ReadFile(h.Path(p))
		sum := sha256.Sum256(c)
		fmt.Fprintf(&b, "%s %s %v\n", p, hex.EncodeToString(sum[:8]), err != nil)
	}
	return b.String()
}

// snapshot is everything provision manages on the server, for "unchanged".
func (h Host) snapshot(t *testing.T, ctx context.Context) string {
	t.Helper()
	return h.files() + h.sh(t, ctx, strings.Join([]string{
		"docker ps -a --format '{{.Names}} {{.ID}} {{.Image}} {{.State}}'",
		"docker images --format '{{.Repository}}:{{.Tag}} {{.ID}}' | sort",
		"firewall-cmd --zone=public --list-rich-rules",
		"firewall-cmd --permanent --zone=public --list-rich-rules",
		"firewall-cmd --direct --get-all-rules",
		"systemctl is-enabled " + unitName + " || true",
	}, "; "))
}

// TestBadInput feeds a converged server bad input: each gets exit 1, a
// clear error, and leaves the host as it was.
func TestBadInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h, _ := newHost(t)
	h.converge(t, ctx)
	if err := h.WriteFile("/etc/provision/bad.hcl", []byte("deployment \"x\" {\n  openbis_host = \n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.WriteFile(ImageDir+"/jupyterhub-standin-corrupt.tar", []byte(strings.Repeat("not a tar\n", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	apply := func(extra ...string) []string {
		return append(append(append([]string{"apply"}, HostArgs(JupyterHubHost)...), extra...), SpecPath)
	}
	cases := []struct {
		name string
		args []string
		says string
	}{
		{"malformed spec", []string{"apply", "--host", JupyterHubHost, "/etc/provision/bad.hcl"}, "bad.hcl line 2"},
		{"missing image tar", apply("-var", "image_version=missing"), "jupyterhub-standin-missing.tar"},
		{"corrupt image tar", apply("-var", "image_version=corrupt"), "jupyterhub-standin-corrupt.tar"},
		{"unreachable dockerd", apply("--docker-host", "unix:///run/no-docker.sock"), "no-docker.sock"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := h.snapshot(t, ctx)
			r, err := h.Provision(ctx, c.args...)
			if err != nil {
				t.Fatal(err)
			}
			if r.Code != 1 || !strings.Contains(r.Stdout+r.Stderr, c.says) {
				t.Errorf("want exit 1 and an error naming %q:\n%s", c.says, r)
			}
			if after := h.snapshot(t, ctx); after != before {
				t.Errorf("host changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}

	// A stopped dockerd is a fresh server's state: plan names the service
	// (and reads the image and container once it runs), apply starts it.
	t.Run("stopped dockerd", func(t *testing.T) {
		h.sh(t, ctx, "systemctl stop docker.socket docker.service")
		p := h.plan(t, ctx, 2, JupyterHubHost)
		if ch, ok := p.Change("systemd_service.docker"); !ok || !strings.Contains(ch.Text(), "not running") {
			t.Errorf("plan does not name the stopped docker service:\n%v", p.Changed())
		}
		h.provision(t, ctx, 0, "apply", JupyterHubHost)
		if got := h.sh(t, ctx, "systemctl is-active docker.service || true"); got != "active" {
			t.Errorf("docker.service is %q after apply", got)
		}
		h.plan(t, ctx, 0, JupyterHubHost)
	})

	// A daemon that is missing: apply must fail clearly, leave the files as
	// they were and the daemon down.
	daemons := []struct {
		name, stop, start, state, says string
	}{
		{"missing firewalld", "systemctl stop firewalld.service && mv /lib/systemd/system/firewalld.service /root/ && systemctl daemon-reload",
			"mv /root/firewalld.service /lib/systemd/system/ && systemctl daemon-reload && systemctl start firewalld.service",
			"systemctl is-active firewalld.service || true", "install firewalld"},
	}
	for _, d := range daemons {
		t.Run(d.name, func(t *testing.T) {
			h.sh(t, ctx, d.stop)
			before, state := h.files(), h.sh(t, ctx, d.state)
			r, err := h.Provision(ctx, apply()...)
			if err != nil {
				t.Fatal(err)
			}
			if r.Code != 1 || !strings.Contains(r.Stdout+r.Stderr, d.says) {
				t.Errorf("want exit 1 and an error naming %q:\n%s", d.says, r)
			}
			if after := h.files(); after != before {
				t.Errorf("files changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if got := h.sh(t, ctx, d.state); got != state {
				t.Errorf("daemon went from %s to %s", state, got)
			}
			h.sh(t, ctx, d.start)
			h.provision(t, ctx, 0, "apply", JupyterHubHost)
			h.plan(t, ctx, 0, JupyterHubHost)
		})
	}
}

// TestCrashSafety kills `provision apply` with SIGKILL at random moments
// of a converge (an upgrade or a downgrade of the image, which loads,
// rewrites the script and restarts), 30 times. After each kill no managed
// file is half-written, and the next apply converges.
func TestCrashSafety(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	h, _ := newHost(t)
	if _, _, err := h.WriteImage("2", false, 0); err != nil {
		t.Fatal(err)
	}
	// The complete versions of every file provision writes.
	whole := map[string]map[string]bool{startScript: {}, unitPath: {}, ProfilePath: {InstanceProfile: true}}
	record := func() {
		for p := range whole {
			if s, err := h.ReadFile(p); err == nil {
				whole[p][s] = true
			}
		}
	}
	version := func(i int) []string { return []string{"-var", "image_version=" + strconv.Itoa(1+i%2)} }
	// The warm-up converges measure how long a switch of the image and a
	// patch of the profile take here, so the kills land inside them.
	var hubSpan, profileSpan time.Duration
	for i := 0; i < 2; i++ {
		start := time.Now()
		h.provision(t, ctx, 0, "apply", JupyterHubHost, version(i)...)
		hubSpan = max(hubSpan, time.Since(start))
		start = time.Now()
		h.provision(t, ctx, 0, "apply", OpenBISHost)
		profileSpan = max(profileSpan, time.Since(start))
		record()
	}
	t.Logf("an image switch took %s, a profile patch %s", hubSpan, profileSpan)
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill delays seeded with %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	const kills = 30
	last := "2" // the version the JupyterHub host runs
	landed := 0
	for i := 0; i < kills; i++ {
		host := JupyterHubHost
		if i%5 == 4 {
			host = OpenBISHost
			if err := h.WriteFile(ProfilePath, []byte(InstanceProfile), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// Kill anywhere in the converge.
		span := hubSpan
		if host == OpenBISHost {
			span = profileSpan
		}
		delay := time.Duration(rng.Int64N(int64(span)))
		if h.killedApply(t, ctx, delay, append(append([]string{"apply"}, HostArgs(host)...), append(version(i), SpecPath)...)) {
			landed++
		}
		for p, ok := range whole {
			s, err := h.ReadFile(p)
			if err == nil && !ok[s] {
				t.Errorf("kill %d after %s: %s is none of its complete versions:\n%s", i, delay, p, s)
			}
		}
		var st map[string]any
		if b, err := os.ReadFile(h.Path(StatePath)); err == nil {
			if err := json.Unmarshal(b, &st); err != nil {
				t.Errorf("kill %d after %s: state file is not JSON: %v", i, delay, err)
			}
		}
		h.provision(t, ctx, 0, "apply", host, version(i)...)
		h.provision(t, ctx, 0, "plan", host, version(i)...)
		if host == JupyterHubHost {
			last = strconv.Itoa(1 + i%2)
		}
	}
	t.Logf("%d of %d kills landed while apply ran", landed, kills)
	// A kill between writing a temporary file and renaming it leaves the
	// temporary file; it is never a managed file, so only report it.
	if left := h.sh(t, ctx, "find /usr/local/bin /etc/systemd/system /var/lib/provision "+filepath.Dir(ProfilePath)+" -name '.provision-tmp-*'"); left != "" {
		t.Logf("temporary files left by killed applies:\n%s", left)
	}
	if landed < kills/2 {
		t.Errorf("only %d of %d kills landed while apply ran: the delays miss the converge", landed, kills)
	}
	if page := h.page(t, ctx); !strings.Contains(page, "standin version: "+last+"\n") {
		t.Errorf("after the last converge the page is:\n%s", page)
	}
}

// killedApply starts provision with args and SIGKILLs it after delay (if
// it still runs). provision is nsenter's child: nsenter forks into the
// server's pid namespace, so the kill goes to that child.
func (h Host) killedApply(t *testing.T, ctx context.Context, delay time.Duration, args []string) (killed bool) {
	t.Helper()
	cmd := h.Command(ctx, append([]string{BinPath}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
		return false
	case <-time.After(delay):
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			killed = syscall.Kill(pid, syscall.SIGKILL) == nil || killed
		}
	}
	<-done
	return killed
}
