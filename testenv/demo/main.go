// Command demo boots a throwaway fresh server and converges it with the
// real provision binary and examples/demo.hcl, as an admin would: plan,
// apply, the stand-in JupyterHub answering on port 8000, and a second plan
// that finds nothing to do. The server stays up for you to look around;
// `demo down` powers it off and removes it. Run it as root from the
// repository (.ci/demo and .ci/demo-down wrap it).
//
//	demo up [-provision BIN]   boot, converge, show
//	demo down                  power the server off, by PID, and clean up
//	demo status                print how to enter the running server
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"golang.org/x/term"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openbis/provision/testenv/e2e"
	"github.com/openbis/provision/testenv/freshserver"
)

const (
	// workDir holds the demo server's overlay and docker data; nothing
	// else of this machine is touched.
	workDir   = "/var/tmp/provision-demo"
	stateFile = workDir + "/server.json"
)

// state is what `down` needs to find the server again.
type state struct {
	Pid    int    `json:"pid"`    // the server's systemd
	Nspawn int    `json:"nspawn"` // its systemd-nspawn
	Dir    string `json:"dir"`    // overlay and docker data
}

func main() {
	log := func(format string, a ...any) { fmt.Fprintf(os.Stderr, "demo: "+format+"\n", a...) }
	if len(os.Args) < 2 {
		log("usage: demo up [-provision BIN] | down | status")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "up":
		fs := flag.NewFlagSet("up", flag.ExitOnError)
		bin := fs.String("provision", "", "provision binary to install (default: build ./cmd/provision)")
		fs.Parse(os.Args[2:])
		err = up(ctx, *bin)
	case "down":
		err = down()
	case "status":
		err = status()
	default:
		err = fmt.Errorf("unknown command %q: use up, down or status", os.Args[1])
	}
	if err != nil {
		log("%v", err)
		os.Exit(1)
	}
}

func step(start time.Time, format string, a ...any) {
	fmt.Printf("\n%s==> [%5.1fs] %s%s\n", bold, time.Since(start).Seconds(), fmt.Sprintf(format, a...), reset)
}

func up(ctx context.Context, bin string) error {
	start := time.Now()
	if _, err := os.Stat(stateFile); err == nil {
		fmt.Println("A demo server is already up; replacing it.")
		if err := down(); err != nil {
			return err
		}
	}
	repo, err := e2e.RepoRoot()
	if err != nil {
		return err
	}
	if bin == "" {
		step(start, "Building provision")
		bin = filepath.Join(os.TempDir(), "provision-demo-bin")
		if err := e2e.BuildProvision(ctx, repo, bin); err != nil {
			return err
		}
		defer os.Remove(bin)
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return err
	}

	step(start, "Booting a fresh Debian 12 server (systemd-nspawn, private network; docker and firewalld installed, not configured)")
	s, err := freshserver.Boot(ctx, freshserver.Options{WorkDir: workDir})
	if err != nil {
		return err
	}
	if err := saveState(s); err != nil {
		s.Shutdown()
		return err
	}
	fmt.Printf("server up: pid %d, root %s\n", s.Pid, s.Root)

	step(start, "Copying in provision, the spec, the ELN's InstanceProfile.js and the image tar")
	h, err := e2e.Install(s, bin, filepath.Join(repo, "examples/demo.hcl"))
	if err != nil {
		return err
	}
	tar, id, err := h.WriteImage("1", false, 0)
	if err != nil {
		return err
	}
	fmt.Printf("%s  -> %s\n%s  (stand-in image %s:1, %s)\n", filepath.Join(repo, "examples/demo.hcl"), e2e.SpecPath, tar, e2e.ImageRepo, id[:19])

	run := func(want int, args ...string) error {
		fmt.Printf("\n%sserver# %s%s\n", bold, strings.Join(args, " "), reset)
		cmd := h.Command(ctx, args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
		err := cmd.Run()
		code := 0
		var ee interface{ ExitCode() int }
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			return err
		}
		fmt.Printf("%s(exit %d)%s\n", faint, code, reset)
		if code != want {
			return fmt.Errorf("%s exited %d, want %d; the server stays up for a look (.ci/demo-down removes it)", strings.Join(args, " "), code, want)
		}
		return nil
	}
	for _, host := range []string{e2e.JupyterHubHost, e2e.OpenBISHost} {
		step(start, "Plan and apply for %s", host)
		if err := run(2, provision("plan", host)...); err != nil {
			return err
		}
		if err := run(0, provision("apply", host)...); err != nil {
			return err
		}
	}

	step(start, "The stand-in JupyterHub answers on port 8000")
	gctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	_, err = h.Get(gctx, "http://127.0.0.1:8000/")
	cancel()
	if err != nil {
		return err
	}
	if err := run(0, "curl", "-sS", "http://127.0.0.1:8000/"); err != nil {
		return err
	}

	step(start, "A second plan finds nothing to do")
	for _, host := range []string{e2e.JupyterHubHost, e2e.OpenBISHost} {
		if err := run(0, provision("plan", host)...); err != nil {
			return err
		}
	}

	step(start, "Hourly drift check: examples/provision-plan.{service,timer}")
	if err := h.InstallDriftCheck(filepath.Join(repo, "examples")); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"systemctl", "daemon-reload"},
		{"systemctl", "enable", "--now", "provision-plan.timer"},
		{"systemctl", "start", "provision-plan.service"},
	} {
		if err := run(0, args...); err != nil {
			return err
		}
	}
	if err := run(0, "systemctl", "list-timers", "--no-pager", "provision-plan.timer"); err != nil {
		return err
	}

	fmt.Printf("\n%sDone in %.1fs.%s The server stays up:\n", bold, time.Since(start).Seconds(), reset)
	return status()
}

