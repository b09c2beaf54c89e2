package plan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/openbis/provision/executors"
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

// Container paths the image expects (from the guide's docker run line).
const (
	containerCertDir = "/vagrant/config/certificates"
	containerCommand = "./vagrant/initialize/start_jupyterhub.sh"
)

// Compiled is a host's resources, ready to plan.
type Compiled struct {
	Host     string
	Nodes    []Node
	Deleters map[string]Deleter
	// Warnings are host checks that passed with reservations.
	Warnings []string

	errs    []error     // host checks that failed, reported together
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

// Compile turns the host block named host into resources in dependency
// order. Checks that need the host but change nothing (certificates)
// happen here, before any plan, so a broken host fails early.
func Compile(ctx context.Context, spec *Spec, host string, t Target) (*Compiled, error) {
	h := spec.Host(host)
	if h == nil {
		return nil, fmt.Errorf("no host block for %q in the spec (hosts: %s); pick one with --host NAME", host, quoteList(spec.HostNames()))
	}
	if t.Now == nil {
		t.Now = time.Now
	}
	c := &Compiled{Host: host, Deleters: map[string]Deleter{
		"file":               file.FromRecord,
		elnprofile.Kind:      elnprofile.FromRecord,
		docker.KindImage:     docker.FromRecord,
		docker.KindContainer: docker.FromRecord,
		firewalld.KindRule:   firewalld.FromRecord,
		firewalld.KindDirect: firewalld.FromRecord,
		systemd.UnitKind:     systemd.FromRecord,
	}}
	dep := spec.Deployment

	// The firewall comes first: docker registers its zone with a running
	// firewalld when it starts.
	if fw := h.Firewall; fw != nil {
		if err := c.firewall(ctx, dep, fw, t); err != nil {
			c.errs = append(c.errs, err)
		}
	}
	if j := h.JupyterHub; j != nil {
		if err := c.jupyterhub(spec, j, t); err != nil {
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

func (c *Compiled) add(r executors.Resource, deps ...string) {
	c.Nodes = append(c.Nodes, Node{Resource: r, Deps: deps})
}

// firewall opens the communication port to the openBIS addresses only, in
// a way that holds for Docker-published ports (see executors/firewalld):
// the guide's rich rule per address, a rich rule for the hub's port, raw
// PREROUTING guards before Docker's DNAT, and a guard for the ports
// published on loopback.
func (c *Compiled) firewall(ctx context.Context, dep Deployment, fw *Firewall, t Target) error {
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
	comm := dep.CommunicationPort
	base := fmt.Sprintf("openbis_%d", comm)
	conn := firewalld.NewConn(t.Bus)
	c.closers = append(c.closers, conn)
	rules, err := firewalld.RulesFor(base, conn, fw.Zone, sources, comm, "tcp")
	if err != nil {
		return err
	}
	for _, r := range rules {
		c.add(r, svc.Address())
	}
	hub, err := firewalld.NewRule(firewalld.RuleConfig{Name: fmt.Sprintf("jupyterhub_%d", HubPort), Bus: t.Bus, Conn: conn, Zone: fw.Zone, Port: HubPort})
	if err != nil {
		return err
	}
	c.add(hub, svc.Address())
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

func (c *Compiled) jupyterhub(spec *Spec, j *JupyterHub, t Target) error {
	if j.Certificates != "" {
		warns, err := tlscert.Check(path.Join(j.Certificates, j.CertificateCrt), path.Join(j.Certificates, j.CertificateKey), spec.Deployment.JupyterHubHost, t.Now())
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

	engine := docker.NewDaemon(t.DockerHost)
	c.closers = append(c.closers, engine)
	ic := docker.ImageConfig{
		Host: t.DockerHost, Daemon: engine, Name: j.Image.Name, Load: j.Image.Load, Pull: j.Image.Pull,
		Keep: j.Image.Keep, Deployment: spec.Deployment.Name, Refresh: t.Refresh,
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

	script, err := StartScript(spec, j)
	if err != nil {
		return err
	}
	startScript, err := file.New(file.Config{Address: "file.start_script", Path: j.StartScript, Content: script, Mode: 0o755, Owner: "root", Group: "root"})
	if err != nil {
		return fmt.Errorf("start script: %w", err)
	}
	c.add(startScript)

	cc := docker.ContainerConfig{
		Host: t.DockerHost, Daemon: engine, Name: j.ContainerName, Deployment: spec.Deployment.Name, Image: j.Image.Name,
		Env:   map[string]string{},
		Ports: containerPorts(spec, j),
	}
	for _, e := range containerEnv(j) {
		cc.Env[e.Name] = e.Value
	}
	for _, v := range containerVolumes(j) {
		src, dst, _ := strings.Cut(v, ":")
		cc.Mounts = append(cc.Mounts, docker.Mount{Source: src, Target: dst})
	}
	container, err := docker.NewContainer(cc)
	if err != nil {
		return err
	}
	c.add(container, dockerd.Address(), image.Address())

	unitFile, err := systemd.RenderUnit(systemd.UnitParams{
		Address: "systemd_unit.jupyterhub", StartScript: j.StartScript, ContainerName: j.ContainerName,
	})
	if err != nil {
		return err
	}
	unit, err := systemd.NewUnit(systemd.UnitConfig{
		Address: "systemd_unit.jupyterhub", Bus: t.Bus, Name: j.Unit, Content: unitFile,
		StartScript: j.StartScript, ContainerName: j.ContainerName,
		HealthURL: j.HealthURL, HealthTimeout: j.HealthTimeout,
	})
	if err != nil {
		return err
	}
	c.add(unit, dockerd.Address(), image.Address(), startScript.Address(), container.Address())
	return nil
}

// StartScript renders the guide's jupyterhub-openbis-start.sh for j.
func StartScript(spec *Spec, j *JupyterHub) ([]byte, error) {
	s := templates.StartScript{
		Address:       "file.start_script",
		ContainerName: j.ContainerName,
		Deployment:    spec.Deployment.Name,
		Image:         j.Image.Name,
		Command:       containerCommand,
		Env:           containerEnv(j),
	}
	for _, p := range containerPorts(spec, j) {
		s.Ports = append(s.Ports, publishFlag(p))
	}
	s.Volumes = containerVolumes(j)
	return s.Render()
}

func containerVolumes(j *JupyterHub) []string {
	var v []string
	if j.Home != "" {
		v = append(v, j.Home+":/home")
	}
	if j.Certificates != "" {
		v = append(v, j.Certificates+":"+containerCertDir)
	}
	return v
}

func containerEnv(j *JupyterHub) []templates.EnvVar {
	return []templates.EnvVar{
		{Name: "OPENBIS_URL", Value: j.OpenBISURL},
		{Name: "JUPYTERHUB_INTEGRATION_SERVICE_PORT", Value: strconv.Itoa(IntegrationPort)},
		{Name: "JUPYTERHUB_PORT", Value: strconv.Itoa(HubPort)},
		{Name: "CERTIFICATE_KEY", Value: containerCertDir + "/" + j.CertificateKey},
		{Name: "CERTIFICATE_CRT", Value: containerCertDir + "/" + j.CertificateCrt},
	}
}

// containerPorts publishes the hub on every address, the communication
// port for the firewall to restrict, and the two API ports where the spec
// says (loopback by default: nothing outside needs them).
func containerPorts(spec *Spec, j *JupyterHub) []docker.Port {
	return []docker.Port{
		{HostPort: HubPort, ContainerPort: HubPort},
		{HostIP: j.HubAPIAddress, HostPort: HubAPIPort, ContainerPort: HubAPIPort},
		{HostIP: j.ProxyAPIAddress, HostPort: ProxyAPIPort, ContainerPort: ProxyAPIPort},
		{HostPort: spec.Deployment.CommunicationPort, ContainerPort: IntegrationPort},
	}
}

// publishFlag writes a port as docker run -p wants it: IPv6 in brackets.
func publishFlag(p docker.Port) string {
	switch {
	case p.HostIP == "":
		return fmt.Sprintf("%d:%d", p.HostPort, p.ContainerPort)
	case strings.Contains(p.HostIP, ":"):
		return fmt.Sprintf("[%s]:%d:%d", p.HostIP, p.HostPort, p.ContainerPort)
	}
	return fmt.Sprintf("%s:%d:%d", p.HostIP, p.HostPort, p.ContainerPort)
}
