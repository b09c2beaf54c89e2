package netlab

import (
	"net/netip"
	"strings"
	"testing"
)

func TestAddressPlan(t *testing.T) {
	servers := netip.MustParsePrefix("192.0.2.0/24")
	servers6 := netip.MustParsePrefix("2001:db8:2::/64")
	users := netip.MustParsePrefix("198.18.0.0/15")
	doc6 := netip.MustParsePrefix("2001:db8::/32")
	tests := []struct {
		m            *Member
		addr, addr6  string
		router, rtr6 string
	}{
		{serverMember("a", 0), "192.0.2.10", "2001:db8:2::10", "192.0.2.1", "2001:db8:2::1"},
		{serverMember("b", 1), "192.0.2.11", "2001:db8:2::11", "192.0.2.1", "2001:db8:2::1"},
		{serverMember("z", maxServers-1), "192.0.2.249", "2001:db8:2::249", "192.0.2.1", "2001:db8:2::1"},
		{userMember("u", 1), "198.18.1.2", "2001:db8:18:1::2", "198.18.1.1", "2001:db8:18:1::1"},
		{userMember("v", maxUsers), "198.18.254.2", "2001:db8:18:254::2", "198.18.254.1", "2001:db8:18:254::1"},
	}
	for _, tt := range tests {
		m := tt.m
		if m.Addr != tt.addr || m.Addr6 != tt.addr6 || m.Router != tt.router || m.Router6 != tt.rtr6 {
			t.Errorf("%s: got %s %s via %s %s, want %s %s via %s %s", m.Name, m.Addr, m.Addr6, m.Router, m.Router6, tt.addr, tt.addr6, tt.router, tt.rtr6)
		}
		a, a6 := netip.MustParseAddr(m.Addr), netip.MustParseAddr(m.Addr6)
		if !doc6.Contains(a6) {
			t.Errorf("%s: %s outside 2001:db8::/32", m.Name, a6)
		}
		// Same subnet as the router, servers on the bridge, users elsewhere.
		p := netip.PrefixFrom(a, m.Prefix).Masked()
		if !p.Contains(netip.MustParseAddr(m.Router)) || !netip.PrefixFrom(a6, m.Prefix6).Masked().Contains(netip.MustParseAddr(m.Router6)) {
			t.Errorf("%s: router not on the member's subnet", m.Name)
		}
		if servers.Contains(a) {
			if !servers6.Contains(a6) {
				t.Errorf("%s: server IPv6 %s outside %s", m.Name, a6, servers6)
			}
		} else if !users.Contains(a) || servers6.Contains(a6) {
			t.Errorf("%s: user address %s %s not on a user subnet", m.Name, a, a6)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"openbis", true}, {"jupyterhub", true}, {"alice-2", true},
		{"", false}, {"r", false}, {"Alice", false}, {"a/b", false}, {"-x", false},
		{strings.Repeat("a", 33), false},
	} {
		if err := checkName(tt.name); (err == nil) != tt.ok {
			t.Errorf("checkName(%q) = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestReplaceBlock(t *testing.T) {
	block := hostsBlock(map[string][]string{"b.example": {"192.0.2.11"}, "a.example": {"192.0.2.10", "2001:db8:2::10", ""}})
	want := "# BEGIN netlab\n192.0.2.10\ta.example\n2001:db8:2::10\ta.example\n192.0.2.11\tb.example\n# END netlab\n"
	if block != want {
		t.Fatalf("hostsBlock = %q, want %q", block, want)
	}
	tests := []struct{ name, in, want string }{
		{"empty", "", want},
		{"appended", "127.0.0.1 localhost\n", "127.0.0.1 localhost\n" + want},
		{"no final newline", "127.0.0.1 localhost", "127.0.0.1 localhost\n" + want},
		{"replaced in place", "127.0.0.1 localhost\n# BEGIN netlab\n1.2.3.4 old\n# END netlab\n::1 localhost\n", "127.0.0.1 localhost\n" + want + "::1 localhost\n"},
	}
	for _, tt := range tests {
		if got := replaceBlock(tt.in, block); got != tt.want {
			t.Errorf("%s: replaceBlock = %q, want %q", tt.name, got, tt.want)
		}
		// Idempotent.
		if got := replaceBlock(replaceBlock(tt.in, block), block); got != tt.want {
			t.Errorf("%s: replaceBlock twice = %q, want %q", tt.name, got, tt.want)
		}
	}
}
