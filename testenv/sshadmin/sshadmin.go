// Package sshadmin is an administrator's workstation for integration
// tests: an SSH client key, a known_hosts file and an ssh_config of the
// test's own, used from a network namespace of the test's own (a netlab
// member). This machine's ~/.ssh and its own network namespace are never
// used.
//
// OpenSSH takes ~ from the passwd entry, not from $HOME, so the only
// reliable way to make ssh use the test's files is `ssh -F CONFIG`:
// ConfigPath is that file, and what provision's --ssh-config takes. The
// config reads no other file (-F skips /etc/ssh/ssh_config too) and leaves
// host key checking as strict as OpenSSH's defaults; callers pass
// BatchMode and StrictHostKeyChecking as they would for real.
//
// Connection sharing: the config sets ControlPath (not ControlMaster), so a
// caller that asks for ControlMaster=auto with ControlPersist leaves a
// master running in the background. Close stops every master whose socket
// is in the admin's control directory (ssh -O exit, then SIGTERM to the
// master's PID if it lingers) and removes the directory.
package sshadmin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/openbis/provision/testenv/netlab"
)

// A unix socket path has at most 107 bytes. ssh names a master's socket
// CONTROL_DIR/%C (40 hex digits) and first binds it with a 17-byte random
// suffix, so the control directory may be at most this long.
const maxControlDir = 107 - len("/") - 40 - len(".0123456789abcdef")

// Admin is one test's SSH client setup.
type Admin struct {
	member     *netlab.Member
	config     string
	knownHosts string
	controlDir string
	pub        []byte
}

// New sets up an admin in dir (a t.TempDir()) whose commands run in
// member's network namespace: an ed25519 key pair id_ed25519, an empty
// known_hosts, ssh_config and the control directory for masters' sockets:
// dir/cm, or a short directory under /tmp when dir is too long for unix
// socket paths. Call Close when done.
func New(ctx context.Context, dir string, member *netlab.Member) (*Admin, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("ssh admin: %w", err)
	}
	if strings.ContainsAny(dir, "\"\n") {
		return nil, fmt.Errorf("ssh admin: directory %q cannot be written into an ssh_config", dir)
	}
	a := &Admin{
		member:     member,
		config:     filepath.Join(dir, "ssh_config"),
		knownHosts: filepath.Join(dir, "known_hosts"),
	}
	key := filepath.Join(dir, "id_ed25519")
	out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sshadmin", "-f", key).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ssh admin: make client key: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if a.pub, err = os.ReadFile(key + ".pub"); err != nil {
		return nil, fmt.Errorf("ssh admin: %w", err)
	}
	if err := os.WriteFile(a.knownHosts, nil, 0o600); err != nil {
		return nil, fmt.Errorf("ssh admin: %w", err)
	}
	a.controlDir = filepath.Join(dir, "cm")
	if len(a.controlDir) <= maxControlDir {
		err = os.Mkdir(a.controlDir, 0o700)
	} else {
		a.controlDir, err = os.MkdirTemp("/tmp", "sshcm-")
	}
	if err != nil {
		return nil, fmt.Errorf("ssh admin: control directory: %w", err)
	}
	// The options below expand % tokens: a literal % is doubled.
	esc := func(p string) string { return strings.ReplaceAll(p, "%", "%%") }
	config := fmt.Sprintf(`# An admin workstation of one test (testenv/sshadmin): ssh -F %s
Host *
	User root
	IdentityFile "%s"
	IdentitiesOnly yes
	UserKnownHostsFile "%s"
	GlobalKnownHostsFile /dev/null
	ControlPath "%s/%%C"
	ConnectTimeout 10
`, a.config, esc(key), esc(a.knownHosts), esc(a.controlDir))
	if err := os.WriteFile(a.config, []byte(config), 0o600); err != nil {
		os.RemoveAll(a.controlDir)
		return nil, fmt.Errorf("ssh admin: %w", err)
	}
	return a, nil
}

