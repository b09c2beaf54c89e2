// Package firewalld starts a throwaway firewalld for integration tests: a
// private dbus-daemon system bus (own config and socket) and
// `firewalld --nofork --nopid` inside a network namespace that is never this
// machine's own, with its permanent configuration in a temp dir. Both
// processes are started and stopped by PID.
package firewalld

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
)

// Options say where firewalld runs.
type Options struct {
	// Dir holds the bus socket, configs and logs; a test's t.TempDir().
	Dir string
	// NetNS names an `ip netns` namespace to run firewalld in. Empty means a
	// fresh anonymous network namespace that dies with the process.
	NetNS string
}

// Server is a running private bus and firewalld.
type Server struct {
	// BusAddress is the D-Bus address of the private system bus.
	BusAddress string
	// ConfigDir is firewalld's --system-config (its permanent config).
	ConfigDir string
	// LogFile collects firewalld's output, for failure messages.
	LogFile string

	bus    *exec.Cmd
	fw     *exec.Cmd
	exited <-chan struct{}
}

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="root"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// Same as Debian's defaults, but nothing outside the namespace is touched.
const firewalldConf = `DefaultZone=public
CleanupOnExit=yes
CleanupModulesOnExit=no
Lockdown=no
IPv6_rpfilter=yes
IndividualCalls=no
LogDenied=off
FirewallBackend=nftables
FlushAllOnReload=yes
RFC3964_IPv4=yes
`

// StartBus runs only the private bus, with no firewalld on it (for "not
// running" cases). Stop it like a Server.
func StartBus(ctx context.Context, dir string) (*Server, error) {
	s := &Server{ConfigDir: filepath.Join(dir, "etc-firewalld"), LogFile: filepath.Join(dir, "firewalld.log")}
	sock := filepath.Join(dir, "system_bus_socket")
	s.BusAddress = "unix:path=" + sock
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, sock)), 0o600); err != nil {
		return s, err
	}
	busLog, err := os.Create(filepath.Join(dir, "dbus.log"))
	if err != nil {
		return s, err
	}
	defer busLog.Close()
	s.bus = exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--nopidfile", "--nosyslog")
	s.bus.Stdout, s.bus.Stderr = busLog, busLog
	if err := s.bus.Start(); err != nil {
		return s, fmt.Errorf("start dbus-daemon: %w", err)
	}
	if err := waitFor(ctx, 10*time.Second, func() error {
		c, err := dbus.Connect(s.BusAddress)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		return s, fmt.Errorf("private bus %s: %w", s.BusAddress, err)
	}
	return s, nil
}

// Start runs the bus and firewalld and waits until firewalld is RUNNING.
// The caller must Stop the server, also when Start fails halfway (Stop is
// safe on a partial server).
func Start(ctx context.Context, opts Options) (*Server, error) {
	for _, bin := range []string{"dbus-daemon", "firewalld", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s not found (apt-get install -y firewalld nftables dbus-daemon): %w", bin, err)
		}
	}
	s, err := StartBus(ctx, opts.Dir)
	if err != nil {
		return s, err
	}
	for _, d := range []string{"", "zones", "policies", "services", "ipsets", "icmptypes", "helpers"} {
		if err := os.MkdirAll(filepath.Join(s.ConfigDir, d), 0o755); err != nil {
			return s, err
		}
	}
	if err := os.WriteFile(filepath.Join(s.ConfigDir, "firewalld.conf"), []byte(firewalldConf), 0o644); err != nil {
		return s, err
	}

	fwLog, err := os.Create(s.LogFile)
	if err != nil {
		return s, err
	}
	defer fwLog.Close()
	args := []string{"--nofork", "--nopid", "--system-config", s.ConfigDir, "--log-target", "console"}
	if opts.NetNS != "" {
		// ip execs firewalld, so the PID we hold is firewalld's.
		s.fw = exec.Command("ip", append([]string{"netns", "exec", opts.NetNS, "firewalld"}, args...)...)
	} else {
		s.fw = exec.Command("firewalld", args...)
		// Never this machine's network namespace: a new one, gone with firewalld.
		s.fw.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	}
	s.fw.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+s.BusAddress)
	s.fw.Stdout, s.fw.Stderr = fwLog, fwLog
	if err := s.fw.Start(); err != nil {
		return s, fmt.Errorf("start firewalld: %w", err)
	}
	exited := make(chan struct{})
	go func() { s.fw.Wait(); close(exited) }()
	s.exited = exited
	if err := waitFor(ctx, 60*time.Second, func() error {
		select {
		case <-exited:
			return errExited
		default:
		}
		return s.running()
	}); err != nil {
		return s, fmt.Errorf("firewalld did not come up: %w\n%s", err, s.Log())
	}
	return s, nil
}

var errExited = errors.New("firewalld exited")

func (s *Server) running() error {
	c, err := dbus.Connect(s.BusAddress)
	if err != nil {
		return err
	}
	defer c.Close()
	v, err := c.Object("org.fedoraproject.FirewallD1", "/org/fedoraproject/FirewallD1").
		GetProperty("org.fedoraproject.FirewallD1.state")
	if err != nil {
		return err
	}
	if st, _ := v.Value().(string); st != "RUNNING" {
		return fmt.Errorf("state %q", st)
	}
	return nil
}

// Log returns what firewalld printed.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.LogFile)
	return string(b)
}

// PID is firewalld's process id.
func (s *Server) PID() int {
	if s.fw == nil || s.fw.Process == nil {
		return 0
	}
	return s.fw.Process.Pid
}

// Stop terminates firewalld, then the bus, by PID, waiting for each.
func (s *Server) Stop() error {
	if s == nil {
		return nil
	}
	var errs []error
	if s.fw != nil && s.fw.Process != nil {
		errs = append(errs, stopWait(s.fw.Process, s.exited))
	}
	if s.bus != nil && s.bus.Process != nil {
		done := make(chan struct{})
		go func() { s.bus.Wait(); close(done) }()
		errs = append(errs, stopWait(s.bus.Process, done))
	}
	return errors.Join(errs...)
}

func stopWait(p *os.Process, done <-chan struct{}) error {
	if done == nil {
		// Start failed before the waiter ran.
		ch := make(chan struct{})
		go func() { p.Wait(); close(ch) }()
		done = ch
	}
	p.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(20 * time.Second):
	}
	p.Kill()
	select {
	case <-done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("pid %d did not exit", p.Pid)
	}
}

func waitFor(ctx context.Context, limit time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var err error
	for {
		if err = f(); err == nil || errors.Is(err, errExited) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Run executes a command inside the namespace firewalld runs in (for nft
// listings in failure messages).
func (s *Server) Run(ctx context.Context, name string, args ...string) (string, error) {
	pid := s.PID()
	if pid == 0 {
		return "", errors.New("firewalld not running")
	}
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=/proc/" + fmt.Sprint(pid) + "/ns/net", "--", name}, args...)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
