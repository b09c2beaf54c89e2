package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/openbis/provision/internal/engine"

	"github.com/openbis/provision/executors"
)

// nobody is an unprivileged id for owner drift; only root can chown to it.
const nobody = 65534

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
}

func writeRaw(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask
		t.Fatal(err)
	}
}

func chown(t *testing.T, path string, uid, gid int) {
	t.Helper()
	needRoot(t)
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}

func mustNew(t testing.TB, cfg Config) *File {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// tempFiles lists leftovers of interrupted writes under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var left []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && executors.IsTemp(p) {
			left = append(left, p)
		}
		return nil
	})
	return left
}

func TestPlanApply(t *testing.T) {
	const old = "line 1\nline 2\nline 3\n"
	const new = "line 1\nline two\nline 3\n"
	tests := []struct {
		name string
		// setup prepares the host; path is the managed file's path.
		setup     func(t *testing.T, path string)
		rel       string // path relative to the temp dir, default "f"
		cfg       Config
		root      bool
		action    engine.Action
		reasons   []string
		diff      []string // substrings the diff holds
		noDiff    bool
		wantUID   int
		wantGID   int
		backup    string // content of the backup after apply; "" = none
		sensitive bool
	}{
		{
			name:    "create",
			cfg:     Config{Content: []byte(new), Mode: 0o600},
			action:  engine.Create,
			reasons: []string{"file missing"},
			diff:    []string{"--- /dev/null", "+line two"},
		},
		{
			name:   "create with missing parent",
			rel:    "a/b/f",
			cfg:    Config{Content: []byte(new)},
			action: engine.Create,
			diff:   []string{"--- /dev/null"},
		},
		{
			name:  "converged",
			setup: func(t *testing.T, p string) { writeRaw(t, p, new, 0o644) },
			cfg:   Config{Content: []byte(new)},
		},
		{
			name:    "content differs",
			setup:   func(t *testing.T, p string) { writeRaw(t, p, old, 0o644) },
			cfg:     Config{Content: []byte(new)},
			action:  engine.Update,
			reasons: []string{"content differs"},
			diff:    []string{"-line 2", "+line two"},
			backup:  old,
		},
		{
			name:    "mode drift",
			setup:   func(t *testing.T, p string) { writeRaw(t, p, new, 0o644) },
			cfg:     Config{Content: []byte(new), Mode: 0o755},
			action:  engine.Update,
			reasons: []string{"mode 0644 → 0755"},
			noDiff:  true,
			backup:  new,
		},
		{
			name: "owner drift back to root",
			setup: func(t *testing.T, p string) {
				writeRaw(t, p, new, 0o644)
				chown(t, p, nobody, nobody)
			},
			root:    true,
			cfg:     Config{Content: []byte(new)},
			action:  engine.Update,
			reasons: []string{"owner " + userName(nobody) + " → root", "group " + groupName(nobody) + " → root"},
			noDiff:  true,
			backup:  new,
		},
		{
			name:    "owner drift to numeric ids",
			setup:   func(t *testing.T, p string) { writeRaw(t, p, new, 0o644) },
			root:    true,
			cfg:     Config{Content: []byte(new), Owner: "65534", Group: "65534"},
			action:  engine.Update,
			reasons: []string{"owner root → 65534", "group root → 65534"},
			wantUID: nobody, wantGID: nobody,
			backup: new,
		},
		{
			name:      "sensitive content differs",
			setup:     func(t *testing.T, p string) { writeRaw(t, p, "old-secret\n", 0o600) },
			cfg:       Config{Content: []byte("new-secret\n"), Mode: 0o600, Sensitive: true},
			action:    engine.Update,
			reasons:   []string{"content differs"},
			noDiff:    true,
			backup:    "old-secret\n",
			sensitive: true,
		},
		{
			name:    "everything differs",
			setup:   func(t *testing.T, p string) { writeRaw(t, p, old, 0o600) },
			cfg:     Config{Content: []byte(new), Mode: 0o640},
			action:  engine.Update,
			reasons: []string{"content differs", "mode 0600 → 0640"},
			backup:  old,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root {
				needRoot(t)
			}
			dir := t.TempDir()
			rel := tt.rel
			if rel == "" {
				rel = "f"
			}
			path := filepath.Join(dir, rel)
			if tt.setup != nil {
				tt.setup(t, path)
			}
			cfg := tt.cfg
			cfg.Address, cfg.Path = "file.test", path
			f := mustNew(t, cfg)
			ctx := context.Background()

			ch, err := f.Plan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Action != tt.action {
				t.Fatalf("action = %q, want %q (reasons %q)", ch.Action, tt.action, ch.Reasons)
			}
			for _, r := range tt.reasons {
				if !contains(ch.Reasons, r) {
					t.Errorf("reasons %q lack %q", ch.Reasons, r)
				}
			}
			if tt.rel != "" && tt.action == engine.Create {
				if !containsPrefix(ch.Reasons, "parent directory "+filepath.Dir(path)+" missing") {
					t.Errorf("reasons %q do not name the missing parent", ch.Reasons)
				}
			}
			for _, d := range tt.diff {
				if !strings.Contains(ch.Diff, d) {
					t.Errorf("diff lacks %q:\n%s", d, ch.Diff)
				}
			}
			if tt.noDiff && ch.Diff != "" {
				t.Errorf("unexpected diff:\n%s", ch.Diff)
			}
			if tt.sensitive {
				b, _ := json.Marshal(ch)
				if bytes.Contains(b, []byte("secret")) {
					t.Errorf("sensitive content leaks into the plan: %s", b)
				}
			}
			if ch.Fingerprint == "" {
				t.Error("empty fingerprint")
			}

			if err := f.Apply(ctx, ch, engine.Discard); err != nil {
				t.Fatal(err)
			}
			st, err := executors.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := Config{Content: tt.cfg.Content, Mode: tt.cfg.Mode}
			if want.Mode == 0 {
				want.Mode = DefaultMode
			}
			if !st.Exists || !bytes.Equal(st.Content, want.Content) || st.Mode != want.Mode || st.UID != tt.wantUID || st.GID != tt.wantGID {
				t.Errorf("after apply: %+v, want content %q mode %v owner %d:%d", st, want.Content, want.Mode, tt.wantUID, tt.wantGID)
			}
			bak, err := os.ReadFile(path + executors.BackupSuffix)
			switch {
			case tt.backup == "" && err == nil:
				t.Errorf("unexpected backup %q", bak)
			case tt.backup != "" && string(bak) != tt.backup:
				t.Errorf("backup = %q (%v), want %q", bak, err, tt.backup)
			}
			if left := tempFiles(t, dir); len(left) > 0 {
				t.Errorf("temp files left: %q", left)
			}
			again, err := f.Plan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if again.Pending() {
				t.Errorf("not converged after apply: %s %q", again.Action, again.Reasons)
			}
		})
	}
}

