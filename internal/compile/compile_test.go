package compile

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openbis/provision/executors/firewalld"
	"github.com/openbis/provision/executors/systemd"
	"github.com/openbis/provision/internal/deploy"
	"github.com/openbis/provision/internal/engine"
	"github.com/openbis/provision/internal/spec"
	"github.com/openbis/provision/templates"
)

// testTarget resolves the examples' openBIS host to documentation addresses.
var update = flag.Bool("update", false, "rewrite golden files")

var testTarget = Target{
	Resolver: firewalld.StaticResolver{
		"openbis.example.org":    {netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")},
		"jupyterhub.example.org": {netip.MustParseAddr("192.0.2.20")},
	},
	Dial: openBIS.dial,
}

// openBIS answers the cross-host check: a TLS server on loopback that
// every openbis_url of the examples reaches.
var openBIS = newTLSListener()

type tlsListener struct{ addr string }

func newTLSListener() *tlsListener {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	return &tlsListener{addr: srv.Listener.Addr().String()}
}

func (l *tlsListener) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, l.addr)
}

// TestCompileJupyterHubHost: the resources of the JupyterHub host, and
// the firewall derived from who calls whom, for the default (users from
// anywhere), users restricted to a network, and the guide's restriction
// of the communication port to the openBIS host.
func TestCompileJupyterHubHost(t *testing.T) {
	head := []string{"systemd_service.firewalld<>"}
	tail := []string{
		"firewalld_direct_rule.loopback_guard<systemd_service.firewalld>",
		"systemd_service.docker<>",
		"docker_image.jupyterhub<systemd_service.docker>",
		"docker_container.jupyterhub<systemd_service.docker,docker_image.jupyterhub>",
		"file.start_script<>",
		"systemd_unit.jupyterhub<systemd_service.docker,docker_image.jupyterhub,file.start_script,docker_container.jupyterhub>",
	}
	fw := func(rules ...string) []string {
		var out []string
		for _, r := range rules {
			out = append(out, r+"<systemd_service.firewalld>")
		}
		return append(append(append([]string{}, head...), out...), tail...)
	}
	for _, tt := range []struct {
		name, firewall string
		want           []string
		warning        string
	}{
		{"users anywhere", `firewall {}`, fw("firewalld_rich_rule.hub_443", "firewalld_rich_rule.comm_8002"), ""},
		{"users on a network", `firewall { users_from = ["198.51.100.0/24"] }`, fw(
			"firewalld_rich_rule.hub_443_198_51_100_0_24",
			"firewalld_direct_rule.hub_443_allow_198_51_100_0_24",
			"firewalld_direct_rule.hub_443_drop_ipv4",
			"firewalld_direct_rule.hub_443_drop_ipv6",
			"firewalld_rich_rule.comm_8002_198_51_100_0_24",
			"firewalld_direct_rule.comm_8002_allow_198_51_100_0_24",
			"firewalld_direct_rule.comm_8002_drop_ipv4",
			"firewalld_direct_rule.comm_8002_drop_ipv6"), ""},
		{"the guide's rule", `firewall { allow_from = ["openbis.example.org"] }`, fw(
			"firewalld_rich_rule.hub_443",
			"firewalld_rich_rule.comm_8002_192_0_2_10",
			"firewalld_rich_rule.comm_8002_2001_db8__10",
			"firewalld_direct_rule.comm_8002_allow_192_0_2_10",
			"firewalld_direct_rule.comm_8002_allow_2001_db8__10",
			"firewalld_direct_rule.comm_8002_drop_ipv4",
			"firewalld_direct_rule.comm_8002_drop_ipv6"), "will not be able to"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := os.ReadFile("../../examples/offline-tar.hcl")
			if err != nil {
				t.Fatal(err)
			}
			src, diags := spec.Decode("offline-tar.hcl", bytes.Replace(b, []byte("firewall {}"), []byte(tt.firewall), 1), spec.Inputs{})
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			src.Spec.Host("jupyterhub.example.org").JupyterHub.Certificates = "" // no certificates on this machine
			c, err := Host(context.Background(), src.Spec, "jupyterhub.example.org", testTarget)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var got []string
			for _, n := range c.Nodes {
				got = append(got, n.Resource.Address()+"<"+strings.Join(n.Deps, ",")+">")
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("nodes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			warnings := strings.Join(c.Warnings, "\n")
			if tt.warning == "" && warnings != "" || !strings.Contains(warnings, tt.warning) {
				t.Errorf("warnings %q, want %q", warnings, tt.warning)
			}
		})
	}
}

func TestEndpoints(t *testing.T) {
	for _, tt := range []struct {
		hub, comm         int
		integration, open string
	}{
		{443, 8002, "https://hub.example.org:8002", "https://hub.example.org/"},
		{8000, 80, "https://hub.example.org:80", "https://hub.example.org:8000/"},
	} {
		i, o := Endpoints("hub.example.org", nil, spec.Deployment{HubPort: tt.hub, CommunicationPort: tt.comm})
		c := &deploy.Container{Ports: []deploy.Port{{HostPort: tt.hub, ContainerPort: deploy.HubPort}, {HostPort: tt.comm, ContainerPort: deploy.IntegrationPort}}}
		if ci, co := Endpoints("hub.example.org", c, spec.Deployment{}); ci != i || co != o {
			t.Errorf("from the container: %s %s, from the deployment: %s %s", ci, co, i, o)
		}
		if i != tt.integration || o != tt.open {
			t.Errorf("hub %d, comm %d: %s %s, want %s %s", tt.hub, tt.comm, i, o, tt.integration, tt.open)
		}
	}
}

func TestCompileUnknownHost(t *testing.T) {
	src, _ := spec.Load("../../examples/offline-tar.hcl", spec.Inputs{})
	_, err := Host(context.Background(), src.Spec, "nope", Target{})
	if err == nil || !strings.Contains(err.Error(), `"jupyterhub.example.org", "openbis.example.org"`) {
		t.Errorf("err = %v", err)
	}
}

// TestStartScriptGolden renders the guide's docker run line from the
// two-host example.
func TestStartScriptGolden(t *testing.T) {
	src, diags := spec.Load("../../examples/jupyterhub-openbis.hcl", spec.Inputs{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	hub := Container(src.Spec, src.Spec.Host("jupyterhub-test.example.org").JupyterHub)
	b, err := templates.StartScript{Address: "file.start_script", Container: *hub}.Render()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "jupyterhub-openbis-start.sh")
	if *update {
		os.WriteFile(golden, b, 0o644)
	}
	want, _ := os.ReadFile(golden)
	if string(b) != string(want) {
		t.Errorf("start script differs (go test ./internal/compile -update):\n%s", b)
	}
}

// TestCompileChecksCertificates: plan-time host checks fail before any
// change when the certificate files are missing.
func TestCompileChecksCertificates(t *testing.T) {
	src, _ := spec.Load("../../examples/offline-tar.hcl", spec.Inputs{})
	j := src.Spec.Host("jupyterhub.example.org").JupyterHub
	j.Certificates = t.TempDir()
	_, err := Host(context.Background(), src.Spec, "jupyterhub.example.org", testTarget)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(j.Certificates, "default.crt")) {
		t.Errorf("err = %v", err)
	}
}

// TestDeletersUseTarget: what left the spec is deleted through the run's
// target, not the default bus or socket.
func TestDeletersUseTarget(t *testing.T) {
	src, _ := spec.Load("../../examples/offline-tar.hcl", spec.Inputs{})
	src.Spec.Host("jupyterhub.example.org").JupyterHub.Certificates = ""
	tt := testTarget
	tt.Bus = "unix:path=/run/target-bus"
	c, err := Host(context.Background(), src.Spec, "jupyterhub.example.org", tt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec := engine.Record{Address: "systemd_unit.old", Kind: systemd.UnitKind, Data: []byte(`{"name":"old.service"}`)}
	r, err := c.Deleters[systemd.UnitKind](rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Plan(context.Background()); err == nil || !strings.Contains(err.Error(), "/run/target-bus") {
		t.Errorf("deleting a unit did not go through --bus: %v", err)
	}
}

// TestOpenBISUnreachable: the hub checks tokens at openbis_url, so a plan
// on the JupyterHub host that cannot reach it says so.
func TestOpenBISUnreachable(t *testing.T) {
	src, _ := spec.Load("../../examples/offline-tar.hcl", spec.Inputs{})
	src.Spec.Host("jupyterhub.example.org").JupyterHub.Certificates = ""
	tt := testTarget
	tt.Dial = func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("connection refused") }
	c, err := Host(context.Background(), src.Spec, "jupyterhub.example.org", tt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if w := strings.Join(c.Warnings, "\n"); !strings.Contains(w, "openbis.example.org:443 does not answer") || !strings.Contains(w, "tokens") {
		t.Errorf("warnings %q", w)
	}
}

// TestHome: users' work is kept in a named volume unless the spec names a
// directory; opting out is allowed and warned about on every plan.
func TestHome(t *testing.T) {
	for _, tt := range []struct {
		name, attrs string
		mount       string // "" = none
		warning     string
	}{
		{"default volume", ``, "volume jupyterhub-openbis-home", ""},
		{"directory", `home = "/srv/jupyterhub/home"`, "/srv/jupyterhub/home", ""},
		{"opted out", `persist_home = false`, "", "every restart of jupyterhub-openbis.service"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := os.ReadFile("../../examples/offline-tar.hcl")
			src, diags := spec.Decode("offline-tar.hcl", bytes.Replace(b, []byte("certificates ="), []byte(tt.attrs+"\n    certificates ="), 1), spec.Inputs{})
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			j := src.Spec.Host("jupyterhub.example.org").JupyterHub
			j.Certificates = ""
			m, ok := Container(src.Spec, j).Home()
			if got := map[bool]string{true: m.String()}[ok]; got != tt.mount {
				t.Errorf("home mount %q, want %q", got, tt.mount)
			}
			c, err := Host(context.Background(), src.Spec, "jupyterhub.example.org", testTarget)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if w := strings.Join(c.Warnings, "\n"); tt.warning == "" && w != "" || !strings.Contains(w, tt.warning) {
				t.Errorf("warnings %q, want %q", w, tt.warning)
			}
		})
	}
}

// TestOpenBISHostChecksHubName: the profile's URLs name the JupyterHub
// host; a name that does not resolve is a warning on the openBIS host.
func TestOpenBISHostChecksHubName(t *testing.T) {
	src, _ := spec.Load("../../examples/offline-tar.hcl", spec.Inputs{})
	for _, tt := range []struct {
		resolver firewalld.StaticResolver
		want     string
	}{
		{testTarget.Resolver.(firewalld.StaticResolver), ""},
		{firewalld.StaticResolver{}, "does not resolve from this host"},
	} {
		tgt := testTarget
		tgt.Resolver = tt.resolver
		c, err := Host(context.Background(), src.Spec, "openbis.example.org", tgt)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if w := strings.Join(c.Warnings, "\n"); tt.want == "" && w != "" || !strings.Contains(w, tt.want) {
			t.Errorf("warnings %q, want %q", w, tt.want)
		}
	}
}

// writeCert writes default.crt and default.key into dir: a self-signed
// certificate for host that expires after validFor.
func writeCert(t *testing.T, dir, host string, validFor time.Duration) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validFor)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(filepath.Join(dir, "default.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "default.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}

// TestWarningsSurviveFailedChecks: when a host check fails, the warnings
// found so far (an expiring certificate) come with the error.
func TestWarningsSurviveFailedChecks(t *testing.T) {
	for _, tt := range []struct {
		name, firewall string
		certs          bool
		wantErr, warn  string
	}{
		{"unresolvable users_from", `firewall { users_from = ["nowhere.example.org"] }`, true, "users_from", "expires on"},
		{"certificates missing", `firewall {}`, false, "default.crt", "persist_home = false"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := os.ReadFile("../../examples/offline-tar.hcl")
			b = bytes.Replace(b, []byte("firewall {}"), []byte(tt.firewall), 1)
			b = bytes.Replace(b, []byte("certificates ="), []byte("persist_home = false\n    certificates ="), 1)
			src, diags := spec.Decode("offline-tar.hcl", b, spec.Inputs{})
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			j := src.Spec.Host("jupyterhub.example.org").JupyterHub
			j.Certificates = t.TempDir()
			if tt.certs {
				writeCert(t, j.Certificates, "jupyterhub.example.org", 10*24*time.Hour)
			}
			_, err := Host(context.Background(), src.Spec, "jupyterhub.example.org", testTarget)
			var ce *CheckError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v (%T)", err, err)
			}
			if w := strings.Join(ce.Warnings, "\n"); !strings.Contains(w, tt.warn) {
				t.Errorf("warnings %q, want %q", w, tt.warn)
			}
		})
	}
}

