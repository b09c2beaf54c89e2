//go:build integration

package firewalld

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openbis/provision/internal/engine"

	fwenv "github.com/openbis/provision/testenv/firewalld"
)

// The published ports of the exposure design, as the start script writes
// them: 8000 for everyone, COMM for openBIS only (guarded below), the proxy
// and hub APIs on loopback only.
const comm = 9002

var publish = []string{"8000:8000", fmt.Sprint(comm, ":8002"), "127.0.0.1:8001:8001", "127.0.0.1:8081:8081"}

var ports = []int{8000, comm, 8001, 8081}

// TestExposure builds a server namespace with firewalld, dockerd (with its
// iptables rules) and a stand-in JupyterHub container, and two clients: the
// openBIS address and another one. It measures which ports each can reach,
// first with the guide's rich rule only, then with provision's exposure
// rules, then after a firewalld reload.
func TestExposure(t *testing.T) {
	ctx := context.Background()
	topo, err := fwenv.NewNet(ctx, []fwenv.Link{
		{Label: "openbis", ServerCIDR: "192.0.2.1/24", ClientCIDR: "192.0.2.10/24",
			ServerCIDR6: "2001:db8:1::1/64", ClientCIDR6: "2001:db8:1::10/64"},
		{Label: "other", ServerCIDR: "198.51.100.1/24", ClientCIDR: "198.51.100.20/24",
			ServerCIDR6: "2001:db8:2::1/64", ClientCIDR6: "2001:db8:2::20/64"},
	})
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := fwenv.Start(ctx, fwenv.Options{Dir: t.TempDir(), NetNS: topo.Server})
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// Started after firewalld, as docker.service is: Docker then puts
	// docker0 in firewalld's zone "docker".
	dock, err := fwenv.StartDocker(ctx, shortTempDir(t), topo.Server, srv.BusAddress, "203.0.113.1/24")
	t.Cleanup(func() {
		if err := dock.Stop(); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dock.ImportBusybox(ctx, "provision-standin:1"); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "-d", "--name", "jupyterhub"}
	for _, p := range publish {
		args = append(args, "-p", p)
	}
	// Listens on the container ports JupyterHub uses.
	args = append(args, "provision-standin:1", "/bin/busybox", "sh", "-c",
		"for p in 8000 8001 8002 8081; do /bin/busybox httpd -p $p -h /www; done; exec /bin/busybox sleep 3600")
	if _, err := dock.CLI(ctx, nil, args...); err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		waitOpen(t, topo.Server, fmt.Sprint("127.0.0.1:", p))
	}

	ob, ot := topo.Clients["openbis"], topo.Clients["other"]
	rows := []probeRow{
		{"openbis 192.0.2.10", ob.NS, ob.ServerIP},
		{"openbis 2001:db8:1::10", ob.NS, ob.ServerIP6},
		{"other 198.51.100.20", ot.NS, ot.ServerIP},
		{"other 2001:db8:2::20", ot.NS, ot.ServerIP6},
		{"host itself", topo.Server, "127.0.0.1"},
	}

	// All rules of the test share one connection, as in a provision run.
	fwConn := NewConn(srv.BusAddress)
	defer fwConn.Close()

	// 1. The guide's rule alone.
	openbis := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("2001:db8:1::10/128")}
	rules, err := RulesFor("openbis_comm", fwConn, "", openbis, comm, "tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		apply(t, r)
	}
	got := probe(rows)
	t.Logf("guide's rich rule only:\n%s", got.format(rows))
	if got.open("other 198.51.100.20", comm) {
		t.Logf("measured: the rich rule does not restrict the Docker-published port %d", comm)
	}

	// 2. provision's exposure rules.
	guard, err := PortGuard("jupyterhub_comm", fwConn, comm, "tcp", openbis)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := LoopbackGuard("loopback_guard", fwConn)
	if err != nil {
		t.Fatal(err)
	}
	// 8000 is open to all: Docker's DNAT does that on IPv4; docker-proxy
	// on [::] needs zone public to admit it.
	hub, err := NewRule(RuleConfig{Name: "jupyterhub_8000", Bus: srv.BusAddress, Port: 8000})
	if err != nil {
		t.Fatal(err)
	}
	res := []engine.Resource{hub}
	for _, d := range append(guard, lo) {
		res = append(res, d)
	}
	for _, r := range res {
		apply(t, r)
	}
	want := table{
		"openbis 192.0.2.10":     {8000: true, comm: true},
		"openbis 2001:db8:1::10": {8000: true, comm: true},
		"other 198.51.100.20":    {8000: true},
		"other 2001:db8:2::20":   {8000: true},
		"host itself":            {8000: true, comm: true, 8001: true, 8081: true},
	}
	got = probe(rows)
	t.Logf("with provision's exposure rules:\n%s", got.format(rows))
	want.check(t, got)

	// 3. They hold across a firewalld reload (permanent configuration) and
	// stay converged.
	c, err := dial(ctx, srv.BusAddress)
	if err != nil {
		t.Fatal(err)
	}
	err = c.reload(ctx)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	// firewalld's reload flushes every iptables table, Docker's rules too;
	// Docker re-adds its own when firewalld signals Reloaded. Wait for that.
	start := time.Now()
	got = probe(rows)
	for !want.equal(got) && time.Since(start) < 20*time.Second {
		time.Sleep(250 * time.Millisecond)
		got = probe(rows)
	}
	t.Logf("after firewalld reload (converged in %v):\n%s", time.Since(start).Round(time.Millisecond), got.format(rows))
	want.check(t, got)
	for _, r := range res {
		if ch := plan(t, r); ch.Action != engine.NoOp {
			t.Errorf("%s after reload: %s %v", r.Address(), ch.Action, ch.Reasons)
		}
	}

	// 4. A neighbour that routes 127.0.0.1 to the server must not reach the
	// loopback-published ports.
	other := topo.Clients["other"]
	for _, s := range [][]string{
		{"-n", other.NS, "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local"},
		{"-n", other.NS, "route", "add", "127.0.0.1/32", "via", other.ServerIP},
	} {
		if err := fwenv.IP(ctx, s...); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []int{8001, 8081} {
		if err := fwenv.HTTPFrom(other.NS, fmt.Sprint("127.0.0.1:", p), 1500*time.Millisecond); err == nil {
			t.Errorf("other reached 127.0.0.1:%d through the server", p)
		}
	}
}

