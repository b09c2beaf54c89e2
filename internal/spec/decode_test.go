package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// base is a valid spec; cases replace one of its parts.
const base = `
variable "port" {
  type    = number
  default = 80
}
deployment "d" {
  openbis_host       = "openbis.example.org"
  jupyterhub_host    = "hub.example.org"
  communication_port = var.port
}
host "hub.example.org" {
  jupyterhub {
    image {
      name = "openbis/jupyterhub-openbis-sis-20180405"
      load = "/srv/images/hub.tar"
    }
    home = "/srv/home"
  }
  firewall {}
}
host "openbis.example.org" {
  eln_instance_profile { path = "/opt/openbis/InstanceProfile.js" }
}
`

func TestDecodeValid(t *testing.T) {
	src, diags := Decode("spec.hcl", []byte(base), Inputs{})
	if diags.HasErrors() {
		t.Fatalf("diagnostics: %s", diags)
	}
	s := src.Spec
	if s.Deployment.CommunicationPort != 80 || s.Deployment.OpenBISHost != "openbis.example.org" {
		t.Errorf("deployment = %+v", s.Deployment)
	}
	j := s.Host("hub.example.org").JupyterHub
	if j.OpenBISURL != "https://openbis.example.org" {
		t.Errorf("openbis_url derived as %q", j.OpenBISURL)
	}
	if j.Image.Load != "/srv/images/hub.tar" || j.ContainerName != "jupyterhub-openbis" || j.Image.Keep != 1 {
		t.Errorf("jupyterhub = %+v", j)
	}
	if got := s.Host("hub.example.org").Firewall.Zone; got != "public" {
		t.Errorf("zone = %q", got)
	}
}

