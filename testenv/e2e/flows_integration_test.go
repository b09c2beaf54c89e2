//go:build integration

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openbis/provision/testenv/browser"
	"github.com/openbis/provision/testenv/freshserver"
	"github.com/openbis/provision/testenv/hubimage"
	"github.com/openbis/provision/testenv/netlab"
	"github.com/openbis/provision/testenv/pki"
)

// The two-host deployment of the flows test: the names the users' browsers
// and the ELN profile use.
const (
	flowsHub     = "jupyterhub.test"
	flowsOpenBIS = "openbis.test"
	flowsSpec    = "/etc/provision/flows.hcl"
	hubTar       = "/srv/images/jupyterhub-openbis-debian.tar"
	elnRoot      = "/opt/openbis/servers/core-plugins/eln-lims/1/as/webapps/eln-lims/html"
	certDir      = "/etc/jupyterhub/certificates"
)

// flowsSpecText is the deployment with the real JupyterHub image; firewall
// is the firewall block under test.
func flowsSpecText(openbisAddr, firewall string) string {
	return fmt.Sprintf(`deployment "flows" {
  openbis_host       = %[1]q
  jupyterhub_host    = %[2]q
  communication_port = 8002
}

host %[2]q {
  jupyterhub {
    image {
      name = %[3]q
      load = %[4]q
    }
    # Containers on the test servers have no DNS: the openBIS certificate
    # names this address too.
    openbis_url    = "https://%[5]s"
    certificates   = %[6]q
    home           = "/srv/jupyterhub/home"
    health_timeout = "90s"
  }
  %[7]s
}

host %[1]q {
  eln_instance_profile {
    path = "%[8]s/etc/InstanceProfile.js"
  }
}
`, flowsOpenBIS, flowsHub, hubimage.DefaultRef, hubTar, openbisAddr, certDir, firewall, elnRoot)
}

// flows is the two-host world of one test: the JupyterHub and openBIS
// servers on a private network, users on other networks.
type flows struct {
	hub, openbis Host
	lab          *netlab.Lab
	users        map[string]*netlab.Member
	ca           *pki.CA
	openbisAddr  string
	hubAddr      string
}

func newFlows(t *testing.T, ctx context.Context) *flows {
	t.Helper()
	repo, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	img, err := hubimage.Ensure(ctx, hubimage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadOrCreateCA("")
	if err != nil {
		t.Fatal(err)
	}
	standin := filepath.Join(t.TempDir(), "openbis-standin")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", standin, "./testenv/openbis/cmd/openbis-standin")
	build.Dir, build.Env = repo, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the openBIS stand-in: %v\n%s", err, out)
	}

	f := &flows{ca: ca, users: map[string]*netlab.Member{}}
	spec := filepath.Join(t.TempDir(), "flows.hcl")
	if err := os.WriteFile(spec, []byte("# written by converge\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*Host{&f.hub, &f.openbis} {
		if *h, err = Install(freshserver.Start(t, freshserver.Options{}), provisionBin, spec); err != nil {
			t.Fatal(err)
		}
	}
	if f.lab, err = netlab.New(ctx); err != nil {
		f.lab.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { f.lab.Close() })
	hubM, err := f.lab.AddServer(ctx, "jupyterhub", f.hub.Pid)
	if err != nil {
		t.Fatal(err)
	}
	obM, err := f.lab.AddServer(ctx, "openbis", f.openbis.Pid)
	if err != nil {
		t.Fatal(err)
	}
	f.openbisAddr, f.hubAddr = obM.Addr, hubM.Addr
	for _, u := range []string{"alice", "mallory"} {
		if f.users[u], err = f.lab.AddUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.lab.SetHosts(map[string][]string{flowsHub: {hubM.Addr, hubM.Addr6}, flowsOpenBIS: {obM.Addr, obM.Addr6}}); err != nil {
		t.Fatal(err)
	}

	// The JupyterHub server: the image tar and the hub's certificate.
	copyFile(t, img.Tar, f.hub.Path(hubTar), 0o644)
	crt, key, err := ca.Issue(flowsHub, hubM.Addr, hubM.Addr6)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f.hub, certDir+"/default.crt", crt, 0o644)
	mustWrite(t, f.hub, certDir+"/default.key", key, 0o600)

	// The openBIS server: the stand-in on 443 under the server's systemd,
	// serving the ELN page and the profile provision patches.
	crt, key, err = ca.Issue(flowsOpenBIS, obM.Addr, obM.Addr6)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f.openbis, "/etc/openbis/tls.crt", crt, 0o644)
	mustWrite(t, f.openbis, "/etc/openbis/tls.key", key, 0o600)
	copyFile(t, standin, f.openbis.Path("/usr/local/bin/openbis-standin"), 0o755)
	copyFile(t, "/usr/share/javascript/jquery/jquery.min.js", f.openbis.Path("/opt/openbis/jquery.min.js"), 0o644)
	mustWrite(t, f.openbis, elnRoot+"/etc/InstanceProfile.js", []byte(InstanceProfile), 0o644)
	f.openbis.sh(t, ctx, "firewall-cmd -q --add-service=https && systemd-run -q --unit=openbis-standin /usr/local/bin/openbis-standin -listen :443 "+
		"-cert /etc/openbis/tls.crt -key /etc/openbis/tls.key -users alice:secret -eln-root "+elnRoot+" -jquery /opt/openbis/jquery.min.js")
	return f
}

