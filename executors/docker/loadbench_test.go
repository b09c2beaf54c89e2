//go:build integration

package docker

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/openbis/provision/internal/render"
)

// The load benchmark compares loading a 1 GiB `docker save` tar through
// this executor (plan + apply, in a child process so that its peak RSS is
// its own) with `docker load -i` of the same tar against the same daemon,
// and prints the figures. It runs only with PROVISION_BENCH=1 (see
// bench.sh): it writes 1 GiB into the test daemon's data root.

const (
	benchEnv      = "PROVISION_BENCH"
	benchChildEnv = "PROVISION_BENCH_CHILD" // host|tar|name
	benchName     = "pvtest/bench:1"
)

func TestLoadBenchmark(t *testing.T) {
	if os.Getenv(benchEnv) != "1" {
		t.Skip("set PROVISION_BENCH=1 (executors/docker/bench.sh) to run the load benchmark")
	}
	size := int64(1 << 30)
	if s := os.Getenv("PROVISION_BENCH_MIB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		size = int64(n) << 20
	}
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "bench.tar")
	var layers []testLayer
	for range 4 {
		layers = append(layers, testLayer{zeroFile: size / 4})
	}
	built := writeImageTar(t, tarPath, testImage{tags: []string{benchName}, layers: layers, layout: "oci"})
	fi, _ := os.Stat(tarPath)
	cli := testClient(t)
	ctx := context.Background()
	removeBench := func() {
		cli.ImageRemove(ctx, built.configDigest, image.RemoveOptions{Force: true, PruneChildren: true})
	}
	dockerCLI, err := exec.LookPath("docker")
	if err != nil {
		t.Fatal("docker CLI not found")
	}
	type result struct {
		wall time.Duration
		rss  int64 // KiB
	}
	run := func(cmd *exec.Cmd) result {
		removeBench()
		// Flush the previous run's writes so that neither side pays for
		// the other's.
		syscall.Sync()
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v", cmd.Args, err)
		}
		wall := time.Since(start)
		if imageID(t, cli, benchName) != built.configDigest {
			t.Fatalf("%v did not load the image", cmd.Args)
		}
		return result{wall, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss}
	}
	prov := func() *exec.Cmd {
		c := exec.Command(os.Args[0], "-test.run=^TestLoadBenchChild$", "-test.count=1")
		c.Env = append(os.Environ(), benchChildEnv+"="+testHost+"|"+tarPath)
		return c
	}
	dock := func() *exec.Cmd {
		// Not quiet: the daemon streams progress to both sides alike.
		c := exec.Command(dockerCLI, "load", "-i", tarPath)
		c.Env = append(os.Environ(), "DOCKER_HOST="+testHost)
		return c
	}
	// Alternate, three times each, so that neither side profits from
	// order; the machine is shared, so compare the best runs.
	var p, d []result
	for i := range 3 {
		if i%2 == 0 {
			p = append(p, run(prov()))
			d = append(d, run(dock()))
		} else {
			d = append(d, run(dock()))
			p = append(p, run(prov()))
		}
	}
	removeBench()
	best := func(rs []result) result {
		b := rs[0]
		for _, r := range rs[1:] {
			if r.wall < b.wall {
				b.wall = r.wall
			}
			if r.rss > b.rss {
				b.rss = r.rss
			}
		}
		return b
	}
	bp, bd := best(p), best(d)
	fmt.Printf("load benchmark: tar %s (%d layers, OCI layout), daemon %s\n", humanSize(fi.Size()), len(layers), "dockerd 20.10 (Debian docker.io)")
	walls := func(rs []result) []time.Duration {
		var w []time.Duration
		for _, r := range rs {
			w = append(w, r.wall.Round(time.Millisecond))
		}
		return w
	}
	fmt.Printf("  provision plan+apply: best %v of %v, peak RSS %.1f MiB\n", bp.wall.Round(time.Millisecond), walls(p), float64(bp.rss)/1024)
	fmt.Printf("  docker load -i (%s): best %v of %v, peak RSS %.1f MiB\n", dockerCLI, bd.wall.Round(time.Millisecond), walls(d), float64(bd.rss)/1024)
	fmt.Printf("  ratio provision/docker: %.3f (target <= 1.05); provision peak RSS target < 64 MiB\n", float64(bp.wall)/float64(bd.wall))
}

// TestLoadBenchChild is the provision side of the benchmark, run as a
// child process: plan and apply one docker_image with load.
func TestLoadBenchChild(t *testing.T) {
	spec := os.Getenv(benchChildEnv)
	if spec == "" {
		t.Skip("benchmark child only")
	}
	var host, tarPath string
	for i := 0; i < len(spec); i++ {
		if spec[i] == '|' {
			host, tarPath = spec[:i], spec[i+1:]
			break
		}
	}
	im, err := NewImage(ImageConfig{Resource: "bench", Host: host, Ref: mustRef(benchName), Load: tarPath, Deployment: "bench", Keep: -1})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := im.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Apply(context.Background(), ch, render.NewText(io.Discard, io.Discard, false)); err != nil {
		t.Fatal(err)
	}
}
