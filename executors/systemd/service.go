package systemd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/openbis/provision/internal/engine"

	"github.com/openbis/provision/executors"
)

// packages names what provides the services a JupyterHub host needs, for
// the error that tells the admin what to install.
var packages = map[string]string{
	"docker.service":    "docker.io (Debian, Ubuntu) or docker-ce (Docker's repository)",
	"firewalld.service": "firewalld",
}

// ServiceConfig describes a service that must be enabled and running.
type ServiceConfig struct {
	// Address is the resource address; default "systemd_service." + Name
	// without ".service".
	Address string
	// Bus is the system bus address; "" is this host's.
	Bus string
	// Name of the unit, e.g. "docker.service".
	Name string
	// Package tells what to install when the unit is missing; known for
	// docker.service and firewalld.service.
	Package string
	// Root is the host's file system as seen from here ("" on a real
	// host); the default journal reader looks under it.
	Root string
	// Journal reads the unit's last journal lines for error messages;
	// default journalctl (with -D Root/var/log/journal when Root is set).
	Journal JournalFunc
}

// Service is the systemd_service resource: a service installed by a
// package that provision only enables and starts (a fresh server's docker
// and firewalld). It never removes or stops anything.
type Service struct {
	cfg ServiceConfig
}

// NewService checks cfg and returns the resource.
func NewService(cfg ServiceConfig) (*Service, error) {
	if !unitNameRE.MatchString(cfg.Name) {
		return nil, fmt.Errorf("systemd service: %q is not a service unit name", cfg.Name)
	}
	if cfg.Address == "" {
		cfg.Address = ServiceKind + "." + strings.TrimSuffix(cfg.Name, ".service")
	}
	if cfg.Package == "" {
		cfg.Package = packages[cfg.Name]
	}
	if cfg.Journal == nil {
		cfg.Journal = journalctl(cfg.Root)
	}
	return &Service{cfg: cfg}, nil
}

// Address implements engine.Resource.
func (s *Service) Address() string { return s.cfg.Address }

// Plan implements engine.Resource: installed but disabled or stopped is
// drift; not installed or masked is an error naming the fix.
func (s *Service) Plan(ctx context.Context) (*engine.Change, error) {
	p, err := planProps(ctx, s.cfg.Bus, s.cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.cfg.Address, err)
	}
	ch, err := diffService(s.cfg.Name, s.cfg.Package, p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.cfg.Address, err)
	}
	ch.Address = s.cfg.Address
	return ch, nil
}

// serviceSteps is what Apply does.
type serviceSteps struct {
	Enable bool `json:"enable,omitempty"`
	Start  bool `json:"start,omitempty"`
}

// enabledStates need no enabling: enabled, or not meant to be enabled.
var enabledStates = map[string]bool{"enabled": true, "static": true, "indirect": true, "generated": true, "alias": true}

func diffService(name, pkg string, p unitProps) (*engine.Change, error) {
	switch {
	case p.LoadState == "not-found":
		what := "the package that provides it"
		if pkg != "" {
			what = pkg
		}
		return nil, fmt.Errorf("%s is not installed on this host: install %s first", name, what)
	case p.LoadState == "masked" || p.UnitFileState == "masked":
		return nil, fmt.Errorf("%s is masked; unmask it (systemctl unmask %s) to let provision start it", name, name)
	case p.LoadState != "loaded":
		return nil, fmt.Errorf("%s cannot be loaded (LoadState=%s); see systemctl status %s", name, p.LoadState, name)
	}
	ch := &engine.Change{}
	var st serviceSteps
	if !enabledStates[p.UnitFileState] {
		ch.Reasons = append(ch.Reasons, fmt.Sprintf("installed but not enabled (UnitFileState=%s)", orNone(p.UnitFileState)))
		ch.Fields = append(ch.Fields, engine.Field{Name: "enabled", Old: orNone(p.UnitFileState), New: "enabled"})
		st.Enable = true
	}
	if p.ActiveState != "active" {
		ch.Reasons = append(ch.Reasons, fmt.Sprintf("installed but not running (ActiveState=%s, SubState=%s)", orNone(p.ActiveState), orNone(p.SubState)))
		ch.Fields = append(ch.Fields, engine.Field{Name: "active", Old: orNone(p.ActiveState), New: "active"})
		st.Start = true
	}
	if st.Enable || st.Start {
		ch.Action = engine.Update
	}
	ch.Data, _ = json.Marshal(st)
	ch.Fingerprint = executors.Fingerprint(p)
	return ch, nil
}

// Apply implements engine.Resource: enable (and reload), then start,
// waiting for the start job.
func (s *Service) Apply(ctx context.Context, ch *engine.Change, out engine.Output) error {
	var st serviceSteps
	if len(ch.Data) > 0 {
		if err := json.Unmarshal(ch.Data, &st); err != nil {
			return fmt.Errorf("%s: decode planned change: %w", s.cfg.Address, err)
		}
	}
	if !st.Enable && !st.Start {
		return nil
	}
	conn, err := Connect(ctx, s.cfg.Bus)
	if err != nil {
		return fmt.Errorf("%s: %w", s.cfg.Address, err)
	}
	defer conn.Close()
	if st.Enable {
		if err := enable(ctx, conn, s.cfg.Name); err != nil {
			return fmt.Errorf("%s: %w", s.cfg.Address, err)
		}
		if err := daemonReload(ctx, conn); err != nil {
			return fmt.Errorf("%s: %w", s.cfg.Address, err)
		}
		out.Progress(s.cfg.Address, "enabled "+s.cfg.Name)
	}
	if st.Start {
		out.Progress(s.cfg.Address, "starting "+s.cfg.Name)
		if err := runJob(ctx, conn, "start", s.cfg.Name); err != nil {
			return fmt.Errorf("%s: %w\n%s\n%s", s.cfg.Address, err, status(ctx, conn, s.cfg.Name),
				journalTail(ctx, s.cfg.Journal, s.cfg.Name, 20))
		}
		out.Progress(s.cfg.Address, "started "+s.cfg.Name)
	}
	return nil
}

// Record implements engine.Resource: nothing to delete later, the
// service belongs to its package.
func (s *Service) Record() *engine.Record { return nil }
