package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/openbis/provision/internal/deploy"
	"github.com/openbis/provision/internal/engine"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/openbis/provision/executors"
)

// KindContainer is the address prefix and record kind of container
// resources.
const KindContainer = "docker_container"

// ContainerConfig is the desired JupyterHub container.
type ContainerConfig struct {
	// Resource is the spec's block label; the address is
	// "docker_container."+Resource. Default "jupyterhub".
	Resource string
	// Host is the Docker daemon address; empty means DOCKER_HOST or the
	// default socket.
	Host string
	// Daemon, when set, is the client to use (its host is Host).
	Daemon *Daemon
	// Container is the deployment's description of it.
	Container deploy.Container
}

// Container is a docker_container resource: exactly one container of the
// deployment, running the desired image with the desired env, ports and
// mounts.
//
// The container is not run by this resource. A systemd unit runs the start
// script, which runs the container; the engine restarts that unit when
// this resource (or the image) has a change. So Plan reports drift, and
// Apply only removes stopped containers of this deployment other than the
// current one, then returns: the unit's restart brings the container to
// the desired state.
type Container struct {
	cfg    ContainerConfig
	d      *Daemon
	absent bool
	// keptHome is where the removed container kept users' work, which
	// stays (absent only).
	keptHome string
}

// NewContainer validates cfg and returns the resource.
func NewContainer(cfg ContainerConfig) (*Container, error) {
	if cfg.Resource == "" {
		cfg.Resource = "jupyterhub"
	}
	addr := KindContainer + "." + cfg.Resource
	if err := cfg.Container.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return &Container{cfg: cfg, d: daemonFor(cfg.Daemon, cfg.Host)}, nil
}

type containerRecord struct {
	Name       string `json:"name"`
	Deployment string `json:"deployment"`
	// Home says where users' work is kept, for the removal's plan.
	Home string `json:"home,omitempty"`
}

// ContainerFromRecord builds a resource whose desired state is "absent":
// its plan deletes the container of that name if it carries the
// deployment's label.
func ContainerFromRecord(rec engine.Record, d *Daemon) (engine.Resource, error) {
	var r containerRecord
	if err := json.Unmarshal(rec.Data, &r); err != nil {
		return nil, fmt.Errorf("%s: read state record: %w", rec.Address, err)
	}
	cfg := ContainerConfig{Resource: strings.TrimPrefix(rec.Address, KindContainer+"."), Host: d.host,
		Container: deploy.Container{Name: r.Name, Deployment: r.Deployment}}
	return &Container{cfg: cfg, d: d, absent: true, keptHome: r.Home}, nil
}

// Address implements engine.Resource.
func (c *Container) Address() string { return KindContainer + "." + c.cfg.Resource }

// Record implements engine.Resource.
func (c *Container) Record() *engine.Record {
	if c.absent {
		return nil
	}
	r := containerRecord{Name: c.cfg.Container.Name, Deployment: c.cfg.Container.Deployment}
	if m, ok := c.cfg.Container.Home(); ok {
		r.Home = m.String()
	}
	b, _ := json.Marshal(r)
	return &engine.Record{Address: c.Address(), Kind: KindContainer, Data: b}
}

type containerPlan struct {
	// Current is the ID of the container named Name, if any.
	Current string `json:"current,omitempty"`
	Delete  bool   `json:"delete,omitempty"`
	// Home is users' work to copy into the persistent home first.
	Home *homeCopy `json:"home,omitempty"`
}

