// Package freshserver boots throwaway "fresh servers" for integration
// tests: a cached Debian bookworm root file system (built once with
// debootstrap by build-rootfs.sh) under a per-server overlay, booted with
// systemd-nspawn in its own network namespace. The server runs systemd,
// dbus, docker and firewalld as a freshly installed host does; tests drive
// them from outside through /proc/PID/root. sshd is installed but runs only
// once a test calls EnableSSH.
//
// Everything a server starts is stopped by Shutdown, by PID: the server is
// powered off (its pid 1 is killed if it does not stop in time), nspawn is
// reaped and the overlay is unmounted and removed.
package freshserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultRootfs is where the cached root file system lives; the
// PROVISION_TEST_ROOTFS environment variable overrides it.
const DefaultRootfs = "/var/cache/provision-test/rootfs-bookworm"

//go:embed build-rootfs.sh
var buildScript []byte

// Options tune Boot. The zero value is fine.
type Options struct {
	// Rootfs is the cached root file system; default PROVISION_TEST_ROOTFS
	// or DefaultRootfs. It is built when missing.
	Rootfs string
	// WorkDir holds the per-server directories (overlay upper dir, docker
	// data); default /var/tmp. It must not be an overlay file system.
	WorkDir string
	// BootTimeout bounds the wait for the server's systemd to finish
	// booting; default 90s.
	BootTimeout time.Duration
	// Log receives the rootfs build output; default os.Stderr.
	Log io.Writer
}

func (o *Options) defaults() {
	if o.Rootfs == "" {
		o.Rootfs = os.Getenv("PROVISION_TEST_ROOTFS")
	}
	if o.Rootfs == "" {
		o.Rootfs = DefaultRootfs
	}
	if o.WorkDir == "" {
		o.WorkDir = "/var/tmp"
	}
	if o.BootTimeout <= 0 {
		o.BootTimeout = 90 * time.Second
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
}

// EnsureRootfs builds the root file system at dir with build-rootfs.sh
// unless it is there and was built by this very script: the build stamps
// it with the script's sha256, so a change to the script rebuilds it. The
// first build takes minutes.
func EnsureRootfs(ctx context.Context, dir string, log io.Writer) error {
	stamp := fmt.Sprintf("%x", sha256.Sum256(buildScript))
	got, _ := os.ReadFile(filepath.Join(dir, stampFile))
	old, _ := filepath.Glob(dir + ".old.*")
	if strings.TrimSpace(string(got)) == stamp && len(old) == 0 {
		return nil
	}
	for _, tool := range []string{"debootstrap", "systemd-nspawn", "nsenter", "journalctl", "systemctl", "flock"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("freshserver needs %s: install the Debian packages in testenv/packages-systemd.txt (%w)", tool, err)
		}
	}
	// The script takes the lock, checks the stamp again and removes
	// replaced copies no server uses any more.
	cmd := exec.CommandContext(ctx, "sh", "-s", "--", dir)
	cmd.Stdin = bytes.NewReader(buildScript)
	cmd.Env = append(os.Environ(), "ROOTFS_STAMP="+stamp)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build root file system %s: %w", dir, err)
	}
	return nil
}

// stampFile, inside the root file system, holds the sha256 of the
// build-rootfs.sh that built it.
const stampFile = "etc/provision-test-rootfs"

// sigPowerOff is SIGRTMIN+4 as glibc numbers it: systemd powers off on it.
const sigPowerOff = unix.Signal(38)

// Server is one booted fresh server.
type Server struct {
	// Pid is the server's pid 1 as seen from the host.
	Pid int
	// Root is the server's file system seen from the host: /proc/PID/root.
	Root string
	// Bus is the address of the server's system bus.
	Bus string
	// Docker is the address of the server's dockerd.
	Docker string

	dir         string
	merged      string
	nspawn      *exec.Cmd
	exited      chan struct{}
	console     string
	bootTimeout time.Duration
}

// Start boots a server for t and powers it off when t ends, also when it
// fails. A server that cannot boot fails t.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	s, err := Boot(ctx, opts)
	if err != nil {
		t.Fatalf("boot fresh server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(); err != nil {
			t.Errorf("shut down fresh server: %v", err)
		}
	})
	return s
}

