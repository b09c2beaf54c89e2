// Package dockerd starts a private Docker daemon and, optionally, a private
// Docker registry for integration tests, and stops exactly what it started.
//
// The daemon is Debian's docker.io (dockerd 20.10 on bookworm) with its own
// --data-root, --exec-root, socket and pid file. It runs in a network
// namespace of its own, so its bridge, its published ports and the registry
// (Debian's docker-registry, listening on 127.0.0.1 inside that namespace)
// never touch this machine's network; the test process talks to the daemon
// through its unix socket only. When the daemon exits, the namespace goes
// with it.
//
// Every process is started by this package and stopped by its PID. Give
// Start a short directory (os.MkdirTemp("", "pvd")): containerd's sockets
// live under it and unix socket paths are limited to 108 bytes.
//
// Debian packages: docker.io, docker-registry, iproute2 (and bash).
package dockerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options tunes Start.
type Options struct {
	// Registry also starts a docker-registry inside the daemon's network
	// namespace on 127.0.0.1:RegistryPort.
	Registry bool
	// RegistryPort defaults to 5000.
	RegistryPort int
	// Htpasswd, when set, is the content of an htpasswd file (bcrypt
	// entries) the registry requires for every request.
	Htpasswd string
	// StartTimeout bounds the wait for the daemon socket; default 60s.
	StartTimeout time.Duration
	// Log receives the daemons' output; default: files in the temp dir.
	Log func(format string, args ...any)
}

// Daemon is a running private dockerd (and registry).
type Daemon struct {
	// Dir holds data-root, exec-root, socket, pid file and logs.
	Dir string
	// Host is the DOCKER_HOST form of the socket: unix:///…/docker.sock.
	Host string
	// Socket is the socket path.
	Socket string
	// Registry is host:port of the registry as the daemon sees it
	// ("127.0.0.1:5000"), empty when none was started.
	Registry string
	// NetNS is the daemon's network namespace (/proc/PID/ns/net), for
	// tests that need to reach published ports (nsenter --net=NetNS).
	NetNS string

	dockerd  *exec.Cmd
	registry *exec.Cmd
	done     chan struct{}
}

// Start starts dockerd under dir (created if needed; a short path keeps
// the socket path under the unix limit). Call Stop when done, also on
// failure paths: it stops whatever was started.
func Start(ctx context.Context, dir string, opts Options) (*Daemon, error) {
	for _, bin := range []string{"dockerd", "containerd", "runc", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("start dockerd: %s not found (apt-get install -y docker.io): %w", bin, err)
		}
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	d := &Daemon{Dir: dir, Socket: filepath.Join(dir, "docker.sock"), done: make(chan struct{})}
	d.Host = "unix://" + d.Socket
	pidfile := filepath.Join(dir, "docker.pid")
	// A crash of an earlier run may have left these behind.
	os.Remove(d.Socket)
	os.Remove(pidfile)

	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command("dockerd",
		"--data-root", filepath.Join(dir, "root"),
		"--exec-root", filepath.Join(dir, "exec"),
		"-H", d.Host,
		"--pidfile", pidfile,
		"--iptables=false",
		"--ip6tables=false",
		"--ip-masq=false",
		"--userland-proxy=true",
		"--storage-driver=overlay2",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "DOCKER_HOST=")
	// Own network namespace: docker0 and published ports stay private. Own
	// process group, so a test runner's signal does not reach it first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	d.dockerd = cmd
	d.NetNS = fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	go func() { cmd.Wait(); close(d.done) }()

	if out, err := d.inNetNS(ctx, "ip", "link", "set", "lo", "up"); err != nil {
		d.Stop()
		return nil, fmt.Errorf("start dockerd: bring up loopback: %v: %s", err, out)
	}
	if err := d.waitSocket(ctx, opts.StartTimeout); err != nil {
		d.Stop()
		return nil, err
	}
	if opts.Registry {
		if err := d.startRegistry(ctx, opts); err != nil {
			d.Stop()
			return nil, err
		}
	}
	return d, nil
}

func (d *Daemon) inNetNS(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"--net=" + d.NetNS, "--"}, args...)
	return exec.CommandContext(ctx, "nsenter", full...).CombinedOutput()
}

