package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// secretVar declares the sensitive variable the cases below give a value.
const secretVar = `
variable "secret" {
  type      = string
  sensitive = true
}
variable "secret_port" {
  type      = number
  sensitive = true
  default   = 8123
}
locals {
  home = "/srv/${upper(var.secret)}"
}
`

// TestSensitiveNeverInDiagnostics: a sensitive value that makes an
// attribute wrong is reported once, at the attribute, and its value
// appears nowhere in the diagnostic, snippets included. The last-resort
// scrub is off, so the decoder's own redaction is what is tested.
func TestSensitiveNeverInDiagnostics(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "t.tmpl"), []byte("x = ${nope}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	otherHost := func(body string) [2]string {
		return [2]string{`eln_instance_profile { path = "/opt/openbis/InstanceProfile.js" }`,
			"eln_instance_profile { path = \"/opt/openbis/InstanceProfile.js\" }\n" + body}
	}
	for _, tt := range []struct {
		name    string
		edit    [2]string // old, new in base
		secret  string    // -var secret=
		summary string
	}{
		{"file path relative", otherHost(`file "f" {
    path    = var.secret
    content = ""
  }`), "relative/hunter2", "Relative path"},
		{"file path unclean", otherHost(`file "f" {
    path    = "/x/${var.secret}/../y"
    content = ""
  }`), "hunter2", "Invalid path"},
		{"file path control character", otherHost(`file "f" {
    path    = "/x/${var.secret}"
    content = ""
  }`), "hunter2\nx", "Unsafe value"},
		{"file content NUL", otherHost(`file "f" {
    path    = "/x"
    content = var.secret
  }`), "hunter2\x00", "Unsafe value"},
		{"file content declared not sensitive", otherHost(`file "f" {
    path      = "/x"
    content   = var.secret
    sensitive = false
  }`), "hunter2", "Sensitive file declared not sensitive"},
		{"file mode", otherHost(`file "f" {
    path    = "/x"
    content = ""
    mode    = var.secret
  }`), "0abc-hunter2", "Sensitive value not allowed"},
		{"file owner", otherHost(`file "f" {
    path    = "/x"
    content = ""
    owner   = "u${var.secret}"
  }`), "hunter2", "Sensitive value not allowed"},
		{"openbis_url", [2]string{`home = "/srv/home"`, `home = "/srv/home"
    openbis_url = var.secret`}, "http://svc:hunter2@openbis.example.org", "URL without https"},
		{"openbis_url control character", [2]string{`home = "/srv/home"`, `home = "/srv/home"
    openbis_url = "https://svc:${var.secret}@openbis.example.org"`}, "hunter2\x01", "Unsafe value"},
		{"image auth password", [2]string{`load = "/srv/images/hub.tar"`, `pull = true
      auth {
        username = "bob"
        password = var.secret
      }`}, "hunter2\x01", "Unsafe value"},
		{"image auth literal password", [2]string{`load = "/srv/images/hub.tar"`, "pull = true\n      auth {\n        username = \"bob\"\n        password = \"hunter2\\u0001\"\n      }"}, "hunter2", "Unsafe value"},
		{"eln profile path", [2]string{`path = "/opt/openbis/InstanceProfile.js"`, `path = "/opt/${var.secret}/InstanceProfile.js"`}, "hunter2", "Sensitive value not allowed"},
		{"any string", [2]string{`home = "/srv/home"`, `home = "/srv/${var.secret}"`}, "hunter2", "Sensitive value not allowed"},
		{"a local derived from it", [2]string{`home = "/srv/home"`, `home = local.home`}, "hunter2", "Sensitive value not allowed"},
		{"number", [2]string{`communication_port = var.port`, `communication_port = var.secret_port`}, "hunter2", "Sensitive value not allowed"},
		{"function error", [2]string{`home = "/srv/home"`, `home = "/srv/${tonumber(var.secret)}"`}, "hunter2", "Invalid function argument"},
		{"file()", otherHost(`file "f" {
    path    = "/x"
    content = file("${var.secret}.txt")
  }`), "hunter2", "Invalid function argument"},
		{"templatefile() path", otherHost(`file "f" {
    path    = "/x"
    content = templatefile("${var.secret}.tmpl", {})
  }`), "hunter2", "Invalid function argument"},
		{"validation", [2]string{`  default = 80
}`, `  default = 80
}
variable "token" {
  type      = string
  sensitive = true
  default   = "s3cr3t"
  validation {
    condition     = length(var.token) > 10
    error_message = "The token is too short."
  }
}`}, "hunter2", "Invalid value for variable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func(old bool) { scrubDiagnostics = old }(scrubDiagnostics)
			scrubDiagnostics = false
			src := secretVar + base
			if !strings.Contains(src, tt.edit[0]) {
				t.Fatalf("base has no %q", tt.edit[0])
			}
			src = strings.Replace(src, tt.edit[0], tt.edit[1], 1)
			f, diags := Decode(filepath.Join(dir, "spec.hcl"), []byte(src), Inputs{Vars: []string{"secret=" + tt.secret}})
			if find(diags, tt.summary) == nil || len(diags.Errs()) != 1 {
				t.Fatalf("want one %q diagnostic, got:\n%s", tt.summary, diagnosticsText(f, diags))
			}
			text := diagnosticsText(f, diags)
			if tt.name == "image auth literal password" {
				text = diags[0].Detail // the snippet shows the spec's own text
			}
			for _, leak := range []string{"hunter2", "HUNTER2", "s3cr3t", "8123"} {
				if strings.Contains(text, leak) {
					t.Errorf("the sensitive value shows:\n%s", text)
				}
			}
		})
	}
}

