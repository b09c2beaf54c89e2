package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/openbis/provision/testenv/sshadmin"
)

// Admin is the admin's workstation of a World: a lab namespace of its own
// with an SSH client set up (testenv/sshadmin) that trusts both servers'
// host keys, and the provision binary it runs.
type Admin struct {
	*sshadmin.Admin
	// Bin is the admin's provision; Dir holds the spec and ssh files.
	Bin, Dir string
	// HostKeys are the servers' public host keys, by host name.
	HostKeys map[string]string
}

// NewAdmin makes an admin workstation in dir for the world's user
// namespace named user (see WorldOptions.Users), starts sshd on both
// servers with the admin's key, and trusts the host keys of those named
// in trust (all when nil). Call Close.
func (w *World) NewAdmin(ctx context.Context, user, dir, bin string, trust []string) (*Admin, error) {
	a, err := w.workstation(ctx, user, dir)
	if err != nil {
		return nil, err
	}
	adm := &Admin{Admin: a, Bin: bin, Dir: dir, HostKeys: map[string]string{}}
	for name, h := range w.servers() {
		key, err := h.EnableSSH(ctx, a.AuthorizedKey())
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("ssh on %s: %w", name, err)
		}
		adm.HostKeys[name] = key
	}
	if trust == nil {
		trust = []string{WorldHub, WorldOpenBIS}
	}
	for _, name := range trust {
		if err := a.Trust(name, adm.HostKeys[name]); err != nil {
			a.Close()
			return nil, err
		}
	}
	return adm, nil
}

// WriteSpec writes spec into the admin's directory and returns its path.
func (a *Admin) WriteSpec(spec []byte) (string, error) {
	p := filepath.Join(a.Dir, "deployment.hcl")
	return p, os.WriteFile(p, spec, 0o644)
}

// Provision runs the admin's provision in the admin's namespace with its
// ssh configuration, connections multiplexed in the admin's control
// directory (so Close stops them).
func (a *Admin) Provision(ctx context.Context, args ...string) (Result, error) {
	cmd := a.ProvisionCommand(ctx, args...)
	return runCmd(cmd, cmd.Args)
}

// ProvisionCommand is the unstarted command Provision runs.
func (a *Admin) ProvisionCommand(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{a.Bin}, args...)
	if len(args) > 0 && (args[0] == "plan" || args[0] == "apply") {
		ssh := []string{"--ssh-config", a.ConfigPath(), "--ssh-option", "ControlPath=" + a.ControlDir() + "/%C",
			"--ssh-option", "ControlMaster=auto", "--ssh-option", "ControlPersist=60s"}
		full = append(append([]string{a.Bin, args[0]}, ssh...), args[1:]...)
	}
	cmd := a.Command(ctx, full...)
	// Nothing in this machine's ~/.cache: provision's own control
	// directory goes into the admin's.
	cmd.Env = append(cmd.Env, "NO_COLOR=1", "XDG_CACHE_HOME="+filepath.Join(a.Dir, "cache"))
	return cmd
}

// Another is a second admin workstation, in the world's user namespace
// user, trusted by the same servers (its key is added to theirs) and
// trusting the same host keys.
func (a *Admin) Another(ctx context.Context, w *World, user, dir string) (*Admin, error) {
	sa, err := w.workstation(ctx, user, dir)
	if err != nil {
		return nil, err
	}
	b := &Admin{Admin: sa, Bin: a.Bin, Dir: dir, HostKeys: a.HostKeys}
	for name, h := range w.servers() {
		keys, err := h.ReadFile("/root/.ssh/authorized_keys")
		if err == nil {
			err = h.WriteFile("/root/.ssh/authorized_keys", append([]byte(keys), sa.AuthorizedKey()...), 0o600)
		}
		if err == nil {
			err = sa.Trust(name, a.HostKeys[name])
		}
		if err != nil {
			sa.Close()
			return nil, fmt.Errorf("second admin on %s: %w", name, err)
		}
	}
	return b, nil
}

// workstation is an SSH client set up in dir, in the user namespace user.
func (w *World) workstation(ctx context.Context, user, dir string) (*sshadmin.Admin, error) {
	m := w.Users[user]
	if m == nil {
		return nil, fmt.Errorf("the world has no user namespace %q", user)
	}
	return sshadmin.New(ctx, dir, m)
}

// servers are the world's two servers by host name.
func (w *World) servers() map[string]Host {
	return map[string]Host{WorldHub: w.Hub, WorldOpenBIS: w.OpenBIS}
}