func (d *Daemon) waitSocket(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-d.done:
			return fmt.Errorf("start dockerd: it exited early; log:\n%s", tail(filepath.Join(d.Dir, "dockerd.log")))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if c, err := net.DialTimeout("unix", d.Socket, time.Second); err == nil {
			// The socket accepts before the API is ready; ask for /_ping.
			fmt.Fprintf(c, "GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 64)
			n, _ := c.Read(buf)
			c.Close()
			if bytes.Contains(buf[:n], []byte(" 200 ")) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("start dockerd: socket %s not ready after %s; log:\n%s", d.Socket, timeout, tail(filepath.Join(d.Dir, "dockerd.log")))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// registryConfig is a docker-registry (distribution 2.8) configuration:
// filesystem storage in the temp dir, deletes allowed, optional htpasswd.
const registryConfig = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: 127.0.0.1:%d
%s`

func (d *Daemon) startRegistry(ctx context.Context, opts Options) error {
	if _, err := exec.LookPath("docker-registry"); err != nil {
		return fmt.Errorf("start registry: docker-registry not found (apt-get install -y docker-registry): %w", err)
	}
	port := opts.RegistryPort
	if port == 0 {
		port = 5000
	}
	auth := ""
	if opts.Htpasswd != "" {
		hp := filepath.Join(d.Dir, "htpasswd")
		if err := os.WriteFile(hp, []byte(opts.Htpasswd), 0o600); err != nil {
			return fmt.Errorf("start registry: %w", err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: provision-test\n    path: %s\n", hp)
	}
	cfg := filepath.Join(d.Dir, "registry.yml")
	content := fmt.Sprintf(registryConfig, filepath.Join(d.Dir, "registry"), port, auth)
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		return fmt.Errorf("start registry: %w", err)
	}
	logf, err := os.Create(filepath.Join(d.Dir, "registry.log"))
	if err != nil {
		return fmt.Errorf("start registry: %w", err)
	}
	defer logf.Close()
	// nsenter execs the registry in place, so this PID is the registry's.
	cmd := exec.Command("nsenter", "--net="+d.NetNS, "--", "docker-registry", "serve", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start registry: %w", err)
	}
	d.registry = cmd
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	d.Registry = fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		// bash's /dev/tcp connects inside the namespace without extra tools.
		if _, err := d.inNetNS(ctx, "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/"+strconv.Itoa(port)); err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("start registry: it exited early; log:\n%s", tail(filepath.Join(d.Dir, "registry.log")))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("start registry: 127.0.0.1:%d not listening after 20s; log:\n%s", port, tail(filepath.Join(d.Dir, "registry.log")))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the registry and the daemon by PID (SIGTERM, then SIGKILL
// after a grace period) and waits for them. The daemon stops the
// containers and the containerd it started; its namespace goes with it.
func (d *Daemon) Stop() error {
	var errs []error
	if d.registry != nil && d.registry.Process != nil {
		errs = append(errs, stopPID(d.registry.Process.Pid, 10*time.Second))
	}
	if d.dockerd != nil && d.dockerd.Process != nil {
		d.dockerd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			d.dockerd.Process.Kill()
			<-d.done
			errs = append(errs, errors.New("stop dockerd: killed after 30s"))
		}
	}
	errs = append(errs, d.unmountLeftovers())
	return errors.Join(errs...)
}

// unmountLeftovers detaches mounts a killed daemon left under Dir (its
// overlay and shm mounts), so that the directory can be removed.
func (d *Daemon) unmountLeftovers() error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	dir := filepath.Clean(d.Dir) + "/"
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4]+"/", dir) {
			points = append(points, f[4])
		}
	}
	var errs []error
	// Deepest first.
	for i := len(points) - 1; i >= 0; i-- {
		if err := syscall.Unmount(points[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", points[i], err))
		}
	}
	return errors.Join(errs...)
}

func stopPID(pid int, grace time.Duration) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	p.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if p.Signal(syscall.Signal(0)) != nil || isZombie(pid) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.Kill()
	return fmt.Errorf("stop pid %d: killed after %s", pid, grace)
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && len(b) > i+2 && b[i+2] == 'Z'
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return strings.TrimSpace(string(b))
}
