package hubimage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMirror(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    string
		wantErr bool
	}{
		{
			name: "deb822 with security first",
			files: map[string]string{"sources.list.d/debian.sources": `Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
`},
			want: "http://mirror.example/debian",
		},
		{
			name: "deb822 disabled and deb-src skipped",
			files: map[string]string{"sources.list.d/a.sources": `Types: deb
URIs: http://off.example/debian
Suites: bookworm
Enabled: no

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb deb-src
URIs: http://on.example/debian
Suites: bookworm
`},
			want: "http://on.example/debian",
		},
		{
			name:  "classic list with options",
			files: map[string]string{"sources.list": "# x\ndeb-src http://src.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://classic.example/debian bookworm main\n"},
			want:  "http://classic.example/debian",
		},
		{
			name:    "none",
			files:   map[string]string{"sources.list": "deb http://old.example/debian bullseye main\n"},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Mirror(dir)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("Mirror = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestOverlay checks the image contract files are in the layer with the
// modes the container needs.
func TestOverlay(t *testing.T) {
	files, err := overlayFiles([]byte("CA"))
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]int64{}
	for _, f := range files {
		modes[f.Name] = f.Mode
	}
	tests := []struct {
		name string
		mode int64
	}{
		{strings.TrimPrefix(StartCommand, "./"), 0o755},
		{"vagrant/config/jupyterhub_config.py", 0o644},
		{"vagrant/initialize/integration_service.py", 0o644},
		{"vagrant/initialize/openbis_session.py", 0o644},
		{strings.TrimPrefix(CAPath, "/"), 0o644},
	}
	for _, tt := range tests {
		if m, ok := modes[tt.name]; !ok || m != tt.mode {
			t.Errorf("%s: mode %o (present %v), want %o", tt.name, m, ok, tt.mode)
		}
	}
}

func TestSkipInLayer(t *testing.T) {
	tests := []struct {
		rel  string
		skip bool
	}{
		{"dev", false}, {"dev/null", true}, {"proc/1", true}, {"tmp", false}, {"tmp/x", true},
		{".complete", true}, {"usr/bin/jupyterhub", false}, {"etc/dev", false},
	}
	for _, tt := range tests {
		if got := skipInLayer(tt.rel); got != tt.skip {
			t.Errorf("skipInLayer(%q) = %v, want %v", tt.rel, got, tt.skip)
		}
	}
}
