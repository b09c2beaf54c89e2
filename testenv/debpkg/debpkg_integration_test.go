//go:build integration

package debpkg

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"debug/elf"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// files are the package's regular files and their modes, besides the man
// pages (usr/share/man/man1/provision*.1.gz, 0644).
var files = map[string]string{
	"usr/bin/provision": "-rwxr-xr-x",
	"usr/share/bash-completion/completions/provision": "-rw-r--r--",
	"usr/share/zsh/vendor-completions/_provision":     "-rw-r--r--",
	"lib/systemd/system/provision-plan.service":       "-rw-r--r--",
	"lib/systemd/system/provision-plan.timer":         "-rw-r--r--",
	"etc/default/provision-plan":                      "-rw-r--r--",
	"usr/share/doc/provision/README.md.gz":            "-rw-r--r--",
	"usr/share/doc/provision/changelog.gz":            "-rw-r--r--",
	"usr/share/lintian/overrides/provision":           "-rw-r--r--",
}

var manPage = regexp.MustCompile(`^usr/share/man/man1/provision(-[a-z]+)*\.1\.gz$`)

// build runs .ci/package with args into a new directory and returns the
// one .deb it wrote.
func build(t *testing.T, args ...string) string {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command("bash", append([]string{"../../.ci/package"}, append(args, out)...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf(".ci/package %v: %v\n%s", args, err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf(".ci/package wrote %v, want one .deb", debs)
	}
	return debs[0]
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr)
	}
	return string(b)
}

