package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/spf13/cobra"

	"github.com/openbis/provision/executors"
	"github.com/openbis/provision/internal/compile"
	"github.com/openbis/provision/internal/engine"
	"github.com/openbis/provision/internal/remote"
	"github.com/openbis/provision/internal/render"
	"github.com/openbis/provision/internal/spec"
)

// options are the flags plan and apply share.
type options struct {
	host        string
	vars        []string
	varFiles    []string
	json        bool
	noColor     bool
	statePath   string
	lockPath    string
	lockTimeout time.Duration
	refresh     bool
	out         string
	dockerHost  string
	bus         string

	// Several hosts, reached from here (fleet.go).
	all          bool
	sshConfig    string
	sshOptions   []string
	savedAll     *engine.SavedAll // apply of a plan --all --out
	savedTargets []remote.Target  // its hosts, in its order
}

func (o *options) register(cmd *cobra.Command, apply bool) {
	f := cmd.Flags()
	f.StringVar(&o.host, "host", "", "converge the host block `NAME` (default: this machine's host name); through SSH when the block has an ssh block")
	f.BoolVar(&o.all, "all", false, "every host of the spec, each through SSH unless it is this machine")
	f.StringVar(&o.sshConfig, "ssh-config", "", "give ssh this configuration `FILE` (ssh -F) instead of ~/.ssh/config")
	f.StringArrayVar(&o.sshOptions, "ssh-option", nil, "give ssh an option `KEY=VALUE` (ssh -o; repeatable; BatchMode and StrictHostKeyChecking stay on)")
	f.StringArrayVar(&o.vars, "var", nil, "set a variable: `NAME=VALUE` (repeatable; PROVISION_VAR_NAME in the environment does the same)")
	f.StringArrayVar(&o.varFiles, "var-file", nil, "read variables from an HCL `FILE` (repeatable)")
	f.BoolVar(&o.json, "json", false, "print one JSON object per line")
	f.BoolVar(&o.noColor, "no-color", false, "never colour the output (NO_COLOR does the same)")
	f.StringVar(&o.statePath, "state", engine.DefaultStatePath, "record what provision manages in the state `FILE`")
	f.BoolVar(&o.refresh, "refresh", false, "ask registries whether pulled tags moved (network)")
	f.StringVar(&o.dockerHost, "docker-host", "", "reach the Docker Engine at `ADDRESS` (default: DOCKER_HOST or the local socket)")
	f.StringVar(&o.bus, "bus", "", "reach the system D-Bus at `ADDRESS` (default: DBUS_SYSTEM_BUS_ADDRESS or the local bus)")
	if apply {
		f.StringVar(&o.lockPath, "lock-file", engine.DefaultLockPath, "serialise applies on this host with the lock `FILE`")
		f.DurationVar(&o.lockTimeout, "lock-timeout", 0, "give up waiting for another apply after this `DURATION` (0: wait)")
	} else {
		f.StringVar(&o.out, "out", "", "save the plan to `FILE`, for a later apply FILE")
		f.StringVar(&o.lockPath, "lock-file", engine.DefaultLockPath, "with --out: the lock `FILE` the printed apply command names (plan itself takes no lock)")
	}
	cmd.RegisterFlagCompletionFunc("host", completeHosts(o))
	cmd.ValidArgsFunction = completeSpecFiles
}

func (o *options) inputs() spec.Inputs {
	return spec.Inputs{Vars: o.vars, VarFiles: o.varFiles, Environ: os.Environ()}
}

func (o *options) target() compile.Target {
	return compile.Target{DockerHost: o.dockerHost, Bus: o.bus, Refresh: o.refresh}
}

// ui is one command's output: a renderer, and the diagnostics' files.
type ui struct {
	render.Renderer
	json bool
	out  io.Writer // the renderer's standard output, for blank lines
}

func (o *options) ui(cmd *cobra.Command) *ui {
	if o.json {
		return &ui{Renderer: render.NewJSON(cmd.OutOrStdout()), json: true, out: cmd.OutOrStdout()}
	}
	return &ui{Renderer: render.NewText(cmd.OutOrStdout(), cmd.ErrOrStderr(), useColor(cmd.OutOrStdout(), o.noColor)), out: cmd.OutOrStdout()}
}

