package executors

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name    string
		old     string // "" = no file before
		oldMode fs.FileMode
		content string
		mode    fs.FileMode
	}{
		{name: "new file", content: "hello\n", mode: 0o600},
		{name: "replace", old: "old\n", oldMode: 0o644, content: "new\n", mode: 0o755},
		{name: "empty content", old: "old\n", oldMode: 0o600, content: "", mode: 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if tt.old != "" {
				if err := os.WriteFile(path, []byte(tt.old), tt.oldMode); err != nil {
					t.Fatal(err)
				}
			}
			// A temp file an interrupted write left behind.
			stale := filepath.Join(dir, tempPrefix+"f-123")
			os.WriteFile(stale, []byte("partial"), 0o600)

			if err := WriteFile(path, []byte(tt.content), tt.mode, -1, -1); err != nil {
				t.Fatal(err)
			}
			st, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !st.Exists || string(st.Content) != tt.content || st.Mode != tt.mode {
				t.Errorf("read back %+v, want %q mode %v", st, tt.content, tt.mode)
			}
			if st.UID != os.Geteuid() {
				t.Errorf("uid %d, want %d", st.UID, os.Geteuid())
			}
			bak, err := os.ReadFile(path + BackupSuffix)
			if tt.old == "" && err == nil {
				t.Errorf("backup of a new file: %q", bak)
			}
			if tt.old != "" && string(bak) != tt.old {
				t.Errorf("backup = %q (%v), want %q", bak, err, tt.old)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if IsTemp(e.Name()) {
					t.Errorf("temp file left: %s", e.Name())
				}
			}
		})
	}
}

func TestWriteFileOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, []byte("a"), 0o640, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	// -1 keeps the owner of the file being replaced.
	if err := WriteFile(path, []byte("b"), 0o640, -1, -1); err != nil {
		t.Fatal(err)
	}
	st, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.UID != 65534 || st.GID != 65534 || st.Mode != 0o640 {
		t.Errorf("after rewrite: uid %d gid %d mode %v", st.UID, st.GID, st.Mode)
	}
}

func TestSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("untouched"), 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(link); !errors.Is(err, ErrSymlink) {
		t.Errorf("ReadFile: %v", err)
	}
	if err := WriteFile(link, []byte("evil"), 0o644, -1, -1); !errors.Is(err, ErrSymlink) {
		t.Errorf("WriteFile: %v", err)
	}
	if err := RemoveFile(link); !errors.Is(err, ErrSymlink) {
		t.Errorf("RemoveFile: %v", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "untouched" {
		t.Errorf("victim = %q", b)
	}
	if _, err := os.Lstat(link); err != nil {
		t.Errorf("link gone: %v", err)
	}
}

func TestNotRegular(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadFile(dir); err == nil {
		t.Error("ReadFile of a directory succeeded")
	}
	if err := WriteFile(dir, []byte("x"), 0o644, -1, -1); err == nil {
		t.Error("WriteFile over a directory succeeded")
	}
}

func TestReadMissing(t *testing.T) {
	st, err := ReadFile(filepath.Join(t.TempDir(), "none"))
	if err != nil || st.Exists {
		t.Errorf("ReadFile of a missing file: %+v, %v", st, err)
	}
}

func TestRemoveFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := RemoveFile(path); err != nil {
		t.Errorf("removing a missing file: %v", err)
	}
	os.WriteFile(path, []byte("last"), 0o600)
	if err := RemoveFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("still there: %v", err)
	}
	if b, _ := os.ReadFile(path + BackupSuffix); string(b) != "last" {
		t.Errorf("backup = %q", b)
	}
}

// A crash between the backup and the rename leaves path and its backup as
// one inode; the next write must still leave no temp file.
func TestWriteFileAfterCrashBetweenBackupAndRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	os.WriteFile(path, []byte("v1"), 0o644)
	if err := os.Link(path, path+BackupSuffix); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("v2"), 0o644, -1, -1); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if IsTemp(e.Name()) {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
	if b, _ := os.ReadFile(path + BackupSuffix); string(b) != "v1" {
		t.Errorf("backup = %q, want v1", b)
	}
}

// TestBackupNeverMoreReadable: a file tightened from 0644 to 0600 does not
// leave its old content world-readable in the backup, and a deleted file's
// backup is its owner's only.
func TestBackupNeverMoreReadable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	if err := WriteFile(path, []byte("old secret"), 0o644, -1, -1); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new secret"), 0o600, -1, -1); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		step string
		want fs.FileMode
	}{{"tightened", 0o600}} {
		if fi, err := os.Stat(path + BackupSuffix); err != nil || fi.Mode().Perm() != tt.want {
			t.Errorf("%s: backup mode %v (%v), want %v", tt.step, fi.Mode().Perm(), err, tt.want)
		}
	}
	if err := WriteFile(path, []byte("public"), 0o644, -1, -1); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path + BackupSuffix); fi.Mode().Perm() != 0o600 {
		t.Errorf("loosened: the 0600 version's backup is %v", fi.Mode().Perm())
	}
	if err := RemoveFile(path); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path + BackupSuffix); fi.Mode().Perm() != 0o600 {
		t.Errorf("deleted: backup mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestReadFileFIFO: a FIFO at a managed path is an error at once, not a
// plan that hangs.
func TestReadFileFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadFile(path); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFile hangs on a FIFO")
	}
	if err := WriteFile(path, []byte("x"), 0o644, -1, -1); err == nil {
		t.Error("WriteFile replaced a FIFO")
	}
}

func TestUnifiedDiff(t *testing.T) {
	for _, tt := range []struct {
		name     string
		old, new string
		want     string
	}{
		{"new file", "", "a\nb\n", "--- /p\n+++ /p\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"deleted file", "a\nb\n", "", "--- /p\n+++ /p\n@@ -1,2 +0,0 @@\n-a\n-b\n"},
		{"changed line", "a\nb\n", "a\nc\n", "--- /p\n+++ /p\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"},
		{"newline added", "a\nb", "a\nb\n", "--- /p\n+++ /p\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"},
		{"line appended", "a\n", "a\nb\n", "--- /p\n+++ /p\n@@ -1 +1,2 @@\n a\n+b\n"},
		{"same", "a\n", "a\n", ""},
	} {
		if got := UnifiedDiff("/p", []byte(tt.old), []byte(tt.new)); got != tt.want {
			t.Errorf("%s:\n%q\nwant\n%q", tt.name, got, tt.want)
		}
	}
}
