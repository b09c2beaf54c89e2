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
		if t := o.reach(s, o.host); !t.Local() {
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
		t := o.reach(s, n)
		if !t.Local() && (o.dockerHost != "" || o.bus != "") {
			return nil, fmt.Errorf("--docker-host and --bus name daemons of this machine; host %s is reached through SSH and uses its own", n)
		}
		ts = append(ts, t)
	}
	for _, opt := range o.sshOptions {
		if err := remote.CheckOption(opt); err != nil {
			return nil, err
		}
	}
	return ts, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// reach is how host block name is reached: this machine when it is this
// machine's block, else at its ssh block's destination or its name.
func (o *options) reach(s *spec.Spec, name string) remote.Target {
	h := s.Host(name)
	if here, err := pickHost(s); err == nil && here == name {
		return remote.Target{Host: name}
	}
	t := remote.Target{Host: name, Destination: name}
	if h.SSH != nil {
		if h.SSH.Destination != "" {
			t.Destination = h.SSH.Destination
		}
		t.Port = h.SSH.Port
	}
	return t
}

func (o *options) runner() (*remote.Runner, error) {
	// PROVISION_SSH names another ssh client (a wrapper), as GIT_SSH does.
	return remote.NewRunner(&remote.SSH{Program: os.Getenv("PROVISION_SSH"), Config: o.sshConfig, Options: o.sshOptions, ControlDir: remote.DefaultControlDir()})
}

// request is what every host is asked, with the spec as this machine
// evaluated it: the hosts read nothing of their own for file() and env().
func (o *options) request(src *spec.File, in spec.Inputs, command, host string) (*remote.Request, error) {
	snap, err := src.Snapshot(in)
	if err != nil {
		return nil, err
	}
	snap.Inputs.Captured = src.Captured
	return &remote.Request{Command: command, Host: host, Source: snap, State: o.statePath, LockFile: o.lockPath,
		LockTimeout: o.lockTimeout, Refresh: o.refresh}, nil
}

// hostRun is one host's answer, kept to be printed in order.
type hostRun struct {
	lines bytes.Buffer
	code  int
	err   error
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

// show prints a host's answer and says whether it failed and had changes.
func (run *hostRun) show(u *ui, t remote.Target) (render.Outcome, bool) {
	o, err := render.Replay(&run.lines, t.Host, u)
	failed := o.Failed || run.code == exitError || err != nil || run.err != nil
	switch {
	case run.err != nil && run.code == 255:
		u.Error(fmt.Errorf("host %s: %w", t, run.err))
	case run.err != nil && !o.Failed:
		u.Error(fmt.Errorf("host %s: %w", t, run.err))
	case err != nil:
		u.Error(err)
	case run.code != exitOK && run.code != exitDrift && run.code != exitError:
		failed = true
		u.Error(fmt.Errorf("host %s: provision exited with %d", t, run.code))
	}
	return o, failed
}

// planFleet plans every target at once and prints the plans host by host.
// It exits 1 when any host failed (naming it; the others' plans are still
// shown), else 2 when any has changes pending, else 0.
func (o *options) planFleet(ctx context.Context, u *ui, src *spec.File, in spec.Inputs, targets []remote.Target) error {
	r, err := o.runner()
	if err != nil {
		return u.fail(err)
	}
	base, err := o.request(src, in, "plan", "")
	if err != nil {
		return u.fail(err)
	}
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
		if out.Saved != nil {
			saved = append(saved, out.Saved)
		}
	}
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
	r, err := o.runner()
	if err != nil {
		return u.fail(err)
	}
	base, err := o.request(src, in, "plan", "")
	if err != nil {
		return u.fail(err)
	}
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
		if run.err != nil || run.code == exitError || run.code == 255 {
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
	run := &hostRun{}
	var out render.Outcome
	var replayErr error
	go func() {
		defer close(done)
		out, replayErr = render.Replay(pr, t.Host, u)
		io.Copy(io.Discard, pr) // let the host finish writing
	}()
	run.code, run.err = r.Run(ctx, t, rq, pw, u.Note)
	pw.Close()
	<-done
	switch {
	case run.err != nil:
		u.Error(fmt.Errorf("host %s: %w", t, run.err))
	case replayErr != nil:
		u.Error(replayErr)
	case run.code != exitOK && !out.Failed:
		u.Error(fmt.Errorf("host %s: provision exited with %d", t, run.code))
	}
	if run.err != nil || replayErr != nil || run.code != exitOK || out.Failed {
		return errors.New("failed")
	}
	return nil
}
