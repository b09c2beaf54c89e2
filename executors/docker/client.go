// Package docker manages the Docker side of JupyterHub for openBIS: the
// image (pulled from a registry, loaded from a `docker save` tar, or built
// from a recipe on top of a base image) and the one JupyterHub container.
//
// It talks to the daemon through github.com/docker/docker/client with API
// version negotiation, and uses only API features of Engine 20.10 (API
// 1.41), Debian 12's docker.io.
package docker

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/openbis/provision/internal/deploy"
	"github.com/openbis/provision/internal/engine"

	"github.com/docker/docker/api/types/image"

	"github.com/docker/docker/client"
)

// Labels provision puts on what it creates.
const (
	LabelDeployment = deploy.LabelDeployment
	LabelRecipe     = "provision.recipe"
	LabelBase       = "provision.base"
)

// Daemon is a lazily connected client for one Docker host.
type Daemon struct {
	host string
	mu   sync.Mutex
	cli  *client.Client

	storeOnce  sync.Once
	containerd bool
}

// containerdStore reports whether the daemon keeps images in containerd's
// store (Docker >= 24 with the containerd snapshotter), where an image ID
// is a manifest digest instead of the config digest. Asked only when IDs
// do not match, since /info is slow.
func (d *Daemon) containerdStore(ctx context.Context, cli *client.Client) bool {
	d.storeOnce.Do(func() {
		info, err := cli.Info(ctx)
		if err != nil {
			return
		}
		for _, kv := range info.DriverStatus {
			if kv[0] == "driver-type" && strings.Contains(kv[1], "containerd.snapshotter") {
				d.containerd = true
			}
		}
	})
	return d.containerd
}

// sameImage reports whether local is the archive's image: by ID, or on
// the containerd store (whose IDs a classic archive cannot tell) by its
// layers and creation time.
func (d *Daemon) sameImage(ctx context.Context, cli *client.Client, local *image.InspectResponse, img ArchiveImage) bool {
	if slices.Contains(img.IDs(), local.ID) {
		return true
	}
	return sameContent(local, img.DiffIDs, img.Created) && d.containerdStore(ctx, cli)
}

func sameContent(local *image.InspectResponse, diffIDs []string, created string) bool {
	if len(diffIDs) == 0 || !slices.Equal(local.RootFS.Layers, diffIDs) {
		return false
	}
	a, err1 := time.Parse(time.RFC3339Nano, local.Created)
	b, err2 := time.Parse(time.RFC3339Nano, created)
	return err1 == nil && err2 == nil && a.Equal(b)
}

// NewDaemon returns a client for the Docker daemon at host ("" is
// DOCKER_HOST or the default socket), connected on first use. The image and
// container of one run share it, so a plan pings and negotiates once.
func NewDaemon(host string) *Daemon { return &Daemon{host: host} }

// daemonFor returns shared, or a daemon client of its own for host.
func daemonFor(shared *Daemon, host string) *Daemon {
	if shared != nil {
		return shared
	}
	return NewDaemon(host)
}

// Close closes the connection, if it was made.
func (d *Daemon) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cli == nil {
		return nil
	}
	err := d.cli.Close()
	d.cli = nil
	return err
}

// hostName is what error messages call the daemon.
func (d *Daemon) hostName() string {
	if d.host != "" {
		return d.host
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return client.DefaultDockerHost
}

func (d *Daemon) client(ctx context.Context) (*client.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// A failure is not kept: the daemon may be started later in the same
	// apply (a fresh server's docker.service), and then it must answer.
	if d.cli != nil {
		return d.cli, nil
	}
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if d.host != "" {
		opts = append(opts, client.WithHost(d.host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", d.hostName(), err)
	}
	// Negotiate now so that a daemon that is down is one clear error.
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, d.wrap(err)
	}
	cli.NegotiateAPIVersion(ctx)
	d.cli = cli
	return cli, nil
}

// wrap names the daemon's address when it cannot be reached.
func (d *Daemon) wrap(err error) error {
	if err == nil {
		return nil
	}
	if client.IsErrConnectionFailed(err) || strings.Contains(err.Error(), "connect: ") {
		return fmt.Errorf("docker daemon at %s is not reachable: %w", d.hostName(), err)
	}
	return err
}

// FromRecord builds the "absent" resource for a state record of either
// kind this package manages, on daemon d: the run's target, whatever
// daemon the record was made on.
func FromRecord(rec engine.Record, d *Daemon) (engine.Resource, error) {
	switch rec.Kind {
	case KindImage:
		return ImageFromRecord(rec, d)
	case KindContainer:
		return ContainerFromRecord(rec, d)
	}
	return nil, fmt.Errorf("%s: kind %q is not a docker kind", rec.Address, rec.Kind)
}
