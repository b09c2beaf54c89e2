package docker

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
)

func TestRebase(t *testing.T) {
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	for _, h := range []*tar.Header{
		{Name: "home/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "home/alice/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 1000},
		{Name: "home/alice/n.ipynb", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1000, Gid: 1001, Size: 2},
		{Name: "home/alice/same.ipynb", Typeflag: tar.TypeLink, Linkname: "home/alice/n.ipynb"},
		{Name: "home/alice/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
	} {
		tw.WriteHeader(h)
		if h.Size > 0 {
			tw.Write([]byte("{}"))
		}
	}
	tw.Close()
	var out bytes.Buffer
	n, err := rebase(&out, &in, "home")
	if err != nil || n != 4 {
		t.Fatalf("rebase: %d entries, %v", n, err)
	}
	tr := tar.NewReader(&out)
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got = append(got, h.Name+" "+h.Linkname+" "+string(b))
		if h.Name == "alice/n.ipynb" && (h.Uid != 1000 || h.Gid != 1001 || h.Mode != 0o640) {
			t.Errorf("owner or mode lost: %+v", h)
		}
	}
	want := "alice/  |alice/n.ipynb  {}|alice/same.ipynb alice/n.ipynb |alice/link /etc/passwd "
	if strings.Join(got, "|") != want {
		t.Errorf("entries %q, want %q", strings.Join(got, "|"), want)
	}
}

func TestLayerHome(t *testing.T) {
	changes := []container.FilesystemChange{
		{Kind: container.ChangeModify, Path: "/home"},
		{Kind: container.ChangeAdd, Path: "/home/alice"},
		{Kind: container.ChangeAdd, Path: "/home/alice/n.ipynb"},
		{Kind: container.ChangeDelete, Path: "/home/vagrant/old"},
		{Kind: container.ChangeAdd, Path: "/homework"},
	}
	if n := layerHome(changes); n != 2 {
		t.Errorf("layerHome = %d, want 2", n)
	}
}