// diagnostics prints a spec's diagnostics with their snippets.
func (u *ui) diagnostics(src *spec.File, diags hcl.Diagnostics) {
	u.Diagnostics(src.Parser.Files(), diags)
}

// fail reports an error in the command's format and returns exit 1.
func (u *ui) fail(err error) error {
	u.Error(err)
	return exitCode(exitError)
}

// load decodes the spec (or a saved plan's spec) and picks the host.
func (o *options) load(u *ui, arg string) (*spec.File, *engine.Saved, spec.Inputs, error) {
	in := o.inputs()
	b, err := os.ReadFile(arg)
	if err != nil {
		return nil, nil, in, u.fail(fmt.Errorf("read %s: %w", arg, err))
	}
	var saved *engine.Saved
	var snap spec.Snapshot
	filename := arg
	// A saved plan, of one host or several, carries its spec and inputs.
	var source json.RawMessage
	sa, several, err := engine.ReadSavedAll(b)
	switch {
	case err != nil:
	case several:
		o.savedAll, source = sa, sa.Source
	case engine.IsSaved(b):
		if saved, err = engine.ReadSaved(b); err == nil {
			source = saved.Source
		}
	}
	if err == nil && source != nil {
		err = json.Unmarshal(source, &snap)
	}
	if err != nil {
		return nil, nil, in, u.fail(fmt.Errorf("%s: %w", arg, err))
	}
	if source != nil {
		if len(o.vars)+len(o.varFiles) > 0 || o.host != "" || o.all {
			return nil, nil, in, u.fail(fmt.Errorf("%s is a saved plan: it carries its variables and hosts; -var, -var-file, --host and --all apply to spec files only", arg))
		}
		b, filename, in = snap.Spec, snap.Filename, snap.Inputs
		if saved != nil {
			o.host = saved.Host
		}
	}
	src, diags := spec.Decode(filename, b, in)
	u.diagnostics(src, diags)
	if diags.HasErrors() {
		return nil, nil, in, exitCode(exitError)
	}
	// A saved plan is applied as reviewed: what file() and env() read then
	// must read the same now.
	if changed := snap.Reads.Changed(src.Reads); source != nil && len(changed) > 0 {
		return nil, nil, in, u.fail(fmt.Errorf("the plan in %s was made from other inputs, so it is not applied:\n  %s\nRun plan again", arg, strings.Join(changed, "\n  ")))
	}
	if o.savedAll != nil {
		for _, h := range o.savedAll.Hosts {
			if src.Spec.Host(h.Host) == nil {
				return nil, nil, in, u.fail(fmt.Errorf("%s: the plan names host %q, which its spec has no block for", arg, h.Host))
			}
			o.savedTargets = append(o.savedTargets, o.reach(src.Spec, h.Host))
		}
		return src, nil, in, nil
	}
	if o.host == "" && !o.all {
		if o.host, err = pickHost(src.Spec); err != nil {
			return nil, nil, in, u.fail(err)
		}
	}
	return src, saved, in, nil
}

// pickHost finds this machine's host block: its host name, or the one
// block whose first label is the short host name.
func pickHost(s *spec.Spec) (string, error) {
	name, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("find this machine's host name: %w; give --host NAME", err)
	}
	if s.Host(name) != nil {
		return name, nil
	}
	short, _, _ := strings.Cut(name, ".")
	var match []string
	for _, h := range s.HostNames() {
		if first, _, _ := strings.Cut(h, "."); first == short {
			match = append(match, h)
		}
	}
	if len(match) == 1 {
		return match[0], nil
	}
	return "", fmt.Errorf("this machine is %q, and the spec has no host block for it; hosts in the spec: %s. Pick one with --host NAME",
		name, strings.Join(s.HostNames(), ", "))
}

// makePlan compiles the host and reads it. done closes the connections
// the resources share, once the plan is applied or dropped. When it fails,
// the warnings found on the way (an expiring certificate) are printed
// before the error is returned, since they may explain it.
func (o *options) makePlan(ctx context.Context, u *ui, src *spec.File) (p *engine.Plan, st *engine.State, done func(), err error) {
	c, err := compile.Host(ctx, src.Spec, o.host, o.target())
	if err != nil {
		var ce *compile.CheckError
		if errors.As(err, &ce) {
			u.warnings(ce.Warnings)
		}
		return nil, nil, nil, err
	}
	done = func() { c.Close() }
	if st, err = engine.LoadState(o.statePath, c.Host); err == nil {
		p, err = engine.Make(ctx, c.Host, c.Nodes, st, c.Deleters)
	}
	if err != nil {
		done()
		u.warnings(c.Warnings)
		return nil, nil, nil, err
	}
	p.Warnings = append(c.Warnings, p.Warnings...)
	return p, st, done, nil
}

