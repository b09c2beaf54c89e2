package main

import (
	"fmt"

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
