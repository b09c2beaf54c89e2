//go:build integration

package hubimage

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openbis/provision/executors/docker"
	"github.com/openbis/provision/testenv/dockerd"
	"github.com/openbis/provision/testenv/pki"
)

const (
	goodToken = "alice-251201120000000xABCDEF"
	// An active session whose user name cannot be a system user.
	oddToken = "bob-251201120000000xABCDEF"
	origin   = "https://openbis.test:8443"
	notebook = `{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 2}`
)

// TestHubImage builds the image (cached), loads it into a private dockerd,
// runs it with the guide's flags against an openBIS stand-in and walks the
// ELN's flow: integration service, then hub login onto the notebook.
func TestHubImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root (debootstrap, dockerd): run the tests as root, as .ci/test does")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	start := time.Now()
	// PROVISION_TEST_HUBIMAGE_CACHE measures a cold build in a fresh cache.
	img, err := Ensure(ctx, Options{CacheDir: os.Getenv("PROVISION_TEST_HUBIMAGE_CACHE"), Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(img.Tar)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURE image ready in %s: %s, %d MB, ID %s", time.Since(start).Round(time.Millisecond), img.Tar, fi.Size()>>20, img.ID)
	ca, err := pki.LoadOrCreateCA("")
	if err != nil {
		t.Fatal(err)
	}
	// provision's own loader must read the tar as docker load does.
	arch, err := docker.ReadArchive(img.Tar)
	if err != nil {
		t.Fatal(err)
	}
	if len(arch.Images) != 1 || arch.Images[0].ConfigDigest != img.ID || !slices.Contains(arch.Images[0].Tags, img.Ref) {
		t.Fatalf("executors/docker reads %+v, want one image %s tagged %s", arch.Images, img.ID, img.Ref)
	}

	dir, err := os.MkdirTemp("", "pvh")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	d, err := dockerd.Start(ctx, filepath.Join(dir, "d"), dockerd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d.Stop(); err != nil {
			t.Error(err)
		}
	}()
	dockerCLI := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "docker", args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+filepath.Join(dir, "cli"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return string(out), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, stderr.String())
		}
		return strings.TrimSpace(string(out)), nil
	}

	start = time.Now()
	if _, err := dockerCLI("load", "-i", img.Tar); err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURE docker load: %s", time.Since(start).Round(time.Millisecond))
	if id, err := dockerCLI("image", "inspect", "-f", "{{.Id}}", img.Ref); err != nil || id != img.ID {
		t.Fatalf("loaded image ID %q (%v), want %s", id, err, img.ID)
	}
	if size, err := dockerCLI("image", "inspect", "-f", "{{.Size}}", img.Ref); err == nil {
		n, _ := strconv.ParseInt(size, 10, 64)
		t.Logf("MEASURE image size in the daemon: %d MB", n>>20)
	}

	// The openBIS stand-in listens on the bridge's gateway inside the
	// daemon's network namespace: the containers' way out.
	gw, err := bridgeAddr(ctx, d.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	var rpcCalls atomic.Int32
	openbisURL := startOpenBIS(t, d.NetNS, gw, ca, &rpcCalls)

	certs := filepath.Join(dir, "certs")
	home := filepath.Join(dir, "home")
	for _, p := range []string{certs, home} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	crt, key, err := ca.Issue("jupyterhub.test", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certs, "default.crt"), crt, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certs, "default.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}

	start = time.Now()
	if _, err := dockerCLI("run", "-d", "--name", "hub",
		"-e", "OPENBIS_URL="+openbisURL,
		"-e", "JUPYTERHUB_INTEGRATION_SERVICE_PORT=8002",
		"-e", "JUPYTERHUB_PORT=8000",
		"-e", "CERTIFICATE_KEY=/vagrant/config/certificates/default.key",
		"-e", "CERTIFICATE_CRT=/vagrant/config/certificates/default.crt",
		"-p", "8000:8000", "-p", "8002:8002",
		"-p", "127.0.0.1:8001:8001", "-p", "127.0.0.1:8081:8081",
		"-v", home+":/home", "-v", certs+":/vagrant/config/certificates",
		img.Ref, StartCommand); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if t.Failed() {
			logs, _ := dockerCLI("logs", "hub")
			out, _ := exec.Command("sh", "-c", fmt.Sprintf("DOCKER_HOST=%s docker logs hub 2>&1 | tail -60", d.Host)).Output()
			t.Logf("container logs:\n%s%s", logs, out)
		}
		if !stopped {
			dockerCLI("rm", "-f", "hub")
		}
	}()

	tr := &http.Transport{
		DialContext:       netnsDialer(d.NetNS),
		TLSClientConfig:   &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"},
		DisableKeepAlives: true,
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	hub := "https://127.0.0.1:8000"
	comm := "https://127.0.0.1:8002"

	var version string
	for {
		resp, err := client.Get(hub + "/hub/api")
		if err == nil {
			var v struct{ Version string }
			err = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 {
				version = v.Version
				break
			}
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("/hub/api not answering 60s after docker run: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("MEASURE docker run to /hub/api answering: %s", time.Since(start).Round(time.Millisecond))
	if version != "3.0.0" {
		t.Errorf("/hub/api version %q, want 3.0.0", version)
	}
	// The integration service starts alongside; wait for it too.
	for i := 0; ; i++ {
		c, err := tr.DialContext(ctx, "tcp", "127.0.0.1:8002")
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatalf("integration service not listening: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	t.Run("openBIS TLS verified", func(t *testing.T) {
		// The same session check against a server whose CA the image does
		// not trust must fail: no verify=False shortcut.
		other, err := pki.LoadOrCreateCA(filepath.Join(dir, "other-ca"))
		if err != nil {
			t.Fatal(err)
		}
		untrusted := startOpenBIS(t, d.NetNS, gw, other, &rpcCalls)
		check := func(openbis string) (string, error) {
			return dockerCLI("exec", "-e", "OPENBIS_URL="+openbis, "hub", "python3", "-c",
				"import sys; sys.path.insert(0, '/vagrant/initialize'); import openbis_session; print(openbis_session.session_user(sys.argv[1]))",
				goodToken)
		}
		if out, err := check(openbisURL); err != nil || out != "alice" {
			t.Errorf("trusted openBIS: %q, %v; want alice", out, err)
		}
		if out, err := check(untrusted); err == nil || !strings.Contains(err.Error(), "CERTIFICATE_VERIFY_FAILED") {
			t.Errorf("untrusted openBIS: %q, %v; want a certificate verification error", out, err)
		}
	})

	t.Run("integration service", func(t *testing.T) {
		post := func(q url.Values) (int, http.Header, map[string]string) {
			t.Helper()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, comm+"/?"+q.Encode(), strings.NewReader(notebook))
			req.Header.Set("Origin", origin)
			// jQuery's default for $.ajax with a string as data.
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]string
			b, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(b, &body); err != nil {
				t.Errorf("answer %d is not a JSON object: %q", resp.StatusCode, b)
			}
			return resp.StatusCode, resp.Header, body
		}
		args := func(token, folder, file, test string) url.Values {
			return url.Values{"token": {token}, "folder": {folder}, "filename": {file}, "test": {test}}
		}
		target := filepath.Join(home, "alice", "openbis", "n.ipynb")

		code, h, body := post(args(goodToken, "openbis", "n.ipynb", "True"))
		if code != 200 || body["fileName"] != "n.ipynb" {
			t.Fatalf("test=True: %d %v, want 200 fileName n.ipynb", code, body)
		}
		if got := h.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("Access-Control-Allow-Origin %q, want %q", got, origin)
		}
		if _, err := os.Stat(target); err == nil {
			t.Errorf("test=True wrote %s", target)
		}

		code, _, body = post(args(goodToken, "openbis", "n.ipynb", "False"))
		if code != 200 || body["fileName"] != "n.ipynb" {
			t.Fatalf("test=False: %d %v, want 200 fileName n.ipynb", code, body)
		}
		b, err := os.ReadFile(target)
		if err != nil || string(b) != notebook {
			t.Fatalf("%s: %q, %v; want the posted notebook", target, b, err)
		}
		uid, err := dockerCLI("exec", "hub", "id", "-u", "alice")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{target, filepath.Dir(target), filepath.Dir(filepath.Dir(target))} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := strconv.Itoa(int(st.Sys().(*syscall.Stat_t).Uid)); got != uid {
				t.Errorf("%s owned by uid %s, want alice (%s)", p, got, uid)
			}
		}

		// A second notebook of the same name gets a new one, as the
		// original service answers.
		code, _, body = post(args(goodToken, "openbis", "n.ipynb", "True"))
		if code != 200 || body["fileName"] != "n 2.ipynb" {
			t.Errorf("test=True on an existing file: %d %v, want fileName \"n 2.ipynb\"", code, body)
		}

		refused := []struct {
			name string
			q    url.Values
			code int
		}{
			{"bad token", args("mallory-251201120000000xFFFFFF", "openbis", "n.ipynb", "False"), 401},
			{"odd user name", args(oddToken, "openbis", "n.ipynb", "False"), 401},
			{"parent folder", args(goodToken, "..", "n.ipynb", "False"), 400},
			{"traversal in folder", args(goodToken, "../../etc", "n.ipynb", "False"), 400},
			{"slash in folder", args(goodToken, "a/b", "n.ipynb", "False"), 400},
			{"traversal in filename", args(goodToken, "openbis", "../../../etc/x.ipynb", "False"), 400},
			{"not a notebook", args(goodToken, "openbis", "n.sh", "False"), 400},
			{"no token", url.Values{"folder": {"openbis"}, "filename": {"n.ipynb"}}, 400},
		}
		for _, tt := range refused {
			code, h, body := post(tt.q)
			if code != tt.code || body["message"] == "" {
				t.Errorf("%s: %d %v, want %d with a message", tt.name, code, body, tt.code)
			}
			if h.Get("Access-Control-Allow-Origin") != origin {
				t.Errorf("%s: no CORS header on the error, the ELN cannot read it", tt.name)
			}
		}
		if _, err := os.Stat(filepath.Join(home, "bob")); err == nil {
			t.Error("a refused user got a home")
		}

		req, _ := http.NewRequestWithContext(ctx, http.MethodOptions, comm+"/?token=x", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,x-requested-with")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 ||
			resp.Header.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "content-type") {
			t.Errorf("preflight: %s %v", resp.Status, resp.Header)
		}
	})

	t.Run("hub login", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		hops := 0
		c := &http.Client{Transport: tr, Jar: jar, Timeout: 90 * time.Second,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				hops++
				if len(via) > 15 {
					return fmt.Errorf("too many redirects")
				}
				return nil
			}}
		next := "/user/alice/notebooks/openbis/n.ipynb"
		start := time.Now()
		resp, err := c.Get(hub + "/hub/login?" + url.Values{"token": {goodToken}, "next": {next}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("MEASURE login to notebook page: %s, %d redirects", time.Since(start).Round(time.Millisecond), hops)
		if resp.StatusCode != 200 || resp.Request.URL.Path != next {
			t.Fatalf("login ended %s at %s, want 200 at %s", resp.Status, resp.Request.URL, next)
		}
		if !bytes.Contains(b, []byte("n.ipynb")) {
			t.Errorf("notebook page does not name n.ipynb:\n%.500s", b)
		}
		if hops < 1 {
			t.Errorf("no redirect from /hub/login")
		}

		bad := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		resp, err = bad.Get(hub + "/hub/login?" + url.Values{"token": {"mallory-251201120000000xFFFFFF"}, "next": {next}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("bad token: %s, want 403", resp.Status)
		}
	})

	if n := rpcCalls.Load(); n == 0 {
		t.Error("openBIS stand-in never called")
	}

	// docker stop's SIGTERM must end the container well before the kill.
	start = time.Now()
	if _, err := dockerCLI("stop", "-t", "20", "hub"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	stopped = true
	code, _ := dockerCLI("inspect", "-f", "{{.State.ExitCode}}", "hub")
	t.Logf("MEASURE docker stop: %s, exit code %s", took.Round(time.Millisecond), code)
	if took > 15*time.Second {
		t.Errorf("docker stop took %s: SIGTERM not handled", took)
	}
	dockerCLI("rm", "-f", "hub")
}

// startOpenBIS serves openBIS's V3 JSON-RPC session methods over TLS on
// ip inside the network namespace netns and returns OPENBIS_URL.
func startOpenBIS(t *testing.T, netns, ip string, ca *pki.CA, calls *atomic.Int32) string {
	t.Helper()
	crt, key, err := ca.Issue(ip)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	sessions := map[string]string{goodToken: "Alice", oddToken: "bob/../root"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /openbis/openbis/rmi-application-server-v3.json", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var req struct {
			ID     any
			Method string
			Params []string
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Params) != 1 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		user, ok := sessions[req.Params[0]]
		answer := map[string]any{"jsonrpc": "2.0", "id": req.ID}
		switch req.Method {
		case "isSessionActive":
			answer["result"] = ok
		case "getSessionInformation":
			if ok {
				answer["result"] = map[string]any{"@type": "as.dto.session.SessionInformation", "userName": user, "sessionToken": req.Params[0]}
			} else {
				answer["result"] = nil
			}
		default:
			answer["error"] = map[string]any{"code": -32601, "message": "no method " + req.Method}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answer)
	})
	ln, err := inNetNS(netns, func() (net.Listener, error) { return net.Listen("tcp", net.JoinHostPort(ip, "0")) })
	if err != nil {
		t.Fatal(err)
	}
	// Clients that refuse the certificate are expected; do not log them.
	srv := &http.Server{Handler: mux, ErrorLog: log.New(io.Discard, "", 0), TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}}}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

