// Command benchssh measures `provision plan --all` of a converged two-host
// deployment from an admin's workstation over real OpenSSH with
// multiplexed connections, against the same check done by Ansible over
// SSH (testenv/ansible/deployment.yml in --check --diff mode), in the same
// run, and prints the figures as a Markdown table. testenv/bench-ssh.sh
// runs it as root.
//
// The world is testenv/e2e's: two fresh servers (an openBIS and a
// JupyterHub server) on a private network, the real JupyterHub image,
// examples/demo.hcl, and an admin namespace on another network with its
// own ssh_config, key and known_hosts. provision converges both hosts once
// over SSH (apply --all); the playbook's expected contents (the start
// script, the unit, the firewall rules, the ELN block) are then read from
// the converged servers, so both tools check the same state. No timed
// assertions: figures.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/openbis/provision/testenv/e2e"
)

type sample struct {
	name string
	d    []time.Duration
}

func (s *sample) row() string {
	if len(s.d) == 0 {
		return fmt.Sprintf("| %s | – | – | 0 |", s.name)
	}
	med, lo, hi := e2e.Stats(s.d)
	return fmt.Sprintf("| %s | %s | %s–%s | %d |", s.name, ms(med), ms(lo), ms(hi), len(s.d))
}

func ms(d time.Duration) string { return e2e.Ms(d) }

func main() {
	runs := flag.Int("runs", 10, "timed runs of each measure (median of them)")
	bin := flag.String("provision", "", "provision binary (default: build ./cmd/provision)")
	facts := flag.Int("facts", 3, "of the runs, how many also time the playbook with facts gathered (slow: 0 skips it)")
	hold := flag.Bool("hold", false, "after converging, print how to reach the admin's namespace and wait for ^C (to work on the playbook)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *runs, *bin, *facts, *hold); err != nil {
		fmt.Fprintln(os.Stderr, "benchssh:", err)
		os.Exit(1)
	}
}

func logf(format string, a ...any) { fmt.Fprintf(os.Stderr, "benchssh: "+format+"\n", a...) }

type bench struct {
	w    *e2e.World
	adm  *e2e.Admin
	spec string // on the admin's machine
	dir  string // the run's own directory: ansible's and provision's files
	repo string
	env  []string // ansible's environment, on top of the admin's
}