// Plan compares the container named Name with the spec: running, image
// ID, the env keys the spec declares (images add env of their own), the
// published ports and the bind mounts. Another container holding one of
// the host ports is an error naming it. Changes made inside the running
// container are summarised as warnings: a restart loses them.
func (c *Container) Plan(ctx context.Context) (*engine.Change, error) {
	cli, err := c.d.client(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Address(), err)
	}
	ch := &engine.Change{Address: c.Address()}
	ins, err := cli.ContainerInspect(ctx, c.cfg.Container.Name)
	exists := err == nil
	if err != nil && !client.IsErrNotFound(err) {
		return nil, fmt.Errorf("%s: inspect container %s: %w", c.Address(), c.cfg.Container.Name, c.d.wrap(err))
	}
	var p containerPlan
	if exists {
		p.Current = ins.ID
	}
	if c.absent {
		if exists && ins.Config != nil && ins.Config.Labels[LabelDeployment] == c.cfg.Container.Deployment {
			// Never delete users' work: a container whose /home is its own
			// layer keeps the only copy.
			if _, mounted := currentHome(ins.Mounts); !mounted {
				changes, err := layerChanges(ctx, cli, ins)
				if err != nil {
					return nil, fmt.Errorf("%s: read filesystem changes of %s: %w", c.Address(), c.cfg.Container.Name, c.d.wrap(err))
				}
				if n := layerHome(changes); n > 0 {
					return nil, fmt.Errorf("%s: container %s is to be removed, but %d paths under /home (users' work) live only in it: copy them out first (docker cp %s:/home DIR), or keep the container in the spec", c.Address(), c.cfg.Container.Name, n, c.cfg.Container.Name)
				}
			}
			ch.Action = engine.Delete
			ch.Reasons = []string{"no longer in the spec"}
			if c.keptHome != "" {
				ch.Warnings = append(ch.Warnings, "users' work in "+c.keptHome+" stays: provision never deletes it, and a spec that adds the JupyterHub again finds it")
			}
			p.Delete = true
			ch.Data, _ = json.Marshal(p)
		}
		ch.Fingerprint = executors.Fingerprint(p.Current)
		return ch, nil
	}

	if err := c.checkPortClash(ctx, cli, p.Current); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Address(), err)
	}
	wantID := ""
	if img, err := inspectImage(ctx, cli, c.cfg.Container.Image.Written); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Address(), c.d.wrap(err))
	} else if img != nil {
		wantID = img.ID
	}

	home, hasHome := c.cfg.Container.Home()
	if !home.Volume {
		home.Source = path.Clean(home.Source)
	}
	// A new home directory is seeded from the image, as Docker seeds a new
	// volume: the guide's home holds a vagrant directory.
	seed := func() {
		p.Home = &homeCopy{Image: c.cfg.Container.Image.Written}
		ch.Reasons = append(ch.Reasons, "home directory "+home.Source+" does not exist: apply creates it, seeded from the image's /home")
	}
	if hasHome && !home.Volume && !exists {
		isNew, err := c.homeIsNew(ctx, cli, home)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Address(), err)
		}
		if isNew {
			seed()
		}
	}
	if !exists {
		ch.Action = engine.Create
		ch.Reasons = append([]string{"container " + c.cfg.Container.Name + " does not exist"}, ch.Reasons...)
		if hasHome {
			ch.Reasons = append(ch.Reasons, "users' work (/home) is kept in "+home.String())
		}
		ch.Fingerprint = executors.Fingerprint("absent", wantID, p.Home)
		ch.Data, _ = json.Marshal(p)
		return ch, nil
	}
	running := ins.State != nil && ins.State.Running
	if !running {
		status := "stopped"
		if ins.State != nil {
			status = ins.State.Status
		}
		ch.Reasons = append(ch.Reasons, "not running ("+status+")")
	}
	if wantID == "" {
		ch.Reasons = append(ch.Reasons, "image "+c.cfg.Container.Image.Written+" not present yet")
		ch.Fields = append(ch.Fields, engine.Field{Name: "image", Old: ins.Image, New: c.cfg.Container.Image.Written})
	} else if ins.Image != wantID {
		ch.Reasons = append(ch.Reasons, "runs another image than "+c.cfg.Container.Image.Written)
		ch.Fields = append(ch.Fields, engine.Field{Name: "image", Old: ins.Image, New: wantID})
	}
	var env []string
	if ins.Config != nil {
		env = ins.Config.Env
	}
	envFields := c.diffEnv(env)
	if len(envFields) > 0 {
		ch.Reasons = append(ch.Reasons, "env differs")
		ch.Fields = append(ch.Fields, envFields...)
	}
	if old, want := portSet(ins.HostConfig), c.wantPorts(); !slices.Equal(old, want) {
		ch.Reasons = append(ch.Reasons, "ports differ")
		ch.Fields = append(ch.Fields, engine.Field{Name: "ports", Old: strings.Join(old, ", "), New: strings.Join(want, ", ")})
	}
	if old, want := mountSet(ins.Mounts), c.wantMounts(); !slices.Equal(old, want) {
		ch.Reasons = append(ch.Reasons, "mounts differ")
		ch.Fields = append(ch.Fields, engine.Field{Name: "mounts", Old: strings.Join(old, ", "), New: strings.Join(want, ", ")})
	}
	// Users' work that the restart bringing the spec's home would leave
	// behind, in the container's own layer or in another home: copied
	// into the new home first, never merged into one that holds data.
	var changes []container.FilesystemChange
	cur, mountsHome := currentHome(ins.Mounts)
	if !mountsHome {
		if changes, err = layerChanges(ctx, cli, ins); err != nil {
			return nil, fmt.Errorf("%s: read filesystem changes of %s: %w", c.Address(), c.cfg.Container.Name, c.d.wrap(err))
		}
	}
	// Whether the home exists is asked only when the container does not
	// mount it yet: a converged plan does not pay for it.
	if hasHome && cur != home {
		where, n := "in "+cur.String(), -1
		if !mountsHome {
			where, n = "in the container's own layer", layerHome(changes)
		}
		isNew, err := c.homeIsNew(ctx, cli, home)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Address(), err)
		}
		switch {
		case n == 0 && isNew && !home.Volume:
			seed()
		case n == 0:
		case !isNew && copiedFrom(ctx, cli, home) == ins.ID:
			// An earlier apply copied this container's work there and
			// stopped before the restart: finish it.
			ch.Reasons = append(ch.Reasons, fmt.Sprintf("users' work under /home was copied into %s by an earlier apply; the restart brings it", home))
		case !isNew:
			back := "or remove persist_home = false"
			if mountsHome {
				back = "or point the spec at " + cur.String() + " again"
			}
			return nil, fmt.Errorf("%s: users' work under /home is %s, and the spec keeps /home in %s, which already holds data: provision copies users' work only into a new home, never over one. Copy what you need into %s by hand and remove container %s (its work is then gone from it), %s", c.Address(), where, home, home, c.cfg.Container.Name, back)
		default:
			p.Home = &homeCopy{From: ins.ID, Image: ins.Image, Paths: n}
			what := fmt.Sprintf("%d paths", n)
			if n < 0 {
				what = "all of it"
			}
			ch.Reasons = append(ch.Reasons, fmt.Sprintf("users' work under /home is %s (%s): apply copies it into the new %s before the restart", where, what, home))
		}
	}
	if !hasHome && !mountsHome {
		if n := layerHome(changes); n > 0 {
			ch.Warnings = append(ch.Warnings, fmt.Sprintf("container %s: %d paths under /home (users' work) live only in the container: the next restart loses them (persist_home = false)", c.cfg.Container.Name, n))
		}
	}
	switch {
	case len(ch.Reasons) == 0:
	case len(ch.Fields) == 0:
		ch.Action = engine.Update // only needs starting, or its home seeding
	default:
		ch.Action = engine.Replace
	}

	// The guide: one JupyterHub per server. Another running container of
	// this deployment is not this resource's to stop; say it.
	if others, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("status", "running"), filters.Arg("label", LabelDeployment+"="+c.cfg.Container.Deployment))}); err != nil {
		return nil, fmt.Errorf("%s: list containers: %w", c.Address(), c.d.wrap(err))
	} else {
		for _, o := range others {
			if o.ID != ins.ID {
				ch.Warnings = append(ch.Warnings, fmt.Sprintf("container %s of deployment %s is running besides %s; only one JupyterHub should run per server", containerName(o), c.cfg.Container.Deployment, c.cfg.Container.Name))
			}
		}
	}

	var diffSummary string
	if running {
		if changes == nil {
			if changes, err = layerChanges(ctx, cli, ins); err != nil {
				return nil, fmt.Errorf("%s: read filesystem changes of %s: %w", c.Address(), c.cfg.Container.Name, c.d.wrap(err))
			}
		}
		// /home is users' work, reported above, not an install to warn of.
		mounts := []string{deploy.HomeDir}
		for _, m := range ins.Mounts {
			mounts = append(mounts, path.Clean(m.Destination))
		}
		if diffSummary = summarizeDiff(changes, mounts); diffSummary != "" {
			ch.Warnings = append(ch.Warnings, fmt.Sprintf("container %s: %s; a restart loses them: put them in the image's build recipe", c.cfg.Container.Name, diffSummary))
		}
	}
	state := ""
	if ins.State != nil {
		state = ins.State.Status
	}
	ch.Fingerprint = executors.Fingerprint(ins.ID, state, ins.Image, wantID, env, portSet(ins.HostConfig), mountSet(ins.Mounts), diffSummary, p.Home)
	if ch.Action != engine.NoOp {
		ch.Data, _ = json.Marshal(p)
	}
	return ch, nil
}

