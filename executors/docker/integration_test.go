//go:build integration

package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openbis/provision/internal/deploy"
	"github.com/openbis/provision/internal/engine"
	"github.com/openbis/provision/internal/render"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"github.com/openbis/provision/testenv/dockerd"
)

// The suite runs against its own dockerd and docker-registry (see
// testenv/dockerd), started here and stopped at the end, also on failure.

const (
	regUser = "provtest"
	regPass = "s3cret-pw"
	// baseImage is a busybox rootfs with fake pip and conda scripts that
	// record what they "install" where the real ones would.
	baseImage = "pvtest/base:1"
	sitePkgs  = "/vagrant_installation/miniconda3/lib/python3.6/site-packages"
)

var (
	testHost string
	testReg  string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Getenv(benchChildEnv) != "" {
		// The load benchmark's child uses the parent's daemon.
		return m.Run()
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "pvdk")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: integration setup:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	hp, err := exec.Command("htpasswd", "-Bbn", regUser, regPass).Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: integration setup: htpasswd (apt-get install -y apache2-utils):", err)
		return 1
	}
	d, err := dockerd.Start(ctx, dir, dockerd.Options{Registry: true, Htpasswd: string(hp)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: integration setup: cannot start the test daemon:", err)
		return 1
	}
	defer func() {
		if err := d.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop test daemon:", err)
		}
	}()
	testHost, testReg = d.Host, d.Registry
	if err := importBase(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: integration setup: import base image:", err)
		return 1
	}
	return m.Run()
}

func testClient(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost(testHost), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// busyboxRootfs is a tar of a tiny rootfs: Debian's static busybox, its
// applets as symlinks, and pip/conda stand-ins.
func busyboxRootfs() ([]byte, error) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return nil, fmt.Errorf("read /bin/busybox (apt-get install -y busybox-static): %w", err)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	dirs := []string{"bin", "tmp", "etc", "home", "home/vagrant", "vagrant_installation/miniconda3/bin", sitePkgs[1:], "vagrant_installation/miniconda3/lib/R/library", "vagrant_installation/miniconda3/conda-meta"}
	for _, d := range dirs {
		tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir})
	}
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb)), Typeflag: tar.TypeReg})
	tw.Write(bb)
	// The image's own /home, which a new home is seeded from.
	seed := []byte("the guide's vagrant directory\n")
	tw.WriteHeader(&tar.Header{Name: "home/vagrant/README", Mode: 0o644, Uid: 1000, Gid: 1000, Size: int64(len(seed)), Typeflag: tar.TypeReg})
	tw.Write(seed)
	for _, a := range []string{"sh", "sleep", "mkdir", "touch", "echo", "cat", "ls", "rm", "true", "chown", "chmod"} {
		tw.WriteHeader(&tar.Header{Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, Typeflag: tar.TypeSymlink})
	}
	scripts := map[string]string{
		"pip":   "#!/bin/sh\nfor p in \"$@\"; do case \"$p\" in install|-*) ;; *) mkdir -p " + sitePkgs + "/\"$p\" " + sitePkgs + "/\"$p\"-1.0.dist-info ;; esac; done\n",
		"conda": "#!/bin/sh\nfor p in \"$@\"; do case \"$p\" in install|r|-*) ;; *) mkdir -p /vagrant_installation/miniconda3/lib/R/library/\"${p#r-}\" && touch /vagrant_installation/miniconda3/conda-meta/\"$p\"-1.0.json ;; esac; done\n",
	}
	for n, s := range scripts {
		tw.WriteHeader(&tar.Header{Name: "vagrant_installation/miniconda3/bin/" + n, Mode: 0o755, Size: int64(len(s)), Typeflag: tar.TypeReg})
		tw.Write([]byte(s))
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func importBase(ctx context.Context) error {
	rootfs, err := busyboxRootfs()
	if err != nil {
		return err
	}
	cli, err := client.NewClientWithOpts(client.WithHost(testHost), client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: bytes.NewReader(rootfs), SourceName: "-"}, baseImage,
		image.ImportOptions{Changes: []string{`CMD ["/bin/sleep", "3600"]`, "ENV PATH=/bin"}})
	if err != nil {
		return err
	}
	defer rc.Close()
	return stream(rc, nil, "", nil)
}

func mustPlan(t testing.TB, r engine.Resource) *engine.Change {
	t.Helper()
	ch, err := r.Plan(context.Background())
	if err != nil {
		t.Fatalf("plan %s: %v", r.Address(), err)
	}
	return ch
}

