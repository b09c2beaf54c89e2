package templates

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/openbis/provision/internal/deploy"
	"github.com/openbis/provision/internal/imageref"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// guideScript is the guide's production docker run line (section "openBIS
// ELN Integration Configuration"), with a home and certificates mounted.
func guideScript() StartScript {
	return StartScript{
		Address: "file.start_script",
		Container: deploy.Container{
			Name:       "jupyterhub",
			Deployment: "demo",
			Image:      imageref.Ref{Written: "openbis/jupyterhub-openbis-sis-20180405:latest"},
			Command:    "./vagrant/initialize/start_jupyterhub.sh",
			Env: []deploy.Env{
				{Name: "OPENBIS_URL", Value: "https://openbis-test.ethz.ch"},
				{Name: "JUPYTERHUB_INTEGRATION_SERVICE_PORT", Value: "8002"},
				{Name: "JUPYTERHUB_PORT", Value: "8000"},
				{Name: "CERTIFICATE_KEY", Value: "/vagrant/config/certificates/default.key"},
				{Name: "CERTIFICATE_CRT", Value: "/vagrant/config/certificates/default.crt"},
			},
			Ports: []deploy.Port{{HostPort: 8000, ContainerPort: 8000}, {HostIP: "127.0.0.1", HostPort: 8081, ContainerPort: 8081},
				{HostIP: "127.0.0.1", HostPort: 8001, ContainerPort: 8001}, {HostPort: 80, ContainerPort: 8002}},
			Mounts: []deploy.Mount{{Source: "/srv/jupyterhub/home", Target: "/home"}, {Source: "/etc/jupyterhub/certificates", Target: "/vagrant/config/certificates"}},
		},
	}
}

// wantArgs is the docker argv the script must run: rm of a leftover
// container, then run.
func wantArgs(s StartScript) [][]string {
	c := s.Container
	run := []string{"run", "--name", c.Name, "--label", "provision.deployment=" + c.Deployment}
	for _, e := range c.Env {
		run = append(run, "-e", e.Name+"="+e.Value)
	}
	for _, p := range s.Publish() {
		run = append(run, "-p", p)
	}
	for _, v := range s.Volumes() {
		run = append(run, "-v", v)
	}
	run = append(run, "--", c.Image.Written)
	if c.Command != "" {
		run = append(run, c.Command)
	}
	return [][]string{{"rm", "-f", "--", c.Name}, run}
}

func TestStartScriptGolden(t *testing.T) {
	got, err := guideScript().Render()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "start.sh.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rendered start script differs from %s (go test -update rewrites it):\n%s", golden, got)
	}
}

// recorder is a fake docker that appends its argv, NUL-separated, to
// $DOCKER_RECORD, each call opened by callMark.
const (
	callMark = "--docker-call--"
	recorder = "#!/bin/sh\n{ printf '%s\\0' '" + callMark + "'; printf '%s\\0' \"$@\"; } >>\"$DOCKER_RECORD\"\n"
)

// shells are the interpreters the script must mean the same thing in; sh
// is required, the others are used when installed.
func shells(t *testing.T) [][]string {
	var found [][]string
	for _, sh := range [][]string{{"sh"}, {"dash"}, {"bash"}, {"bash", "--posix"}, {"busybox", "sh"}} {
		p, err := exec.LookPath(sh[0])
		if err != nil {
			if sh[0] == "sh" {
				t.Fatal("no sh in PATH")
			}
			continue
		}
		found = append(found, append([]string{p}, sh[1:]...))
	}
	return found
}

// runScript runs script under shell with the recorder as docker, in a
// directory holding files a stray glob would match, and returns the
// recorded calls.
func runScript(t *testing.T, shell []string, script []byte) [][]string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	work := filepath.Join(dir, "work")
	for _, d := range []string{bin, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"a", "b", ".hidden"} {
		os.WriteFile(filepath.Join(work, f), nil, 0o644)
	}
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(recorder), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "start.sh")
	if err := os.WriteFile(path, script, 0o755); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(dir, "record")
	cmd := exec.Command(shell[0], append(shell[1:], path)...)
	cmd.Dir = work
	// Real tools stay in PATH, so an injected command would run and leave
	// its mark instead of failing quietly.
	cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "DOCKER_RECORD=" + record, "HOME=" + work}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v: %s", shell, err, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		t.Errorf("%v wrote to stderr: %s", shell, stderr.Bytes())
	}
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("%v: docker never ran: %v", shell, err)
	}
	var calls [][]string
	for _, a := range strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00") {
		if a == callMark {
			calls = append(calls, []string{})
			continue
		}
		if len(calls) == 0 {
			t.Fatalf("record does not start with a call mark: %q", b)
		}
		calls[len(calls)-1] = append(calls[len(calls)-1], a)
	}
	entries, _ := os.ReadDir(work)
	if len(entries) != 3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("%v: the script created files in its directory: %q", shell, names)
	}
	return calls
}

func TestStartScriptRunsGuideCommand(t *testing.T) {
	s := guideScript()
	script, err := s.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shells(t) {
		if got, want := runScript(t, sh, script), wantArgs(s); !equalCalls(got, want) {
			t.Errorf("%v ran docker with\n%q\nwant\n%q", sh, got, want)
		}
	}
}

