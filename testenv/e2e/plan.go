package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// PlanChange is one pending change of `provision plan --json`.
type PlanChange struct {
	Address     string   `json:"address"`
	Action      string   `json:"action"`
	Reasons     []string `json:"reasons"`
	Fields      []Field  `json:"fields"`
	Diff        string   `json:"diff"`
	Warnings    []string `json:"warnings"`
	TriggeredBy []string `json:"triggered_by"`
}

// Field is one field of a change.
type Field struct {
	Name string `json:"name"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

// Text is everything the change says, for substring checks.
func (c PlanChange) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", c.Action, c.Address)
	for _, r := range c.Reasons {
		b.WriteString(r + "\n")
	}
	for _, f := range c.Fields {
		fmt.Fprintf(&b, "%s: %q -> %q\n", f.Name, f.Old, f.New)
	}
	b.WriteString(c.Diff)
	return b.String()
}

// JSONPlan is the parsed output of `provision plan --json`.
type JSONPlan struct {
	Changes  []PlanChange
	Warnings []string
	Pending  bool
}

// Changed lists, sorted, the addresses whose own state differs from the
// spec (restarts triggered by an upstream change are left out).
func (p JSONPlan) Changed() []string {
	var a []string
	for _, c := range p.Changes {
		if c.Action != "" {
			a = append(a, c.Address)
		}
	}
	sort.Strings(a)
	return a
}

// Change returns the change of addr.
func (p JSONPlan) Change(addr string) (PlanChange, bool) {
	for _, c := range p.Changes {
		if c.Address == addr {
			return c, true
		}
	}
	return PlanChange{}, false
}

// ParsePlan parses `provision plan --json` output.
func ParsePlan(out string) (JSONPlan, error) {
	var p JSONPlan
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var line struct {
			Type    string      `json:"type"`
			Change  *PlanChange `json:"change"`
			Message string      `json:"message"`
			Pending *bool       `json:"pending"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return p, fmt.Errorf("plan output line %q: %w", sc.Text(), err)
		}
		switch line.Type {
		case "change":
			if line.Change != nil {
				p.Changes = append(p.Changes, *line.Change)
			}
		case "warning":
			p.Warnings = append(p.Warnings, line.Message)
		case "summary":
			if line.Pending != nil {
				p.Pending = *line.Pending
			}
		}
	}
	return p, sc.Err()
}
