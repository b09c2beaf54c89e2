// Command provision makes a JupyterHub-for-openBIS deployment match its
// HCL spec: plan shows the drift, apply repairs it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Exit codes. Plan uses exitDrift for "changes pending", as terraform
// plan -detailed-exitcode does, so cron and CI can tell drift from failure.
const (
	exitOK       = 0
	exitError    = 1
	exitDrift    = 2
	exitUnformat = 3
)

// version and commit are set at build time with -ldflags "-X
// main.version=… -X main.commit=…"; without them the module's version and
// the VCS stamp Go records (unless -buildvcs=false) are used.
var version, commit = "dev", ""

// exitError carries an exit code through cobra.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit code. A panic is a
// bug, reported as an error (exit 1): exit 2 means only "changes pending".
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "Error: provision crashed: %v\nThis is a bug; please report it with the command line and this trace:\n%s", r, debug.Stack())
			code = exitError
		}
	}()
	root := newRoot(stdout, stderr)
	root.SetArgs(terraformFlags(args))
	root.SetIn(stdin)
	err := root.ExecuteContext(ctx)
	var ec exitCode
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ec):
		return int(ec)
	default:
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return exitError
	}
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "provision",
		Short: "Declarative provisioning of JupyterHub for openBIS",
		Long: `provision makes hosts match one HCL spec describing a JupyterHub-for-openBIS
deployment: the JupyterHub image and container, its start script and systemd
unit, the firewall rule to the openBIS host, and the ELN's InstanceProfile.js.

  provision plan host.hcl    show what differs (exit 0 none, 2 drift, 1 error)
  provision apply host.hcl   make the host match; a second run changes nothing

Exit status: 0 success, 1 error, 2 plan: changes pending, 3 fmt --check:
a file is not formatted. Variables: --var, --var-file, PROVISION_VAR_NAME.
Terraform's spellings work: -var, -out=FILE, -help, -version,
-detailed-exitcode.`,
		Example: `  provision validate host.hcl
  provision plan host.hcl
  provision apply host.hcl
  provision plan --out change.plan host.hcl && provision show change.plan && provision apply change.plan
  provision --version`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.Version = versionString()
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newPlanCmd(), newApplyCmd(), newShowCmd(), newValidateCmd(), newFmtCmd(), newVersionCmd(), newManCmd(), newRemoteCmd())
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Example = "  provision completion bash > /etc/bash_completion.d/provision\n  provision completion zsh > \"${fpath[1]}/_provision\""
		}
	}
	return root
}

// colorsFor decides on colour: only on a terminal, never with NO_COLOR.
func useColor(w io.Writer, disabled bool) bool {
	if disabled || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// terraformFlags accepts Terraform's single-dash long flags (-out=FILE,
// -var NAME=V, -var-file F, -refresh=true, -json) as admins type them.
func terraformFlags(args []string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		// plan always exits 2 on pending changes, as with Terraform's
		// -detailed-exitcode.
		if a == "-detailed-exitcode" || a == "--detailed-exitcode" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		switch name {
		case "out", "var", "var-file", "refresh", "json", "host", "state", "no-color", "lock-timeout", "lock-file", "check", "help", "version":
			if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}
