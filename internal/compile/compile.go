// Package compile turns one host block of a spec into the resources that
// make it, in dependency order, with the deployment described once
// (internal/deploy) for every executor to read.
package compile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openbis/provision/internal/deploy"
	"github.com/openbis/provision/internal/engine"
	"github.com/openbis/provision/internal/spec"

	"github.com/openbis/provision/executors/docker"
	"github.com/openbis/provision/executors/elnprofile"
	"github.com/openbis/provision/executors/file"
	"github.com/openbis/provision/executors/firewalld"
	"github.com/openbis/provision/executors/systemd"
	"github.com/openbis/provision/executors/tlscert"
	"github.com/openbis/provision/templates"
)

// Target says how to reach the host's daemons; the zero value is the
// machine provision runs on.
type Target struct {
	DockerHost string             // "" = DOCKER_HOST or the default socket
	Bus        string             // system D-Bus address; "" = DBUS_SYSTEM_BUS_ADDRESS or the default
	Refresh    bool               // ask registries whether pulled tags moved
	Resolver   firewalld.Resolver // resolves users_from and allow_from names; nil = the system's
	Dial       tlscert.Dialer     // reaches openBIS for the cross-host check; nil = the system's
	Now        func() time.Time
}

// Compiled is a host's resources, ready to plan.
type Compiled struct {
	Host     string
	Nodes    []engine.Node
	Deleters map[string]engine.Deleter
	// Warnings are host checks that passed with reservations.
	Warnings []string

	errs    []error // host checks that failed, reported together
	daemon  *docker.Daemon
	docker  *engine.Daemon // the Docker daemon, as the engine reports it
	bus     *engine.Daemon // the system D-Bus, likewise
	fw      *firewalld.Conn
	closers []io.Closer // connections the resources share
}

// Close closes the daemon connections the resources share; call it once
// the plan is applied or dropped.
func (c *Compiled) Close() error {
	var errs []error
	for _, cl := range c.closers {
		errs = append(errs, cl.Close())
	}
	return errors.Join(errs...)
}

// Host turns the host block named host into resources in dependency
// order. Checks that need the host but change nothing (certificates)
// happen here, before any plan, so a broken host fails early; the error
// is then a *CheckError carrying the warnings found so far.
func Host(ctx context.Context, s *spec.Spec, host string, t Target) (*Compiled, error) {
	h := s.Host(host)
	if h == nil {
		return nil, fmt.Errorf("no host block for %q in the spec (hosts: %s); pick one with --host NAME", host, spec.QuoteList(s.HostNames()))
	}
	if t.Now == nil {
		t.Now = time.Now
	}
	// The run's connections, shared by the resources and by the deleters
	// of what left the spec, so both reach the same target.
	daemon := docker.NewDaemon(t.DockerHost)
	fw := firewalld.NewConn(t.Bus)
	c := &Compiled{Host: host, daemon: daemon, fw: fw, closers: []io.Closer{daemon, fw},
		docker: dockerDaemon(t.DockerHost), bus: busDaemon(t.Bus)}
	c.Deleters = map[string]engine.Deleter{
		file.Kind:            file.FromRecord,
		elnprofile.Kind:      elnprofile.FromRecord,
		docker.KindImage:     func(r engine.Record) (engine.Resource, error) { return docker.FromRecord(r, daemon) },
		docker.KindContainer: func(r engine.Record) (engine.Resource, error) { return docker.FromRecord(r, daemon) },
		firewalld.KindRule:   func(r engine.Record) (engine.Resource, error) { return firewalld.FromRecord(r, fw) },
		firewalld.KindDirect: func(r engine.Record) (engine.Resource, error) { return firewalld.FromRecord(r, fw) },
		systemd.UnitKind:     func(r engine.Record) (engine.Resource, error) { return systemd.FromRecord(r, t.Bus, "") },
	}
	dep := s.Deployment

	if j := h.JupyterHub; j != nil {
		hub := Container(s, j)
		// The firewall comes first: docker registers its zone with a
		// running firewalld when it starts.
		if f := h.Firewall; f != nil {
			if err := c.firewall(ctx, f, hub, t); err != nil {
				c.errs = append(c.errs, err)
			}
		}
		if err := c.jupyterhub(ctx, s, j, hub, t); err != nil {
			c.errs = append(c.errs, err)
		}
	}
	if e := h.ELNProfile; e != nil {
		var hubC *deploy.Container
		if h := s.Host(dep.JupyterHubHost); h != nil && h.JupyterHub != nil {
			hubC = Container(s, h.JupyterHub)
		}
		integration, hub := Endpoints(dep.JupyterHubHost, hubC, dep)
		r, err := elnprofile.New(elnprofile.Config{Path: e.Path, IntegrationEndpoint: integration, JupyterEndpoint: hub})
		if err != nil {
			return nil, c.fail(err)
		}
		c.add(r)
		// Both URLs come from the JupyterHub host's own container
		// description, so they agree with it by construction; what can
		// still be wrong is the name itself.
		if w := resolves(ctx, dep.JupyterHubHost, t.Resolver); w != "" {
			c.Warnings = append(c.Warnings, w)
		}
	}
	for _, f := range h.Files {
		r, err := file.New(file.Config{
			Address: "file." + f.Name, Path: f.Path, Content: []byte(f.Content),
			Mode: f.Mode, Owner: f.Owner, Group: f.Group, Sensitive: f.Sensitive, SensitivePath: f.SensitivePath,
		})
		if err != nil {
			return nil, c.fail(fmt.Errorf("file %s: %w", f.Name, err))
		}
		c.add(r)
	}
	if len(c.errs) > 0 {
		return nil, c.fail(errors.Join(c.errs...))
	}
	return c, nil
}