// ConfigPath is the ssh_config to pass as ssh -F (provision --ssh-config).
func (a *Admin) ConfigPath() string { return a.config }

// ControlDir holds the connection masters' sockets: give provision
// --ssh-option ControlPath=DIR/%C so that Close finds its masters too.
func (a *Admin) ControlDir() string { return a.controlDir }

// AuthorizedKey is the admin's public key, an authorized_keys line.
func (a *Admin) AuthorizedKey() []byte { return append([]byte(nil), a.pub...) }

// Trust adds host's key to the admin's known_hosts. host is the name or
// address the admin connects to ("[host]:port" for a port other than 22);
// hostKey is "TYPE BASE64" as freshserver's EnableSSH returns it.
func (a *Admin) Trust(host, hostKey string) error {
	f := strings.Fields(hostKey)
	if host == "" || strings.ContainsAny(host, " \t\r\n#") || len(f) < 2 {
		return fmt.Errorf("ssh admin: trust %q with key %q: want a host name and \"TYPE BASE64\"", host, hostKey)
	}
	kh, err := os.OpenFile(a.knownHosts, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("ssh admin: trust %s: %w", host, err)
	}
	_, err = fmt.Fprintf(kh, "%s %s %s\n", host, f[0], f[1])
	if cerr := kh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ssh admin: trust %s: %w", host, err)
	}
	return nil
}

// Command runs args in the admin's network namespace. It has no
// controlling terminal, so ssh can never stop to ask a question, and no
// SSH_AUTH_SOCK, so no agent of the person running the tests is used.
func (a *Admin) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := a.member.Command(ctx, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SSH_AUTH_SOCK=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd
}

// SSH is Command for `ssh -F CONFIG args…`.
func (a *Admin) SSH(ctx context.Context, args ...string) *exec.Cmd {
	return a.Command(ctx, append([]string{"ssh", "-F", a.config}, args...)...)
}

var masterPid = regexp.MustCompile(`Master running \(pid=(\d+)\)`)

// Close stops the connection masters left running and removes the control
// directory; the admin's other files stay in its directory. The masters'
// sockets are plain files, so this works from this machine's namespace,
// also after the admin's namespace is gone. Safe to call more than once.
func (a *Admin) Close() error {
	if a.controlDir == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	entries, err := os.ReadDir(a.controlDir)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("ssh admin: close: %w", err)
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, a.stopMaster(ctx, filepath.Join(a.controlDir, e.Name())))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ssh admin: close: %w", err)
	}
	if err := os.RemoveAll(a.controlDir); err != nil {
		return fmt.Errorf("ssh admin: close: %w", err)
	}
	a.controlDir = ""
	return nil
}

// stopMaster asks the master at sock to exit and waits until its process
// is gone. A socket no master answers on is stale and removed.
func (a *Admin) stopMaster(ctx context.Context, sock string) error {
	// The destination is required but unused: -O talks to the socket only.
	mux := func(op string) ([]byte, error) {
		return exec.CommandContext(ctx, "ssh", "-F", a.config, "-S", sock, "-O", op, "sshadmin-master").CombinedOutput()
	}
	out, err := mux("check")
	m := masterPid.FindSubmatch(out)
	if err != nil || m == nil {
		return os.Remove(sock)
	}
	pid, _ := strconv.Atoi(string(m[1]))
	if out, err := mux("exit"); err != nil {
		return fmt.Errorf("stop ssh master %d: %w: %s", pid, err, strings.TrimSpace(string(out)))
	}
	for i := 0; running(pid, sock); i++ {
		if i == 50 {
			// Still the master of our socket (its title names it): ours.
			syscall.Kill(pid, syscall.SIGTERM)
		}
		if i == 100 {
			return fmt.Errorf("ssh master %d did not exit", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.Remove(sock); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// running reports whether pid is still the ssh master of sock: a master
// sets its title to "ssh: SOCKET [mux]". A zombie or a reused PID is not.
func running(pid int, sock string) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && strings.Contains(string(cmdline), sock)
}
