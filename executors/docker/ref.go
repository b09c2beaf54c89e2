package docker

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
)

// Ref is a parsed image reference.
type Ref struct {
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

// ParseRef parses an image reference the way the docker CLI does: a
// missing tag means "latest", names are normalised (docker.io/library/…
// becomes the familiar short form).
func ParseRef(s string) (Ref, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, fmt.Errorf("parse image reference %q: %w", s, err)
	}
	r := Ref{Repo: reference.FamiliarName(named), Domain: reference.Domain(named)}
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

// familiar normalises any reference string to its familiar form, or
// returns s unchanged when it does not parse.
func familiar(s string) string {
	r, err := ParseRef(s)
	if err != nil {
		return s
	}
	return r.Familiar
}

var unsafeRepoChars = regexp.MustCompile(`[^a-z0-9]+`)

// repoComponent turns s into one valid repository path component.
func repoComponent(s string) string {
	s = strings.Trim(unsafeRepoChars.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if s == "" {
		s = "default"
	}
	return s
}

// historyRepo is the repository under which an image resource tags every
// image it put in place, so that cleanup knows which images are its own
// and how old they are, whatever the spec's name does later.
func historyRepo(deployment, name string) string {
	return "provision/" + repoComponent(deployment) + "/" + repoComponent(name)
}

var unsafeTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// historyTag follows the guide's convention of putting the date and the
// user in the tag, and ends with the short image ID so that two applies in
// one second do not take each other's tag: 20261128-120501-alice-585a9adf333b.
func historyTag(when, user, id string) string {
	u := strings.Trim(unsafeTagChars.ReplaceAllString(user, "-"), "-.")
	if len(u) > 64 {
		u = u[:64]
	}
	t := when
	if u != "" {
		t += "-" + u
	}
	return t + "-" + short(id)
}