func mustApply(t testing.TB, r engine.Resource, ch *engine.Change) string {
	t.Helper()
	var out bytes.Buffer
	if err := r.Apply(context.Background(), ch, render.NewText(&out, &out, false)); err != nil {
		t.Fatalf("apply %s: %v\n%s", r.Address(), err, out.String())
	}
	return out.String()
}

func wantAction(t *testing.T, ch *engine.Change, a engine.Action) {
	t.Helper()
	t.Logf("%s %s reasons=%q fields=%+v warnings=%q", a.Verb(), ch.Address, ch.Reasons, ch.Fields, ch.Warnings)
	if ch.Action != a {
		t.Fatalf("%s: action %q, want %q (reasons %v, fields %+v)", ch.Address, ch.Action, a, ch.Reasons, ch.Fields)
	}
}

func imageID(t testing.TB, cli *client.Client, ref string) string {
	t.Helper()
	ins, err := cli.ImageInspect(context.Background(), ref)
	if client.IsErrNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return ins.ID
}

func imageIDs(t *testing.T, cli *client.Client) []string {
	t.Helper()
	list, err := cli.ImageList(context.Background(), image.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID+strings.Join(s.RepoTags, ","))
	}
	slices.Sort(ids)
	return ids
}

func TestDaemonDown(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nobody.sock")
	im, err := NewImage(ImageConfig{Host: "unix://" + sock, Ref: mustRef("x:1"), Pull: true, Deployment: "d"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = im.Plan(context.Background())
	if err == nil || !strings.Contains(err.Error(), sock) || !strings.Contains(err.Error(), "not reachable") {
		t.Fatalf("err = %v, want it to name the socket %s", err, sock)
	}
}

func TestLoad(t *testing.T) {
	for _, layout := range []string{"classic", "oci"} {
		t.Run(layout, func(t *testing.T) {
			cli := testClient(t)
			dir := t.TempDir()
			name := "pvtest/load-" + layout + ":1"
			tarV := func(v int) (string, builtImage) {
				p := filepath.Join(dir, fmt.Sprintf("v%d.tar", v))
				b := writeImageTar(t, p, testImage{tags: []string{name}, layers: []testLayer{smallLayer(fmt.Sprintf("v%d", v))}, env: []string{fmt.Sprintf("V=%s-%d", layout, v)}, layout: layout})
				return p, b
			}
			// Each apply is an hour after the previous one: history tags
			// order by time.
			start, applies := time.Now(), 0
			res := func(p string) *Image {
				im, err := NewImage(ImageConfig{Resource: "load_" + layout, Host: testHost, Ref: mustRef(name), Load: p, Deployment: "dep-" + layout})
				if err != nil {
					t.Fatal(err)
				}
				applies++
				at := start.Add(time.Duration(applies) * time.Hour)
				im.now = func() time.Time { return at }
				return im
			}

			p1, b1 := tarV(1)
			im := res(p1)
			ch := mustPlan(t, im)
			wantAction(t, ch, engine.Create)
			mustApply(t, im, ch)
			if id := imageID(t, cli, name); id != b1.configDigest {
				t.Fatalf("after load: %s is %s, want %s", name, id, b1.configDigest)
			}
			// Already present under the right tag: no load.
			wantAction(t, mustPlan(t, res(p1)), engine.NoOp)

			// A changed tar under the same tag is drift, and the silent
			// retag is reported.
			p2, b2 := tarV(2)
			ch = mustPlan(t, res(p2))
			wantAction(t, ch, engine.Update)
			if len(ch.Warnings) == 0 || !strings.Contains(ch.Warnings[0], "moves tag "+name) {
				t.Errorf("warnings %q: want the retag reported", ch.Warnings)
			}
			if ch.Fields[0].Old != b1.configDigest || ch.Fields[0].New != b2.configDigest {
				t.Errorf("fields %+v", ch.Fields)
			}
			mustApply(t, res(p2), ch)
			wantAction(t, mustPlan(t, res(p2)), engine.NoOp)

			// Keep 1: after a third image, the first is gone, the second kept;
			// a stopped container of the deployment on the first goes too,
			// one of another deployment stays (and so pins nothing: it runs
			// the base image).
			stopped := createContainer(t, cli, b1.configDigest, "dep-"+layout)
			foreign := createContainer(t, cli, baseImage, "other-dep")
			p3, b3 := tarV(3)
			im3 := res(p3)
			mustApply(t, im3, mustPlan(t, im3))
			if imageID(t, cli, b1.configDigest) != "" {
				t.Error("cleanup kept the oldest image")
			}
			if imageID(t, cli, b2.configDigest) == "" || imageID(t, cli, b3.configDigest) == "" {
				t.Error("cleanup removed the current or the previous image")
			}
			if _, err := cli.ContainerInspect(context.Background(), stopped); err == nil {
				t.Error("cleanup kept the deployment's stopped container on the oldest image")
			}
			if _, err := cli.ContainerInspect(context.Background(), foreign); err != nil {
				t.Errorf("cleanup touched another deployment's container: %v", err)
			}

			// Back to v2, which is still present: a tag, no load.
			ch = mustPlan(t, res(p2))
			wantAction(t, ch, engine.Update)
			var p imagePlanProbe
			p.decode(t, ch)
			if p.Op != "tag" {
				t.Errorf("op %q, want tag", p.Op)
			}
			im2 := res(p2)
			mustApply(t, im2, ch)
			if imageID(t, cli, name) != b2.configDigest {
				t.Error("rollback did not retag")
			}

			// The record deletes what the resource put in place.
			del, err := FromRecord(*im2.Record(), NewDaemon(testHost))
			if err != nil {
				t.Fatal(err)
			}
			ch = mustPlan(t, del)
			wantAction(t, ch, engine.Delete)
			mustApply(t, del, ch)
			if imageID(t, cli, name) != "" {
				t.Error("delete left the tag")
			}
			wantAction(t, mustPlan(t, del), engine.NoOp)
		})
	}
}

type imagePlanProbe struct{ imagePlan }

func (p *imagePlanProbe) decode(t *testing.T, ch *engine.Change) {
	t.Helper()
	if err := jsonUnmarshal(ch.Data, &p.imagePlan); err != nil {
		t.Fatal(err)
	}
}

func TestLoadBroken(t *testing.T) {
	cli := testClient(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tar")
	writeImageTar(t, good, testImage{tags: []string{"pvtest/broken:1"}, layers: []testLayer{{zeroFile: 1 << 20}, smallLayer("x")}})
	data, _ := os.ReadFile(good)
	trunc := filepath.Join(dir, "trunc.tar")
	os.WriteFile(trunc, data[:len(data)/2], 0o644)
	before := imageIDs(t, cli)
	im, err := NewImage(ImageConfig{Host: testHost, Ref: mustRef("pvtest/broken:1"), Load: trunc, Deployment: "d"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = im.Plan(context.Background())
	if err == nil || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), trunc) {
		t.Fatalf("err = %v, want a truncation error naming the file", err)
	}
	if after := imageIDs(t, cli); !slices.Equal(before, after) {
		t.Errorf("images changed:\n%v\n%v", before, after)
	}
}

func TestPull(t *testing.T) {
	ctx := context.Background()
	cli := testClient(t)
	auth, _ := registry.EncodeAuthConfig(registry.AuthConfig{Username: regUser, Password: regPass, ServerAddress: testReg})
	push := func(src, ref string) {
		t.Helper()
		if err := cli.ImageTag(ctx, src, ref); err != nil {
			t.Fatal(err)
		}
		rc, err := cli.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: auth})
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if err := stream(rc, nil, "", nil); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		if _, err := cli.ImageRemove(ctx, ref, image.RemoveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ref := testReg + "/pvtest/pull:1"
	push(baseImage, ref)

	good := &Auth{Username: regUser, Password: regPass}
	res := func(name string, a *Auth, refresh bool) *Image {
		im, err := NewImage(ImageConfig{Resource: "pull", Host: testHost, Ref: mustRef(name), Pull: true, Auth: a, Deployment: "pull", Refresh: refresh})
		if err != nil {
			t.Fatal(err)
		}
		return im
	}

	// Auth failure: a clear message, and the password never shown.
	bad := res(ref, &Auth{Username: regUser, Password: "wrong-pw"}, false)
	ch := mustPlan(t, bad)
	wantAction(t, ch, engine.Create)
	err := bad.Apply(ctx, ch, render.NewText(io.Discard, io.Discard, false))
	if err == nil || !strings.Contains(err.Error(), "refused the credentials") || strings.Contains(err.Error(), "wrong-pw") {
		t.Fatalf("err = %v, want an auth error without the password", err)
	}

	// By tag.
	im := res(ref, good, false)
	ch = mustPlan(t, im)
	wantAction(t, ch, engine.Create)
	mustApply(t, im, ch)
	wantAction(t, mustPlan(t, res(ref, good, false)), engine.NoOp)
	wantAction(t, mustPlan(t, res(ref, good, true)), engine.NoOp)
	ins, err := cli.ImageInspect(ctx, ref)
	if err != nil || len(ins.RepoDigests) == 0 {
		t.Fatalf("inspect %s: %v %v", ref, err, ins.RepoDigests)
	}
	byDigest := ins.RepoDigests[0]

	// The registry's tag moves: only a refreshing plan sees it.
	if err := buildTrivial(ctx, cli, "pvtest/other:1"); err != nil {
		t.Fatal(err)
	}
	push("pvtest/other:1", ref)
	if err := cli.ImageTag(ctx, ins.ID, ref); err != nil {
		t.Fatal(err)
	}
	wantAction(t, mustPlan(t, res(ref, good, false)), engine.NoOp)
	ch = mustPlan(t, res(ref, good, true))
	wantAction(t, ch, engine.Update)
	if _, err := res(ref, &Auth{Username: regUser, Password: "wrong-pw"}, true).Plan(ctx); err == nil {
		t.Error("refresh with a wrong password: want an error")
	}

	// By digest: the old content, still in the registry.
	cli.ImageRemove(ctx, ref, image.RemoveOptions{})
	cli.ImageRemove(ctx, byDigest, image.RemoveOptions{})
	im = res(byDigest, good, false)
	ch = mustPlan(t, im)
	wantAction(t, ch, engine.Create)
	mustApply(t, im, ch)
	if imageID(t, cli, byDigest) != ins.ID {
		t.Errorf("pull by digest: got %s, want %s", imageID(t, cli, byDigest), ins.ID)
	}
	wantAction(t, mustPlan(t, res(byDigest, good, true)), engine.NoOp)

	// Credentials from the docker CLI's config file.
	cfgDir := t.TempDir()
	cred := base64.StdEncoding.EncodeToString([]byte(regUser + ":" + regPass))
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths":{"`+testReg+`":{"auth":"`+cred+`"}}}`), 0o600)
	t.Setenv("DOCKER_CONFIG", cfgDir)
	cli.ImageRemove(ctx, ref, image.RemoveOptions{})
	im = res(ref, nil, false)
	mustApply(t, im, mustPlan(t, im))
	wantAction(t, mustPlan(t, res(ref, nil, true)), engine.NoOp)
}

// buildTrivial makes an image that differs from the base by one label.
func buildTrivial(ctx context.Context, cli *client.Client, ref string) error {
	r := &BuildRecipe{From: baseImage, ExtraLines: []string{"LABEL trivial=" + ref}}
	im, err := NewImage(ImageConfig{Resource: "trivial", Host: testHost, Ref: mustRef(ref), Build: r, Deployment: "trivial"})
	if err != nil {
		return err
	}
	ch, err := im.Plan(ctx)
	if err != nil {
		return err
	}
	return im.Apply(ctx, ch, engine.Discard)
}

func TestBuild(t *testing.T) {
	cli := testClient(t)
	name := "pvtest/ext:alice-20261128"
	res := func(py ...string) *Image {
		im, err := NewImage(ImageConfig{Resource: "ext", Host: testHost, Ref: mustRef(name), Deployment: "build",
			Build: &BuildRecipe{From: baseImage, PythonPackages: py, RPackages: []string{"r-base64enc"}}})
		if err != nil {
			t.Fatal(err)
		}
		return im
	}
	im := res("prettytable")
	ch := mustPlan(t, im)
	wantAction(t, ch, engine.Create)
	out := mustApply(t, im, ch)
	if !strings.Contains(out, "Step") {
		t.Errorf("build output lacks the builder's steps:\n%s", out)
	}
	ins, err := cli.ImageInspect(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if ins.Config.Labels[LabelRecipe] == "" || ins.Config.Labels[LabelDeployment] != "build" {
		t.Errorf("labels %v", ins.Config.Labels)
	}
	first := ins.ID
	wantAction(t, mustPlan(t, res("prettytable")), engine.NoOp)

	// A changed recipe is drift.
	ch = mustPlan(t, res("prettytable", "numpy"))
	wantAction(t, ch, engine.Update)
	im2 := res("prettytable", "numpy")
	im2.now = func() time.Time { return time.Now().Add(time.Hour) }
	mustApply(t, im2, ch)
	if imageID(t, cli, name) == first {
		t.Error("rebuild kept the old image")
	}
	// Back to the first recipe: the earlier build is tagged, not rebuilt.
	ch = mustPlan(t, res("prettytable"))
	var p imagePlanProbe
	p.decode(t, ch)
	if p.Op != "tag" || p.WantIDs[0] != first {
		t.Errorf("plan %+v, want a tag of %s", p.imagePlan, first)
	}
}

// createContainer creates a container (state "created", never started).
func createContainer(t testing.TB, cli *client.Client, img, dep string) string {
	t.Helper()
	resp, err := cli.ContainerCreate(context.Background(), &container.Config{Image: img, Labels: map[string]string{LabelDeployment: dep}, Cmd: []string{"true"}}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true}) })
	return resp.ID
}

// runContainer starts a container the way the start script does.
func runContainer(t testing.TB, cli *client.Client, name, dep string, env []string, hostPort int, binds []string, cmd ...string) string {
	t.Helper()
	return runContainerImage(t, cli, baseImage, name, dep, env, hostPort, binds, cmd...)
}

func runContainerImage(t testing.TB, cli *client.Client, img, name, dep string, env []string, hostPort int, binds []string, cmd ...string) string {
	t.Helper()
	ctx := context.Background()
	cport := nat.Port("8000/tcp")
	hc := &container.HostConfig{Binds: binds}
	cc := &container.Config{Image: img, Env: env, Labels: map[string]string{LabelDeployment: dep}, Cmd: cmd}
	if hostPort > 0 {
		cc.ExposedPorts = nat.PortSet{cport: {}}
		hc.PortBindings = nat.PortMap{cport: {{HostPort: fmt.Sprint(hostPort)}}}
	}
	resp, err := cli.ContainerCreate(ctx, cc, hc, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true}) })
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return resp.ID
}