func run(ctx context.Context, runs int, bin string, facts int, hold bool) (err error) {
	repo, err := e2e.RepoRoot()
	if err != nil {
		return err
	}
	// Short: ssh's control sockets live below it (sun_path is 107 bytes).
	dir, err := os.MkdirTemp("/tmp", "pbssh-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		bin = filepath.Join(dir, "provision")
		logf("building provision")
		if err := e2e.BuildProvision(ctx, repo, bin); err != nil {
			return err
		}
	}
	// provision's default ssh control directory is in the user's cache
	// directory: the run's own, so nothing of the bench stays in /root
	// (the admin's ControlPath option puts the sockets elsewhere anyway).
	os.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))

	logf("booting the two servers (image, certificates, openBIS stand-in)")
	w, err := e2e.NewWorld(ctx, e2e.WorldOptions{Users: []string{"admin"}, Log: os.Stderr})
	defer func() {
		if cerr := w.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err != nil {
		return err
	}
	// A real server resolves its own name (Debian's installer writes it to
	// /etc/hosts as 127.0.1.1); a fresh server's does not, and the name
	// fact Ansible gathers then waits ~5 s for a name server that is not
	// there. provision asks for no such thing.
	for _, h := range []e2e.Host{w.Hub, w.OpenBIS} {
		r, err := h.Run(ctx, "sh", "-c", `printf '127.0.1.1\t%s\n' "$(hostname)" >>/etc/hosts`)
		if err == nil && r.Code != 0 {
			err = errors.New(r.String())
		}
		if err != nil {
			return fmt.Errorf("add the server's name to its /etc/hosts: %w", err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "admin"), 0o700); err != nil {
		return err
	}
	adm, err := w.NewAdmin(ctx, "admin", filepath.Join(dir, "admin"), bin, nil)
	if err != nil {
		return err
	}
	// Closed before the world: it stops every ssh master in the control
	// directory, provision's and Ansible's.
	defer func() {
		if cerr := adm.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	b := &bench{w: w, adm: adm, dir: dir, repo: repo}
	spec, err := w.Spec("")
	if err != nil {
		return err
	}
	if b.spec, err = adm.WriteSpec(spec); err != nil {
		return err
	}

	logf("converging both hosts over SSH (apply --all)")
	r, err := adm.Provision(ctx, "apply", "--all", b.spec)
	if err != nil {
		return err
	}
	if r.Code != 0 {
		return fmt.Errorf("apply --all:\n%s", r)
	}
	logf("converged in %s", r.Took.Round(time.Millisecond))
	if err := b.setupAnsible(ctx); err != nil {
		return err
	}
	if hold {
		return b.hold(ctx)
	}

	cold := &sample{name: "`provision plan --all`, cold: no ssh master (key exchange to both hosts)"}
	warm := &sample{name: "`provision plan --all`, warm: multiplexed connections"}
	aCold := &sample{name: "`ansible-playbook --check --diff`, cold: no ssh master"}
	aWarm := &sample{name: "`ansible-playbook --check --diff`, warm: multiplexed connections (Ansible's defaults)"}
	aPipe := &sample{name: "— the same with pipelining (`ANSIBLE_PIPELINING=True`)"}
	aFacts := &sample{name: "— the same with facts gathered (`gather_facts`, no pipelining)"}
	sshTrue := &sample{name: "transport: `ssh jupyterhub.test true` through provision's warm master"}
	hubLocal := &sample{name: "work: `provision plan` on the JupyterHub host itself (no SSH)"}
	obLocal := &sample{name: "work: `provision plan` on the openBIS host itself (no SSH)"}
	binSize := int64(0)
	if fi, err := os.Stat(bin); err == nil {
		binSize = fi.Size()
	}
	hashAdmin := &sample{name: fmt.Sprintf("binary check, admin side: SHA-256 of provision's own %.0f MiB binary, every run (Go)", float64(binSize)/(1<<20))}
	hashHost := &sample{name: "binary check, host side: `sha256sum -c` of the cached binary (done once, when it is written; a run checks its size)"}
	changes := &sample{name: "for comparison: Docker's own diff, `GET /containers/jupyterhub-openbis/changes`, which the plan no longer asks (it reads the overlay upper directory)"}
	tasks := map[string]int{}

	// The first plan after the apply reuses the apply's masters: stop them,
	// so that the first figure is cold; then one warm-up of each.
	logf("warm-up runs")
	if err := b.stopMasters(ctx); err != nil {
		return err
	}
	if _, err := b.plan(ctx); err != nil {
		return err
	}
	for _, v := range []ansibleRun{{}, {pipelining: true}} {
		if _, err := b.ansible(ctx, v, tasks); err != nil {
			return err
		}
	}
	// The local plans need the spec on the hosts and provision's binary.
	remoteBin, err := b.remoteBinary()
	if err != nil {
		return err
	}
	for _, h := range []e2e.Host{w.Hub, w.OpenBIS} {
		if err := h.WriteFile(e2e.SpecPath, spec, 0o644); err != nil {
			return err
		}
	}
	// The check the run script makes: the binary is named by its hash.
	const sumFile = "/tmp/benchssh.sha256"
	sum := strings.TrimPrefix(filepath.Base(remoteBin), "provision-")
	if err := w.Hub.WriteFile(sumFile, []byte(sum+"  "+remoteBin+"\n"), 0o644); err != nil {
		return err
	}

	for i := 0; i < runs; i++ {
		logf("run %d/%d", i+1, runs)
		// Cold first, so that the warm runs after them find the masters
		// these left (ControlPersist=60s).
		if err := b.stopMasters(ctx); err != nil {
			return err
		}
		d, err := b.plan(ctx)
		if err != nil {
			return err
		}
		cold.d = append(cold.d, d)
		if d, err = b.ansible(ctx, ansibleRun{}, tasks); err != nil {
			return err
		}
		aCold.d = append(aCold.d, d)

		if d, err = b.plan(ctx); err != nil {
			return err
		}
		warm.d = append(warm.d, d)
		if d, err = b.ansible(ctx, ansibleRun{}, tasks); err != nil {
			return err
		}
		aWarm.d = append(aWarm.d, d)
		if d, err = b.ansible(ctx, ansibleRun{pipelining: true}, tasks); err != nil {
			return err
		}
		aPipe.d = append(aPipe.d, d)
		if i < facts {
			if d, err = b.ansible(ctx, ansibleRun{facts: true}, tasks); err != nil {
				return err
			}
			aFacts.d = append(aFacts.d, d)
		}

		if d, err = b.sshTrue(ctx); err != nil {
			return err
		}
		sshTrue.d = append(sshTrue.d, d)
		for _, l := range []struct {
			h    e2e.Host
			name string
			s    *sample
		}{{w.Hub, e2e.WorldHub, hubLocal}, {w.OpenBIS, e2e.WorldOpenBIS, obLocal}} {
			r, err := l.h.Run(ctx, remoteBin, "plan", "--host", l.name, e2e.SpecPath)
			if err != nil {
				return err
			}
			if r.Code != 0 {
				return fmt.Errorf("local plan on %s:\n%s", l.name, r)
			}
			l.s.d = append(l.s.d, r.Took)
		}
		// Every run over SSH checks the host's cached binary against the
		// admin binary's SHA-256, which the admin's provision computes.
		d, err = hashFile(bin)
		if err != nil {
			return err
		}
		hashAdmin.d = append(hashAdmin.d, d)
		r, err := w.Hub.Run(ctx, "sha256sum", "-c", "--status", sumFile)
		if err != nil {
			return err
		}
		if r.Code != 0 {
			return fmt.Errorf("sha256sum on the JupyterHub host:\n%s", r)
		}
		hashHost.d = append(hashHost.d, r.Took)
		// The container's plan asks Docker for the running container's
		// filesystem changes (to warn of work a restart would lose).
		r, err = w.Hub.Run(ctx, "curl", "-sf", "-o", "/dev/null", "--unix-socket", "/run/docker.sock", "http://docker/v1.41/containers/jupyterhub-openbis/changes")
		if err != nil {
			return err
		}
		if r.Code != 0 {
			return fmt.Errorf("docker's changes of the container:\n%s", r)
		}
		changes.d = append(changes.d, r.Took)
	}

	cpu, _ := os.ReadFile("/proc/cpuinfo")
	model := "unknown CPU"
	for _, l := range strings.Split(string(cpu), "\n") {
		if strings.HasPrefix(l, "model name") {
			_, model, _ = strings.Cut(l, ": ")
			break
		}
	}
	version := exec.Command("ansible-playbook", "--version")
	version.Env = append(os.Environ(), b.env...) // not even this may write ~/.ansible
	av, _ := version.Output()
	ansibleVersion, _, _ := strings.Cut(string(av), "\n")
	fmt.Printf("\nMeasured %s on %s, %d cores (%s): two Debian 12 fresh servers (systemd-nspawn), Docker 20.10, firewalld 1.3, "+
		"OpenSSH 9.2 from an admin namespace on another network; %s.\n\n",
		time.Now().UTC().Format("2006-01-02"), strings.TrimSpace(model), runtime.NumCPU(), runtime.GOARCH, strings.TrimSpace(ansibleVersion))
	fmt.Printf("The playbook ran %d tasks on jupyterhub.test and %d on openbis.test, all ok, changed=0.\n\n", tasks[e2e.WorldHub], tasks[e2e.WorldOpenBIS])
	fmt.Println("| measure | median | min–max | runs |")
	fmt.Println("| --- | --- | --- | --- |")
	for _, s := range []*sample{warm, cold, aWarm, aPipe, aFacts, aCold, sshTrue, hashAdmin, hashHost, hubLocal, changes, obLocal} {
		if s == aFacts && facts == 0 {
			continue
		}
		fmt.Println(s.row())
	}
	fmt.Println()
	if len(warm.d) > 0 && len(aWarm.d) > 0 {
		fmt.Printf("Warm medians: Ansible / provision = %.1f (pipelining: %.1f).\n",
			median(aWarm.d).Seconds()/median(warm.d).Seconds(), median(aPipe.d).Seconds()/median(warm.d).Seconds())
	}
	return nil
}

// hashFile times the SHA-256 of the file at path, as provision's runner
// computes it for its own binary.
func hashFile(path string) (time.Duration, error) {
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	if len(d)%2 == 0 {
		return (d[len(d)/2-1] + d[len(d)/2]) / 2
	}
	return d[len(d)/2]
}

// plan runs `provision plan --all` from the admin's namespace and fails
// unless it exits 0 (both hosts converged).
func (b *bench) plan(ctx context.Context) (time.Duration, error) {
	r, err := b.adm.Provision(ctx, "plan", "--all", b.spec)
	if err != nil {
		return 0, err
	}
	if r.Code != 0 {
		return 0, fmt.Errorf("plan --all of the converged deployment did not exit 0:\n%s", r)
	}
	return r.Took, nil
}

// sshTrue runs `true` on the JupyterHub host through the master provision
// left, with provision's own ssh options.
func (b *bench) sshTrue(ctx context.Context) (time.Duration, error) {
	cmd := b.adm.SSH(ctx, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ControlMaster=auto",
		"-o", "ControlPath="+b.adm.ControlDir()+"/%C", "-o", "ControlPersist=60s", "-T", "-x", "--", e2e.WorldHub, "true")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("ssh %s true: %w: %s", e2e.WorldHub, err, out)
	}
	return time.Since(start), nil
}

// remoteBinary is the provision binary the admin's provision copied to the
// hosts (the same on both).
func (b *bench) remoteBinary() (string, error) {
	const dir = "/var/lib/provision/bin"
	entries, err := os.ReadDir(b.w.Hub.Path(dir))
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "provision-") {
			return dir + "/" + e.Name(), nil
		}
	}
	return "", fmt.Errorf("no provision binary in %s on the JupyterHub host", dir)
}

