//go:build integration

package freshserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestBootServeShutdown boots a server, runs the stand-in image in its
// dockerd, reads its page through the server's network namespace and
// checks that Shutdown leaves no process or mount behind.
func TestBootServeShutdown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	s, err := Boot(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("booted pid %d in %s", s.Pid, time.Since(start))
	defer s.Shutdown()

	if err := s.ImportStandIn(ctx, StandIn{Ref: "standin/jupyterhub:1", Version: "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exec(ctx, "docker", "run", "-d", "--name", "jh", "-e", "OPENBIS_URL=https://openbis.example", "-p", "8000:8000", "standin/jupyterhub:1", StartCommand); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: s.DialContext}}
	var body string
	for i := 0; i < 50; i++ {
		resp, err := client.Get("http://127.0.0.1:8000/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(body, "standin version: 1") || !strings.Contains(body, "OPENBIS_URL=https://openbis.example") {
		t.Fatalf("stand-in page = %q, want its version and environment", body)
	}

	dir, pid := s.dir, s.Pid
	start = time.Now()
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	t.Logf("shut down in %s", time.Since(start))
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("server directory %s still there after Shutdown (%v)", dir, err)
	}
	if _, err := os.Stat("/proc/" + itoa(pid)); !os.IsNotExist(err) {
		t.Errorf("server pid 1 (%d) still running after Shutdown", pid)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), dir) {
		t.Errorf("mount under %s left after Shutdown", dir)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestReapsServerOfKilledTest boots a server in a child test process, kills
// that process with SIGKILL (no cleanup runs, as with go test -timeout) and
// checks that the next Boot stops the orphaned server and removes its files.
func TestReapsServerOfKilledTest(t *testing.T) {
	if os.Getenv("FRESHSERVER_ORPHAN_CHILD") == "1" {
		s, err := Boot(context.Background(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("orphan %d %s\n", s.Pid, s.dir)
		time.Sleep(time.Minute)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReapsServerOfKilledTest$")
	cmd.Env = append(os.Environ(), "FRESHSERVER_ORPHAN_CHILD=1")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	var dir string
	if _, err := fmt.Fscanf(stdout, "orphan %d %s\n", &pid, &dir); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not boot a server: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if !alive(pid) {
		t.Fatalf("orphaned server pid 1 %d died with its test; nothing to reap", pid)
	}

	s := Start(t, Options{})
	if alive(pid) {
		unix.Kill(pid, unix.SIGKILL)
		t.Fatalf("orphaned server pid 1 %d still running after the next Boot", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("orphaned server directory %s not removed: %v", dir, err)
	}
	if s.Pid == pid {
		t.Fatal("pid reused")
	}
}
