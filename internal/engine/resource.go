package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Action is the kind of change. Its value is the symbol a user sees.
type Action string

const (
	NoOp    Action = ""
	Create  Action = "+"
	Update  Action = "~"
	Replace Action = "-/+"
	Delete  Action = "-"
)

// Verb is the word Terraform-style output uses for the action.
func (a Action) Verb() string {
	switch a {
	case Create:
		return "create"
	case Update:
		return "update"
	case Replace:
		return "replace"
	case Delete:
		return "delete"
	}
	return "no-op"
}

// Field is one attribute that differs between the host and the spec.
type Field struct {
	Name      string `json:"name"`
	Old       string `json:"old,omitempty"`
	New       string `json:"new,omitempty"`
	Sensitive bool   `json:"sensitive,omitempty"`
}

// Change is what a resource needs, decided from one read of the host.
// Apply performs exactly this and nothing else.
type Change struct {
	Address string `json:"address"`
	Action  Action `json:"action"`
	// Reasons name what differs, in words ("runtime missing", "not active").
	Reasons []string `json:"reasons,omitempty"`
	Fields  []Field  `json:"fields,omitempty"`
	// Diff is a unified diff of text content, when the resource is a text.
	Diff string `json:"diff,omitempty"`
	// Warnings are facts the admin should know that are not drift.
	Warnings []string `json:"warnings,omitempty"`
	// Fingerprint identifies the observed state; a saved plan is stale when
	// a fresh read yields another fingerprint.
	Fingerprint string `json:"fingerprint"`
	// TriggeredBy lists upstream addresses whose change makes this resource
	// restart even though its own state matches.
	TriggeredBy []string `json:"triggered_by,omitempty"`
	// Deferred marks a change that could not be read because a resource
	// it depends on (a stopped daemon) is changed first; apply reads it
	// again once that is done.
	Deferred bool `json:"deferred,omitempty"`
	// Data carries what Apply needs from the read (executor-private).
	Data json.RawMessage `json:"data,omitempty"`
}

// CheckChange refuses a change no provision makes: one read from a file
// or from another host's answer.
func CheckChange(ch *Change) error {
	if ch == nil {
		return errors.New("an empty change")
	}
	switch ch.Action {
	case NoOp, Create, Update, Replace, Delete:
		return nil
	}
	return fmt.Errorf("change %s has no action %q", ch.Address, ch.Action)
}

// Pending reports whether the change does anything.
func (c *Change) Pending() bool { return c.Action != NoOp || len(c.TriggeredBy) > 0 }

// Record is what the state file keeps of a managed resource, enough to
// delete it once it leaves the spec.
type Record struct {
	Address string          `json:"address"`
	Kind    string          `json:"kind"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Resource is one managed thing on the host. Its desired state is either
// present (built from the spec) or absent (built from a state Record by a
// Deleter); both plan and apply through the same methods.
type Resource interface {
	// Address is stable across runs: "file.start_script".
	Address() string
	// Plan reads the host and says what is needed; it never changes the host.
	Plan(ctx context.Context) (*Change, error)
	// Apply makes the host match, performing the planned change.
	Apply(ctx context.Context, ch *Change, out Output) error
	// Record is what to remember once the resource exists; nil means the
	// resource leaves nothing to delete later.
	Record() *Record
}

// Restarter is a resource that reacts to upstream changes (a unit restarts
// when its start script or image changed).
type Restarter interface {
	Resource
	// Restart is called by the engine once per apply, after Apply (which
	// is skipped when the resource's own action is NoOp), when TriggeredBy
	// names upstream changes. An Apply that already restarted for those
	// triggers makes Restart a no-op, so the unit restarts exactly once.
	Restart(ctx context.Context, ch *Change, out Output) error
}

// Superseder is a resource that can tell whether the state record at its
// own address describes another object than it: a firewall rule that moved
// to another zone, a file that moved to another path. The engine deletes
// that object first, so changing an attribute never leaves the old one
// behind unmanaged.
type Superseder interface {
	Resource
	Supersedes(old Record) bool
}

// Checker is a resource that can tell whether what it manages works, not
// only whether it matches the spec: a unit whose service answers its
// health check. A deployment spanning hosts checks one host before it
// points another at it.
type Checker interface {
	Resource
	Check(ctx context.Context, out Output) error
}

// Previous is appended to an address for the object it used to manage.
const Previous = " (previous)"

// Output is where resources report while applying. The renderers
// (internal/render) implement it for people and for machines; resources
// never format output themselves.
type Output interface {
	// Progress reports one step of addr's work.
	Progress(addr, msg string)
	// Transfer reports how far a long transfer (an image load or pull) has
	// come; total is 0 when unknown. Renderers throttle it.
	Transfer(addr, msg string, current, total int64)
	// Terminal returns the terminal the output goes to, for docker's own
	// progress bars; ok is false off a terminal and for JSON.
	Terminal() (w io.Writer, fd uintptr, ok bool)
}

// Discard is an Output that drops everything.
var Discard Output = discard{}

type discard struct{}

func (discard) Progress(string, string)               {}
func (discard) Transfer(string, string, int64, int64) {}
func (discard) Terminal() (io.Writer, uintptr, bool)  { return nil, 0, false }
