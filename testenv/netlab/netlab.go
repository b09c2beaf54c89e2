// Package netlab joins throwaway network namespaces into a small routed
// network for integration tests: fresh servers (systemd-nspawn containers
// with only lo) and "user" namespaces, each linked by a veth pair to a
// router namespace of the lab's own.
//
// Address plan (documentation and benchmarking ranges only, and only inside
// namespaces the lab created or was handed):
//
//	servers  192.0.2.0/24    2001:db8:2::/64     one subnet, bridged in the router
//	         router .1 / ::1, server i (0-based) .10+i / ::10+i
//	user n   198.18.n.0/24   2001:db8:18:n::/64  one subnet per user, n = 1, 2, …
//	         router .1 / ::1, user .2 / ::2
//
// The servers share one subnet, as an openBIS and a JupyterHub host on one
// LAN do; users are on other subnets, so their traffic is routed and keeps
// its source address. This machine's own network namespace is never
// configured: forwarding is switched on in the router namespace only.
package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Interface names. The member's end of its veth is created directly in the
// member's namespace, so no interface ever appears in this machine's own.
const (
	// MemberIf is the lab interface inside every member.
	MemberIf = "lab0"
	bridge   = "br0"
)

// Address plan; see the package comment.
const (
	serverNet4  = "192.0.2."
	serverNet6  = "2001:db8:2::"
	maxServers  = 240 // .10 … .249
	maxUsers    = 254
	userPrefix4 = "198.18."
	userPrefix6 = "2001:db8:18:"
)

// Member is one namespace joined to the lab.
type Member struct {
	// Name is the member's name in the lab, as given to AddServer or AddUser.
	Name string
	// NS is the name of a user's namespace, for `ip netns exec NS`; empty
	// for a server.
	NS string
	// Path is the namespace file, for setns or nsenter --net=:
	// /run/netns/NS for a user, /proc/PID/ns/net for a server.
	Path string
	// Pid is a server's pid 1; 0 for a user.
	Pid int
	// Addr and Addr6 are the member's addresses on the lab network;
	// Router and Router6 are its default gateways.
	Addr, Addr6     string
	Router, Router6 string
	// Prefix and Prefix6 are the lengths of the member's subnets.
	Prefix, Prefix6 int
}

// Lab is one private network. Its methods are safe for concurrent use.
type Lab struct {
	// ID names everything the lab creates: namespaces are
	// provision-lab-ID-r (the router) and provision-lab-ID-NAME (users).
	ID     string
	router string

	mu      sync.Mutex
	members []*Member
	servers int
	users   int
	hosts   map[string][]string
	created []string // namespaces to delete, in creation order
	closed  bool
}

// nsPrefix starts the name of every namespace a lab creates; the test
// process's PID follows, so New can reap the namespaces of a killed test.
const nsPrefix = "provision-lab-"

// New creates the router namespace with the servers' bridge. Call Close,
// also after an error: it deletes whatever was created.
func New(ctx context.Context) (*Lab, error) { return NewOwned(ctx, os.Getpid()) }

// NewOwned is New for a lab that outlives this process: it is reaped only
// once the process owner is gone (the demo's lab lives as long as its
// server's systemd-nspawn).
func NewOwned(ctx context.Context, owner int) (*Lab, error) {
	reapStale(ctx)
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	l := &Lab{ID: fmt.Sprintf("%d-%s", owner, hex.EncodeToString(b[:]))}
	l.router = nsPrefix + l.ID + "-r"
	if err := l.addNS(ctx, l.router); err != nil {
		return l, fmt.Errorf("create router namespace: %w", err)
	}
	rpath := netnsPath(l.router)
	steps := [][]string{
		{"link", "add", bridge, "type", "bridge"},
		{"addr", "add", serverNet4 + "1/24", "dev", bridge},
		{"addr", "add", serverNet6 + "1/64", "dev", bridge, "nodad"},
		{"link", "set", bridge, "up"},
	}
	for i, s := range steps {
		if err := ipIn(ctx, rpath, s...); err != nil {
			return l, fmt.Errorf("set up router: %w", err)
		}
		if i > 0 {
			continue
		}
		// Forwarding in the router's namespace only: /proc/sys/net shows
		// the network namespace of the thread that opens it.
		err := sysctl(rpath, map[string]string{
			"net/ipv4/ip_forward":                     "1",
			"net/ipv6/conf/all/forwarding":            "1",
			"net/ipv6/conf/" + bridge + "/accept_dad": "0",
		})
		if err != nil {
			return l, fmt.Errorf("enable forwarding in the router: %w", err)
		}
	}
	return l, nil
}

// Router is the path of the router's namespace.
func (l *Lab) Router() string { return netnsPath(l.router) }