// inNetNS runs f on a thread switched into the network namespace netns,
// so that the sockets it opens live there, then switches the thread back.
// The thread must not die: dockerd's Pdeathsig fires when the thread that
// started it exits, and that may be this one. Only if switching back
// fails is the thread left locked, so that it ends with the goroutine.
func inNetNS[T any](netns string, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var zero T
		runtime.LockOSThread()
		self, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{zero, fmt.Errorf("open own network namespace: %w", err)}
			return
		}
		defer unix.Close(self)
		fd, err := unix.Open(netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{zero, fmt.Errorf("open %s: %w", netns, err)}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{zero, fmt.Errorf("enter %s: %w", netns, err)}
			return
		}
		v, err := f()
		if unix.Setns(self, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{v, err}
	}()
	r := <-ch
	return r.v, r.err
}

func netnsDialer(netns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return inNetNS(netns, func() (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		})
	}
}

// bridgeAddr is docker0's IPv4 address in the daemon's namespace: the
// containers' default gateway.
func bridgeAddr(ctx context.Context, netns string) (string, error) {
	out, err := exec.CommandContext(ctx, "nsenter", "--net="+netns, "--", "ip", "-4", "-o", "addr", "show", "docker0").Output()
	if err != nil {
		return "", fmt.Errorf("docker0 address: %w", err)
	}
	f := strings.Fields(string(out))
	for i, w := range f {
		if w == "inet" && i+1 < len(f) {
			ip, _, _ := strings.Cut(f[i+1], "/")
			return ip, nil
		}
	}
	return "", fmt.Errorf("docker0 address: none in %q", out)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
