// Command demo converges a throwaway two-host deployment with the real
// provision binary and examples/demo.hcl, as an admin would: an openBIS
// server and a JupyterHub server (fresh servers on a private network), the
// real JupyterHub image, plan and apply on each, then a user's browser on
// another network clicks the ELN's notebook button and lands on the
// notebook (a screenshot is saved), and a second plan finds nothing to do.
// The servers stay up for you to look around; `demo down` powers them off
// and removes them. Run it as root from the repository (.ci/demo and
// .ci/demo-down wrap it).
//
//	demo up [-provision BIN]   boot, converge, click, show
//	demo down                  power the servers off, by PID, and clean up
//	demo status                print how to enter the running servers
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"golang.org/x/sys/unix"

	"github.com/openbis/provision/testenv/e2e"
	"github.com/openbis/provision/testenv/freshserver"
	"github.com/openbis/provision/testenv/netlab"
)

const (
	// workDir holds the demo servers' overlays and docker data; nothing
	// else of this machine is touched.
	workDir   = "/var/tmp/provision-demo"
	stateFile = workDir + "/servers.json"
	// adminDir is the admin workstation's ssh files and spec.
	adminDir = workDir + "/admin"
	// Screenshot is where the notebook page the user's browser reached is
	// saved.
	Screenshot = "/var/cache/provision-demo/notebook.png"
)

// state is what `down` needs to find the servers and the network again.
type state struct {
	Servers []server `json:"servers"`
	Lab     string   `json:"lab"`   // netlab ID
	Admin   string   `json:"admin"` // the admin's namespace
}

type server struct {
	Name   string `json:"name"`
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
		err = showStatus()
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
		fmt.Println("A demo is already up; replacing it.")
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
	for _, d := range []string{workDir, filepath.Dir(Screenshot)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}

	step(start, "Booting an openBIS server and a JupyterHub server (fresh Debian 12, docker and firewalld installed, not configured) on a private network, and a user's namespace on another; building the JupyterHub image once (cached)")
	w, err := e2e.NewWorld(ctx, e2e.WorldOptions{Provision: bin, Users: []string{"alice", "admin"}, Owned: true,
		Server: freshserver.Options{WorkDir: workDir}, Log: os.Stderr})
	if serr := saveState(w); err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("%w (.ci/demo-down removes what was made)", err)
	}
	fmt.Printf("JupyterHub server %s: pid %d, %s\nopenBIS server %s: pid %d, %s (the openBIS stand-in serves the ELN page)\nuser alice: namespace %s, %s\n",
		e2e.WorldHub, w.Hub.Pid, w.HubAddr, e2e.WorldOpenBIS, w.OpenBIS.Pid, w.OpenBISAddr, w.Users["alice"].NS, w.Users["alice"].Addr)
	spec, err := w.Spec("")
	if err != nil {
		return err
	}

	// show runs cmd, printed as prompt and args, streaming its output.
	show := func(cmd *exec.Cmd, want int, prompt string, args []string) error {
		fmt.Printf("\n%s%s %s%s\n", bold, prompt, strings.Join(args, " "), reset)
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
			return fmt.Errorf("%s exited %d, want %d; the servers stay up for a look (.ci/demo-down removes them)", strings.Join(args, " "), code, want)
		}
		return nil
	}
	run := func(h e2e.Host, want int, args ...string) error {
		return show(h.Command(ctx, args...), want, serverName(w, h)+"#", args)
	}
	// The admin's workstation: a namespace of its own with OpenSSH to both
	// servers, their host keys in its known_hosts.
	if err := os.RemoveAll(adminDir); err != nil {
		return err
	}
	if err := os.MkdirAll(adminDir, 0o700); err != nil {
		return err
	}
	adm, err := w.NewAdmin(ctx, "admin", adminDir, bin, nil)
	if err != nil {
		return err
	}
	defer adm.Close()
	specPath, err := adm.WriteSpec(spec)
	if err != nil {
		return err
	}
	admin := func(want int, args ...string) error {
		return show(adm.ProvisionCommand(ctx, args...), want, "admin$ provision", args)
	}
	step(start, "From the admin's workstation (another network, OpenSSH, host keys checked): plan both hosts, then apply, the JupyterHub host first")
	if err := admin(2, "plan", "--all", specPath); err != nil {
		return err
	}
	if err := admin(0, "apply", "--all", specPath); err != nil {
		return err
	}

	step(start, "alice's browser (headless Chromium, on another network) opens the ELN page on %s and clicks the notebook button", e2e.WorldOpenBIS)
	status, url, err := w.Notebook(ctx, "alice", "analysis", Screenshot, 90*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("page status: %s\nthe browser is on: %s\n", status, url)
	if !strings.Contains(url, "/user/alice/notebooks/openbis/analysis.ipynb") {
		return fmt.Errorf("the browser did not reach the notebook; the servers stay up for a look (.ci/demo-down removes them)")
	}
	fmt.Printf("screenshot of the notebook page: %s\n", Screenshot)
	if err := run(w.Hub, 0, "ls", "-l", e2e.UsersHome+"/alice/openbis/"); err != nil {
		return err
	}

	step(start, "A second plan finds nothing to do")
	if err := admin(0, "plan", "--all", specPath); err != nil {
		return err
	}

	step(start, "Hourly drift check on %s: examples/provision-plan.{service,timer}", e2e.WorldHub)
	for _, h := range []e2e.Host{w.Hub, w.OpenBIS} {
		if err := h.WriteFile(e2e.SpecPath, spec, 0o644); err != nil {
			return err
		}
	}
	if err := w.Hub.InstallDriftCheck(filepath.Join(repo, "examples"), e2e.WorldHub); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"systemctl", "daemon-reload"},
		{"systemctl", "enable", "--now", "provision-plan.timer"},
		{"systemctl", "start", "provision-plan.service"},
	} {
		if err := run(w.Hub, 0, args...); err != nil {
			return err
		}
	}
	if err := run(w.Hub, 0, "systemctl", "list-timers", "--no-pager", "provision-plan.timer"); err != nil {
		return err
	}

	fmt.Printf("\n%sDone in %.1fs.%s The servers stay up:\n", bold, time.Since(start).Seconds(), reset)
	return showStatus()
}