// AddServer joins a fresh server, given its pid 1, to the servers' subnet:
// the server gets interface lab0 with the next server address and a
// default route via the router.
func (l *Lab) AddServer(ctx context.Context, name string, pid int) (*Member, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if pid <= 0 {
		return nil, fmt.Errorf("add server %s: invalid pid %d", name, pid)
	}
	path := fmt.Sprintf("/proc/%d/ns/net", pid)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("add server %s: %w", name, err)
	}
	l.mu.Lock()
	if err := l.reserve(name); err != nil {
		l.mu.Unlock()
		return nil, err
	}
	i := l.servers
	if i >= maxServers {
		l.mu.Unlock()
		return nil, fmt.Errorf("add server %s: the lab has no more server addresses", name)
	}
	l.servers++
	l.mu.Unlock()

	m := serverMember(name, i)
	m.Path, m.Pid = path, pid
	rIf := "s" + strconv.Itoa(i)
	rpath := l.Router()
	if err := ipIn(ctx, rpath, "link", "add", rIf, "type", "veth", "peer", "name", MemberIf, "netns", path); err != nil {
		return nil, fmt.Errorf("add server %s: %w", name, err)
	}
	if err := noDAD(rpath, rIf); err != nil {
		return nil, fmt.Errorf("add server %s: %w", name, err)
	}
	if err := ipIn(ctx, rpath, "link", "set", rIf, "master", bridge, "up"); err != nil {
		return nil, fmt.Errorf("add server %s: %w", name, err)
	}
	if err := l.configure(ctx, m); err != nil {
		return nil, fmt.Errorf("add server %s: %w", name, err)
	}
	return l.join(m)
}

// AddUser creates a namespace provision-lab-ID-NAME on a subnet of its own
// and routes it via the router. Despite the name it suits any client, or a
// stand-in server that needs no fresh server.
func (l *Lab) AddUser(ctx context.Context, name string) (*Member, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	l.mu.Lock()
	if err := l.reserve(name); err != nil {
		l.mu.Unlock()
		return nil, err
	}
	n := l.users + 1
	if n > maxUsers {
		l.mu.Unlock()
		return nil, fmt.Errorf("add user %s: the lab has no more user subnets", name)
	}
	l.users++
	l.mu.Unlock()

	m := userMember(name, n)
	m.NS = nsPrefix + l.ID + "-" + name
	m.Path = netnsPath(m.NS)
	if err := l.addNS(ctx, m.NS); err != nil {
		return nil, fmt.Errorf("add user %s: %w", name, err)
	}
	rIf := "u" + strconv.Itoa(n)
	rpath := l.Router()
	steps := [][]string{
		{"link", "add", rIf, "type", "veth", "peer", "name", MemberIf, "netns", m.Path},
		{"addr", "add", fmt.Sprintf("%s/%d", m.Router, m.Prefix), "dev", rIf},
		{"addr", "add", fmt.Sprintf("%s/%d", m.Router6, m.Prefix6), "dev", rIf, "nodad"},
		{"link", "set", rIf, "up"},
	}
	for i, s := range steps {
		if i == len(steps)-1 {
			if err := noDAD(rpath, rIf); err != nil {
				return nil, fmt.Errorf("add user %s: %w", name, err)
			}
		}
		if err := ipIn(ctx, rpath, s...); err != nil {
			return nil, fmt.Errorf("add user %s: %w", name, err)
		}
	}
	if err := l.configure(ctx, m); err != nil {
		return nil, fmt.Errorf("add user %s: %w", name, err)
	}
	return l.join(m)
}

// configure gives the member's end its addresses and default routes.
func (l *Lab) configure(ctx context.Context, m *Member) error {
	steps := [][]string{
		{"link", "set", "lo", "up"},
		{"addr", "add", fmt.Sprintf("%s/%d", m.Addr, m.Prefix), "dev", MemberIf},
		// nodad: usable at once, without duplicate address detection.
		{"addr", "add", fmt.Sprintf("%s/%d", m.Addr6, m.Prefix6), "dev", MemberIf, "nodad"},
		{"link", "set", MemberIf, "up"},
		{"route", "replace", "default", "via", m.Router, "dev", MemberIf},
		{"-6", "route", "replace", "default", "via", m.Router6, "dev", MemberIf},
	}
	if err := noDAD(m.Path, MemberIf); err != nil {
		return err
	}
	for _, s := range steps {
		if err := ipIn(ctx, m.Path, s...); err != nil {
			return err
		}
	}
	return nil
}

// noDAD turns duplicate address detection off on one interface, before it
// comes up: otherwise its link-local address stays tentative for a second
// or two and the first IPv6 connections wait for neighbour discovery.
func noDAD(path, dev string) error {
	return sysctl(path, map[string]string{"net/ipv6/conf/" + dev + "/accept_dad": "0"})
}

