//go:build integration

package systemd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openbis/provision/internal/deploy"
	"github.com/openbis/provision/internal/imageref"
	"github.com/openbis/provision/internal/render"

	"github.com/openbis/provision/internal/engine"

	"github.com/openbis/provision/executors"
	"github.com/openbis/provision/templates"
	"github.com/openbis/provision/testenv/freshserver"
)

// These tests drive the systemd of a real fresh Debian server booted with
// systemd-nspawn (testenv/freshserver) over its system bus, with the
// stand-in JupyterHub image in its dockerd. Run as root:
//
//	go test -tags integration ./executors/systemd/

const (
	unitName      = "jupyterhub-openbis.service"
	scriptPath    = "/usr/local/bin/jupyterhub-openbis-start.sh"
	containerName = "jupyterhub-openbis"
)

// host is one fresh server with the stand-in images v1 (healthy), v2
// (healthy) and broken imported.
type host struct {
	t   *testing.T
	srv *freshserver.Server
	ctx context.Context
	out engine.Output
	log *bytes.Buffer
}

func newHost(t *testing.T) *host {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	srv := freshserver.Start(t, freshserver.Options{})
	for _, img := range []freshserver.StandIn{
		{Ref: "standin/jupyterhub:1", Version: "1"},
		{Ref: "standin/jupyterhub:2", Version: "2"},
		{Ref: "standin/jupyterhub:broken", Version: "broken", Broken: true},
	} {
		if err := srv.ImportStandIn(ctx, img); err != nil {
			t.Fatal(err)
		}
	}
	log := &bytes.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("apply output:\n%s", log)
		}
	})
	return &host{t: t, srv: srv, ctx: ctx, out: render.NewText(log, log, false), log: log}
}

// writeScript writes the start script for image as the file executor
// does (keeping the previous version as the backup rollback restores).
func (h *host) writeScript(image string) {
	h.t.Helper()
	content, err := templates.StartScript{Address: "file.start_script", Container: deploy.Container{
		Name:       containerName,
		Deployment: "test",
		Env:        []deploy.Env{{Name: "OPENBIS_URL", Value: "https://openbis.example.org"}, {Name: "JUPYTERHUB_PORT", Value: "8000"}},
		Ports:      []deploy.Port{{HostPort: 8000, ContainerPort: 8000}},
		Image:      imageref.Ref{Written: image},
		Command:    freshserver.StartCommand,
	}}.Render()
	if err != nil {
		h.t.Fatal(err)
	}
	path := filepath.Join(h.srv.Root, scriptPath)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := executors.WriteFile(path, content, 0o755, 0, 0); err != nil {
		h.t.Fatal(err)
	}
}

// with returns h reporting to t (a subtest).
func (h *host) with(t *testing.T) *host {
	c := *h
	c.t = t
	return &c
}

