package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/openbis/provision/internal/engine"
	"github.com/openbis/provision/internal/spec"
)

// Command is the hidden subcommand a host runs a Request with.
const Command = "__remote"

// BinDir is the root-owned cache of provision binaries on a host, one
// file per version: provision-SHA256.
const BinDir = "/var/lib/provision/bin"

// Request is what the admin's provision asks of a host's: one plan or
// apply of one host block, of the spec as the admin's machine evaluated
// it (Source.Inputs.Captured holds what file() and env() read there). It
// travels on the SSH connection's stdin, never on a command line.
type Request struct {
	// Command is "plan" or "apply".
	Command string        `json:"command"`
	Host    string        `json:"host"`
	Source  spec.Snapshot `json:"source"`
	// Save: plan sends its plan back as a "saved" line.
	Save bool `json:"save,omitempty"`
	// Saved: apply exactly this plan, refusing if the host changed since.
	Saved *engine.Saved `json:"saved,omitempty"`
	// Verify: apply only checks that Saved still holds; nothing changes.
	Verify bool `json:"verify,omitempty"`
	// Check: after applying, run the host's checks (the hub answers its
	// health check), even when there was nothing to change.
	Check       bool          `json:"check,omitempty"`
	State       string        `json:"state,omitempty"`
	LockFile    string        `json:"lock_file,omitempty"`
	LockTimeout time.Duration `json:"lock_timeout,omitempty"`
	Refresh     bool          `json:"refresh,omitempty"`
}

// ReadRequest decodes the request on a host's stdin.
func ReadRequest(r io.Reader) (*Request, error) {
	var req Request
	dec := json.NewDecoder(io.LimitReader(r, 256<<20))
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("read the request: %w", err)
	}
	if req.Command != "plan" && req.Command != "apply" {
		return nil, fmt.Errorf("request for %q: provision runs plan or apply", req.Command)
	}
	return &req, nil
}

// Runner sends requests to targets, with this machine's provision binary.
type Runner struct {
	SSH *SSH
	// Self is the running binary, copied to hosts that lack it.
	Self string
	bin  *os.File // Self as it runs, whatever replaces the file meanwhile
	size int64
	sum  string // its SHA-256, hex
}

// NewRunner hashes the running binary, which hosts are given. Close it.
func NewRunner(ssh *SSH) (*Runner, error) {
	if runtime.GOOS != "linux" || machine(runtime.GOARCH) == "" {
		return nil, fmt.Errorf("this provision is built for %s/%s; hosts run the Linux build: run provision from a Linux machine", runtime.GOOS, runtime.GOARCH)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find provision's own binary: %w", err)
	}
	// The running program's own bytes, not the file at its path: a package
	// upgrade during the run must not send other bytes than were hashed.
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("read provision's own binary: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read provision's own binary: %w", err)
	}
	return &Runner{SSH: ssh, Self: self, bin: f, size: n, sum: hex.EncodeToString(h.Sum(nil))}, nil
}

// Close releases the binary.
func (r *Runner) Close() error { return r.bin.Close() }

// missing is the exit status of the run script when the host lacks this
// binary (or holds a copy that does not match its hash).
const missing = 113

// Run sends req to t and streams the host's JSON lines to stdout. A host
// without this binary gets it first (note says so). It returns the host's
// exit code (0, 1 or 2, as plan and apply exit); err is set when the host
// could not be reached or the binary not installed.
func (r *Runner) Run(ctx context.Context, t Target, req *Request, stdout io.Writer, note func(string)) (int, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, fmt.Errorf("encode the request: %w", err)
	}
	if t.Local() {
		cmd := exec.CommandContext(ctx, r.Self, Command)
		// On Ctrl-C it stops as a local apply does (its own context is
		// cancelled), rather than being killed between two steps.
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		var stderr bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(body), stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ee.ExitCode() == 2 {
				return 2, nil
			}
			return ee.ExitCode(), remoteStderr(stderr.Bytes())
		}
		return 0, err
	}
	code, err := r.SSH.Run(ctx, t, r.runScript(), bytes.NewReader(body), stdout)
	if code != missing {
		return code, err
	}
	note(fmt.Sprintf("%s: copying provision (%s) to %s/", t.Host, r.sum[:12], BinDir))
	if err := r.install(ctx, t); err != nil {
		return 0, err
	}
	code, err = r.SSH.Run(ctx, t, r.runScript(), bytes.NewReader(body), stdout)
	if code == missing {
		return 0, errors.New("the provision binary copied to the host does not run there")
	}
	return code, err
}

