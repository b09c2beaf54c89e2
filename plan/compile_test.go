package plan

import (
	"context"
	"github.com/openbis/provision/executors/firewalld"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testTarget resolves the examples' openBIS host to documentation addresses.
var testTarget = Target{Resolver: firewalld.StaticResolver{
	"openbis.example.org": {netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")},
}}

func TestCompileJupyterHubHost(t *testing.T) {
	src, diags := Load("../examples/offline-tar.hcl", Inputs{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	j := src.Spec.Host("jupyterhub.example.org").JupyterHub
	j.Certificates = "" // no certificates on this machine
	c, err := Compile(context.Background(), src.Spec, "jupyterhub.example.org", testTarget)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range c.Nodes {
		got = append(got, n.Resource.Address()+"<"+strings.Join(n.Deps, ",")+">")
	}
	want := []string{
		"systemd_service.firewalld<>",
		"firewalld_rich_rule.openbis_8002_192_0_2_10<systemd_service.firewalld>",
		"firewalld_rich_rule.openbis_8002_2001_db8__10<systemd_service.firewalld>",
		"firewalld_rich_rule.jupyterhub_8000<systemd_service.firewalld>",
		"firewalld_direct_rule.openbis_8002_allow_192_0_2_10<systemd_service.firewalld>",
		"firewalld_direct_rule.openbis_8002_allow_2001_db8__10<systemd_service.firewalld>",
		"firewalld_direct_rule.openbis_8002_drop_ipv4<systemd_service.firewalld>",
		"firewalld_direct_rule.openbis_8002_drop_ipv6<systemd_service.firewalld>",
		"firewalld_direct_rule.loopback_guard<systemd_service.firewalld>",
		"systemd_service.docker<>",
		"docker_image.jupyterhub<systemd_service.docker>",
		"file.start_script<>",
		"docker_container.jupyterhub<systemd_service.docker,docker_image.jupyterhub>",
		"systemd_unit.jupyterhub<systemd_service.docker,docker_image.jupyterhub,file.start_script,docker_container.jupyterhub>",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("nodes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCompileUnknownHost(t *testing.T) {
	src, _ := Load("../examples/offline-tar.hcl", Inputs{})
	_, err := Compile(context.Background(), src.Spec, "nope", Target{})
	if err == nil || !strings.Contains(err.Error(), `"jupyterhub.example.org", "openbis.example.org"`) {
		t.Errorf("err = %v", err)
	}
}

// TestStartScriptGolden renders the guide's docker run line from the
// two-host example.
func TestStartScriptGolden(t *testing.T) {
	src, diags := Load("../examples/jupyterhub-openbis.hcl", Inputs{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	b, err := StartScript(src.Spec, src.Spec.Host("jupyterhub-test.example.org").JupyterHub)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "jupyterhub-openbis-start.sh")
	if *update {
		os.WriteFile(golden, b, 0o644)
	}
	want, _ := os.ReadFile(golden)
	if string(b) != string(want) {
		t.Errorf("start script differs (go test ./plan -update):\n%s", b)
	}
}

// TestCompileChecksCertificates: plan-time host checks fail before any
// change when the certificate files are missing.
func TestCompileChecksCertificates(t *testing.T) {
	src, _ := Load("../examples/offline-tar.hcl", Inputs{})
	j := src.Spec.Host("jupyterhub.example.org").JupyterHub
	j.Certificates = t.TempDir()
	_, err := Compile(context.Background(), src.Spec, "jupyterhub.example.org", testTarget)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(j.Certificates, "default.crt")) {
		t.Errorf("err = %v", err)
	}
}
