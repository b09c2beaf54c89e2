package firewalld

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/openbis/provision/internal/engine"

	"github.com/godbus/dbus/v5"
)

// DirectRuleConfig is a firewalld direct rule: iptables arguments in a
// table and chain, ordered by priority. provision uses them in the raw
// PREROUTING chain, before Docker's DNAT, because firewalld accepts every
// DNATed flow in its own forward chain ("ct status dnat accept"): no zone,
// rich rule or policy sees traffic to a Docker-published port.
type DirectRuleConfig struct {
	// Name is the address suffix: firewalld_direct_rule.<Name>.
	Name string `json:"name"`
	Bus  string `json:"-"`
	// Conn, when set, is the connection to use (its bus is Bus).
	Conn     *Conn    `json:"-"`
	Family   string   `json:"family"` // "ipv4" or "ipv6"
	Table    string   `json:"table"`
	Chain    string   `json:"chain"`
	Priority int      `json:"priority"`
	Args     []string `json:"args"`
}

// DirectRule is a firewalld_direct_rule resource.
type DirectRule struct {
	cfg    DirectRuleConfig
	absent bool
}

var (
	chainRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,28}$`)
	// firewalld joins direct arguments into iptables-restore lines: no
	// blanks or quotes may reach it.
	argRe = regexp.MustCompile(`^[A-Za-z0-9_.:/!+=,-]+$`)
)

// NewDirectRule validates cfg.
func NewDirectRule(cfg DirectRuleConfig) (*DirectRule, error) {
	if !nameRe.MatchString(cfg.Name) {
		return nil, fmt.Errorf("%s: name %q: want letters, digits, '_' or '-'", KindDirect, cfg.Name)
	}
	addr := KindDirect + "." + cfg.Name
	if cfg.Family != "ipv4" && cfg.Family != "ipv6" {
		return nil, fmt.Errorf("%s: family %q: want ipv4 or ipv6", addr, cfg.Family)
	}
	switch cfg.Table {
	case "raw", "mangle", "nat", "filter", "security":
	default:
		return nil, fmt.Errorf("%s: table %q: want raw, mangle, nat, filter or security", addr, cfg.Table)
	}
	if !chainRe.MatchString(cfg.Chain) {
		return nil, fmt.Errorf("%s: chain %q: want up to 28 letters, digits, '_' or '-'", addr, cfg.Chain)
	}
	if len(cfg.Args) == 0 {
		return nil, fmt.Errorf("%s: no arguments", addr)
	}
	for _, a := range cfg.Args {
		if !argRe.MatchString(a) {
			return nil, fmt.Errorf("%s: argument %q: only letters, digits and _.:/!+=,- are allowed", addr, a)
		}
	}
	return &DirectRule{cfg: cfg}, nil
}

// Address implements engine.Resource.
func (d *DirectRule) Address() string { return KindDirect + "." + d.cfg.Name }

// String is the rule as firewall-cmd --direct would show it.
func (d *DirectRule) String() string {
	return fmt.Sprintf("%s %s %s %d %s", d.cfg.Family, d.cfg.Table, d.cfg.Chain, d.cfg.Priority, strings.Join(d.cfg.Args, " "))
}

// Plan queries the rule in the runtime and the permanent direct
// configuration. Other direct rules are the admin's and not looked at.
func (d *DirectRule) Plan(ctx context.Context) (*engine.Change, error) {
	return planEntry(ctx, d.Address(), d.cfg.Conn, d.cfg.Bus, d, d.absent,
		[]engine.Field{{Name: "direct rule", New: d.String()}}, KindDirect, d.String())
}

// Apply adds (or removes) the rule where the plan found it missing (or
// present).
func (d *DirectRule) Apply(ctx context.Context, ch *engine.Change, out engine.Output) error {
	return applyEntry(ctx, d.Address(), d.cfg.Conn, d.cfg.Bus, d, d.absent, ch, out)
}

func (d *DirectRule) target(permanent bool) (string, string) {
	if permanent {
		return string(configPath), ifaceConfig + ".direct"
	}
	return string(rootPath), busName + ".direct"
}

func (d *DirectRule) do(ctx context.Context, c *client, permanent bool, method string, out []any) error {
	path, iface := d.target(permanent)
	where := "runtime"
	if permanent {
		where = "permanent"
	}
	return c.call(ctx, method+" "+where+" direct rule", dbus.ObjectPath(path), iface+"."+method, out,
		d.cfg.Family, d.cfg.Table, d.cfg.Chain, int32(d.cfg.Priority), d.cfg.Args)
}

func (d *DirectRule) query(ctx context.Context, c *client, permanent bool) (bool, error) {
	var ok bool
	err := d.do(ctx, c, permanent, "queryRule", []any{&ok})
	return ok, err
}

func (d *DirectRule) add(ctx context.Context, c *client, permanent bool) error {
	return tolerate(d.do(ctx, c, permanent, "addRule", nil), "ALREADY_ENABLED")
}

func (d *DirectRule) remove(ctx context.Context, c *client, permanent bool) error {
	return tolerate(d.do(ctx, c, permanent, "removeRule", nil), "NOT_ENABLED")
}

func (d *DirectRule) gone(error) bool { return false }

// Record implements engine.Resource.
func (d *DirectRule) Record() *engine.Record {
	if d.absent {
		return nil
	}
	data, _ := json.Marshal(d.cfg)
	return &engine.Record{Address: d.Address(), Kind: KindDirect, Data: data}
}

// PortGuard builds the direct rules that make a Docker-published host port
// reachable only from allow: in raw PREROUTING, before Docker's DNAT, one
// ACCEPT per source (priority 0), then a DROP of every other packet to the
// port not coming from loopback (priority 1), for IPv4 and IPv6. Empty
// allow makes the port reachable from the host itself only. Names are
// base_allow_<source>, base_drop_ipv4, base_drop_ipv6.
func PortGuard(base string, conn *Conn, port int, proto string, allow []netip.Prefix) ([]*DirectRule, error) {
	if err := checkPort(port, &proto); err != nil {
		return nil, fmt.Errorf("%s.%s: %w", KindDirect, base, err)
	}
	// Only packets addressed to the host itself: the containers' own
	// outbound connections to that port elsewhere (the hub's token checks
	// against openBIS on 443) pass PREROUTING too, and must not be dropped.
	// New connections only (--syn for TCP): replies to the host's own
	// connections from a local port that happens to be the same number
	// pass.
	match := []string{"-m", "addrtype", "--dst-type", "LOCAL", "-p", proto, "-m", proto, "--dport", fmt.Sprint(port)}
	if proto == "tcp" {
		match = append(match, "--syn")
	}
	var cfgs []DirectRuleConfig
	for _, p := range allow {
		cfgs = append(cfgs, DirectRuleConfig{Name: NameFor(base+"_allow", p), Family: FamilyOf(p), Priority: 0,
			Args: append(append([]string{"-s", SourceString(p)}, match...), "-j", "ACCEPT")})
	}
	for _, fam := range []string{"ipv4", "ipv6"} {
		cfgs = append(cfgs, DirectRuleConfig{Name: base + "_drop_" + fam, Family: fam, Priority: 1,
			Args: append(append([]string{"!", "-i", "lo"}, match...), "-j", "DROP")})
	}
	out := make([]*DirectRule, 0, len(cfgs))
	for _, c := range cfgs {
		c.Bus, c.Conn, c.Table, c.Chain = conn.bus, conn, "raw", "PREROUTING"
		d, err := NewDirectRule(c)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// LoopbackGuard drops packets for 127.0.0.0/8 that arrive on any interface
// but loopback, before Docker's DNAT could send them to a port published on
// 127.0.0.1 (newer Docker adds the same rule itself).
func LoopbackGuard(name string, conn *Conn) (*DirectRule, error) {
	return NewDirectRule(DirectRuleConfig{Name: name, Bus: conn.bus, Conn: conn, Family: "ipv4", Table: "raw", Chain: "PREROUTING",
		Args: []string{"!", "-i", "lo", "-d", "127.0.0.0/8", "-j", "DROP"}})
}