// CheckError is a host block that failed to compile or its host checks,
// with the warnings found on the way ("certificate expires in 10 days"),
// which are worth reading with the error.
type CheckError struct {
	Err      error
	Warnings []string
}

func (e *CheckError) Error() string { return e.Err.Error() }
func (e *CheckError) Unwrap() error { return e.Err }

// fail drops c and returns err with c's warnings, as a *CheckError when
// there are any.
func (c *Compiled) fail(err error) error {
	c.Close()
	if len(c.Warnings) == 0 {
		return err
	}
	return &CheckError{Err: err, Warnings: c.Warnings}
}

// add appends r; deps are the addresses whose pending change restarts it.
func (c *Compiled) add(r engine.Resource, deps ...string) {
	c.Nodes = append(c.Nodes, engine.Node{Resource: r, Deps: deps, Daemons: c.daemonsOf(r)})
}

// firewall admits the ELN's real callers, the users' browsers (see "Who
// calls whom" in the README), to the hub port and the communication port,
// in a way that holds for Docker-published ports (see executors/firewalld):
// a rich rule for each, raw PREROUTING guards before Docker's DNAT where a
// port is restricted to some sources, and a guard for the ports published
// on loopback.
func (c *Compiled) firewall(ctx context.Context, fw *spec.Firewall, hub *deploy.Container, t Target) error {
	svc, err := systemd.NewService(systemd.ServiceConfig{Bus: t.Bus, Name: "firewalld.service", Package: "firewalld"})
	if err != nil {
		return err
	}
	c.add(svc)
	users, err := resolve(ctx, fw.UsersFrom, t.Resolver)
	if err != nil {
		return fmt.Errorf("firewall: users_from: %w", err)
	}
	comm := users
	if len(fw.AllowFrom) > 0 {
		if comm, err = resolve(ctx, fw.AllowFrom, t.Resolver); err != nil {
			return fmt.Errorf("firewall: allow_from: %w", err)
		}
		if !covers(comm, users) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("firewall: allow_from admits only %s to the communication port %d, but the ELN's users' browsers (%s) call it to create notebooks: they will not be able to. Leave allow_from out, or add the users' networks to it.",
				sourceList(comm), hub.Published(deploy.IntegrationPort), sourceList(users)))
		}
	}
	for _, p := range []struct {
		base    string
		port    int
		sources []netip.Prefix
	}{
		{"hub", hub.Published(deploy.HubPort), users},
		{"comm", hub.Published(deploy.IntegrationPort), comm},
	} {
		if err := c.admit(fmt.Sprintf("%s_%d", p.base, p.port), p.port, fw.Zone, p.sources, svc.Address()); err != nil {
			return err
		}
	}
	lo, err := firewalld.LoopbackGuard("loopback_guard", c.fw)
	if err != nil {
		return err
	}
	c.add(lo, svc.Address())
	return nil
}

// admit opens port to sources (nil: anywhere) and to no one else.
func (c *Compiled) admit(base string, port int, zone string, sources []netip.Prefix, after string) error {
	if sources == nil {
		r, err := firewalld.NewRule(firewalld.RuleConfig{Name: base, Bus: c.fw.Bus(), Conn: c.fw, Zone: zone, Port: port})
		if err != nil {
			return err
		}
		c.add(r, after)
		return nil
	}
	rules, err := firewalld.RulesFor(base, c.fw, zone, sources, port, "tcp")
	if err != nil {
		return err
	}
	for _, r := range rules {
		c.add(r, after)
	}
	guards, err := firewalld.PortGuard(base, c.fw, port, "tcp", sources)
	if err != nil {
		return err
	}
	for _, g := range guards {
		c.add(g, after)
	}
	return nil
}

