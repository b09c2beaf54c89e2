package spec

import (
	"io/fs"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/openbis/provision/internal/imageref"
)

// Spec is a decoded, validated deployment: the openBIS host and the
// JupyterHub host, described once.
type Spec struct {
	Deployment Deployment
	Hosts      []*Host
}

// Deployment holds the values both ends must agree on. Host blocks read
// them as deployment.<name>, so they are written once.
type Deployment struct {
	Name              string
	OpenBISHost       string
	JupyterHubHost    string
	CommunicationPort int
	// HubPort is where users' browsers reach the hub (the container's
	// 8000): 443 by default, so that https://JUPYTERHUB_HOST/ is true.
	HubPort int
	Range   hcl.Range
	// Ranges of the host name attributes, for "no matching host block".
	OpenBISHostRange, JupyterHubHostRange hcl.Range

	unknown []string // attributes not known at validate time
}

// Host is what one machine should look like.
type Host struct {
	Name       string
	Range      hcl.Range
	JupyterHub *JupyterHub
	Firewall   *Firewall
	ELNProfile *ELNProfile
	Files      []*ManagedFile
	// SSH overrides how plan --all reaches the host: by default at its
	// name, through the system's ssh and its configuration.
	SSH *SSH
}

// SSH is where the admin's ssh reaches a host.
type SSH struct {
	// Destination is ssh's [user@]host; Port 0 leaves the port to ssh's
	// configuration.
	Destination string
	Port        int
	Range       hcl.Range
}

// JupyterHub is the container, its start script and its systemd unit.
type JupyterHub struct {
	ContainerName string
	Image         Image
	OpenBISURL    string
	// OpenBISURLSensitive: the URL carries a secret (a password in it).
	OpenBISURLSensitive bool
	// Home is the host directory mounted at /home; "" means the named
	// volume CONTAINER-home, unless PersistHome is false (users' work then
	// lives in the container and a restart loses it).
	Home           string
	PersistHome    bool
	Certificates   string // host dir mounted at /vagrant/config/certificates
	CertificateKey string // file name inside Certificates
	CertificateCrt string
	StartScript    string
	Unit           string
	HealthTimeout  time.Duration
	// HealthURL is probed after a (re)start; no answer means roll back.
	HealthURL string
	// Addresses the hub API (8081) and proxy API (8001) are published on:
	// loopback unless the spec opens them.
	HubAPIAddress   string
	ProxyAPIAddress string
	Range           hcl.Range
}

// Image is the JupyterHub image and the one source it comes from.
type Image struct {
	Ref   imageref.Ref
	Load  string // docker save tar
	Pull  bool
	Build *Build
	Auth  *Auth
	Keep  int // previous images kept for rollback
	Range hcl.Range
}

// Build is an extended image recipe, the guide's "correct maintenance".
type Build struct {
	From           string
	PythonPackages []string
	RPackages      []string
	ExtraLines     []string
}

// Auth is a registry login; both values are always sensitive.
type Auth struct {
	Username string
	Password string
}

// Firewall admits the ELN's real callers, the users' browsers, to the
// hub port and the communication port, and no one else.
type Firewall struct {
	Zone string
	// UsersFrom is where users' browsers come from (addresses, CIDRs or
	// names); empty means anywhere.
	UsersFrom []string
	// AllowFrom restricts the communication port further (the guide's
	// rule names the openBIS host); empty means UsersFrom.
	AllowFrom []string
	Range     hcl.Range
}

// ELNProfile is the openBIS ELN InstanceProfile.js to patch.
type ELNProfile struct {
	Path  string
	Range hcl.Range
}

// ManagedFile is any other file rendered onto the host.
type ManagedFile struct {
	Name    string
	Path    string
	Content string
	// Sensitive keeps the content out of plans: the spec says so, or the
	// content or the path derives from a sensitive variable.
	Sensitive bool
	// SensitivePath: the path derives from a sensitive variable, so it is
	// shown as "(sensitive)" too (the address stays file.NAME).
	SensitivePath bool
	Mode          fs.FileMode
	Owner         string
	Group         string
	Range         hcl.Range
}

// Host returns the host block named name, or nil.
func (s *Spec) Host(name string) *Host {
	for _, h := range s.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// HostNames lists the host blocks in file order.
func (s *Spec) HostNames() []string {
	names := make([]string, len(s.Hosts))
	for i, h := range s.Hosts {
		names[i] = h.Name
	}
	return names
}