func TestPackage(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("no dpkg-deb: not a Debian machine")
	}
	deb := build(t)
	arch := strings.TrimSpace(run(t, "dpkg", "--print-architecture"))

	// The control file.
	field := func(name string) string {
		return strings.TrimSpace(run(t, "dpkg-deb", "--field", deb, name))
	}
	version := field("Version")
	if want := "provision_" + version + "_" + arch + ".deb"; filepath.Base(deb) != want {
		t.Errorf("file name %s, want %s", filepath.Base(deb), want)
	}
	for name, want := range map[string]string{
		"Package":      "provision",
		"Architecture": arch,
		"Section":      "admin",
		"Priority":     "optional",
		"Depends":      "",
		"Recommends":   "docker.io, firewalld, openssh-client",
	} {
		if got := field(name); got != want {
			t.Errorf("control %s: %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"Maintainer", "Description", "Installed-Size"} {
		if field(name) == "" {
			t.Errorf("control has no %s", name)
		}
	}
	if got := run(t, "dpkg-deb", "--info", deb, "conffiles"); got != "/etc/default/provision-plan\n" {
		t.Errorf("conffiles: %q", got)
	}

	// The contents: root's, 0755 directories, the files above and man pages.
	seen := map[string]bool{}
	var pages []string
	for _, line := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "--contents", deb)), "\n") {
		f := strings.Fields(line) // mode owner size date time path
		if len(f) != 6 {
			t.Errorf("contents line %q", line)
			continue
		}
		mode, owner, path := f[0], f[1], strings.TrimPrefix(f[5], "./")
		if owner != "root/root" {
			t.Errorf("%s is %s's, want root/root", path, owner)
		}
		want, ok := files[path]
		switch {
		case strings.HasSuffix(path, "/") || path == "":
			want, ok = "drwxr-xr-x", true
		case manPage.MatchString(path):
			want, ok = "-rw-r--r--", true
			pages = append(pages, path)
		}
		if !ok {
			t.Errorf("unexpected %s in the package", path)
		} else if mode != want {
			t.Errorf("%s: mode %s, want %s", path, mode, want)
		}
		seen[path] = true
	}
	for path := range files {
		if !seen[path] {
			t.Errorf("package lacks %s", path)
		}
	}
	for _, cmd := range []string{"", "-plan", "-apply", "-show", "-validate", "-fmt", "-version", "-completion-bash"} {
		if p := "usr/share/man/man1/provision" + cmd + ".1.gz"; !slices.Contains(pages, p) {
			t.Errorf("package lacks %s", p)
		}
	}

	// Extracted: the binary is static and says the package's version.
	dir := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, dir)
	bin := filepath.Join(dir, "usr/bin/provision")
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("usr/bin/provision is dynamically linked")
		}
	}
	ef.Close()
	commit := strings.TrimSpace(run(t, "git", "rev-parse", "--short=12", "HEAD"))
	if got, want := run(t, bin, "version"), "provision "+version+" (commit "+commit+")\n"; got != want {
		t.Errorf("provision version: %q, want %q", got, want)
	}
	comp := run(t, bin, "completion", "bash")
	if !strings.Contains(comp, "__start_provision") {
		t.Errorf("provision completion bash is no bash completion:\n%.300s", comp)
	}
	if shipped, _ := os.ReadFile(filepath.Join(dir, "usr/share/bash-completion/completions/provision")); string(shipped) != comp {
		t.Errorf("the shipped bash completion is not the binary's")
	}
	if zsh, _ := os.ReadFile(filepath.Join(dir, "usr/share/zsh/vendor-completions/_provision")); !bytes.HasPrefix(zsh, []byte("#compdef provision")) {
		t.Errorf("zsh completion starts %.40q, want #compdef provision", zsh)
	}

	// Man pages are troff, and man reads them.
	for _, p := range pages {
		f, err := os.Open(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		troff, err := io.ReadAll(zr)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !bytes.HasPrefix(troff, []byte(".nh\n.TH \"PROVISION")) {
			t.Errorf("%s starts %.40q, want a .TH header", p, troff)
		}
		if !bytes.Contains(troff, []byte("\"provision "+version+"\"")) {
			t.Errorf("%s does not name provision %s", p, version)
		}
	}
	if _, err := exec.LookPath("man"); err == nil {
		out := run(t, "env", "MANWIDTH=80", "man", "-l", filepath.Join(dir, "usr/share/man/man1/provision-plan.1.gz"))
		if !strings.Contains(out, "provision-plan - Show what apply would change") || !strings.Contains(out, "--out") {
			t.Errorf("man -l provision-plan.1.gz:\n%s", out)
		}
	}

	// The drift check runs the packaged binary and reads the conffile; the
	// package enables nothing (no symlinks under /etc/systemd).
	unit, _ := os.ReadFile(filepath.Join(dir, "lib/systemd/system/provision-plan.service"))
	for _, want := range []string{"\nExecStart=/usr/bin/provision plan ", "\nEnvironmentFile=-/etc/default/provision-plan\n"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("provision-plan.service lacks %q", strings.TrimSpace(want))
		}
	}
	if def, _ := os.ReadFile(filepath.Join(dir, "etc/default/provision-plan")); !strings.Contains(string(def), "\n#PROVISION_PLAN_ARGS=") {
		t.Errorf("/etc/default/provision-plan has no commented PROVISION_PLAN_ARGS:\n%s", def)
	}

	// md5sums covers every file but the conffile, and matches.
	ctrl := t.TempDir()
	run(t, "dpkg-deb", "-e", deb, ctrl)
	sums, err := os.ReadFile(filepath.Join(ctrl, "md5sums"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, path, _ := strings.Cut(line, "  ")
		listed[path] = true
		b, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil {
			t.Errorf("md5sums: %v", err)
			continue
		}
		if h := md5.Sum(b); hex.EncodeToString(h[:]) != sum {
			t.Errorf("md5sums: %s does not match", path)
		}
	}
	for path := range seen {
		regular := path != "" && !strings.HasSuffix(path, "/")
		if regular && path != "etc/default/provision-plan" && !listed[path] {
			t.Errorf("md5sums lacks %s", path)
		}
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if fi, err := os.Stat(filepath.Join(ctrl, s)); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("DEBIAN/%s: %v, want mode 0755", s, err)
		}
	}

	// Two builds of one tree are the same bytes.
	a, _ := os.ReadFile(deb)
	b, _ := os.ReadFile(build(t))
	if !bytes.Equal(a, b) {
		t.Errorf("a second build differs from the first: the package is not reproducible")
	}
}

// TestPackageVersionFlag: --version names the package and the binary.
func TestPackageVersionFlag(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("no dpkg-deb: not a Debian machine")
	}
	deb := build(t, "--version", "1.2.3~rc1")
	if got := strings.TrimSpace(run(t, "dpkg-deb", "--field", deb, "Version")); got != "1.2.3~rc1" {
		t.Errorf("Version %q, want 1.2.3~rc1", got)
	}
	dir := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, dir)
	if got := run(t, filepath.Join(dir, "usr/bin/provision"), "--version"); !strings.HasPrefix(got, "provision 1.2.3~rc1 (commit ") {
		t.Errorf("provision --version: %q", got)
	}
	cmd := exec.Command("bash", "../../.ci/package", "--version", "v1.2.3", t.TempDir())
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf(".ci/package --version v1.2.3 accepted a version Debian refuses:\n%s", out)
	}
}
