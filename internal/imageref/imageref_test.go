package imageref

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	dig := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		in                             string
		familiar, repo, tag, digest, d string
		wantErr                        bool
	}{
		{in: "jupyterhub", familiar: "jupyterhub:latest", repo: "jupyterhub", tag: "latest", d: "docker.io"},
		{in: "openbis/jupyterhub-openbis-sis-20180405", familiar: "openbis/jupyterhub-openbis-sis-20180405:latest", repo: "openbis/jupyterhub-openbis-sis-20180405", tag: "latest", d: "docker.io"},
		{in: "docker.io/library/busybox:1.36", familiar: "busybox:1.36", repo: "busybox", tag: "1.36", d: "docker.io"},
		{in: "127.0.0.1:5000/jh:2", familiar: "127.0.0.1:5000/jh:2", repo: "127.0.0.1:5000/jh", tag: "2", d: "127.0.0.1:5000"},
		{in: "registry.example.org/a/b@" + dig, familiar: "registry.example.org/a/b@" + dig, repo: "registry.example.org/a/b", digest: dig, d: "registry.example.org"},
		{in: "jh:1@" + dig, familiar: "jh:1@" + dig, repo: "jh", tag: "1", digest: dig, d: "docker.io"},
		{in: "UPPER:1", wantErr: true},
		{in: "", wantErr: true},
		{in: "a b", wantErr: true},
		{in: "jh@sha256:short", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if r.Written != tt.in || r.Familiar != tt.familiar || r.Repo != tt.repo || r.Tag != tt.tag || r.Digest != tt.digest || r.Domain != tt.d {
				t.Errorf("got %+v", r)
			}
		})
	}
}
