//go:build integration

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openbis/provision/testenv/freshserver"
)

// provisionBin is the provision binary TestMain builds for every server.
var provisionBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: the end-to-end tests boot systemd-nspawn servers and need root (sudo go test -tags integration ./testenv/e2e)")
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	repo, err := RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "provision-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	provisionBin = filepath.Join(dir, "provision")
	if err := BuildProvision(ctx, repo, provisionBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	// Build the cached root file system once, before the tests' timeouts run.
	rootfs := os.Getenv("PROVISION_TEST_ROOTFS")
	if rootfs == "" {
		rootfs = freshserver.DefaultRootfs
	}
	if err := freshserver.EnsureRootfs(ctx, rootfs, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// newHost boots a fresh server for t (powered off when t ends, also on
// failure) with provision, the demo spec, the ELN profile and the version 1
// image tar in it.
func newHost(t *testing.T) (Host, string) {
	t.Helper()
	repo, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	h, err := Install(freshserver.Start(t, freshserver.Options{}), provisionBin, filepath.Join(repo, "testenv/e2e/standin.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	_, id, err := h.WriteImage("1", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	return h, id
}

// provision runs `provision VERB` for host of the demo spec with extra
// flags and fails t unless it exits want.
func (h Host) provision(t *testing.T, ctx context.Context, want int, verb, host string, extra ...string) Result {
	t.Helper()
	args := append([]string{verb}, HostArgs(host)...)
	args = append(append(args, extra...), SpecPath)
	r, err := h.Provision(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != want {
		t.Fatalf("exit %d, want %d:\n%s", r.Code, want, r)
	}
	return r
}

// plan runs `provision plan --json` for host and fails t unless it exits want.
func (h Host) plan(t *testing.T, ctx context.Context, want int, host string) JSONPlan {
	t.Helper()
	r := h.provision(t, ctx, want, "plan", host, "--json")
	p, err := ParsePlan(r.Stdout)
	if err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	return p
}

// sh runs a shell command inside the server and fails t if it fails.
func (h Host) sh(t *testing.T, ctx context.Context, script string) string {
	t.Helper()
	r, err := h.Run(ctx, "sh", "-ec", script)
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != 0 {
		t.Fatalf("%s", r)
	}
	return strings.TrimSpace(r.Stdout)
}

// converge applies both hosts and checks that a plan then finds nothing.
func (h Host) converge(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, host := range []string{JupyterHubHost, OpenBISHost} {
		h.provision(t, ctx, 0, "apply", host)
	}
	for _, host := range []string{JupyterHubHost, OpenBISHost} {
		h.plan(t, ctx, 0, host)
	}
}

// page returns the stand-in's page on port 8000, waiting up to 60 s.
func (h Host) page(t *testing.T, ctx context.Context) string {
	t.Helper()
	gctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	body, err := h.Get(gctx, "http://127.0.0.1:8000/")
	if err != nil {
		t.Fatal(err)
	}
	return body
}

const (
	unitName      = "jupyterhub-openbis.service"
	containerName = "jupyterhub-openbis"
	startScript   = "/usr/local/bin/jupyterhub-openbis-start.sh"
	unitPath      = "/etc/systemd/system/" + unitName
	// richRule opens the communication port of testenv/e2e/standin.hcl to the
	// users (anywhere), as firewalld normalises it, and ruleAddr is its
	// resource.
	richRule = `rule port port="8002" protocol="tcp" accept`
	ruleAddr = "firewalld_rich_rule.comm_8002"
)

// TestBootstrap converges a fresh server in one apply per host and checks
// every piece on the host itself, then that a second apply changes nothing.
func TestBootstrap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h, imageID := newHost(t)

	p := h.plan(t, ctx, 2, JupyterHubHost)
	for _, addr := range []string{ruleAddr, "docker_image.jupyterhub", "file.start_script", "systemd_unit.jupyterhub"} {
		if _, ok := p.Change(addr); !ok {
			t.Errorf("first plan has no change for %s; changes: %v", addr, p.Changed())
		}
	}
	r := h.provision(t, ctx, 0, "apply", JupyterHubHost)
	t.Logf("first apply of %s took %s", JupyterHubHost, r.Took)

	id := h.sh(t, ctx, "docker image inspect -f '{{.Id}}' "+ImageRepo+":1")
	if id != imageID {
		t.Errorf("loaded image ID %s, want the tar's %s", id, imageID)
	}
	for _, perm := range []string{"", "--permanent "} {
		h.sh(t, ctx, "firewall-cmd -q "+perm+"--zone=public --query-rich-rule='"+richRule+"'")
	}
	script, err := h.ReadFile(startScript)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{ImageRepo + ":1", "OPENBIS_URL=https://openbis.demo.internal:8443", "-p 8002:8002"} {
		if !strings.Contains(script, want) {
			t.Errorf("start script lacks %q:\n%s", want, script)
		}
	}
	if got := h.sh(t, ctx, "systemctl is-enabled "+unitName+"; systemctl is-active "+unitName); got != "enabled\nactive" {
		t.Errorf("unit is %q, want enabled and active", got)
	}
	if got := h.sh(t, ctx, "docker inspect -f '{{.Config.Image}} {{.State.Running}}' "+containerName); got != ImageRepo+":1 true" {
		t.Errorf("container: %q, want %s running", got, ImageRepo+":1")
	}
	page := h.page(t, ctx)
	for _, want := range []string{
		"standin version: 1",
		"OPENBIS_URL=https://openbis.demo.internal:8443",
		"CERTIFICATE_KEY=/vagrant/config/certificates/default.key",
		"CERTIFICATE_CRT=/vagrant/config/certificates/default.crt",
		"JUPYTERHUB_INTEGRATION_SERVICE_PORT=8002",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("stand-in page lacks %q:\n%s", want, page)
		}
	}

	h.provision(t, ctx, 0, "apply", OpenBISHost)
	profile, err := h.ReadFile(ProfilePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`this.jupyterIntegrationServerEndpoint = "https://jupyterhub.demo.internal:8002";`,
		`this.jupyterEndpoint = "https://jupyterhub.demo.internal:8000/";`,
		"this.hideSectionsByDefault = true;",
	} {
		if !strings.Contains(profile, want) {
			t.Errorf("InstanceProfile.js lacks %q:\n%s", want, profile)
		}
	}

	for _, host := range []string{JupyterHubHost, OpenBISHost} {
		r := h.provision(t, ctx, 0, "apply", host)
		if !strings.Contains(r.Stdout, "No changes.") {
			t.Errorf("second apply of %s did something:\n%s", host, r)
		}
		h.plan(t, ctx, 0, host)
	}

	t.Run("hourly drift check", func(t *testing.T) {
		repo, err := RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		if err := h.InstallDriftCheck(filepath.Join(repo, "examples"), JupyterHubHost); err != nil {
			t.Fatal(err)
		}
		h.sh(t, ctx, "systemctl daemon-reload && systemctl enable -q --now provision-plan.timer && systemctl start provision-plan.service")
		if got := h.sh(t, ctx, "systemctl is-active provision-plan.timer"); got != "active" {
			t.Errorf("timer is %s", got)
		}
		h.sh(t, ctx, "sed -i 's|OPENBIS_URL=[^ ]*|OPENBIS_URL=https://elsewhere.example|' "+startScript)
		if r, _ := h.Run(ctx, "systemctl", "start", "provision-plan.service"); r.Code == 0 {
			t.Errorf("the drift check succeeded on a drifted host:\n%s", r)
		}
		if got := h.sh(t, ctx, "systemctl --failed --no-legend --plain | cut -d' ' -f1"); !strings.Contains(got, "provision-plan.service") {
			t.Errorf("systemctl --failed lists %q, want provision-plan.service", got)
		}
		if got := h.sh(t, ctx, "journalctl -q --no-pager -o cat -u provision-plan.service"); !strings.Contains(got, "file.start_script") {
			t.Errorf("the journal of the check does not name the drifted file:\n%s", got)
		}
		h.provision(t, ctx, 0, "apply", JupyterHubHost)
		h.sh(t, ctx, "systemctl start provision-plan.service")
	})
}

// driftCase is one hand-made change to a converged server.
type driftCase struct {
	name   string
	host   string
	mutate func(t *testing.T, ctx context.Context, h Host)
	// changed is what the plan must name: exactly these addresses differ.
	changed []string
	// says is a substring of what the change of changed[0] reports.
	says string
	// also may differ as a direct consequence: the container and its unit
	// are two resources, so stopping one stops the other.
	also []string
}

func shell(script string) func(*testing.T, context.Context, Host) {
	return func(t *testing.T, ctx context.Context, h Host) { h.sh(t, ctx, script) }
}

func editProfile(old, new string) func(*testing.T, context.Context, Host) {
	return func(t *testing.T, ctx context.Context, h Host) {
		s, err := h.ReadFile(ProfilePath)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(s, old) {
			t.Fatalf("profile lacks %q:\n%s", old, s)
		}
		if err := h.WriteFile(ProfilePath, []byte(strings.Replace(s, old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDrift changes a converged server by hand, one thing at a time: plan
// must exit 2 and name exactly what differs, apply must repair it, and
// plan must then exit 0.
func TestDrift(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	h, _ := newHost(t)
	h.converge(t, ctx)
	// An image that is not the spec's, for a container started by hand.
	if _, _, err := h.WriteImage("other", false, 0); err != nil {
		t.Fatal(err)
	}
	h.sh(t, ctx, "docker load -q -i "+ImageDir+"/jupyterhub-standin-other.tar && docker tag "+ImageRepo+":other someone/else:1 && docker rmi "+ImageRepo+":other")

	const endpoint = `this.jupyterEndpoint = "https://jupyterhub.demo.internal:8000/";`
	cases := []driftCase{
		{"start script edited", JupyterHubHost,
			shell("sed -i 's|OPENBIS_URL=[^ ]*|OPENBIS_URL=https://elsewhere.example|' " + startScript),
			[]string{"file.start_script"}, "elsewhere.example", nil},
		{"unit file edited", JupyterHubHost,
			shell("sed -i 's/^RestartSec=.*/RestartSec=1s/' " + unitPath + " && systemctl daemon-reload"),
			[]string{"systemd_unit.jupyterhub"}, "RestartSec=1s", nil},
		{"unit stopped", JupyterHubHost,
			shell("systemctl stop " + unitName),
			[]string{"systemd_unit.jupyterhub"}, "active", []string{"docker_container.jupyterhub"}},
		{"unit disabled", JupyterHubHost,
			shell("systemctl disable -q " + unitName),
			[]string{"systemd_unit.jupyterhub"}, "enabled", nil},
		{"rich rule removed from runtime only", JupyterHubHost,
			shell("firewall-cmd -q --zone=public --remove-rich-rule='" + richRule + "'"),
			[]string{ruleAddr}, "runtime", nil},
		{"rich rule removed from permanent only", JupyterHubHost,
			shell("firewall-cmd -q --permanent --zone=public --remove-rich-rule='" + richRule + "'"),
			[]string{ruleAddr}, "permanent", nil},
		{"container removed", JupyterHubHost,
			shell("docker rm -f " + containerName),
			[]string{"docker_container.jupyterhub"}, containerName, []string{"systemd_unit.jupyterhub"}},
		{"another image under the container's name", JupyterHubHost,
			shell("docker rm -f " + containerName + " && docker run -d --name " + containerName + " someone/else:1 " + freshserver.StartCommand),
			[]string{"docker_container.jupyterhub"}, "runs another image", []string{"systemd_unit.jupyterhub"}},
		{"image deleted", JupyterHubHost,
			shell("docker rmi -f " + ImageRepo + ":1"),
			[]string{"docker_image.jupyterhub"}, ImageRepo, []string{"docker_container.jupyterhub"}},
		{"profile line edited", OpenBISHost,
			editProfile(endpoint, strings.Replace(endpoint, "jupyterhub.demo.internal", "old-hub.example", 1)),
			[]string{"eln_profile.instance_profile"}, "old-hub.example", nil},
		{"profile line duplicated", OpenBISHost,
			editProfile(endpoint, endpoint+"\n\t\t"+endpoint),
			[]string{"eln_profile.instance_profile"}, "jupyterEndpoint", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.mutate(t, ctx, h)
			p := h.plan(t, ctx, 2, c.host)
			got := slices.DeleteFunc(p.Changed(), func(a string) bool { return slices.Contains(c.also, a) })
			if !slices.Equal(got, c.changed) {
				t.Errorf("plan names %v, want exactly %v (and maybe %v)", p.Changed(), c.changed, c.also)
			}
			if ch, ok := p.Change(c.changed[0]); ok && !strings.Contains(ch.Text(), c.says) {
				t.Errorf("change of %s does not say %q:\n%s", c.changed[0], c.says, ch.Text())
			}
			h.provision(t, ctx, 0, "apply", c.host)
			h.plan(t, ctx, 0, c.host)
			if c.host == JupyterHubHost {
				if page := h.page(t, ctx); !strings.Contains(page, "standin version: 1\n") {
					t.Errorf("after repair the page is:\n%s", page)
				}
			}
		})
		if t.Failed() {
			// The next case needs a converged server: make one or stop.
			if r, err := h.Provision(ctx, append(append([]string{"apply"}, HostArgs(c.host)...), SpecPath)...); err != nil || r.Code != 0 {
				t.Fatalf("cannot converge after %q to go on: %v\n%s", c.name, err, r)
			}
		}
	}

	t.Run("package pip-installed in the container", func(t *testing.T) {
		const pkg = "/vagrant_installation/miniconda3/lib/python3.6/site-packages/prettytable"
		h.sh(t, ctx, "docker exec "+containerName+" sh -c 'mkdir -p "+pkg+" && echo pass >"+pkg+"/__init__.py'")
		p := h.plan(t, ctx, 0, JupyterHubHost)
		found := false
		for _, w := range p.Warnings {
			found = found || strings.Contains(w, "vagrant_installation")
		}
		if !found {
			t.Errorf("plan warns %q, want a warning about the change under /vagrant_installation", p.Warnings)
		}
	})
}
