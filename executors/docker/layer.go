package docker

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"golang.org/x/sys/unix"
)

// layerChanges lists what a container changed in its own layer, as the
// Engine's diff does. With the overlay2 driver and the daemon's data on
// this machine, it reads the container's upper directory, which holds
// exactly those changes: the Engine mounts the container's whole root file
// system to answer, which takes a second for a real JupyterHub image and
// would make every converged plan slow. Any other daemon (a remote one,
// another storage driver, directories this machine cannot see) is asked.
func layerChanges(ctx context.Context, cli *client.Client, ins container.InspectResponse) ([]container.FilesystemChange, error) {
	if ins.GraphDriver.Name == "overlay2" {
		if changes, ok := upperChanges(ins.GraphDriver.Data["UpperDir"], ins.GraphDriver.Data["LowerDir"]); ok {
			return changes, nil
		}
	}
	return cli.ContainerDiff(ctx, ins.ID)
}

// upperChanges reads an overlay upper directory: a whiteout (a 0/0
// character device) is a deletion, an entry also in a lower directory a
// modification, anything else an addition. ok is false when the
// directories are not this machine's to read.
func upperChanges(upper, lower string) (changes []container.FilesystemChange, ok bool) {
	if !filepath.IsAbs(upper) || lower == "" {
		return nil, false
	}
	var lowers []string
	for _, l := range strings.Split(lower, ":") {
		if !filepath.IsAbs(l) {
			return nil, false
		}
		lowers = append(lowers, l)
	}
	if st, err := os.Lstat(upper); err != nil || !st.IsDir() {
		return nil, false
	}
	if st, err := os.Lstat(lowers[0]); err != nil || !st.IsDir() {
		return nil, false
	}
	var opaque []string // directories that hide what the lower ones hold
	inLower := func(rel string) bool {
		for _, o := range opaque {
			if strings.HasPrefix(rel, o+"/") {
				return false
			}
		}
		for _, l := range lowers {
			if _, err := os.Lstat(filepath.Join(l, rel)); err == nil {
				return true
			}
		}
		return false
	}
	// WalkDir never follows symbolic links: the container's own links
	// are entries, not ways out of its layer.
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(upper, p)
		if err != nil || rel == "." {
			return err
		}
		kind := container.ChangeAdd
		if d.Type()&fs.ModeCharDevice != 0 {
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err == nil && st.Rdev == 0 {
				kind = container.ChangeDelete
			}
		}
		if kind == container.ChangeAdd && inLower(rel) {
			kind = container.ChangeModify
		}
		if d.IsDir() && kind == container.ChangeModify && isOpaque(p) {
			// What the lower directories held there is gone.
			changes = append(changes, hidden(p, rel, lowers)...)
			opaque = append(opaque, rel)
		}
		changes = append(changes, container.FilesystemChange{Path: path.Join("/", filepath.ToSlash(rel)), Kind: kind})
		return nil
	})
	if err != nil {
		return nil, false // the Engine is asked instead
	}
	return changes, true
}

// hidden lists as deletions the entries of the lower directories' rel
// that the opaque upper directory dir does not have.
func hidden(dir, rel string, lowers []string) []container.FilesystemChange {
	var out []container.FilesystemChange
	seen := map[string]bool{}
	for _, l := range lowers {
		entries, _ := os.ReadDir(filepath.Join(l, rel))
		for _, e := range entries {
			if seen[e.Name()] {
				continue
			}
			seen[e.Name()] = true
			if _, err := os.Lstat(filepath.Join(dir, e.Name())); errors.Is(err, fs.ErrNotExist) {
				out = append(out, container.FilesystemChange{Path: path.Join("/", filepath.ToSlash(rel), e.Name()), Kind: container.ChangeDelete})
			}
		}
	}
	return out
}

// isOpaque reports whether overlayfs marked dir opaque: it was removed and
// made again, so nothing below it comes from the lower directories.
func isOpaque(dir string) bool {
	b := make([]byte, 1)
	for _, attr := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		if n, err := unix.Lgetxattr(dir, attr, b); err == nil && n == 1 && b[0] == 'y' {
			return true
		}
	}
	return false
}
