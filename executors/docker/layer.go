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
// another storage driver, directories this machine cannot see, an upper
// directory with renamed directories or metadata-only copies) is asked.
func layerChanges(ctx context.Context, cli *client.Client, ins container.InspectResponse) ([]container.FilesystemChange, error) {
	if ins.GraphDriver.Name == "overlay2" {
		if changes, ok := upperChanges(ins.GraphDriver.Data["UpperDir"], ins.GraphDriver.Data["LowerDir"]); ok {
			return changes, nil
		}
	}
	return cli.ContainerDiff(ctx, ins.ID)
}

// errAsk makes upperChanges leave the answer to the Engine.
var errAsk = errors.New("ask the Engine")

// upperChanges reads an overlay upper directory: a whiteout (a 0/0
// character device) is a deletion, an entry the lower directories have a
// modification, anything else an addition. ok is false when the
// directories are not this machine's to read, or hold what only overlayfs
// itself resolves (redirects, metadata-only copies).
func upperChanges(upper, lower string) (changes []container.FilesystemChange, ok bool) {
	if !filepath.IsAbs(upper) || lower == "" {
		return nil, false
	}
	var lowers []string // the image's layers, topmost first
	for _, l := range strings.Split(lower, ":") {
		if !filepath.IsAbs(l) {
			return nil, false
		}
		lowers = append(lowers, l)
	}
	for _, d := range []string{upper, lowers[0]} {
		if st, err := os.Lstat(d); err != nil || !st.IsDir() {
			return nil, false
		}
	}
	var opaque []string // upper directories that hide what the lower ones hold
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
		if hasXattr(p, "redirect") || hasXattr(p, "metacopy") {
			return errAsk
		}
		kind := container.ChangeAdd
		if isWhiteout(p, d) {
			kind = container.ChangeDelete
		} else if !underAny(rel, opaque) && inLowers(lowers, rel) {
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

func underAny(rel string, dirs []string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(rel, d+"/") {
			return true
		}
	}
	return false
}

// inLowers reports whether the image has rel, looked up as overlayfs
// does: layer by layer from the top, never through a symbolic link (a
// link in a layer is an entry there, not a way into this machine's
// directories), stopping at a layer's whiteout, at a non-directory on the
// way, and below a layer's opaque directory on the way.
func inLowers(lowers []string, rel string) bool {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for _, l := range lowers {
		p, stop := l, false
		for i, part := range parts {
			p = filepath.Join(p, part)
			st, err := os.Lstat(p)
			switch {
			case err != nil:
				if stop {
					return false
				}
			case st.Mode()&fs.ModeCharDevice != 0 && isWhiteoutStat(p):
				return false
			case i == len(parts)-1:
				return true
			case !st.IsDir():
				return false
			default:
				if isOpaque(p) {
					stop = true // the layers below have nothing under it
				}
				continue
			}
			break
		}
		if stop {
			return false
		}
	}
	return false
}

// hidden lists as deletions the entries the image had in rel that the
// opaque upper directory dir does not have.
func hidden(dir, rel string, lowers []string) []container.FilesystemChange {
	var out []container.FilesystemChange
	seen := map[string]bool{}
	for _, l := range lowers {
		st, err := os.Lstat(filepath.Join(l, rel))
		if err != nil || !st.IsDir() {
			continue // never through a link, into this machine's directories
		}
		entries, _ := os.ReadDir(filepath.Join(l, rel))
		for _, e := range entries {
			name := filepath.Join(rel, e.Name())
			if seen[name] {
				continue
			}
			seen[name] = true
			if _, err := os.Lstat(filepath.Join(dir, e.Name())); errors.Is(err, fs.ErrNotExist) && inLowers(lowers, name) {
				out = append(out, container.FilesystemChange{Path: path.Join("/", filepath.ToSlash(name)), Kind: container.ChangeDelete})
			}
		}
	}
	return out
}

func isWhiteout(p string, d fs.DirEntry) bool {
	return d.Type()&fs.ModeCharDevice != 0 && isWhiteoutStat(p)
}

func isWhiteoutStat(p string) bool {
	var st unix.Stat_t
	return unix.Lstat(p, &st) == nil && st.Rdev == 0
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

// hasXattr reports whether p carries overlayfs's attribute name.
func hasXattr(p, name string) bool {
	for _, ns := range []string{"trusted.overlay.", "user.overlay."} {
		if _, err := unix.Lgetxattr(p, ns+name, nil); err == nil {
			return true
		}
	}
	return false
}