func (r *Runner) install(ctx context.Context, t Target) error {
	code, err := r.SSH.Run(ctx, t, r.installScript(), io.NewSectionReader(r.bin, 0, r.size), io.Discard)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit %d", code)
	}
	if err != nil {
		return fmt.Errorf("copy provision to %s: %w", BinDir, err)
	}
	return nil
}

// asRoot runs a one-line sh script as root: directly when the login is
// root's, else through sudo without a password prompt. The login shell
// (sshd runs the command with it, and it may be fish or csh) only has to
// read two single-quoted words; sh does the rest. The scripts hold only
// fixed text and hex digits, never a spec value, and no single quote.
func asRoot(script string) string {
	wrap := `if [ "$(id -u)" = 0 ]; then exec sh -c "$1"; else exec sudo -n sh -c "$1"; fi`
	return `/bin/sh -c '` + wrap + `' provision '` + script + `'`
}

// runScript runs the cached binary if it is there. Its hash was checked
// when it was written (atomically, in root's directory); hashing it again
// on every run would cost a plan 65 ms, so a run checks only that it is a
// whole copy: executable and of the right size.
func (r *Runner) runScript() string {
	b := BinDir + "/provision-" + r.sum
	return asRoot(fmt.Sprintf(`b=%s; [ -x "$b" ] && [ "$(stat -c %%s "$b")" = %d ] || exit %d; exec "$b" %s`, b, r.size, missing, Command))
}

// keep is how many provision versions a host's cache holds.
const keep = 3

// installScript writes the binary from stdin into the cache atomically:
// into a temporary file next to it, checked against its hash, synced, then
// renamed into place; older versions beyond keep are removed.
func (r *Runner) installScript() string {
	arch := machine(runtime.GOARCH)
	lines := []string{
		`set -eu`,
		fmt.Sprintf(`s=$(uname -s) m=$(uname -m); [ "$s" = Linux ] && [ "$m" = %s ] || { echo "the host is $s $m, this provision is built for Linux %s: install the package built for it" >&2; exit 1; }`, arch, arch),
		`umask 022`,
		fmt.Sprintf(`d=%s; mkdir -p "$d"`, BinDir),
		`{ [ -L "$d" ] || [ "$(stat -c %u "$d")" -ne 0 ]; } && { echo "$d is not a directory of root" >&2; exit 1; }`,
		`chmod 0755 "$d"`,
		// Copies a killed install left behind.
		`find "$d" -maxdepth 1 -name ".provision-*" -mmin +60 -exec rm -f {} +`,
		`t=$(mktemp "$d/.provision-XXXXXX"); trap "rm -f \"\$t\"" EXIT; trap "exit 1" HUP INT TERM PIPE`,
		`cat >"$t"`,
		fmt.Sprintf(`echo "%s  $t" | sha256sum -c --status || { echo "the copy does not match the SHA-256 of the admin binary; not installed" >&2; exit 1; }`, r.sum),
		`chmod 0755 "$t"; sync "$t"`,
		fmt.Sprintf(`mv -f "$t" "$d/provision-%s"; trap - EXIT`, r.sum),
		fmt.Sprintf(`ls -t "$d" | grep -E "^provision-[0-9a-f]{64}$" | tail -n +%d | while read -r f; do rm -f "$d/$f"; done`, keep+1),
	}
	return asRoot(strings.Join(lines, "; "))
}

// machine is uname -m of a Go architecture, "" for one provision is not
// built for.
func machine(goarch string) string {
	return map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "ppc64le": "ppc64le", "s390x": "s390x"}[goarch]
}
