// Command bench measures the performance figures of issue 7 on fresh
// servers, driving the real provision binary as the end-to-end tests do,
// and prints them as a Markdown table. testenv/bench.sh runs it as root.
//
// Wall times include entering the server's namespaces (nsenter), which is
// measured on its own and printed as the baseline.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/openbis/provision/testenv/e2e"
	"github.com/openbis/provision/testenv/freshserver"
)

type sample struct {
	name, target string
	d            []time.Duration
}

func (s *sample) row() string {
	if len(s.d) == 0 {
		return fmt.Sprintf("| %s | – | – | – | 0 | %s |", s.name, s.target)
	}
	med, lo, hi := e2e.Stats(s.d)
	return fmt.Sprintf("| %s | %s | %s | %s | %d | %s |", s.name, ms(med), ms(lo), ms(hi), len(s.d), s.target)
}

func ms(d time.Duration) string { return e2e.Ms(d) }

func main() {
	runs := flag.Int("runs", 10, "runs of each timing (median of them)")
	boots := flag.Int("converges", 10, "fresh servers to time the first converge on")
	bigSize := flag.Int64("big", 1<<30, "bytes of padding in the big image (0: skip the big image)")
	bin := flag.String("provision", "", "provision binary (default: build ./cmd/provision)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *runs, *boots, *bigSize, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type bench struct {
	repo, bin string
	maxRSS    map[string]int64 // KiB, by command
}

func run(ctx context.Context, runs, boots int, bigSize int64, bin string) error {
	repo, err := e2e.RepoRoot()
	if err != nil {
		return err
	}
	if bin == "" {
		dir, err := os.MkdirTemp("", "provision-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "provision")
		if err := e2e.BuildProvision(ctx, repo, bin); err != nil {
			return err
		}
	}
	b := &bench{repo: repo, bin: bin, maxRSS: map[string]int64{}}

	converge := &sample{name: "first converge of a fresh server, image already loaded (apply, JupyterHub host)", target: "≤ 1.5 s"}
	profile := &sample{name: "first converge, openBIS host (ELN profile)", target: ""}
	parts := map[string]*sample{} // the converge's resources, by address
	var order []string
	for i := 0; i < boots; i++ {
		fmt.Fprintf(os.Stderr, "bench: first converge %d/%d\n", i+1, boots)
		if err := b.withServer(ctx, func(h e2e.Host) error {
			tar, _, err := h.WriteImage("1", false, 0)
			if err != nil {
				return err
			}
			if err := b.must(ctx, h, "docker", "load", "-q", "-i", tar); err != nil {
				return err
			}
			r, spans, err := b.stream(ctx, h, append(append([]string{"apply"}, e2e.HostArgs(e2e.JupyterHubHost)...), e2e.SpecPath))
			if err != nil {
				return err
			}
			converge.d = append(converge.d, r.Took)
			addrs := slices.Collect(maps.Keys(spans))
			slices.SortFunc(addrs, func(a, b string) int { return spans[a].first.Compare(spans[b].first) })
			for _, addr := range addrs {
				sp := spans[addr]
				if parts[addr] == nil {
					parts[addr] = &sample{name: "— of which `" + addr + "`"}
					order = append(order, addr)
				}
				parts[addr].d = append(parts[addr].d, sp.last.Sub(sp.first))
			}
			r, err = b.provision(ctx, h, "apply", e2e.OpenBISHost)
			if err != nil {
				return err
			}
			profile.d = append(profile.d, r.Took)
			return nil
		}); err != nil {
			return err
		}
	}

	base := &sample{name: "baseline: `nsenter … true` into the server", target: ""}
	plan := &sample{name: "`provision plan`, converged server", target: "≤ 100 ms"}
	noop := &sample{name: "`provision apply`, nothing to do", target: "≤ 150 ms"}
	planELN := &sample{name: "`provision plan`, openBIS host, converged", target: "≤ 100 ms"}
	dockerLoad := &sample{name: fmt.Sprintf("`docker load` of a %s image tar", size(bigSize)), target: ""}
	provLoad := &sample{name: "provision's load of the same tar (within apply)", target: "≤ 1.05 × docker load"}
	bigApply := &sample{name: "whole apply switching to the big image (load, script, restart)", target: ""}
	bigPlan := &sample{name: "`provision plan` with the big tar loaded", target: "≤ 100 ms"}

	fmt.Fprintln(os.Stderr, "bench: converged-server timings")
	err = b.withServer(ctx, func(h e2e.Host) error {
		if _, _, err := h.WriteImage("1", false, 0); err != nil {
			return err
		}
		for _, host := range []string{e2e.JupyterHubHost, e2e.OpenBISHost} {
			if _, err := b.provision(ctx, h, "apply", host); err != nil {
				return err
			}
		}
		for i := 0; i < runs; i++ {
			r, err := h.Run(ctx, "true")
			if err != nil {
				return err
			}
			base.d = append(base.d, r.Took)
			for _, c := range []struct {
				verb, host string
				s          *sample
			}{{"plan", e2e.JupyterHubHost, plan}, {"apply", e2e.JupyterHubHost, noop}, {"plan", e2e.OpenBISHost, planELN}} {
				r, err := b.provision(ctx, h, c.verb, c.host)
				if err != nil {
					return err
				}
				c.s.d = append(c.s.d, r.Took)
			}
		}
		if bigSize <= 0 {
			return nil
		}

		fmt.Fprintf(os.Stderr, "bench: writing the %s image tar\n", size(bigSize))
		tar, _, err := h.WriteImage("big", false, bigSize)
		if err != nil {
			return err
		}
		// Both loads read the tar from the page cache.
		if err := b.must(ctx, h, "cat", tar); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "bench: docker load")
		start := time.Now()
		if err := b.must(ctx, h, "docker", "load", "-q", "-i", tar); err != nil {
			return err
		}
		dockerLoad.d = append(dockerLoad.d, time.Since(start))
		if err := b.must(ctx, h, "docker", "rmi", "-f", e2e.ImageRepo+":big"); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "bench: provision apply of the big image")
		load, whole, err := b.timedLoad(ctx, h)
		if err != nil {
			return err
		}
		provLoad.d = append(provLoad.d, load)
		bigApply.d = append(bigApply.d, whole)
		for i := 0; i < runs; i++ {
			r, err := b.provision(ctx, h, "plan", e2e.JupyterHubHost, "-var", "image_version=big")
			if err != nil {
				return err
			}
			bigPlan.d = append(bigPlan.d, r.Took)
		}
		return nil
	})
	if err != nil {
		return err
	}

	cpu, _ := os.ReadFile("/proc/cpuinfo")
	model := "unknown CPU"
	for _, l := range strings.Split(string(cpu), "\n") {
		if strings.HasPrefix(l, "model name") {
			_, model, _ = strings.Cut(l, ": ")
			break
		}
	}
	fmt.Printf("\nMeasured %s on %s, %d cores (%s), Debian 12 fresh servers (systemd-nspawn), Docker 20.10, firewalld 1.3.\n\n",
		time.Now().UTC().Format("2006-01-02"), model, runtime.NumCPU(), runtime.GOARCH)
	fmt.Println("| measure | median | min | max | runs | target |")
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	rows := []*sample{base, plan, noop, planELN, converge}
	for _, addr := range order {
		rows = append(rows, parts[addr])
	}
	for _, s := range append(rows, profile, dockerLoad, provLoad, bigApply, bigPlan) {
		fmt.Println(s.row())
	}
	if len(dockerLoad.d) > 0 && len(provLoad.d) > 0 {
		fmt.Printf("\nLoad ratio provision / docker load: %.3f (target ≤ 1.05)\n", provLoad.d[0].Seconds()/dockerLoad.d[0].Seconds())
	}
	fmt.Println()
	for _, k := range []string{"plan", "apply"} {
		fmt.Printf("Peak RSS of provision %s (over all runs): %.1f MiB\n", k, float64(b.maxRSS[k])/1024)
	}
	return nil
}

