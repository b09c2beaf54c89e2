// Package plan turns a spec into changes and applies them: decoding and
// validation of the HCL spec, compilation into resources, the plan data
// type and its renderings, the apply loop, the state file and the lock.
package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// maxReads bounds the reads of one plan that run at once.
const maxReads = 8

// Node is a resource with the addresses it depends on. A pending change of
// a dependency triggers a Restarter downstream.
type Node struct {
	Resource Resource
	Deps     []string
	// Daemons are what the resource is read through; a read error while
	// one of them does not answer is reported once, as that daemon's.
	Daemons []*Daemon
}

// Deleter builds, from a state record, a resource whose desired state is
// absent. One per kind that leaves something behind.
type Deleter func(Record) (Resource, error)

// Plan is what apply would do: data, rendered by Text and JSON.
type Plan struct {
	Host    string    `json:"host"`
	Changes []*Change `json:"changes"`
	// Warnings are host facts found while planning that are not drift.
	Warnings []string `json:"warnings,omitempty"`

	resources map[string]Resource
	state     stateMark // the state file the plan was made with
}

// Summary counts the pending changes by kind.
type Summary struct {
	Create  int `json:"create"`
	Update  int `json:"update"`
	Replace int `json:"replace"`
	Delete  int `json:"delete"`
	Restart int `json:"restart"`
}

// Pending reports whether applying the plan changes the host.
func (p *Plan) Pending() bool {
	for _, c := range p.Changes {
		if c.Pending() {
			return true
		}
	}
	return false
}

// Summary counts the changes.
func (p *Plan) Summary() Summary {
	var s Summary
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			s.Create++
		case Update:
			s.Update++
		case Replace:
			s.Replace++
		case Delete:
			s.Delete++
		case NoOp:
			if len(c.TriggeredBy) > 0 {
				s.Restart++
			}
		}
	}
	return s
}