// converge writes the spec with firewall and applies both hosts, the
// JupyterHub host first; it returns the JupyterHub host's plan output.
func (f *flows) converge(t *testing.T, ctx context.Context, firewall string) string {
	t.Helper()
	text := flowsSpecText(f.openbisAddr, firewall)
	var planOut string
	for _, h := range []struct {
		host Host
		name string
	}{{f.hub, flowsHub}, {f.openbis, flowsOpenBIS}} {
		mustWrite(t, h.host, flowsSpec, []byte(text), 0o644)
		r, err := h.host.Provision(ctx, "apply", "--host", h.name, flowsSpec)
		if err != nil || r.Code != 0 {
			t.Fatalf("apply %s: %v\n%s", h.name, err, r)
		}
		if h.name == flowsHub {
			planOut = r.Stdout + r.Stderr
		}
	}
	return planOut
}

// notebook runs the ELN's notebook button as user in a real browser and
// returns the page's last status and the URL it ended on.
func (f *flows) notebook(t *testing.T, ctx context.Context, user, name, screenshot string, wait time.Duration) (status, url string) {
	t.Helper()
	b, err := browser.Start(ctx, browser.Options{NS: f.users[user].NS, CAPEM: f.ca.CertPEM()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	page := fmt.Sprintf("https://%s/openbis/webapp/eln-lims/?user=alice&password=secret&folder=openbis&filename=%s", flowsOpenBIS, name)
	if err := b.Navigate(ctx, page); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	clicked := false
	for time.Now().Before(deadline) {
		state, err := browser.Eval[map[string]string](ctx, b, `({status: (document.getElementById("status")||{}).textContent || "", url: location.href,
			ready: String(!!document.getElementById("create-notebook") && !document.getElementById("create-notebook").disabled)})`)
		if err == nil {
			status, url = state["status"], state["url"]
			switch {
			case strings.Contains(url, "/user/"+user+"/notebooks/"):
				if screenshot != "" {
					time.Sleep(time.Second) // let the notebook page draw
					if err := b.Screenshot(ctx, screenshot); err != nil {
						t.Error(err)
					}
				}
				return status, url
			case strings.HasPrefix(status, "error"):
				return status, url
			case !clicked && state["ready"] == "true":
				if _, err := browser.Eval[bool](ctx, b, `document.getElementById("create-notebook").click(), true`); err != nil {
					t.Fatal(err)
				}
				clicked = true
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return status, url
}

// reach reports whether user can open a TCP connection to the JupyterHub
// host's port.
func (f *flows) reach(ctx context.Context, user string, port int) bool {
	hub := f.hubAddr
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := f.users[user].DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", hub, port))
	if err == nil {
		c.Close()
	}
	return err == nil
}

// TestUsersCreateNotebooks: with a spec that restricts nothing, a user's
// browser on an unrelated network creates a notebook from the ELN page on
// the openBIS server and lands on it, served by the user's own notebook
// server through the hub login; only the hub port and COMM are reachable.
// Restricting users to alice's network shuts mallory out; the guide's
// restriction of COMM to the openBIS server breaks the button, and plan
// says so.
func TestUsersCreateNotebooks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	f := newFlows(t, ctx)

	f.converge(t, ctx, `firewall {}`)
	shot := os.Getenv("PROVISION_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "notebook.png")
	}
	status, url := f.notebook(t, ctx, "alice", "analysis", shot, time.Minute)
	if !strings.Contains(url, "/user/alice/notebooks/openbis/analysis.ipynb") {
		t.Fatalf("the browser ended on %q (status %q), not the notebook", url, status)
	}
	if nb, err := f.hub.ReadFile("/srv/jupyterhub/home/alice/openbis/analysis.ipynb"); err != nil || !strings.Contains(nb, "cells") {
		t.Errorf("notebook in alice's home: %v %.80q", err, nb)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Errorf("screenshot %s: %v", shot, err)
	}
	for _, tt := range []struct {
		port int
		want bool
	}{{443, true}, {8002, true}, {8000, false}, {8001, false}, {8081, false}} {
		for _, u := range []string{"alice", "mallory"} {
			if got := f.reach(ctx, u, tt.port); got != tt.want {
				t.Errorf("users anywhere: %s reaches port %d: %v, want %v", u, tt.port, got, tt.want)
			}
		}
	}

	// Users restricted to alice's network.
	alice := f.users["alice"]
	f.converge(t, ctx, fmt.Sprintf(`firewall { users_from = ["%s/%d"] }`, maskedV4(alice.Addr, alice.Prefix), alice.Prefix))
	for _, tt := range []struct {
		user string
		port int
		want bool
	}{{"alice", 443, true}, {"alice", 8002, true}, {"mallory", 443, false}, {"mallory", 8002, false},
		{"alice", 8001, false}, {"alice", 8081, false}, {"mallory", 8001, false}, {"mallory", 8081, false}} {
		if got := f.reach(ctx, tt.user, tt.port); got != tt.want {
			t.Errorf("users from alice's network: %s reaches port %d: %v, want %v", tt.user, tt.port, got, tt.want)
		}
	}
	if status, url := f.notebook(t, ctx, "alice", "second", "", time.Minute); !strings.Contains(url, "/notebooks/openbis/second.ipynb") {
		t.Errorf("alice's browser inside the users' network ended on %q (status %q)", url, status)
	}

	// The guide's rule: COMM only from the openBIS server. Plan warns, and
	// the browser's POST to COMM fails.
	out := f.converge(t, ctx, fmt.Sprintf(`firewall { allow_from = [%q] }`, f.openbisAddr))
	if !strings.Contains(out, "will not be able to") {
		t.Errorf("no warning that users cannot create notebooks:\n%s", out)
	}
	// The POST to COMM is dropped: the page never gets past its check.
	status, url = f.notebook(t, ctx, "alice", "third", "", 20*time.Second)
	if strings.Contains(url, "/notebooks/") || strings.HasPrefix(status, "notebook created") {
		t.Errorf("with COMM restricted to openBIS the button worked: status %q, url %q", status, url)
	}
	if _, err := f.hub.ReadFile("/srv/jupyterhub/home/alice/openbis/third.ipynb"); err == nil {
		t.Error("the notebook was written although COMM admits only openBIS")
	}
}

func maskedV4(addr string, bits int) string {
	parts := strings.Split(addr, ".")
	if bits == 24 && len(parts) == 4 {
		return strings.Join(parts[:3], ".") + ".0"
	}
	return addr
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, h Host, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := h.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
}
