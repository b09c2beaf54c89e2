package netlab

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs f on an OS thread switched into the network namespace at path
// (/run/netns/NAME or /proc/PID/ns/net) and back. Sockets f creates stay
// in that namespace; nothing else of this process ever runs there. If the
// thread cannot switch back it stays locked and ends with its goroutine.
func Do(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err, restored := doIn(path, f)
		if restored {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func doIn(path string, f func() error) (err error, restored bool) {
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return err, true
	}
	defer self.Close()
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err), true
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter network namespace %s: %w", path, err), true
	}
	err = f()
	return err, unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil
}

// DialContext connects to addr from inside the network namespace at path.
// It fits http.Transport.DialContext through a closure or Member.DialContext.
func DialContext(ctx context.Context, path, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := Do(path, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens on addr inside the network namespace at path. Accepted
// connections belong to that namespace whichever thread accepts them.
func Listen(path, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := Do(path, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// DialContext connects to addr from inside the member's namespace.
func (m *Member) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return DialContext(ctx, m.Path, network, addr)
}

// Listen listens on addr inside the member's namespace.
func (m *Member) Listen(network, addr string) (net.Listener, error) {
	return Listen(m.Path, network, addr)
}
