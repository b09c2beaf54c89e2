// Package firewalld manages firewalld rich rules and policies over
// firewalld's D-Bus API (no firewall-cmd). Every object it creates is in
// both the runtime and the permanent configuration, and drift in either is
// reported separately. It only ever removes what it recorded as created.
package firewalld

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"

	"github.com/openbis/provision/executors"
)

// Kinds, as addresses and state records name them.
const (
	KindRule   = "firewalld_rich_rule"
	KindPolicy = "firewalld_policy"
)

// DefaultZone is the zone the guide's rule goes to.
const DefaultZone = "public"

var (
	nameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	// firewalld's own limit for zone and policy names is alphanumerics,
	// '_', '-' and '/'; quotes and blanks never pass.
	zoneRe = regexp.MustCompile(`^[A-Za-z0-9_/-]{1,32}$`)
)

// RuleConfig is one rich rule: accept Protocol/Port from Source in Zone.
// The guide's rule is RuleConfig{Source: OPENBIS_IP, Port: COMM}.
type RuleConfig struct {
	// Name is the address suffix: firewalld_rich_rule.<Name>; see NameFor.
	Name string `json:"name"`
	// Bus is a D-Bus address; empty is the system bus (honouring
	// DBUS_SYSTEM_BUS_ADDRESS).
	Bus string `json:"bus,omitempty"`
	// Zone defaults to "public".
	Zone string `json:"zone"`
	// Source is an address or a CIDR (see Resolve for names).
	Source string `json:"source"`
	// Family is "ipv4" or "ipv6"; empty derives it from Source.
	Family   string `json:"family"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"` // default "tcp"
}

// Rule is a firewalld_rich_rule resource.
type Rule struct {
	cfg    RuleConfig
	rule   string
	absent bool
}

// NewRule validates cfg and builds the rule that must be present.
func NewRule(cfg RuleConfig) (*Rule, error) {
	if err := cfg.normalise(); err != nil {
		return nil, err
	}
	return &Rule{cfg: cfg, rule: cfg.richRule()}, nil
}

func (c *RuleConfig) normalise() error {
	if !nameRe.MatchString(c.Name) {
		return fmt.Errorf("%s: name %q: want letters, digits, '_' or '-'", KindRule, c.Name)
	}
	if c.Zone == "" {
		c.Zone = DefaultZone
	}
	if !zoneRe.MatchString(c.Zone) {
		return fmt.Errorf("%s.%s: zone %q: want letters, digits, '_', '-' or '/'", KindRule, c.Name, c.Zone)
	}
	p, err := ParseSource(c.Source)
	if err != nil {
		return fmt.Errorf("%s.%s: %w", KindRule, c.Name, err)
	}
	c.Source = SourceString(p) // canonical: no quotes or blanks can remain
	fam := FamilyOf(p)
	if c.Family == "" {
		c.Family = fam
	}
	if c.Family != fam {
		return fmt.Errorf("%s.%s: family %q does not match source %s (%s)", KindRule, c.Name, c.Family, c.Source, fam)
	}
	if err := checkPort(c.Port, &c.Protocol); err != nil {
		return fmt.Errorf("%s.%s: %w", KindRule, c.Name, err)
	}
	return nil
}

func checkPort(port int, proto *string) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("port %d: want 1-65535", port)
	}
	if *proto == "" {
		*proto = "tcp"
	}
	switch *proto {
	case "tcp", "udp", "sctp", "dccp":
		return nil
	}
	return fmt.Errorf("protocol %q: want tcp, udp, sctp or dccp", *proto)
}

// richRule writes the rule in firewalld's own normal form, from validated
// values only.
func (c *RuleConfig) richRule() string {
	return fmt.Sprintf(`rule family="%s" source address="%s" port port="%d" protocol="%s" accept`,
		c.Family, c.Source, c.Port, c.Protocol)
}

// RichRule is the rule text as given to firewalld.
func (r *Rule) RichRule() string { return r.rule }

// Address implements executors.Resource.
func (r *Rule) Address() string { return KindRule + "." + r.cfg.Name }

type ruleData struct {
	Runtime   bool `json:"runtime"`
	Permanent bool `json:"permanent"`
}

// Plan queries the rule in the runtime and the permanent configuration
// (through firewalld, which normalises rules: never by string). Other rules
// in the zone are not looked at: they are the admin's.
func (r *Rule) Plan(ctx context.Context) (*executors.Change, error) {
	c, err := dial(ctx, r.cfg.Bus)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Address(), err)
	}
	defer c.Close()
	var d ruleData
	d.Runtime, err = c.queryRuntimeRule(ctx, r.cfg.Zone, r.rule)
	if r.absent && IsCode(err, "INVALID_ZONE") {
		err, d.Runtime = nil, false // the zone went away, and the rule with it
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Address(), err)
	}
	d.Permanent, err = c.queryPermanentRule(ctx, r.cfg.Zone, r.rule)
	if r.absent && IsCode(err, "INVALID_ZONE") {
		err, d.Permanent = nil, false
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Address(), err)
	}
	data, _ := json.Marshal(d)
	ch := &executors.Change{
		Address:     r.Address(),
		Fingerprint: executors.Fingerprint(KindRule, r.cfg.Zone, r.rule, d),
		Data:        data,
		Fields: []executors.Field{
			{Name: "zone", New: r.cfg.Zone},
			{Name: "rule", New: r.rule},
		},
	}
	if r.absent {
		for i := range ch.Fields {
			ch.Fields[i].Old, ch.Fields[i].New = ch.Fields[i].New, ""
		}
		if d.Runtime {
			ch.Reasons = append(ch.Reasons, "runtime present")
		}
		if d.Permanent {
			ch.Reasons = append(ch.Reasons, "permanent present")
		}
		if d.Runtime || d.Permanent {
			ch.Action = executors.Delete
		}
		return ch, nil
	}
	if !d.Runtime {
		ch.Reasons = append(ch.Reasons, "runtime missing")
	}
	if !d.Permanent {
		ch.Reasons = append(ch.Reasons, "permanent missing")
	}
	switch {
	case !d.Runtime && !d.Permanent:
		ch.Action = executors.Create
	case !d.Runtime || !d.Permanent:
		ch.Action = executors.Update
	}
	return ch, nil
}