// TestUnreachableDaemons: with neither the D-Bus nor the Docker daemon
// answering at the addresses given, the plan fails with one line per
// daemon naming its option and address, not one per resource.
func TestUnreachableDaemons(t *testing.T) {
	src, _ := spec.Load("../../examples/offline-tar.hcl", spec.Inputs{})
	src.Spec.Host("jupyterhub.example.org").JupyterHub.Certificates = ""
	dir := t.TempDir()
	tt := testTarget
	tt.Bus = "unix:path=" + filepath.Join(dir, "no-bus")
	tt.DockerHost = "unix://" + filepath.Join(dir, "no-docker.sock")
	c, err := Host(context.Background(), src.Spec, "jupyterhub.example.org", tt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := engine.LoadState(filepath.Join(dir, "state.json"), c.Host)
	if err != nil {
		t.Fatal(err)
	}
	st.Remember(engine.Record{Address: "docker_container.old", Kind: "docker_container", Data: []byte(`{"name":"old"}`)})
	_, err = engine.Make(context.Background(), c.Host, c.Nodes, st, c.Deleters)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		"cannot reach the system D-Bus at " + tt.Bus + " (give another address with --bus)",
		"cannot reach the Docker daemon at " + tt.DockerHost + " (give another address with --docker-host)",
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want %q…", i+1, lines[i], w)
		}
	}
	if !strings.Contains(lines[0], "systemd_service.firewalld") || !strings.Contains(lines[1], "docker_image.jupyterhub") || !strings.Contains(lines[1], "docker_container.old") {
		t.Errorf("resources not named:\n%v", err)
	}
}
