package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// TestValidationShowsValueAndOrigin: a failed validation block says what
// the value is, unless it is sensitive, and where it came from.
func TestValidationShowsValueAndOrigin(t *testing.T) {
	dir := t.TempDir()
	varFile := filepath.Join(dir, "prod.hcl")
	if err := os.WriteFile(varFile, []byte("limit = 8443\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(sensitive string) string {
		return base + `
variable "limit" {
  type    = number
  default = 8080
  ` + sensitive + `
  validation {
    condition     = var.limit < 1024
    error_message = "The limit must be below 1024."
  }
}
`
	}
	for _, tt := range []struct {
		name, spec string
		in         Inputs
		want       string
	}{
		{"default", check(""), Inputs{}, "var.limit is 8080, from the default."},
		{"-var", check(""), Inputs{Vars: []string{"limit=8002"}}, "var.limit is 8002, from -var limit."},
		{"var file", check(""), Inputs{VarFiles: []string{varFile}}, "var.limit is 8443, from var file " + varFile + "."},
		{"environment", check(""), Inputs{Environ: []string{"PROVISION_VAR_limit=8081"}}, "var.limit is 8081, from environment variable PROVISION_VAR_limit."},
		{"sensitive", check("sensitive = true"), Inputs{Vars: []string{"limit=8002"}}, "var.limit is (sensitive value), from -var limit."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Decode("spec.hcl", []byte(tt.spec), tt.in)
			d := find(diags, "Invalid value for variable")
			if d == nil || len(diags.Errs()) != 1 {
				t.Fatalf("want one diagnostic, got %s", diags)
			}
			if !strings.Contains(d.Detail, "The limit must be below 1024.") || !strings.HasSuffix(d.Detail, tt.want) {
				t.Errorf("detail %q, want it to end in %q", d.Detail, tt.want)
			}
		})
	}
}

// TestDidYouMean: a misspelt variable is named with the one meant.
func TestDidYouMean(t *testing.T) {
	for _, tt := range []struct {
		name, old, new string
		in             Inputs
		want           string
	}{
		{"reference", `communication_port = var.port`, `communication_port = var.prot`, Inputs{}, `"prot" has not been declared. Did you mean var.port?`},
		{"reference far from any", `communication_port = var.port`, `communication_port = var.something`, Inputs{}, `"something" has not been declared. Declared: port.`},
		{"-var", ``, ``, Inputs{Vars: []string{"prt=1"}}, `Did you mean var.port?`},
		{"local", `home = "/srv/home"`, `home = local.hme`, Inputs{}, `"hme" has not been declared. Did you mean local.home?`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(base, tt.old, tt.new, 1)
			if tt.name == "local" {
				src += "locals {\n  home = \"/srv/home\"\n}\n"
			}
			_, diags := Decode("spec.hcl", []byte(src), tt.in)
			if len(diags.Errs()) != 1 || !strings.Contains(diags[0].Detail, tt.want) {
				t.Errorf("got %s, want %q", diags, tt.want)
			}
		})
	}
}

func TestUnreadableVarFile(t *testing.T) {
	_, diags := Decode("spec.hcl", []byte(base), Inputs{VarFiles: []string{"/nonexistent/vars.hcl"}})
	d := find(diags, "Cannot read var file")
	if d == nil || d.Detail != "-var-file /nonexistent/vars.hcl: /nonexistent/vars.hcl: no such file or directory." {
		t.Errorf("got %v", diags)
	}
}

// TestAllowUnset: validate checks a spec's shape without the values of
// its required variables; plan still needs them.
func TestAllowUnset(t *testing.T) {
	src := `
variable "openbis" { type = string }
variable "port" { type = number }
variable "token" {
  type      = string
  sensitive = true
  validation {
    condition     = length(var.token) > 10
    error_message = "Too short."
  }
}
deployment "d" {
  openbis_host       = var.openbis
  jupyterhub_host    = "hub.example.org"
  communication_port = var.port
}
host "hub.example.org" {
  jupyterhub {
    image {
      name = "openbis/jupyterhub-openbis-sis-20180405"
      load = "/srv/images/hub.tar"
    }
    openbis_url = "https://${deployment.openbis_host}:${deployment.communication_port}"
    home        = "/srv/home/${var.port}"
  }
  file "token" {
    path    = "/etc/token"
    content = var.token
  }
}
`
	if _, diags := Decode("spec.hcl", []byte(src), Inputs{AllowUnset: true}); diags.HasErrors() {
		t.Errorf("validate: %s", diags)
	}
	_, diags := Decode("spec.hcl", []byte(src), Inputs{})
	if n := len(diags.Errs()); n != 3 || find(diags, "No value for required variable") == nil {
		t.Errorf("plan: want 3 missing values, got %s", diags)
	}
	// A shape error is still one.
	bad := strings.Replace(src, `home        = "/srv/home/${var.port}"`, `home = "srv/home"`, 1)
	if _, diags := Decode("spec.hcl", []byte(bad), Inputs{AllowUnset: true}); find(diags, "Relative path") == nil || len(diags.Errs()) != 1 {
		t.Errorf("validate: want the relative path, got %s", diags)
	}
}

