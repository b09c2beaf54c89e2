package sshadmin

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfig checks the files New writes and what ssh makes of the config
// (ssh -G prints the options it would use, without connecting), for a
// short directory and for one too long for control sockets.
func TestConfig(t *testing.T) {
	for _, tool := range []string{"ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (openssh-client, testenv/packages-e2e.txt)", tool)
		}
	}
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 60))
	if err := os.Mkdir(long, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{t.TempDir(), long} {
		a, err := New(context.Background(), dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.controlDir) > maxControlDir {
			t.Errorf("control directory %s is %d bytes, more than %d", a.controlDir, len(a.controlDir), maxControlDir)
		}
		for name, mode := range map[string]os.FileMode{"id_ed25519": 0o600, "known_hosts": 0o600, "ssh_config": 0o600} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil || fi.Mode().Perm() != mode {
				t.Errorf("%s: %v, mode %v, want %v", name, err, fi.Mode().Perm(), mode)
			}
		}
		if f := strings.Fields(string(a.AuthorizedKey())); len(f) < 2 || f[0] != "ssh-ed25519" {
			t.Errorf("AuthorizedKey = %q", a.AuthorizedKey())
		}
		if err := a.Trust("srv.test", "ssh-ed25519 AAAAC3Nza root@x"); err != nil {
			t.Fatal(err)
		}
		if err := a.Trust("bad host", "ssh-ed25519 AAAA"); err == nil {
			t.Error("Trust accepted a host name with a space")
		}
		kh, _ := os.ReadFile(filepath.Join(dir, "known_hosts"))
		if string(kh) != "srv.test ssh-ed25519 AAAAC3Nza\n" {
			t.Errorf("known_hosts = %q", kh)
		}

		out, err := exec.Command("ssh", "-G", "-F", a.ConfigPath(), "srv.test").CombinedOutput()
		if err != nil {
			t.Fatalf("ssh -G: %v: %s", err, out)
		}
		got := map[string]string{}
		for _, l := range strings.Split(string(out), "\n") {
			k, v, _ := strings.Cut(l, " ")
			got[k] = v
		}
		want := map[string]string{
			"user":                  "root",
			"identityfile":          filepath.Join(dir, "id_ed25519"),
			"identitiesonly":        "yes",
			"userknownhostsfile":    filepath.Join(dir, "known_hosts"),
			"globalknownhostsfile":  "/dev/null",
			"stricthostkeychecking": "ask", // OpenSSH's default, not weakened
			"controlmaster":         "false",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("ssh -G %s = %q, want %q", k, got[k], v)
			}
		}
		if !strings.HasPrefix(got["controlpath"], a.controlDir+"/") {
			t.Errorf("ssh -G controlpath = %q, want one in %s", got["controlpath"], a.controlDir)
		}
		cm := a.controlDir
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(cm); !os.IsNotExist(err) {
			t.Errorf("control directory %s left after Close (%v)", cm, err)
		}
	}
}