func (c *Container) diffEnv(env []string) []engine.Field {
	have := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		have[k] = v
	}
	want := slices.Clone(c.cfg.Container.Env)
	slices.SortFunc(want, func(a, b deploy.Env) int { return strings.Compare(a.Name, b.Name) })
	var fields []engine.Field
	for _, e := range want {
		old, ok := have[e.Name]
		if ok && old == e.Value {
			continue
		}
		f := engine.Field{Name: "env." + e.Name, Old: old, New: e.Value, Sensitive: e.Sensitive}
		if !ok {
			f.Old = "(unset)"
		}
		fields = append(fields, f)
	}
	return fields
}

func portKey(hostIP string, hostPort int, cport string) string {
	if hostIP == "0.0.0.0" || hostIP == "::" {
		hostIP = ""
	}
	s := strconv.Itoa(hostPort) + "->" + cport
	if hostIP != "" {
		s = hostIP + ":" + s
	}
	return s
}

func (c *Container) wantPorts() []string {
	var s []string
	for _, p := range c.cfg.Container.Ports {
		s = append(s, portKey(p.HostIP, p.HostPort, strconv.Itoa(p.ContainerPort)+"/tcp"))
	}
	sort.Strings(s)
	return slices.Compact(s)
}

func portSet(hc *container.HostConfig) []string {
	if hc == nil {
		return nil
	}
	var s []string
	for cport, bindings := range hc.PortBindings {
		for _, b := range bindings {
			hp, _ := strconv.Atoi(b.HostPort)
			s = append(s, portKey(b.HostIP, hp, string(cport)))
		}
	}
	sort.Strings(s)
	return slices.Compact(s)
}

