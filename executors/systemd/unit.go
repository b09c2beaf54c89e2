// Package systemd manages systemd units over D-Bus: the JupyterHub unit
// (file, enablement, state, restarts with a health check and rollback) and
// the services a fresh server must run (docker, firewalld).
package systemd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/openbis/provision/internal/engine"

	sddbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/openbis/provision/executors"
)

// Kinds as they appear in addresses and state records.
const (
	UnitKind    = "systemd_unit"
	ServiceKind = "systemd_service"
)

// UnitDir is where provision writes unit files: the admin's directory,
// which overrides units shipped by packages.
const UnitDir = "/etc/systemd/system"

const unitMode fs.FileMode = 0o644

// unitNameRE accepts systemd unit names (no path separators, no spaces).
var unitNameRE = regexp.MustCompile(`^[a-zA-Z0-9:_.\\@-]+\.service$`)

// UnitConfig describes the desired JupyterHub unit.
type UnitConfig struct {
	// Address is the resource address; default "systemd_unit." + Name
	// without ".service".
	Address string
	// Bus is the system bus address ("unix:path=…"); "" is this host's.
	Bus string
	// Root prefixes every path provision reads or writes: "" on a real
	// host, /proc/PID/root for a container driven from outside.
	Root string
	// Name of the unit, e.g. "jupyterhub-openbis.service".
	Name string
	// Content is the unit file, rendered by RenderUnit.
	Content []byte
	// StartScript is the path (without Root) of the script the unit runs;
	// rollback restores its previous version (StartScript+".provision-bak").
	StartScript string
	// StartScriptAddress is the start script's resource address: a change
	// of it is what rollback undoes. Required with StartScript.
	StartScriptAddress string
	// ContainerName is the container the unit supervises (for messages).
	ContainerName string

	// HealthURL is fetched after a (re)start (any answer below 500 counts;
	// certificates are not checked). HealthAddr ("host:port") is dialled
	// first; it defaults to HealthURL's host and port.
	HealthURL  string
	HealthAddr string
	// Dial opens the probe's connections; default net.Dialer. Tests dial
	// into a container's network namespace.
	Dial DialFunc
	// Probe replaces the TCP+HTTP check entirely when set.
	Probe ProbeFunc
	// HealthTimeout bounds the wait for a healthy service; default 3m.
	HealthTimeout time.Duration
	// HealthInterval is the pause between probes; default 100ms.
	HealthInterval time.Duration

	// Journal reads the unit's last journal lines for error messages;
	// default journalctl (with -D Root/var/log/journal when Root is set).
	Journal JournalFunc
	// JournalLines is how many lines errors show; default 20.
	JournalLines int
}

// Unit is the systemd_unit resource. A Unit value serves one run: it
// remembers that it (re)started the unit so that Apply and Restart
// together restart it exactly once; build a new one for the next run.
type Unit struct {
	cfg   UnitConfig
	probe ProbeFunc
	// restarted is set once this value has (re)started the unit, so that
	// Apply and Restart in one run restart it exactly once.
	restarted bool
	// triggers are the upstream changes of this run; rollback restores
	// the start script only when it is one of them.
	triggers []string
}

var _ engine.Restarter = (*Unit)(nil)

