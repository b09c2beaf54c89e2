// Package deploy holds the one description of what runs where that
// compile derives from a spec and every executor reads: the JupyterHub
// container (its image, environment, ports and mounts) as the start
// script, the Docker executor, the unit and the firewall all see it.
package deploy

import (
	"fmt"
	"path"
	"strings"

	"github.com/openbis/provision/internal/imageref"
)

// Ports the JupyterHub image listens on inside the container (from the
// guide's docker run line).
const (
	HubPort         = 8000 // the proxy: users' browsers
	ProxyAPIPort    = 8001 // configurable-http-proxy's API: the hub only
	IntegrationPort = 8002 // the ELN integration service: users' browsers
	HubAPIPort      = 8081 // the hub's API: the proxy and spawners only
)

// Paths the image expects.
const (
	CertDir = "/vagrant/config/certificates"
	Command = "./vagrant/initialize/start_jupyterhub.sh"
)

// LabelDeployment marks the deployment's container: the start script sets
// it, and the Docker executor finds (and only ever removes) containers by it.
const LabelDeployment = "provision.deployment"

// Label is the container's deployment label, KEY=VALUE.
func (c Container) Label() string { return LabelDeployment + "=" + c.Deployment }

// Container is the JupyterHub container of a deployment.
type Container struct {
	Name       string // the container name the start script gives it
	Deployment string // labels the container provision.deployment=NAME
	Image      imageref.Ref
	// Command is run in the container after the image; "" runs its default.
	Command string
	Env     []Env
	Ports   []Port
	Mounts  []Mount
}

// Env is one environment variable of the container.
type Env struct {
	Name, Value string
	// Sensitive values are never shown in plans (a password in OPENBIS_URL).
	Sensitive bool
}

// Port is one published port.
type Port struct {
	// HostIP is the address to publish on; empty means all addresses.
	HostIP        string
	HostPort      int
	ContainerPort int
}

// Mount is one mount: a host directory (bind), or with Volume a Docker
// named volume whose name is Source.
type Mount struct {
	Source, Target string
	Volume         bool
}

// HomeDir is where users' work lives inside the container: their
// notebooks, including the ones the ELN's integration service writes.
const HomeDir = "/home"

// Home returns the mount that keeps users' work, if any.
func (c Container) Home() (Mount, bool) {
	for _, m := range c.Mounts {
		if m.Target == HomeDir {
			return m, true
		}
	}
	return Mount{}, false
}

// String says where a mount's data lives, for plans and warnings.
func (m Mount) String() string {
	if m.Volume {
		return "volume " + m.Source
	}
	return m.Source
}

// Published returns the host port that container port cport is published
// on, or 0.
func (c Container) Published(cport int) int {
	for _, p := range c.Ports {
		if p.ContainerPort == cport {
			return p.HostPort
		}
	}
	return 0
}

// Validate refuses a description no executor could carry out: it is
// compile's contract with the executors, checked once.
func (c Container) Validate() error {
	var errs []string
	if c.Name == "" || c.Deployment == "" || c.Image.Written == "" {
		errs = append(errs, "name, deployment and image must be set")
	}
	seen := map[int]bool{}
	for _, p := range c.Ports {
		if p.HostPort < 1 || p.HostPort > 65535 || p.ContainerPort < 1 || p.ContainerPort > 65535 {
			errs = append(errs, fmt.Sprintf("port %d:%d out of range", p.HostPort, p.ContainerPort))
		}
		if seen[p.HostPort] {
			errs = append(errs, fmt.Sprintf("host port %d published twice", p.HostPort))
		}
		seen[p.HostPort] = true
	}
	for _, m := range c.Mounts {
		if m.Volume && (m.Source == "" || strings.ContainsAny(m.Source, "/:")) || !m.Volume && !path.IsAbs(m.Source) || !path.IsAbs(m.Target) {
			errs = append(errs, fmt.Sprintf("mount %s:%s: want an absolute host path or a volume name, and an absolute target", m.Source, m.Target))
		}
	}
	for _, e := range c.Env {
		if e.Name == "" || strings.Contains(e.Name, "=") {
			errs = append(errs, fmt.Sprintf("environment variable name %q is empty or contains '='", e.Name))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("container %s: %s", c.Name, strings.Join(errs, "; "))
	}
	return nil
}
