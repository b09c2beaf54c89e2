package firewalld

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/openbis/provision/internal/engine"

	"github.com/openbis/provision/executors"
)

// entry is one thing firewalld holds in its runtime and its permanent
// configuration alike (a rich rule, a direct rule). Plan and Apply of every
// such kind share the code below, so they cannot disagree.
type entry interface {
	// query reports presence, through firewalld's own comparison.
	query(ctx context.Context, c *client, permanent bool) (bool, error)
	// add and remove tolerate ALREADY_ENABLED / NOT_ENABLED: the state
	// wanted is there.
	add(ctx context.Context, c *client, permanent bool) error
	remove(ctx context.Context, c *client, permanent bool) error
	// gone reports errors that, when deleting, mean the entry cannot exist
	// (its zone was removed).
	gone(err error) bool
}

// presence is what a plan saw, carried to Apply in Change.Data.
type presence struct {
	Runtime   bool `json:"runtime"`
	Permanent bool `json:"permanent"`
}

func planEntry(ctx context.Context, addr string, conn *Conn, bus string, e entry, absent bool, fields []engine.Field, fp ...any) (*engine.Change, error) {
	c, release, err := use(ctx, conn, bus)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	defer release()
	var p presence
	for _, perm := range []bool{false, true} {
		ok, err := e.query(ctx, c, perm)
		if absent && err != nil && e.gone(err) {
			ok, err = false, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
		if perm {
			p.Permanent = ok
		} else {
			p.Runtime = ok
		}
	}
	return changeFor(addr, p, absent, fields, fp...), nil
}

// changeFor decides the change from what the read saw: pure, so the
// decision table is unit-tested without a firewalld.
func changeFor(addr string, p presence, absent bool, fields []engine.Field, fp ...any) *engine.Change {
	data, _ := json.Marshal(p)
	ch := &engine.Change{
		Address:     addr,
		Fingerprint: executors.Fingerprint(append(fp, p)...),
		Data:        data,
		Fields:      fields,
	}
	if absent {
		for i := range ch.Fields {
			ch.Fields[i].Old, ch.Fields[i].New = ch.Fields[i].New, ""
		}
		if p.Runtime {
			ch.Reasons = append(ch.Reasons, "runtime present")
		}
		if p.Permanent {
			ch.Reasons = append(ch.Reasons, "permanent present")
		}
		if p.Runtime || p.Permanent {
			ch.Action = engine.Delete
		} else {
			ch.Fields = nil
		}
		return ch
	}
	if !p.Runtime {
		ch.Reasons = append(ch.Reasons, "runtime missing")
	}
	if !p.Permanent {
		ch.Reasons = append(ch.Reasons, "permanent missing")
	}
	switch {
	case !p.Runtime && !p.Permanent:
		ch.Action = engine.Create
	case !p.Runtime || !p.Permanent:
		ch.Action = engine.Update
	default:
		ch.Fields = nil
	}
	return ch
}

func applyEntry(ctx context.Context, addr string, conn *Conn, bus string, e entry, absent bool, ch *engine.Change, out engine.Output) error {
	if ch == nil || ch.Action == engine.NoOp {
		return nil
	}
	var p presence
	if err := json.Unmarshal(ch.Data, &p); err != nil {
		return fmt.Errorf("%s: plan data: %w", addr, err)
	}
	c, release, err := use(ctx, conn, bus)
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	defer release()
	for _, perm := range []bool{false, true} {
		where := "runtime"
		have := p.Runtime
		if perm {
			where, have = "permanent", p.Permanent
		}
		switch {
		case absent && have:
			out.Progress(addr, "removing from "+where+" configuration")
			err = e.remove(ctx, c, perm)
		case !absent && !have:
			out.Progress(addr, "adding to "+where+" configuration")
			err = e.add(ctx, c, perm)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
	}
	return nil
}

// tolerate drops the error firewalld raises when the wanted state is
// already there.
func tolerate(err error, code string) error {
	if IsCode(err, code) {
		return nil
	}
	return err
}