func (c *Container) wantMounts() []string {
	var s []string
	for _, m := range c.cfg.Container.Mounts {
		if m.Volume {
			s = append(s, "volume "+m.Source+":"+path.Clean(m.Target))
			continue
		}
		s = append(s, path.Clean(m.Source)+":"+path.Clean(m.Target))
	}
	sort.Strings(s)
	return s
}

func mountSet(ms []container.MountPoint) []string {
	var s []string
	for _, m := range ms {
		switch {
		case m.Type == "bind":
			s = append(s, path.Clean(m.Source)+":"+path.Clean(m.Destination))
		case m.Type == "volume" && m.Name != "" && !isAnonymous(m.Name):
			s = append(s, "volume "+m.Name+":"+path.Clean(m.Destination))
		}
		// Anonymous volumes the image declares are the image's business.
	}
	sort.Strings(s)
	return s
}

// checkPortClash fails when a running container other than self publishes
// one of the spec's host ports: the start script's `docker run` would fail
// on it.
func (c *Container) checkPortClash(ctx context.Context, cli *client.Client, self string) error {
	if len(c.cfg.Container.Ports) == 0 {
		return nil
	}
	list, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("status", "running"))})
	if err != nil {
		return fmt.Errorf("list containers: %w", c.d.wrap(err))
	}
	for _, other := range list {
		if other.ID == self {
			continue
		}
		for _, op := range other.Ports {
			for _, p := range c.cfg.Container.Ports {
				if int(op.PublicPort) != p.HostPort || !ipOverlap(op.IP, p.HostIP) {
					continue
				}
				return fmt.Errorf("host port %d is held by container %s (%s, image %s); stop or remove it, or change the port", p.HostPort, containerName(other), other.ID[:12], other.Image)
			}
		}
	}
	return nil
}

func ipOverlap(a, b string) bool {
	wild := func(s string) bool { return s == "" || s == "0.0.0.0" || s == "::" }
	return wild(a) || wild(b) || a == b
}