func size(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.0f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}

// withServer boots a fresh server with provision installed, runs f and
// powers the server off.
func (b *bench) withServer(ctx context.Context, f func(e2e.Host) error) error {
	s, err := freshserver.Boot(ctx, freshserver.Options{})
	if err != nil {
		return err
	}
	defer s.Shutdown()
	h, err := e2e.Install(s, b.bin, filepath.Join(b.repo, "testenv/e2e/standin.hcl"))
	if err != nil {
		return err
	}
	return f(h)
}

func (b *bench) must(ctx context.Context, h e2e.Host, args ...string) error {
	cmd := h.Command(ctx, args...)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w %s", strings.Join(args, " "), err, stderr.String())
	}
	return nil
}

// provision runs provision VERB for host and fails unless it exits 0.
func (b *bench) provision(ctx context.Context, h e2e.Host, verb, host string, extra ...string) (e2e.Result, error) {
	args := append(append([]string{verb}, e2e.HostArgs(host)...), extra...)
	r, _, err := b.stream(ctx, h, append(args, e2e.SpecPath))
	return r, err
}

// rssTag marks busybox time's report of provision's peak RSS. The peak is
// measured by busybox inside the server, not from here: a child forked
// from this Go process would report this process's RSS.
const rssTag = "provision-peak-rss-kib "

