package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/openbis/provision/internal/engine"
	"github.com/openbis/provision/internal/remote"
	"github.com/openbis/provision/internal/render"
	"github.com/openbis/provision/internal/spec"
)

// targets are the hosts plan and apply reach from here, in apply order:
// every host with --all, the --host block when it has an ssh block, nil
// when the run converges this machine only (as without --all).
func (o *options) targets(s *spec.Spec) ([]remote.Target, error) {
	if o.all && o.host != "" {
		return nil, errors.New("give --all or --host NAME, not both")
	}
	var names []string
	switch {
	case o.all:
		names = s.HostNames()
	case s.Host(o.host) != nil && s.Host(o.host).SSH != nil:
		if !o.reach(s, o.host).Local() {
			names = []string{o.host}
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	// The JupyterHub host first: the openBIS host's ELN profile points to
	// it, so it must work before the profile does.
	slices.SortStableFunc(names, func(a, b string) int {
		return boolInt(b == s.Deployment.JupyterHubHost) - boolInt(a == s.Deployment.JupyterHubHost)
	})
	var ts []remote.Target
	for _, n := range names {
		ts = append(ts, o.reach(s, n))
	}
	for _, opt := range o.sshOptions {
		if err := remote.CheckOption(opt); err != nil {
			return nil, err
		}
	}
	return ts, nil
}

// forHost sets the host JSON lines name from here on; "" for lines about
// the whole run.
func (u *ui) forHost(host string) {
	if j, ok := u.Renderer.(interface{ ForHost(string) }); ok {
		j.ForHost(host)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// reach is how host block name is reached: in place when it is this
// machine's block (its host name exactly: a short-name match could be
// another deployment's host), else at its ssh block's destination or its
// name.
func (o *options) reach(s *spec.Spec, name string) remote.Target {
	if here, err := os.Hostname(); err == nil && here == name {
		return remote.Target{Host: name}
	}
	t := remote.Target{Host: name, Destination: name}
	if h := s.Host(name); h.SSH != nil {
		if h.SSH.Destination != "" {
			t.Destination = h.SSH.Destination
		}
		t.Port = h.SSH.Port
	}
	return t
}

// connect readies the runner, and the plan request every host is sent,
// with the spec as this machine evaluated it: the hosts read nothing of
// their own for file() and env().
func (o *options) connect(src *spec.File, in spec.Inputs) (*remote.Runner, *remote.Request, error) {
	if o.dockerHost != "" || o.bus != "" {
		return nil, nil, errors.New("--docker-host and --bus name the daemons of one host; with --all, an ssh block or a plan of several hosts, every host uses its own")
	}
	snap, err := src.Snapshot(in)
	if err != nil {
		return nil, nil, err
	}
	snap.Inputs.Captured = src.Captured
	// PROVISION_SSH names another ssh client (a wrapper), as GIT_SSH does.
	r, err := remote.NewRunner(&remote.SSH{Program: os.Getenv("PROVISION_SSH"), Config: o.sshConfig, Options: o.sshOptions, ControlDir: remote.DefaultControlDir()})
	if err != nil {
		return nil, nil, err
	}
	return r, &remote.Request{Command: "plan", Source: snap, State: o.statePath, LockFile: o.lockPath,
		LockTimeout: o.lockTimeout, Refresh: o.refresh}, nil
}

// hostRun is one host's answer, kept to be printed in order.
type hostRun struct {
	lines capped
	code  int
	err   error
}

// capped is a buffer that refuses to grow beyond what Replay reads.
type capped struct{ bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if c.Len()+len(p) > render.MaxAnswer {
		return 0, fmt.Errorf("the host's answer is longer than %d MiB", render.MaxAnswer>>20)
	}
	return c.Buffer.Write(p)
}

// each sends every target its request at once and waits for all.
func each(ctx context.Context, r *remote.Runner, u *ui, targets []remote.Target, req func(remote.Target) *remote.Request) []*hostRun {
	runs := make([]*hostRun, len(targets))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, t := range targets {
		runs[i] = &hostRun{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i].code, runs[i].err = r.Run(ctx, t, req(t), &runs[i].lines, func(msg string) {
				mu.Lock()
				u.Note(msg)
				mu.Unlock()
			})
		}()
	}
	wg.Wait()
	return runs
}

// errReported is a host's failure it reported itself, already printed.
var errReported = errors.New("reported by the host")

// verdict is how a host's answer ended: nil when it planned (or applied)
// and exited 0 or 2, errReported when it said what failed, else the
// problem. A host that exits 0 without a plan has not run provision.
func verdict(t remote.Target, code int, runErr error, o render.Outcome, replayErr error) error {
	switch {
	case runErr != nil:
		return fmt.Errorf("host %s: %w", t, runErr)
	case replayErr != nil:
		return replayErr
	case o.Failed:
		return errReported
	case code != exitOK && code != exitDrift:
		return fmt.Errorf("host %s: provision exited with %d", t, code)
	case !o.Planned:
		return fmt.Errorf("host %s: no plan came back (is a wrapper or an ssh option, such as RemoteCommand, running something else?)", t)
	}
	return nil
}

// judge replays a host's answer on out and returns its verdict.
func (run *hostRun) judge(out render.Renderer, t remote.Target) (render.Outcome, error) {
	o, err := render.Replay(bytes.NewReader(run.lines.Bytes()), t.Host, out)
	return o, verdict(t, run.code, run.err, o, err)
}

// show prints a host's answer and says whether it failed.
func (run *hostRun) show(u *ui, t remote.Target) (render.Outcome, bool) {
	o, err := run.judge(u.Renderer, t)
	if err != nil && err != errReported {
		u.Error(err)
	}
	return o, err != nil
}

// planFleet plans every target at once and prints the plans host by host.
// It exits 1 when any host failed (naming it; the others' plans are still
// shown), else 2 when any has changes pending, else 0.
func (o *options) planFleet(ctx context.Context, u *ui, src *spec.File, in spec.Inputs, targets []remote.Target) error {
	r, base, err := o.connect(src, in)
	if err != nil {
		return u.fail(err)
	}
	defer r.Close()
	runs := each(ctx, r, u, targets, func(t remote.Target) *remote.Request {
		req := *base
		req.Host, req.Save = t.Host, o.out != ""
		return &req
	})
	var failed, pending []string
	var saved []*engine.Saved
	for i, t := range targets {
		if i > 0 && !u.json {
			fmt.Fprintln(u.out)
		}
		out, bad := runs[i].show(u, t)
		switch {
		case bad:
			failed = append(failed, t.Host)
		case out.Pending:
			pending = append(pending, t.Host)
		}
		if out.Saved != nil && out.Saved.Host == t.Host {
			saved = append(saved, out.Saved)
		}
	}
	u.forHost("")
	if len(failed) > 0 {
		return u.fail(fmt.Errorf("no plan for %s", strings.Join(failed, ", ")))
	}
	if o.out != "" {
		snap, err := src.Snapshot(in)
		if err == nil && len(saved) != len(targets) {
			err = errors.New("a host sent no plan back")
		}
		if err == nil {
			err = engine.SaveAll(o.out, snap, saved)
		}
		if err != nil {
			return u.fail(fmt.Errorf("save plan: %w", err))
		}
		u.Note(fmt.Sprintf("\nSaved the plan of %d hosts to %s. Apply exactly it with: %s", len(saved), o.out, o.applyCommand(o.out)))
	}
	if !u.json && len(targets) > 1 {
		fmt.Fprintf(u.out, "\n%d hosts: %d with changes pending, %d matching the spec.\n", len(targets), len(pending), len(targets)-len(pending))
	}
	if len(pending) > 0 {
		return exitCode(exitDrift)
	}
	return nil
}

// applyFleet applies the targets one after the other, the JupyterHub host
// first. Every host is planned first (or, for a saved plan, checked
// against it), and when any cannot be, none is touched. A host that fails
// stops the run: the hosts after it stay as they are. The JupyterHub host
// must pass its health check before the next host's profile points to it.
func (o *options) applyFleet(ctx context.Context, u *ui, src *spec.File, in spec.Inputs, targets []remote.Target) error {
	r, base, err := o.connect(src, in)
	if err != nil {
		return u.fail(err)
	}
	defer r.Close()
	saved := map[string]*engine.Saved{}
	if o.savedAll != nil {
		for _, sp := range o.savedAll.Hosts {
			saved[sp.Host] = sp
		}
	}
	req := func(t remote.Target) *remote.Request {
		rq := *base
		rq.Host = t.Host
		if sp := saved[t.Host]; sp != nil {
			rq.Command, rq.Saved, rq.Verify = "apply", sp, true
		}
		return &rq
	}
	runs := each(ctx, r, u, targets, req)
	var failed []string
	for i, run := range runs {
		if _, err := run.judge(render.NewJSON(io.Discard), targets[i]); err != nil {
			failed = append(failed, targets[i].Host)
		}
	}
	if len(failed) > 0 {
		// Show every host's plan, so the admin sees all there is to fix.
		for i, t := range targets {
			if i > 0 && !u.json {
				fmt.Fprintln(u.out)
			}
			runs[i].show(u, t)
		}
		u.forHost("")
		return u.fail(fmt.Errorf("no host was changed, because of %s", strings.Join(failed, ", ")))
	}
	for i, t := range targets {
		if i > 0 && !u.json {
			fmt.Fprintln(u.out)
		}
		rq := req(t)
		rq.Command, rq.Verify = "apply", false
		// Later hosts depend on this one working, so check it even when
		// it had nothing to change.
		rq.Check = i < len(targets)-1 && src.Spec.Host(t.Host).JupyterHub != nil
		if err := o.applyHost(ctx, r, u, t, rq); err != nil {
			rest := make([]string, 0, len(targets)-i-1)
			for _, later := range targets[i+1:] {
				rest = append(rest, later.Host)
			}
			if len(rest) > 0 {
				u.forHost("")
				return u.fail(fmt.Errorf("apply stopped at %s; not applied: %s", t.Host, strings.Join(rest, ", ")))
			}
			return exitCode(exitError)
		}
	}
	return nil
}

// applyHost runs one host's apply, rendering its lines as they come.
func (o *options) applyHost(ctx context.Context, r *remote.Runner, u *ui, t remote.Target, rq *remote.Request) error {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	var out render.Outcome
	var replayErr error
	go func() {
		defer close(done)
		out, replayErr = render.Replay(pr, t.Host, u.Renderer)
		io.Copy(io.Discard, pr) // let the host finish writing
	}()
	code, runErr := r.Run(ctx, t, rq, pw, u.Note)
	pw.Close()
	<-done
	err := verdict(t, code, runErr, out, replayErr)
	if err == nil && code != exitOK {
		err = fmt.Errorf("host %s: provision exited with %d", t, code)
	}
	if err != nil && err != errReported {
		u.Error(err)
	}
	return err
}
