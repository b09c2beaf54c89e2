// Package e2e drives the real provision binary on fresh servers
// (testenv/freshserver) the way an admin would: the binary, a spec and an
// image tar are copied into the server, and `provision plan|apply` runs
// inside the server's namespaces and root. The end-to-end tests
// (build tag integration) and the demo command (testenv/demo) share it.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/openbis/provision/testenv/freshserver"
)

// Paths inside a server.
const (
	BinPath  = "/usr/local/bin/provision"
	SpecPath = "/etc/provision/demo.hcl"
	ImageDir = "/srv/images"
	// ProfilePath is the ELN profile testenv/e2e/standin.hcl names.
	ProfilePath = "/opt/openbis/servers/core-plugins/eln-lims/1/as/webapps/eln-lims/html/etc/InstanceProfile.js"
	// Hosts of testenv/e2e/standin.hcl.
	JupyterHubHost = "jupyterhub.demo.internal"
	OpenBISHost    = "openbis.demo.internal"
	// ImageRepo is the stand-in's repository in testenv/e2e/standin.hcl.
	ImageRepo = "openbis/jupyterhub-standin"
)

// StatePath is provision's default state file; it holds the records of
// both host blocks the demo server plays.
const StatePath = "/var/lib/provision/state.json"

// HostArgs are the flags selecting host in testenv/e2e/standin.hcl.
func HostArgs(host string) []string {
	return []string{"--host", host}
}

// InstanceProfile is a fresh ELN's InstanceProfile.js, as openBIS ships it.
const InstanceProfile = `function InstanceProfile(serverFacade) {
	this.init(serverFacade);
}

$.extend(InstanceProfile.prototype, StandardProfile.prototype, {
	init: function(serverFacade){
		StandardProfile.prototype.init.call(this, serverFacade);

		this.hideSectionsByDefault = true;
		this.showSemanticAnnotations = false;
	}
})
`

// RepoRoot returns the module root: the nearest directory at or above
// the working directory holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// BuildProvision builds ./cmd/provision of the module at repo into out,
// statically, so that it runs on the server whatever its libc.
func BuildProvision(ctx context.Context, repo, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/provision")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build provision: %w\n%s", err, b)
	}
	return nil
}

// Host is a fresh server with provision installed.
type Host struct {
	*freshserver.Server
}

// Install copies the provision binary at bin, the spec at spec and the
// ELN's InstanceProfile.js fixture into the server; bin "" installs no
// provision (one reached over SSH gets it from the admin's).
func Install(s *freshserver.Server, bin, spec string) (Host, error) {
	h := Host{s}
	for _, f := range []struct {
		src, dst string
		mode     os.FileMode
	}{{bin, BinPath, 0o755}, {spec, SpecPath, 0o644}} {
		if f.src == "" {
			continue // an admin's provision brings itself over SSH
		}
		b, err := os.ReadFile(f.src)
		if err != nil {
			return h, fmt.Errorf("install %s: %w", f.dst, err)
		}
		if err := h.WriteFile(f.dst, b, f.mode); err != nil {
			return h, err
		}
	}
	if err := h.WriteFile(ProfilePath, []byte(InstanceProfile), 0o644); err != nil {
		return h, err
	}
	return h, os.MkdirAll(h.Path(ImageDir), 0o755)
}

// InstallDriftCheck copies provision-plan.service and .timer from the
// directory examples into the server, set up to check the host block host
// (the caller reloads systemd and enables the timer).
func (h Host) InstallDriftCheck(examples, host string) error {
	for _, name := range []string{"provision-plan.service", "provision-plan.timer"} {
		b, err := os.ReadFile(filepath.Join(examples, name))
		if err != nil {
			return err
		}
		if err := h.WriteFile("/etc/systemd/system/"+name, b, 0o644); err != nil {
			return err
		}
	}
	env := fmt.Sprintf("PROVISION_PLAN_ARGS=%s %s\n", strings.Join(HostArgs(host), " "), SpecPath)
	return h.WriteFile("/etc/default/provision-plan", []byte(env), 0o644)
}

// Path is p inside the server, seen from here.
func (h Host) Path(p string) string { return h.Root + p }

// WriteFile writes a file inside the server, creating its directories.
func (h Host) WriteFile(p string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(h.Path(p)), 0o755); err != nil {
		return fmt.Errorf("write %s in the server: %w", p, err)
	}
	if err := os.WriteFile(h.Path(p), b, mode); err != nil {
		return fmt.Errorf("write %s in the server: %w", p, err)
	}
	return os.Chmod(h.Path(p), mode)
}

// ReadFile reads a file inside the server.
func (h Host) ReadFile(p string) (string, error) {
	b, err := os.ReadFile(h.Path(p))
	return string(b), err
}

// WriteImage writes the stand-in image tar for version v (broken or not)
// into the server's image directory and returns its path and image ID.
func (h Host) WriteImage(v string, broken bool, padding int64) (path, id string, err error) {
	path = fmt.Sprintf("%s/jupyterhub-standin-%s.tar", ImageDir, v)
	id, err = WriteImageTar(h.Path(path), h.Path("/bin/busybox"), Image{
		StandIn: freshserver.StandIn{Ref: ImageRepo + ":" + v, Version: v, Broken: broken},
		Padding: padding,
	})
	return path, id, err
}

// Result is how one command inside the server ended.
type Result struct {
	Args           []string
	Stdout, Stderr string
	Code           int
	Took           time.Duration
}

func (r Result) String() string {
	return fmt.Sprintf("$ %s\n(exit %d after %s)\n--- stdout\n%s--- stderr\n%s", strings.Join(r.Args, " "), r.Code, r.Took.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// Command returns an unstarted command that runs args inside the server's
// namespaces and root (not inside its systemd tree).
func (h Host) Command(ctx context.Context, args ...string) *exec.Cmd {
	nsargs := append([]string{"-t", strconv.Itoa(h.Pid), "-m", "-u", "-i", "-n", "-p", "-C", "--root", "--wd", "--"}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", nsargs...)
	// A clean environment, as an admin's root shell on the server has.
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8", "NO_COLOR=1"}
	return cmd
}

// Run runs args inside the server and returns how it ended. The error is
// only for a command that could not be started.
func (h Host) Run(ctx context.Context, args ...string) (Result, error) {
	return runCmd(h.Command(ctx, args...), args)
}

// runCmd runs cmd (args, as shown) and returns how it ended. The error is
// only for a command that could not be started.
func runCmd(cmd *exec.Cmd, args []string) (Result, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		return r, fmt.Errorf("run %s: %w", strings.Join(args, " "), err)
	}
	return r, nil
}

// Provision runs the provision binary inside the server.
func (h Host) Provision(ctx context.Context, args ...string) (Result, error) {
	return h.Run(ctx, append([]string{BinPath}, args...)...)
}

// Get fetches url from inside the server's network namespace, retrying
// until it answers or ctx ends.
func (h Host) Get(ctx context.Context, url string) (string, error) {
	client := &http.Client{Transport: &http.Transport{DialContext: h.DialContext, DisableKeepAlives: true}, Timeout: 2 * time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return "", err
		}
		resp, err := client.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(b), nil
			}
			err = fmt.Errorf("%s: %s %v", url, resp.Status, rerr)
		}
		last = err
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("get %s in the server: %w (last: %v)", url, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