// stream runs provision with args inside the server, fails unless it exits
// 0, records its peak RSS, and returns when each resource's progress began
// and ended (by arrival of its "ADDRESS: …" lines).
func (b *bench) stream(ctx context.Context, h e2e.Host, args []string) (e2e.Result, map[string]*span, error) {
	full := append([]string{"busybox", "time", "-f", rssTag + "%M", e2e.BinPath}, args...)
	cmd := h.Command(ctx, full...)
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return e2e.Result{}, nil, err
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return e2e.Result{}, nil, err
	}
	spans := map[string]*span{}
	var text strings.Builder
	var rss int64
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, rssTag); ok {
			rss, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			// busybox time converts ru_maxrss as if it counted pages, but
			// Linux reports KiB: its %M is pagesize/1024 times too large
			// (checked against GNU time on the same binary).
			rss /= int64(os.Getpagesize() / 1024)
			continue
		}
		text.WriteString(line + "\n")
		addr, _, ok := strings.Cut(line, ": ")
		if ok && !strings.ContainsAny(addr, " \t") && strings.Contains(addr, ".") {
			now := time.Now()
			if spans[addr] == nil {
				spans[addr] = &span{first: now}
			}
			spans[addr].last = now
		}
	}
	err = cmd.Wait()
	r := e2e.Result{Args: full, Stdout: text.String(), Took: time.Since(start)}
	if err != nil {
		return r, nil, fmt.Errorf("%s: %w\n%s", strings.Join(full, " "), err, text.String())
	}
	if rss > b.maxRSS[args[0]] {
		b.maxRSS[args[0]] = rss
	}
	return r, spans, nil
}

type span struct{ first, last time.Time }

// timedLoad applies the big image and returns how long the image resource
// took (from its first to its last progress line) and the whole apply.
func (b *bench) timedLoad(ctx context.Context, h e2e.Host) (load, whole time.Duration, err error) {
	args := append(append([]string{"apply"}, e2e.HostArgs(e2e.JupyterHubHost)...), "-var", "image_version=big", e2e.SpecPath)
	r, spans, err := b.stream(ctx, h, args)
	if err != nil {
		return 0, 0, err
	}
	sp := spans["docker_image.jupyterhub"]
	if sp == nil {
		return 0, 0, fmt.Errorf("apply of the big image printed no progress of docker_image.jupyterhub:\n%s", r.Stdout)
	}
	return sp.last.Sub(sp.first), r.Took, nil
}