// Apply removes stopped containers of this deployment other than the
// current one and returns; it does not run the container (see Container).
// For a resource that left the spec, it removes the container.
func (c *Container) Apply(ctx context.Context, ch *engine.Change, out engine.Output) error {
	if ch == nil || ch.Action == engine.NoOp {
		return nil
	}
	var p containerPlan
	if len(ch.Data) > 0 {
		if err := json.Unmarshal(ch.Data, &p); err != nil {
			return fmt.Errorf("%s: read plan data: %w", c.Address(), err)
		}
	}
	cli, err := c.d.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Address(), err)
	}
	if h := p.Home; h != nil {
		home, _ := c.cfg.Container.Home()
		what := "the image's /home"
		if h.From != "" {
			what = "users' work under /home of container " + short(h.From)
		}
		out.Progress(c.Address(), "copying "+what+" into "+home.String()+"…")
		n, err := copyHome(ctx, cli, h.From, h.Image, home)
		if err != nil {
			// Nothing restarts: the unit comes after this resource.
			return fmt.Errorf("%s: %w", c.Address(), c.d.wrap(err))
		}
		out.Progress(c.Address(), fmt.Sprintf("copied %d files and directories into %s", n, home))
	}
	if p.Delete {
		out.Progress(c.Address(), "removing container "+c.cfg.Container.Name)
		if err := cli.ContainerRemove(ctx, p.Current, container.RemoveOptions{Force: true}); err != nil && !client.IsErrNotFound(err) {
			return fmt.Errorf("%s: remove container %s: %w", c.Address(), c.cfg.Container.Name, c.d.wrap(err))
		}
		return nil
	}
	return c.removeStopped(ctx, cli, p.Current, out)
}

func (c *Container) removeStopped(ctx context.Context, cli *client.Client, current string, out engine.Output) error {
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelDeployment+"="+c.cfg.Container.Deployment))})
	if err != nil {
		return fmt.Errorf("%s: list containers: %w", c.Address(), c.d.wrap(err))
	}
	for _, o := range list {
		name := containerName(o)
		// The container of cfg.Name belongs to the unit, whose start script
		// replaces it (and may be starting it right now).
		if o.ID == current || name == c.cfg.Container.Name || (o.State != "exited" && o.State != "created" && o.State != "dead") {
			continue
		}
		out.Progress(c.Address(), "removing stopped container "+name)
		err := cli.ContainerRemove(ctx, o.ID, container.RemoveOptions{})
		if err != nil && !client.IsErrNotFound(err) && !errdefs.IsConflict(err) {
			return fmt.Errorf("%s: remove stopped container %s: %w", c.Address(), name, err)
		}
	}
	return nil
}

// noisePrefixes are paths whose changes say nothing an admin must keep:
// runtime files, and what the hub itself writes as it runs (the system
// accounts it creates at users' first login, its own database), which it
// writes again after a restart.
var noisePrefixes = []string{"/tmp", "/run", "/var/run", "/var/log", "/var/tmp", "/var/cache", "/root/.cache", "/dev", "/proc", "/sys",
	"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/mtab",
	"/etc/passwd", "/etc/passwd-", "/etc/group", "/etc/group-", "/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-",
	"/etc/subuid", "/etc/subuid-", "/etc/subgid", "/etc/subgid-", "/var/lib/jupyterhub"}

