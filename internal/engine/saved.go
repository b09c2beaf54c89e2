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
// opaque here: the spec file and its inputs) and what each resource
// observed. Applying it re-reads the host and refuses when anything
// differs, so apply does exactly what was reviewed.
type Saved struct {
	Format  string          `json:"format"`
	Source  json.RawMessage `json:"source"`
	Host    string          `json:"host"`
	Changes []savedChange   `json:"changes"`
}

type savedChange struct {
	Address     string   `json:"address"`
	Action      Action   `json:"action"`
	Fingerprint string   `json:"fingerprint"`
	TriggeredBy []string `json:"triggered_by,omitempty"`
}

// Save writes p, made from source, to path. The file may hold sensitive
// variable values, so it is 0600.
func (p *Plan) Save(path string, source any) error {
	src, err := json.Marshal(source)
	if err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	sp := Saved{Format: planMagic, Source: src, Host: p.Host}
	for _, c := range p.Changes {
		sp.Changes = append(sp.Changes, savedChange{c.Address, c.Action, c.Fingerprint, c.TriggeredBy})
	}
	b, err := json.MarshalIndent(sp, "", " ")
	if err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	if err := executors.WriteFile(path, b, 0o600, -1, -1); err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	return nil
}

// IsSaved reports whether b is a saved plan rather than a spec.
func IsSaved(b []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) && bytes.Contains(b, []byte(planMagic))
}

// ReadSaved decodes a saved plan.
func ReadSaved(b []byte) (*Saved, error) {
	var sp Saved
	if err := json.Unmarshal(b, &sp); err != nil || sp.Format != planMagic {
		return nil, fmt.Errorf("not a provision plan file (expected format %s)", planMagic)
	}
	return &sp, nil
}

// Stale compares a fresh plan with the saved one. It returns what changed
// on the host since, or nil when the saved plan still holds.
func (sp *Saved) Stale(fresh *Plan) []string {
	var diffs []string
	old := map[string]savedChange{}
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
