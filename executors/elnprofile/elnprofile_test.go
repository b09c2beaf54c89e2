package elnprofile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/openbis/provision/internal/render"

	"github.com/openbis/provision/internal/engine"

	"github.com/openbis/provision/executors"
)

// newTestProfile copies fixture into a temp dir as InstanceProfile.js with
// mode and returns the resource managing it.
func newTestProfile(t testing.TB, fixture string, mode os.FileMode) (*Profile, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "InstanceProfile.js")
	if err := os.WriteFile(path, readFixture(t, fixture, "before.js"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask
		t.Fatal(err)
	}
	p, err := New(Config{Path: path, IntegrationEndpoint: testWant[0], JupyterEndpoint: testWant[1]})
	if err != nil {
		t.Fatal(err)
	}
	return p, path
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPlanApply(t *testing.T) {
	ctx := context.Background()
	p, path := newTestProfile(t, "ansible-jupyter", 0o640)
	owned := os.Geteuid() == 0
	if owned {
		if err := os.Chown(path, 1234, 5678); err != nil {
			t.Fatal(err)
		}
	}
	before := mustRead(t, path)

	ch, err := p.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Address != Address || ch.Action != engine.Update {
		t.Fatalf("plan = %s %q, want update of %s", ch.Action, ch.Address, Address)
	}
	wantReasons := []string{"jupyterIntegrationServerEndpoint commented out", "jupyterEndpoint commented out"}
	if !reflect.DeepEqual(ch.Reasons, wantReasons) {
		t.Errorf("reasons = %q, want %q", ch.Reasons, wantReasons)
	}
	for _, s := range []string{"--- " + path, "+++ " + path, `+		this.jupyterEndpoint = "https://jupyterhub.example.org/";`, `-//		this.jupyterEndpoint`} {
		if !strings.Contains(ch.Diff, s) {
			t.Errorf("diff lacks %q:\n%s", s, ch.Diff)
		}
	}
	if !bytes.Equal(mustRead(t, path), before) {
		t.Fatal("Plan changed the file")
	}

	var out bytes.Buffer
	if err := p.Apply(ctx, ch, render.NewText(&out, &out, false)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "patched "+path) {
		t.Errorf("progress = %q", out.String())
	}
	after := mustRead(t, path)
	if want := readFixture(t, "ansible-jupyter", "after.js"); !bytes.Equal(after, want) {
		t.Errorf("file after apply:\n%s", after)
	}
	if bak := mustRead(t, path+executors.BackupSuffix); !bytes.Equal(bak, before) {
		t.Error("backup is not the previous version")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640", fi.Mode().Perm())
	}
	if st := fi.Sys().(*syscall.Stat_t); owned && (st.Uid != 1234 || st.Gid != 5678) {
		t.Errorf("owner = %d:%d, want 1234:5678", st.Uid, st.Gid)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if executors.IsTemp(e.Name()) {
			t.Errorf("temp file left: %s", e.Name())
		}
	}

	// Converged: the second plan is a no-op, a second apply changes nothing.
	ch2, err := p.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ch2.Pending() || ch2.Diff != "" {
		t.Fatalf("second plan = %+v, want no-op", ch2)
	}
	if err := p.Apply(ctx, ch2, engine.Discard); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustRead(t, path), after) {
		t.Error("second apply changed the file")
	}
}

func TestApplyStalePlan(t *testing.T) {
	ctx := context.Background()
	p, path := newTestProfile(t, "empty-init", 0o644)
	ch, err := p.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	edited := append(mustRead(t, path), "// edited by hand\n"...)
	if err := os.WriteFile(path, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(ctx, ch, engine.Discard); err == nil || !strings.Contains(err.Error(), "changed since it was planned") {
		t.Fatalf("apply of a stale plan: %v", err)
	}
	if !bytes.Equal(mustRead(t, path), edited) {
		t.Error("stale apply wrote the file")
	}
}

func TestReadOnlyFile(t *testing.T) {
	ctx := context.Background()
	p, path := newTestProfile(t, "spaces", 0o444)
	ch, err := p.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The write replaces the file by rename, so its mode does not stop it;
	// the mode is kept.
	if err := p.Apply(ctx, ch, engine.Discard); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o444 {
		t.Errorf("mode = %v, want 0444 kept", fi.Mode().Perm())
	}
	if !bytes.Equal(mustRead(t, path), readFixture(t, "spaces", "after.js")) {
		t.Error("read-only file not patched as expected")
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("symlink", func(t *testing.T) {
		dir := t.TempDir()
		real := filepath.Join(dir, "real.js")
		if err := os.WriteFile(real, readFixture(t, "empty-init", "before.js"), 0o644); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, "InstanceProfile.js")
		if err := os.Symlink(real, link); err != nil {
			t.Fatal(err)
		}
		p, err := New(Config{Path: link, IntegrationEndpoint: testWant[0], JupyterEndpoint: testWant[1]})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Plan(ctx); !errors.Is(err, executors.ErrSymlink) {
			t.Fatalf("plan of a symlink: %v, want ErrSymlink", err)
		}
		if !bytes.Equal(mustRead(t, real), readFixture(t, "empty-init", "before.js")) {
			t.Error("symlink target changed")
		}
	})
	t.Run("missing", func(t *testing.T) {
		p, err := New(Config{Path: filepath.Join(t.TempDir(), "InstanceProfile.js"), IntegrationEndpoint: testWant[0], JupyterEndpoint: testWant[1]})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Plan(ctx); err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("plan of a missing file: %v", err)
		}
	})
	t.Run("does not parse", func(t *testing.T) {
		p, path := newTestProfile(t, "bad-syntax", 0o644)
		_, err := p.Plan(ctx)
		if err == nil || !strings.Contains(err.Error(), "not valid JavaScript") || !strings.Contains(err.Error(), "Line 8:") {
			t.Fatalf("plan of a broken file: %v", err)
		}
		// Apply re-reads and refuses too, even with a forged change.
		if err := p.Apply(ctx, &engine.Change{Action: engine.Update}, engine.Discard); err == nil {
			t.Fatal("apply of a broken file succeeded")
		}
		if !bytes.Equal(mustRead(t, path), readFixture(t, "bad-syntax", "before.js")) {
			t.Error("broken file was written")
		}
	})
}

