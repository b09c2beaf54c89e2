// Package compile turns one host block of a spec into the resources that
// make it, in dependency order, with the deployment described once
// (internal/deploy) for every executor to read.
package compile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
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
	Resolver   firewalld.Resolver // resolves allow_from names; nil = the system's
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
// happen here, before any plan, so a broken host fails early.
func Host(ctx context.Context, s *spec.Spec, host string, t Target) (*Compiled, error) {
	h := s.Host(host)
	if h == nil {
		return nil, fmt.Errorf("no host block for %q in the spec (hosts: %s); pick one with --host NAME", host, quoteList(s.HostNames()))
	}
	if t.Now == nil {
		t.Now = time.Now
	}
	// The run's connections, shared by the resources and by the deleters
	// of what left the spec, so both reach the same target.
	daemon := docker.NewDaemon(t.DockerHost)
	fw := firewalld.NewConn(t.Bus)
	c := &Compiled{Host: host, daemon: daemon, fw: fw, closers: []io.Closer{daemon, fw}}
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
			if err := c.firewall(ctx, dep, f, hub, t); err != nil {
				c.errs = append(c.errs, err)
			}
		}
		if err := c.jupyterhub(s, j, hub, t); err != nil {
			c.errs = append(c.errs, err)
		}
	}
	if e := h.ELNProfile; e != nil {
		r, err := elnprofile.New(elnprofile.Config{
			Path:                e.Path,
			IntegrationEndpoint: fmt.Sprintf("https://%s:%d", dep.JupyterHubHost, dep.CommunicationPort),
			JupyterEndpoint:     fmt.Sprintf("https://%s/", dep.JupyterHubHost),
		})
		if err != nil {
			return nil, err
		}
		c.add(r)
	}
	for _, f := range h.Files {
		r, err := file.New(file.Config{
			Address: "file." + f.Name, Path: f.Path, Content: []byte(f.Content),
			Mode: f.Mode, Owner: f.Owner, Group: f.Group, Sensitive: f.Sensitive,
		})
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", f.Name, err)
		}
		c.add(r)
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	return c, nil
}

// add appends r; deps are the addresses whose pending change restarts it.
func (c *Compiled) add(r engine.Resource, deps ...string) {
	c.Nodes = append(c.Nodes, engine.Node{Resource: r, Deps: deps})
}

// firewall opens the communication port to the openBIS addresses only, in
// a way that holds for Docker-published ports (see executors/firewalld):
// the guide's rich rule per address, a rich rule for the hub's port, raw
// PREROUTING guards before Docker's DNAT, and a guard for the ports
// published on loopback.
func (c *Compiled) firewall(ctx context.Context, dep spec.Deployment, fw *spec.Firewall, hub *deploy.Container, t Target) error {
	svc, err := systemd.NewService(systemd.ServiceConfig{Bus: t.Bus, Name: "firewalld.service", Package: "firewalld"})
	if err != nil {
		return err
	}
	c.add(svc)
	from := fw.AllowFrom
	if len(from) == 0 {
		from = []string{dep.OpenBISHost}
	}
	sources, err := firewalld.Resolve(ctx, from, t.Resolver)
	if err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	comm := hub.Published(deploy.IntegrationPort)
	hubPort := hub.Published(deploy.HubPort)
	base := fmt.Sprintf("openbis_%d", comm)
	conn := c.fw
	rules, err := firewalld.RulesFor(base, conn, fw.Zone, sources, comm, "tcp")
	if err != nil {
		return err
	}
	for _, r := range rules {
		c.add(r, svc.Address())
	}
	open, err := firewalld.NewRule(firewalld.RuleConfig{Name: fmt.Sprintf("jupyterhub_%d", hubPort), Bus: t.Bus, Conn: conn, Zone: fw.Zone, Port: hubPort})
	if err != nil {
		return err
	}
	c.add(open, svc.Address())
	guards, err := firewalld.PortGuard(base, conn, comm, "tcp", sources)
	if err != nil {
		return err
	}
	for _, g := range guards {
		c.add(g, svc.Address())
	}
	lo, err := firewalld.LoopbackGuard("loopback_guard", conn)
	if err != nil {
		return err
	}
	c.add(lo, svc.Address())
	return nil
}

func (c *Compiled) jupyterhub(s *spec.Spec, j *spec.JupyterHub, hub *deploy.Container, t Target) error {
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

	const scriptAddr = "file.start_script"
	script, err := templates.StartScript{Address: scriptAddr, Container: *hub}.Render()
	if err != nil {
		return err
	}
	startScript, err := file.New(file.Config{Address: scriptAddr, Path: j.StartScript, Content: script, Mode: 0o755, Owner: "root", Group: "root",
		Sensitive: hasSensitive(hub.Env)})
	if err != nil {
		return fmt.Errorf("start script: %w", err)
	}
	c.add(startScript)

	container, err := docker.NewContainer(docker.ContainerConfig{Host: t.DockerHost, Daemon: c.daemon, Container: *hub})
	if err != nil {
		return err
	}
	c.add(container, dockerd.Address(), image.Address())

	const unitAddr = "systemd_unit.jupyterhub"
	unitFile, err := systemd.RenderUnit(systemd.UnitParams{Address: unitAddr, StartScript: j.StartScript, ContainerName: hub.Name})
	if err != nil {
		return err
	}
	unit, err := systemd.NewUnit(systemd.UnitConfig{
		Address: unitAddr, Bus: t.Bus, Name: j.Unit, Content: unitFile,
		StartScript: j.StartScript, StartScriptAddress: startScript.Address(), ContainerName: hub.Name,
		HealthURL: j.HealthURL, HealthTimeout: j.HealthTimeout,
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
		// The hub on every address, the communication port for the
		// firewall to restrict, and the two API ports where the spec says
		// (loopback by default: nothing outside needs them).
		Ports: []deploy.Port{
			{HostPort: deploy.HubPort, ContainerPort: deploy.HubPort},
			{HostIP: j.HubAPIAddress, HostPort: deploy.HubAPIPort, ContainerPort: deploy.HubAPIPort},
			{HostIP: j.ProxyAPIAddress, HostPort: deploy.ProxyAPIPort, ContainerPort: deploy.ProxyAPIPort},
			{HostPort: s.Deployment.CommunicationPort, ContainerPort: deploy.IntegrationPort},
		},
	}
	if j.Home != "" {
		c.Mounts = append(c.Mounts, deploy.Mount{Source: j.Home, Target: "/home"})
	}
	if j.Certificates != "" {
		c.Mounts = append(c.Mounts, deploy.Mount{Source: j.Certificates, Target: deploy.CertDir})
	}
	return c
}

func hasSensitive(env []deploy.Env) bool {
	for _, e := range env {
		if e.Sensitive {
			return true
		}
	}
	return false
}

func quoteList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
