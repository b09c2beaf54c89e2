//go:build integration

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUsersCreateNotebooks: with examples/demo.hcl, a spec that restricts
// nothing, a user's browser on an unrelated network creates a notebook from
// the ELN page on the openBIS server and lands on it, served by the user's
// own notebook server through the hub login; only the hub port and COMM
// are reachable. Restricting users to alice's network shuts mallory out;
// the guide's restriction of COMM to the openBIS server breaks the button,
// and plan says so.
func TestUsersCreateNotebooks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	w, err := NewWorld(ctx, WorldOptions{Provision: provisionBin, Users: []string{"alice", "mallory"}, Log: os.Stderr})
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	converge := func(firewall string) string {
		t.Helper()
		spec, err := w.Spec(firewall)
		if err != nil {
			t.Fatal(err)
		}
		hub, _, err := w.Converge(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return hub.Stdout + hub.Stderr
	}
	notebook := func(name, shot string, wait time.Duration) (string, string) {
		t.Helper()
		status, url, err := w.Notebook(ctx, "alice", name, shot, wait)
		if err != nil {
			t.Fatal(err)
		}
		return status, url
	}

	converge("")
	shot := filepath.Join(t.TempDir(), "notebook.png")
	status, url := notebook("analysis", shot, time.Minute)
	if !strings.Contains(url, "/user/alice/notebooks/openbis/analysis.ipynb") {
		t.Fatalf("the browser ended on %q (status %q), not the notebook", url, status)
	}
	if nb, err := w.Hub.ReadFile(UsersHome + "/alice/openbis/analysis.ipynb"); err != nil || !strings.Contains(nb, "cells") {
		t.Errorf("notebook in alice's home: %v %.80q", err, nb)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Errorf("screenshot %s: %v", shot, err)
	}
	for _, tt := range []struct {
		port int
		want bool
	}{{443, true}, {8002, true}, {8000, false}, {8001, false}, {8081, false}} {
		for _, u := range []string{"alice", "mallory"} {
			if got := w.Reach(ctx, u, tt.port); got != tt.want {
				t.Errorf("users anywhere: %s reaches port %d: %v, want %v", u, tt.port, got, tt.want)
			}
		}
	}

	// Users restricted to alice's network.
	alice := w.Users["alice"]
	net := alice.Addr[:strings.LastIndexByte(alice.Addr, '.')] + ".0"
	converge(fmt.Sprintf("firewall {\n    users_from = [\"%s/%d\"]\n  }", net, alice.Prefix))
	for _, tt := range []struct {
		user string
		port int
		want bool
	}{{"alice", 443, true}, {"alice", 8002, true}, {"mallory", 443, false}, {"mallory", 8002, false},
		{"alice", 8001, false}, {"alice", 8081, false}, {"mallory", 8001, false}, {"mallory", 8081, false}} {
		if got := w.Reach(ctx, tt.user, tt.port); got != tt.want {
			t.Errorf("users from alice's network: %s reaches port %d: %v, want %v", tt.user, tt.port, got, tt.want)
		}
	}
	if status, url := notebook("second", "", time.Minute); !strings.Contains(url, "/notebooks/openbis/second.ipynb") {
		t.Errorf("alice's browser inside the users' network ended on %q (status %q)", url, status)
	}

	// The guide's rule: COMM only from the openBIS server. Plan warns, and
	// the browser's POST to COMM is dropped: the page never gets past its
	// check.
	out := converge(fmt.Sprintf("firewall {\n    allow_from = [%q]\n  }", w.OpenBISAddr))
	if !strings.Contains(out, "will not be able to") {
		t.Errorf("no warning that users cannot create notebooks:\n%s", out)
	}
	status, url = notebook("third", "", 20*time.Second)
	if strings.Contains(url, "/notebooks/") || strings.HasPrefix(status, "notebook created") {
		t.Errorf("with COMM restricted to openBIS the button worked: status %q, url %q", status, url)
	}
	if _, err := w.Hub.ReadFile(UsersHome + "/alice/openbis/third.ipynb"); err == nil {
		t.Error("the notebook was written although COMM admits only openBIS")
	}
}
