package templates

import (
	"errors"
	"fmt"
	"strings"
)

// StartScriptTemplate renders the script the JupyterHub unit runs.
const StartScriptTemplate = "start.sh.tmpl"

// StartScript is the data of start.sh.tmpl: the guide's docker run line,
// one container per server, run in the foreground.
type StartScript struct {
	// Address of the resource that manages the script, named in its header.
	Address       string
	ContainerName string
	// Deployment labels the container (provision.deployment=NAME).
	Deployment string
	Image      string
	// Command is the one argument run in the container after the image
	// ("./vagrant/initialize/start_jupyterhub.sh"); "" runs the image's
	// default.
	Command string
	Env     []EnvVar
	// Ports and Volumes are docker's -p and -v values ("8000:8000",
	// "/srv/home:/home").
	Ports   []string
	Volumes []string
}

// EnvVar is one -e NAME=VALUE.
type EnvVar struct {
	Name, Value string
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
	if s.ContainerName == "" {
		errs = append(errs, errors.New("empty container name"))
	}
	if s.Image == "" {
		errs = append(errs, errors.New("empty image"))
	}
	check("address", s.Address)
	check("container name", s.ContainerName)
	check("deployment", s.Deployment)
	check("image", s.Image)
	check("command", s.Command)
	for _, e := range s.Env {
		if e.Name == "" || strings.Contains(e.Name, "=") {
			errs = append(errs, fmt.Errorf("environment variable name %q is empty or contains '='", e.Name))
		}
		check("environment variable name", e.Name)
		check("environment variable "+e.Name, e.Value)
	}
	for _, p := range s.Ports {
		check("port", p)
	}
	for _, v := range s.Volumes {
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
