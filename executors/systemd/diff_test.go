package systemd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openbis/provision/internal/engine"

	"github.com/openbis/provision/executors"
)

func TestDiffUnit(t *testing.T) {
	want := []byte("[Unit]\nDescription=x\n")
	file := executors.FileState{Exists: true, Content: want, Mode: 0o644}
	good := unitProps{LoadState: "loaded", ActiveState: "active", SubState: "running", UnitFileState: "enabled"}
	for _, tc := range []struct {
		name    string
		file    func(*executors.FileState)
		props   func(*unitProps)
		action  engine.Action
		reasons []string
		steps   unitSteps
	}{
		{name: "converged", action: engine.NoOp},
		{
			name:   "missing",
			file:   func(f *executors.FileState) { *f = executors.FileState{} },
			props:  func(p *unitProps) { *p = unitProps{LoadState: "not-found", ActiveState: "inactive", SubState: "dead"} },
			action: engine.Create, reasons: []string{"unit file /etc/systemd/system/u.service missing"},
			steps: unitSteps{Write: true, Enable: true, Start: true},
		},
		{
			name:   "content",
			file:   func(f *executors.FileState) { f.Content = []byte("[Unit]\n") },
			action: engine.Update, reasons: []string{"unit file content differs", "restart to run the new unit definition"},
			steps: unitSteps{Write: true, Restart: true},
		},
		{
			name:   "mode and owner",
			file:   func(f *executors.FileState) { f.Mode, f.UID = 0o666, 1000 },
			action: engine.Update, reasons: []string{"unit file mode differs", "unit file owner differs", "restart to run the new unit definition"},
			steps: unitSteps{Write: true, Restart: true},
		},
		{
			name:   "need daemon-reload",
			props:  func(p *unitProps) { p.NeedDaemonReload = true },
			action: engine.Update, reasons: []string{"systemd has not loaded the unit file on disk (NeedDaemonReload=yes)", "restart to run the new unit definition"},
			steps: unitSteps{Reload: true, Restart: true},
		},
		{
			name:   "disabled",
			props:  func(p *unitProps) { p.UnitFileState = "disabled" },
			action: engine.Update, reasons: []string{"not enabled (UnitFileState=disabled)"},
			steps: unitSteps{Enable: true},
		},
		{
			name:   "failed",
			props:  func(p *unitProps) { p.ActiveState, p.SubState = "failed", "failed" },
			action: engine.Update, reasons: []string{"not active (ActiveState=failed, SubState=failed)"},
			steps: unitSteps{Start: true},
		},
		{
			name:   "stopped with new content",
			file:   func(f *executors.FileState) { f.Content = []byte("old\n") },
			props:  func(p *unitProps) { p.ActiveState, p.SubState = "inactive", "dead" },
			action: engine.Update, reasons: []string{"unit file content differs", "not active (ActiveState=inactive, SubState=dead)"},
			steps: unitSteps{Write: true, Start: true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, p := file, good
			if tc.file != nil {
				tc.file(&f)
			}
			if tc.props != nil {
				tc.props(&p)
			}
			ch := diffUnit("/etc/systemd/system/u.service", want, f, p)
			if ch.Action != tc.action {
				t.Errorf("action = %q, want %q", ch.Action, tc.action)
			}
			if strings.Join(ch.Reasons, "|") != strings.Join(tc.reasons, "|") {
				t.Errorf("reasons = %q, want %q", ch.Reasons, tc.reasons)
			}
			var st unitSteps
			json.Unmarshal(ch.Data, &st)
			if st != tc.steps {
				t.Errorf("steps = %+v, want %+v", st, tc.steps)
			}
			if (ch.Diff != "") != st.Write && tc.name != "mode and owner" {
				t.Errorf("diff %q with write=%v", ch.Diff, st.Write)
			}
			if ch.Fingerprint == "" {
				t.Error("no fingerprint")
			}
		})
	}
}

func TestDiffUnitFingerprintFollowsState(t *testing.T) {
	f := executors.FileState{Exists: true, Content: []byte("a\n"), Mode: 0o644}
	p := unitProps{LoadState: "loaded", ActiveState: "active", UnitFileState: "enabled"}
	a := diffUnit("/u", f.Content, f, p).Fingerprint
	p.ActiveState = "failed"
	if b := diffUnit("/u", f.Content, f, p).Fingerprint; a == b {
		t.Error("fingerprint did not change with the unit's state")
	}
}

