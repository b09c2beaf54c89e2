//go:build integration

package firewalld

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/openbis/provision/internal/render"

	"github.com/openbis/provision/internal/engine"

	"github.com/godbus/dbus/v5"
	fwenv "github.com/openbis/provision/testenv/firewalld"
)

// fw is the firewalld every test here talks to: private bus, private
// network namespace, permanent config in a temp dir.
var fw *fwenv.Server

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "provision-firewalld-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	fw, err = fwenv.Start(context.Background(), fwenv.Options{Dir: dir})
	defer func() {
		if err := fw.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop firewalld:", err)
		}
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: cannot start firewalld for the tests:", err)
		return 1
	}
	return m.Run()
}

func mustRule(t *testing.T, cfg RuleConfig) *Rule {
	t.Helper()
	cfg.Bus = fw.BusAddress
	r, err := NewRule(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func plan(t *testing.T, r engine.Resource) *engine.Change {
	t.Helper()
	ch, err := r.Plan(context.Background())
	if err != nil {
		t.Fatalf("plan %s: %v", r.Address(), err)
	}
	return ch
}

func apply(t *testing.T, r engine.Resource) *engine.Change {
	t.Helper()
	ch := plan(t, r)
	var out bytes.Buffer
	if err := r.Apply(context.Background(), ch, render.NewText(&out, &out, false)); err != nil {
		t.Fatalf("apply %s: %v\n%s", r.Address(), err, out.String())
	}
	if again := plan(t, r); again.Action != engine.NoOp {
		t.Fatalf("%s after apply: %s %v", r.Address(), again.Action, again.Reasons)
	}
	return ch
}

func conn(t *testing.T) *client {
	t.Helper()
	c, err := dial(context.Background(), fw.BusAddress)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// handRule is what an admin would do with firewall-cmd, in both configs.
func handRule(t *testing.T, c *client, zone, rule string, add bool) {
	t.Helper()
	ctx := context.Background()
	rt, pm := "removeRichRule", "removeRichRule"
	var rtArgs []any = []any{zone, rule}
	if add {
		rt, pm = "addRichRule", "addRichRule"
		rtArgs = append(rtArgs, int32(0))
	}
	var z string
	var out []any
	if add {
		out = []any{&z}
	}
	if err := c.call(ctx, "hand "+rt, rootPath, ifaceZone+"."+rt, out, rtArgs...); err != nil {
		t.Fatal(err)
	}
	p, err := c.configZone(ctx, zone)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.call(ctx, "hand "+pm, p, ifaceConfigZone+"."+pm, nil, rule); err != nil {
		t.Fatal(err)
	}
}

func TestRuleLifecycle(t *testing.T) {
	ctx := context.Background()
	c := conn(t)
	r := mustRule(t, RuleConfig{Name: "openbis_8002", Source: "192.0.2.10", Port: 8002})

	ch := plan(t, r)
	if ch.Action != engine.Create || !slices.Equal(ch.Reasons, []string{"runtime missing", "permanent missing"}) {
		t.Fatalf("fresh: %s %v", ch.Action, ch.Reasons)
	}
	apply(t, r)

	// firewalld holds it in its normal form, in both configurations, and
	// the permanent one is on disk in the test's config dir.
	want := `rule family="ipv4" source address="192.0.2.10" port port="8002" protocol="tcp" accept`
	var rules []string
	if err := c.call(ctx, "get", rootPath, ifaceZone+".getRichRules", []any{&rules}, "public"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rules, want) {
		t.Errorf("runtime rules %q lack %q", rules, want)
	}
	xml, err := os.ReadFile(filepath.Join(fw.ConfigDir, "zones", "public.xml"))
	if err != nil || !bytes.Contains(xml, []byte(`address="192.0.2.10"`)) {
		t.Errorf("permanent public.xml: %v\n%s", err, xml)
	}

	// An admin's own rule in the same zone is neither drift nor touched.
	hand := `rule family="ipv4" source address="198.51.100.7" port port="22" protocol="tcp" accept`
	handRule(t, c, "public", hand, true)
	if ch := plan(t, r); ch.Action != engine.NoOp {
		t.Errorf("hand-added rule reported as drift: %s %v", ch.Action, ch.Reasons)
	}

	// Drift in each configuration separately.
	for _, tc := range []struct {
		name, reason string
		remove       func()
	}{
		{"runtime", "runtime missing", func() {
			if err := c.call(ctx, "rm", rootPath, ifaceZone+".removeRichRule", nil, "public", r.RichRule()); err != nil {
				t.Fatal(err)
			}
		}},
		{"permanent", "permanent missing", func() {
			p, _ := c.configZone(ctx, "public")
			if err := c.call(ctx, "rm", p, ifaceConfigZone+".removeRichRule", nil, r.RichRule()); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.remove()
			ch := plan(t, r)
			if ch.Action != engine.Update || !slices.Equal(ch.Reasons, []string{tc.reason}) {
				t.Fatalf("%s %v, want ~ [%s]", ch.Action, ch.Reasons, tc.reason)
			}
			apply(t, r)
		})
	}

	// Removal through the state record: exactly this rule, both configs.
	del, err := FromRecord(*r.Record(), NewConn(fw.BusAddress))
	if err != nil {
		t.Fatal(err)
	}
	if del.Address() != r.Address() {
		t.Errorf("record address %s, want %s", del.Address(), r.Address())
	}
	ch = plan(t, del)
	if ch.Action != engine.Delete || !slices.Equal(ch.Reasons, []string{"runtime present", "permanent present"}) {
		t.Fatalf("delete: %s %v", ch.Action, ch.Reasons)
	}
	apply(t, del)
	if ch := plan(t, r); ch.Action != engine.Create {
		t.Errorf("after delete, rule still there: %s %v", ch.Action, ch.Reasons)
	}
	for _, q := range []func(context.Context, string, string) (bool, error){c.queryRuntimeRule, c.queryPermanentRule} {
		if ok, err := q(ctx, "public", hand); err != nil || !ok {
			t.Errorf("hand-added rule gone after delete: %v %v", ok, err)
		}
	}
	handRule(t, c, "public", hand, false)
}

// A plan made before someone else added the rule still applies cleanly:
// firewalld's ALREADY_ENABLED is the state we want.
func TestRuleStalePlanAlreadyEnabled(t *testing.T) {
	c := conn(t)
	r := mustRule(t, RuleConfig{Name: "stale", Zone: "internal", Source: "192.0.2.0/24", Port: 9000, Protocol: "udp"})
	ch := plan(t, r)
	handRule(t, c, "internal", r.RichRule(), true)
	if err := r.Apply(context.Background(), ch, engine.Discard); err != nil {
		t.Fatalf("apply over ALREADY_ENABLED: %v", err)
	}
	// And the raw exception is parsed, not shown.
	var z string
	err := c.call(context.Background(), "add again", rootPath, ifaceZone+".addRichRule", []any{&z}, "internal", r.RichRule(), int32(0))
	if !IsCode(err, "ALREADY_ENABLED") || strings.Contains(err.Error(), "ALREADY_ENABLED:") {
		t.Errorf("error %v", err)
	}
	t.Logf("parsed: %v", err)
	del, _ := FromRecord(*r.Record(), NewConn(fw.BusAddress))
	apply(t, del)
}

func TestResolvedSources(t *testing.T) {
	hosts, err := ParseHosts(strings.NewReader("192.0.2.20 openbis.test openbis\n2001:db8::20 openbis.test\n"))
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := Resolve(context.Background(), []string{"openbis.test"}, hosts)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := RulesFor("openbis_8002", NewConn(fw.BusAddress), "", srcs, 8002, "tcp")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		apply(t, r)
		got = append(got, r.Address()+" "+r.RichRule())
	}
	want := []string{
		`firewalld_rich_rule.openbis_8002_192_0_2_20 rule family="ipv4" source address="192.0.2.20" port port="8002" protocol="tcp" accept`,
		`firewalld_rich_rule.openbis_8002_2001_db8__20 rule family="ipv6" source address="2001:db8::20" port port="8002" protocol="tcp" accept`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, r := range rules {
		del, _ := FromRecord(*r.Record(), NewConn(fw.BusAddress))
		apply(t, del)
	}
	if _, err := Resolve(context.Background(), []string{"nowhere.test"}, hosts); err == nil {
		t.Error("unresolvable name accepted")
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	bare, err := fwenv.StartBus(ctx, t.TempDir())
	defer bare.Stop()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  RuleConfig
		want string
		is   func(error) bool
	}{
		{"unknown zone", RuleConfig{Zone: "nosuchzone", Bus: fw.BusAddress},
			`unknown zone "nosuchzone"`, func(e error) bool { return IsCode(e, "INVALID_ZONE") }},
		{"not running", RuleConfig{Bus: bare.BusAddress},
			"firewalld is not running", func(e error) bool { return errors.Is(e, ErrNotRunning) }},
		{"no bus", RuleConfig{Bus: "unix:path=" + filepath.Join(t.TempDir(), "none")},
			"is dbus running?", func(error) bool { return true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Name, tc.cfg.Source, tc.cfg.Port = "x", "192.0.2.1", 8002
			r, err := NewRule(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Plan(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !tc.is(err) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			t.Logf("%v", err)
		})
	}
	// An INVALID_* exception for a value firewalld itself refuses.
	c := conn(t)
	var z string
	err = c.call(ctx, "add bad rule", rootPath, ifaceZone+".addRichRule", []any{&z}, "public", `rule family="ipv4" source address="300.1.1.1" accept`, int32(0))
	var fe *Error
	if !errors.As(err, &fe) || !strings.HasPrefix(fe.Code, "INVALID_") || strings.Contains(err.Error(), fe.Code+":") {
		t.Errorf("bad rule: %#v", err)
	}
	t.Logf("%v", err)
}

func TestDirectRuleLifecycle(t *testing.T) {
	ctx := context.Background()
	c := conn(t)
	srcs := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("2001:db8::10/128")}
	guard, err := PortGuard("comm_9002", NewConn(fw.BusAddress), 9002, "tcp", srcs)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := LoopbackGuard("loopback_guard", NewConn(fw.BusAddress))
	if err != nil {
		t.Fatal(err)
	}
	all := append(guard, lo)
	var got []string
	for _, d := range all {
		ch := plan(t, d)
		if ch.Action != engine.Create || !slices.Equal(ch.Reasons, []string{"runtime missing", "permanent missing"}) {
			t.Fatalf("%s fresh: %s %v", d.Address(), ch.Action, ch.Reasons)
		}
		apply(t, d)
		got = append(got, d.Address()+": "+d.String())
	}
	want := []string{
		"firewalld_direct_rule.comm_9002_allow_192_0_2_10: ipv4 raw PREROUTING 0 -s 192.0.2.10 -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 9002 --syn -j ACCEPT",
		"firewalld_direct_rule.comm_9002_allow_2001_db8__10: ipv6 raw PREROUTING 0 -s 2001:db8::10 -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 9002 --syn -j ACCEPT",
		"firewalld_direct_rule.comm_9002_drop_ipv4: ipv4 raw PREROUTING 1 ! -i lo -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 9002 --syn -j DROP",
		"firewalld_direct_rule.comm_9002_drop_ipv6: ipv6 raw PREROUTING 1 ! -i lo -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 9002 --syn -j DROP",
		"firewalld_direct_rule.loopback_guard: ipv4 raw PREROUTING 0 ! -i lo -d 127.0.0.0/8 -j DROP",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The kernel holds them: iptables in firewalld's namespace.
	if out, err := fw.Run(ctx, "iptables", "-t", "raw", "-S", "PREROUTING"); err != nil || !strings.Contains(out, "--dport 9002 --tcp-flags FIN,SYN,RST,ACK SYN -j DROP") {
		t.Errorf("iptables raw: %v\n%s", err, out)
	}

	// An admin's direct rule is left alone; drift in each config is seen.
	hand := []any{"ipv4", "raw", "PREROUTING", int32(5), []string{"-p", "udp", "--dport", "53", "-j", "ACCEPT"}}
	for _, o := range []struct {
		path  dbus.ObjectPath
		iface string
	}{{rootPath, busName + ".direct"}, {configPath, ifaceConfig + ".direct"}} {
		if err := c.call(ctx, "hand", o.path, o.iface+".addRule", nil, hand...); err != nil {
			t.Fatal(err)
		}
	}
	d := guard[0]
	if err := d.remove(ctx, c, false); err != nil {
		t.Fatal(err)
	}
	if ch := plan(t, d); ch.Action != engine.Update || !slices.Equal(ch.Reasons, []string{"runtime missing"}) {
		t.Fatalf("runtime drift: %s %v", ch.Action, ch.Reasons)
	}
	apply(t, d)
	if err := d.remove(ctx, c, true); err != nil {
		t.Fatal(err)
	}
	if ch := plan(t, d); ch.Action != engine.Update || !slices.Equal(ch.Reasons, []string{"permanent missing"}) {
		t.Fatalf("permanent drift: %s %v", ch.Action, ch.Reasons)
	}
	apply(t, d)

	// A reload keeps them: they are permanent.
	if err := c.reload(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		if ch := plan(t, d); ch.Action != engine.NoOp {
			t.Errorf("%s after reload: %s %v", d.Address(), ch.Action, ch.Reasons)
		}
	}

	for _, d := range all {
		del, err := FromRecord(*d.Record(), NewConn(fw.BusAddress))
		if err != nil {
			t.Fatal(err)
		}
		if ch := plan(t, del); ch.Action != engine.Delete {
			t.Fatalf("%s delete: %s %v", del.Address(), ch.Action, ch.Reasons)
		}
		apply(t, del)
	}
	var ok bool
	if err := c.call(ctx, "query hand", rootPath, busName+".direct.queryRule", []any{&ok}, hand...); err != nil || !ok {
		t.Errorf("hand-added direct rule gone: %v %v", ok, err)
	}
}

// Planning a converged rule: one bus connection, two queries.
func BenchmarkRulePlanConverged(b *testing.B) {
	r, err := NewRule(RuleConfig{Name: "bench", Bus: fw.BusAddress, Source: "192.0.2.99", Port: 8002})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ch, err := r.Plan(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Apply(ctx, ch, engine.Discard); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		ch, err := r.Plan(ctx)
		if err != nil || ch.Action != engine.NoOp {
			b.Fatal(err, ch)
		}
	}
	b.StopTimer()
	del, _ := FromRecord(*r.Record(), NewConn(fw.BusAddress))
	ch, _ = del.Plan(ctx)
	del.Apply(ctx, ch, engine.Discard)
}