// resolves warns when the JupyterHub host's name does not resolve here:
// the ELN sends users' browsers to it, and they resolve it the same way.
func resolves(ctx context.Context, name string, r firewalld.Resolver) string {
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := r.LookupNetIP(ctx, "ip", name); err != nil {
		return fmt.Sprintf("the ELN will send users' browsers to %s, which does not resolve from this host (%v): check its DNS entry", name, err)
	}
	return ""
}

// resolve turns source entries into prefixes; no entries means anywhere
// (nil).
func resolve(ctx context.Context, entries []string, r firewalld.Resolver) ([]netip.Prefix, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	return firewalld.Resolve(ctx, entries, r)
}

// covers reports whether every address in want (nil: anywhere) is in have.
func covers(have, want []netip.Prefix) bool {
	if have == nil {
		return true
	}
	if want == nil {
		return false
	}
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h netip.Prefix) bool { return h.Bits() <= w.Bits() && h.Contains(w.Addr()) }) {
			return false
		}
	}
	return true
}

func sourceList(ps []netip.Prefix) string {
	if ps == nil {
		return "anywhere"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = firewalld.SourceString(p)
	}
	return strings.Join(s, ", ")
}

// Endpoints are the two URLs the ELN's InstanceProfile.js carries, derived
// from the deployment: the browser POSTs to the integration service (no
// path) and opens the hub (ending in "/"; no port when it is 443).
// They come from the ports the container publishes, the description the
// JupyterHub host converges to; without a jupyterhub block anywhere, from
// the deployment's values.
func Endpoints(host string, c *deploy.Container, dep spec.Deployment) (integration, hub string) {
	comm, hubPort := dep.CommunicationPort, dep.HubPort
	if c != nil {
		comm, hubPort = c.Published(deploy.IntegrationPort), c.Published(deploy.HubPort)
	}
	integration = fmt.Sprintf("https://%s:%d", host, comm)
	hub = fmt.Sprintf("https://%s/", host)
	if hubPort != 443 {
		hub = fmt.Sprintf("https://%s:%d/", host, hubPort)
	}
	return integration, hub
}

func (c *Compiled) jupyterhub(ctx context.Context, s *spec.Spec, j *spec.JupyterHub, hub *deploy.Container, t Target) error {
	if w := tlscert.Reachable(ctx, j.OpenBISURL, 3*time.Second, t.Dial); w != "" {
		if j.OpenBISURLSensitive {
			w = redactURL(w, j.OpenBISURL)
		}
		c.Warnings = append(c.Warnings, w)
	}
	if !j.PersistHome {
		c.Warnings = append(c.Warnings, "persist_home = false: users' work under /home lives in the container, and every restart of "+j.Unit+" (upgrades, reboots, crashes) loses it")
	}
	if j.Certificates != "" {
		warns, err := tlscert.Check(path.Join(j.Certificates, j.CertificateCrt), path.Join(j.Certificates, j.CertificateKey), s.Deployment.JupyterHubHost, t.Now())
		if err != nil {
			// Reported with the other host checks; the resources still
			// compile so that every problem shows in one run.
			c.errs = append(c.errs, fmt.Errorf("certificates: %w", err))
		}
		c.Warnings = append(c.Warnings, warns...)
	}
	dockerd, err := systemd.NewService(systemd.ServiceConfig{Bus: t.Bus, Name: "docker.service", Package: "docker.io"})
	if err != nil {
		return err
	}
	c.add(dockerd)

	ic := docker.ImageConfig{
		Host: t.DockerHost, Daemon: c.daemon, Ref: j.Image.Ref, Load: j.Image.Load, Pull: j.Image.Pull,
		Keep: j.Image.Keep, Deployment: s.Deployment.Name, Refresh: t.Refresh,
	}
	if ic.Keep == 0 {
		ic.Keep = -1 // the spec's 0 means none; the executor's 0 means its default
	}
	if b := j.Image.Build; b != nil {
		ic.Build = &docker.BuildRecipe{From: b.From, PythonPackages: b.PythonPackages, RPackages: b.RPackages, ExtraLines: b.ExtraLines}
	}
	if a := j.Image.Auth; a != nil {
		ic.Auth = &docker.Auth{Username: a.Username, Password: a.Password}
	}
	image, err := docker.NewImage(ic)
	if err != nil {
		return err
	}
	c.add(image, dockerd.Address())

	container, err := docker.NewContainer(docker.ContainerConfig{Host: t.DockerHost, Daemon: c.daemon, Container: *hub})
	if err != nil {
		return err
	}
	// Before the start script: a new script already names the new home,
	// and any later start of the unit would replace the container whose
	// layer still holds users' work, so that work is copied out first.
	c.add(container, dockerd.Address(), image.Address())

	const scriptAddr = "file.start_script"
	script, err := templates.StartScript{Address: scriptAddr, Container: *hub}.Render()
	if err != nil {
		return err
	}
	// A script that holds a secret (a password in OPENBIS_URL) is root's
	// only; the unit runs it as root.
	mode, sensitive := fs.FileMode(0o755), hasSensitive(hub.Env)
	if sensitive {
		mode = 0o700
	}
	startScript, err := file.New(file.Config{Address: scriptAddr, Path: j.StartScript, Content: script, Mode: mode, Owner: "root", Group: "root",
		Sensitive: sensitive})
	if err != nil {
		return fmt.Errorf("start script: %w", err)
	}
	c.add(startScript)

	const unitAddr = "systemd_unit.jupyterhub"
	unitFile, err := systemd.RenderUnit(systemd.UnitParams{Address: unitAddr, StartScript: j.StartScript, ContainerName: hub.Name})
	if err != nil {
		return err
	}
	unit, err := systemd.NewUnit(systemd.UnitConfig{
		Address: unitAddr, Bus: t.Bus, Name: j.Unit, Content: unitFile,
		StartScript: j.StartScript, StartScriptAddress: startScript.Address(), ContainerName: hub.Name,
		HealthURL: healthURL(j, hub), HealthTimeout: j.HealthTimeout,
	})
	if err != nil {
		return err
	}
	c.add(unit, dockerd.Address(), image.Address(), startScript.Address(), container.Address())
	return nil
}