// TestDiagnostics has one case per diagnostic: the edit makes the spec
// wrong in one place, and the diagnostic must point there.
func TestDiagnostics(t *testing.T) {
	tests := []struct {
		name    string
		old     string // replaced in base
		new     string
		summary string
		at      string // "line:col" of the subject
		in      Inputs
	}{
		{"unknown attribute", `home = "/srv/home"`, `homedir = "/srv/home"`, "Unsupported argument", "17:5", Inputs{}},
		{"unknown block", `firewall {}`, `firewal {}`, "Unsupported block type", "19:3", Inputs{}},
		{"wrong type", `default = 80`, `default = "eighty"`, "Invalid default value", "4:13", Inputs{}},
		{"port range", `communication_port = var.port`, `communication_port = 70000`, "Invalid port", "9:24", Inputs{}},
		{"port clash", `communication_port = var.port`, `communication_port = 8081`, "Port clash", "9:24", Inputs{}},
		{"port clash from var", `default = 80`, `default = 8000`, "Port clash", "9:24", Inputs{}},
		{"https", `home = "/srv/home"`, `openbis_url = "http://openbis.example.org"`, "URL without https", "17:19", Inputs{}},
		{"relative path", `home = "/srv/home"`, `home = "srv/home"`, "Relative path", "17:12", Inputs{}},
		{"image reference", `name = "openbis/jupyterhub-openbis-sis-20180405"`, `name = "Openbis/UPPER case"`, "Invalid image reference", "14:14", Inputs{}},
		{"two sources", `load = "/srv/images/hub.tar"`, "load = \"/srv/images/hub.tar\"\n      pull = true", "Two image sources", "16:7", Inputs{}},
		{"no source", `load = "/srv/images/hub.tar"`, ``, "No image source", "13:5", Inputs{}},
		{"no host block", `jupyterhub_host    = "hub.example.org"`, `jupyterhub_host    = "other.example.org"`, "No matching host block", "8:24", Inputs{}},
		{"newline", `home = "/srv/home"`, `home = "/srv/home\n; rm -rf /"`, "Unsafe value", "17:12", Inputs{}},
		{"nul", `home = "/srv/home"`, `home = "/srv/\u0000home"`, "Unsafe value", "17:12", Inputs{}},
		{"hostname", `openbis_host       = "openbis.example.org"`, `openbis_host       = "openbis.example.org\"; alert(1)"`, "Invalid host name", "7:24", Inputs{}},
		{"zone", `firewall {}`, `firewall { zone = "pub lic" }`, "Invalid zone", "19:21", Inputs{}},
		{"required variable", `default = 80`, ``, "No value for required variable", "2:1", Inputs{}},
		{"undeclared -var", ``, ``, "Undeclared variable", "", Inputs{Vars: []string{"nope=1"}}},
		{"bad -var value", ``, ``, "Invalid value for variable", "", Inputs{Vars: []string{"port=eighty"}}},
		{"duplicate host", `host "openbis.example.org" {`, `host "hub.example.org" {}
host "openbis.example.org" {`, "Duplicate host block", "21:6", Inputs{}},
		{"missing deployment", `deployment "d" {`, `deploymen "d" {`, "Unsupported block type", "6:1", Inputs{}},
		{"undefined variable", `communication_port = var.port`, `communication_port = var.prot`, "Reference to undeclared input variable", "9:24", Inputs{}},
		{"home and no persistence", `home = "/srv/home"`, "home = \"/srv/home\"\n    persist_home = false", "Conflicting home settings", "18:20", Inputs{}},
		{"start script for systemd", `home = "/srv/home"`, `start_script = "/usr/local/bin/start$HOME.sh"`, "Invalid start script path", "17:20", Inputs{}},
		{"path managed twice", `eln_instance_profile { path = "/opt/openbis/InstanceProfile.js" }`, "eln_instance_profile { path = \"/opt/openbis/InstanceProfile.js\" }\n  file \"x\" {\n    path = \"/opt/openbis/InstanceProfile.js\"\n    content = \"\"\n  }", "Path managed twice", "23:3", Inputs{}},
		{"colon in a mount", `home = "/srv/home"`, `home = "/srv/a:b"`, "Invalid mount path", "17:12", Inputs{}},
		{"no COMM sources", `firewall {}`, `firewall { allow_from = [] }`, "No sources", "19:27", Inputs{}},
		{"unclean path", `home = "/srv/home"`, `start_script = "/usr/local//bin/x.sh"`, "Unclean path", "17:20", Inputs{}},
		{"ssh option as destination", `firewall {}`, "firewall {}\n  ssh { destination = \"-oProxyCommand=sh\" }", "Invalid SSH destination", "20:23", Inputs{}},
		{"ssh destination with space", `firewall {}`, "firewall {}\n  ssh { destination = \"root@hub example\" }", "Invalid SSH destination", "20:23", Inputs{}},
		{"ssh option as host", `firewall {}`, "firewall {}\n  ssh { destination = \"root@-oProxyCommand=sh\" }", "Invalid SSH destination", "20:23", Inputs{}},
		{"ssh URI", `firewall {}`, "firewall {}\n  ssh { destination = \"ssh://root@hub\" }", "Invalid SSH destination", "20:23", Inputs{}},
		{"ssh destination without user", `firewall {}`, "firewall {}\n  ssh { destination = \"@hub\" }", "Invalid SSH destination", "20:23", Inputs{}},
		{"ssh port", `firewall {}`, "firewall {}\n  ssh { port = 0 }", "Invalid port", "20:16", Inputs{}},
		{"two ssh blocks", `firewall {}`, "firewall {}\n  ssh {}\n  ssh {}", "Duplicate block", "21:3", Inputs{}},
		// The executors' own checks, found at validate time.
		{"setuid mode", `eln_instance_profile { path = "/opt/openbis/InstanceProfile.js" }`, "file \"x\" {\n    path = \"/x\"\n    content = \"\"\n    mode = \"4755\"\n  }", "Invalid mode", "25:12", Inputs{}},
		{"CIDR with host bits", `firewall {}`, `firewall { allow_from = ["10.0.0.5/24"] }`, "Invalid source", "19:27", Inputs{}},
		{"control character in host name", `openbis_host       = "openbis.example.org"`, `openbis_host       = "openbis.example.org\u0001"`, "Unsafe value", "7:24", Inputs{}},
		{"undeclared local", `home = "/srv/home"`, `home = local.hom`, "Reference to undeclared local value", "17:12", Inputs{}},
		{"control character in a host label", `host "openbis.example.org" {`, "host \"x\\n\" {}\nhost \"openbis.example.org\" {", "Invalid block label", "21:6", Inputs{}},
		{"control character in a file label", `eln_instance_profile { path = "/opt/openbis/InstanceProfile.js" }`, "file \"a\\tb\" {\n    path = \"/x\"\n    content = \"\"\n  }", "Invalid block label", "22:8", Inputs{}},
		{"unreadable var file", ``, ``, "Cannot read var file", "", Inputs{VarFiles: []string{"/nonexistent/vars.hcl"}}},
		{"validation refers to another variable", `  default = 80
}`, `  default = 80
  validation {
    condition     = var.port != var.other
    error_message = "No."
  }
}
variable "other" { default = 1 }`, "Invalid reference in variable validation", "6:33", Inputs{}},
		{"trailing backslash", `load = "/srv/images/hub.tar"`, "build {\n        from = \"a:1\"\n        dockerfile_lines = [\"RUN x \\\\\"]\n      }", "Invalid build recipe", "17:28", Inputs{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := base
			if tt.old != "" {
				if !strings.Contains(src, tt.old) {
					t.Fatalf("base has no %q", tt.old)
				}
				src = strings.Replace(src, tt.old, tt.new, 1)
			}
			_, diags := Decode("spec.hcl", []byte(src), tt.in)
			d := find(diags, tt.summary)
			if d == nil {
				t.Fatalf("no %q diagnostic; got:\n%s", tt.summary, diags)
			}
			// One problem, one diagnostic (a missing block also reports
			// what it leaves missing).
			if n := len(diags.Errs()); n != 1 && tt.summary != "Unsupported block type" {
				t.Errorf("%d diagnostics for one problem:\n%s", n, diags)
			}
			if tt.at == "" {
				return
			}
			if d.Subject == nil {
				t.Fatalf("%q has no source range", tt.summary)
			}
			if got := fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column); got != tt.at || d.Subject.Filename != "spec.hcl" {
				t.Errorf("%q at %s:%s, want spec.hcl:%s", tt.summary, d.Subject.Filename, got, tt.at)
			}
		})
	}
}