func TestSymlinkRefused(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		target func(dir string) string // what the symlink points at
	}{
		{"to existing file", func(dir string) string {
			p := filepath.Join(dir, "victim")
			os.WriteFile(p, []byte("untouched\n"), 0o644)
			return p
		}},
		{"dangling", func(dir string) string { return filepath.Join(dir, "nowhere") }},
		{"to directory", func(dir string) string { return dir }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			f := mustNew(t, Config{Address: "file.test", Path: path, Content: []byte("evil\n")})
			// A plan made before the symlink appeared must not apply through it.
			stale, err := f.Plan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			target := tt.target(dir)
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Plan(ctx); !errors.Is(err, executors.ErrSymlink) {
				t.Errorf("plan: err = %v, want ErrSymlink", err)
			}
			if err := f.Apply(ctx, stale, engine.Discard); !errors.Is(err, executors.ErrSymlink) {
				t.Errorf("apply: err = %v, want ErrSymlink", err)
			}
			del := mustFromRecord(t, f.Record())
			if _, err := del.Plan(ctx); !errors.Is(err, executors.ErrSymlink) {
				t.Errorf("delete plan: err = %v, want ErrSymlink", err)
			}
			if got, _ := os.Readlink(path); got != target {
				t.Errorf("symlink now points at %q", got)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "victim")); err == nil && string(b) != "untouched\n" {
				t.Errorf("symlink target changed to %q", b)
			}
			if _, err := os.Stat(filepath.Join(dir, "nowhere")); err == nil {
				t.Error("dangling symlink's target was created")
			}
		})
	}
}

func mustFromRecord(t *testing.T, rec *engine.Record) engine.Resource {
	t.Helper()
	if rec == nil {
		t.Fatal("nil record")
	}
	// Round-trip through JSON as the state file does.
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var back engine.Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	r, err := FromRecord(back)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDeleteFromRecord(t *testing.T) {
	ctx := context.Background()
	for _, sensitive := range []bool{false, true} {
		name := "plain"
		if sensitive {
			name = "sensitive"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			const content = "secret line\n"
			f := mustNew(t, Config{Address: "file.gone", Path: path, Content: []byte(content), Sensitive: sensitive})
			ch, err := f.Plan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Apply(ctx, ch, engine.Discard); err != nil {
				t.Fatal(err)
			}
			rec := f.Record()
			if rec.Kind != Kind || rec.Address != "file.gone" {
				t.Fatalf("record = %+v", rec)
			}
			del := mustFromRecord(t, rec)
			if del.Address() != "file.gone" || del.Record() != nil {
				t.Errorf("delete resource: address %q, record %v", del.Address(), del.Record())
			}
			ch, err = del.Plan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Action != engine.Delete {
				t.Fatalf("action = %q, want delete", ch.Action)
			}
			b, _ := json.Marshal(ch)
			if leaked := bytes.Contains(b, []byte("secret line")); leaked != !sensitive {
				t.Errorf("content in plan = %v, want %v: %s", leaked, !sensitive, b)
			}
			if !sensitive && !strings.Contains(ch.Diff, "+++ /dev/null") {
				t.Errorf("diff does not go to /dev/null:\n%s", ch.Diff)
			}
			if err := del.Apply(ctx, ch, engine.Discard); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("file still there: %v", err)
			}
			if bak, _ := os.ReadFile(path + executors.BackupSuffix); string(bak) != content {
				t.Errorf("backup = %q, want %q", bak, content)
			}
			ch, err = del.Plan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Pending() {
				t.Errorf("delete not converged: %q", ch.Action)
			}
		})
	}
}