// Container is the one description of j's container, which the start
// script, the container executor, the unit and the firewall all read.
func Container(s *spec.Spec, j *spec.JupyterHub) *deploy.Container {
	c := &deploy.Container{
		Name:       j.ContainerName,
		Deployment: s.Deployment.Name,
		Image:      j.Image.Ref,
		Command:    deploy.Command,
		Env: []deploy.Env{
			{Name: "OPENBIS_URL", Value: j.OpenBISURL, Sensitive: j.OpenBISURLSensitive},
			{Name: "JUPYTERHUB_INTEGRATION_SERVICE_PORT", Value: strconv.Itoa(deploy.IntegrationPort)},
			{Name: "JUPYTERHUB_PORT", Value: strconv.Itoa(deploy.HubPort)},
			{Name: "CERTIFICATE_KEY", Value: deploy.CertDir + "/" + j.CertificateKey},
			{Name: "CERTIFICATE_CRT", Value: deploy.CertDir + "/" + j.CertificateCrt},
		},
		// The hub and the communication port on every address, for the
		// users' browsers (the firewall admits whom the spec says), and
		// the two API ports where the spec says (loopback by default:
		// nothing outside needs them).
		Ports: []deploy.Port{
			{HostPort: s.Deployment.HubPort, ContainerPort: deploy.HubPort},
			{HostIP: j.HubAPIAddress, HostPort: deploy.HubAPIPort, ContainerPort: deploy.HubAPIPort},
			{HostIP: j.ProxyAPIAddress, HostPort: deploy.ProxyAPIPort, ContainerPort: deploy.ProxyAPIPort},
			{HostPort: s.Deployment.CommunicationPort, ContainerPort: deploy.IntegrationPort},
		},
	}
	switch {
	case j.Home != "":
		c.Mounts = append(c.Mounts, deploy.Mount{Source: j.Home, Target: deploy.HomeDir})
	case j.PersistHome:
		// A named volume: Docker seeds it from the image's /home on first
		// use, and it survives every docker rm of the container.
		c.Mounts = append(c.Mounts, deploy.Mount{Source: HomeVolume(j), Target: deploy.HomeDir, Volume: true})
	}
	if j.Certificates != "" {
		c.Mounts = append(c.Mounts, deploy.Mount{Source: j.Certificates, Target: deploy.CertDir})
	}
	return c
}

// healthURL is the spec's, or the hub's /hub/api on the port the container
// publishes it on (it answers unauthenticated on every JupyterHub version).
func healthURL(j *spec.JupyterHub, hub *deploy.Container) string {
	if j.HealthURL != "" {
		return j.HealthURL
	}
	return fmt.Sprintf("https://127.0.0.1:%d/hub/api", hub.Published(deploy.HubPort))
}

// HomeVolume names the volume that keeps users' work when the spec names
// no home directory.
func HomeVolume(j *spec.JupyterHub) string { return j.ContainerName + "-home" }

// redactURL takes a sensitive URL, and its parts a message may quote
// (the host, the user info), out of msg.
func redactURL(msg, raw string) string {
	parts := []string{raw}
	if u, err := url.Parse(raw); err == nil {
		parts = append(parts, u.Redacted(), u.Host, u.Hostname())
		if u.User != nil {
			parts = append(parts, u.User.String(), u.User.Username())
		}
	}
	for _, p := range parts {
		if p != "" {
			msg = strings.ReplaceAll(msg, p, "(sensitive)")
		}
	}
	return msg
}

func hasSensitive(env []deploy.Env) bool {
	for _, e := range env {
		if e.Sensitive {
			return true
		}
	}
	return false
}
