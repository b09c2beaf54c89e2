// Package browser runs a real headless Chromium for integration tests, as
// a user would: inside a network namespace of the test's own (so it sees
// that namespace's addresses and its /etc/netns/NS/hosts), trusting only
// the CA the test gives it, and driven over the DevTools protocol with
// chromedp.
//
// The DevTools connection is a pipe (--remote-debugging-pipe, file
// descriptors 3 and 4, chromedp's default), not a TCP port: a port would
// listen on 127.0.0.1 inside the user's namespace, out of this process's
// reach without a namespace-switching dialer or a forwarder, and would be
// open to anything else in that namespace. `ip netns exec` and exec pass
// the descriptors through unchanged.
package browser

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"
)

// Options tune Start. NS is required.
type Options struct {
	// NS is the network namespace to run in, by name (`ip netns exec NS`).
	NS string
	// CAPEM holds PEM certificates to trust, put into an NSS database in
	// the profile. Without it no TLS page of a test CA loads.
	CAPEM []byte
	// ExecPath is the browser; default "chromium" on $PATH.
	ExecPath string
	// Dir is where the profile directory is made; default os.TempDir().
	Dir string
	// Width and Height of the window; default 1280×800.
	Width, Height int
	// Log receives the browser's standard output and error (D-Bus
	// complaints there are harmless); default discarded.
	Log io.Writer
	// Flags are extra command line flags, name → string or bool.
	Flags map[string]any
}

// Browser is one running browser with one tab.
type Browser struct {
	// Profile is the browser's HOME and user data directory.
	Profile string

	ctx         context.Context // the tab, for chromedp.Run
	cancelTab   context.CancelFunc
	cancelAlloc context.CancelFunc
	pid         int
}

// Start starts the browser and opens a blank tab. Close it.
func Start(ctx context.Context, opts Options) (b *Browser, err error) {
	if opts.NS == "" {
		return nil, errors.New("start browser: no network namespace given")
	}
	if opts.ExecPath == "" {
		opts.ExecPath = "chromium"
	}
	exe, err := exec.LookPath(opts.ExecPath)
	if err != nil {
		return nil, fmt.Errorf("start browser: %w (install the packages in testenv/packages-browser.txt)", err)
	}
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		return nil, fmt.Errorf("start browser: %w", err)
	}
	if opts.Width <= 0 || opts.Height <= 0 {
		opts.Width, opts.Height = 1280, 800
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	profile, err := os.MkdirTemp(opts.Dir, "provision-browser-")
	if err != nil {
		return nil, fmt.Errorf("start browser: %w", err)
	}
	b = &Browser{Profile: profile}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	if err := os.Mkdir(filepath.Join(profile, "tmp"), 0o700); err != nil {
		return b, fmt.Errorf("start browser: %w", err)
	}
	if err := initNSS(ctx, profile, opts.CAPEM); err != nil {
		return b, fmt.Errorf("start browser: %w", err)
	}

	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(filepath.Join(profile, "data")),
		chromedp.NoSandbox, // as root
		chromedp.DisableGPU,
		chromedp.WindowSize(opts.Width, opts.Height),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		// Everything the browser writes stays in the profile.
		chromedp.Env("HOME="+profile, "XDG_CONFIG_HOME="+profile+"/.config",
			"XDG_CACHE_HOME="+profile+"/.cache", "TMPDIR="+profile+"/tmp"),
		chromedp.CombinedOutput(opts.Log),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			// Run it as `ip netns exec NS chromium …`, which also mounts
			// /etc/netns/NS/hosts over /etc/hosts for the browser.
			cmd.Path = ipPath
			cmd.Args = append([]string{"ip", "netns", "exec", opts.NS, exe}, cmd.Args[1:]...)
			cmd.Err = nil
			// Its own process group, so Close can kill every process of
			// the browser by the group's PID; and killed with this
			// process if it dies first (chromedp starts it from a locked
			// thread, which Pdeathsig is tied to).
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		}),
	)
	for name, v := range opts.Flags {
		allocOpts = append(allocOpts, chromedp.Flag(name, v))
	}
	// The browser lives until Close, not until ctx is done: ctx bounds
	// only the start.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	b.cancelAlloc = cancelAlloc
	b.ctx, b.cancelTab = chromedp.NewContext(allocCtx)
	// The first Run allocates the browser and the tab, bound to the
	// context it is given: so it gets the tab's own context (a child
	// that ends would kill the browser), and ctx ending stops it from
	// outside.
	stop := context.AfterFunc(ctx, b.cancelTab)
	err = chromedp.Do(b.ctx)
	if !stop() || err != nil {
		return b, fmt.Errorf("start browser in namespace %s: %w", opts.NS, errors.Join(err, ctx.Err()))
	}
	if c := chromedp.FromContext(b.ctx); c != nil && c.Browser != nil && c.Browser.Process() != nil {
		b.pid = c.Browser.Process().Pid
	}
	return b, nil
}

