package executors

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// userUID owns what an unprivileged user could have planted.
const userUID = 1000

// TestParentSymlink: a symlink in a managed path's directories is followed
// only when root owns it and the directory holding it, and that directory
// is not writable by group or others; otherwise reads, writes, removes and
// directory creation through it are refused and nothing changes behind it.
func TestParentSymlink(t *testing.T) {
	// Each setup makes, under top, a path whose "s" is top/secret/s through
	// a symlink, and returns it with the symlink that decides.
	type setup func(t *testing.T, top string) (via, link string)
	linkIn := func(dirMode os.FileMode, dirUID, linkUID int, target string) setup {
		return func(t *testing.T, top string) (string, string) {
			d := filepath.Join(top, "d")
			mkdir(t, d, dirMode)
			chown(t, d, dirUID)
			link := filepath.Join(d, "link")
			if target == "" {
				target = filepath.Join(top, "secret")
			}
			symlink(t, target, link)
			chown(t, link, linkUID)
			return link, link
		}
	}
	tests := []struct {
		name     string
		setup    setup
		needRoot bool   // the case needs files owned by someone else
		refused  string // "" = followed, else why
	}{
		{name: "user's link in user's directory", setup: linkIn(0o755, userUID, userUID, ""), needRoot: true, refused: "owned by uid 1000"},
		{name: "root's link in user's directory", setup: linkIn(0o755, userUID, 0, ""), needRoot: true, refused: "in a directory owned by uid 1000"},
		{name: "user's link in root's directory", setup: linkIn(0o755, 0, userUID, ""), needRoot: true, refused: "owned by uid 1000"},
		{name: "root's link in world-writable directory", setup: linkIn(0o777, 0, 0, ""), refused: "writable by group or others"},
		{name: "root's link in group-writable directory", setup: linkIn(0o775, 0, 0, ""), refused: "writable by group or others"},
		{name: "root's link in sticky world-writable directory", setup: linkIn(0o1777, 0, 0, ""), refused: "writable by group or others"},
		{name: "root's link in root's 0755 directory", setup: linkIn(0o755, 0, 0, "")},
		{name: "root's relative link", setup: linkIn(0o755, 0, 0, "../secret")},
		{name: "root's link to a user's link", needRoot: true, refused: "owned by uid 1000", setup: func(t *testing.T, top string) (string, string) {
			u := filepath.Join(top, "u")
			mkdir(t, u, 0o755)
			chown(t, u, userUID)
			inner := filepath.Join(u, "inner")
			symlink(t, filepath.Join(top, "secret"), inner)
			chown(t, inner, userUID)
			outer := filepath.Join(top, "outer")
			symlink(t, u, outer)
			// Reported by the path it was reached by.
			return filepath.Join(outer, "inner"), inner
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needRoot && os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			top := t.TempDir()
			os.Chmod(top, 0o755)
			secret := filepath.Join(top, "secret")
			mkdir(t, secret, 0o700)
			s := filepath.Join(secret, "s")
			if err := os.WriteFile(s, []byte("root only\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			via, link := tt.setup(t, top)

			if tt.refused != "" {
				check := func(op string, err error) {
					t.Helper()
					if !errors.Is(err, ErrSymlink) {
						t.Errorf("%s: err = %v, want ErrSymlink", op, err)
					} else if msg := err.Error(); !strings.Contains(msg, link+" is a symlink") || !strings.Contains(msg, tt.refused) {
						t.Errorf("%s: %q does not name %s and why (%s)", op, msg, link, tt.refused)
					}
				}
				st, err := ReadFile(filepath.Join(via, "s"))
				check("read", err)
				if st.Content != nil {
					t.Errorf("read returned %q", st.Content)
				}
				check("write", WriteFile(filepath.Join(via, "s"), []byte("evil\n"), 0o644, userUID, userUID))
				check("write new", WriteFile(filepath.Join(via, "new"), []byte("evil\n"), 0o644, userUID, userUID))
				check("remove", RemoveFile(filepath.Join(via, "s")))
				check("mkdir", MkdirAll(filepath.Join(via, "a", "b"), 0o755))
				_, err = DirExists(via)
				check("dir exists", err)

				if b, err := os.ReadFile(s); string(b) != "root only\n" {
					t.Errorf("secret = %q, %v", b, err)
				}
				if fi, err := os.Stat(s); err == nil && (fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid())) {
					t.Errorf("secret's mode or owner changed: %v, uid %d", fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
				}
				if names := dirNames(t, secret); len(names) != 1 {
					t.Errorf("written through the symlink: %q", names)
				}
				return
			}

			st, err := ReadFile(filepath.Join(via, "s"))
			if err != nil || string(st.Content) != "root only\n" {
				t.Errorf("read: %q, %v", st.Content, err)
			}
			if err := WriteFile(filepath.Join(via, "new"), []byte("new\n"), 0o640, -1, -1); err != nil {
				t.Errorf("write: %v", err)
			}
			if b, err := os.ReadFile(filepath.Join(secret, "new")); string(b) != "new\n" {
				t.Errorf("written file = %q, %v", b, err)
			}
			if err := MkdirAll(filepath.Join(via, "a", "b"), 0o755); err != nil {
				t.Errorf("mkdir: %v", err)
			}
			if fi, err := os.Lstat(filepath.Join(secret, "a", "b")); err != nil || !fi.IsDir() {
				t.Errorf("mkdir made %v, %v", fi, err)
			}
			if ok, err := DirExists(via); !ok || err != nil {
				t.Errorf("dir exists: %v, %v", ok, err)
			}
			if err := RemoveFile(filepath.Join(via, "s")); err != nil {
				t.Errorf("remove: %v", err)
			}
			if _, err := os.Lstat(s); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("still there: %v", err)
			}
			if b, _ := os.ReadFile(s + BackupSuffix); string(b) != "root only\n" {
				t.Errorf("backup = %q", b)
			}
		})
	}
}

// TestTrustedSymlinkLastComponent: a symlink at the managed path itself is
// refused even when root owns it and its directory.
func TestTrustedSymlinkLastComponent(t *testing.T) {
	top := t.TempDir()
	os.Chmod(top, 0o755)
	victim := filepath.Join(top, "victim")
	os.WriteFile(victim, []byte("untouched"), 0o600)
	link := filepath.Join(top, "link")
	symlink(t, victim, link)
	if _, err := ReadFile(link); !errors.Is(err, ErrSymlink) {
		t.Errorf("read: %v", err)
	}
	if err := WriteFile(link, []byte("x"), 0o644, -1, -1); !errors.Is(err, ErrSymlink) {
		t.Errorf("write: %v", err)
	}
	if err := RemoveFile(link); !errors.Is(err, ErrSymlink) {
		t.Errorf("remove: %v", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "untouched" {
		t.Errorf("victim = %q", b)
	}
}

// TestWalkErrors: the components that stop a walk are named.
func TestWalkErrors(t *testing.T) {
	top := t.TempDir()
	os.Chmod(top, 0o755)
	file := filepath.Join(top, "file")
	os.WriteFile(file, nil, 0o644)
	loop := filepath.Join(top, "loop")
	symlink(t, "loop", loop)
	tests := []struct {
		name, path string
		want       error
	}{
		{"file as a directory", filepath.Join(file, "x"), syscall.ENOTDIR},
		{"symlink loop", filepath.Join(loop, "x"), syscall.ELOOP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for op, err := range map[string]error{
				"read":   func() error { _, err := ReadFile(tt.path); return err }(),
				"write":  WriteFile(tt.path, []byte("x"), 0o644, -1, -1),
				"remove": RemoveFile(tt.path),
				"mkdir":  MkdirAll(filepath.Join(tt.path, "y"), 0o755),
			} {
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), filepath.Dir(tt.path)+":") {
					t.Errorf("%s: err = %v, want %v naming %s", op, err, tt.want, filepath.Dir(tt.path))
				}
			}
		})
	}
}