// TestFunctions: Terraform's functions that specs use, and templatefile
// relative to the spec with the spec's own functions.
func TestFunctions(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"motd.tmpl":    "Hello ${upper(name)}%{ for p in ports }, ${p}%{ endfor }\n",
		"recurse.tmpl": "${templatefile(\"motd.tmpl\", {})}",
		"secret.tmpl":  "token=${token}",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		expr, want, err string
	}{
		{`templatefile("motd.tmpl", { name = "hub", ports = [80, 443] })`, "Hello HUB, 80, 443\n", ""},
		{`try(tonumber("x"), "fallback")`, "fallback", ""},
		{`tostring(can(tonumber("x")))`, "false", ""},
		{`coalesce("", "b")`, "b", ""},
		{`coalesce(null, "", "c")`, "c", ""},
		{`tostring(tonumber("42"))`, "42", ""},
		{`base64encode("hub")`, "aHVi", ""},
		{`base64decode("aHVi")`, "hub", ""},
		{`sha256("hub")`, "08d33503ee27d4c13055d0cefec5e730be4ef2e41cd6cfce434936ec1e7c9d4b", ""},
		{`md5("hub")`, "", ""},
		{`tostring(startswith("jupyterhub", "jupyter"))`, "true", ""},
		{`basename("/srv/home/x.tar")`, "x.tar", ""},
		{`templatefile("recurse.tmpl", {})`, "", "cannot be called from a template"},
		{`templatefile("motd.tmpl", { name = "hub" })`, "", `vars has no key "ports"`},
		{`templatefile("missing.tmpl", {})`, "", "no such file or directory"},
	} {
		t.Run(tt.expr, func(t *testing.T) {
			src := base + "locals {\n  x = " + tt.expr + "\n}\n"
			_, diags := Decode(filepath.Join(dir, "spec.hcl"), []byte(src), Inputs{})
			if tt.err != "" {
				if !strings.Contains(diags.Error(), tt.err) || len(diags.Errs()) != 1 {
					t.Errorf("got %v, want %q", diags, tt.err)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			got := evalLocal(t, dir, src)
			if tt.want != "" && got != tt.want {
				t.Errorf("= %q, want %q", got, tt.want)
			}
		})
	}
}

// evalLocal decodes src and returns local.x as a string.
func evalLocal(t *testing.T, dir, src string) string {
	t.Helper()
	f, diags := Decode(filepath.Join(dir, "spec.hcl"), []byte(src), Inputs{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	d := &decoder{dir: dir, parser: f.Parser, unknown: map[*hcl.Attribute]bool{}, reads: &reader{digests: Reads{}, read: map[string][]byte{}}}
	file, _ := f.Parser.ParseHCL([]byte(src), filepath.Join(dir, "spec.hcl"))
	d.decode(file.Body, Inputs{})
	v := d.ctx.Variables["local"].GetAttr("x")
	v, _ = v.Unmark()
	return v.AsString()
}

// TestTemplatefileSensitive: a sensitive value in vars makes the result
// sensitive, so the file is.
func TestTemplatefileSensitive(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "t.tmpl"), []byte("token=${token}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := secretVar + base + `
host "other.example.org" {
  file "token" {
    path    = "/etc/token"
    content = templatefile("t.tmpl", { token = var.secret })
  }
}`
	f, diags := Decode(filepath.Join(dir, "spec.hcl"), []byte(src), Inputs{Vars: []string{"secret=hunter2"}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if file := f.Spec.Host("other.example.org").Files[0]; !file.Sensitive || file.Content != "token=hunter2\n" {
		t.Errorf("file = %+v", file)
	}
}
