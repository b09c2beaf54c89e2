package templates

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/openbis/provision/internal/deploy"
)

// StartScriptTemplate renders the script the JupyterHub unit runs.
const StartScriptTemplate = "start.sh.tmpl"

// StartScript is the data of start.sh.tmpl: the guide's docker run line
// for the deployment's container, one per server, run in the foreground.
// Docker's command-line syntax lives here and in the template only.
type StartScript struct {
	// Address of the resource that manages the script, named in its header.
	Address   string
	Container deploy.Container
}

// Publish is the container's ports as docker run -p values: IPv6
// addresses in brackets.
func (s StartScript) Publish() []string {
	var out []string
	for _, p := range s.Container.Ports {
		v := strconv.Itoa(p.HostPort) + ":" + strconv.Itoa(p.ContainerPort)
		switch {
		case p.HostIP == "":
		case strings.Contains(p.HostIP, ":"):
			v = "[" + p.HostIP + "]:" + v
		default:
			v = p.HostIP + ":" + v
		}
		out = append(out, v)
	}
	return out
}

// Volumes is the container's mounts as docker run -v values.
func (s StartScript) Volumes() []string {
	var out []string
	for _, m := range s.Container.Mounts {
		out = append(out, m.Source+":"+m.Target)
	}
	return out
}

// Validate refuses what cannot become the intended docker arguments: a NUL
// byte anywhere, a missing container name or image, an environment
// variable name that is empty or holds '=' (docker would split it there).
// Everything else is quoted, not judged here.
func (s StartScript) Validate() error {
	var errs []error
	check := func(what, v string) {
		if strings.IndexByte(v, 0) >= 0 {
			errs = append(errs, fmt.Errorf("%s %q: %w", what, v, ErrNUL))
		}
	}
	c := s.Container
	if c.Name == "" {
		errs = append(errs, errors.New("empty container name"))
	}
	if c.Image.Written == "" {
		errs = append(errs, errors.New("empty image"))
	}
	check("address", s.Address)
	check("container name", c.Name)
	check("deployment", c.Deployment)
	check("image", c.Image.Written)
	check("command", c.Command)
	for _, e := range c.Env {
		if e.Name == "" || strings.Contains(e.Name, "=") {
			errs = append(errs, fmt.Errorf("environment variable name %q is empty or contains '='", e.Name))
		}
		check("environment variable name", e.Name)
		check("environment variable "+e.Name, e.Value)
	}
	for _, p := range s.Publish() {
		check("port", p)
	}
	for _, v := range s.Volumes() {
		check("volume", v)
	}
	return errors.Join(errs...)
}

// Render validates s and renders the start script.
func (s StartScript) Render() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("render start script: %w", err)
	}
	return Render(StartScriptTemplate, s)
}