// provision is the command line of verb for host of the demo spec.
func provision(verb, host string) []string {
	return append(append([]string{"provision", verb}, e2e.HostArgs(host)...), e2e.SpecPath)
}

func saveState(s *freshserver.Server) error {
	// The server's directory is the one freshserver made in workDir.
	dirs, _ := filepath.Glob(filepath.Join(workDir, "freshserver-*"))
	if len(dirs) != 1 {
		return fmt.Errorf("expected one server directory in %s, found %v", workDir, dirs)
	}
	st := state{Pid: s.Pid, Nspawn: ppid(s.Pid), Dir: dirs[0]}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(stateFile, append(b, '\n'), 0o600)
}

func loadState() (state, error) {
	var st state
	b, err := os.ReadFile(stateFile)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which may hold spaces, in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// alive says whether st still names the demo server's processes: a pid
// reused by something else since must never be signalled.
func (st state) alive() bool {
	return st.Pid > 0 && comm(st.Pid) == "systemd" && ppid(st.Pid) == st.Nspawn && comm(st.Nspawn) == "systemd-nspawn"
}

func status() error {
	st, err := loadState()
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("No demo server is up. Start one with .ci/demo.")
		return nil
	}
	if err != nil {
		return err
	}
	if !st.alive() {
		fmt.Printf("The demo server (pid %d) is gone; .ci/demo-down cleans up after it.\n", st.Pid)
		return nil
	}
	fmt.Printf(`  enter it:   nsenter -t %d -m -u -i -n -p -C --root --wd bash
  then try:   %s
              docker ps; systemctl --failed; journalctl -u provision-plan
  remove it:  .ci/demo-down
`, st.Pid, strings.Join(provision("plan", e2e.JupyterHubHost), " "))
	return nil
}

// sigPowerOff is SIGRTMIN+4: systemd powers off on it.
const sigPowerOff = unix.Signal(38)

func down() error {
	st, err := loadState()
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("No demo server is up.")
		return nil
	}
	if err != nil {
		return err
	}
	if st.alive() {
		fmt.Printf("Powering off the demo server (pid %d)…\n", st.Pid)
		unix.Kill(st.Pid, sigPowerOff)
		if !waitGone(st.Nspawn, 15*time.Second) {
			fmt.Printf("It did not stop in time; killing pid %d.\n", st.Pid)
			unix.Kill(st.Pid, unix.SIGKILL)
			if !waitGone(st.Nspawn, 10*time.Second) && comm(st.Nspawn) == "systemd-nspawn" {
				unix.Kill(st.Nspawn, unix.SIGKILL)
				waitGone(st.Nspawn, 5*time.Second)
			}
		}
	}
	if strings.HasPrefix(st.Dir, workDir+"/freshserver-") {
		root := filepath.Join(st.Dir, "root")
		if err := unix.Unmount(root, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			if err := unix.Unmount(root, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("unmount %s: %w", root, err)
			}
		}
		if err := os.RemoveAll(st.Dir); err != nil {
			return err
		}
	}
	if err := os.Remove(stateFile); err != nil {
		return err
	}
	fmt.Println("The demo server is gone.")
	return nil
}

// waitGone waits until pid has exited (it is not our child: poll /proc).
func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return true
		}
		if strings.Contains(procState(pid), "Z") {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 1 {
		return ""
	}
	return f[0]
}

// Styles of the demo's own headings: only on a terminal, never with NO_COLOR.
var bold, faint, reset = styles()

func styles() (string, string, string) {
	if os.Getenv("NO_COLOR") != "" || !term.IsTerminal(int(os.Stdout.Fd())) {
		return "", "", ""
	}
	return "\033[1m", "\033[2m", "\033[0m"
}