// summarizeDiff turns a container's filesystem diff into one sentence:
// new Python, conda and R packages by name, other changes counted per
// top-level directory.
// Mount points (mounts) and directories that only changed because
// something below them did are left out.
func summarizeDiff(changes []container.FilesystemChange, mounts []string) string {
	var py, rpk, conda []string
	other := map[string]int{}
	total := 0
	pyDirs := map[string]bool{}
	ancestors := map[string]bool{}
	for _, ch := range changes {
		for d := path.Dir(ch.Path); d != "/" && d != "."; d = path.Dir(d) {
			if ancestors[d] {
				break
			}
			ancestors[d] = true
		}
	}
	for _, ch := range changes {
		p := ch.Path
		if isNoise(p) || strings.Contains(p, "/__pycache__") || strings.HasSuffix(p, ".pyc") {
			continue
		}
		if ch.Kind == container.ChangeModify && ancestors[p] {
			continue
		}
		if slices.ContainsFunc(mounts, func(m string) bool { return p == m || strings.HasPrefix(p, m+"/") }) {
			continue
		}
		total++
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		added := ch.Kind == container.ChangeAdd
		switch {
		case added && path.Base(dir) == "site-packages":
			pyDirs[dir] = true
			if n, ok := strings.CutSuffix(base, ".dist-info"); ok {
				py = append(py, n)
			} else if n, ok := strings.CutSuffix(base, ".egg-info"); ok {
				py = append(py, n)
			}
		case added && strings.HasSuffix(dir, "/lib/R/library"):
			rpk = append(rpk, base)
		case added && path.Base(dir) == "conda-meta" && strings.HasSuffix(base, ".json"):
			conda = append(conda, strings.TrimSuffix(base, ".json"))
		case strings.Contains(p, "/site-packages/") || strings.Contains(p, "/lib/R/library/") || strings.Contains(p, "/conda-meta/") || strings.Contains(p, "/pkgs/"):
			// Files of the packages counted above.
		default:
			top := "/" + strings.SplitN(strings.TrimPrefix(p, "/"), "/", 2)[0]
			other[top]++
		}
	}
	if total == 0 {
		return ""
	}
	var parts []string
	if len(py) > 0 {
		dirs := make([]string, 0, len(pyDirs))
		for d := range pyDirs {
			dirs = append(dirs, d)
		}
		sort.Strings(dirs)
		parts = append(parts, fmt.Sprintf("new Python packages under %s: %s", strings.Join(dirs, ", "), listN(py, 10)))
	}
	if len(conda) > 0 {
		parts = append(parts, "new conda packages: "+listN(conda, 10))
	}
	if len(rpk) > 0 {
		parts = append(parts, "new R packages: "+listN(rpk, 10))
	}
	if len(other) > 0 {
		tops := make([]string, 0, len(other))
		for t := range other {
			tops = append(tops, t)
		}
		sort.Strings(tops)
		var o []string
		for _, t := range tops {
			o = append(o, fmt.Sprintf("%s (%d)", t, other[t]))
		}
		parts = append(parts, "other changes under "+listN(o, 8))
	}
	return fmt.Sprintf("%d paths changed inside the running container: %s", total, strings.Join(parts, "; "))
}

// currentHome is what a container mounts at /home, if anything.
func currentHome(ms []container.MountPoint) (deploy.Mount, bool) {
	for _, m := range ms {
		if path.Clean(m.Destination) != deploy.HomeDir {
			continue
		}
		if m.Type == "volume" {
			return deploy.Mount{Source: m.Name, Target: deploy.HomeDir, Volume: true}, true
		}
		return deploy.Mount{Source: path.Clean(m.Source), Target: deploy.HomeDir}, true
	}
	return deploy.Mount{}, false
}

// homeIsNew reports whether the home m does not exist yet: only a new
// home is filled by provision, so nothing is ever written over users' work.
func (c *Container) homeIsNew(ctx context.Context, cli *client.Client, m deploy.Mount) (bool, error) {
	if m.Volume {
		_, err := cli.VolumeInspect(ctx, m.Source)
		if client.IsErrNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("inspect volume %s: %w", m.Source, c.d.wrap(err))
		}
		return false, nil
	}
	_, err := os.Lstat(m.Source)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	return false, err
}

// isAnonymous reports a volume name Docker made up (64 hex digits).
func isAnonymous(name string) bool {
	return len(name) == 64 && strings.Trim(name, "0123456789abcdef") == ""
}

func isNoise(p string) bool {
	for _, n := range noisePrefixes {
		if p == n || strings.HasPrefix(p, n+"/") {
			return true
		}
	}
	return false
}

func listN(s []string, n int) string {
	sort.Strings(s)
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(" and %d more", len(s)-n)
}

func containerName(c container.Summary) string {
	if len(c.Names) > 0 {
		return strings.TrimPrefix(c.Names[0], "/")
	}
	return c.ID[:12]
}

// Supersedes implements engine.Superseder: another container name is
// another container (the deleter removes it only if it carries the
// deployment's label). Images have no such rule: the previous image stays
// for rollback, and cleanup keeps what the spec says.
func (c *Container) Supersedes(old engine.Record) bool {
	var r containerRecord
	return json.Unmarshal(old.Data, &r) == nil && r.Name != c.cfg.Container.Name
}