// plan makes the plan of o.host and prints it.
func (o *options) plan(ctx context.Context, u *ui, src *spec.File) (*engine.Plan, error) {
	p, _, done, err := o.makePlan(ctx, u, src)
	if err != nil {
		return nil, u.fail(err)
	}
	done()
	if err := u.Plan(p); err != nil {
		return nil, u.fail(err)
	}
	return p, nil
}

// apply converges o.host under its lock: plan, print, apply. A saved plan
// (named by what in messages) is applied only while it still holds; with
// verify, apply only checks that and changes nothing. check runs the
// host's checks afterwards, also when nothing changed, so that another
// host is pointed at this one only once it works.
func (o *options) apply(ctx context.Context, u *ui, src *spec.File, saved *engine.Saved, what string, verify, check bool) error {
	if !verify {
		lctx, cancel := ctx, context.CancelFunc(func() {})
		if o.lockTimeout > 0 {
			lctx, cancel = context.WithTimeout(ctx, o.lockTimeout)
		}
		lock, err := engine.AcquireLock(lctx, o.lockPath, func(holder string) {
			if holder != "" {
				holder = " (pid " + holder + ")"
			}
			u.Note(fmt.Sprintf("Waiting for another provision apply%s to finish…", holder))
		})
		cancel()
		if err != nil {
			return u.fail(err)
		}
		defer lock.Release()
	}

	p, st, done, err := o.makePlan(ctx, u, src)
	if err != nil {
		return u.fail(err)
	}
	defer done()
	if saved != nil {
		if changed := saved.StateChanged(p); len(changed) > 0 {
			return u.fail(fmt.Errorf("the state file changed since %s was made, so it is not applied:\n  %s\nApply with the plan's --state, or run plan again", what, strings.Join(changed, "\n  ")))
		}
		if stale := saved.Stale(p); len(stale) > 0 {
			return u.fail(fmt.Errorf("the host changed since %s was made, so it is not applied:\n  %s\nRun plan again", what, strings.Join(stale, "\n  ")))
		}
	}
	if err := u.Plan(p); err != nil {
		return u.fail(err)
	}
	if verify {
		return nil
	}
	if p.Pending() {
		if err := p.Apply(ctx, st, u); err != nil {
			return u.fail(fmt.Errorf("apply stopped: %w", err))
		}
		u.Applied(p.Host, p.Summary())
	}
	if check {
		if err := p.Check(ctx, u); err != nil {
			return u.fail(err)
		}
	}
	return nil
}

func (u *ui) warnings(ws []string) {
	for _, w := range ws {
		u.Warning(w)
	}
}