// initNSS makes the NSS database Chromium reads on Linux,
// $HOME/.pki/nssdb, and trusts caPEM as a CA for TLS servers there.
func initNSS(ctx context.Context, home string, caPEM []byte) error {
	db := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(db, 0o700); err != nil {
		return err
	}
	if err := certutil(ctx, "-d", "sql:"+db, "-N", "--empty-password"); err != nil {
		return err
	}
	if len(caPEM) == 0 {
		return nil
	}
	ca := filepath.Join(home, "ca.pem")
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		return err
	}
	return certutil(ctx, "-d", "sql:"+db, "-A", "-t", "C,,", "-n", "test-ca", "-i", ca)
}

func certutil(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "certutil", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("certutil %v: %w: %s (install libnss3-tools)", args, err, out)
	}
	return nil
}

// Context is the tab's chromedp context, for chromedp.Run with any action.
// Derive timeouts from it; canceling it closes the browser.
func (b *Browser) Context() context.Context { return b.ctx }

// Pid is the browser's main process, the leader of its process group.
func (b *Browser) Pid() int { return b.pid }

// Do runs chromedp actions in the tab, in order, until they finish or ctx
// is done.
func (b *Browser) Do(ctx context.Context, steps ...chromedp.Action[chromedp.Void]) error {
	_, err := Run(ctx, b, chromedp.Steps(steps...))
	return err
}

// Run runs one chromedp action in the tab of b until it finishes or ctx is
// done, and returns its result. (A function: methods cannot be generic.)
func Run[T any](ctx context.Context, b *Browser, a chromedp.Action[T]) (T, error) {
	// The action runs in a child of the tab's context, so ctx ending stops
	// the action and leaves the tab open.
	tctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	v, err := chromedp.Run(tctx, a)
	if err != nil && ctx.Err() != nil {
		return v, fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return v, err
}

// Navigate loads url and waits for its load event. A page that does not
// load (a certificate the browser does not trust, a refused connection)
// is an error naming Chromium's net::ERR_… code.
func (b *Browser) Navigate(ctx context.Context, url string) error {
	if err := b.Do(ctx, chromedp.Navigate(url)); err != nil {
		return fmt.Errorf("navigate to %s: %w", url, err)
	}
	return nil
}

// WaitText waits until the element matching the CSS selector sel is
// visible and returns its text.
func (b *Browser) WaitText(ctx context.Context, sel string) (string, error) {
	text, err := Run(ctx, b, func(ctx context.Context, t *chromedp.Target) (string, error) {
		if _, err := chromedp.WaitVisible(chromedp.CSS(sel))(ctx, t); err != nil {
			return "", err
		}
		return chromedp.Text(chromedp.CSS(sel))(ctx, t)
	})
	if err != nil {
		return "", fmt.Errorf("wait for text of %s: %w", sel, err)
	}
	return text, nil
}

// Eval evaluates the JavaScript expression in the page of b, awaiting a
// promise, and returns its result decoded from JSON.
func Eval[T any](ctx context.Context, b *Browser, expr string) (T, error) {
	v, err := Run(ctx, b, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return v, fmt.Errorf("evaluate %q: %w", expr, err)
	}
	return v, nil
}

// Screenshot writes a PNG of the whole page to path.
func (b *Browser) Screenshot(ctx context.Context, path string) error {
	png, err := Run(ctx, b, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	return nil
}

// Close closes the tab and the browser, kills what is left of the
// browser's process group, and removes the profile. It is safe to call
// more than once.
func (b *Browser) Close() error {
	if b.cancelTab != nil {
		// Closes the browser gracefully, or kills it.
		b.cancelTab()
		b.cancelTab = nil
	}
	if b.cancelAlloc != nil {
		// Waits for the browser process to be reaped.
		b.cancelAlloc()
		b.cancelAlloc = nil
	}
	var errs []error
	if b.pid > 0 {
		if err := killGroup(b.pid); err != nil {
			errs = append(errs, err)
		}
		b.pid = 0
	}
	if b.Profile != "" {
		if err := os.RemoveAll(b.Profile); err != nil {
			errs = append(errs, fmt.Errorf("remove browser profile: %w", err))
		}
		b.Profile = ""
	}
	return errors.Join(errs...)
}

// killGroup kills the process group pgid (helpers such as the zygote and
// the crash handler can outlive the main process) and waits until no live
// process is left in it. Zombies are skipped: their parent reaps them.
func killGroup(pgid int) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := syscall.Kill(-pgid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) || (err == nil && len(liveInGroup(pgid)) == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("kill browser process group %d: %w", pgid, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("browser process group %d: processes %v still there after SIGKILL", pgid, liveInGroup(pgid))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// liveInGroup lists the processes of group pgid that are not zombies.
func liveInGroup(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		state, pg, ok := parseStat(string(b))
		if ok && pg == pgid && state != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// parseStat returns the state and process group of a /proc/PID/stat line:
// "PID (COMM) STATE PPID PGRP …", where COMM may hold spaces and parens.
func parseStat(stat string) (state string, pgrp int, ok bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 3 {
		return "", 0, false
	}
	pgrp, err := strconv.Atoi(f[2])
	return f[0], pgrp, err == nil
}
