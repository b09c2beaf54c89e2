package docker

import (
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
	"github.com/openbis/provision/internal/deploy"
	"github.com/openbis/provision/internal/imageref"
)

func TestSummarizeDiff(t *testing.T) {
	sp := "/vagrant_installation/miniconda3/lib/python3.6/site-packages"
	changes := []container.FilesystemChange{
		{Kind: container.ChangeModify, Path: "/vagrant_installation/miniconda3/lib/python3.6"},
		{Kind: container.ChangeModify, Path: sp},
		{Kind: container.ChangeAdd, Path: sp + "/prettytable"},
		{Kind: container.ChangeAdd, Path: sp + "/prettytable/__init__.py"},
		{Kind: container.ChangeAdd, Path: sp + "/prettytable/__pycache__/x.pyc"},
		{Kind: container.ChangeAdd, Path: sp + "/prettytable-3.9.0.dist-info"},
		{Kind: container.ChangeAdd, Path: "/vagrant_installation/miniconda3/lib/R/library/base64enc"},
		{Kind: container.ChangeAdd, Path: "/vagrant_installation/miniconda3/conda-meta/r-base64enc-0.1_3.json"},
		{Kind: container.ChangeModify, Path: "/etc/ssl/openssl.cnf"},
		{Kind: container.ChangeModify, Path: "/etc/passwd"}, // the hub adds users at first login
		{Kind: container.ChangeAdd, Path: "/tmp/x"},
		{Kind: container.ChangeAdd, Path: "/root/.cache/pip/y"},
	}
	changes = append(changes, container.FilesystemChange{Kind: container.ChangeModify, Path: "/home"})
	got := summarizeDiff(changes, []string{"/home"})
	for _, want := range []string{
		"new Python packages under " + sp + ": prettytable-3.9.0",
		"new conda packages: r-base64enc-0.1_3",
		"new R packages: base64enc",
		"/etc (1)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "/tmp") || strings.Contains(got, ".cache") || strings.Contains(got, "/home") || strings.Contains(got, "/vagrant_installation (") {
		t.Errorf("summary shows noise: %s", got)
	}
	if s := summarizeDiff([]container.FilesystemChange{{Kind: container.ChangeAdd, Path: "/tmp/a"}, {Kind: container.ChangeModify, Path: "/tmp"}}, nil); s != "" {
		t.Errorf("noise only: got %q", s)
	}
}

func TestContainerCompare(t *testing.T) {
	c, err := NewContainer(ContainerConfig{Container: deploy.Container{Name: "jh", Deployment: "d", Image: mustRef("jh:1"),
		Env:    []deploy.Env{{Name: "A", Value: "1"}, {Name: "SECRET", Value: "s", Sensitive: true}},
		Ports:  []deploy.Port{{HostPort: 8000, ContainerPort: 8000}, {HostIP: "127.0.0.1", HostPort: 8002, ContainerPort: 8002}},
		Mounts: []deploy.Mount{{Source: "/srv/home/", Target: "/home"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Image env of its own is not drift; a changed and a missing key are.
	f := c.diffEnv([]string{"PATH=/bin", "A=1", "SECRET=old"})
	if len(f) != 1 || f[0].Name != "env.SECRET" || !f[0].Sensitive {
		t.Errorf("env fields %+v", f)
	}
	if f := c.diffEnv([]string{"PATH=/bin"}); len(f) != 2 || f[0].Old != "(unset)" {
		t.Errorf("env fields %+v", f)
	}
	hc := &container.HostConfig{PortBindings: nat.PortMap{
		"8000/tcp": {{HostIP: "0.0.0.0", HostPort: "8000"}},
		"8002/tcp": {{HostIP: "127.0.0.1", HostPort: "8002"}},
	}}
	if got, want := strings.Join(portSet(hc), ","), strings.Join(c.wantPorts(), ","); got != want {
		t.Errorf("ports %s, want %s", got, want)
	}
	ms := []container.MountPoint{{Type: "bind", Source: "/srv/home", Destination: "/home"}, {Type: "volume", Source: "/var/lib/docker/volumes/x", Destination: "/data"}}
	if got, want := strings.Join(mountSet(ms), ","), strings.Join(c.wantMounts(), ","); got != want {
		t.Errorf("mounts %s, want %s", got, want)
	}
}

func TestNewValidation(t *testing.T) {
	bad := []ImageConfig{
		{Ref: mustRef("jh:1"), Deployment: "d"},
		{Ref: mustRef("jh:1"), Deployment: "d", Pull: true, Load: "/x.tar"},
		{Ref: mustRef("jh:1"), Deployment: "d", Load: "x.tar"},
		{Deployment: "d", Pull: true},
		{Ref: mustRef("jh:1"), Pull: true},
	}
	for _, cfg := range bad {
		if _, err := NewImage(cfg); err == nil {
			t.Errorf("NewImage(%+v): want an error", cfg)
		}
	}
	if _, err := NewImage(ImageConfig{Ref: mustRef("jh:1"), Deployment: "d", Pull: true}); err != nil {
		t.Error(err)
	}
	if _, err := NewContainer(ContainerConfig{Container: deploy.Container{Name: "jh", Deployment: "d", Image: mustRef("jh:1"), Ports: []deploy.Port{{HostPort: 80, ContainerPort: 1}, {HostPort: 80, ContainerPort: 2}}}}); err == nil {
		t.Error("duplicate host port: want an error")
	}
}

func mustRef(s string) imageref.Ref {
	r, err := imageref.Parse(s)
	if err != nil {
		panic(err)
	}
	return r
}