// applyCommand is the command that applies the plan saved to planFile
// with the same state file, lock and daemons as this plan, so that the
// hint prints a command that is right as it stands.
func (o *options) applyCommand(planFile string) string {
	args := []string{"provision", "apply"}
	for _, f := range []struct{ name, value, def string }{
		{"--state", o.statePath, engine.DefaultStatePath},
		{"--lock-file", o.lockPath, engine.DefaultLockPath},
		{"--docker-host", o.dockerHost, ""},
		{"--bus", o.bus, ""},
	} {
		if f.value != f.def {
			args = append(args, f.name, shellQuote(f.value))
		}
	}
	if o.refresh {
		args = append(args, "--refresh")
	}
	return strings.Join(append(args, shellQuote(planFile)), " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=@%+,-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

const varsHelp = `Variables come from --var NAME=VALUE, --var-file FILE and PROVISION_VAR_NAME
in the environment (precedence: default < environment < var file < --var).`

func newPlanCmd() *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "plan [flags] FILE",
		Short: "Show what apply would change (exit 0: none, 2: changes pending, 1: error)",
		Long: `Show what apply would change on this host. plan only reads the host.

Exit status: 0 no changes, 2 changes pending (as terraform plan
-detailed-exitcode; the flag is accepted), 1 error.

` + varsHelp + `

With --out FILE the plan is saved (0600): "provision apply FILE" then
applies exactly it, refusing if the host or the state file changed since,
and "provision show FILE" prints it again.`,
		Example: `  provision plan host.hcl
  provision plan --host jupyterhub.example.org --var communication_port=8002 host.hcl
  PROVISION_VAR_communication_port=8002 provision plan --json host.hcl
  provision plan --out change.plan host.hcl && provision apply change.plan`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := o.ui(cmd)
			src, saved, in, err := o.load(u, args[0])
			if err != nil {
				return err
			}
			if saved != nil {
				return u.fail(fmt.Errorf("%s is a saved plan; plan takes a spec file (print the plan with: provision show %s)", args[0], shellQuote(args[0])))
			}
			if targets, err := o.targets(src.Spec); err != nil {
				return u.fail(err)
			} else if targets != nil {
				return o.planFleet(cmd.Context(), u, src, in, targets)
			}
			p, err := o.plan(cmd.Context(), u, src)
			if err != nil {
				return err
			}
			if o.out != "" {
				snap, err := src.Snapshot(in)
				if err == nil {
					err = p.Save(o.out, snap, render.Public)
				}
				if err != nil {
					return u.fail(fmt.Errorf("save plan: %w", err))
				}
				u.Note(fmt.Sprintf("\nSaved the plan to %s. Apply exactly it with: %s", o.out, o.applyCommand(o.out)))
			}
			if p.Pending() {
				return exitCode(exitDrift)
			}
			return nil
		},
	}
	o.register(cmd, false)
	return cmd
}

func newApplyCmd() *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "apply [flags] FILE|PLANFILE",
		Short: "Make the host match the spec, or apply a saved plan",
		Long: `Make this host match the spec, or apply a plan saved by "plan --out".

Exit status: 0 converged (nothing to do, or applied), 1 error. An apply that
stops leaves the host as far as it got; the next apply continues from there.

` + varsHelp + `

A saved plan carries its variables and host: --var, --var-file, --host and
PROVISION_VAR_NAME do not apply to it. It is refused if the host or the
state file changed since it was made; give apply the same --state,
--docker-host and --bus as the plan (plan --out prints the command).

A second apply waits for the first (--lock-file, --lock-timeout).`,
		Example: `  provision apply host.hcl
  provision apply --host jupyterhub.example.org --var-file site.hcl host.hcl
  provision apply --lock-timeout 5m host.hcl
  provision plan --out change.plan host.hcl && provision apply change.plan`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := o.ui(cmd)
			src, saved, in, err := o.load(u, args[0])
			if err != nil {
				return err
			}
			if o.savedAll != nil {
				return o.applyFleet(cmd.Context(), u, src, in, o.savedTargets)
			}
			if targets, err := o.targets(src.Spec); err != nil {
				return u.fail(err)
			} else if targets != nil {
				return o.applyFleet(cmd.Context(), u, src, in, targets)
			}
			return o.apply(cmd.Context(), u, src, saved, "the plan in "+args[0], false, false)
		},
	}
	o.register(cmd, true)
	return cmd
}

func newShowCmd() *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "show [flags] PLANFILE",
		Short: "Print a plan saved by plan --out, without reading the host",
		Long: `Print a plan saved by "plan --out", as plan printed it (or as JSON lines with
--json), sensitive values redacted. show reads only the file: no host, no
daemon, no state.

Exit status: 0 printed, 1 error (not a saved plan, unreadable).`,
		Example: `  provision plan --out change.plan host.hcl
  provision show change.plan
  provision show --json change.plan | jq -r 'select(.type=="change") | .change.address'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := o.ui(cmd)
			b, err := os.ReadFile(args[0])
			if err != nil {
				return u.fail(fmt.Errorf("read %s: %w", args[0], err))
			}
			if sa, ok, err := engine.ReadSavedAll(b); err != nil {
				return u.fail(fmt.Errorf("%s: %w", args[0], err))
			} else if ok {
				for i, sp := range sa.Hosts {
					if i > 0 && !u.json {
						fmt.Fprintln(u.out)
					}
					if err := u.Plan(sp.Plan()); err != nil {
						return u.fail(err)
					}
				}
				return nil
			}
			if !engine.IsSaved(b) {
				return u.fail(fmt.Errorf("%s is not a saved plan; make one with: provision plan --out %s SPEC", args[0], shellQuote(args[0])))
			}
			saved, err := engine.ReadSaved(b)
			if err != nil {
				return u.fail(fmt.Errorf("%s: %w", args[0], err))
			}
			if err := u.Plan(saved.Plan()); err != nil {
				return u.fail(err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.json, "json", false, "print one JSON object per line")
	f.BoolVar(&o.noColor, "no-color", false, "never colour the output (NO_COLOR does the same)")
	return cmd
}

func newValidateCmd() *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "validate [flags] FILE...",
		Short: "Check spec files without touching any host",
		Long: `Check spec files: syntax, types, validation rules and the executors' own
