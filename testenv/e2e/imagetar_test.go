package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/openbis/provision/executors/docker"
	"github.com/openbis/provision/testenv/freshserver"
)

// TestWriteImageTar checks the stand-in archives against the docker
// executor's own reader: the image ID provision will expect, the tag, the
// layers, and that the same input gives the same archive.
func TestWriteImageTar(t *testing.T) {
	dir := t.TempDir()
	busybox := filepath.Join(dir, "busybox")
	if err := os.WriteFile(busybox, []byte("not really busybox"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		img    Image
		layers int
	}{
		{"plain", Image{StandIn: freshserver.StandIn{Ref: ImageRepo + ":1", Version: "1"}}, 1},
		{"broken", Image{StandIn: freshserver.StandIn{Ref: ImageRepo + ":3", Version: "3", Broken: true}}, 1},
		{"padded", Image{StandIn: freshserver.StandIn{Ref: ImageRepo + ":big", Version: "big"}, Padding: 3<<20 + 7}, 2},
	}
	ids := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name+".tar")
			id, err := WriteImageTar(p, busybox, tt.img)
			if err != nil {
				t.Fatal(err)
			}
			a, err := docker.ReadArchive(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Images) != 1 {
				t.Fatalf("archive holds %d images, want 1", len(a.Images))
			}
			got := a.Images[0]
			if got.ConfigDigest != id {
				t.Errorf("config digest %s, want the returned ID %s", got.ConfigDigest, id)
			}
			if !slices.Contains(got.Tags, tt.img.Ref) {
				t.Errorf("tags %v, want %s", got.Tags, tt.img.Ref)
			}
			if got.Layers != tt.layers {
				t.Errorf("%d layers, want %d", got.Layers, tt.layers)
			}
			again, err := WriteImageTar(p+".again", busybox, tt.img)
			if err != nil {
				t.Fatal(err)
			}
			if again != id {
				t.Errorf("second write gave ID %s, first %s: not reproducible", again, id)
			}
			if ids[id] {
				t.Errorf("ID %s shared with another test image", id)
			}
			ids[id] = true
		})
	}
}