// sysctl writes /proc/sys/KEY = value inside the network namespace at path.
func sysctl(path string, kv map[string]string) error {
	return Do(path, func() error {
		for k, v := range kv {
			if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
}

// reserve checks that name is new; l.mu must be held.
func (l *Lab) reserve(name string) error {
	if l.closed {
		return errors.New("netlab: lab is closed")
	}
	for _, m := range l.members {
		if m.Name == name {
			return fmt.Errorf("netlab: member %s already exists", name)
		}
	}
	return nil
}

// join records m and writes the lab's hosts entries into it.
func (l *Lab) join(m *Member) (*Member, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.members = append(l.members, m)
	if l.hosts != nil {
		if err := writeHosts(m, l.hosts); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Members returns the members in the order they joined.
func (l *Lab) Members() []*Member {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Member(nil), l.members...)
}

// Hosts returns one entry per member: its name with its IPv4 and IPv6
// addresses, ready for SetHosts (after adding or renaming entries).
func (l *Lab) Hosts() map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := make(map[string][]string, len(l.members))
	for _, m := range l.members {
		h[m.Name] = []string{m.Addr, m.Addr6}
	}
	return h
}

// SetHosts writes hosts entries (name → addresses) into every member, and
// into members that join later: for a user into /etc/netns/NS/hosts, which
// `ip netns exec NS` mounts over /etc/hosts; for a server into a managed
// block of its own /etc/hosts. Each call replaces the entries of the last.
func (l *Lab) SetHosts(hosts map[string][]string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hosts = make(map[string][]string, len(hosts))
	for k, v := range hosts {
		l.hosts[k] = append([]string(nil), v...)
	}
	var errs []error
	for _, m := range l.members {
		errs = append(errs, writeHosts(m, l.hosts))
	}
	return errors.Join(errs...)
}

// Command returns a command that runs args in the member's network
// namespace: `ip netns exec` for a user (so its hosts file applies),
// nsenter into the network namespace only for a server (use the server's
// own Exec to run inside all of its namespaces).
func (m *Member) Command(ctx context.Context, args ...string) *exec.Cmd {
	if m.NS != "" {
		return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", m.NS}, args...)...)
	}
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + m.Path, "--"}, args...)...)
}

// Close deletes every namespace the lab created, the veths with them, and
// the users' /etc/netns directories. A server's lab0 goes when the server
// stops; the router end goes with the router now, which takes the link
// down in the server too. Close is safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	var errs []error
	for i := len(l.created) - 1; i >= 0; i-- {
		name := l.created[i]
		if err := delNS(name); err != nil {
			errs = append(errs, err)
		}
	}
	l.created = nil
	return errors.Join(errs...)
}

func (l *Lab) addNS(ctx context.Context, name string) error {
	if err := run(ctx, "ip", "netns", "add", name); err != nil {
		return err
	}
	l.mu.Lock()
	l.created = append(l.created, name)
	l.mu.Unlock()
	return nil
}

// Remove deletes what the lab with this ID created, when its Lab value is
// gone with the process that made it (the demo's down).
func Remove(id string) error {
	var errs []error
	for _, dir := range []string{"/run/netns", "/etc/netns"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), nsPrefix+id+"-") {
				errs = append(errs, delNS(e.Name()))
			}
		}
	}
	return errors.Join(errs...)
}

// delNS deletes a namespace and its /etc/netns directory.
func delNS(name string) error {
	var errs []error
	if _, err := os.Stat(netnsPath(name)); err == nil {
		errs = append(errs, run(context.Background(), "ip", "netns", "del", name))
	}
	if err := os.RemoveAll("/etc/netns/" + name); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// reapStale deletes the namespaces (and /etc/netns directories) of labs
// whose test process is gone, as after go test -timeout or SIGKILL. Labs of
// live processes are left alone.
func reapStale(ctx context.Context) {
	seen := map[string]bool{}
	for _, dir := range []string{"/run/netns", "/etc/netns"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			seen[e.Name()] = true
		}
	}
	for name := range seen {
		rest, ok := strings.CutPrefix(name, nsPrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + pidStr); err == nil {
			continue
		}
		delNS(name)
	}
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

func checkName(name string) error {
	if !validName.MatchString(name) || name == "r" {
		return fmt.Errorf("netlab: invalid member name %q (want lower-case letters, digits and -, not \"r\")", name)
	}
	return nil
}

// serverMember is the address plan for server i (0-based).
func serverMember(name string, i int) *Member {
	return &Member{
		Name:    name,
		Addr:    serverNet4 + strconv.Itoa(10+i),
		Addr6:   serverNet6 + strconv.Itoa(10+i),
		Router:  serverNet4 + "1",
		Router6: serverNet6 + "1",
		Prefix:  24, Prefix6: 64,
	}
}

// userMember is the address plan for user n (1-based).
func userMember(name string, n int) *Member {
	s := strconv.Itoa(n)
	return &Member{
		Name:    name,
		Addr:    userPrefix4 + s + ".2",
		Addr6:   userPrefix6 + s + "::2",
		Router:  userPrefix4 + s + ".1",
		Router6: userPrefix6 + s + "::1",
		Prefix:  24, Prefix6: 64,
	}
}

func netnsPath(name string) string { return "/run/netns/" + name }

// ipIn runs `ip ARGS…` in the network namespace at path.
func ipIn(ctx context.Context, path string, args ...string) error {
	return run(ctx, "nsenter", append([]string{"--net=" + path, "ip"}, args...)...)
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