func TestMkdirAll(t *testing.T) {
	top := t.TempDir()
	p := filepath.Join(top, "a", "b", "c")
	if err := MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(top, "a"), filepath.Join(top, "a", "b"), p} {
		if fi, err := os.Lstat(d); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v", d, fi.Mode(), err)
		}
	}
	if err := MkdirAll(p, 0o700); err != nil {
		t.Errorf("existing: %v", err)
	}
	if ok, err := DirExists(filepath.Join(top, "missing", "x")); ok || err != nil {
		t.Errorf("missing: %v, %v", ok, err)
	}
	// Relative paths walk from the working directory.
	t.Chdir(top)
	if err := WriteFile("a/b/f", []byte("rel"), 0o600, -1, -1); err != nil {
		t.Fatal(err)
	}
	if st, err := ReadFile("a/b/f"); err != nil || string(st.Content) != "rel" {
		t.Errorf("relative read: %q, %v", st.Content, err)
	}
	if st, err := ReadFile("a/b/../b/./f"); err != nil || string(st.Content) != "rel" {
		t.Errorf("read with ..: %q, %v", st.Content, err)
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Chmod: Mkdir's mode is cut by the umask, and sticky needs Chmod.
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if uid == 0 {
		uid = os.Geteuid()
	}
	if err := os.Lchown(path, uid, -1); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestProcRootLink: /proc/PID/root leads into that process's root, which
// its text ("/") does not say: the walk lets the kernel follow it, so a
// server's files seen from here are written there, not in this machine's
// own tree. The other root is a mount namespace with a tmpfs over dir.
func TestProcRootLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a mount namespace")
	}
	dir := t.TempDir()
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs tmpfs "+dir+" && echo ready && exec sleep 60")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if b := make([]byte, 6); func() bool { n, _ := io.ReadFull(out, b); return n != 6 }() {
		t.Fatal("the mount namespace did not start")
	}
	via := fmt.Sprintf("/proc/%d/root%s/f", cmd.Process.Pid, dir)
	if err := WriteFile(via, []byte("x"), 0o644, -1, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "f")); err == nil {
		t.Fatal("written into this machine's tree, not the other root")
	}
	if b, err := os.ReadFile(via); err != nil || string(b) != "x" {
		t.Errorf("not in the other root: %q %v", b, err)
	}
	if st, err := ReadFile(via); err != nil || string(st.Content) != "x" {
		t.Errorf("read through /proc/PID/root: %+v %v", st, err)
	}
}
