// Package imageref parses Docker image references once, for the spec's
// validation, the Docker executor and the start script alike.
package imageref

import (
	"fmt"

	"github.com/distribution/reference"
)

// Ref is a parsed image reference.
type Ref struct {
	// Written is the reference as the spec wrote it; the start script
	// runs exactly that.
	Written string
	// Familiar is the short form docker prints and stores in RepoTags
	// ("jupyterhub:1", "localhost:5000/x:y", "x@sha256:…").
	Familiar string
	// Repo is the familiar repository name, without tag or digest.
	Repo string
	// Tag is empty when the reference is pinned by digest only.
	Tag string
	// Digest is "sha256:…" when pinned.
	Digest string
	// Domain is the registry host ("docker.io" for Docker Hub).
	Domain string
}

// Parse parses an image reference the way the docker CLI does: a
// missing tag means "latest", names are normalised (docker.io/library/…
// becomes the familiar short form).
func Parse(s string) (Ref, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, fmt.Errorf("parse image reference %q: %w", s, err)
	}
	r := Ref{Written: s, Repo: reference.FamiliarName(named), Domain: reference.Domain(named)}
	if c, ok := named.(reference.Canonical); ok {
		r.Digest = c.Digest().String()
	}
	if t, ok := named.(reference.Tagged); ok {
		r.Tag = t.Tag()
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	r.Familiar = r.Repo
	if r.Tag != "" {
		r.Familiar += ":" + r.Tag
	}
	if r.Digest != "" {
		r.Familiar += "@" + r.Digest
	}
	return r, nil
}

// Tagged is repo:tag, the form found in RepoTags ("" when digest-only).
func (r Ref) Tagged() string {
	if r.Tag == "" {
		return ""
	}
	return r.Repo + ":" + r.Tag
}

// String is the reference as written.
func (r Ref) String() string { return r.Written }
