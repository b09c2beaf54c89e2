//go:build integration

package netlab_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/openbis/provision/testenv/freshserver"
	"github.com/openbis/provision/testenv/netlab"
)

const port = "9000"

// serve answers every connection on port in m's namespace with m's name.
func serve(t *testing.T, m *netlab.Member) {
	t.Helper()
	// [::] takes IPv4 too (net.ipv6.bindv6only is 0 in a new namespace).
	l, err := m.Listen("tcp", "[::]:"+port)
	if err != nil {
		t.Fatalf("listen in %s: %v", m.Name, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(m.Name + " " + c.RemoteAddr().String() + "\n"))
			c.Close()
		}
	}()
}

// ask connects from one member to addr and returns the answer: the name of
// the member reached and the source address it saw.
func ask(ctx context.Context, from *netlab.Member, addr string) (name, src string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := from.DialContext(ctx, "tcp", net.JoinHostPort(addr, port))
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", "", err
	}
	name, remote, _ := strings.Cut(strings.TrimSpace(line), " ")
	host, _, _ := net.SplitHostPort(remote)
	return name, strings.TrimPrefix(host, "::ffff:"), nil
}

type hop struct{ from, to *netlab.Member }

func checkReach(t *testing.T, ctx context.Context, hops []hop) {
	t.Helper()
	for _, h := range hops {
		for _, fam := range []struct {
			name     string
			to, from string
		}{{"ipv4", h.to.Addr, h.from.Addr}, {"ipv6", h.to.Addr6, h.from.Addr6}} {
			start := time.Now()
			name, src, err := ask(ctx, h.from, fam.to)
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Logf("%s → %s over %s took %s", h.from.Name, h.to.Name, fam.name, d)
			}
			if err != nil {
				t.Errorf("%s → %s over %s (%s): %v", h.from.Name, h.to.Name, fam.name, fam.to, err)
				continue
			}
			// The right member answered and saw the sender's own address:
			// routed, not translated.
			if name != h.to.Name || src != fam.from {
				t.Errorf("%s → %s over %s: answered by %s seeing %s, want %s seeing %s", h.from.Name, h.to.Name, fam.name, name, src, h.to.Name, fam.from)
			}
		}
	}
}

// checkGone fails t if a namespace or /etc/netns directory of the lab remains.
func checkGone(t *testing.T, lab *netlab.Lab) {
	t.Helper()
	for _, dir := range []string{"/run/netns", "/etc/netns"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "provision-lab-"+lab.ID+"-") {
				t.Errorf("%s/%s left after Close", dir, e.Name())
			}
		}
	}
}

func getent(t *testing.T, out []byte, err error, name, want string) {
	t.Helper()
	if err != nil {
		t.Errorf("getent hosts %s: %v: %s", name, err, out)
		return
	}
	// ahosts prints "ADDR STREAM NAME" first.
	if f := strings.Fields(string(out)); len(f) < 3 || f[0] != want || f[2] != name {
		t.Errorf("getent hosts %s = %q, want %s", name, out, want)
	}
}

// rootForwarding reads this machine's forwarding switches.
func rootForwarding(t *testing.T) string {
	var s string
	for _, k := range []string{"ipv4/ip_forward", "ipv6/conf/all/forwarding"} {
		b, err := os.ReadFile("/proc/sys/net/" + k)
		if err != nil {
			t.Fatal(err)
		}
		s += strings.TrimSpace(string(b))
	}
	return s
}

