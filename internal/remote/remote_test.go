package remote

import (
	"slices"
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	s := &SSH{Config: "/etc/provision/ssh_config", Options: []string{"ProxyJump=bastion"}, ControlDir: t.TempDir()}
	args, err := s.args(Target{Host: "openbis.example.org", Destination: "admin@192.0.2.10", Port: 2222}, "true")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(args, " ")
	// ssh keeps the first value of an option: the enforced ones come
	// before the admin's, and the destination after "--".
	for _, want := range []string{
		"-F /etc/provision/ssh_config -o BatchMode=yes -o StrictHostKeyChecking=yes -o RemoteCommand=none",
		"-o PermitLocalCommand=no -o ProxyJump=bastion -o ConnectTimeout=30",
		"-o ControlPersist=60s -T -x -p 2222 -- admin@192.0.2.10 true",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("args %q lack %q", got, want)
		}
	}
	if i := slices.Index(args, "--"); i != len(args)-3 {
		t.Errorf("destination not right after --: %q", args)
	}
}

func TestCheckOption(t *testing.T) {
	for _, tt := range []struct {
		opt string
		ok  bool
	}{
		{"ProxyJump=bastion.example.org", true},
		{"IdentityFile=/root/.ssh/deploy", true},
		{"StrictHostKeyChecking=no", false},
		{"stricthostkeychecking=accept-new", false},
		{"BatchMode=no", false},
		{"RemoteCommand=/bin/true", false},
		{"ConnectTimeout=5", true},
		{"-oProxyCommand=sh", false},
		{"NoEquals", false},
		{"Bad Key=1", false},
	} {
		if err := CheckOption(tt.opt); (err == nil) != tt.ok {
			t.Errorf("CheckOption(%q) = %v", tt.opt, err)
		}
	}
	if _, err := (&SSH{Options: []string{"StrictHostKeyChecking=no"}}).args(Target{Host: "h", Destination: "h"}, "true"); err == nil {
		t.Error("args took an option that turns host key checking off")
	}
}

// The scripts are run by the host's shell inside single quotes (asRoot).
func TestScriptsQuote(t *testing.T) {
	r := &Runner{sum: strings.Repeat("ab", 32)}
	for name, s := range map[string]string{"run": r.runScript(), "install": r.installScript()} {
		// Two single-quoted words for the login shell, whatever it is:
		// no quote and no newline of the script's own.
		// csh expands "!" even there: the scripts have none.
		if strings.Count(s, "'") != 4 || strings.ContainsAny(s, "\n!") || !strings.Contains(s, r.sum) {
			t.Errorf("%s script breaks its quoting or lacks the hash:\n%s", name, s)
		}
	}
}

func TestTargetString(t *testing.T) {
	for _, tt := range []struct {
		t    Target
		want string
	}{
		{Target{Host: "a"}, "a (this machine)"},
		{Target{Host: "a", Destination: "a"}, "a"},
		{Target{Host: "a", Destination: "root@192.0.2.1"}, "a (ssh root@192.0.2.1)"},
		{Target{Host: "a", Destination: "a", Port: 2222}, "a (ssh a, port 2222)"},
	} {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.t, got, tt.want)
		}
	}
}
