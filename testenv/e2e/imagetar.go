package e2e

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/openbis/provision/testenv/freshserver"
)

// Image describes a stand-in image written as a `docker save` tar, the
// form in which sites without registry access receive the real one.
type Image struct {
	freshserver.StandIn
	// Padding adds a second layer holding that many bytes of incompressible
	// data, to make a big image for load benchmarks.
	Padding int64
}

// WriteImageTar writes img as a classic `docker save` archive (manifest.json,
// image config, one layer.tar per layer) to path and returns the image ID.
// The busybox-static binary at busybox becomes the stand-in's userland.
// The archive is reproducible: the same img gives the same bytes and ID.
func WriteImageTar(path, busybox string, img Image) (id string, err error) {
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".imagetar-")
	if err != nil {
		return "", fmt.Errorf("image tar %s: %w", path, err)
	}
	defer os.RemoveAll(tmp)

	var layers []layerFile
	l, err := writeLayer(tmp+"/rootfs.tar", func(w io.Writer) error {
		return freshserver.WriteStandInTar(w, busybox, img.StandIn)
	})
	if err != nil {
		return "", fmt.Errorf("image tar %s: stand-in layer: %w", path, err)
	}
	layers = append(layers, l)
	if img.Padding > 0 {
		l, err := writeLayer(tmp+"/padding.tar", func(w io.Writer) error { return paddingLayer(w, img.Padding) })
		if err != nil {
			return "", fmt.Errorf("image tar %s: padding layer: %w", path, err)
		}
		layers = append(layers, l)
	}

	diffIDs := make([]string, len(layers))
	for i, l := range layers {
		diffIDs[i] = "sha256:" + l.digest
	}
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      time.Unix(0, 0).UTC(),
		"config": map[string]any{
			"Env":        []string{"PATH=/bin"},
			"WorkingDir": "/",
			"Labels":     map[string]string{"org.openbis.provision.standin": img.Version},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(config)
	id = hex.EncodeToString(sum[:])
	manifest := []map[string]any{{"Config": id + ".json", "RepoTags": []string{img.Ref}, "Layers": layerPaths(layers)}}
	mb, err := json.Marshal(manifest)
	if err != nil {
		return "", err
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
	for _, l := range layers {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: l.digest + "/", Mode: 0o755, ModTime: epoch}); err != nil {
			return "", err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: l.digest + "/layer.tar", Mode: 0o644, Size: l.size, ModTime: epoch}); err != nil {
			return "", err
		}
		lf, err := os.Open(l.path)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(tw, lf)
		lf.Close()
		if err != nil {
			return "", fmt.Errorf("image tar %s: copy layer: %w", path, err)
		}
	}
	if err := put(id+".json", config); err != nil {
		return "", err
	}
	if err := put("manifest.json", mb); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("image tar %s: %w", path, err)
	}
	return "sha256:" + id, f.Sync()
}

type layerFile struct {
	path, digest string
	size         int64
}

func layerPaths(ls []layerFile) []string {
	p := make([]string, len(ls))
	for i, l := range ls {
		p[i] = l.digest + "/layer.tar"
	}
	return p
}

// writeLayer writes a layer tar to path while hashing it.
func writeLayer(path string, write func(io.Writer) error) (layerFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return layerFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	if err := write(cw); err != nil {
		return layerFile{}, err
	}
	return layerFile{path: path, digest: hex.EncodeToString(h.Sum(nil)), size: cw.n}, f.Close()
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

// paddingLayer is a layer with one file of n pseudo-random bytes (seeded,
// so the layer and the image ID are reproducible).
func paddingLayer(w io.Writer, n int64) error {
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "padding/", Mode: 0o755, ModTime: epoch}); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "padding/blob", Mode: 0o644, Size: n, ModTime: epoch}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, rand.NewChaCha8([32]byte{'p', 'r', 'o', 'v'}), n); err != nil {
		return err
	}
	return tw.Close()
}
