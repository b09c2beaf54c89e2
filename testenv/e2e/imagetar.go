package e2e

import (
	"archive/tar"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/openbis/provision/testenv/freshserver"
	"github.com/openbis/provision/testenv/imagetar"
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

	var layers []imagetar.Layer
	l, err := imagetar.WriteLayer(tmp+"/rootfs.tar", func(w io.Writer) error {
		return freshserver.WriteStandInTar(w, busybox, img.StandIn)
	})
	if err != nil {
		return "", fmt.Errorf("image tar %s: stand-in layer: %w", path, err)
	}
	layers = append(layers, l)
	if img.Padding > 0 {
		l, err := imagetar.WriteLayer(tmp+"/padding.tar", func(w io.Writer) error { return paddingLayer(w, img.Padding) })
		if err != nil {
			return "", fmt.Errorf("image tar %s: padding layer: %w", path, err)
		}
		layers = append(layers, l)
	}
	return imagetar.Write(path, img.Ref, imagetar.Config{
		Env:        []string{"PATH=/bin"},
		WorkingDir: "/",
		Labels:     map[string]string{"org.openbis.provision.standin": img.Version},
	}, layers)
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
