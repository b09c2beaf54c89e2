package systemd

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/openbis/provision/internal/engine"

	"github.com/openbis/provision/executors"
)

// RemovedUnit is a unit that left the spec: its desired state is absent
// (stopped, disabled, unit file gone).
type RemovedUnit struct {
	address, bus, root string
	rec                unitRecord
}

// FromRecord builds the resource that deletes a unit recorded in the state
// file, on the host reached through bus and root (see UnitConfig).
func FromRecord(rec engine.Record, bus, root string) (*RemovedUnit, error) {
	if rec.Kind != UnitKind {
		return nil, fmt.Errorf("%s: record of kind %q is not a %s", rec.Address, rec.Kind, UnitKind)
	}
	var r unitRecord
	if err := json.Unmarshal(rec.Data, &r); err != nil {
		return nil, fmt.Errorf("%s: decode state record: %w", rec.Address, err)
	}
	if !unitNameRE.MatchString(r.Name) {
		return nil, fmt.Errorf("%s: recorded unit name %q is not a service unit name", rec.Address, r.Name)
	}
	return &RemovedUnit{address: rec.Address, bus: bus, root: root, rec: r}, nil
}

// Address implements engine.Resource.
func (r *RemovedUnit) Address() string { return r.address }

func (r *RemovedUnit) path() string { return filepath.Join(r.root, UnitDir, r.rec.Name) }

// Plan implements engine.Resource.
func (r *RemovedUnit) Plan(ctx context.Context) (*engine.Change, error) {
	file, err := executors.ReadFile(r.path())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.address, err)
	}
	p, err := planProps(ctx, r.bus, r.rec.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.address, err)
	}
	ch := &engine.Change{Address: r.address, Fingerprint: executors.Fingerprint(file.Exists, file.Content, p)}
	if file.Exists {
		ch.Reasons = append(ch.Reasons, "unit file "+filepath.Join(UnitDir, r.rec.Name)+" no longer in the spec")
		ch.Diff = executors.UnifiedDiff(filepath.Join(UnitDir, r.rec.Name), file.Content, nil)
	}
	if p.ActiveState == "active" || p.ActiveState == "activating" || p.ActiveState == "reloading" {
		ch.Reasons = append(ch.Reasons, fmt.Sprintf("still running (ActiveState=%s)", p.ActiveState))
	}
	if p.UnitFileState == "enabled" {
		ch.Reasons = append(ch.Reasons, "still enabled")
	}
	if len(ch.Reasons) > 0 {
		ch.Action = engine.Delete
	}
	return ch, nil
}

// Apply implements engine.Resource: stop, disable, remove the unit file
// (its last version stays as a backup) and reload systemd.
func (r *RemovedUnit) Apply(ctx context.Context, ch *engine.Change, out engine.Output) error {
	if ch.Action != engine.Delete {
		return nil
	}
	conn, err := Connect(ctx, r.bus)
	if err != nil {
		return fmt.Errorf("%s: %w", r.address, err)
	}
	defer conn.Close()
	if err := runJob(ctx, conn, "stop", r.rec.Name); err != nil {
		return fmt.Errorf("%s: %w\n%s", r.address, err, status(ctx, conn, r.rec.Name))
	}
	out.Progress(r.address, "stopped "+r.rec.Name)
	if _, err := conn.DisableUnitFilesContext(ctx, []string{r.rec.Name}, false); err != nil {
		return fmt.Errorf("%s: disable %s: %w", r.address, r.rec.Name, err)
	}
	if err := executors.RemoveFile(r.path()); err != nil {
		return fmt.Errorf("%s: %w", r.address, err)
	}
	if err := daemonReload(ctx, conn); err != nil {
		return fmt.Errorf("%s: %w", r.address, err)
	}
	_ = conn.ResetFailedUnitContext(ctx, r.rec.Name)
	out.Progress(r.address, "disabled and removed "+r.rec.Name)
	return nil
}

// Record implements engine.Resource: nothing remains to delete.
func (r *RemovedUnit) Record() *engine.Record { return nil }
