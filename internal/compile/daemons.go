package compile

import (
	"context"
	"os"
	"time"

	"github.com/docker/docker/client"

	"github.com/openbis/provision/executors/docker"
	"github.com/openbis/provision/executors/firewalld"
	"github.com/openbis/provision/executors/systemd"
	"github.com/openbis/provision/internal/engine"
)

// probeTimeout bounds a probe of a daemon that accepts connections but
// does not answer.
const probeTimeout = 10 * time.Second

// defaultBus is godbus's system bus when DBUS_SYSTEM_BUS_ADDRESS is unset.
const defaultBus = "unix:path=/var/run/dbus/system_bus_socket"

// busDaemon is the system D-Bus systemd and firewalld are read through.
// Nothing an apply does can start it, so a plan that cannot reach it
// fails, once.
func busDaemon(bus string) *engine.Daemon {
	addr := bus
	if addr == "" {
		if addr = os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); addr == "" {
			addr = defaultBus
		}
	}
	return &engine.Daemon{
		Name: "the system D-Bus", Address: addr, Option: "--bus",
		Kinds: []string{systemd.UnitKind, firewalld.KindRule, firewalld.KindDirect},
		Probe: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			c, err := systemd.Connect(ctx, bus)
			if err != nil {
				return err
			}
			c.Close()
			return nil
		},
	}
}

// dockerDaemon is the Docker Engine the image and the container are read
// through, reached as the executor reaches it. A stopped docker.service
// that the plan starts defers those reads (engine.Make) before any probe.
func dockerDaemon(host string) *engine.Daemon {
	addr := host
	if addr == "" {
		if addr = os.Getenv("DOCKER_HOST"); addr == "" {
			addr = client.DefaultDockerHost
		}
	}
	return &engine.Daemon{
		Name: "the Docker daemon", Address: addr, Option: "--docker-host",
		Kinds: []string{docker.KindImage, docker.KindContainer},
		Probe: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			opts := []client.Opt{client.FromEnv}
			if host != "" {
				opts = append(opts, client.WithHost(host))
			}
			cli, err := client.NewClientWithOpts(opts...)
			if err != nil {
				return err
			}
			defer cli.Close()
			_, err = cli.Ping(ctx)
			return err
		},
	}
}

// daemonsOf names the daemons r is read through.
func (c *Compiled) daemonsOf(r engine.Resource) []*engine.Daemon {
	switch r.(type) {
	case *systemd.Service, *systemd.Unit, *firewalld.Rule, *firewalld.DirectRule:
		return []*engine.Daemon{c.bus}
	case *docker.Image, *docker.Container:
		return []*engine.Daemon{c.docker}
	}
	return nil
}