func TestApplyRefusesStalePlan(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	writeRaw(t, path, "old\n", 0o644)
	f := mustNew(t, Config{Address: "file.test", Path: path, Content: []byte("new\n")})
	ch, err := f.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writeRaw(t, path, "edited meanwhile\n", 0o644)
	if err := f.Apply(ctx, ch, engine.Discard); err == nil || !strings.Contains(err.Error(), "changed since it was planned") {
		t.Fatalf("apply of a stale plan: err = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "edited meanwhile\n" {
		t.Errorf("file = %q, want the admin's edit kept", b)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no address", Config{Path: "/etc/x"}, "empty address"},
		{"relative path", Config{Address: "file.x", Path: "etc/x"}, "not absolute"},
		{"unclean path", Config{Address: "file.x", Path: "/etc/../x"}, "not clean"},
		{"root", Config{Address: "file.x", Path: "/"}, "not a file"},
		{"setuid", Config{Address: "file.x", Path: "/x", Mode: 0o755 | fs.ModeSetuid}, "permission bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestPlanErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "plain")
	writeRaw(t, notDir, "", 0o644)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown owner", Config{Path: filepath.Join(dir, "f"), Owner: "no-such-user-provision"}, "owner"},
		{"unknown group", Config{Path: filepath.Join(dir, "f"), Group: "no-such-group-provision"}, "group"},
		{"parent is a file", Config{Path: filepath.Join(notDir, "f")}, "not a directory"},
		{"path is a directory", Config{Path: dir}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Address = "file.x"
			_, err := mustNew(t, tt.cfg).Plan(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestBinaryContent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	writeRaw(t, path, "\x00\x01old", 0o644)
	ch, err := mustNew(t, Config{Address: "file.bin", Path: path, Content: []byte{0, 2, 'n'}}).Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ch.Diff != "" || len(ch.Fields) != 1 || !strings.HasPrefix(ch.Fields[0].Old, "binary") {
		t.Errorf("binary change: diff %q fields %+v", ch.Diff, ch.Fields)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsPrefix(list []string, p string) bool {
	for _, x := range list {
		if strings.HasPrefix(x, p) {
			return true
		}
	}
	return false
}

func BenchmarkPlanConverged(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "start.sh")
	content := bytes.Repeat([]byte("docker run -e X=y \\\n"), 100)
	f := mustNew(b, Config{Address: "file.start_script", Path: path, Content: content, Mode: 0o755})
	ctx := context.Background()
	ch, err := f.Plan(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Apply(ctx, ch, engine.Discard); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ch, err := f.Plan(ctx)
		if err != nil || ch.Pending() {
			b.Fatalf("plan: %v %v", err, ch)
		}
	}
}

// TestParentSymlinkRefused: a user who owns a directory above a managed
// file cannot point it at a root-only directory: the plan neither shows
// the root-only file in a diff nor does apply write or chown there.
func TestParentSymlinkRefused(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	top := t.TempDir()
	os.Chmod(top, 0o755)
	secret := filepath.Join(top, "secret")
	if err := os.Mkdir(secret, 0o700); err != nil {
		t.Fatal(err)
	}
	writeRaw(t, filepath.Join(secret, "key"), "root only\n", 0o600)
	home := filepath.Join(top, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	chown(t, home, 1000, 1000)
	path := filepath.Join(home, "conf", "key")
	f := mustNew(t, Config{Address: "file.key", Path: path, Content: []byte("user's\n"), Owner: "1000", Group: "1000"})
	// Planned while the directory is missing; the link appears after.
	stale, err := f.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(home, "conf")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 1000, 1000); err != nil {
		t.Fatal(err)
	}

	ch, err := f.Plan(ctx)
	if !errors.Is(err, executors.ErrSymlink) || !strings.Contains(err.Error(), link) {
		t.Errorf("plan: err = %v, want ErrSymlink naming %s", err, link)
	}
	if ch != nil && strings.Contains(ch.Diff, "root only") {
		t.Errorf("plan shows the root-only file:\n%s", ch.Diff)
	}
	if err := f.Apply(ctx, stale, engine.Discard); !errors.Is(err, executors.ErrSymlink) {
		t.Errorf("apply: err = %v, want ErrSymlink", err)
	}
	del := mustFromRecord(t, f.Record())
	if _, err := del.Plan(ctx); !errors.Is(err, executors.ErrSymlink) {
		t.Errorf("delete plan: err = %v, want ErrSymlink", err)
	}
	entries, _ := os.ReadDir(secret)
	if len(entries) != 1 {
		t.Errorf("written into the root-only directory: %v", entries)
	}
	fi, err := os.Stat(filepath.Join(secret, "key"))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("root-only file changed: %v, %v", fi, err)
	}
}