// NewUnit checks cfg and returns the resource.
func NewUnit(cfg UnitConfig) (*Unit, error) {
	if !unitNameRE.MatchString(cfg.Name) {
		return nil, fmt.Errorf("systemd unit: %q is not a service unit name", cfg.Name)
	}
	if cfg.Address == "" {
		cfg.Address = UnitKind + "." + strings.TrimSuffix(cfg.Name, ".service")
	}
	if cfg.StartScript != "" && cfg.StartScriptAddress == "" {
		return nil, fmt.Errorf("%s: the start script's resource address is not given", cfg.Address)
	}
	if len(cfg.Content) == 0 {
		return nil, fmt.Errorf("%s: empty unit file content", cfg.Address)
	}
	if cfg.StartScript != "" && !filepath.IsAbs(cfg.StartScript) {
		return nil, fmt.Errorf("%s: start script %q is not an absolute path", cfg.Address, cfg.StartScript)
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = 3 * time.Minute
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = 100 * time.Millisecond
	}
	if cfg.Journal == nil {
		cfg.Journal = journalctl(cfg.Root)
	}
	if cfg.JournalLines <= 0 {
		cfg.JournalLines = 20
	}
	u := &Unit{cfg: cfg, probe: cfg.Probe}
	if u.probe == nil {
		p, err := httpProbe(cfg.HealthAddr, cfg.HealthURL, cfg.Dial)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Address, err)
		}
		u.probe = p
	}
	return u, nil
}

// Address implements engine.Resource.
func (u *Unit) Address() string { return u.cfg.Address }

// Path is where the unit file lives on the host (with Root).
func (u *Unit) Path() string { return filepath.Join(u.cfg.Root, UnitDir, u.cfg.Name) }

// unitSteps is what Apply does; Plan decides it from one read.
type unitSteps struct {
	Write   bool `json:"write,omitempty"`
	Reload  bool `json:"reload,omitempty"`
	Enable  bool `json:"enable,omitempty"`
	Start   bool `json:"start,omitempty"`
	Restart bool `json:"restart,omitempty"`
}

// Plan implements engine.Resource. It reports each kind of drift
// separately: file content (as a diff), mode and owner, a pending
// daemon-reload, not enabled, not active.
func (u *Unit) Plan(ctx context.Context) (*engine.Change, error) {
	file, err := executors.ReadFile(u.Path())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.cfg.Address, err)
	}
	props, err := planProps(ctx, u.cfg.Bus, u.cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.cfg.Address, err)
	}
	if props.UnitFileState == "masked" || props.LoadState == "masked" {
		return nil, fmt.Errorf("%s: %s is masked; unmask it (systemctl unmask %s) to let provision manage it", u.cfg.Address, u.cfg.Name, u.cfg.Name)
	}
	ch := diffUnit(filepath.Join(UnitDir, u.cfg.Name), u.cfg.Content, file, props)
	ch.Address = u.cfg.Address
	return ch, nil
}