// stopMasters stops the ssh masters in the admin's control directory,
// provision's and Ansible's, and waits until they are gone.
func (b *bench) stopMasters(ctx context.Context) error {
	dir := b.adm.ControlDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		sock := filepath.Join(dir, e.Name())
		// -O talks to the socket only; the destination is unused.
		out, err := exec.CommandContext(ctx, "ssh", "-F", b.adm.ConfigPath(), "-S", sock, "-O", "exit", "benchssh-master").CombinedOutput()
		if err != nil {
			// No master answers: a stale socket.
			if rerr := os.Remove(sock); rerr != nil && !os.IsNotExist(rerr) {
				return fmt.Errorf("stop the ssh master at %s: %v: %s", sock, err, out)
			}
			continue
		}
		for i := 0; ; i++ {
			if _, err := os.Stat(sock); os.IsNotExist(err) {
				break
			}
			if i == 100 {
				return fmt.Errorf("the ssh master at %s did not exit", sock)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// ansibleRun is one variant of the playbook's run.
type ansibleRun struct {
	pipelining, facts bool
}

// setupAnsible writes the inventory, ansible.cfg and the expected state
// read from the converged hosts into the run's directory, and sets
// Ansible's environment so that it keeps its files there.
func (b *bench) setupAnsible(ctx context.Context) error {
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		return errors.New("ansible-playbook is missing: apt-get install ansible (testenv/bench-ssh.sh does)")
	}
	home := filepath.Join(b.dir, "ansible")
	if err := os.MkdirAll(filepath.Join(home, "tmp"), 0o700); err != nil {
		return err
	}
	inventory := fmt.Sprintf(`# benchssh: the two fresh servers, reached as provision reaches them.
[jupyterhub]
%s

[openbis]
%s

[all:vars]
ansible_user=root
ansible_python_interpreter=/usr/bin/python3
ansible_ssh_common_args='-F %s'
`, e2e.WorldHub, e2e.WorldOpenBIS, b.adm.ConfigPath())
	cfg := "# benchssh: Ansible's defaults, but for where it keeps its files.\n[defaults]\n"
	files := map[string]string{"inventory": inventory, "ansible.cfg": cfg}
	vars, err := b.expected(ctx)
	if err != nil {
		return err
	}
	j, err := json.MarshalIndent(vars, "", "  ")
	if err != nil {
		return err
	}
	files["expected.json"] = string(j)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(home, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	b.env = []string{
		"ANSIBLE_CONFIG=" + filepath.Join(home, "ansible.cfg"),
		"ANSIBLE_HOME=" + home,
		"ANSIBLE_LOCAL_TEMP=" + filepath.Join(home, "tmp"),
		"ANSIBLE_SSH_CONTROL_PATH_DIR=" + b.adm.ControlDir(),
		"ANSIBLE_HOST_KEY_CHECKING=True",
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_RETRY_FILES_ENABLED=False",
		"ANSIBLE_INVENTORY=" + filepath.Join(home, "inventory"),
		"HOME=" + home,
	}
	return nil
}

// expected is what provision wrote on the converged hosts, as the
// playbook's variables: an Ansible user would have these files in the
// playbook's repository.
func (b *bench) expected(ctx context.Context) (map[string]any, error) {
	v := map[string]any{}
	var err error
	read := func(h e2e.Host, name, path string) {
		if err == nil {
			v[name], err = h.ReadFile(path)
		}
	}
	read(b.w.Hub, "start_script_content", "/usr/local/bin/jupyterhub-openbis-start.sh")
	read(b.w.Hub, "unit_content", "/etc/systemd/system/jupyterhub-openbis.service")
	if err != nil {
		return nil, fmt.Errorf("read what provision wrote on the JupyterHub host: %w", err)
	}
	// lines is what a firewall-cmd listing prints, a line each.
	lines := func(what string, args ...string) ([]string, error) {
		r, err := b.w.Hub.Run(ctx, append([]string{"firewall-cmd"}, args...)...)
		if err == nil && r.Code != 0 {
			err = errors.New(r.String())
		}
		if err != nil {
			return nil, fmt.Errorf("read the firewall's %s: %w", what, err)
		}
		var out []string
		for _, l := range strings.Split(r.Stdout, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
		return out, nil
	}
	rules, err := lines("rich rules", "--zone=public", "--list-rich-rules")
	if err != nil {
		return nil, err
	}
	if len(rules) == 0 {
		return nil, errors.New("the converged JupyterHub host has no rich rules in zone public")
	}
	v["rich_rules"] = rules
	// firewall-cmd prints direct rules shell-quoted, as --query-rule takes them.
	if v["direct_rules"], err = lines("direct rules", "--direct", "--get-all-rules"); err != nil {
		return nil, err
	}

	profile, err := b.w.OpenBIS.ReadFile(e2e.ELNRoot + "/etc/InstanceProfile.js")
	if err != nil {
		return nil, err
	}
	m := elnBlock.FindStringSubmatch(profile)
	if m == nil {
		return nil, fmt.Errorf("no managed block in the converged InstanceProfile.js:\n%s", profile)
	}
	// blockinfile's marker template: the line with {mark} for BEGIN and END.
	v["eln_marker"], v["eln_block"] = m[1]+"{mark}"+m[2], m[3]
	return v, nil
}

// elnBlock is the managed block provision patched into InstanceProfile.js:
// the BEGIN marker line around "BEGIN", and the lines between the markers.
var elnBlock = regexp.MustCompile(`(?m)^([ \t]*// )BEGIN( .*)\n((?s:.*?))\n[ \t]*// END `)

var recap = regexp.MustCompile(`(?m)^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)`)

// ansible runs the playbook in --check --diff mode from the admin's
// namespace and fails unless both hosts report changed=0, nothing failed
// or unreachable. It records each host's ok count in tasks.
func (b *bench) ansible(ctx context.Context, v ansibleRun, tasks map[string]int) (time.Duration, error) {
	home := filepath.Join(b.dir, "ansible")
	args := []string{"ansible-playbook", "--check", "--diff", "-e", "@" + filepath.Join(home, "expected.json"),
		"-e", "gather=" + strconv.FormatBool(v.facts), filepath.Join(b.repo, "testenv/ansible/deployment.yml")}
	cmd := b.adm.Command(ctx, args...)
	cmd.Env = append(cmd.Env, b.env...)
	cmd.Env = append(cmd.Env, "ANSIBLE_PIPELINING="+strconv.FormatBool(v.pipelining))
	cmd.Dir = home
	// A file, not a pipe: ssh's masters keep the standard streams they
	// were started with open for ControlPersist.
	out, err := os.CreateTemp(b.dir, "ansible-out-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	text, _ := os.ReadFile(out.Name())
	if err != nil {
		return 0, fmt.Errorf("ansible-playbook (%+v): %w\n%s", v, err, text)
	}
	hosts := recap.FindAllStringSubmatch(string(text), -1)
	if len(hosts) != 2 {
		return 0, fmt.Errorf("ansible-playbook (%+v): want a recap of two hosts:\n%s", v, text)
	}
	for _, h := range hosts {
		if h[3] != "0" || h[4] != "0" || h[5] != "0" {
			return 0, fmt.Errorf("ansible-playbook (%+v) on the converged deployment: %s changed=%s unreachable=%s failed=%s:\n%s", v, h[1], h[3], h[4], h[5], text)
		}
		n, _ := strconv.Atoi(h[2])
		if !v.facts {
			tasks[h[1]] = n
		}
	}
	return took, nil
}

// hold prints how to run the playbook and provision by hand in the
// admin's namespace and waits until interrupted.
func (b *bench) hold(ctx context.Context) error {
	home := filepath.Join(b.dir, "ansible")
	var env strings.Builder
	for _, kv := range b.env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&env, "export %s=%q\n", k, v)
	}
	script := filepath.Join(b.dir, "env.sh")
	if err := os.WriteFile(script, []byte(env.String()), 0o600); err != nil {
		return err
	}
	ns := strings.Fields(b.adm.Command(ctx, "true").String())
	logf("holding; in another shell:\n  . %s\n  cd %s\n  %s ansible-playbook --check --diff -e @%s/expected.json %s/testenv/ansible/deployment.yml\n  %s %s plan --all --ssh-config %s --ssh-option ControlPath=%s/%%C %s\n^C ends it.",
		script, home, strings.Join(ns[:len(ns)-1], " "), home, b.repo, strings.Join(ns[:len(ns)-1], " "), b.adm.Bin, b.adm.ConfigPath(), b.adm.ControlDir(), b.spec)
	<-ctx.Done()
	return nil
}
