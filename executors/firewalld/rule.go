package firewalld

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"

	"github.com/openbis/provision/internal/engine"
)

// Kinds, as addresses and state records name them.
const (
	KindRule   = "firewalld_rich_rule"
	KindDirect = "firewalld_direct_rule"
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
	Bus string `json:"-"`
	// Conn, when set, is the connection to use (its bus is Bus).
	Conn *Conn `json:"-"`
	// Zone defaults to "public".
	Zone string `json:"zone"`
	// Source is an address or a CIDR (see Resolve for names); empty means
	// from anywhere, over IPv4 and IPv6.
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
	if err := CheckZone(c.Zone); err != nil {
		return fmt.Errorf("%s.%s: %w", KindRule, c.Name, err)
	}
	if err := checkPort(c.Port, &c.Protocol); err != nil {
		return fmt.Errorf("%s.%s: %w", KindRule, c.Name, err)
	}
	if c.Source == "" {
		if c.Family != "" {
			return fmt.Errorf("%s.%s: family %q without a source: a rule for anyone covers both", KindRule, c.Name, c.Family)
		}
		return nil
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
	return nil
}

// CheckZone refuses a zone name firewalld would not take, before any rule
// is built from it.
func CheckZone(zone string) error {
	if !zoneRe.MatchString(zone) {
		return fmt.Errorf("zone %q: firewalld zone names are 1-32 letters, digits, '_', '-' or '/'", zone)
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
	if c.Source == "" {
		return fmt.Sprintf(`rule port port="%d" protocol="%s" accept`, c.Port, c.Protocol)
	}
	return fmt.Sprintf(`rule family="%s" source address="%s" port port="%d" protocol="%s" accept`,
		c.Family, c.Source, c.Port, c.Protocol)
}

// RichRule is the rule text as given to firewalld.
func (r *Rule) RichRule() string { return r.rule }

// Address implements engine.Resource.
func (r *Rule) Address() string { return KindRule + "." + r.cfg.Name }

// Plan queries the rule in the runtime and the permanent configuration
// (through firewalld, which normalises rules: never by string). Other rules
// in the zone are not looked at: they are the admin's.
func (r *Rule) Plan(ctx context.Context) (*engine.Change, error) {
	return planEntry(ctx, r.Address(), r.cfg.Conn, r.cfg.Bus, r, r.absent, []engine.Field{
		{Name: "zone", New: r.cfg.Zone},
		{Name: "rule", New: r.rule},
	}, KindRule, r.cfg.Zone, r.rule)
}

// Apply adds (or, for a deleted resource, removes) the rule where the plan
// found it missing (or present), and nowhere else.
func (r *Rule) Apply(ctx context.Context, ch *engine.Change, out engine.Output) error {
	return applyEntry(ctx, r.Address(), r.cfg.Conn, r.cfg.Bus, r, r.absent, ch, out)
}

func (r *Rule) query(ctx context.Context, c *client, permanent bool) (bool, error) {
	if permanent {
		return c.queryPermanentRule(ctx, r.cfg.Zone, r.rule)
	}
	return c.queryRuntimeRule(ctx, r.cfg.Zone, r.rule)
}

func (r *Rule) add(ctx context.Context, c *client, permanent bool) error {
	zone := r.cfg.Zone
	if !permanent {
		var z string
		return tolerate(c.call(ctx, "add runtime rich rule to zone "+zone, rootPath, ifaceZone+".addRichRule", []any{&z}, zone, r.rule, int32(0)), "ALREADY_ENABLED")
	}
	p, err := c.configZone(ctx, zone)
	if err != nil {
		return err
	}
	return tolerate(c.call(ctx, "add permanent rich rule to zone "+zone, p, ifaceConfigZone+".addRichRule", nil, r.rule), "ALREADY_ENABLED")
}

func (r *Rule) remove(ctx context.Context, c *client, permanent bool) error {
	zone := r.cfg.Zone
	if !permanent {
		return tolerate(c.call(ctx, "remove runtime rich rule from zone "+zone, rootPath, ifaceZone+".removeRichRule", nil, zone, r.rule), "NOT_ENABLED")
	}
	p, err := c.configZone(ctx, zone)
	if err != nil {
		return err
	}
	return tolerate(c.call(ctx, "remove permanent rich rule from zone "+zone, p, ifaceConfigZone+".removeRichRule", nil, r.rule), "NOT_ENABLED")
}

func (r *Rule) gone(err error) bool { return IsCode(err, "INVALID_ZONE") }

// Record implements engine.Resource: enough to remove exactly this rule
// once it leaves the spec.
func (r *Rule) Record() *engine.Record {
	if r.absent {
		return nil
	}
	data, _ := json.Marshal(r.cfg)
	return &engine.Record{Address: r.Address(), Kind: KindRule, Data: data}
}

// FromRecord builds the resource that deletes what a state record says
// provision created, a rich rule or a direct rule, through conn: the run's
// bus, whatever bus the record was made on.
func FromRecord(rec engine.Record, conn *Conn) (engine.Resource, error) {
	switch rec.Kind {
	case KindRule:
		var cfg RuleConfig
		if err := json.Unmarshal(rec.Data, &cfg); err != nil {
			return nil, fmt.Errorf("state record %s: %w", rec.Address, err)
		}
		cfg.Bus, cfg.Conn = conn.bus, conn
		r, err := NewRule(cfg)
		if err != nil {
			return nil, fmt.Errorf("state record %s: %w", rec.Address, err)
		}
		r.absent = true
		return r, nil
	case KindDirect:
		var cfg DirectRuleConfig
		if err := json.Unmarshal(rec.Data, &cfg); err != nil {
			return nil, fmt.Errorf("state record %s: %w", rec.Address, err)
		}
		cfg.Bus, cfg.Conn = conn.bus, conn
		d, err := NewDirectRule(cfg)
		if err != nil {
			return nil, fmt.Errorf("state record %s: %w", rec.Address, err)
		}
		d.absent = true
		return d, nil
	}
	return nil, fmt.Errorf("state record %s: kind %q is not a firewalld kind", rec.Address, rec.Kind)
}

// RulesFor builds one rule per source, named NameFor(base, source).
func RulesFor(base string, conn *Conn, zone string, sources []netip.Prefix, port int, proto string) ([]*Rule, error) {
	var out []*Rule
	for _, p := range sources {
		r, err := NewRule(RuleConfig{Name: NameFor(base, p), Bus: conn.bus, Conn: conn, Zone: zone,
			Source: SourceString(p), Port: port, Protocol: proto})
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Supersedes implements engine.Superseder: a recorded rule in another zone
// or with another text is another rule in firewalld, left behind unless
// deleted.
func (r *Rule) Supersedes(old engine.Record) bool {
	var cfg RuleConfig
	if json.Unmarshal(old.Data, &cfg) != nil || cfg.normalise() != nil {
		return false
	}
	return cfg.Zone != r.cfg.Zone || cfg.richRule() != r.rule
}

// Supersedes implements engine.Superseder for direct rules: another table,
// chain, priority or argument list is another rule.
func (d *DirectRule) Supersedes(old engine.Record) bool {
	var cfg DirectRuleConfig
	if json.Unmarshal(old.Data, &cfg) != nil {
		return false
	}
	return cfg.Family != d.cfg.Family || cfg.Table != d.cfg.Table || cfg.Chain != d.cfg.Chain ||
		cfg.Priority != d.cfg.Priority || !slices.Equal(cfg.Args, d.cfg.Args)
}