checks, for every host block. No host is read.

Exit status: 0 all valid, 1 a file has errors.

` + varsHelp,
		Example: `  provision validate host.hcl
  provision validate examples/*.hcl
  PROVISION_VAR_communication_port=8002 provision validate --json host.hcl`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := o.ui(cmd)
			failed := false
			for _, fn := range args {
				// The spec's shape, without values for required variables:
				// plan and apply still need them.
				in := o.inputs()
				in.AllowUnset = true
				src, diags := spec.Load(fn, in)
				u.diagnostics(src, diags)
				if diags.HasErrors() {
					failed = true
					continue
				}
				if !u.json {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (hosts: %s)\n", fn, strings.Join(src.Spec.HostNames(), ", "))
				}
			}
			if failed {
				return exitCode(exitError)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.vars, "var", nil, "set a variable: `NAME=VALUE` (repeatable; PROVISION_VAR_NAME in the environment does the same)")
	f.StringArrayVar(&o.varFiles, "var-file", nil, "read variables from an HCL `FILE` (repeatable)")
	f.BoolVar(&o.json, "json", false, "print diagnostics as JSON lines")
	f.BoolVar(&o.noColor, "no-color", false, "never colour the output")
	cmd.ValidArgsFunction = completeSpecFiles
	return cmd
}

func newFmtCmd() *cobra.Command {
	var check bool
	cmd := &cobra.Command{
		Use:   "fmt [--check] FILE...",
		Short: "Rewrite spec files in canonical HCL style (--check: exit 3 if any is not)",
		Long: `Rewrite spec files in canonical HCL style, listing those it changed.

Exit status: 0 done (with --check: all formatted), 3 with --check: a file is
not formatted, 1 error.`,
		Example: `  provision fmt host.hcl
  provision fmt --check *.hcl || echo "run provision fmt"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			unformatted := false
			for _, fn := range args {
				st, err := executors.ReadFile(fn)
				if err != nil {
					return err
				}
				if !st.Exists {
					return fmt.Errorf("%s: no such file", fn)
				}
				if _, diags := hclwrite.ParseConfig(st.Content, fn, hcl.InitialPos); diags.HasErrors() {
					return fmt.Errorf("%s", diags.Error())
				}
				formatted := hclwrite.Format(st.Content)
				if bytes.Equal(formatted, st.Content) {
					continue
				}
				unformatted = true
				fmt.Fprintln(cmd.OutOrStdout(), fn)
				if !check {
					if err := executors.WriteFileNoBackup(fn, formatted, st.Mode, st.UID, st.GID); err != nil {
						return err
					}
				}
			}
			if check && unformatted {
				return exitCode(exitUnformat)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "only list files that are not formatted; exit 3 if any")
	cmd.ValidArgsFunction = completeSpecFiles
	return cmd
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Long:    "Print the version and the commit provision was built from (also: provision --version).",
		Example: "  provision version\n  provision --version",
		Args:    cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), versionString())
		},
	}
}

// versionString is "provision VERSION (commit C)": the version set at
// build time, else the module's, and the VCS commit the binary was built
// from.
func versionString() string {
	v, commit := version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 && commit == "" {
				commit = s.Value[:12]
			}
		}
	}
	if commit != "" {
		return fmt.Sprintf("provision %s (commit %s)", v, commit)
	}
	return "provision " + v
}

func completeSpecFiles(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{"hcl", "json"}, cobra.ShellCompDirectiveFilterFileExt
}

// completeHosts offers the host blocks of the spec file already typed.
func completeHosts(o *options) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		src, _ := spec.Load(filepath.Clean(args[0]), o.inputs())
		if src.Spec == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return src.Spec.HostNames(), cobra.ShellCompDirectiveNoFileComp
	}
}