func TestDiffService(t *testing.T) {
	for _, tc := range []struct {
		name    string
		props   unitProps
		wantErr string
		steps   serviceSteps
		reasons int
	}{
		{name: "running", props: unitProps{LoadState: "loaded", ActiveState: "active", UnitFileState: "enabled"}},
		{name: "static running", props: unitProps{LoadState: "loaded", ActiveState: "active", UnitFileState: "static"}},
		{name: "disabled stopped", props: unitProps{LoadState: "loaded", ActiveState: "inactive", SubState: "dead", UnitFileState: "disabled"},
			steps: serviceSteps{Enable: true, Start: true}, reasons: 2},
		{name: "enabled failed", props: unitProps{LoadState: "loaded", ActiveState: "failed", UnitFileState: "enabled"},
			steps: serviceSteps{Start: true}, reasons: 1},
		{name: "not installed", props: unitProps{LoadState: "not-found"}, wantErr: "docker.service is not installed on this host: install docker.io"},
		{name: "masked", props: unitProps{LoadState: "masked", UnitFileState: "masked"}, wantErr: "systemctl unmask docker.service"},
		{name: "bad unit", props: unitProps{LoadState: "bad-setting"}, wantErr: "cannot be loaded (LoadState=bad-setting)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := diffService("docker.service", packages["docker.service"], tc.props)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var st serviceSteps
			json.Unmarshal(ch.Data, &st)
			if st != tc.steps || len(ch.Reasons) != tc.reasons {
				t.Errorf("steps %+v reasons %q, want %+v and %d reasons", st, ch.Reasons, tc.steps, tc.reasons)
			}
			if (ch.Action == engine.Update) != (tc.reasons > 0) {
				t.Errorf("action %q", ch.Action)
			}
		})
	}
}

func TestNewUnitChecks(t *testing.T) {
	ok := UnitConfig{Name: "jupyterhub-openbis.service", Content: []byte("x")}
	for _, tc := range []struct {
		name string
		edit func(*UnitConfig)
		want string
	}{
		{"timer", func(c *UnitConfig) { c.Name = "x.timer" }, "not a service unit name"},
		{"path", func(c *UnitConfig) { c.Name = "../x.service" }, "not a service unit name"},
		{"empty", func(c *UnitConfig) { c.Content = nil }, "empty unit file"},
		{"relative script", func(c *UnitConfig) { c.StartScript, c.StartScriptAddress = "s.sh", "file.s" }, "not an absolute path"},
		{"script without address", func(c *UnitConfig) { c.StartScript = "/s.sh" }, "address is not given"},
		{"bad URL", func(c *UnitConfig) { c.HealthURL = "ftp://x/" }, "not an http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			if _, err := NewUnit(c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewUnit error = %v, want %q", err, tc.want)
			}
		})
	}
	u, err := NewUnit(ok)
	if err != nil {
		t.Fatal(err)
	}
	if u.Address() != "systemd_unit.jupyterhub-openbis" {
		t.Errorf("address %q", u.Address())
	}
	rec := u.Record()
	if rec.Kind != UnitKind || rec.Address != u.Address() {
		t.Errorf("record %+v", rec)
	}
}

func TestRestoreBackup(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "start.sh")
	if ok, err := restoreBackup(p); ok || err != nil {
		t.Fatalf("no backup: %v %v", ok, err)
	}
	if err := executors.WriteFile(p, []byte("old\n"), 0o755, -1, -1); err != nil {
		t.Fatal(err)
	}
	if err := executors.WriteFile(p, []byte("new\n"), 0o755, -1, -1); err != nil {
		t.Fatal(err)
	}
	ok, err := restoreBackup(p)
	if !ok || err != nil {
		t.Fatalf("restore: %v %v", ok, err)
	}
	if b, _ := os.ReadFile(p); string(b) != "old\n" {
		t.Errorf("restored %q", b)
	}
	// The failed version stays for inspection.
	if b, _ := os.ReadFile(p + executors.BackupSuffix); string(b) != "new\n" {
		t.Errorf("backup after restore %q", b)
	}
}
