package firewalld

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Resolver looks up the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// StaticResolver answers from a fixed table, like an /etc/hosts file; tests
// and offline sites use it.
type StaticResolver map[string][]netip.Addr

// LookupNetIP implements Resolver. network is "ip", "ip4" or "ip6".
func (s StaticResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, a := range s[strings.ToLower(strings.TrimSuffix(host, "."))] {
		if network == "ip" || (network == "ip4") == a.Is4() {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

// ParseHosts reads an /etc/hosts-style table: "ADDRESS NAME [ALIAS…]" per
// line, # comments.
func ParseHosts(r io.Reader) (StaticResolver, error) {
	s := StaticResolver{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil || len(f) < 2 {
			return nil, fmt.Errorf("hosts line %d: want ADDRESS NAME…: %q", n, sc.Text())
		}
		for _, name := range f[1:] {
			name = strings.ToLower(name)
			s[name] = append(s[name], a.Unmap())
		}
	}
	return s, sc.Err()
}

// Resolve turns allow_from entries (addresses, CIDRs, host names) into
// the source prefixes of rich rules: a name becomes all its IPv4 and IPv6
// addresses. The result is sorted and free of duplicates. Any entry that is
// not valid or does not resolve is an error, before anything changes.
// r nil means the system resolver.
func Resolve(ctx context.Context, entries []string, r Resolver) ([]netip.Prefix, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("no source addresses given")
	}
	var out []netip.Prefix
	for _, e := range entries {
		ps, err := resolveOne(ctx, strings.TrimSpace(e), r)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out), nil
}

func resolveOne(ctx context.Context, e string, r Resolver) ([]netip.Prefix, error) {
	if p, err := ParseSource(e); err == nil {
		return []netip.Prefix{p}, nil
	} else if strings.ContainsAny(e, "/:") || isNumeric(e) {
		return nil, err
	}
	if err := CheckSource(e); err != nil {
		return nil, err
	}
	addrs, err := r.LookupNetIP(ctx, "ip", e)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", e, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: no addresses", e)
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ParseSource parses an address ("10.0.0.5", "2001:db8::5") or a CIDR
// ("10.0.0.0/24") as a rich rule's source. A CIDR with host bits set or an
// address with a zone is rejected: firewalld would read it otherwise than
// the admin meant.
func ParseSource(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("source %q: %w", s, err)
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("source %q: zoned addresses are not allowed", s)
		}
		if p.Addr().Is4In6() {
			return netip.Prefix{}, fmt.Errorf("source %q: IPv4-mapped IPv6 prefix, write the IPv4 form", s)
		}
		if m := p.Masked(); m != p {
			return netip.Prefix{}, fmt.Errorf("source %q: host bits set, did you mean %s?", s, m)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("source %q: %w", s, err)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("source %q: zoned addresses are not allowed", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// SourceString is how a prefix is written in a rule: a bare address for a
// single host (as the guide writes it), CIDR notation otherwise.
func SourceString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// FamilyOf is the rich-rule family of a prefix.
func FamilyOf(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "ipv4"
	}
	return "ipv6"
}

// NameFor builds a resource name from a base and a source, safe for an
// address: NameFor("openbis_8002", 10.0.0.5/32) is "openbis_8002_10_0_0_5".
func NameFor(base string, p netip.Prefix) string {
	r := strings.NewReplacer(".", "_", ":", "_", "/", "_")
	return base + "_" + r.Replace(SourceString(p))
}

// CheckSource refuses what Resolve would refuse without asking a
// resolver: an entry is an address, a CIDR (without host bits) or an RFC
// 1123 host name.
func CheckSource(e string) error {
	if strings.ContainsAny(e, "/:") || isNumeric(e) {
		_, err := ParseSource(e)
		return err
	}
	if !ValidHostname(e) {
		return fmt.Errorf("%q is not an address, CIDR or host name", e)
	}
	return nil
}

func isNumeric(s string) bool {
	return s != "" && strings.Trim(s, "0123456789.") == ""
}

// ValidHostname accepts RFC 1123 names; nothing else can reach a resolver.
func ValidHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
