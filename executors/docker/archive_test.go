package docker

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/openbis/provision/internal/imageref"
)

func smallLayer(content string) testLayer {
	return testLayer{files: []testFile{{name: "hello.txt", body: []byte(content)}}}
}

func TestReadArchive(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		img      testImage
		wantOCI  bool
		wantTags []string
	}{
		{"classic", testImage{tags: []string{"jupyterhub:1"}, layers: []testLayer{smallLayer("a"), smallLayer("b")}}, false, []string{"jupyterhub:1"}},
		{"classic untagged", testImage{layers: []testLayer{smallLayer("a")}}, false, nil},
		{"oci with manifest.json", testImage{tags: []string{"openbis/jh:2"}, layers: []testLayer{smallLayer("a")}, layout: "oci"}, true, []string{"openbis/jh:2"}},
		{"oci only", testImage{tags: []string{"localhost:5000/jh:3"}, layers: []testLayer{smallLayer("a")}, layout: "oci-only"}, true, []string{"localhost:5000/jh:3"}},
		{"docker hub long name", testImage{tags: []string{"docker.io/library/busybox:latest"}, layers: []testLayer{smallLayer("a")}, layout: "oci"}, true, []string{"busybox:latest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".tar")
			built := writeImageTar(t, p, tt.img)
			a, err := ReadArchive(p)
			if err != nil {
				t.Fatal(err)
			}
			if a.OCI != tt.wantOCI {
				t.Errorf("OCI = %v, want %v", a.OCI, tt.wantOCI)
			}
			if len(a.Images) != 1 {
				t.Fatalf("got %d images, want 1", len(a.Images))
			}
			img := a.Images[0]
			if img.ConfigDigest != built.configDigest {
				t.Errorf("config digest %s, want %s", img.ConfigDigest, built.configDigest)
			}
			if built.manifestDigest != "" && !slices.Contains(img.ManifestDigests, built.manifestDigest) {
				t.Errorf("manifest digests %v lack %s", img.ManifestDigests, built.manifestDigest)
			}
			if !slices.Equal(img.Tags, tt.wantTags) {
				t.Errorf("tags %v, want %v", img.Tags, tt.wantTags)
			}
			if img.Layers != len(tt.img.layers) {
				t.Errorf("layers %d, want %d", img.Layers, len(tt.img.layers))
			}
		})
	}
}

func TestReadArchiveSparseLayer(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.tar")
	built := writeImageTar(t, p, testImage{tags: []string{"big:1"}, layers: []testLayer{{zeroFile: 64 << 20, fakeDiffID: true}}})
	a, err := ReadArchive(p)
	if err != nil {
		t.Fatal(err)
	}
	if a.Images[0].ConfigDigest != built.configDigest || a.Size < 64<<20 {
		t.Errorf("got %+v size %d", a.Images[0], a.Size)
	}
}

func TestReadArchiveBroken(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tar")
	writeImageTar(t, good, testImage{tags: []string{"x:1"}, layers: []testLayer{{zeroFile: 1 << 20, fakeDiffID: true}, smallLayer("tail")}})
	goodOCI := filepath.Join(dir, "good-oci.tar")
	writeImageTar(t, goodOCI, testImage{tags: []string{"x:1"}, layers: []testLayer{{zeroFile: 1 << 20, fakeDiffID: true}}, layout: "oci-only"})
	data, _ := os.ReadFile(good)
	ociData, _ := os.ReadFile(goodOCI)

	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := append([]byte(nil), data...)
	copy(flipped[0:], "garbage!")
	tests := []struct {
		name, path, want string
	}{
		{"truncated in a layer", write("trunc.tar", data[:600<<10]), "truncated"},
		{"truncated oci", write("trunc-oci.tar", ociData[:len(ociData)/2]), "truncated"},
		{"corrupt header", write("corrupt.tar", flipped), "tar"},
		{"empty", write("empty.tar", nil), "empty"},
		{"not an image", write("plain.tar", tarOf(t, "hello.txt", "hi")), "not a `docker save` archive"},
		{"missing", filepath.Join(dir, "nope.tar"), "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadArchive(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("err = %v, want it to name the file", err)
			}
		})
	}
}

func tarOf(t *testing.T, name, body string) []byte {
	t.Helper()
	r, err := buildContext([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, r.Len())
	r.Read(b)
	return b
}

func TestPickArchiveImage(t *testing.T) {
	a := &Archive{Path: "/x.tar", Images: []ArchiveImage{{ConfigDigest: "sha256:a", Tags: []string{"a:1"}}, {ConfigDigest: "sha256:b", Tags: []string{"b:1"}}}}
	ref, _ := imageref.Parse("b:1")
	if img, err := pickArchiveImage(a, ref); err != nil || img.ConfigDigest != "sha256:b" {
		t.Errorf("got %v, %v", img, err)
	}
	ref, _ = imageref.Parse("c:1")
	if _, err := pickArchiveImage(a, ref); err == nil {
		t.Error("want an error for an untagged choice among two images")
	}
}

// BenchmarkImageIDCheck2GiB measures what a plan pays to know the image ID
// and tags of a 2 GiB `docker save` tar (sparse on disk).
func BenchmarkImageIDCheck2GiB(b *testing.B) {
	for _, layout := range []string{"classic", "oci"} {
		b.Run(layout, func(b *testing.B) {
			p := filepath.Join(b.TempDir(), "big.tar")
			layers := []testLayer{}
			for range 8 {
				layers = append(layers, testLayer{zeroFile: 256 << 20, fakeDiffID: true})
			}
			writeImageTar(b, p, testImage{tags: []string{"jupyterhub:big"}, layers: layers, layout: layout})
			b.ResetTimer()
			for b.Loop() {
				if _, err := ReadArchive(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