// Boot builds the cached root file system if needed and boots a throwaway
// copy of it. The caller must call Shutdown.
func Boot(ctx context.Context, opts Options) (s *Server, err error) {
	opts.defaults()
	if err := EnsureRootfs(ctx, opts.Rootfs, opts.Log); err != nil {
		return nil, err
	}
	reapStale(opts.WorkDir, opts.Log)
	dir, err := os.MkdirTemp(opts.WorkDir, "freshserver-")
	if err != nil {
		return nil, fmt.Errorf("create server directory: %w", err)
	}
	s = &Server{dir: dir, merged: filepath.Join(dir, "root"), exited: make(chan struct{}), console: filepath.Join(dir, "console.log")}
	defer func() {
		if err != nil {
			s.Shutdown()
		}
	}()
	for _, d := range []string{"upper", "work", "root", "docker"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return s, fmt.Errorf("create server directory: %w", err)
		}
	}
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", opts.Rootfs, filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := unix.Mount("overlay", s.merged, "overlay", 0, data); err != nil {
		return s, fmt.Errorf("mount overlay on %s: %w", s.merged, err)
	}

	s.bootTimeout = opts.BootTimeout
	if err := s.start(ctx); err != nil {
		return s, err
	}
	return s, nil
}

// start runs systemd-nspawn on the server's root and waits until it has
// booted.
func (s *Server) start(ctx context.Context) error {
	console, err := os.OpenFile(s.console, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer console.Close()
	// See DESIGN.md for why each flag is needed on these machines.
	cmd := exec.Command("systemd-nspawn", "--boot", "--register=no", "--keep-unit",
		"--private-network", "--system-call-filter=@keyring bpf",
		"--bind="+filepath.Join(s.dir, "docker")+":/var/lib/docker",
		"--link-journal=no", "--resolv-conf=off", "--timezone=off",
		"--console=passive", "--machine="+filepath.Base(s.dir), "-D", s.merged)
	cmd.Env = append(os.Environ(), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1")
	cmd.Stdout, cmd.Stderr = console, console
	// Its own process group, so the test's terminal signals do not reach it
	// and Shutdown can kill exactly this group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start systemd-nspawn: %w", err)
	}
	s.nspawn = cmd
	exited := make(chan struct{})
	s.exited = exited
	go func() { cmd.Wait(); close(exited) }()

	ctx, cancel := context.WithTimeout(ctx, s.bootTimeout)
	defer cancel()
	if err := s.waitPid1(ctx); err != nil {
		return err
	}
	if err := s.writeOwner(); err != nil {
		return err
	}
	s.Root = fmt.Sprintf("/proc/%d/root", s.Pid)
	s.Bus = "unix:path=" + s.Root + "/run/dbus/system_bus_socket"
	s.Docker = "unix://" + s.Root + "/run/docker.sock"
	return s.waitBooted(ctx)
}

// Reboot powers the server off and boots it again from the same disk (its
// overlay and docker data): what survives a reboot survives this. Pid,
// Root, Bus and Docker change.
func (s *Server) Reboot(ctx context.Context) error {
	if s.nspawn == nil {
		return errors.New("reboot: the server is not running")
	}
	unix.Kill(s.Pid, sigPowerOff)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("reboot: the server did not power off in 30 s:\n%s", s.ConsoleTail(20))
	}
	s.nspawn, s.Pid = nil, 0
	return s.start(ctx)
}

