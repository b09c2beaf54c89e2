package firewalld

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/openbis/provision/internal/engine"

	"github.com/godbus/dbus/v5"
)

func TestNewRule(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  RuleConfig
		rule string // empty: want an error containing err
		err  string
	}{
		{"guide", RuleConfig{Name: "openbis_8002", Source: "192.0.2.10", Port: 8002},
			`rule family="ipv4" source address="192.0.2.10" port port="8002" protocol="tcp" accept`, ""},
		{"ipv6 cidr", RuleConfig{Name: "v6", Source: "2001:db8::/64", Port: 80, Protocol: "udp", Zone: "internal"},
			`rule family="ipv6" source address="2001:db8::/64" port port="80" protocol="udp" accept`, ""},
		{"mapped v4", RuleConfig{Name: "m", Source: "::ffff:192.0.2.1", Port: 1},
			`rule family="ipv4" source address="192.0.2.1" port port="1" protocol="tcp" accept`, ""},
		{"anyone", RuleConfig{Name: "hub_8000", Port: 8000},
			`rule port port="8000" protocol="tcp" accept`, ""},
		{"family without source", RuleConfig{Name: "f", Port: 8000, Family: "ipv4"}, "", "without a source"},
		{"quote in source", RuleConfig{Name: "q", Source: `192.0.2.1" accept rule`, Port: 1}, "", "source"},
		{"newline in source", RuleConfig{Name: "q", Source: "192.0.2.1\n", Port: 1}, "", "source"},
		{"host name", RuleConfig{Name: "h", Source: "openbis.example.org", Port: 1}, "", "source"},
		{"host bits", RuleConfig{Name: "h", Source: "192.0.2.1/24", Port: 1}, "", "did you mean 192.0.2.0/24"},
		{"zoned", RuleConfig{Name: "z", Source: "fe80::1%eth0", Port: 1}, "", "zoned"},
		{"family mismatch", RuleConfig{Name: "f", Source: "192.0.2.1", Family: "ipv6", Port: 1}, "", "does not match"},
		{"port 0", RuleConfig{Name: "p", Source: "192.0.2.1"}, "", "port 0"},
		{"port too big", RuleConfig{Name: "p", Source: "192.0.2.1", Port: 65536}, "", "port 65536"},
		{"protocol", RuleConfig{Name: "p", Source: "192.0.2.1", Port: 1, Protocol: "icmp"}, "", "protocol"},
		{"zone quote", RuleConfig{Name: "z", Source: "192.0.2.1", Port: 1, Zone: `pub"lic`}, "", "zone"},
		{"name", RuleConfig{Name: "a.b", Source: "192.0.2.1", Port: 1}, "", "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRule(tc.cfg)
			if tc.rule == "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.RichRule() != tc.rule {
				t.Errorf("rule\n%s\nwant\n%s", r.RichRule(), tc.rule)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	hosts, err := ParseHosts(strings.NewReader(`# test hosts
192.0.2.20   openbis.test openbis
2001:db8::20 openbis.test
192.0.2.20   dup.test
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   []string
		want string // space-separated; empty: want error containing err
		err  string
	}{
		{[]string{"openbis.test"}, "192.0.2.20/32 2001:db8::20/128", ""},
		{[]string{"OpenBIS"}, "192.0.2.20/32", ""},
		{[]string{"198.51.100.0/24", "dup.test", "openbis", "192.0.2.20"}, "192.0.2.20/32 198.51.100.0/24", ""},
		{[]string{"nowhere.test"}, "", "resolve nowhere.test"},
		{[]string{"192.0.2.300"}, "", "192.0.2.300"},
		{[]string{`a"b`}, "", "not an address, CIDR or host name"},
		{[]string{"10.0.0.1/8"}, "", "host bits"},
		{nil, "", "no source"},
	} {
		got, err := Resolve(context.Background(), tc.in, hosts)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if strings.Join(s, " ") != tc.want {
			t.Errorf("%q: got %s, want %s", tc.in, strings.Join(s, " "), tc.want)
		}
	}
	if _, err := ParseHosts(strings.NewReader("not-an-address name\n")); err == nil {
		t.Error("bad hosts line accepted")
	}
}

func TestNameFor(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.10/32":    "base_192_0_2_10",
		"2001:db8::1/128":  "base_2001_db8__1",
		"198.51.100.0/24":  "base_198_51_100_0_24",
		"::ffff:0.0.0.0/0": "", // not used: 4in6 prefixes are rejected earlier
	} {
		if want == "" {
			continue
		}
		if got := NameFor("base", netip.MustParsePrefix(in)); got != want || !nameRe.MatchString(got) {
			t.Errorf("NameFor(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestParseException(t *testing.T) {
	for _, tc := range []struct{ body, code, detail string }{
		{"INVALID_ZONE: foo", "INVALID_ZONE", "foo"},
		{"ALREADY_ENABLED: 'rule …' already in 'public'", "ALREADY_ENABLED", "'rule …' already in 'public'"},
		{"NOT_ENABLED", "NOT_ENABLED", ""},
		{"something: broke", "UNKNOWN_ERROR", "something: broke"},
	} {
		code, detail := parseException(tc.body)
		if code != tc.code || detail != tc.detail {
			t.Errorf("%q: %q %q", tc.body, code, detail)
		}
	}
}

func TestWrapErr(t *testing.T) {
	exc := dbus.Error{Name: exceptionName, Body: []any{"INVALID_ZONE: nosuch"}}
	err := wrapErr("query zone", exc)
	if !IsCode(err, "INVALID_ZONE") || err.Error() != `query zone: unknown zone "nosuch"` {
		t.Errorf("%v", err)
	}
	err = wrapErr("q", &dbus.Error{Name: exceptionName, Body: []any{"ALREADY_ENABLED: 'x y' already in 'public'"}})
	if !IsCode(err, "ALREADY_ENABLED") || strings.Contains(err.Error(), "ALREADY_ENABLED") {
		t.Errorf("%v", err)
	}
	err = wrapErr("q", dbus.Error{Name: "org.freedesktop.DBus.Error.ServiceUnknown", Body: []any{"The name is not activatable"}})
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("%v", err)
	}
	if err := tolerate(wrapErr("q", exc), "INVALID_ZONE"); err != nil {
		t.Error(err)
	}
}

func TestChangeFor(t *testing.T) {
	for _, tc := range []struct {
		p       presence
		absent  bool
		action  engine.Action
		reasons []string
	}{
		{presence{false, false}, false, engine.Create, []string{"runtime missing", "permanent missing"}},
		{presence{true, false}, false, engine.Update, []string{"permanent missing"}},
		{presence{false, true}, false, engine.Update, []string{"runtime missing"}},
		{presence{true, true}, false, engine.NoOp, nil},
		{presence{true, true}, true, engine.Delete, []string{"runtime present", "permanent present"}},
		{presence{false, true}, true, engine.Delete, []string{"permanent present"}},
		{presence{false, false}, true, engine.NoOp, nil},
	} {
		ch := changeFor("a.b", tc.p, tc.absent, []engine.Field{{Name: "rule", New: "r"}}, "x")
		if ch.Action != tc.action || !slices.Equal(ch.Reasons, tc.reasons) {
			t.Errorf("%+v absent=%v: %q %v", tc.p, tc.absent, ch.Action, ch.Reasons)
		}
		if tc.absent && ch.Action == engine.Delete && (ch.Fields[0].Old != "r" || ch.Fields[0].New != "") {
			t.Errorf("delete fields %+v", ch.Fields)
		}
	}
	a := changeFor("a", presence{true, false}, false, nil, "x")
	b := changeFor("a", presence{true, true}, false, nil, "x")
	if a.Fingerprint == b.Fingerprint {
		t.Error("fingerprint ignores presence")
	}
}

func TestDirectRule(t *testing.T) {
	guard, err := PortGuard("comm", NewConn(""), 9002, "", []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range guard {
		got = append(got, d.Address()+": "+d.String())
	}
	want := []string{
		"firewalld_direct_rule.comm_allow_192_0_2_10: ipv4 raw PREROUTING 0 -s 192.0.2.10 -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 9002 --syn -j ACCEPT",
		"firewalld_direct_rule.comm_drop_ipv4: ipv4 raw PREROUTING 1 ! -i lo -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 9002 --syn -j DROP",
		"firewalld_direct_rule.comm_drop_ipv6: ipv6 raw PREROUTING 1 ! -i lo -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 9002 --syn -j DROP",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s", strings.Join(got, "\n"))
	}
	for _, bad := range []DirectRuleConfig{
		{Name: "x", Family: "ipv4", Table: "raw", Chain: "PREROUTING", Args: []string{"-j", "DROP\n-A INPUT"}},
		{Name: "x", Family: "ipv4", Table: "raw", Chain: "PREROUTING", Args: []string{"-m", "comment", "--comment", `"x y"`}},
		{Name: "x", Family: "ipv4", Table: "raw", Chain: "PREROUTING"},
		{Name: "x", Family: "eb", Table: "raw", Chain: "PREROUTING", Args: []string{"-j", "DROP"}},
		{Name: "x", Family: "ipv4", Table: "raw;", Chain: "PREROUTING", Args: []string{"-j", "DROP"}},
		{Name: "x", Family: "ipv4", Table: "raw", Chain: "PRE ROUTING", Args: []string{"-j", "DROP"}},
	} {
		if _, err := NewDirectRule(bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	if _, err := PortGuard("comm", NewConn(""), 0, "tcp", nil); err == nil {
		t.Error("port 0 accepted")
	}
}

func TestFromRecord(t *testing.T) {
	r, err := NewRule(RuleConfig{Name: "openbis_8002", Source: "192.0.2.10", Port: 8002, Bus: "unix:path=/x"})
	if err != nil {
		t.Fatal(err)
	}
	lo, err := LoopbackGuard("loopback_guard", NewConn(""))
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range []engine.Resource{r, lo} {
		rec := res.Record()
		if rec == nil {
			t.Fatalf("%s: no record", res.Address())
		}
		del, err := FromRecord(*rec, NewConn("unix:path=/x"))
		if err != nil {
			t.Fatal(err)
		}
		if del.Address() != res.Address() || del.Record() != nil {
			t.Errorf("%s: delete resource %s, record %v", res.Address(), del.Address(), del.Record())
		}
	}
	// The deleter goes through the run's bus, not one the record names.
	if del, _ := FromRecord(*r.Record(), NewConn("unix:path=/run/target")); del.(*Rule).RichRule() != r.RichRule() || del.(*Rule).cfg.Bus != "unix:path=/run/target" {
		t.Errorf("record lost the rule or ignored the target bus: %+v", del.(*Rule).cfg)
	}
	if strings.Contains(string(r.Record().Data), "unix:path") {
		t.Errorf("record stores the bus: %s", r.Record().Data)
	}
	if _, err := FromRecord(engine.Record{Address: "file.x", Kind: "file"}, NewConn("")); err == nil {
		t.Error("foreign kind accepted")
	}
	if _, err := FromRecord(engine.Record{Address: "firewalld_rich_rule.x", Kind: KindRule, Data: []byte(`{"name":"x","source":"a\"b","port":1}`)}, NewConn("")); err == nil {
		t.Error("tampered record accepted")
	}
}

func TestSupersedes(t *testing.T) {
	conn := NewConn("")
	r, err := NewRule(RuleConfig{Name: "hub_443", Conn: conn, Zone: "internal", Port: 443})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		old  RuleConfig
		want bool
	}{
		{RuleConfig{Name: "hub_443", Zone: "internal", Port: 443}, false},
		{RuleConfig{Name: "hub_443", Zone: "public", Port: 443}, true},
		{RuleConfig{Name: "hub_443", Zone: "internal", Port: 443, Source: "192.0.2.1"}, true},
	} {
		old, _ := NewRule(tt.old)
		if got := r.Supersedes(*old.Record()); got != tt.want {
			t.Errorf("old %+v: Supersedes = %v, want %v", tt.old, got, tt.want)
		}
	}
	guards, _ := PortGuard("comm_8002", conn, 8002, "tcp", nil)
	oldCfg := guards[0].cfg
	oldCfg.Args = []string{"!", "-i", "lo", "-p", "tcp", "--dport", "8002", "-j", "DROP"} // before addrtype and --syn
	old, _ := NewDirectRule(oldCfg)
	if !guards[0].Supersedes(*old.Record()) || guards[0].Supersedes(*guards[0].Record()) {
		t.Error("a guard with other arguments is not superseded, or a guard supersedes itself")
	}
}