// TestUsers routes between user namespaces only: no fresh server needed.
func TestUsers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	forward := rootForwarding(t)
	start := time.Now()
	lab, err := netlab.New(ctx)
	defer func() {
		if err := lab.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		checkGone(t, lab)
	}()
	defer func() {
		// This machine's own namespace is never configured.
		if got := rootForwarding(t); got != forward {
			t.Errorf("forwarding in this machine's namespace changed from %q to %q", forward, got)
		}
		for _, dev := range []string{netlab.MemberIf, "br0"} {
			if _, err := net.InterfaceByName(dev); err == nil {
				t.Errorf("interface %s in this machine's namespace", dev)
			}
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	alice, err := lab.AddUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := lab.AddUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lab.AddUser(ctx, "bob"); err == nil {
		t.Error("second member named bob accepted")
	}
	t.Logf("lab with two users in %s", time.Since(start))
	serve(t, alice)
	serve(t, bob)
	checkReach(t, ctx, []hop{{alice, bob}, {bob, alice}})

	hosts := lab.Hosts()
	hosts["openbis.example"] = []string{bob.Addr}
	if err := lab.SetHosts(hosts); err != nil {
		t.Fatal(err)
	}
	out, err := alice.Command(ctx, "getent", "ahostsv4", "openbis.example").CombinedOutput()
	getent(t, out, err, "openbis.example", bob.Addr)
	// Members joining later get the entries too.
	carol, err := lab.AddUser(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	out, err = carol.Command(ctx, "getent", "ahostsv4", "alice").CombinedOutput()
	getent(t, out, err, "alice", alice.Addr)
}

// TestServersAndUsers joins two fresh servers (openBIS and JupyterHub) and
// two users, and checks every path the ELN flow uses, both families.
func TestServersAndUsers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var srv [2]*freshserver.Server
	done := make(chan int)
	for i := range srv {
		go func() { srv[i] = freshserver.Start(t, freshserver.Options{}); done <- i }()
	}
	<-done
	<-done
	if srv[0] == nil || srv[1] == nil {
		t.FailNow()
	}

	start := time.Now()
	lab, err := netlab.New(ctx)
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		checkGone(t, lab)
	})
	if err != nil {
		t.Fatal(err)
	}
	openbis, err := lab.AddServer(ctx, "openbis", srv[0].Pid)
	if err != nil {
		t.Fatal(err)
	}
	jupyterhub, err := lab.AddServer(ctx, "jupyterhub", srv[1].Pid)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := lab.AddUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := lab.AddUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lab with two servers and two users in %s: openbis %s %s, jupyterhub %s %s, alice %s %s, bob %s %s",
		time.Since(start), openbis.Addr, openbis.Addr6, jupyterhub.Addr, jupyterhub.Addr6, alice.Addr, alice.Addr6, bob.Addr, bob.Addr6)

	// The servers run firewalld, which rejects new inbound connections
	// by default: open the test port for this boot only.
	for _, s := range srv {
		if out, err := s.Exec(ctx, "firewall-cmd", "--add-port="+port+"/tcp"); err != nil {
			t.Fatalf("open port %s: %v: %s", port, err, out)
		}
	}
	for _, m := range []*netlab.Member{openbis, jupyterhub, alice, bob} {
		serve(t, m)
	}
	checkReach(t, ctx, []hop{
		{openbis, jupyterhub}, {jupyterhub, openbis},
		{alice, openbis}, {alice, jupyterhub}, {bob, jupyterhub},
		{jupyterhub, alice}, // users are reachable too (routed, no NAT)
	})

	hosts := map[string][]string{
		"openbis.example":    {openbis.Addr, openbis.Addr6},
		"jupyterhub.example": {jupyterhub.Addr, jupyterhub.Addr6},
	}
	if err := lab.SetHosts(hosts); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*netlab.Member{alice, bob} {
		out, err := u.Command(ctx, "getent", "ahostsv4", "jupyterhub.example").CombinedOutput()
		getent(t, out, err, "jupyterhub.example", jupyterhub.Addr)
		out, err = u.Command(ctx, "getent", "ahostsv6", "openbis.example").CombinedOutput()
		getent(t, out, err, "openbis.example", openbis.Addr6)
	}
	// Inside a server: its own /etc/hosts, with its localhost lines kept.
	out, err := srv[1].Exec(ctx, "getent", "ahostsv4", "openbis.example")
	getent(t, out, err, "openbis.example", openbis.Addr)
	out, err = srv[1].Exec(ctx, "getent", "ahostsv4", "localhost")
	getent(t, out, err, "localhost", "127.0.0.1")
}

// TestReapsLabOfKilledTest makes a lab in a child test process, kills it
// with SIGKILL (no cleanup runs, as with go test -timeout) and checks that
// the next New deletes the orphaned namespaces and /etc/netns directories.
func TestReapsLabOfKilledTest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if os.Getenv("NETLAB_ORPHAN_CHILD") == "1" {
		lab, err := netlab.New(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lab.AddUser(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		if err := lab.SetHosts(lab.Hosts()); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("LAB %s\n", lab.ID)
		time.Sleep(time.Minute) // killed before this ends
		return
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestReapsLabOfKilledTest$")
	cmd.Env = append(os.Environ(), "NETLAB_ORPHAN_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var id string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "LAB "); ok {
			id = rest
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if id == "" {
		t.Fatal("child made no lab")
	}
	orphan := &netlab.Lab{ID: id}
	if _, err := os.Stat("/etc/netns/provision-lab-" + id + "-alice/hosts"); err != nil {
		t.Fatalf("child's hosts file missing before the reap: %v", err)
	}
	lab, err := netlab.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	checkGone(t, orphan)
}
