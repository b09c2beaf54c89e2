// Package executors holds what every kind of managed thing shares: the
// Resource contract the engine drives, the typed Change a resource plans,
// and host helpers (atomic writes, backups). One sub-package per kind owns
// reading, diffing and applying that kind; none of them imports plan.
package executors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"

	"github.com/pmezard/go-difflib/difflib"
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

// Pending reports whether the change does anything.
func (c *Change) Pending() bool { return c.Action != NoOp || len(c.TriggeredBy) > 0 }

// Record is what the state file keeps of a managed resource, enough to
// delete it once it leaves the spec.
type Record struct {
	Address string          `json:"address"`
	Kind    string          `json:"kind"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Resource is one managed thing on the host.
type Resource interface {
	// Address is stable across runs: "file.start_script".
	Address() string
	// Plan reads the host and says what is needed; it never changes the host.
	Plan(ctx context.Context) (*Change, error)
	// Apply makes the host match, performing the planned change.
	Apply(ctx context.Context, ch *Change, out *Output) error
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
	Restart(ctx context.Context, ch *Change, out *Output) error
}

// Output is where executors report progress while applying.
type Output struct {
	W io.Writer
	// FD and Terminal let executors draw progress bars (docker jsonmessage).
	FD       uintptr
	Terminal bool
	// JSON asks for one JSON object per line instead of text.
	JSON bool
}

// Event is one JSON progress line.
type Event struct {
	Type    string `json:"type"`
	Address string `json:"address,omitempty"`
	Message string `json:"message,omitempty"`
	Current int64  `json:"current,omitempty"`
	Total   int64  `json:"total,omitempty"`
}

// Progress reports a progress message for addr, as text or as JSON.
func (o *Output) Progress(addr, msg string) {
	if o == nil || o.W == nil {
		return
	}
	if o.JSON {
		b, _ := json.Marshal(Event{Type: "progress", Address: addr, Message: msg})
		o.W.Write(append(b, '\n'))
		return
	}
	io.WriteString(o.W, addr+": "+msg+"\n")
}

// Fingerprint hashes what a resource observed, for saved-plan staleness.
func Fingerprint(parts ...any) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, p := range parts {
		enc.Encode(p)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// UnifiedDiff renders a unified diff of a text file's old and new content.
func UnifiedDiff(path string, old, new []byte) string {
	d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(old)), B: difflib.SplitLines(string(new)),
		FromFile: path, ToFile: path, Context: 3,
	})
	return d
}