// diffUnit decides the change from what was read. It is pure so that the
// decision table is unit-tested without systemd.
func diffUnit(path string, want []byte, file executors.FileState, p unitProps) *engine.Change {
	ch := &engine.Change{}
	var st unitSteps
	active := p.ActiveState == "active"
	switch {
	case !file.Exists:
		ch.Action = engine.Create
		ch.Reasons = append(ch.Reasons, "unit file "+path+" missing")
		ch.Diff = executors.UnifiedDiff(path, nil, want)
		st.Write = true
	case !bytes.Equal(file.Content, want):
		ch.Reasons = append(ch.Reasons, "unit file content differs")
		ch.Diff = executors.UnifiedDiff(path, file.Content, want)
		st.Write = true
	}
	if file.Exists {
		if file.Mode != unitMode {
			ch.Reasons = append(ch.Reasons, "unit file mode differs")
			ch.Fields = append(ch.Fields, engine.Field{Name: "mode", Old: fmt.Sprintf("%#o", file.Mode), New: fmt.Sprintf("%#o", unitMode)})
			st.Write = true
		}
		if file.UID != 0 || file.GID != 0 {
			ch.Reasons = append(ch.Reasons, "unit file owner differs")
			ch.Fields = append(ch.Fields, engine.Field{Name: "owner", Old: fmt.Sprintf("%d:%d", file.UID, file.GID), New: "0:0"})
			st.Write = true
		}
	}
	if p.NeedDaemonReload {
		ch.Reasons = append(ch.Reasons, "systemd has not loaded the unit file on disk (NeedDaemonReload=yes)")
		st.Reload = true
	}
	if p.UnitFileState != "enabled" {
		if file.Exists {
			ch.Reasons = append(ch.Reasons, fmt.Sprintf("not enabled (UnitFileState=%s)", orNone(p.UnitFileState)))
		}
		ch.Fields = append(ch.Fields, engine.Field{Name: "enabled", Old: orNone(p.UnitFileState), New: "enabled"})
		st.Enable = true
	}
	if !active {
		if file.Exists {
			ch.Reasons = append(ch.Reasons, fmt.Sprintf("not active (ActiveState=%s, SubState=%s)", orNone(p.ActiveState), orNone(p.SubState)))
		}
		ch.Fields = append(ch.Fields, engine.Field{Name: "active", Old: orNone(p.ActiveState), New: "active"})
		st.Start = true
	} else if st.Write || st.Reload {
		// The running service was started from the old definition.
		ch.Reasons = append(ch.Reasons, "restart to run the new unit definition")
		st.Restart = true
	}
	if ch.Action == engine.NoOp && (st != unitSteps{}) {
		ch.Action = engine.Update
	}
	ch.Data, _ = json.Marshal(st)
	ch.Fingerprint = executors.Fingerprint(file.Exists, file.Content, file.Mode, file.UID, file.GID, p)
	return ch
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Apply implements engine.Resource: write the unit file, enable it,
// reload systemd once, then start or restart the unit with a health check.
// A change triggered by upstream resources (ch.TriggeredBy) restarts the
// unit here too; a Restart call after that in the same run does nothing.
func (u *Unit) Apply(ctx context.Context, ch *engine.Change, out engine.Output) error {
	var st unitSteps
	if len(ch.Data) > 0 {
		if err := json.Unmarshal(ch.Data, &st); err != nil {
			return fmt.Errorf("%s: decode planned change: %w", u.cfg.Address, err)
		}
	}
	u.triggers = ch.TriggeredBy
	// Restarts for upstream changes come through Restart; Apply does what
	// the unit's own state needs.
	if st == (unitSteps{}) {
		return nil
	}
	conn, err := Connect(ctx, u.cfg.Bus)
	if err != nil {
		return fmt.Errorf("%s: %w", u.cfg.Address, err)
	}
	defer conn.Close()
	if st.Write {
		if err := executors.WriteFile(u.Path(), u.cfg.Content, unitMode, 0, 0); err != nil {
			return fmt.Errorf("%s: %w", u.cfg.Address, err)
		}
		out.Progress(u.cfg.Address, "wrote "+filepath.Join(UnitDir, u.cfg.Name))
	}
	if st.Enable {
		if err := enable(ctx, conn, u.cfg.Name); err != nil {
			return fmt.Errorf("%s: %w", u.cfg.Address, err)
		}
		out.Progress(u.cfg.Address, "enabled "+u.cfg.Name)
	}
	if st.Write || st.Reload || st.Enable {
		if err := daemonReload(ctx, conn); err != nil {
			return fmt.Errorf("%s: %w", u.cfg.Address, err)
		}
		out.Progress(u.cfg.Address, "reloaded systemd")
	}
	if st.Start || st.Restart {
		// A restart job also starts an inactive unit, and unlike a start
		// job it does not wait out RestartSec of a unit in auto-restart.
		return u.cycle(ctx, conn, "restart", st.Write, out)
	}
	return nil
}

// Restart implements engine.Restarter: restart the unit once, check its
// health and roll back on failure. It does nothing when this run already
// (re)started the unit in Apply.
func (u *Unit) Restart(ctx context.Context, ch *engine.Change, out engine.Output) error {
	u.triggers = ch.TriggeredBy
	if u.restarted {
		out.Progress(u.cfg.Address, "already restarted in this run")
		return nil
	}
	conn, err := Connect(ctx, u.cfg.Bus)
	if err != nil {
		return fmt.Errorf("%s: %w", u.cfg.Address, err)
	}
	defer conn.Close()
	return u.cycle(ctx, conn, "restart", false, out)
}

// Check implements engine.Checker: the unit is active and answers its
// health check, as after a restart.
func (u *Unit) Check(ctx context.Context, out engine.Output) error {
	conn, err := Connect(ctx, u.cfg.Bus)
	if err != nil {
		return fmt.Errorf("%s: %w", u.cfg.Address, err)
	}
	defer conn.Close()
	if err := u.checkHealth(ctx, conn, out); err != nil {
		return fmt.Errorf("%s: %s is not healthy: %w", u.cfg.Address, u.cfg.Name, err)
	}
	out.Progress(u.cfg.Address, u.cfg.Name+" is healthy")
	return nil
}

// cycle runs a start or restart job, checks health and, when the new
// version is not healthy, rolls back to the previous start script (and
// unit file, when this run wrote it) and makes sure that one is healthy.
func (u *Unit) cycle(ctx context.Context, conn *sddbus.Conn, verb string, wroteUnit bool, out engine.Output) error {
	u.restarted = true
	out.Progress(u.cfg.Address, verb+"ing "+u.cfg.Name)
	// A unit that hit its start limit refuses to start until reset; the
	// apply is the admin asking for a start.
	_ = conn.ResetFailedUnitContext(ctx, u.cfg.Name)
	failure := runJob(ctx, conn, verb, u.cfg.Name)
	if failure == nil {
		failure = u.checkHealth(ctx, conn, out)
	}
	if failure == nil {
		out.Progress(u.cfg.Address, u.cfg.Name+" is healthy")
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", u.cfg.Address, failure)
	}
	// Capture the failed version's state before the rollback replaces it.
	report := status(ctx, conn, u.cfg.Name) + "\n" + journalTail(ctx, u.cfg.Journal, u.cfg.Name, u.cfg.JournalLines)
	out.Progress(u.cfg.Address, fmt.Sprintf("%s failed (%v); rolling back", verb, failure))
	restored, rbErr := u.rollback(ctx, conn, wroteUnit, out)
	switch {
	case rbErr != nil && len(restored) == 0:
		return fmt.Errorf("%s: %s %s: %w; no rollback: %v\n%s", u.cfg.Address, verb, u.cfg.Name, failure, rbErr, report)
	case rbErr != nil:
		return fmt.Errorf("%s: %s %s: %w; rolled back %s, but the previous version failed too: %v\n%s\n%s", u.cfg.Address, verb, u.cfg.Name, failure,
			strings.Join(restored, " and "), rbErr, report, journalTail(ctx, u.cfg.Journal, u.cfg.Name, u.cfg.JournalLines))
	}
	return fmt.Errorf("%s: %s %s: %w; rolled back %s to the previous version, which is healthy again\n%s",
		u.cfg.Address, verb, u.cfg.Name, failure, strings.Join(restored, " and "), report)
}

// checkHealth waits until the unit is active and its probe answers.
func (u *Unit) checkHealth(ctx context.Context, conn *sddbus.Conn, out engine.Output) error {
	if u.probe == nil {
		p, err := readProps(ctx, conn, u.cfg.Name)
		if err != nil {
			return err
		}
		if p.ActiveState != "active" {
			return fmt.Errorf("%s is %s (%s)", u.cfg.Name, p.ActiveState, p.SubState)
		}
		return nil
	}
	out.Progress(u.cfg.Address, fmt.Sprintf("waiting up to %s for it to answer", u.cfg.HealthTimeout))
	// Healthy means: the probe passes twice in a row and the unit is still
	// active afterwards, so a service that answers for a moment and then
	// exits (and is being restarted by systemd) does not count.
	probe := func(ctx context.Context) error {
		// A unit whose process exited is not going to answer: fail now
		// instead of at the end of the timeout.
		if p, err := readProps(ctx, conn, u.cfg.Name); err == nil && (p.ActiveState == "failed" || p.SubState == "auto-restart") {
			return &unitDown{fmt.Errorf("%s exited (%s, %s)", u.cfg.Name, p.ActiveState, p.SubState)}
		}
		if err := u.probe(ctx); err != nil {
			return err
		}
		select {
		case <-time.After(u.cfg.HealthInterval):
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := u.probe(ctx); err != nil {
			return err
		}
		p, err := readProps(ctx, conn, u.cfg.Name)
		if err != nil {
			return err
		}
		if p.ActiveState != "active" {
			return fmt.Errorf("%s answered but is %s (%s)", u.cfg.Name, p.ActiveState, p.SubState)
		}
		return nil
	}
	if err := waitHealthy(ctx, probe, u.cfg.HealthTimeout, u.cfg.HealthInterval); err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	return nil
}

// rollback restores the previous start script, and the previous unit file
// when this run wrote it, from their backups, then restarts and checks the
// unit. restored names what was put back.
func (u *Unit) rollback(ctx context.Context, conn *sddbus.Conn, wroteUnit bool, out engine.Output) (restored []string, err error) {
	// Only a start script this run replaced is rolled back: an older
	// backup is some earlier version nobody asked to return to.
	if u.cfg.StartScript != "" && slices.Contains(u.triggers, u.cfg.StartScriptAddress) {
		ok, err := restoreBackup(filepath.Join(u.cfg.Root, u.cfg.StartScript))
		if err != nil {
			return nil, err
		}
		if ok {
			restored = append(restored, "start script "+u.cfg.StartScript)
		}
	}
	if wroteUnit {
		ok, err := restoreBackup(u.Path())
		if err != nil {
			return restored, err
		}
		if ok {
			restored = append(restored, "unit file "+filepath.Join(UnitDir, u.cfg.Name))
			if err := daemonReload(ctx, conn); err != nil {
				return restored, err
			}
		}
	}
	if len(restored) == 0 {
		return nil, errors.New("no previous version of the start script or unit file to restore")
	}
	out.Progress(u.cfg.Address, "restored "+strings.Join(restored, " and ")+"; restarting "+u.cfg.Name)
	// Failed starts count against the start limit; the old version gets a
	// clean slate.
	_ = conn.ResetFailedUnitContext(ctx, u.cfg.Name)
	if err := runJob(ctx, conn, "restart", u.cfg.Name); err != nil {
		return restored, err
	}
	return restored, u.checkHealth(ctx, conn, out)
}

// restoreBackup puts path's backup back in place, keeping the failed
// version as the new backup for inspection. It reports false when there is
// no backup or it equals the current file.
func restoreBackup(path string) (bool, error) {
	bak, err := executors.ReadFile(path + executors.BackupSuffix)
	if err != nil || !bak.Exists {
		return false, err
	}
	cur, err := executors.ReadFile(path)
	if err != nil {
		return false, err
	}
	if cur.Exists && bytes.Equal(cur.Content, bak.Content) && cur.Mode == bak.Mode {
		return false, nil
	}
	if err := executors.WriteFile(path, bak.Content, bak.Mode, bak.UID, bak.GID); err != nil {
		return false, fmt.Errorf("restore %s from its backup: %w", path, err)
	}
	return true, nil
}

// unitRecord is what the state file keeps of a unit.
type unitRecord struct {
	Name          string `json:"name"`
	StartScript   string `json:"start_script,omitempty"`
	ContainerName string `json:"container_name,omitempty"`
}

// Record implements engine.Resource.
func (u *Unit) Record() *engine.Record {
	data, _ := json.Marshal(unitRecord{Name: u.cfg.Name, StartScript: u.cfg.StartScript, ContainerName: u.cfg.ContainerName})
	return &engine.Record{Address: u.cfg.Address, Kind: UnitKind, Data: data}
}

// Supersedes implements engine.Superseder: another unit name is another
// unit, which would keep running the old container.
func (u *Unit) Supersedes(old engine.Record) bool {
	var r unitRecord
	return json.Unmarshal(old.Data, &r) == nil && r.Name != u.cfg.Name
}