func find(diags hcl.Diagnostics, summary string) *hcl.Diagnostic {
	for _, d := range diags {
		if d.Summary == summary {
			return d
		}
	}
	return nil
}

// TestAllDiagnosticsAtOnce: a spec wrong in many places gets every
// problem in one run.
func TestAllDiagnosticsAtOnce(t *testing.T) {
	hostile := strings.NewReplacer(
		`communication_port = var.port`, `communication_port = 8001`,
		`home = "/srv/home"`, "home = \"relative/home\"\n    openbis_url = \"http://x\"\n    colour = 1",
		`load = "/srv/images/hub.tar"`, "load = \"/srv/images/hub.tar\"\n      pull = true",
		`firewall {}`, `firewall { zone = "$(touch /tmp/pwned)" }`,
	).Replace(base)
	_, diags := Decode("hostile.hcl", []byte(hostile), Inputs{})
	for _, want := range []string{"Port clash", "Relative path", "URL without https", "Unsupported argument", "Two image sources", "Invalid zone"} {
		if find(diags, want) == nil {
			t.Errorf("missing %q in:\n%s", want, diags)
		}
	}
}

func TestVariableSources(t *testing.T) {
	dir := t.TempDir()
	varFile := filepath.Join(dir, "vars.hcl")
	if err := os.WriteFile(varFile, []byte("port = 8443\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   Inputs
		want int
	}{
		{"default", Inputs{}, 80},
		{"environment", Inputs{Environ: []string{"PROVISION_VAR_port=81"}}, 81},
		{"var file over environment", Inputs{Environ: []string{"PROVISION_VAR_port=81"}, VarFiles: []string{varFile}}, 8443},
		{"-var over all", Inputs{Environ: []string{"PROVISION_VAR_port=81"}, VarFiles: []string{varFile}, Vars: []string{"port=8002"}}, 8002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, diags := Decode("spec.hcl", []byte(base), tt.in)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if got := src.Spec.Deployment.CommunicationPort; got != tt.want {
				t.Errorf("port = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestValidationBlockAndLocals(t *testing.T) {
	spec := strings.Replace(base, `  default = 80
}`, `  default = 80
  validation {
    condition     = var.port != 443
    error_message = "443 belongs to openBIS."
  }
}
locals {
  b = "${local.a}/home"
  a = "/srv"
}`, 1)
	spec = strings.Replace(spec, `home = "/srv/home"`, `home = local.b`, 1)
	src, diags := Decode("spec.hcl", []byte(spec), Inputs{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := src.Spec.Host("hub.example.org").JupyterHub.Home; got != "/srv/home" {
		t.Errorf("home = %q", got)
	}
	_, diags = Decode("spec.hcl", []byte(spec), Inputs{Vars: []string{"port=443"}})
	// One problem, one diagnostic: the value refused is not used further
	// (443 would also clash with the hub port).
	if d := find(diags, "Invalid value for variable"); d == nil || !strings.Contains(d.Detail, "443 belongs to openBIS") || len(diags.Errs()) != 1 {
		t.Errorf("validation block not applied: %s", diags)
	}
}

func TestSensitiveVariableMarksFile(t *testing.T) {
	spec := base + `
variable "secret" {
  type      = string
  sensitive = true
  default   = "hunter2"
}
host "other.example.org" {
  file "token" {
    path    = "/etc/token"
    content = "token=${var.secret}"
  }
}`
	src, diags := Decode("spec.hcl", []byte(spec), Inputs{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if f := src.Spec.Host("other.example.org").Files[0]; !f.Sensitive || f.Content != "token=hunter2" {
		t.Errorf("file = %+v, want sensitive", f)
	}
}

func TestExamplesValidate(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.hcl")
	if len(files) < 3 {
		t.Fatalf("examples: %v", files)
	}
	for _, f := range files {
		if _, diags := Load(f, Inputs{}); diags.HasErrors() {
			t.Errorf("%s: %s", f, diags)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte(`deployment "x" { openbis_host = "a" jupyterhub_host = "b" }`))
	f.Add([]byte(`variable "v" { type = list(string) } locals { a = var.v }`))
	f.Fuzz(func(t *testing.T, src []byte) {
		s, diags := Decode("fuzz.hcl", src, Inputs{Vars: []string{"port=1"}})
		if s.Spec != nil && diags.HasErrors() {
			t.Fatal("spec returned despite errors")
		}
		if s.Spec == nil && !diags.HasErrors() {
			t.Fatal("no spec and no error")
		}
	})
}

// TestValidationMessageInterpolates: error_message may name the variable,
// as Terraform users write it; a sensitive one is withheld.
func TestValidationMessageInterpolates(t *testing.T) {
	for _, tt := range []struct {
		sensitive bool
		want      string
	}{{false, "Port 8081 is reserved."}, {true, "withheld"}} {
		src := strings.Replace(base, `  default = 80
}`, fmt.Sprintf(`  default = 8081
  sensitive = %v
  validation {
    condition     = var.port != 8081
    error_message = "Port ${var.port} is reserved."
  }
}`, tt.sensitive), 1)
		_, diags := Decode("spec.hcl", []byte(src), Inputs{})
		d := find(diags, "Invalid value for variable")
		if d == nil || !strings.Contains(d.Detail, tt.want) || tt.sensitive && strings.Contains(diags.Error(), "8081 is") {
			t.Errorf("sensitive %v: %v", tt.sensitive, diags)
		}
	}
}

func TestLength(t *testing.T) {
	for _, tt := range []struct{ expr, want string }{
		{`length("jupyterhub")`, "10"},
		{`length(["a", "b"])`, "2"},
		{`length({a = 1})`, "1"},
	} {
		src := strings.Replace(base, "communication_port = var.port", "communication_port = var.port + "+tt.expr+" - "+tt.want, 1)
		s, diags := Decode("spec.hcl", []byte(src), Inputs{})
		if diags.HasErrors() || s.Spec.Deployment.CommunicationPort != 80 {
			t.Errorf("%s: %v", tt.expr, diags)
		}
	}
}

// TestCaptured: a host decodes the spec with what file() and env() read on
// the admin's machine, not with its own files and environment.
func TestCaptured(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "motd.txt"), []byte("from the admin"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PROVISION_TEST_GREETING", "hello")
	src := strings.Replace(base, `host "openbis.example.org" {`, `host "openbis.example.org" {
  file "motd" {
    path    = "/etc/motd"
    content = "${file("motd.txt")} ${env("PROVISION_TEST_GREETING")}"
  }`, 1)
	name := filepath.Join(dir, "spec.hcl")
	admin, diags := Decode(name, []byte(src), Inputs{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	os.Remove(filepath.Join(dir, "motd.txt"))
	t.Setenv("PROVISION_TEST_GREETING", "the host's own")
	host, diags := Decode(name, []byte(src), Inputs{Captured: admin.Captured})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := host.Spec.Host("openbis.example.org").Files[0].Content; got != "from the admin hello" {
		t.Errorf("content on the host %q", got)
	}
	if len(host.Reads.Changed(admin.Reads)) != 0 {
		t.Errorf("reads differ: %v", host.Reads.Changed(admin.Reads))
	}

	// The admin's machine read nothing: the host reads nothing either,
	// although it has the file.
	os.WriteFile(filepath.Join(dir, "motd.txt"), []byte("the host's own"), 0o644)
	try := strings.Replace(src, `${file("motd.txt")} ${env("PROVISION_TEST_GREETING")}`, `${try(file("motd.txt"), "default")}`, 1)
	host, diags = Decode(name, []byte(try), Inputs{Captured: map[string][]byte{}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := host.Spec.Host("openbis.example.org").Files[0].Content; got != "default" {
		t.Errorf("with nothing captured, the host read %q", got)
	}
}