type probeRow struct{ label, ns, ip string }

type table map[string]map[int]bool

func (t table) open(row string, port int) bool { return t[row][port] }

func probe(rows []probeRow) table {
	out := table{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, r := range rows {
		out[r.label] = map[int]bool{}
		for _, p := range ports {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := fwenv.HTTPFrom(r.ns, net.JoinHostPort(r.ip, fmt.Sprint(p)), 1500*time.Millisecond)
				mu.Lock()
				out[r.label][p] = err == nil
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	return out
}

func (t table) format(rows []probeRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-24s", "from \\ port")
	for _, p := range ports {
		fmt.Fprintf(&b, "%8d", p)
	}
	for _, r := range rows {
		row := r.label
		fmt.Fprintf(&b, "\n%-24s", row)
		for _, p := range ports {
			s := "closed"
			if t[row][p] {
				s = "open"
			}
			fmt.Fprintf(&b, "%8s", s)
		}
	}
	return b.String()
}

func (want table) equal(got table) bool {
	for row, ps := range got {
		for p, open := range ps {
			if open != want[row][p] {
				return false
			}
		}
	}
	return true
}

func (want table) check(t *testing.T, got table) {
	t.Helper()
	for row, ps := range got {
		for p, open := range ps {
			if open != want[row][p] {
				t.Errorf("%s → %d: open=%v, want %v", row, p, open, want[row][p])
			}
		}
	}
}

func waitOpen(t *testing.T, ns, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := fwenv.HTTPFrom(ns, addr, time.Second)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stand-in container not reachable at %s: %v", addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// shortTempDir keeps dockerd's socket path under the unix limit.
func shortTempDir(t *testing.T) string {
	dir := t.TempDir()
	if len(dir) > 60 {
		t.Fatalf("temp dir %s too long for a unix socket", dir)
	}
	return dir
}
