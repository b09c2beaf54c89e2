package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/openbis/provision/executors"
)

const planMagic = "provision-plan/v1"

// Saved is a plan written by `plan -out`: what it was made from (Source,
// opaque here: the spec file and its inputs), the state file it was made
// with, and what each resource observed, in the public form the plan was
// shown in (no executor data, sensitive values redacted), so that `show`
// prints it without reading the host. Applying it re-reads the host and
// refuses when anything differs, so apply does exactly what was reviewed.
type Saved struct {
	Format   string          `json:"format"`
	Source   json.RawMessage `json:"source"`
	Host     string          `json:"host"`
	Warnings []string        `json:"warnings,omitempty"`
	// State is the state file the plan was made with; nil in plans of
	// older versions, which are not checked for it.
	State   *stateMark `json:"state,omitempty"`
	Changes []*Change  `json:"changes"`
}

// Save writes p, made from source, to path (see Saved).
func (p *Plan) Save(path string, source any, public func(*Change) *Change) error {
	sp, err := p.Saved(source, public)
	if err != nil {
		return err
	}
	return writeSaved(path, sp)
}

// Saved is p as a saved plan made from source. public returns what may be
// shown of a change (render.Public: no executor data, sensitive values
// redacted); only that is kept of the changes.
func (p *Plan) Saved(source any, public func(*Change) *Change) (*Saved, error) {
	var src json.RawMessage
	if source != nil {
		b, err := json.Marshal(source)
		if err != nil {
			return nil, fmt.Errorf("save plan: %w", err)
		}
		src = b
	}
	mark := p.state
	sp := &Saved{Format: planMagic, Source: src, Host: p.Host, Warnings: p.Warnings, State: &mark}
	for _, c := range p.Changes {
		pub := *public(c)
		pub.Data = nil // never the executor's private data, whatever public did
		sp.Changes = append(sp.Changes, &pub)
	}
	return sp, nil
}

// writeSaved writes a saved plan. Its source may hold sensitive variable
// values, so the file is 0600.
func writeSaved(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	if err := executors.WriteFile(path, b, 0o600, -1, -1); err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	return nil
}

// SavedAll is a plan of several hosts, made by plan --all --out: the
// source it was made from once, and each host's plan (without a source of
// its own), in the order apply takes them.
type SavedAll struct {
	Format string          `json:"format"`
	Source json.RawMessage `json:"source"`
	Hosts  []*Saved        `json:"hosts"`
}

const plansMagic = "provision-plans/v1"

// SaveAll writes the plans of several hosts, made from source, to path.
func SaveAll(path string, source any, hosts []*Saved) error {
	src, err := json.Marshal(source)
	if err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	return writeSaved(path, SavedAll{Format: plansMagic, Source: src, Hosts: hosts})
}

// ReadSavedAll decodes the plans of several hosts; ok is false when b is
// not such a file (it may still be a one-host plan).
func ReadSavedAll(b []byte) (sa *SavedAll, ok bool, err error) {
	if !looksLike(b, plansMagic) {
		return nil, false, nil
	}
	sa = &SavedAll{}
	if err := json.Unmarshal(b, sa); err != nil || sa.Format != plansMagic {
		return nil, false, nil
	}
	for _, h := range sa.Hosts {
		if h == nil || h.Format != planMagic {
			return nil, true, fmt.Errorf("a host's plan is not a provision plan (expected format %s)", planMagic)
		}
		if err := h.check(); err != nil {
			return nil, true, err
		}
	}
	return sa, true, nil
}

// Plan is the saved plan as it was shown, for rendering: it cannot be
// applied.
func (sp *Saved) Plan() *Plan {
	return &Plan{Host: sp.Host, Changes: sp.Changes, Warnings: sp.Warnings}
}

// IsSaved reports whether b is a saved plan rather than a spec.
func IsSaved(b []byte) bool { return looksLike(b, planMagic) }

// looksLike reports whether b is a JSON object that names format.
func looksLike(b []byte, format string) bool {
	return bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) && bytes.Contains(b, []byte(format))
}

// ReadSaved decodes a saved plan.
func ReadSaved(b []byte) (*Saved, error) {
	var sp Saved
	if err := json.Unmarshal(b, &sp); err != nil || sp.Format != planMagic {
		return nil, fmt.Errorf("not a provision plan file (expected format %s)", planMagic)
	}
	if err := sp.check(); err != nil {
		return nil, err
	}
	return &sp, nil
}

func (sp *Saved) check() error {
	for _, ch := range sp.Changes {
		if err := CheckChange(ch); err != nil {
			return fmt.Errorf("the plan of %s: %w", sp.Host, err)
		}
	}
	return nil
}

// StateChanged compares the state file of a fresh plan with the saved
// one's. It returns how it differs, or nil when it is the same file with
// the same records of the host.
func (sp *Saved) StateChanged(fresh *Plan) []string {
	if sp.State == nil {
		return nil
	}
	var diffs []string
	if sp.State.Path != fresh.state.Path {
		diffs = append(diffs, fmt.Sprintf("the plan was made with --state %s, this apply uses %s", sp.State.Path, fresh.state.Path))
	} else if sp.State.Records != fresh.state.Records {
		diffs = append(diffs, fmt.Sprintf("%s: the records of %s changed (another apply ran since?)", sp.State.Path, sp.Host))
	}
	return diffs
}

// Stale compares a fresh plan with the saved one. It returns what changed
// on the host since, or nil when the saved plan still holds.
func (sp *Saved) Stale(fresh *Plan) []string {
	var diffs []string
	old := map[string]*Change{}
	for _, c := range sp.Changes {
		old[c.Address] = c
	}
	for _, c := range fresh.Changes {
		o, ok := old[c.Address]
		delete(old, c.Address)
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: new since the plan", c.Address))
		case o.Action != c.Action:
			diffs = append(diffs, fmt.Sprintf("%s: planned %q, now %q", c.Address, o.Action.Verb(), c.Action.Verb()))
		case o.Fingerprint != c.Fingerprint:
			diffs = append(diffs, fmt.Sprintf("%s: changed on the host since the plan", c.Address))
		case strings.Join(o.TriggeredBy, ",") != strings.Join(c.TriggeredBy, ","):
			diffs = append(diffs, fmt.Sprintf("%s: restart triggers changed", c.Address))
		}
	}
	for _, addr := range slices.Sorted(maps.Keys(old)) {
		diffs = append(diffs, fmt.Sprintf("%s: gone since the plan", addr))
	}
	return diffs
}
