//go:build integration

package sshadmin_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openbis/provision/testenv/freshserver"
	"github.com/openbis/provision/testenv/netlab"
	"github.com/openbis/provision/testenv/sshadmin"
)

// TestSSHToFreshServer is the recipe for tests that reach a fresh server
// over real OpenSSH: the admin in a lab namespace of its own, the server's
// name in the admin's hosts file, the server's host key trusted explicitly.
func TestSSHToFreshServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rootSSH := statRootSSH()

	// Registered first, so it runs last: after the server, the lab and the
	// admin are gone, nothing of theirs is.
	var srvDir string
	var srvPid int
	var lab *netlab.Lab
	t.Cleanup(func() {
		mounts, _ := os.ReadFile("/proc/self/mountinfo")
		if srvDir != "" && strings.Contains(string(mounts), srvDir) {
			t.Errorf("mount under %s left", srvDir)
		}
		if alive(srvPid) {
			t.Errorf("server pid 1 %d still running", srvPid)
		}
		if lab != nil {
			for _, dir := range []string{"/run/netns", "/etc/netns"} {
				entries, _ := os.ReadDir(dir)
				for _, e := range entries {
					if strings.HasPrefix(e.Name(), "provision-lab-"+lab.ID+"-") {
						t.Errorf("%s/%s left", dir, e.Name())
					}
				}
			}
		}
		if got := statRootSSH(); got != rootSSH {
			t.Errorf("this machine's /root/.ssh changed: %s → %s", rootSSH, got)
		}
	})

	start := time.Now()
	s := freshserver.Start(t, freshserver.Options{})
	srvDir, srvPid = s.Dir(), s.Pid
	t.Logf("booted in %s", time.Since(start))
	// The shipped root file system has no host keys and sshd off.
	if keys, _ := filepath.Glob(s.Root + "/etc/ssh/ssh_host_*"); len(keys) > 0 {
		t.Errorf("root file system ships host keys: %v", keys)
	}
	if out, _ := s.Exec(ctx, "systemctl", "is-active", "ssh.service"); strings.TrimSpace(string(out)) != "inactive" {
		t.Errorf("ssh.service before EnableSSH: %q, want inactive", out)
	}

	lab, err := netlab.New(ctx)
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := lab.AddServer(ctx, "srv", s.Pid)
	if err != nil {
		t.Fatal(err)
	}
	member, err := lab.AddUser(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.SetHosts(map[string][]string{"srv.test": {srv.Addr, srv.Addr6}}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	admin, err := sshadmin.New(ctx, dir, member)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() }) // after a failure; checked below
	start = time.Now()
	hostKey, err := s.EnableSSH(ctx, admin.AuthorizedKey())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sshd up in %s, host key %s", time.Since(start), hostKey)
	if !strings.HasPrefix(hostKey, "ssh-ed25519 AAAA") {
		t.Fatalf("host key %q", hostKey)
	}

	strict := []string{"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"}
	ssh := func(args ...string) (string, error) {
		out, err := admin.SSH(ctx, append(strict, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := ssh("srv.test", "true"); err == nil || !strings.Contains(out, "Host key verification failed") {
		t.Fatalf("ssh to an untrusted host: %v: %q, want Host key verification failed", err, out)
	}
	if err := admin.Trust("srv.test", hostKey); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	out, err := ssh("srv.test", "echo $SSH_CONNECTION")
	if err != nil {
		t.Fatalf("ssh after Trust: %v: %s", err, out)
	}
	t.Logf("ssh srv.test in %s: %s", time.Since(start), strings.TrimSpace(out))
	// Routed from the admin's namespace to the server's lab address.
	if f := strings.Fields(out); len(f) != 4 || !isOneOf(f[0], member.Addr, member.Addr6) || !isOneOf(f[2], srv.Addr, srv.Addr6) {
		t.Errorf("SSH_CONNECTION = %q, want from %s to %s", out, member.Addr, srv.Addr)
	}

	// A master that outlives the command, as provision's connections do.
	mux := append([]string{"-o", "ControlMaster=auto", "-o", "ControlPersist=30s"}, "srv.test")
	if out, err := ssh(append(mux, "true")...); err != nil {
		t.Fatalf("ssh with ControlMaster: %v: %s", err, out)
	}
	out, err = ssh("-O", "check", "srv.test")
	m := regexp.MustCompile(`Master running \(pid=(\d+)\)`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("ssh -O check: %v: %q", err, out)
	}
	master, _ := strconv.Atoi(m[1])
	start = time.Now()
	if out, err := ssh(append(mux, "hostname")...); err != nil || strings.TrimSpace(out) != "freshserver" {
		t.Errorf("ssh over the master: %v: %q", err, out)
	}
	t.Logf("ssh over the master in %s", time.Since(start))

	if err := admin.Close(); err != nil {
		t.Fatal(err)
	}
	if alive(master) {
		t.Errorf("ssh master %d still running after Close", master)
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "cm")); !os.IsNotExist(err) {
		t.Errorf("control directory left after Close: %v %v", entries, err)
	}
	if pids := sshProcesses(dir); len(pids) > 0 {
		t.Errorf("ssh processes of the admin left after Close: %v", pids)
	}
}

// alive reports whether pid runs; a zombie has ended (its reaper is this
// machine's init, which may take its time).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

func isOneOf(s string, vals ...string) bool {
	for _, v := range vals {
		if s == v {
			return true
		}
	}
	return false
}

// sshProcesses returns processes whose command line names dir: every ssh
// the admin runs has -F DIR/ssh_config, a master's title its socket.
func sshProcesses(dir string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.Contains(string(b), dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// statRootSSH describes this machine's /root/.ssh, which no test may touch.
func statRootSSH() string {
	var b strings.Builder
	filepath.Walk("/root/.ssh", func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			b.WriteString(path + ": " + err.Error() + "\n")
			return nil
		}
		b.WriteString(path + " " + fi.Mode().String() + " " + strconv.FormatInt(fi.Size(), 10) + " " + fi.ModTime().String() + "\n")
		return nil
	})
	return b.String()
}