// Make reads the host for every node and for every resource the state
// file holds that the spec no longer has. Nodes must be ordered so that
// dependencies come first. Reads run concurrently (they only read, and
// most of a plan's time is waiting on daemons' answers); the outcome is
// what reading them in order would give. All read errors are returned
// together, those of resources behind a daemon that does not answer as one
// error (an *UnreachableError) per daemon, and the same message of several
// resources once.
func Make(ctx context.Context, host string, nodes []Node, st *State, deleters map[string]Deleter) (*Plan, error) {
	p := &Plan{Host: host, resources: map[string]Resource{}, state: st.mark()}
	var daemons []*Daemon
	for _, n := range nodes {
		addr := n.Resource.Address()
		if _, dup := p.resources[addr]; dup {
			return nil, fmt.Errorf("two resources share the address %s", addr)
		}
		p.resources[addr] = n.Resource
		for _, d := range n.Daemons {
			if !slices.Contains(daemons, d) {
				daemons = append(daemons, d)
			}
		}
	}
	type read struct {
		ch  *Change
		err error
	}
	reads := make([]read, len(nodes))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxReads)
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			reads[i].ch, reads[i].err = n.Resource.Plan(ctx)
		}()
	}
	wg.Wait()

	pending := map[string]bool{}
	errs := newReadErrors()
	for i, n := range nodes {
		r := n.Resource
		addr := r.Address()
		ch, err := reads[i].ch, reads[i].err
		if err != nil {
			// A daemon that a pending change upstream starts cannot be
			// read yet: plan the resource again during apply.
			var up []string
			for _, dep := range n.Deps {
				if pending[dep] {
					up = append(up, dep)
				}
			}
			if len(up) == 0 {
				errs.add(ctx, addr, n.Daemons, err)
				continue
			}
			ch = &Change{Action: Update, Deferred: true,
				Reasons: []string{fmt.Sprintf("read once %s is applied (now: %v)", strings.Join(up, ", "), err)}}
		}
		if prev, err := p.superseded(ctx, r, st, deleters); err != nil {
			errs.add(ctx, addr+Previous, n.Daemons, err)
		} else if prev != nil {
			p.Changes = append(p.Changes, prev)
		}
		ch.Address = addr
		if _, ok := r.(Restarter); ok {
			for _, dep := range n.Deps {
				if pending[dep] {
					ch.TriggeredBy = append(ch.TriggeredBy, dep)
				}
			}
		}
		pending[addr] = ch.Pending()
		p.Changes = append(p.Changes, ch)
	}
	for _, rec := range st.Orphans(p.resources) {
		if managed(rec, nodes) {
			// The same object under another address (a renamed block):
			// deleting it would delete what the spec manages.
			continue
		}
		del, ok := deleters[rec.Kind]
		if !ok {
			errs.other(fmt.Errorf("%s: the state file records kind %q, which this provision cannot delete; remove the entry from the state file after cleaning up by hand", rec.Address, rec.Kind))
			continue
		}
		r, err := del(rec)
		if err == nil {
			var ch *Change
			if ch, err = r.Plan(ctx); err == nil {
				ch.Address = rec.Address
				p.resources[rec.Address] = r
				p.Changes = append(p.Changes, ch)
			}
		}
		if err != nil {
			errs.add(ctx, rec.Address, daemonsFor(rec.Kind, daemons), err)
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// managed reports whether rec names an object a spec resource of the same
// kind manages: one that does not supersede it (see Superseder).
func managed(rec Record, nodes []Node) bool {
	for _, n := range nodes {
		sup, ok := n.Resource.(Superseder)
		if !ok {
			continue
		}
		if own := n.Resource.Record(); own != nil && own.Kind == rec.Kind && !sup.Supersedes(rec) {
			return true
		}
	}
	return false
}

// superseded plans the deletion of what r's state record names when r
// says it is another object than r (see Superseder), or returns nil.
func (p *Plan) superseded(ctx context.Context, r Resource, st *State, deleters map[string]Deleter) (*Change, error) {
	sup, ok := r.(Superseder)
	if !ok {
		return nil, nil
	}
	old, ok := st.Recorded(r.Address())
	if !ok || !sup.Supersedes(old) {
		return nil, nil
	}
	del, ok := deleters[old.Kind]
	if !ok {
		return nil, nil
	}
	dr, err := del(old)
	if err != nil {
		return nil, err
	}
	ch, err := dr.Plan(ctx)
	if err != nil || ch.Action != Delete {
		return nil, err
	}
	ch.Address = r.Address() + Previous
	p.resources[ch.Address] = dr
	return ch, nil
}

// Apply performs the plan's changes in order and records in st what it
// created or changed (only those are ever deleted later); st is saved after
// every resource, so an interrupted apply leaves a state the next plan
// continues from. It stops at the first error.
func (p *Plan) Apply(ctx context.Context, st *State, out Output) error {
	replan := map[string]bool{} // addresses whose previous object was just deleted
	for _, ch := range p.Changes {
		if !ch.Pending() && !replan[ch.Address] {
			continue
		}
		r := p.resources[ch.Address]
		if ch.Deferred || replan[ch.Address] {
			fresh, err := r.Plan(ctx)
			if err != nil {
				return wrap(ch.Address, err)
			}
			fresh.Address, fresh.TriggeredBy = ch.Address, ch.TriggeredBy
			ch = fresh
			if !ch.Pending() {
				continue
			}
		}
		if ch.Action != NoOp {
			out.Progress(ch.Address, ch.Action.Verb()+"…")
			if err := r.Apply(ctx, ch, out); err != nil {
				return wrap(ch.Address, err)
			}
		}
		if rs, ok := r.(Restarter); ok && len(ch.TriggeredBy) > 0 {
			out.Progress(ch.Address, "restarting…")
			if err := rs.Restart(ctx, ch, out); err != nil {
				return wrap(ch.Address, err)
			}
		}
		if cur, ok := strings.CutSuffix(ch.Address, Previous); ok {
			// The old object is gone. Read the current one again before
			// its turn: if the two were one object after all, it is
			// missing now and gets created, and it records itself only
			// when provision creates or changes it.
			st.Forget(cur)
			replan[cur] = true
		} else if ch.Action == Delete {
			st.Forget(ch.Address)
		} else if rec := r.Record(); rec != nil {
			rec.Address = ch.Address
			st.Remember(*rec)
		}
		if err := st.Save(); err != nil {
			return err
		}
		out.Progress(ch.Address, "done")
	}
	return nil
}

// Check runs the checks of the resources that have one (Checker), in plan
// order, and returns the first failure.
func (p *Plan) Check(ctx context.Context, out Output) error {
	for _, ch := range p.Changes {
		if c, ok := p.resources[ch.Address].(Checker); ok {
			out.Progress(ch.Address, "checking…")
			if err := c.Check(ctx, out); err != nil {
				return wrap(ch.Address, err)
			}
		}
	}
	return nil
}

// wrap names the resource an error is about, unless the executor did.
func wrap(addr string, err error) error {
	if strings.HasPrefix(err.Error(), addr) {
		return err
	}
	return fmt.Errorf("%s: %w", addr, err)
}
