package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Daemon is a service several resources are read through: the Docker
// Engine, the system D-Bus. When it cannot be reached, every resource
// behind it fails to read for the same reason; Make reports that once,
// naming the daemon, the address tried and the option that points
// provision elsewhere, instead of once per resource.
type Daemon struct {
	// Name is what the daemon is called: "the Docker daemon".
	Name string
	// Address is the address the run tries ("unix:///var/run/docker.sock").
	Address string
	// Option is how to point provision at another address ("--docker-host").
	Option string
	// Kinds are the state record kinds read through the daemon, so that
	// deleting what left the spec is grouped the same way.
	Kinds []string
	// Probe checks that the daemon answers. It is called only after a
	// resource behind it failed to read, at most once per plan, so a
	// working host pays nothing for it.
	Probe func(ctx context.Context) error
}

// readErrors collects a plan's read errors, grouping those whose root
// cause is shared: a daemon that does not answer, or the same message
// from several resources.
type readErrors struct {
	probed map[*Daemon]error
	down   []*Daemon            // daemons that did not answer, in order met
	behind map[*Daemon][]string // addresses not read because of each
	errs   []readError
}

type readError struct {
	addrs []string
	msg   string
	err   error
}

func newReadErrors() *readErrors {
	return &readErrors{probed: map[*Daemon]error{}, behind: map[*Daemon][]string{}}
}

// add records that addr could not be read. ds are the daemons it is read
// through; the first that does not answer takes the blame.
func (e *readErrors) add(ctx context.Context, addr string, ds []*Daemon, err error) {
	for _, d := range ds {
		if d == nil || d.Probe == nil {
			continue
		}
		perr, ok := e.probed[d]
		if !ok {
			perr = d.Probe(ctx)
			e.probed[d] = perr
		}
		if perr != nil {
			if len(e.behind[d]) == 0 {
				e.down = append(e.down, d)
			}
			e.behind[d] = append(e.behind[d], addr)
			return
		}
	}
	e.plain(addr, err)
}

// plain records an error of addr's own; one with the same message as an
// earlier one joins it.
func (e *readErrors) plain(addr string, err error) {
	err = wrap(addr, err)
	msg := strings.TrimPrefix(err.Error(), addr+": ")
	for i := range e.errs {
		if e.errs[i].msg == msg && len(e.errs[i].addrs) > 0 {
			e.errs[i].addrs = append(e.errs[i].addrs, addr)
			return
		}
	}
	e.errs = append(e.errs, readError{addrs: []string{addr}, msg: msg, err: err})
}

// other records an error that is no resource's read error.
func (e *readErrors) other(err error) { e.errs = append(e.errs, readError{err: err}) }

// err is the plan's error: one line per unreachable daemon, then one per
// distinct message; nil when nothing failed.
func (e *readErrors) err() error {
	var out []error
	for _, d := range e.down {
		out = append(out, &UnreachableError{Daemon: d, Err: e.probed[d], Resources: e.behind[d]})
	}
	for _, r := range e.errs {
		if len(r.addrs) > 1 {
			out = append(out, fmt.Errorf("%s: %s", strings.Join(r.addrs, ", "), r.msg))
			continue
		}
		out = append(out, r.err)
	}
	return errors.Join(out...)
}

// daemonsFor returns the daemons among ds that serve records of kind.
func daemonsFor(kind string, ds []*Daemon) []*Daemon {
	var out []*Daemon
	for _, d := range ds {
		if slices.Contains(d.Kinds, kind) {
			out = append(out, d)
		}
	}
	return out
}

// UnreachableError is a daemon that did not answer, and the resources that
// could therefore not be read.
type UnreachableError struct {
	Daemon    *Daemon
	Err       error
	Resources []string
}

func (e *UnreachableError) Error() string {
	d := e.Daemon
	s := fmt.Sprintf("cannot reach %s at %s", d.Name, d.Address)
	if d.Option != "" {
		s += " (give another address with " + d.Option + ")"
	}
	if e.Err != nil {
		s += ": " + strings.Join(strings.Fields(e.Err.Error()), " ")
	}
	return s + "; not read: " + strings.Join(e.Resources, ", ")
}

func (e *UnreachableError) Unwrap() error { return e.Err }
