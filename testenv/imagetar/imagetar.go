// Package imagetar writes classic `docker save` archives (manifest.json,
// an image config and one layer.tar per layer) without a Docker daemon,
// the form in which sites without registry access receive images. Docker
// Engine's `docker load` and the project's own reader (executors/docker)
// both read them.
package imagetar

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Layer is a layer tar written to a file.
type Layer struct {
	// Path is the layer tar's file.
	Path string
	// Digest is the hex SHA-256 of the uncompressed tar (its diff ID).
	Digest string
	// Size is its length in bytes.
	Size int64
}

// WriteLayer writes a layer tar to path with write, hashing it on the way.
func WriteLayer(path string, write func(io.Writer) error) (Layer, error) {
	f, err := os.Create(path)
	if err != nil {
		return Layer{}, fmt.Errorf("write layer %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	if err := write(cw); err != nil {
		return Layer{}, fmt.Errorf("write layer %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return Layer{}, fmt.Errorf("write layer %s: %w", path, err)
	}
	return Layer{Path: path, Digest: hex.EncodeToString(h.Sum(nil)), Size: cw.n}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Config is the part of the image config the tests set.
type Config struct {
	Env        []string          `json:",omitempty"`
	Cmd        []string          `json:",omitempty"`
	WorkingDir string            `json:",omitempty"`
	Labels     map[string]string `json:",omitempty"`
}

// Write writes an image archive to path holding one image tagged ref with
// the given config and layers (lowest first), and returns the image ID
// ("sha256:…", the digest of the config). The same input gives the same
// bytes. On failure no file is left at path.
func Write(path, ref string, cfg Config, layers []Layer) (id string, err error) {
	diffIDs := make([]string, len(layers))
	paths := make([]string, len(layers))
	for i, l := range layers {
		diffIDs[i] = "sha256:" + l.Digest
		paths[i] = l.Digest + "/layer.tar"
	}
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      time.Unix(0, 0).UTC(),
		"config":       cfg,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	if err != nil {
		return "", fmt.Errorf("image tar %s: %w", path, err)
	}
	sum := sha256.Sum256(config)
	hexID := hex.EncodeToString(sum[:])
	manifest, err := json.Marshal([]map[string]any{{"Config": hexID + ".json", "RepoTags": []string{ref}, "Layers": paths}})
	if err != nil {
		return "", fmt.Errorf("image tar %s: %w", path, err)
	}

	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("image tar %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("image tar %s: %w", path, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	tw := tar.NewWriter(f)
	epoch := time.Unix(0, 0)
	put := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	seen := map[string]bool{}
	for _, l := range layers {
		// Two identical layers are stored once, as docker save does.
		if seen[l.Digest] {
			continue
		}
		seen[l.Digest] = true
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: l.Digest + "/", Mode: 0o755, ModTime: epoch}); err != nil {
			return "", fmt.Errorf("image tar %s: %w", path, err)
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: l.Digest + "/layer.tar", Mode: 0o644, Size: l.Size, ModTime: epoch}); err != nil {
			return "", fmt.Errorf("image tar %s: %w", path, err)
		}
		lf, err := os.Open(l.Path)
		if err != nil {
			return "", fmt.Errorf("image tar %s: %w", path, err)
		}
		_, err = io.Copy(tw, lf)
		lf.Close()
		if err != nil {
			return "", fmt.Errorf("image tar %s: copy layer %s: %w", path, l.Path, err)
		}
	}
	if err := put(hexID+".json", config); err != nil {
		return "", fmt.Errorf("image tar %s: %w", path, err)
	}
	if err := put("manifest.json", manifest); err != nil {
		return "", fmt.Errorf("image tar %s: %w", path, err)
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("image tar %s: %w", path, err)
	}
	return "sha256:" + hexID, f.Sync()
}

// WriteDir writes the tree at root as a layer tar stream to w, keeping
// owners, modes, modification times, symlinks and hard links. Entries for
// which skip returns true (given the slash-separated path relative to
// root, e.g. "dev/null") are left out; a skipped directory's contents too.
// Sockets and device nodes are always left out: Docker provides /dev.
func WriteDir(w io.Writer, root string, skip func(rel string) bool) error {
	tw := tar.NewWriter(w)
	type inode struct{ dev, ino uint64 }
	links := map[inode]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if skip != nil && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		mode := fi.Mode()
		if mode&(fs.ModeSocket|fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe) != 0 {
			return nil
		}
		target := ""
		if mode&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		// Names would come from this machine's users, not the tree's.
		hdr.Uname, hdr.Gname = "", ""
		hdr.ModTime = fi.ModTime().Truncate(time.Second)
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			if mode.IsRegular() && st.Nlink > 1 {
				key := inode{uint64(st.Dev), st.Ino}
				if first, ok := links[key]; ok {
					hdr.Typeflag = tar.TypeLink
					hdr.Linkname = first
					hdr.Size = 0
				} else {
					links[key] = rel
				}
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("layer of %s: %w", root, err)
	}
	return tw.Close()
}

// File is one entry of a layer written by WriteFiles.
type File struct {
	Name     string // slash-separated, relative; directories end in "/"
	Mode     int64
	Uid, Gid int
	Content  []byte
	Linkname string // for a symlink
}

// WriteFiles writes a small layer of the given files, in order, with
// modification time zero so that the layer is reproducible.
func WriteFiles(w io.Writer, files []File) error {
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	for _, f := range files {
		hdr := &tar.Header{Name: f.Name, Mode: f.Mode, Uid: f.Uid, Gid: f.Gid, ModTime: epoch}
		switch {
		case f.Linkname != "":
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, f.Linkname
		case len(f.Name) > 0 && f.Name[len(f.Name)-1] == '/':
			hdr.Typeflag = tar.TypeDir
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.Content))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Content); err != nil {
				return fmt.Errorf("%s: %w", f.Name, err)
			}
		}
	}
	return tw.Close()
}