// diagnosticsText is what the CLI prints: hcl's text with snippets.
func diagnosticsText(f *File, diags hcl.Diagnostics) string {
	var b bytes.Buffer
	hcl.NewDiagnosticTextWriter(&b, f.Parser.Files(), 100, false).WriteDiagnostics(diags)
	return b.String()
}

// TestSensitiveVarValue: a -var value that does not parse as the
// variable's type is not quoted back when the variable is sensitive.
func TestSensitiveVarValue(t *testing.T) {
	f, diags := Decode("spec.hcl", []byte(secretVar+base), Inputs{Vars: []string{"secret=x", "secret_port=hunter2!"}})
	if d := find(diags, "Invalid value for variable"); d == nil || len(diags.Errs()) != 1 {
		t.Fatalf("want one diagnostic, got %s", diags)
	}
	if text := diagnosticsText(f, diags); strings.Contains(text, "hunter2") {
		t.Errorf("the sensitive value shows:\n%s", text)
	}
}

// TestScrubLastResort: should a message of hcl or cty quote a sensitive
// value, the decoder takes it out.
func TestScrubLastResort(t *testing.T) {
	d := &decoder{secrets: secretTexts(mustString("hunter2"))}
	diags := hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "x", Detail: `cannot convert "hunter2" to number`}}
	d.scrub(diags)
	if got := diags[0].Detail; got != "cannot convert (sensitive value) to number" {
		t.Errorf("scrubbed: %q", got)
	}
}

// TestSensitivePathMarksFile: a path from a sensitive variable makes the
// file fully sensitive, its address unchanged.
func TestSensitivePathMarksFile(t *testing.T) {
	spec := secretVar + base + `
host "other.example.org" {
  file "token" {
    path    = "/etc/${var.secret}"
    content = "plain"
  }
}`
	src, diags := Decode("spec.hcl", []byte(spec), Inputs{Vars: []string{"secret=hunter2"}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	f := src.Spec.Host("other.example.org").Files[0]
	if !f.Sensitive || !f.SensitivePath || f.Path != "/etc/hunter2" || f.Name != "token" {
		t.Errorf("file = %+v, want sensitive path and content", f)
	}
	if j := src.Spec.Host("hub.example.org").JupyterHub; j.OpenBISURLSensitive {
		t.Errorf("the derived openbis_url is not sensitive")
	}
}

func mustString(s string) cty.Value { return cty.StringVal(s) }
