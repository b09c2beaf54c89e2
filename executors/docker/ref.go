package docker

import (
	"regexp"
	"strings"

	"github.com/openbis/provision/internal/imageref"
)

// familiar normalises any reference string to its familiar form, or
// returns s unchanged when it does not parse.
func familiar(s string) string {
	r, err := imageref.Parse(s)
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