func TestNew(t *testing.T) {
	good := Config{Path: "/opt/openbis/InstanceProfile.js", IntegrationEndpoint: "https://h:8002", JupyterEndpoint: "https://h/"}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"relative path", func(c *Config) { c.Path = "etc/InstanceProfile.js" }, "absolute"},
		{"unclean path", func(c *Config) { c.Path = "/opt/../etc/InstanceProfile.js" }, "absolute and clean"},
		{"empty integration", func(c *Config) { c.IntegrationEndpoint = "" }, "jupyterIntegrationServerEndpoint is empty"},
		{"no slash", func(c *Config) { c.JupyterEndpoint = "https://h" }, `must end with "/"`},
		{"bad utf8", func(c *Config) { c.IntegrationEndpoint = "https://h\xff" }, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			_, err := New(cfg)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("New: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRecordAndRemoval(t *testing.T) {
	ctx := context.Background()
	for _, fixture := range []string{"other-block", "ansible-jupyter", "crlf"} {
		t.Run(fixture, func(t *testing.T) {
			p, path := newTestProfile(t, fixture, 0o644)
			original := mustRead(t, path)
			ch, err := p.Plan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Apply(ctx, ch, engine.Discard); err != nil {
				t.Fatal(err)
			}

			rec := p.Record()
			if rec.Kind != Kind || rec.Address != Address {
				t.Fatalf("record = %+v", rec)
			}
			// Through JSON, as the state file keeps it.
			b, _ := json.Marshal(rec)
			var back engine.Record
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			rm, err := FromRecord(back)
			if err != nil {
				t.Fatal(err)
			}
			if rm.Address() != Address || rm.Record() != nil {
				t.Errorf("removal address %q record %v", rm.Address(), rm.Record())
			}
			del, err := rm.Plan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if del.Action != engine.Delete || !strings.Contains(del.Diff, "-\t\tthis.jupyterEndpoint") {
				t.Fatalf("removal plan = %s, diff:\n%s", del.Action, del.Diff)
			}
			if err := rm.Apply(ctx, del, engine.Discard); err != nil {
				t.Fatal(err)
			}
			got := mustRead(t, path)
			if bytes.Contains(got, []byte("jupyterEndpoint = \"https://jupyterhub.example.org/\"")) {
				t.Errorf("managed lines left:\n%s", got)
			}
			if fixture == "other-block" && !bytes.Equal(got, original) {
				t.Errorf("removing the inserted block did not restore the original:\n%s", got)
			}
			// Only the managed block went: every other line is still there.
			gotLines := map[string]bool{}
			for _, l := range strings.SplitAfter(string(got), "\n") {
				gotLines[l] = true
			}
			for _, l := range strings.SplitAfter(string(original), "\n") {
				if !gotLines[l] && !strings.Contains(l, "jupyter") {
					t.Errorf("line %q lost", l)
				}
			}
			again, err := rm.Plan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if again.Pending() {
				t.Errorf("removal not converged: %+v", again)
			}
		})
	}
	t.Run("file gone", func(t *testing.T) {
		rm, err := FromRecord(*record(Address, filepath.Join(t.TempDir(), "gone.js")))
		if err != nil {
			t.Fatal(err)
		}
		ch, err := rm.Plan(ctx)
		if err != nil || ch.Pending() {
			t.Fatalf("plan = %+v, %v; want no-op", ch, err)
		}
	})
	t.Run("bad records", func(t *testing.T) {
		for _, rec := range []engine.Record{
			{Address: Address, Kind: "file", Data: json.RawMessage(`{"path":"/x"}`)},
			{Address: Address, Kind: Kind, Data: json.RawMessage(`{"path":"x"}`)},
			{Address: Address, Kind: Kind, Data: json.RawMessage(`[`)},
		} {
			if _, err := FromRecord(rec); err == nil {
				t.Errorf("FromRecord(%s) succeeded", rec.Data)
			}
		}
	})
}

// BenchmarkPlanConverged measures Plan on an already-patched profile of a
// realistic size, the common case on every run.
func BenchmarkPlanConverged(b *testing.B) {
	src := readFixture(b, "ansible-jupyter", "after.js")
	// Pad init with settings the way real profiles are (~15 KB).
	var pad strings.Builder
	for pad.Len() < 15000 {
		pad.WriteString("\t\tthis.sampleTypeDefinitionsExtension[\"MEDIA\"] = { \"SAMPLE_PARENTS_HINT\": [{ \"LABEL\": \"Chemical\", \"TYPE\": \"CHEMICAL\" }] }; // hint\n")
	}
	src = bytes.Replace(src, []byte("\t\tthis.hideSectionsByDefault"), []byte(pad.String()+"\t\tthis.hideSectionsByDefault"), 1)
	path := filepath.Join(b.TempDir(), "InstanceProfile.js")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		b.Fatal(err)
	}
	p, err := New(Config{Path: path, IntegrationEndpoint: testWant[0], JupyterEndpoint: testWant[1]})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		ch, err := p.Plan(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if ch.Pending() {
			b.Fatalf("not converged: %+v", ch)
		}
	}
}
