package docker

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"testing"
	"time"

	"github.com/openbis/provision/internal/imageref"
)

// This file builds `docker save` archives for tests, offline: the classic
// layout (manifest.json + <id>.json + <dir>/layer.tar) and the OCI layout
// Docker >= 25 writes (oci-layout, index.json, blobs/sha256/…, plus a
// manifest.json whose paths point into blobs/, which Engine 20.10 loads).

type testFile struct {
	name string
	body []byte
	link string // symlink target
	mode int64
}

type testLayer struct {
	files []testFile
	// zeroFile, when > 0, adds a file of that many zero bytes written as a
	// hole: the archive stays sparse on disk.
	zeroFile int64
	// fakeDiffID skips hashing the layer (metadata-only tests of huge
	// archives); such archives cannot be loaded.
	fakeDiffID bool
}

type testImage struct {
	tags   []string
	layers []testLayer
	// env and labels vary the config, hence the image ID.
	env    []string
	labels map[string]string
	// layout: "classic", "oci" (OCI + manifest.json, as Docker >= 25) or
	// "oci-only" (no manifest.json).
	layout string
}

type builtImage struct {
	configDigest   string
	manifestDigest string
}

// tarBuilder writes a tar to a seekable file, letting entries be holes.
type tarBuilder struct {
	f *os.File
}

func (b *tarBuilder) header(h *tar.Header) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(h); err != nil {
		panic(err)
	}
	if _, err := b.f.Write(buf.Bytes()); err != nil {
		panic(err)
	}
}

func (b *tarBuilder) pad(n int64) {
	if r := n % 512; r != 0 {
		if _, err := b.f.Write(make([]byte, 512-r)); err != nil {
			panic(err)
		}
	}
}

func (b *tarBuilder) file(name string, body []byte) {
	b.header(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
	b.f.Write(body)
	b.pad(int64(len(body)))
}

func (b *tarBuilder) dir(name string) {
	b.header(&tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)})
}

func (b *tarBuilder) end() {
	b.f.Write(make([]byte, 1024))
}

// layerTar renders a layer's small part (header of the zero file included)
// and returns it with the size of the hole and the trailer.
func layerParts(l testLayer) (head []byte, hole int64, tail []byte) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range l.files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: time.Unix(0, 0)}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if f.link != "" {
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.link
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		tw.WriteHeader(h)
		tw.Write(f.body)
	}
	tw.Flush()
	if l.zeroFile > 0 {
		tw.WriteHeader(&tar.Header{Name: "zero.bin", Mode: 0o644, Size: l.zeroFile, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
		// The header is in buf; the data is the hole.
		head = append([]byte(nil), buf.Bytes()...)
		hole = l.zeroFile
		if r := hole % 512; r != 0 {
			hole += 512 - r
		}
		return head, hole, make([]byte, 1024)
	}
	tw.Close()
	return buf.Bytes(), 0, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func layerDigest(l testLayer, head []byte, hole int64, tail []byte) string {
	if l.fakeDiffID {
		return "sha256:" + hex.EncodeToString(make([]byte, 32))
	}
	h := sha256.New()
	h.Write(head)
	io.CopyN(h, zeros{}, hole)
	h.Write(tail)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// writeImageTar writes img as a `docker save` archive at path.
func writeImageTar(t testing.TB, path string, img testImage) builtImage {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := &tarBuilder{f: f}

	type layerInfo struct {
		head, tail []byte
		hole       int64
		diffID     string
	}
	var infos []layerInfo
	var diffIDs []string
	for _, l := range img.layers {
		head, hole, tail := layerParts(l)
		li := layerInfo{head: head, hole: hole, tail: tail, diffID: layerDigest(l, head, hole, tail)}
		infos = append(infos, li)
		diffIDs = append(diffIDs, li.diffID)
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      "2026-01-01T00:00:00Z",
		"config":       map[string]any{"Env": img.env, "Labels": img.labels, "Cmd": []string{"/bin/sh"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history":      []map[string]any{{"created": "2026-01-01T00:00:00Z", "created_by": "provision test"}},
	})
	cfgDigest := digestOf(cfg)
	cfgHex := cfgDigest[len("sha256:"):]

	writeLayer := func(name string, li layerInfo) {
		size := int64(len(li.head)) + li.hole + int64(len(li.tail))
		b.header(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
		f.Write(li.head)
		if li.hole > 0 {
			if _, err := f.Seek(li.hole, io.SeekCurrent); err != nil {
				t.Fatal(err)
			}
		}
		f.Write(li.tail)
		b.pad(size)
	}

	var layerPaths []string
	out := builtImage{configDigest: cfgDigest}
	switch img.layout {
	case "", "classic":
		for i, li := range infos {
			dir := hex.EncodeToString([]byte{byte(i), 0xab})[:4] + li.diffID[7:23]
			b.dir(dir + "/")
			b.file(dir+"/VERSION", []byte("1.0"))
			b.file(dir+"/json", []byte(`{"id":"`+dir+`"}`))
			writeLayer(dir+"/layer.tar", li)
			layerPaths = append(layerPaths, dir+"/layer.tar")
		}
		b.file(cfgHex+".json", cfg)
		m, _ := json.Marshal([]map[string]any{{"Config": cfgHex + ".json", "RepoTags": img.tags, "Layers": layerPaths}})
		b.file("manifest.json", m)
	default:
		b.dir("blobs/")
		b.dir("blobs/sha256/")
		var descs []map[string]any
		for _, li := range infos {
			p := "blobs/sha256/" + li.diffID[7:]
			writeLayer(p, li)
			layerPaths = append(layerPaths, p)
			descs = append(descs, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": li.diffID, "size": int64(len(li.head)) + li.hole + int64(len(li.tail))})
		}
		b.file("blobs/sha256/"+cfgHex, cfg)
		man, _ := json.Marshal(map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.oci.image.manifest.v1+json",
			"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfgDigest, "size": len(cfg)},
			"layers":        descs,
		})
		out.manifestDigest = digestOf(man)
		b.file("blobs/sha256/"+out.manifestDigest[7:], man)
		var entries []map[string]any
		for _, tag := range img.tags {
			r, _ := imageref.Parse(tag)
			entries = append(entries, map[string]any{
				"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": out.manifestDigest, "size": len(man),
				"annotations": map[string]string{annotationImgName: tag, annotationRefName: r.Tag},
			})
		}
		if len(entries) == 0 {
			entries = append(entries, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": out.manifestDigest, "size": len(man)})
		}
		idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mediaOCIIndex, "manifests": entries})
		b.file("index.json", idx)
		b.file("oci-layout", []byte(`{"imageLayoutVersion": "1.0.0"}`))
		if img.layout != "oci-only" {
			m, _ := json.Marshal([]map[string]any{{"Config": "blobs/sha256/" + cfgHex, "RepoTags": img.tags, "Layers": layerPaths}})
			b.file("manifest.json", m)
		}
	}
	b.end()
	return out
}
