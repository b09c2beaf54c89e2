package main

import (
	"fmt"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/openbis/provision/internal/engine"
	"github.com/openbis/provision/internal/remote"
	"github.com/openbis/provision/internal/render"
	"github.com/openbis/provision/internal/spec"
)

// newRemoteCmd is what a host runs for the admin's provision (plan and
// apply with --all, or of a host block with an ssh block): one Request on
// stdin, JSON lines on stdout, the exit code of plan or apply. It reads
// and changes this machine only.
func newRemoteCmd() *cobra.Command {
	return &cobra.Command{
		Use:    remote.Command,
		Short:  "Run a plan or apply sent by the admin's provision",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// An admin that goes away (Ctrl-C, a dropped link) closes the
			// connection: the apply goes on to a step's end rather than
			// die between two at its next line of output.
			signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP)
			j := render.NewHostJSON(cmd.OutOrStdout())
			u := &ui{Renderer: j, json: true, out: cmd.OutOrStdout()}
			req, err := remote.ReadRequest(cmd.InOrStdin())
			if err != nil {
				return u.fail(err)
			}
			o := &options{host: req.Host, statePath: req.State, lockPath: req.LockFile, lockTimeout: req.LockTimeout, refresh: req.Refresh}
			if o.statePath == "" {
				o.statePath = engine.DefaultStatePath
			}
			if o.lockPath == "" {
				o.lockPath = engine.DefaultLockPath
			}
			// Only what the admin's machine read, even when it read nothing.
			if req.Source.Inputs.Captured == nil {
				req.Source.Inputs.Captured = map[string][]byte{}
			}
			src, diags := spec.Decode(req.Source.Filename, req.Source.Spec, req.Source.Inputs)
			u.diagnostics(src, diags)
			if diags.HasErrors() {
				return exitCode(exitError)
			}
			if src.Spec.Host(req.Host) == nil {
				return u.fail(fmt.Errorf("the spec sent has no host block %q", req.Host))
			}
			ctx := cmd.Context()
			if req.Command == "apply" {
				return o.apply(ctx, u, src, req.Saved, "the plan", req.Verify, req.Check)
			}
			p, err := o.plan(ctx, u, src)
			if err != nil {
				return err
			}
			if req.Save {
				sp, err := p.Saved(nil, render.Public)
				if err == nil {
					err = j.Saved(sp)
				}
				if err != nil {
					return u.fail(fmt.Errorf("send the plan: %w", err))
				}
			}
			if p.Pending() {
				return exitCode(exitDrift)
			}
			return nil
		},
	}
}
