package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/openbis/provision/testenv/browser"
	"github.com/openbis/provision/testenv/freshserver"
	"github.com/openbis/provision/testenv/hubimage"
	"github.com/openbis/provision/testenv/netlab"
	"github.com/openbis/provision/testenv/pki"
)

// The two-host world of examples/demo.hcl: the names the users' browsers
// and the ELN profile use, and where things live on the servers.
const (
	WorldHub     = "jupyterhub.test"
	WorldOpenBIS = "openbis.test"
	HubTar       = "/srv/images/jupyterhub-openbis-debian.tar"
	ELNRoot      = "/opt/openbis/servers/core-plugins/eln-lims/1/as/webapps/eln-lims/html"
	CertDir      = "/etc/jupyterhub/certificates"
	// UsersHome is where the spec mounts the container's /home.
	UsersHome = "/srv/jupyterhub/home"
	// The openBIS stand-in's one user.
	ELNUser, ELNPassword = "alice", "secret"
)

// World is an openBIS server and a JupyterHub server (fresh servers) on a
// private network, users' namespaces on other networks, a test CA both
// servers' certificates come from, the real JupyterHub image on the
// JupyterHub server and the openBIS stand-in running on the other.
type World struct {
	Hub, OpenBIS         Host
	Lab                  *netlab.Lab
	Users                map[string]*netlab.Member
	CA                   *pki.CA
	HubAddr, OpenBISAddr string
}

// WorldOptions tune NewWorld.
type WorldOptions struct {
	Provision string   // the provision binary to install
	Users     []string // users' namespaces to make, each on its own network
	// Server options; Owned keeps the lab until the JupyterHub server's
	// nspawn exits rather than this process (the demo).
	Server freshserver.Options
	Owned  bool
	Log    io.Writer
}

// NewWorld builds the hub image (cached), boots both servers, joins them
// and the users, and starts the openBIS stand-in. Call Close, also after
// an error.
func NewWorld(ctx context.Context, opts WorldOptions) (w *World, err error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	w = &World{Users: map[string]*netlab.Member{}}
	repo, err := RepoRoot()
	if err != nil {
		return w, err
	}
	img, err := hubimage.Ensure(ctx, hubimage.Options{Log: opts.Log})
	if err != nil {
		return w, err
	}
	if w.CA, err = pki.LoadOrCreateCA(""); err != nil {
		return w, err
	}
	standin, err := os.CreateTemp("", "openbis-standin-")
	if err != nil {
		return w, err
	}
	standin.Close()
	defer os.Remove(standin.Name())
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", standin.Name(), "./testenv/openbis/cmd/openbis-standin")
	build.Dir, build.Env = repo, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return w, fmt.Errorf("build the openBIS stand-in: %w\n%s", err, out)
	}

	// The spec is written by Converge; Install wants a file.
	spec := filepath.Join(os.TempDir(), "provision-world-placeholder.hcl")
	if err := os.WriteFile(spec, []byte("# written by Converge\n"), 0o644); err != nil {
		return w, err
	}
	for _, h := range []*Host{&w.Hub, &w.OpenBIS} {
		s, err := freshserver.Boot(ctx, opts.Server)
		if err != nil {
			return w, err
		}
		if *h, err = Install(s, opts.Provision, spec); err != nil {
			return w, err
		}
	}
	owner := os.Getpid()
	if opts.Owned {
		owner = ParentPid(w.Hub.Pid)
	}
	if w.Lab, err = netlab.NewOwned(ctx, owner); err != nil {
		return w, err
	}
	hubM, err := w.Lab.AddServer(ctx, "jupyterhub", w.Hub.Pid)
	if err != nil {
		return w, err
	}
	obM, err := w.Lab.AddServer(ctx, "openbis", w.OpenBIS.Pid)
	if err != nil {
		return w, err
	}
	w.HubAddr, w.OpenBISAddr = hubM.Addr, obM.Addr
	for _, u := range opts.Users {
		if w.Users[u], err = w.Lab.AddUser(ctx, u); err != nil {
			return w, err
		}
	}
	if err := w.Lab.SetHosts(map[string][]string{WorldHub: {hubM.Addr, hubM.Addr6}, WorldOpenBIS: {obM.Addr, obM.Addr6}}); err != nil {
		return w, err
	}

	// The JupyterHub server: the image tar and the hub's certificate.
	hubCrt, hubKey, err := w.CA.Issue(WorldHub, hubM.Addr, hubM.Addr6)
	if err != nil {
		return w, err
	}
	obCrt, obKey, err := w.CA.Issue(WorldOpenBIS, obM.Addr, obM.Addr6)
	if err != nil {
		return w, err
	}
	jquery, err := os.ReadFile("/usr/share/javascript/jquery/jquery.min.js")
	if err != nil {
		return w, fmt.Errorf("the ELN page needs jQuery (Debian's libjs-jquery): %w", err)
	}
	for _, f := range []struct {
		h       Host
		path    string
		content []byte
		src     string
		mode    os.FileMode
	}{
		{w.Hub, HubTar, nil, img.Tar, 0o644},
		{w.Hub, CertDir + "/default.crt", hubCrt, "", 0o644},
		{w.Hub, CertDir + "/default.key", hubKey, "", 0o600},
		// The openBIS server: the stand-in serving the ELN page and the
		// profile provision patches.
		{w.OpenBIS, "/etc/openbis/tls.crt", obCrt, "", 0o644},
		{w.OpenBIS, "/etc/openbis/tls.key", obKey, "", 0o600},
		{w.OpenBIS, "/usr/local/bin/openbis-standin", nil, standin.Name(), 0o755},
		{w.OpenBIS, "/opt/openbis/jquery.min.js", jquery, "", 0o644},
		{w.OpenBIS, ELNRoot + "/etc/InstanceProfile.js", []byte(InstanceProfile), "", 0o644},
	} {
		if f.src != "" {
			if f.content, err = os.ReadFile(f.src); err != nil {
				return w, err
			}
		}
		if err := f.h.WriteFile(f.path, f.content, f.mode); err != nil {
			return w, err
		}
	}
	// Under the server's systemd, so it goes with the server; 443 opened
	// by hand, as the openBIS admin did long ago.
	r, err := w.OpenBIS.Run(ctx, "sh", "-ec", "firewall-cmd -q --add-service=https --permanent && firewall-cmd -q --reload && "+
		"systemd-run -q --unit=openbis-standin /usr/local/bin/openbis-standin -listen :443 -cert /etc/openbis/tls.crt -key /etc/openbis/tls.key "+
		"-users "+ELNUser+":"+ELNPassword+" -eln-root "+ELNRoot+" -jquery /opt/openbis/jquery.min.js")
	if err == nil && r.Code != 0 {
		err = errors.New(r.String())
	}
	if err != nil {
		return w, fmt.Errorf("start the openBIS stand-in: %w", err)
	}
	return w, nil
}

