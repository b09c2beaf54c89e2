package docker

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/openbis/provision/executors"
	"github.com/openbis/provision/internal/deploy"
)

// LabelHelper marks the short-lived containers provision creates to copy
// users' homes; they never carry the deployment's label, so nothing else
// of provision's takes them for the JupyterHub.
const LabelHelper = "org.openbis.provision.helper"

// helperDir is where a helper container mounts the home being filled.
const helperDir = "/provision-home"

// homeCopy is what Apply copies into the persistent home before the
// restart that would lose it: users' work from a container's own layer
// (From is that container), or the image's /home into a new home
// directory (From is empty).
type homeCopy struct {
	From  string `json:"from,omitempty"`
	Image string `json:"image"`
	Paths int    `json:"paths"` // what the plan counted, for the message
}

// layerHome counts the paths under /home that live in the container's own
// layer: users' work a restart loses when /home is not a mount.
func layerHome(changes []container.FilesystemChange) int {
	n := 0
	for _, ch := range changes {
		if strings.HasPrefix(ch.Path, deploy.HomeDir+"/") && ch.Kind != container.ChangeDelete {
			n++
		}
	}
	return n
}

// copyHome creates the home m, which must not exist yet, and fills it
// through the Engine API's archive endpoints: a helper container of image
// mounts it at helperDir, and the /home of from (the helper itself, i.e.
// the image's, when from is empty) is streamed into it with owners, modes
// and times. It returns the number of files and directories copied.
//
// A home appears whole or not at all: a directory is filled under a temp
// name and renamed into place; a volume that could not be filled is
// removed again (it held only the partial copy: the original is still
// where it was). So a failed copy is simply planned again.
func copyHome(ctx context.Context, cli *client.Client, from, image string, m deploy.Mount) (n int, err error) {
	hm := mount.Mount{Type: mount.TypeBind, Source: m.Source + ".provision-new", Target: helperDir}
	if m.Volume {
		if _, err := cli.VolumeInspect(ctx, m.Source); err == nil {
			return 0, fmt.Errorf("volume %s exists already: provision fills only a new home", m.Source)
		}
		if _, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: m.Source, Labels: map[string]string{LabelCopiedFrom: source(from)}}); err != nil {
			return 0, fmt.Errorf("create volume %s: %w", m.Source, err)
		}
		hm = mount.Mount{Type: mount.TypeVolume, Source: m.Source, Target: helperDir}
	} else {
		if _, err := os.Lstat(m.Source); err == nil {
			return 0, fmt.Errorf("home directory %s exists already: provision fills only a new home", m.Source)
		}
		if err := executors.MkdirAll(path.Dir(m.Source), 0o755); err != nil {
			return 0, fmt.Errorf("create the parent of home directory %s: %w", m.Source, err)
		}
		// A temp directory left by a killed apply holds only a partial copy.
		os.RemoveAll(hm.Source)
		if err := os.Mkdir(hm.Source, 0o755); err != nil {
			return 0, fmt.Errorf("create home directory %s: %w", hm.Source, err)
		}
	}
	defer func() {
		if err == nil {
			return
		}
		if m.Volume {
			cli.VolumeRemove(context.WithoutCancel(ctx), m.Source, false)
		} else {
			os.RemoveAll(hm.Source)
		}
	}()
	if n, err = fill(ctx, cli, from, image, hm); err != nil {
		return n, err
	}
	if !m.Volume {
		// The marker first: a crash before the rename leaves no home, and
		// the next apply copies again.
		if err := executors.WriteFileNoBackup(marker(m), []byte(source(from)+"\n"), 0o600, 0, 0); err != nil {
			return n, fmt.Errorf("mark the new home: %w", err)
		}
		if err := os.Rename(hm.Source, m.Source); err != nil {
			return n, fmt.Errorf("move the new home into place: %w", err)
		}
	}
	return n, nil
}

// LabelCopiedFrom marks a home volume with the container its content was
// copied from ("image" when seeded), so an apply stopped between the copy
// and the restart is finished by the next one instead of refused.
const LabelCopiedFrom = "org.openbis.provision.copied-from"

// marker is where a home directory's copied-from mark lives: beside it,
// not in it, so users never see it in /home.
func marker(m deploy.Mount) string { return m.Source + ".provision-copied-from" }

func source(from string) string {
	if from == "" {
		return "image"
	}
	return from
}

// copiedFrom returns the container the home m was filled from, or "".
func copiedFrom(ctx context.Context, cli *client.Client, m deploy.Mount) string {
	if m.Volume {
		v, err := cli.VolumeInspect(ctx, m.Source)
		if err != nil {
			return ""
		}
		return v.Labels[LabelCopiedFrom]
	}
	st, err := executors.ReadFile(marker(m))
	if err != nil || !st.Exists {
		return ""
	}
	return strings.TrimSpace(string(st.Content))
}

// fill streams /home of from (or of a helper of image) into hm.
func fill(ctx context.Context, cli *client.Client, from, image string, hm mount.Mount) (n int, err error) {
	helper, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Cmd: []string{"true"}, Labels: map[string]string{LabelHelper: "home-copy"}},
		&container.HostConfig{Mounts: []mount.Mount{hm}}, nil, nil, "")
	if err != nil {
		return 0, fmt.Errorf("create a helper container to fill the home: %w", err)
	}
	defer func() {
		// A fresh context: the copy may have failed because ctx ended.
		if rerr := cli.ContainerRemove(context.WithoutCancel(ctx), helper.ID, container.RemoveOptions{Force: true}); rerr != nil && err == nil {
			err = fmt.Errorf("remove helper container %s: %w", helper.ID[:12], rerr)
		}
	}()
	if from == "" {
		from = helper.ID
	}
	src, _, err := cli.CopyFromContainer(ctx, from, deploy.HomeDir)
	if err != nil {
		return 0, fmt.Errorf("read /home of %s: %w", short(from), err)
	}
	defer src.Close()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		var err error
		n, err = rebase(pw, src, path.Base(deploy.HomeDir))
		pw.CloseWithError(err)
		done <- err
	}()
	err = cli.CopyToContainer(ctx, helper.ID, helperDir, pr, container.CopyToContainerOptions{CopyUIDGID: true})
	pr.CloseWithError(errors.New("copy ended"))
	if rerr := <-done; err == nil && rerr != nil && !errors.Is(rerr, io.ErrClosedPipe) {
		err = rerr
	}
	if err != nil {
		return n, fmt.Errorf("copy /home of %s: %w", short(from), err)
	}
	return n, nil
}

// rebase copies a tar stream whose entries sit under top/ to w with that
// first component removed, so "home/alice/n.ipynb" lands as
// "alice/n.ipynb" in the directory it is extracted into. It returns how
// many entries it wrote.
func rebase(w io.Writer, r io.Reader, top string) (int, error) {
	tr, tw := tar.NewReader(r), tar.NewWriter(w)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("read archive: %w", err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		rest, ok := strings.CutPrefix(name, top+"/")
		if !ok || rest == "" {
			continue // the top directory itself: the mount point keeps its own
		}
		h.Name = rest
		if h.Typeflag == tar.TypeLink {
			h.Linkname = strings.TrimPrefix(strings.TrimPrefix(h.Linkname, "./"), top+"/")
		}
		if err := tw.WriteHeader(h); err != nil {
			return n, fmt.Errorf("write archive: %w", err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return n, fmt.Errorf("copy %s: %w", rest, err)
		}
		n++
	}
	return n, tw.Close()
}