func TestContainer(t *testing.T) {
	ctx := context.Background()
	cli := testClient(t)
	home := t.TempDir()
	cfg := ContainerConfig{Resource: "jh", Host: testHost, Container: deploy.Container{Name: "pvtest-jh", Deployment: "ct", Image: mustRef(baseImage),
		Env:    []deploy.Env{{Name: "OPENBIS_URL", Value: "https://openbis.example.org"}, {Name: "JUPYTERHUB_PORT", Value: "8000"}},
		Ports:  []deploy.Port{{HostPort: 18000, ContainerPort: 8000}},
		Mounts: []deploy.Mount{{Source: home, Target: "/home"}},
	}}
	res := func(mod func(*ContainerConfig)) *Container {
		c := cfg
		if mod != nil {
			mod(&c)
		}
		r, err := NewContainer(c)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	// Missing.
	wantAction(t, mustPlan(t, res(nil)), engine.Create)

	// Another container holds the host port: an error naming it.
	other := runContainer(t, cli, "pvtest-squatter", "someone-else", nil, 18000, nil, "sleep", "3600")
	_, err := res(nil).Plan(ctx)
	if err == nil || !strings.Contains(err.Error(), "pvtest-squatter") || !strings.Contains(err.Error(), "18000") {
		t.Fatalf("err = %v, want a port clash naming pvtest-squatter", err)
	}
	cli.ContainerRemove(ctx, other, container.RemoveOptions{Force: true})

	// Running as declared, with a package installed by hand inside.
	env := []string{"OPENBIS_URL=https://openbis.example.org", "JUPYTERHUB_PORT=8000"}
	id := runContainer(t, cli, "pvtest-jh", "ct", env, 18000, []string{home + ":/home"},
		"sh", "-c", "mkdir -p "+sitePkgs+"/prettytable-3.9.0.dist-info "+sitePkgs+"/prettytable && sleep 3600")
	var ch *engine.Change
	for range 50 { // the mkdir runs right after start
		ch = mustPlan(t, res(nil))
		if len(ch.Warnings) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantAction(t, ch, engine.NoOp)
	if len(ch.Warnings) != 1 || !strings.Contains(ch.Warnings[0], "prettytable-3.9.0") || !strings.Contains(ch.Warnings[0], "restart") {
		t.Errorf("warnings %q: want the hand-installed package reported", ch.Warnings)
	}

	// Drift cases, one field each.
	other2, err := cli.ImageInspect(ctx, baseImage)
	if err != nil {
		t.Fatal(err)
	}
	_ = other2
	if err := buildTrivial(ctx, cli, "pvtest/ct-other:1"); err != nil {
		t.Fatal(err)
	}
	drift := []struct {
		name  string
		mod   func(*ContainerConfig)
		field string
	}{
		{"env", func(c *ContainerConfig) {
			c.Container.Env = []deploy.Env{{Name: "OPENBIS_URL", Value: "https://other.example.org"}}
		}, "env.OPENBIS_URL"},
		{"image", func(c *ContainerConfig) { c.Container.Image = mustRef("pvtest/ct-other:1") }, "image"},
		{"ports", func(c *ContainerConfig) { c.Container.Ports = []deploy.Port{{HostPort: 18001, ContainerPort: 8000}} }, "ports"},
		{"mounts", func(c *ContainerConfig) { c.Container.Mounts = nil }, "mounts"},
	}
	for _, d := range drift {
		t.Run(d.name, func(t *testing.T) {
			ch := mustPlan(t, res(d.mod))
			wantAction(t, ch, engine.Replace)
			if len(ch.Fields) != 1 || ch.Fields[0].Name != d.field {
				t.Errorf("fields %+v, want one %s", ch.Fields, d.field)
			}
		})
	}
	// Image env of its own (PATH) is not drift: covered by the NoOp above.

	// Stopped: drift; Apply removes stopped containers of the deployment
	// other than the current one, and nothing else.
	stale := runContainer(t, cli, "pvtest-jh-old", "ct", nil, 0, nil, "true")
	foreign := runContainer(t, cli, "pvtest-foreign", "not-ct", nil, 0, nil, "true")
	timeout := 1
	if err := cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	waitExited(t, cli, stale, foreign, id)
	r := res(nil)
	ch = mustPlan(t, r)
	wantAction(t, ch, engine.Update)
	if !strings.Contains(strings.Join(ch.Reasons, " "), "not running") {
		t.Errorf("reasons %v", ch.Reasons)
	}
	mustApply(t, r, ch)
	exists := func(id string) bool { _, err := cli.ContainerInspect(ctx, id); return err == nil }
	if exists(stale) || !exists(foreign) || !exists(id) {
		t.Errorf("after apply: stale %v (want gone), foreign %v, current %v (want kept)", exists(stale), exists(foreign), exists(id))
	}

	// Left the spec: the record deletes it.
	del, err := FromRecord(*r.Record(), NewDaemon(testHost))
	if err != nil {
		t.Fatal(err)
	}
	ch = mustPlan(t, del)
	wantAction(t, ch, engine.Delete)
	mustApply(t, del, ch)
	if exists(id) {
		t.Error("delete left the container")
	}
}

func waitExited(t *testing.T, cli *client.Client, ids ...string) {
	t.Helper()
	for range 100 {
		list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("status", "running"))})
		if err != nil {
			t.Fatal(err)
		}
		running := false
		for _, c := range list {
			if slices.Contains(ids, c.ID) {
				running = true
			}
		}
		if !running {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("containers did not stop")
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// BenchmarkPlanConverged measures a plan of the image (from a tar) and the
// container on a host where both are as declared: what `provision plan`
// pays for the docker side, client setup included.
func BenchmarkPlanConverged(b *testing.B) {
	cli := testClient(b)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(b.TempDir(), "conv.tar")
	layer := testLayer{files: []testFile{{name: "bin/busybox", body: bb, mode: 0o755}, {name: "bin/sleep", link: "busybox"}}}
	writeImageTar(b, p, testImage{tags: []string{"pvtest/conv:1"}, layers: []testLayer{layer}, layout: "oci"})
	icfg := ImageConfig{Resource: "conv", Host: testHost, Ref: mustRef("pvtest/conv:1"), Load: p, Deployment: "conv"}
	im, err := NewImage(icfg)
	if err != nil {
		b.Fatal(err)
	}
	mustApply(b, im, mustPlan(b, im))
	ccfg := ContainerConfig{Resource: "conv", Host: testHost, Container: deploy.Container{Name: "pvtest-conv", Deployment: "conv", Image: mustRef("pvtest/conv:1"),
		Env: []deploy.Env{{Name: "A", Value: "1"}}, Ports: []deploy.Port{{HostPort: 18100, ContainerPort: 8000}}}}
	runContainerImage(b, cli, "pvtest/conv:1", "pvtest-conv", "conv", []string{"A=1"}, 18100, nil, "sleep", "3600")
	b.ResetTimer()
	for b.Loop() {
		im, err := NewImage(icfg)
		if err != nil {
			b.Fatal(err)
		}
		if ch, err := im.Plan(context.Background()); err != nil || ch.Action != engine.NoOp {
			b.Fatalf("image plan %+v, %v", ch, err)
		}
		c, err := NewContainer(ccfg)
		if err != nil {
			b.Fatal(err)
		}
		if ch, err := c.Plan(context.Background()); err != nil || ch.Action != engine.NoOp {
			b.Fatalf("container plan %+v, %v", ch, err)
		}
	}
}

// homeFile reads path from a new container of baseImage that mounts m at
// /home, through the archive endpoint: its header (owner, mode) and bytes.
func homeFile(t *testing.T, cli *client.Client, m mount.Mount, p string) (*tar.Header, string) {
	t.Helper()
	ctx := context.Background()
	resp, err := cli.ContainerCreate(ctx, &container.Config{Image: baseImage, Cmd: []string{"true"}}, &container.HostConfig{Mounts: []mount.Mount{m}}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true})
	rc, _, err := cli.CopyFromContainer(ctx, resp.ID, p)
	if err != nil {
		t.Fatalf("read %s from the home: %v", p, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(tr)
	return h, string(b)
}

// TestHomeMigration: a container that kept users' work in its own layer
// (no /home mount: converged without a home, or by the guide's line) is
// planned for replacement with its work copied into the persistent home
// first, every file with its owner, mode and bytes; a new home directory
// is seeded from the image's /home; a copy that fails fails the apply.
func TestHomeMigration(t *testing.T) {
	ctx := context.Background()
	cli := testClient(t)
	const volume = "pvtest-mig-home"
	t.Cleanup(func() { cli.VolumeRemove(context.Background(), volume, true) })
	old := runContainer(t, cli, "pvtest-mig", "mig", nil, 0, nil, "sh", "-c",
		"mkdir -p /home/alice/openbis && echo '{\"cells\": []}' >/home/alice/openbis/analysis.ipynb && "+
			"chown -R 1000:1001 /home/alice && chmod 640 /home/alice/openbis/analysis.ipynb && chmod 700 /home/alice && sleep 3600")
	waitFor(t, func() bool {
		ch, _ := cli.ContainerDiff(ctx, old)
		return layerHome(ch) >= 3
	})
	cfg := ContainerConfig{Resource: "mig", Host: testHost, Container: deploy.Container{Name: "pvtest-mig", Deployment: "mig", Image: mustRef(baseImage),
		Mounts: []deploy.Mount{{Source: volume, Target: "/home", Volume: true}}}}
	r, err := NewContainer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch := mustPlan(t, r)
	wantAction(t, ch, engine.Replace)
	if !strings.Contains(strings.Join(ch.Reasons, "\n"), "the container's own layer (3 paths)") {
		t.Errorf("reasons %q", ch.Reasons)
	}
	var out bytes.Buffer
	if err := r.Apply(ctx, ch, render.NewText(&out, &out, false)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "copied 5 files and directories into volume "+volume) {
		t.Errorf("apply said:\n%s", out.String())
	}
	h, body := homeFile(t, cli, mount.Mount{Type: mount.TypeVolume, Source: volume, Target: "/home"}, "/home/alice/openbis/analysis.ipynb")
	if h.Uid != 1000 || h.Gid != 1001 || h.Mode&0o777 != 0o640 || body != "{\"cells\": []}\n" {
		t.Errorf("migrated notebook: uid %d gid %d mode %o body %q", h.Uid, h.Gid, h.Mode, body)
	}
	if h, _ := homeFile(t, cli, mount.Mount{Type: mount.TypeVolume, Source: volume, Target: "/home"}, "/home/alice"); h.Mode&0o777 != 0o700 {
		t.Errorf("alice's home mode %o, want 700", h.Mode&0o777)
	}
	// An apply that stopped after the copy, before the restart: the next
	// plan finishes it rather than refuse the home it filled.
	if ch := mustPlan(t, r); ch.Action != engine.Replace || !strings.Contains(strings.Join(ch.Reasons, "\n"), "by an earlier apply") {
		t.Errorf("plan after an interrupted migration: %+v", ch)
	}
	// The image's own /home came along: it was in the old container too.
	if _, body := homeFile(t, cli, mount.Mount{Type: mount.TypeVolume, Source: volume, Target: "/home"}, "/home/vagrant/README"); !strings.Contains(body, "vagrant") {
		t.Errorf("image's /home not in the volume: %q", body)
	}

	// A new home directory is seeded from the image.
	dir := filepath.Join(t.TempDir(), "srv-home")
	seedCfg := cfg
	seedCfg.Resource, seedCfg.Container.Name = "seed", "pvtest-seed"
	seedCfg.Container.Mounts = []deploy.Mount{{Source: dir, Target: "/home"}}
	seed, err := NewContainer(seedCfg)
	if err != nil {
		t.Fatal(err)
	}
	ch = mustPlan(t, seed)
	wantAction(t, ch, engine.Create)
	mustApply(t, seed, ch)
	if fi, err := os.Stat(filepath.Join(dir, "vagrant/README")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 1000 {
		t.Errorf("seeded home: %v %+v", err, fi)
	}
	if ch := mustPlan(t, seed); ch.Action != engine.Create || strings.Contains(strings.Join(ch.Reasons, " "), "seeds") {
		t.Errorf("seeded again: %+v", ch)
	}

	// A copy that fails (the old container went away since the plan)
	// fails the apply, before any restart, and leaves no partial home: the
	// next plan copies again.
	old2 := runContainer(t, cli, "pvtest-mig2", "mig", nil, 0, nil, "sh", "-c", "mkdir -p /home/bob && echo x >/home/bob/n.ipynb && sleep 3600")
	waitFor(t, func() bool { ch, _ := cli.ContainerDiff(ctx, old2); return layerHome(ch) >= 2 })
	cfg2 := cfg
	cfg2.Resource, cfg2.Container.Name = "mig2", "pvtest-mig2"
	cfg2.Container.Mounts = []deploy.Mount{{Source: "pvtest-mig2-home", Target: "/home", Volume: true}}
	t.Cleanup(func() { cli.VolumeRemove(context.Background(), "pvtest-mig2-home", true) })
	r2, _ := NewContainer(cfg2)
	ch = mustPlan(t, r2)
	if err := cli.ContainerRemove(ctx, old2, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := r2.Apply(ctx, ch, engine.Discard); err == nil || !strings.Contains(err.Error(), "read /home of") {
		t.Errorf("apply after the source vanished: %v", err)
	}
	if _, err := cli.VolumeInspect(ctx, "pvtest-mig2-home"); err == nil {
		t.Error("a failed copy left a partial volume behind")
	}

	// Users' work in the layer, and a home that already holds data: plan
	// refuses rather than copy over it or restart without it.
	runContainer(t, cli, "pvtest-mig3", "mig", nil, 0, nil, "sh", "-c", "mkdir -p /home/carol && echo x >/home/carol/n.ipynb && sleep 3600")
	cfg3 := cfg
	cfg3.Resource, cfg3.Container.Name = "mig3", "pvtest-mig3" // the volume filled above
	r3, _ := NewContainer(cfg3)
	waitFor(t, func() bool { _, err := r3.Plan(ctx); return err != nil })
	if _, err := r3.Plan(ctx); err == nil || !strings.Contains(err.Error(), "already holds data") {
		t.Errorf("plan with users' work in the layer and a full home: %v", err)
	}
	// Nor is such a container deleted when it leaves the spec.
	del, err := FromRecord(*r3.Record(), NewDaemon(testHost))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.Plan(ctx); err == nil || !strings.Contains(err.Error(), "live only in it") {
		t.Errorf("deleting a container with users' work in its layer: %v", err)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not met in 5 s")
}

// TestLayerChanges: reading the container's overlay upper directory gives
// what the Engine's diff gives: additions, modifications, deletions, and
// a directory removed and made again.
func TestLayerChanges(t *testing.T) {
	ctx := context.Background()
	cli := testClient(t)
	id := runContainer(t, cli, "pvtest-layer", "lc", nil, 0, nil, "sh", "-c",
		"mkdir -p /home/alice/nb && echo nb >/home/alice/nb/a.ipynb && echo x >/added && rm -rf /vagrant_installation/miniconda3/bin && "+
			"rm -rf /vagrant_installation/miniconda3/lib && mkdir -p /vagrant_installation/miniconda3/lib/new && touch /bin/busybox && echo ready >/ready && sleep 3600")
	var ins container.InspectResponse
	for range 50 {
		var err error
		if ins, err = cli.ContainerInspect(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(ins.GraphDriver.Data["UpperDir"], "ready")); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	got, ok := upperChanges(ins.GraphDriver.Data["UpperDir"], ins.GraphDriver.Data["LowerDir"])
	if !ok {
		t.Fatalf("the upper directory of %s (%s) was not read", id, ins.GraphDriver.Name)
	}
	want, err := cli.ContainerDiff(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	set := func(cs []container.FilesystemChange) []string {
		var s []string
		for _, c := range cs {
			s = append(s, fmt.Sprintf("%d %s", c.Kind, c.Path))
		}
		slices.Sort(s)
		return s
	}
	if g, w := set(got), set(want); !slices.Equal(g, w) {
		t.Errorf("upper directory:\n%s\nEngine's diff:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
	if _, ok := upperChanges("/nonexistent/diff", "/nonexistent/lower"); ok {
		t.Error("a daemon's directories this machine cannot see were read")
	}
}
