package firewalld

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/godbus/dbus/v5"
	"github.com/openbis/provision/executors"
)

// Exposure says who may reach one port of the containers behind a policy.
type Exposure struct {
	// Port is the port a forwarded packet carries when firewalld sees it:
	// the container port, since Docker's DNAT has already rewritten the
	// published host port (COMM → 8002).
	Port     int    `json:"port"`
	Protocol string `json:"protocol,omitempty"` // default "tcp"
	// Open makes the port reachable from everywhere.
	Open bool `json:"open,omitempty"`
	// Allow lists the sources (addresses or CIDRs) that may reach the port
	// when it is not Open; empty means no one from outside the host.
	Allow []string `json:"allow,omitempty"`
}

// PolicyConfig is a firewalld policy that provision owns whole: traffic
// forwarded from Ingress zones to Egress zones (Docker's containers) is
// filtered per port. Everything in it is provision's, so any difference,
// also a rule added by hand inside it, is drift.
type PolicyConfig struct {
	// Name is firewalld's policy name (at most 17 characters) and the
	// address suffix: firewalld_policy.<Name>.
	Name string `json:"name"`
	Bus  string `json:"bus,omitempty"`
	// Ingress defaults to ["ANY"], Egress to ["docker"], the zone Docker
	// puts its bridges in when firewalld runs.
	Ingress []string `json:"ingress"`
	Egress  []string `json:"egress"`
	// Priority must be negative to act before the zones' own rules, which
	// accept the traffic for the docker zone; default -100.
	Priority int        `json:"priority"`
	Ports    []Exposure `json:"ports"`
}

var policyNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,17}$`)

// Policy is a firewalld_policy resource.
type Policy struct {
	cfg    PolicyConfig
	rules  []string // sorted, in firewalld's normal form
	absent bool
}

// NewPolicy validates cfg and builds the rules the policy must hold.
func NewPolicy(cfg PolicyConfig) (*Policy, error) {
	if !policyNameRe.MatchString(cfg.Name) {
		return nil, fmt.Errorf("%s: name %q: want 1-17 letters, digits, '_' or '-'", KindPolicy, cfg.Name)
	}
	addr := KindPolicy + "." + cfg.Name
	if len(cfg.Ingress) == 0 {
		cfg.Ingress = []string{"ANY"}
	}
	if len(cfg.Egress) == 0 {
		cfg.Egress = []string{"docker"}
	}
	for _, z := range append(slices.Clone(cfg.Ingress), cfg.Egress...) {
		if !zoneRe.MatchString(z) {
			return nil, fmt.Errorf("%s: zone %q: want letters, digits, '_', '-' or '/'", addr, z)
		}
	}
	cfg.Ingress, cfg.Egress = sortedSet(cfg.Ingress), sortedSet(cfg.Egress)
	if cfg.Priority == 0 {
		cfg.Priority = -100
	}
	if cfg.Priority < -32768 || cfg.Priority > 32767 {
		return nil, fmt.Errorf("%s: priority %d: want -32768..32767, not 0", addr, cfg.Priority)
	}
	p := &Policy{cfg: cfg}
	seen := map[string]bool{}
	for i := range p.cfg.Ports {
		e := &p.cfg.Ports[i]
		if err := checkPort(e.Port, &e.Protocol); err != nil {
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
		key := fmt.Sprintf("%d/%s", e.Port, e.Protocol)
		if seen[key] {
			return nil, fmt.Errorf("%s: port %s listed twice", addr, key)
		}
		seen[key] = true
		port := fmt.Sprintf(`port port="%d" protocol="%s"`, e.Port, e.Protocol)
		if e.Open {
			if len(e.Allow) > 0 {
				return nil, fmt.Errorf("%s: port %s: open and allow are exclusive", addr, key)
			}
			p.rules = append(p.rules, "rule "+port+" accept")
			continue
		}
		for j, s := range e.Allow {
			src, err := ParseSource(s)
			if err != nil {
				return nil, fmt.Errorf("%s: port %s: %w", addr, key, err)
			}
			e.Allow[j] = SourceString(src)
			// Negative priority: before the reject below, whatever
			// firewalld's ordering of actions within priority 0.
			p.rules = append(p.rules, fmt.Sprintf(`rule priority="-1" family="%s" source address="%s" %s accept`,
				FamilyOf(src), SourceString(src), port))
		}
		p.rules = append(p.rules, "rule "+port+" reject")
	}
	p.rules = sortedSet(p.rules)
	return p, nil
}

// Address implements executors.Resource.
func (p *Policy) Address() string { return KindPolicy + "." + p.cfg.Name }

// RichRules are the rules the policy holds, in firewalld's normal form.
func (p *Policy) RichRules() []string { return slices.Clone(p.rules) }

// policySettings is the part of firewalld's policy settings provision
// compares; Extra collects everything that must be empty but is not.
type policySettings struct {
	Target   string   `json:"target"`
	Priority int      `json:"priority"`
	Ingress  []string `json:"ingress_zones"`
	Egress   []string `json:"egress_zones"`
	Rules    []string `json:"rich_rules"`
	Extra    []string `json:"extra,omitempty"`
}

func (p *Policy) desired() policySettings {
	return policySettings{Target: "CONTINUE", Priority: p.cfg.Priority,
		Ingress: p.cfg.Ingress, Egress: p.cfg.Egress, Rules: p.rules}
}

// toDBus is the full settings dict: every key provision owns, the lists it
// does not use set empty so a hand edit is undone.
func (s policySettings) toDBus() map[string]dbus.Variant {
	type pair struct{ A, B string }
	type quad struct{ A, B, C, D string }
	return map[string]dbus.Variant{
		"short":         dbus.MakeVariant("provision"),
		"description":   dbus.MakeVariant("Managed by provision: who may reach the ports of forwarded (Docker) traffic. Edits are drift."),
		"target":        dbus.MakeVariant(s.Target),
		"priority":      dbus.MakeVariant(int32(s.Priority)),
		"ingress_zones": dbus.MakeVariant(s.Ingress),
		"egress_zones":  dbus.MakeVariant(s.Egress),
		"rich_rules":    dbus.MakeVariant(s.Rules),
		"services":      dbus.MakeVariant([]string{}),
		"ports":         dbus.MakeVariant([]pair{}),
		"icmp_blocks":   dbus.MakeVariant([]string{}),
		"masquerade":    dbus.MakeVariant(false),
		"forward_ports": dbus.MakeVariant([]quad{}),
		"protocols":     dbus.MakeVariant([]string{}),
		"source_ports":  dbus.MakeVariant([]pair{}),
	}
}

func fromDBus(m map[string]dbus.Variant) policySettings {
	var s policySettings
	str := func(k string) string { v, _ := m[k].Value().(string); return v }
	strs := func(k string) []string { v, _ := m[k].Value().([]string); return sortedSet(v) }
	s.Target = str("target")
	switch v := m["priority"].Value().(type) {
	case int32:
		s.Priority = int(v)
	case int64:
		s.Priority = int(v)
	}
	s.Ingress, s.Egress, s.Rules = strs("ingress_zones"), strs("egress_zones"), strs("rich_rules")
	for _, k := range []string{"services", "ports", "icmp_blocks", "forward_ports", "protocols", "source_ports"} {
		if v, ok := m[k]; ok && v.Signature().String() != "" && fmt.Sprint(v.Value()) != "[]" {
			s.Extra = append(s.Extra, fmt.Sprintf("%s=%v", k, v.Value()))
		}
	}
	if b, _ := m["masquerade"].Value().(bool); b {
		s.Extra = append(s.Extra, "masquerade=true")
	}
	return s
}

// diff names the settings that differ, for Reasons and Fields.
func (want policySettings) diff(have policySettings) (names []string, fields []executors.Field) {
	add := func(name, old, new string) {
		names = append(names, name)
		fields = append(fields, executors.Field{Name: name, Old: old, New: new})
	}
	if want.Target != have.Target {
		add("target", have.Target, want.Target)
	}
	if want.Priority != have.Priority {
		add("priority", fmt.Sprint(have.Priority), fmt.Sprint(want.Priority))
	}
	if !slices.Equal(want.Ingress, have.Ingress) {
		add("ingress_zones", strings.Join(have.Ingress, " "), strings.Join(want.Ingress, " "))
	}
	if !slices.Equal(want.Egress, have.Egress) {
		add("egress_zones", strings.Join(have.Egress, " "), strings.Join(want.Egress, " "))
	}
	if !slices.Equal(want.Rules, have.Rules) {
		add("rich_rules", strings.Join(have.Rules, "\n"), strings.Join(want.Rules, "\n"))
	}
	if len(have.Extra) > 0 {
		add("other settings", strings.Join(have.Extra, " "), "")
	}
	return names, fields
}

type policyData struct {
	Runtime        bool     `json:"runtime"`   // present at runtime
	Permanent      bool     `json:"permanent"` // present in permanent
	RuntimeDiff    []string `json:"runtime_diff,omitempty"`
	PermanentDiff  []string `json:"permanent_diff,omitempty"`
	PermanentPath  string   `json:"-"`
	NeedsReload    bool     `json:"needs_reload,omitempty"`
	RuntimeUpdate  bool     `json:"runtime_update,omitempty"`
	PermanentWrite bool     `json:"permanent_write,omitempty"`
}

func (c *client) runtimePolicy(ctx context.Context, name string) (map[string]dbus.Variant, bool, error) {
	var m map[string]dbus.Variant
	err := c.call(ctx, "read runtime policy "+name, rootPath, ifacePolicy+".getPolicySettings", []any{&m}, name)
	if IsCode(err, "INVALID_POLICY") {
		return nil, false, nil
	}
	return m, err == nil, err
}

func (c *client) permanentPolicy(ctx context.Context, name string) (dbus.ObjectPath, map[string]dbus.Variant, error) {
	var path dbus.ObjectPath
	err := c.call(ctx, "look up permanent policy "+name, configPath, ifaceConfig+".getPolicyByName", []any{&path}, name)
	if IsCode(err, "INVALID_POLICY") {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	var m map[string]dbus.Variant
	err = c.call(ctx, "read permanent policy "+name, path, ifaceConfigPolicy+".getSettings", []any{&m})
	return path, m, err
}

// Plan reads the policy from the runtime and the permanent configuration
// and compares every setting.
func (p *Policy) Plan(ctx context.Context) (*executors.Change, error) {
	c, err := dial(ctx, p.cfg.Bus)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Address(), err)
	}
	defer c.Close()
	rt, rtOK, err := c.runtimePolicy(ctx, p.cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Address(), err)
	}
	_, pm, err := c.permanentPolicy(ctx, p.cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Address(), err)
	}
	d := policyData{Runtime: rtOK, Permanent: pm != nil}
	want := p.desired()
	var haveRT, havePM policySettings
	if d.Runtime {
		haveRT = fromDBus(rt)
	}
	if d.Permanent {
		havePM = fromDBus(pm)
	}
	ch := &executors.Change{Address: p.Address(), Fingerprint: executors.Fingerprint(KindPolicy, p.cfg.Name, d.Runtime, haveRT, d.Permanent, havePM)}
	if p.absent {
		if d.Runtime {
			ch.Reasons = append(ch.Reasons, "runtime present")
		}
		if d.Permanent {
			ch.Reasons = append(ch.Reasons, "permanent present")
			d.PermanentWrite = true
		}
		if d.Runtime || d.Permanent {
			ch.Action = executors.Delete
			// A runtime policy can only go away through a reload.
			d.NeedsReload = d.Runtime
		}
		if d.NeedsReload {
			ch.Warnings = append(ch.Warnings, reloadWarning)
		}
		ch.Data, _ = json.Marshal(d)
		return ch, nil
	}

	var fields []executors.Field
	if !d.Permanent {
		ch.Reasons = append(ch.Reasons, "permanent missing")
		d.PermanentWrite = true
	} else if names, fs := want.diff(havePM); len(names) > 0 {
		d.PermanentDiff = names
		d.PermanentWrite = true
		ch.Reasons = append(ch.Reasons, "permanent differs ("+strings.Join(names, ", ")+")")
		fields = prefixFields("permanent ", fs)
	}
	if !d.Runtime {
		ch.Reasons = append(ch.Reasons, "runtime missing")
		// firewalld creates policies only from the permanent configuration.
		d.NeedsReload = true
	} else if names, fs := want.diff(haveRT); len(names) > 0 {
		d.RuntimeDiff = names
		ch.Reasons = append(ch.Reasons, "runtime differs ("+strings.Join(names, ", ")+")")
		fields = append(fields, prefixFields("runtime ", fs)...)
		// Target and priority cannot be changed at runtime.
		if slices.Contains(names, "target") || slices.Contains(names, "priority") {
			d.NeedsReload = true
		} else {
			d.RuntimeUpdate = true
		}
	}
	if !d.Runtime && !d.Permanent {
		ch.Action = executors.Create
		fields = []executors.Field{
			{Name: "ingress_zones", New: strings.Join(want.Ingress, " ")},
			{Name: "egress_zones", New: strings.Join(want.Egress, " ")},
			{Name: "priority", New: fmt.Sprint(want.Priority)},
			{Name: "rich_rules", New: strings.Join(want.Rules, "\n")},
		}
	} else if len(ch.Reasons) > 0 {
		ch.Action = executors.Update
	}
	ch.Fields = fields
	if d.NeedsReload {
		ch.Warnings = append(ch.Warnings, reloadWarning)
	}
	ch.Data, _ = json.Marshal(d)
	return ch, nil
}

const reloadWarning = "firewalld will be reloaded: it creates and removes policies only from the permanent configuration; runtime-only changes made by hand are lost"

func prefixFields(prefix string, fs []executors.Field) []executors.Field {
	for i := range fs {
		fs[i].Name = prefix + fs[i].Name
	}
	return fs
}

// Apply writes the permanent policy and then brings the runtime in line,
// by a runtime update where firewalld allows it and a reload otherwise.
func (p *Policy) Apply(ctx context.Context, ch *executors.Change, out *executors.Output) error {
	if ch == nil || ch.Action == executors.NoOp {
		return nil
	}
	var d policyData
	if err := json.Unmarshal(ch.Data, &d); err != nil {
		return fmt.Errorf("%s: plan data: %w", p.Address(), err)
	}
	c, err := dial(ctx, p.cfg.Bus)
	if err != nil {
		return fmt.Errorf("%s: %w", p.Address(), err)
	}
	defer c.Close()
	wrap := func(err error) error {
		if IsCode(err, "INVALID_ZONE") && slices.Contains(p.cfg.Egress, "docker") {
			return fmt.Errorf("%s: %w (Docker creates zone \"docker\" when it starts while firewalld runs)", p.Address(), err)
		}
		return fmt.Errorf("%s: %w", p.Address(), err)
	}
	name := p.cfg.Name
	settings := p.desired().toDBus()
	// At runtime firewalld changes only the lists; the rest needs a reload.
	runtime := maps.Clone(settings)
	for _, k := range []string{"short", "description", "target", "priority"} {
		delete(runtime, k)
	}
	if d.PermanentWrite {
		path, _, err := c.permanentPolicy(ctx, name)
		if err != nil {
			return wrap(err)
		}
		switch {
		case p.absent && path != "":
			out.Progress(p.Address(), "removing permanent policy")
			err = c.call(ctx, "remove permanent policy "+name, path, ifaceConfigPolicy+".remove", nil)
		case p.absent:
		case path == "":
			out.Progress(p.Address(), "adding permanent policy")
			var o dbus.ObjectPath
			err = c.call(ctx, "add permanent policy "+name, configPath, ifaceConfig+".addPolicy", []any{&o}, name, settings)
		default:
			out.Progress(p.Address(), "updating permanent policy")
			err = c.call(ctx, "update permanent policy "+name, path, ifaceConfigPolicy+".update", nil, settings)
		}
		if err != nil {
			return wrap(err)
		}
	}
	if d.RuntimeUpdate && !d.NeedsReload {
		out.Progress(p.Address(), "updating runtime policy")
		if err := c.call(ctx, "update runtime policy "+name, rootPath, ifacePolicy+".setPolicySettings", nil, name, runtime); err != nil {
			return wrap(err)
		}
	}
	if d.NeedsReload {
		out.Progress(p.Address(), "reloading firewalld")
		if err := c.reload(ctx); err != nil {
			return wrap(err)
		}
	}
	return nil
}

// Record implements executors.Resource.
func (p *Policy) Record() *executors.Record {
	if p.absent {
		return nil
	}
	data, _ := json.Marshal(p.cfg)
	return &executors.Record{Address: p.Address(), Kind: KindPolicy, Data: data}
}

func sortedSet(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
