// Package remote runs provision on the hosts of a deployment from the
// admin's machine: through the system's OpenSSH client (so ~/.ssh/config,
// the agent, ProxyJump, known_hosts and multiplexing work as they do for
// ssh itself), with provision's own binary copied to a hash-named cache on
// the host, and one request per run sent on the connection's stdin.
package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Target is how one host block is reached.
type Target struct {
	// Host is the host block's name.
	Host string
	// Destination is ssh's [user@]host: the block's ssh { destination },
	// else its name. Empty means this machine: no SSH.
	Destination string
	// Port is the block's ssh { port }; 0 leaves it to ssh's configuration.
	Port int
}

// Local reports whether the target is this machine.
func (t Target) Local() bool { return t.Destination == "" }

// String names the target in messages: the host, and how it is reached.
func (t Target) String() string {
	switch {
	case t.Local():
		return t.Host + " (this machine)"
	case t.Port != 0:
		return fmt.Sprintf("%s (ssh %s, port %d)", t.Host, t.Destination, t.Port)
	case t.Destination != t.Host:
		return fmt.Sprintf("%s (ssh %s)", t.Host, t.Destination)
	}
	return t.Host
}

// SSH is the admin's OpenSSH client and the options provision adds.
type SSH struct {
	// Program is the ssh client; default "ssh" from PATH.
	Program string
	// Config is an ssh_config file given with -F; "" uses ~/.ssh/config.
	Config string
	// Options are -o KEY=VALUE options of the admin's.
	Options []string
	// ControlDir holds the multiplexing sockets; "" turns multiplexing off.
	ControlDir string
}

// enforced are the options provision always gives and never lets an
// option or a config file turn off: no prompt without a terminal, and
// host keys checked against known_hosts, never accepted blindly. ssh takes
// the first value it is given, and command-line options come before any
// configuration file.
// The others keep the session provision's: its command, not one from a
// config file. (Options that only OpenSSH 8.7 and later know, such as
// ForkAfterAuthentication, are left out so that older clients work; a
// session that runs something else answers no plan and fails anyway.)
var enforced = []string{"BatchMode=yes", "StrictHostKeyChecking=yes", "RemoteCommand=none", "PermitLocalCommand=no"}

// defaults are options the admin may override with --ssh-option (which
// comes first; a config file cannot, as ssh takes the first value): a host
// that does not answer, or a link that dies silently, is an error within a
// minute, not a hang.
var defaults = []string{"ConnectTimeout=30", "ServerAliveInterval=15", "ServerAliveCountMax=4"}

// CheckOption refuses an -o option that would weaken what provision
// enforces, or that is not KEY=VALUE.
func CheckOption(opt string) error {
	key, _, ok := strings.Cut(opt, "=")
	if !ok || key == "" || strings.ContainsAny(key, " \t") || strings.HasPrefix(opt, "-") {
		return fmt.Errorf("ssh option %q: write KEY=VALUE, e.g. ProxyJump=bastion.example.org", opt)
	}
	for _, e := range enforced {
		if k, _, _ := strings.Cut(e, "="); strings.EqualFold(k, key) {
			return fmt.Errorf("ssh option %q: provision always runs ssh with %s (no password prompts, host keys checked against known_hosts, its own command on the session)", opt, e)
		}
	}
	return nil
}

// DefaultControlDir is where multiplexing sockets go: the admin's cache
// directory, or "" (no multiplexing) when its socket paths would be too
// long for a Unix socket.
func DefaultControlDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	dir = filepath.Join(dir, "provision", "ssh")
	// %C expands to 40 hex digits, and ssh first binds the socket with a
	// 17-byte suffix; sun_path holds 107 bytes.
	if len(dir)+1+40+17 > 107 {
		return ""
	}
	return dir
}

// args is ssh's command line for running command on t.
func (s *SSH) args(t Target, command string) ([]string, error) {
	var args []string
	if s.Config != "" {
		args = append(args, "-F", s.Config)
	}
	for _, e := range enforced {
		args = append(args, "-o", e)
	}
	for _, o := range s.Options {
		if err := CheckOption(o); err != nil {
			return nil, err
		}
		args = append(args, "-o", o)
	}
	for _, d := range defaults {
		args = append(args, "-o", d)
	}
	if s.ControlDir != "" {
		if err := os.MkdirAll(s.ControlDir, 0o700); err != nil {
			return nil, fmt.Errorf("create the ssh control directory: %w", err)
		}
		// As Ansible does: one connection per host, kept a minute, so the
		// next plan skips the key exchange.
		args = append(args, "-o", "ControlMaster=auto", "-o", "ControlPath="+filepath.Join(s.ControlDir, "%C"), "-o", "ControlPersist=60s")
	}
	args = append(args, "-T", "-x")
	if t.Port != 0 {
		args = append(args, "-p", strconv.Itoa(t.Port))
	}
	return append(args, "--", t.Destination, command), nil
}

// Run runs command on t with stdin, streaming its standard output to
// stdout. It returns the command's exit code; err is set when ssh itself
// failed (exit 255) or could not start, with what ssh printed.
func (s *SSH) Run(ctx context.Context, t Target, command string, stdin io.Reader, stdout io.Writer) (int, error) {
	prog := s.Program
	if prog == "" {
		prog = "ssh"
	}
	args, err := s.args(t, command)
	if err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, prog, args...)
	// A file, not a pipe: the multiplexing master ssh leaves behind keeps
	// its standard error open for a minute, and waiting for a pipe's end
	// would wait for it.
	errf, err := os.CreateTemp("", "provision-ssh-")
	if err != nil {
		return 0, fmt.Errorf("run %s: %w", prog, err)
	}
	os.Remove(errf.Name())
	defer errf.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, errf
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // ssh exited 0; something it started kept its output open
	}
	stderr, _ := io.ReadAll(io.NewSectionReader(errf, 0, 1<<20))
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee) && ee.ExitCode() == 2:
		return 2, nil // changes pending: not a failure
	case errors.As(err, &ee) && ee.ExitCode() != 255:
		return ee.ExitCode(), remoteStderr(stderr)
	case errors.As(err, &ee):
		return 255, sshError(t, stderr)
	}
	return 0, fmt.Errorf("run %s: %w", prog, err)
}

// remoteStderr is what the remote command printed on its standard error
// (its output proper is JSON lines on stdout): nil when it said nothing.
func remoteStderr(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) == 0 {
		return nil
	}
	return errors.New(string(b))
}

// sshError explains a failure of ssh itself, with a hint for the usual
// causes.
func sshError(t Target, stderr []byte) error {
	msg := strings.TrimSpace(string(stderr))
	if msg == "" {
		msg = "ssh exited with 255"
	}
	hint := ""
	switch {
	case strings.Contains(msg, "Host key verification failed"), strings.Contains(msg, "No ED25519 host key is known"),
		strings.Contains(msg, "REMOTE HOST IDENTIFICATION HAS CHANGED"):
		hint = "\nprovision checks host keys strictly: verify the host's key and add it to known_hosts (for example by connecting once with ssh, with the same configuration and port)."
	case strings.Contains(msg, "Permission denied"):
		hint = "\nssh runs in batch mode, without password prompts: use a key (or the agent) that the host accepts."
	case strings.Contains(msg, "Could not resolve hostname"):
		hint = "\nGive the host block an ssh { destination = \"user@address\" }, or a Host entry in ~/.ssh/config."
	}
	return fmt.Errorf("cannot reach it over SSH: %s%s", msg, hint)
}