// hostile values, each tried in every field at once; PWN is replaced by a
// path whose existence afterwards proves an injection.
var hostile = []string{
	"$(touch PWN)",
	"`touch PWN`",
	"'; touch PWN; '",
	`"; touch PWN; "`,
	`it's a "quoted" value`,
	"'",
	`"`,
	"''",
	"two  spaces\tand a tab",
	"line one\ntouch PWN\n",
	"line\r\ntouch PWN",
	"x; touch PWN",
	"x && touch PWN",
	"x || touch PWN",
	"x | touch PWN",
	"x & touch PWN",
	"> PWN",
	"< /etc/passwd",
	"*",
	".*",
	"[ab]",
	"?",
	"~root",
	"$HOME ${PATH} $0 $$ $1 $@",
	"${PWN:=x}",
	"--privileged",
	"-e",
	`trailing backslash\`,
	`\n\t\\`,
	"# not a comment",
	"!! !$",
	"%s %n %%",
	"non-utf8 \xff\xfe",
	"unicode é ✓",
	"x\\\ntouch PWN",
	"'$(touch PWN)'",
	`"$(touch PWN)"`,
	"$'\\x41'",
}

func TestStartScriptHostileValues(t *testing.T) {
	for _, sh := range shells(t) {
		t.Run(filepath.Base(strings.Join(sh, " ")), func(t *testing.T) {
			for _, h := range hostile {
				pwn := filepath.Join(t.TempDir(), "pwned")
				v := strings.ReplaceAll(h, "PWN", pwn)
				s := StartScript{Address: v, Container: deploy.Container{
					Name:       v,
					Deployment: v,
					Image:      imageref.Ref{Written: v},
					Command:    v,
					Env:        []deploy.Env{{Name: "A", Value: v}, {Name: strings.ReplaceAll(v, "=", ""), Value: v}, {Name: "EMPTY"}},
					Ports:      []deploy.Port{{HostIP: v, HostPort: 8000, ContainerPort: 8000}},
					Mounts:     []deploy.Mount{{Source: "/" + v, Target: "/home"}},
				}}
				script, err := s.Render()
				if err != nil {
					t.Fatalf("%q: %v", v, err)
				}
				if got, want := runScript(t, sh, script), wantArgs(s); !equalCalls(got, want) {
					t.Errorf("value %q: docker ran with\n%q\nwant\n%q\nscript:\n%s", v, got, want, script)
				}
				if _, err := os.Lstat(pwn); err == nil {
					t.Errorf("value %q: injected command ran (%s exists)", v, pwn)
				}
			}
		})
	}
}

func TestStartScriptNoCommand(t *testing.T) {
	s := guideScript()
	s.Container.Command = ""
	s.Container.Env, s.Container.Ports, s.Container.Mounts = nil, nil, nil
	script, err := s.Render()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := runScript(t, []string{"sh"}, script), wantArgs(s); !equalCalls(got, want) {
		t.Errorf("docker ran with %q, want %q", got, want)
	}
}

func TestStartScriptValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*StartScript)
		want   string
	}{
		{"no container name", func(s *StartScript) { s.Container.Name = "" }, "empty container name"},
		{"no image", func(s *StartScript) { s.Container.Image.Written = "" }, "empty image"},
		{"NUL in image", func(s *StartScript) { s.Container.Image.Written = "a\x00b" }, "NUL"},
		{"NUL in env value", func(s *StartScript) { s.Container.Env[0].Value = "a\x00" }, "NUL"},
		{"NUL in volume", func(s *StartScript) { s.Container.Mounts[0].Source = "\x00" }, "NUL"},
		{"NUL in port address", func(s *StartScript) { s.Container.Ports[0].HostIP = "\x00" }, "NUL"},
		{"= in env name", func(s *StartScript) { s.Container.Env[0].Name = "A=B" }, "contains '='"},
		{"empty env name", func(s *StartScript) { s.Container.Env[0].Name = "" }, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := guideScript()
			tt.modify(&s)
			if _, err := s.Render(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// The template function refuses NUL even when Validate is bypassed.
	s := guideScript()
	s.Container.Ports[0].HostIP = "\x00"
	if _, err := Render(StartScriptTemplate, s); !errors.Is(err, ErrNUL) {
		t.Errorf("Render with a NUL: err = %v, want ErrNUL", err)
	}
}

func equalCalls(a, b [][]string) bool {
	return slices.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

func TestPublish(t *testing.T) {
	s := StartScript{Container: deploy.Container{Ports: []deploy.Port{
		{HostPort: 443, ContainerPort: 8000},
		{HostIP: "127.0.0.1", HostPort: 8081, ContainerPort: 8081},
		{HostIP: "::1", HostPort: 8001, ContainerPort: 8001},
	}}}
	want := []string{"443:8000", "127.0.0.1:8081:8081", "[::1]:8001:8001"}
	if got := s.Publish(); !slices.Equal(got, want) {
		t.Errorf("Publish() = %q, want %q", got, want)
	}
}