// waitPid1 finds the container's init: the child of nspawn that runs systemd.
func (s *Server) waitPid1(ctx context.Context) error {
	for {
		if pid := childRunning(s.nspawn.Process.Pid, "systemd"); pid > 0 {
			s.Pid = pid
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("systemd-nspawn exited while booting:\n%s", s.ConsoleTail(30))
		case <-ctx.Done():
			return fmt.Errorf("no systemd started under systemd-nspawn: %w\n%s", ctx.Err(), s.ConsoleTail(30))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// childRunning returns the pid of a child of ppid whose command is comm.
func childRunning(ppid int, comm string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", ppid, ppid))
	if err != nil {
		return 0
	}
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(c)) == comm {
			return pid
		}
	}
	return 0
}

// waitBooted waits until the server's systemd reports the boot finished
// (running or degraded) and dockerd's socket is there.
func (s *Server) waitBooted(ctx context.Context) error {
	var last string
	for {
		out, err := s.Exec(ctx, "systemctl", "is-system-running")
		last = strings.TrimSpace(string(out))
		if last == "running" || last == "degraded" {
			if _, err := os.Stat(s.Root + "/run/docker.sock"); err == nil {
				return nil
			}
		}
		if err != nil && ctx.Err() != nil {
			break
		}
		select {
		case <-s.exited:
			return fmt.Errorf("fresh server stopped while booting:\n%s", s.ConsoleTail(30))
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
			continue
		}
		break
	}
	failed, _ := s.Exec(context.Background(), "systemctl", "--failed", "--no-pager")
	return fmt.Errorf("fresh server did not finish booting (state %q): %w\n%s\n%s", last, ctx.Err(), failed, s.ConsoleTail(30))
}

// Exec runs a command inside the server's namespaces (nsenter) and returns
// its combined output. The process is not part of the server's systemd
// tree: use it for clients (systemctl, docker, journalctl), not daemons.
func (s *Server) Exec(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(s.Pid), "-m", "-u", "-i", "-n", "-p", "-C", "--root", "--wd", "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("run %s in the fresh server: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Journal returns the last n journal lines of unit, read inside the server.
// It matches executors/systemd.JournalFunc.
func (s *Server) Journal(ctx context.Context, unit string, n int) (string, error) {
	out, err := s.Exec(ctx, "journalctl", "--no-pager", "-u", unit, "-n", strconv.Itoa(n))
	return string(out), err
}

// DialContext opens a connection from inside the server's network
// namespace (the server has only its own loopback): the socket is created
// on a thread switched into that namespace and keeps it afterwards.
func (s *Server) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		c, err, restored := s.dialIn(ctx, network, addr)
		if restored {
			// Otherwise the thread stays locked and dies with the goroutine,
			// so no other goroutine runs in the server's namespace.
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

func (s *Server) dialIn(ctx context.Context, network, addr string) (c net.Conn, err error, restored bool) {
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err, true
	}
	defer self.Close()
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", s.Pid))
	if err != nil {
		return nil, fmt.Errorf("open network namespace of the fresh server: %w", err), true
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("enter network namespace of the fresh server: %w", err), true
	}
	var d net.Dialer
	c, err = d.DialContext(ctx, network, addr)
	return c, err, unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil
}

// Dir is the server's directory on this machine (overlay, docker data).
func (s *Server) Dir() string { return s.dir }

// ConsoleTail returns the last n lines nspawn and the server's console wrote.
func (s *Server) ConsoleTail(n int) string {
	b, _ := os.ReadFile(s.console)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Shutdown powers the server off (SIGRTMIN+4 to its systemd), kills its
// pid 1 — and with it every process of the server — if it has not stopped
// within 10 s, reaps nspawn, unmounts the overlay and removes the server's
// directory. It is safe to call more than once.
func (s *Server) Shutdown() error {
	var errs []error
	if s.nspawn != nil && s.nspawn.Process != nil {
		if s.Pid > 0 {
			unix.Kill(s.Pid, sigPowerOff)
		} else {
			unix.Kill(-s.nspawn.Process.Pid, unix.SIGTERM)
		}
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			if s.Pid > 0 {
				unix.Kill(s.Pid, unix.SIGKILL)
			}
			select {
			case <-s.exited:
			case <-time.After(10 * time.Second):
				unix.Kill(-s.nspawn.Process.Pid, unix.SIGKILL)
				<-s.exited
			}
		}
		s.nspawn = nil
	}
	if s.merged != "" {
		if err := unix.Unmount(s.merged, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			// Busy: detach it so it goes away once unused.
			if err2 := unix.Unmount(s.merged, unix.MNT_DETACH); err2 != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", s.merged, err))
			}
		}
	}
	if s.dir != "" && len(errs) == 0 {
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", s.dir, err))
		}
		s.dir = ""
	}
	return errors.Join(errs...)
}
