package plan

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/openbis/provision/executors"
	"github.com/openbis/provision/executors/file"
//TLS	"github.com/openbis/provision/executors/tlscert"
	"github.com/openbis/provision/templates"
)

// Target says how to reach the host's daemons; the zero value is the
// machine provision runs on.
type Target struct {
	DockerHost string // "" = DOCKER_HOST or the default socket
	Bus        string // system D-Bus address; "" = DBUS_SYSTEM_BUS_ADDRESS or the default
	Refresh    bool   // ask registries whether pulled tags moved
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
	c := &Compiled{Host: host, Deleters: map[string]Deleter{"file": file.FromRecord}}
	dep := spec.Deployment

	if j := h.JupyterHub; j != nil {
		if err := c.jupyterhub(spec, j, t); err != nil {
			return nil, err
		}
	}
	_ = dep
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
	return c, nil
}

func (c *Compiled) add(r executors.Resource, deps ...string) {
	c.Nodes = append(c.Nodes, Node{Resource: r, Deps: deps})
}

func (c *Compiled) jupyterhub(spec *Spec, j *JupyterHub, t Target) error {
	if j.Certificates != "" {
		warns, err := tlscertCheck(path.Join(j.Certificates, j.CertificateCrt), path.Join(j.Certificates, j.CertificateKey), t.Now())
		if err != nil {
			return fmt.Errorf("certificates: %w", err)
		}
		c.Warnings = append(c.Warnings, warns...)
	}
	script, err := StartScript(spec, j)
	if err != nil {
		return err
	}
	r, err := file.New(file.Config{Address: "file.start_script", Path: j.StartScript, Content: script, Mode: 0o755, Owner: "root", Group: "root"})
	if err != nil {
		return fmt.Errorf("start script: %w", err)
	}
	c.add(r)
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
		Ports:         containerPorts(spec, j),
	}
	if j.Home != "" {
		s.Volumes = append(s.Volumes, j.Home+":/home")
	}
	if j.Certificates != "" {
		s.Volumes = append(s.Volumes, j.Certificates+":"+containerCertDir)
	}
	return s.Render()
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
func containerPorts(spec *Spec, j *JupyterHub) []string {
	return []string{
		fmt.Sprintf("%d:%d", HubPort, HubPort),
		fmt.Sprintf("%s:%d:%d", publishAddr(j.HubAPIAddress), HubAPIPort, HubAPIPort),
		fmt.Sprintf("%s:%d:%d", publishAddr(j.ProxyAPIAddress), ProxyAPIPort, ProxyAPIPort),
		fmt.Sprintf("%d:%d", spec.Deployment.CommunicationPort, IntegrationPort),
	}
}

// publishAddr writes an address as docker -p wants it: IPv6 in brackets.
func publishAddr(a string) string {
	if strings.Contains(a, ":") {
		return "[" + a + "]"
	}
	return a
}
