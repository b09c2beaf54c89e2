package firewalld

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	NS        string
	Addr      string // the client's address
	ServerIP  string // the server's address on this link
	Addr6     string // the same for IPv6, when the link has it
	ServerIP6 string
}

// Link describes a client to create: ServerCIDR on the server side,
// ClientCIDR in the client, which routes everything via the server.
type Link struct {
	Label      string
	ServerCIDR string // "192.0.2.1/24"
	ClientCIDR string // "192.0.2.10/24"
	// Optional IPv6 addresses of the link ("2001:db8:1::1/64").
	ServerCIDR6, ClientCIDR6 string
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
		cl := &Client{NS: ns, Addr: cIP, ServerIP: sIP}
		if l.ServerCIDR6 != "" {
			cl.ServerIP6, _, _ = strings.Cut(l.ServerCIDR6, "/")
			cl.Addr6, _, _ = strings.Cut(l.ClientCIDR6, "/")
			// nodad: usable at once, no duplicate detection wait.
			steps = append(steps,
				[]string{"-n", n.Server, "addr", "add", l.ServerCIDR6, "dev", sIf, "nodad"},
				[]string{"-n", ns, "addr", "add", l.ClientCIDR6, "dev", cIf, "nodad"},
				[]string{"-n", ns, "-6", "route", "add", "default", "via", cl.ServerIP6})
		}
		for _, s := range steps {
			if err := ip(ctx, s...); err != nil {
				return n, err
			}
		}
		n.Clients[l.Label] = cl
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

// DialFrom opens a TCP connection to addr from inside namespace ns. The
// socket is created on an OS thread switched into ns and back, so this
// test process never leaves its own namespace otherwise; the connection
// stays in ns.
func DialFrom(ns, addr string, timeout time.Duration) (net.Conn, error) {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	target, err := os.Open(Path(ns))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("setns %s: %w", ns, err)
	}
	c, dialErr := net.DialTimeout("tcp", addr, timeout)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: it dies with this goroutine instead of
		// serving others in the wrong namespace.
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("setns back: %w", err)
	}
	runtime.UnlockOSThread()
	return c, dialErr
}

// HTTPFrom asks addr for "/" from inside ns and reports whether an HTTP
// answer came back: the service itself was reached, not merely a proxy
// that accepts and then finds no backend.
func HTTPFrom(ns, addr string, timeout time.Duration) error {
	c, err := DialFrom(ns, addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return err
	}
	buf := make([]byte, 8)
	if _, err := io.ReadFull(c, buf); err != nil {
		return fmt.Errorf("no HTTP answer: %w", err)
	}
	if !strings.HasPrefix(string(buf), "HTTP/1.") {
		return fmt.Errorf("no HTTP answer: %q", buf)
	}
	return nil
}
