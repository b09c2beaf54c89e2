package firewalld

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Net is a throwaway topology of named network namespaces: one server and
// clients, each client joined to the server by its own veth pair. Only
// documentation addresses (RFC 5737) are used, and only inside these
// namespaces.
type Net struct {
	Server string // namespace name
	// Clients by label.
	Clients map[string]*Client
	names   []string
}

// Client is one client namespace.
type Client struct {
	NS       string
	Addr     string // the client's address
	ServerIP string // the server's address on this link
}

// Link describes a client to create: ServerCIDR on the server side,
// ClientCIDR in the client, which routes everything via the server.
type Link struct {
	Label      string
	ServerCIDR string // "192.0.2.1/24"
	ClientCIDR string // "192.0.2.10/24"
}

// NewNet creates the server namespace and one client namespace per link.
// Call Close, also after an error: it deletes what was created.
func NewNet(ctx context.Context, links []Link) (*Net, error) {
	var b [3]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	n := &Net{Server: "provision-fw-" + id + "-srv", Clients: map[string]*Client{}}
	if err := n.addNS(ctx, n.Server); err != nil {
		return n, err
	}
	for i, l := range links {
		ns := fmt.Sprintf("provision-fw-%s-c%d", id, i)
		if err := n.addNS(ctx, ns); err != nil {
			return n, err
		}
		// Interface names: at most 15 bytes.
		sIf, cIf := fmt.Sprintf("pf%s-s%d", id, i), fmt.Sprintf("pf%s-c%d", id, i)
		sIP, _, _ := strings.Cut(l.ServerCIDR, "/")
		cIP, _, _ := strings.Cut(l.ClientCIDR, "/")
		steps := [][]string{
			{"link", "add", sIf, "netns", n.Server, "type", "veth", "peer", "name", cIf, "netns", ns},
			{"-n", n.Server, "addr", "add", l.ServerCIDR, "dev", sIf},
			{"-n", ns, "addr", "add", l.ClientCIDR, "dev", cIf},
			{"-n", n.Server, "link", "set", sIf, "up"},
			{"-n", ns, "link", "set", cIf, "up"},
			{"-n", ns, "route", "add", "default", "via", sIP},
		}
		for _, s := range steps {
			if err := ip(ctx, s...); err != nil {
				return n, err
			}
		}
		n.Clients[l.Label] = &Client{NS: ns, Addr: cIP, ServerIP: sIP}
	}
	return n, nil
}

func (n *Net) addNS(ctx context.Context, name string) error {
	if err := ip(ctx, "netns", "add", name); err != nil {
		return err
	}
	n.names = append(n.names, name)
	return ip(ctx, "-n", name, "link", "set", "lo", "up")
}

// Close deletes every namespace created; their veths go with them.
func (n *Net) Close() error {
	var errs []error
	for _, name := range n.names {
		errs = append(errs, ip(context.Background(), "netns", "del", name))
	}
	return errors.Join(errs...)
}

// Path is the bind mount of a namespace, for nsenter --net=.
func Path(ns string) string { return "/run/netns/" + ns }

// IP runs `ip ARGS…`.
func IP(ctx context.Context, args ...string) error { return ip(ctx, args...) }

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// DialFrom opens a TCP connection to addr from inside namespace ns and
// closes it: nil means the handshake completed. The socket is created on an
// OS thread switched into ns, so this test process never leaves its own
// namespace otherwise.
func DialFrom(ns, addr string, timeout time.Duration) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open(Path(ns))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	c, dialErr := net.DialTimeout("tcp", addr, timeout)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: it dies with this goroutine instead of
		// serving others in the wrong namespace.
		return fmt.Errorf("setns back: %w", err)
	}
	runtime.UnlockOSThread()
	if dialErr != nil {
		return dialErr
	}
	return c.Close()
}
