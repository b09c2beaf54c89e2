package imagetar

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/openbis/provision/executors/docker"
)

// TestWriteDir checks that a tree's owners, modes, symlinks and hard links
// survive, and that skipped entries and device-like files are left out.
func TestWriteDir(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "home/alice"), 0o700))
	must(os.MkdirAll(filepath.Join(root, "proc/1"), 0o555))
	must(os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Link(filepath.Join(root, "usr/bin/tool"), filepath.Join(root, "usr/bin/tool2")))
	must(os.Symlink("tool", filepath.Join(root, "usr/bin/alias")))
	must(os.WriteFile(filepath.Join(root, "home/alice/notes"), []byte("hi"), 0o640))
	canChown := os.Geteuid() == 0
	if canChown {
		must(os.Lchown(filepath.Join(root, "home/alice"), 1000, 1001))
		must(os.Lchown(filepath.Join(root, "home/alice/notes"), 1000, 1001))
	}

	var buf bytes.Buffer
	must(WriteDir(&buf, root, func(rel string) bool { return rel == "proc/1" }))
	got := map[string]*tar.Header{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(err)
		got[h.Name] = h
	}
	tests := []struct {
		name     string
		typ      byte
		mode     int64
		linkname string
		uid      int
	}{
		{"usr/bin/", tar.TypeDir, 0o755, "", 0},
		{"home/alice/", tar.TypeDir, 0o700, "", 1000},
		{"home/alice/notes", tar.TypeReg, 0o640, "", 1000},
		{"usr/bin/alias", tar.TypeSymlink, 0o777, "tool", 0},
		{"usr/bin/tool", tar.TypeReg, 0o755, "", 0},
		{"usr/bin/tool2", tar.TypeLink, 0o755, "usr/bin/tool", 0},
		{"proc/", tar.TypeDir, 0o555, "", 0},
	}
	for _, tt := range tests {
		h, ok := got[tt.name]
		if !ok {
			t.Errorf("%s missing; have %v", tt.name, keys(got))
			continue
		}
		if h.Typeflag != tt.typ || h.Mode&0o7777 != tt.mode || h.Linkname != tt.linkname {
			t.Errorf("%s: type %c mode %o link %q, want %c %o %q", tt.name, h.Typeflag, h.Mode, h.Linkname, tt.typ, tt.mode, tt.linkname)
		}
		if canChown && (h.Uid != tt.uid || h.Uname != "") {
			t.Errorf("%s: uid %d uname %q, want %d and no name", tt.name, h.Uid, h.Uname, tt.uid)
		}
	}
	if _, ok := got["proc/1/"]; ok {
		t.Error("skipped proc/1 is in the layer")
	}
}

func keys(m map[string]*tar.Header) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

// TestWriteReadsBack checks archives against the docker executor's reader.
func TestWriteReadsBack(t *testing.T) {
	dir := t.TempDir()
	files := []File{
		{Name: "vagrant/", Mode: 0o755},
		{Name: "vagrant/start.sh", Mode: 0o755, Content: []byte("#!/bin/sh\n")},
		{Name: "vagrant/link", Mode: 0o777, Linkname: "start.sh"},
	}
	a, err := WriteLayer(filepath.Join(dir, "a.tar"), func(w io.Writer) error { return WriteFiles(w, files) })
	if err != nil {
		t.Fatal(err)
	}
	b, err := WriteLayer(filepath.Join(dir, "b.tar"), func(w io.Writer) error { return WriteFiles(w, files[:1]) })
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		layers []Layer
	}{
		{"one", []Layer{a}},
		{"two", []Layer{a, b}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name+".tar")
			ref := "example/image:" + tt.name
			id, err := Write(p, ref, Config{Env: []string{"PATH=/bin"}, WorkingDir: "/"}, tt.layers)
			if err != nil {
				t.Fatal(err)
			}
			arch, err := docker.ReadArchive(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(arch.Images) != 1 {
				t.Fatalf("%d images, want 1", len(arch.Images))
			}
			img := arch.Images[0]
			if img.ConfigDigest != id || !slices.Contains(img.Tags, ref) || img.Layers != len(tt.layers) {
				t.Errorf("read %+v, want ID %s, tag %s, %d layers", img, id, ref, len(tt.layers))
			}
			again, err := Write(p+".2", ref, Config{Env: []string{"PATH=/bin"}, WorkingDir: "/"}, tt.layers)
			if err != nil || again != id {
				t.Errorf("second write: %s, %v; want the same ID %s", again, err, id)
			}
		})
	}
}
