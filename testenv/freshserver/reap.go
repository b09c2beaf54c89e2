package freshserver

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ownerFile records, in a server's directory, which test process booted it
// and the PIDs of its nspawn and pid 1, so a later Boot can stop a server
// whose test was killed before its cleanup ran (go test -timeout, SIGKILL).
const ownerFile = "owner"

func (s *Server) writeOwner() error {
	b := fmt.Sprintf("%d %d %d\n", os.Getpid(), s.nspawn.Process.Pid, s.Pid)
	return os.WriteFile(filepath.Join(s.dir, ownerFile), []byte(b), 0o644)
}

// reapStale stops the servers under workDir whose test process is gone:
// their pid 1 is killed (after checking that nspawn still runs for that very
// directory, so a reused PID is never hit), the overlay unmounted and the
// directory removed. Servers of live test processes are left alone.
func reapStale(workDir string, log io.Writer) {
	dirs, _ := filepath.Glob(filepath.Join(workDir, "freshserver-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // booting right now, or not ours
		}
		var owner, nspawn, pid1 int
		if _, err := fmt.Sscan(string(b), &owner, &nspawn, &pid1); err != nil || alive(owner) {
			continue
		}
		fmt.Fprintf(log, "freshserver: stopping %s, left running by test process %d\n", dir, owner)
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", nspawn))
		if strings.Contains(string(cmdline), dir+"/root") {
			if childRunning(nspawn, "systemd") == pid1 {
				unix.Kill(pid1, unix.SIGKILL)
			}
			for i := 0; i < 100 && alive(nspawn); i++ {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if alive(nspawn) && strings.Contains(string(cmdline), dir+"/root") {
			continue
		}
		unix.Unmount(filepath.Join(dir, "root"), unix.MNT_DETACH)
		os.RemoveAll(dir)
	}
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	// A zombie is not alive: its process has ended.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