func serverName(w *e2e.World, h e2e.Host) string {
	if h.Pid == w.Hub.Pid {
		return e2e.WorldHub
	}
	return e2e.WorldOpenBIS
}

// provision is the command line of verb for host of the demo spec.
func provision(verb, host string) []string {
	return []string{"provision", verb, "--host", host, e2e.SpecPath}
}

func saveState(w *e2e.World) error {
	var st state
	if w.Lab != nil {
		st.Lab = w.Lab.ID
	}
	if m := w.Users["admin"]; m != nil {
		st.Admin = m.NS
	}
	for _, h := range []struct {
		h    e2e.Host
		name string
	}{{w.Hub, e2e.WorldHub}, {w.OpenBIS, e2e.WorldOpenBIS}} {
		if h.h.Server != nil {
			st.Servers = append(st.Servers, server{Name: h.name, Pid: h.h.Pid, Nspawn: e2e.ParentPid(h.h.Pid), Dir: h.h.Dir()})
		}
	}
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

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// alive says whether sv still names a demo server's processes: a pid
// reused by something else since must never be signalled.
func (sv server) alive() bool {
	return sv.Pid > 0 && comm(sv.Pid) == "systemd" && e2e.ParentPid(sv.Pid) == sv.Nspawn && comm(sv.Nspawn) == "systemd-nspawn"
}

func showStatus() error {
	st, err := loadState()
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("No demo is up. Start one with .ci/demo.")
		return nil
	}
	if err != nil {
		return err
	}
	for _, sv := range st.Servers {
		if !sv.alive() {
			fmt.Printf("%s (pid %d) is gone; .ci/demo-down cleans up after it.\n", sv.Name, sv.Pid)
			continue
		}
		fmt.Printf("%s:\n  enter it:   nsenter -t %d -m -u -i -n -p -C --root --wd bash\n  then try:   %s\n", sv.Name, sv.Pid, strings.Join(provision("plan", sv.Name), " "))
	}
	fmt.Printf(`              docker ps; systemctl --failed; journalctl -u provision-plan
the admin's workstation:
  plan both:  ip netns exec %s /var/cache/provision-demo/provision plan --all --ssh-config %s/ssh_config %s/deployment.hcl
  screenshot: %s
  remove it:  .ci/demo-down
`, st.Admin, adminDir, adminDir, Screenshot)
	return nil
}

// sigPowerOff is SIGRTMIN+4: systemd powers off on it.
const sigPowerOff = unix.Signal(38)

func down() error {
	st, err := loadState()
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("No demo is up.")
		return nil
	}
	if err != nil {
		return err
	}
	for _, sv := range st.Servers {
		if sv.alive() {
			fmt.Printf("Powering off %s (pid %d)…\n", sv.Name, sv.Pid)
			unix.Kill(sv.Pid, sigPowerOff)
			if !waitGone(sv.Nspawn, 15*time.Second) {
				fmt.Printf("It did not stop in time; killing pid %d.\n", sv.Pid)
				unix.Kill(sv.Pid, unix.SIGKILL)
				if !waitGone(sv.Nspawn, 10*time.Second) && comm(sv.Nspawn) == "systemd-nspawn" {
					unix.Kill(sv.Nspawn, unix.SIGKILL)
					waitGone(sv.Nspawn, 5*time.Second)
				}
			}
		}
		if strings.HasPrefix(sv.Dir, workDir+"/freshserver-") {
			root := filepath.Join(sv.Dir, "root")
			if err := unix.Unmount(root, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				if err := unix.Unmount(root, unix.MNT_DETACH); err != nil {
					return fmt.Errorf("unmount %s: %w", root, err)
				}
			}
			if err := os.RemoveAll(sv.Dir); err != nil {
				return err
			}
		}
	}
	if st.Lab != "" {
		if err := netlab.Remove(st.Lab); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(adminDir); err != nil {
		return err
	}
	if err := os.Remove(stateFile); err != nil {
		return err
	}
	fmt.Println("The demo is gone.")
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