// Close powers both servers off and removes the lab.
func (w *World) Close() error {
	var errs []error
	if w.Lab != nil {
		errs = append(errs, w.Lab.Close())
	}
	for _, h := range []Host{w.Hub, w.OpenBIS} {
		if h.Server != nil {
			errs = append(errs, h.Shutdown())
		}
	}
	return errors.Join(errs...)
}

// Spec is examples/demo.hcl's deployment with firewall as its firewall
// block ("" keeps the file's own).
func (w *World) Spec(firewall string) ([]byte, error) {
	repo, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(repo, "examples/demo.hcl"))
	if err != nil {
		return nil, err
	}
	if firewall != "" {
		s := string(b)
		i := strings.Index(s, "firewall {")
		j := strings.Index(s[i:], "\n  }\n")
		if i < 0 || j < 0 {
			return nil, errors.New("examples/demo.hcl: no multi-line firewall block to replace")
		}
		b = []byte(s[:i] + firewall + s[i+j+len("\n  }"):])
	}
	return b, nil
}

// Converge writes spec to both servers and applies it, the JupyterHub host
// first, as an admin would; it returns both results.
func (w *World) Converge(ctx context.Context, spec []byte) (hub, openbis Result, err error) {
	for _, h := range []struct {
		host Host
		name string
		r    *Result
	}{{w.Hub, WorldHub, &hub}, {w.OpenBIS, WorldOpenBIS, &openbis}} {
		if err := h.host.WriteFile(SpecPath, spec, 0o644); err != nil {
			return hub, openbis, err
		}
		*h.r, err = h.host.Provision(ctx, "apply", "--host", h.name, SpecPath)
		if err == nil && h.r.Code != 0 {
			err = fmt.Errorf("apply %s:\n%s", h.name, h.r)
		}
		if err != nil {
			return hub, openbis, err
		}
	}
	return hub, openbis, nil
}

// Notebook runs the ELN's notebook button as the ELN user in a real
// browser in user's namespace, and returns the page's last status and the
// URL the browser is on once it reached the notebook, the page reported an
// error, or wait passed. A non-empty screenshot saves the notebook page.
func (w *World) Notebook(ctx context.Context, user, name, screenshot string, wait time.Duration) (status, url string, err error) {
	m, ok := w.Users[user]
	if !ok {
		return "", "", fmt.Errorf("no user %q in the world", user)
	}
	b, err := browser.Start(ctx, browser.Options{NS: m.NS, CAPEM: w.CA.CertPEM()})
	if err != nil {
		return "", "", err
	}
	defer b.Close()
	page := fmt.Sprintf("https://%s/openbis/webapp/eln-lims/?user=%s&password=%s&folder=openbis&filename=%s", WorldOpenBIS, ELNUser, ELNPassword, name)
	if err := b.Navigate(ctx, page); err != nil {
		return "", "", err
	}
	deadline := time.Now().Add(wait)
	clicked := false
	for time.Now().Before(deadline) {
		state, err := browser.Eval[map[string]string](ctx, b, `({status: (document.getElementById("status")||{}).textContent || "", url: location.href,
			ready: String(!!document.getElementById("create-notebook") && !document.getElementById("create-notebook").disabled)})`)
		if err == nil {
			status, url = state["status"], state["url"]
			switch {
			case strings.Contains(url, "/user/"+ELNUser+"/notebooks/"):
				if screenshot != "" {
					time.Sleep(time.Second) // let the notebook page draw
					if err := b.Screenshot(ctx, screenshot); err != nil {
						return status, url, err
					}
				}
				return status, url, nil
			case strings.HasPrefix(status, "error"):
				return status, url, nil
			case !clicked && state["ready"] == "true":
				if _, err := browser.Eval[bool](ctx, b, `document.getElementById("create-notebook").click(), true`); err != nil {
					return status, url, err
				}
				clicked = true
			}
		}
		select {
		case <-ctx.Done():
			return status, url, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return status, url, nil
}

// Reach reports whether user can open a TCP connection to the JupyterHub
// server's port.
func (w *World) Reach(ctx context.Context, user string, port int) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := w.Users[user].DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", w.HubAddr, port))
	if err == nil {
		c.Close()
	}
	return err == nil
}

// ParentPid is the parent of pid (the systemd-nspawn of a server's systemd).
func ParentPid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	var n int
	fmt.Sscan(f[1], &n)
	return n
}