func (h *host) unitContent(stopTimeout int) []byte {
	h.t.Helper()
	b, err := RenderUnit(UnitParams{Address: "systemd_unit.jupyterhub", StartScript: scriptPath, ContainerName: containerName, StopTimeoutSec: stopTimeout})
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

func (h *host) unit(content []byte, healthTimeout time.Duration) *Unit {
	h.t.Helper()
	u, err := NewUnit(UnitConfig{
		Address: "systemd_unit.jupyterhub", Bus: h.srv.Bus, Root: h.srv.Root,
		Name: unitName, Content: content, StartScript: scriptPath, StartScriptAddress: "file.start_script", ContainerName: containerName,
		HealthURL: "http://127.0.0.1:8000/", Dial: h.srv.DialContext,
		HealthTimeout: healthTimeout, HealthInterval: 250 * time.Millisecond,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return u
}

func (h *host) plan(r engine.Resource) *engine.Change {
	h.t.Helper()
	ch, err := r.Plan(h.ctx)
	if err != nil {
		h.t.Fatalf("plan %s: %v", r.Address(), err)
	}
	return ch
}

func (h *host) apply(r engine.Resource, ch *engine.Change) {
	h.t.Helper()
	if err := r.Apply(h.ctx, ch, h.out); err != nil {
		h.t.Fatalf("apply %s: %v", r.Address(), err)
	}
}

func (h *host) sh(args ...string) string {
	h.t.Helper()
	out, err := h.srv.Exec(h.ctx, args...)
	if err != nil {
		h.t.Fatal(err)
	}
	return string(out)
}

// props reads the unit's state as systemctl sees it inside the server.
func (h *host) props(name string) string {
	return h.sh("systemctl", "show", "-p", "ActiveState,UnitFileState,NeedDaemonReload", name)
}

// converged is what systemctl show -p ActiveState,UnitFileState,NeedDaemonReload
// prints for an enabled, running, loaded unit.
const converged = "ActiveState=active\nUnitFileState=enabled\nNeedDaemonReload=no\n"

// page fetches the stand-in's page through the server's loopback.
func (h *host) page() string {
	h.t.Helper()
	client := &http.Client{Transport: &http.Transport{DialContext: h.srv.DialContext, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := client.Get("http://127.0.0.1:8000/")
	if err != nil {
		h.t.Fatalf("stand-in page: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// starts counts how often the unit has started a healthy stand-in.
func (h *host) starts() int {
	h.t.Helper()
	out, _ := h.srv.Journal(h.ctx, unitName, 1000)
	return strings.Count(out, "listening on")
}

// waitStarts waits for the journal to show want starts and says how many
// it saw (journald writes asynchronously).
func (h *host) waitStarts(want int) int {
	var n int
	for i := 0; i < 40; i++ {
		if n = h.starts(); n >= want {
			time.Sleep(300 * time.Millisecond)
			return h.starts()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return n
}

func (h *host) install(u *Unit) {
	h.t.Helper()
	h.apply(u, h.plan(u))
}

func wantConverged(t *testing.T, ch *engine.Change) {
	t.Helper()
	if ch.Pending() || ch.Action != engine.NoOp {
		t.Fatalf("plan on a converged host = %s %v %+v, want no-op", ch.Action, ch.Reasons, ch.Fields)
	}
}

func wantReason(t *testing.T, ch *engine.Change, reason string) {
	t.Helper()
	for _, r := range ch.Reasons {
		if strings.Contains(r, reason) {
			return
		}
	}
	t.Fatalf("plan reasons %q, want one containing %q", ch.Reasons, reason)
}

func TestUnitInstallIdempotentAndDrift(t *testing.T) {
	h := newHost(t)
	h.writeScript("standin/jupyterhub:1")
	u := h.unit(h.unitContent(0), 30*time.Second)

	ch := h.plan(u)
	if ch.Action != engine.Create || !strings.Contains(ch.Diff, "ExecStart=") {
		t.Fatalf("first plan = %s %v, diff %q; want create with the unit file as diff", ch.Action, ch.Reasons, ch.Diff)
	}
	h.apply(u, ch)
	if got := h.props(unitName); got != converged {
		t.Fatalf("after first apply: %q", got)
	}
	if p := h.page(); !strings.Contains(p, "standin version: 1") {
		t.Fatalf("page after install = %q", p)
	}
	fi, err := os.Stat(u.Path())
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("unit file: %v %v", fi, err)
	}

	// A second run on the converged host plans and does nothing.
	before := h.waitStarts(1)
	wantConverged(t, h.plan(u))
	if n := h.waitStarts(before); n != before {
		t.Fatalf("planning restarted the unit: %d starts, want %d", n, before)
	}

	path := u.Path()
	for _, tc := range []struct {
		name   string
		drift  func(h *host)
		reason string
		field  string
	}{
		{"content", func(*host) {
			b, _ := os.ReadFile(path)
			os.WriteFile(path, append(b, []byte("# edited by hand\n")...), 0o644)
		}, "unit file content differs", ""},
		{"mode", func(*host) { os.Chmod(path, 0o600) }, "unit file mode differs", "mode"},
		{"daemon-reload", func(*host) {
			later := time.Now().Add(time.Minute)
			os.Chtimes(path, later, later)
		}, "NeedDaemonReload=yes", ""},
		{"disabled", func(h *host) { h.sh("systemctl", "disable", unitName) }, "not enabled (UnitFileState=disabled)", "enabled"},
		{"stopped", func(h *host) { h.sh("systemctl", "stop", unitName) }, "not active (ActiveState=inactive", "active"},
		{"killed", func(h *host) {
			// systemd waits RestartSec before restarting a failed unit.
			h.sh("systemctl", "kill", "--kill-whom=main", "--signal=SIGKILL", unitName)
			time.Sleep(500 * time.Millisecond)
		}, "not active (ActiveState=", "active"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := h.with(t)
			tc.drift(h)
			ch := h.plan(u)
			if ch.Action != engine.Update {
				t.Fatalf("plan after %s drift = %q %v, want update", tc.name, ch.Action, ch.Reasons)
			}
			wantReason(t, ch, tc.reason)
			if tc.field != "" {
				found := false
				for _, f := range ch.Fields {
					found = found || f.Name == tc.field
				}
				if !found {
					t.Errorf("fields %+v, want %q", ch.Fields, tc.field)
				}
			}
			if tc.name == "content" && !strings.Contains(ch.Diff, "-# edited by hand") {
				t.Errorf("diff %q does not show the hand edit", ch.Diff)
			}
			h.apply(u, ch)
			wantConverged(t, h.plan(u))
			if got := h.props(unitName); got != converged {
				t.Fatalf("after repair: %q", got)
			}
			if p := h.page(); !strings.Contains(p, "standin version: 1") {
				t.Fatalf("page after repair = %q", p)
			}
		})
	}
}

// TestUnitRemovedFromSpec deletes an installed unit through its state
// record: stopped (with its container), disabled, file removed.
func TestUnitRemovedFromSpec(t *testing.T) {
	h := newHost(t)
	h.writeScript("standin/jupyterhub:1")
	u := h.unit(h.unitContent(0), 30*time.Second)
	h.install(u)

	rm, err := FromRecord(*u.Record(), h.srv.Bus, h.srv.Root)
	if err != nil {
		t.Fatal(err)
	}
	ch := h.plan(rm)
	if ch.Action != engine.Delete {
		t.Fatalf("plan of a removed unit = %q %v", ch.Action, ch.Reasons)
	}
	wantReason(t, ch, "no longer in the spec")
	wantReason(t, ch, "still running")
	h.apply(rm, ch)
	wantConverged(t, h.plan(rm))
	if _, err := os.Stat(u.Path()); !os.IsNotExist(err) {
		t.Errorf("unit file still there: %v", err)
	}
	if got := h.sh("systemctl", "show", "-p", "ActiveState,UnitFileState", unitName); got != "ActiveState=inactive\nUnitFileState=\n" {
		t.Errorf("after removal: %q", got)
	}
	if got := h.sh("docker", "ps", "-q", "--filter", "name="+containerName); strings.TrimSpace(got) != "" {
		t.Errorf("container still running after removal: %q", got)
	}
}

func TestRestartOncePerRun(t *testing.T) {
	h := newHost(t)
	h.writeScript("standin/jupyterhub:1")
	u := h.unit(h.unitContent(0), 30*time.Second)
	h.install(u)
	n0 := h.waitStarts(1)

	// The start script (new image) changed upstream: the engine marks the
	// unit, whose own change is a no-op, and may call Apply and Restart.
	h.writeScript("standin/jupyterhub:2")
	u = h.unit(h.unitContent(0), 30*time.Second)
	ch := h.plan(u)
	wantConverged(t, ch)
	ch.TriggeredBy = []string{"file.start_script", "docker_image.jupyterhub"}
	h.apply(u, ch)
	if err := u.Restart(h.ctx, ch, h.out); err != nil {
		t.Fatal(err)
	}
	if n := h.waitStarts(n0 + 1); n != n0+1 {
		t.Fatalf("starts after a triggered run = %d, want %d (exactly one restart)", n, n0+1)
	}
	if p := h.page(); !strings.Contains(p, "standin version: 2") {
		t.Fatalf("page after restart = %q, want version 2", p)
	}

	// Unit file and script change in the same run: still one restart.
	h.writeScript("standin/jupyterhub:1")
	u = h.unit(h.unitContent(15), 30*time.Second)
	ch = h.plan(u)
	wantReason(t, ch, "restart to run the new unit definition")
	ch.TriggeredBy = []string{"file.start_script"}
	h.apply(u, ch)
	if err := u.Restart(h.ctx, ch, h.out); err != nil {
		t.Fatal(err)
	}
	if n := h.waitStarts(n0 + 2); n != n0+2 {
		t.Fatalf("starts after unit+script change = %d, want %d", n, n0+2)
	}
	if p := h.page(); !strings.Contains(p, "standin version: 1") {
		t.Fatalf("page = %q, want version 1", p)
	}
	wantConverged(t, h.plan(u))

	// Restart alone (engine's path for a no-op unit) restarts once.
	u = h.unit(h.unitContent(15), 30*time.Second)
	if err := u.Restart(h.ctx, &engine.Change{TriggeredBy: []string{"docker_container.jupyterhub"}}, h.out); err != nil {
		t.Fatal(err)
	}
	if n := h.waitStarts(n0 + 3); n != n0+3 {
		t.Fatalf("starts after Restart = %d, want %d", n, n0+3)
	}
}

func TestBrokenImageRolledBack(t *testing.T) {
	h := newHost(t)
	h.writeScript("standin/jupyterhub:1")
	h.install(h.unit(h.unitContent(0), 30*time.Second))
	good, _ := os.ReadFile(filepath.Join(h.srv.Root, scriptPath))

	h.writeScript("standin/jupyterhub:broken")
	u := h.unit(h.unitContent(0), 8*time.Second)
	start := time.Now()
	err := u.Restart(h.ctx, &engine.Change{TriggeredBy: []string{"file.start_script"}}, h.out)
	t.Logf("failed upgrade and rollback took %s", time.Since(start))
	if err == nil {
		t.Fatal("Restart with a broken image succeeded")
	}
	msg := err.Error()
	t.Logf("error:\n%s", msg)
	for _, want := range []string{
		"health check", "exited", "rolled back start script " + scriptPath,
		"healthy again", "last 20 journal lines of " + unitName, "broken on purpose",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q:\n%s", want, msg)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(h.srv.Root, scriptPath)); !bytes.Equal(got, good) {
		t.Errorf("start script after rollback is not the previous version:\n%s", got)
	}
	if p := h.page(); !strings.Contains(p, "standin version: 1") {
		t.Fatalf("page after rollback = %q, want the old version", p)
	}
	if got := h.props(unitName); !strings.Contains(got, "ActiveState=active") {
		t.Fatalf("unit after rollback: %q", got)
	}
}

func TestFailingUnitJournalInError(t *testing.T) {
	h := newHost(t)
	// A first install of a broken image: nothing to roll back to.
	h.writeScript("standin/jupyterhub:broken")
	u, err := NewUnit(UnitConfig{
		Bus: h.srv.Bus, Root: h.srv.Root, Name: unitName, Content: h.unitContent(0),
		StartScript: scriptPath, StartScriptAddress: "file.start_script", ContainerName: containerName,
		HealthAddr: "127.0.0.1:8000", Dial: h.srv.DialContext, HealthTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if u.Address() != "systemd_unit.jupyterhub-openbis" {
		t.Errorf("default address %q", u.Address())
	}
	err = u.Apply(h.ctx, h.plan(u), h.out)
	if err == nil {
		t.Fatal("apply of a broken unit succeeded")
	}
	msg := err.Error()
	t.Logf("error:\n%s", msg)
	// The default journal reader (journalctl -D ROOT/var/log/journal) is
	// the one that found these lines.
	for _, want := range []string{"exited (activating, auto-restart)", "no rollback", unitName + ": ", "broken on purpose"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q:\n%s", want, msg)
		}
	}
}

func TestServiceBootstrap(t *testing.T) {
	h := newHost(t)
	h.sh("systemctl", "disable", "--now", "docker.socket", "docker.service", "firewalld.service")
	for _, name := range []string{"docker.service", "firewalld.service"} {
		t.Run(name, func(t *testing.T) {
			h := h.with(t)
			s, err := NewService(ServiceConfig{Bus: h.srv.Bus, Name: name, Journal: h.srv.Journal})
			if err != nil {
				t.Fatal(err)
			}
			ch := h.plan(s)
			if ch.Action != engine.Update {
				t.Fatalf("plan of stopped, disabled %s = %q", name, ch.Action)
			}
			wantReason(t, ch, "installed but not enabled (UnitFileState=disabled)")
			wantReason(t, ch, "installed but not running (ActiveState=inactive")
			h.apply(s, ch)
			wantConverged(t, h.plan(s))
			if got := h.props(name); got != converged {
				t.Fatalf("%s after apply: %q", name, got)
			}
		})
	}
	h.sh("docker", "info", "--format", "{{.ServerVersion}}")

	// Uninstalled: the package's unit file is gone.
	h.sh("systemctl", "disable", "--now", "firewalld.service")
	h.sh("rm", "/lib/systemd/system/firewalld.service")
	h.sh("systemctl", "daemon-reload")
	s, _ := NewService(ServiceConfig{Bus: h.srv.Bus, Name: "firewalld.service"})
	_, err := s.Plan(h.ctx)
	if err == nil || !strings.Contains(err.Error(), "firewalld.service is not installed on this host: install firewalld") {
		t.Fatalf("plan of an uninstalled service: %v", err)
	}
}

// BenchmarkPlanConverged measures planning the unit on a converged host
// (one bus connection, one property read, one file read).
func BenchmarkPlanConverged(b *testing.B) {
	ctx := context.Background()
	srv, err := freshserver.Boot(ctx, freshserver.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	content, _ := RenderUnit(UnitParams{StartScript: "/bin/sleep", ContainerName: "x"})
	content = bytes.Replace(content, []byte(`ExecStart="/bin/sleep"`), []byte(`ExecStart=/bin/sleep infinity`), 1)
	u, err := NewUnit(UnitConfig{Bus: srv.Bus, Root: srv.Root, Name: "bench.service", Content: content})
	if err != nil {
		b.Fatal(err)
	}
	ch, err := u.Plan(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := u.Apply(ctx, ch, engine.Discard); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		ch, err := u.Plan(ctx)
		if err != nil || ch.Pending() {
			b.Fatal(fmt.Sprint(err, ch))
		}
	}
}
