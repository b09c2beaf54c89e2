package file

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/openbis/provision/executors"
	"github.com/openbis/provision/internal/engine"
)

// crashEnv makes the test binary act as the writer that TestCrashSafety
// kills; its value is the path to write.
const crashEnv = "PROVISION_FILE_CRASH_WRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		crashWriter(path)
		return
	}
	os.Exit(m.Run())
}

// Two versions of different lengths and bytes, so a torn or truncated
// write cannot pass for either.
var (
	crashOld = bytes.Repeat([]byte("old version of the file\n"), 40000)
	crashNew = bytes.Repeat([]byte("NEW\n"), 150000)
)

// crashWriter plans and applies the two versions in turn until killed.
func crashWriter(path string) {
	ctx := context.Background()
	var fs [2]*File
	for i, c := range [][]byte{crashOld, crashNew} {
		f, err := New(Config{Address: "file.crash", Path: path, Content: c, Mode: 0o640})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fs[i] = f
	}
	os.Stdout.Write([]byte("ready\n"))
	for i := 0; ; i++ {
		f := fs[i%2]
		ch, err := f.Plan(ctx)
		if err == nil {
			err = f.Apply(ctx, ch, engine.Discard)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Stdout.Write([]byte("wrote\n"))
	}
}

// TestCrashSafety kills a writer with SIGKILL at random points and checks
// that the file is always one whole version, never a mix or a prefix.
func TestCrashSafety(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, crashOld, 0o640); err != nil {
		t.Fatal(err)
	}
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	seen := map[string]int{}
	for i := range rounds {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let it complete a few writes, then kill it anywhere in the next
		// one (a write takes tens of milliseconds with its fsyncs).
		lines := bufio.NewReader(stdout)
		for range 1 + rand.IntN(3) {
			if _, err := lines.ReadString('\n'); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("writer failed: %v: %s", err, stderr.Bytes())
			}
		}
		time.Sleep(time.Duration(rand.IntN(60_000)) * time.Microsecond)
		cmd.Process.Kill() // SIGKILL
		err = cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
			t.Fatalf("round %d: writer ended by itself (%v): %s", i, err, stderr.Bytes())
		}

		if len(tempFiles(t, dir)) > 0 {
			seen["killed mid-write"]++
		}
		st, err := executors.ReadFile(path)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		switch {
		case bytes.Equal(st.Content, crashOld):
			seen["old"]++
		case bytes.Equal(st.Content, crashNew):
			seen["new"]++
		default:
			t.Fatalf("round %d: file is neither version: %d bytes starting %q", i, len(st.Content), st.Content[:min(len(st.Content), 40)])
		}
		if st.Mode != 0o640 {
			t.Fatalf("round %d: mode %o, want 0640", i, st.Mode)
		}
		if bak, err := os.ReadFile(path + executors.BackupSuffix); err == nil && !bytes.Equal(bak, crashOld) && !bytes.Equal(bak, crashNew) {
			t.Fatalf("round %d: backup is neither version (%d bytes)", i, len(bak))
		}
	}
	t.Logf("after %d kills: %v", rounds, seen)

	// The next apply cleans up what the killed writers left.
	f := mustNew(t, Config{Address: "file.crash", Path: path, Content: []byte("final\n")})
	ch, err := f.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(context.Background(), ch, engine.Discard); err != nil {
		t.Fatal(err)
	}
	if left := tempFiles(t, dir); len(left) > 0 {
		t.Errorf("temp files left after a clean apply: %q", left)
	}
}