// Apply adds (or, for a deleted resource, removes) the rule where the plan
// found it missing (or present), and nowhere else.
func (r *Rule) Apply(ctx context.Context, ch *executors.Change, out *executors.Output) error {
	if ch == nil || ch.Action == executors.NoOp {
		return nil
	}
	var d ruleData
	if err := json.Unmarshal(ch.Data, &d); err != nil {
		return fmt.Errorf("%s: plan data: %w", r.Address(), err)
	}
	c, err := dial(ctx, r.cfg.Bus)
	if err != nil {
		return fmt.Errorf("%s: %w", r.Address(), err)
	}
	defer c.Close()
	zone := r.cfg.Zone
	if r.absent {
		if d.Runtime {
			out.Progress(r.Address(), "removing from runtime zone "+zone)
			err := c.call(ctx, "remove runtime rich rule from zone "+zone, rootPath, ifaceZone+".removeRichRule", nil, zone, r.rule)
			if err != nil && !IsCode(err, "NOT_ENABLED") {
				return fmt.Errorf("%s: %w", r.Address(), err)
			}
		}
		if d.Permanent {
			out.Progress(r.Address(), "removing from permanent zone "+zone)
			if err := r.permanent(ctx, c, "removeRichRule", "NOT_ENABLED"); err != nil {
				return err
			}
		}
		return nil
	}
	if !d.Runtime {
		out.Progress(r.Address(), "adding to runtime zone "+zone)
		var z string
		err := c.call(ctx, "add runtime rich rule to zone "+zone, rootPath, ifaceZone+".addRichRule", []any{&z}, zone, r.rule, int32(0))
		if err != nil && !IsCode(err, "ALREADY_ENABLED") {
			return fmt.Errorf("%s: %w", r.Address(), err)
		}
	}
	if !d.Permanent {
		out.Progress(r.Address(), "adding to permanent zone "+zone)
		if err := r.permanent(ctx, c, "addRichRule", "ALREADY_ENABLED"); err != nil {
			return err
		}
	}
	return nil
}

// permanent calls method on the permanent zone; the code `done` means
// someone else already did it, which is the state we want.
func (r *Rule) permanent(ctx context.Context, c *client, method, done string) error {
	p, err := c.configZone(ctx, r.cfg.Zone)
	if err == nil {
		err = c.call(ctx, method+" in permanent zone "+r.cfg.Zone, p, ifaceConfigZone+"."+method, nil, r.rule)
	}
	if err != nil && !IsCode(err, done) {
		return fmt.Errorf("%s: %w", r.Address(), err)
	}
	return nil
}

// Record implements executors.Resource: enough to remove exactly this rule
// once it leaves the spec.
func (r *Rule) Record() *executors.Record {
	if r.absent {
		return nil
	}
	data, _ := json.Marshal(r.cfg)
	return &executors.Record{Address: r.Address(), Kind: KindRule, Data: data}
}

// FromRecord builds the resource that deletes what a state record says
// provision created: a rich rule or a policy.
func FromRecord(rec executors.Record) (executors.Resource, error) {
	switch rec.Kind {
	case KindRule:
		var cfg RuleConfig
		if err := json.Unmarshal(rec.Data, &cfg); err != nil {
			return nil, fmt.Errorf("state record %s: %w", rec.Address, err)
		}
		r, err := NewRule(cfg)
		if err != nil {
			return nil, fmt.Errorf("state record %s: %w", rec.Address, err)
		}
		r.absent = true
		return r, nil
	case KindPolicy:
		var cfg PolicyConfig
		if err := json.Unmarshal(rec.Data, &cfg); err != nil {
			return nil, fmt.Errorf("state record %s: %w", rec.Address, err)
		}
		p, err := NewPolicy(cfg)
		if err != nil {
			return nil, fmt.Errorf("state record %s: %w", rec.Address, err)
		}
		p.absent = true
		return p, nil
	}
	return nil, fmt.Errorf("state record %s: kind %q is not a firewalld kind", rec.Address, rec.Kind)
}

// RulesFor builds one rule per source, named NameFor(base, source).
func RulesFor(base, bus, zone string, sources []netip.Prefix, port int, proto string) ([]*Rule, error) {
	var out []*Rule
	for _, p := range sources {
		r, err := NewRule(RuleConfig{Name: NameFor(base, p), Bus: bus, Zone: zone,
			Source: SourceString(p), Port: port, Protocol: proto})
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
