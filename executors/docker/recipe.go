package docker

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"

	"github.com/openbis/provision/internal/imageref"
	"github.com/openbis/provision/templates"
)

// BuildRecipe extends a base image the way the guide recommends: pip and
// conda installs on top of the official image, plus optional raw
// Dockerfile lines.
type BuildRecipe struct {
	// From is the base image reference.
	From string
	// PythonPackages are pip requirement specifiers ("prettytable==3.9").
	PythonPackages []string
	// RPackages are conda package names from the "r" channel.
	RPackages []string
	// ExtraLines are appended to the Dockerfile verbatim, one line each.
	ExtraLines []string
}

// Validate rejects values that could not be placed safely in a Dockerfile.
func (r *BuildRecipe) Validate() error {
	if _, err := imageref.Parse(r.From); err != nil {
		return fmt.Errorf("build recipe: from: %w", err)
	}
	for _, p := range append(append([]string{}, r.PythonPackages...), r.RPackages...) {
		if err := CheckPackage(p); err != nil {
			return fmt.Errorf("build recipe: %w", err)
		}
	}
	for _, l := range r.ExtraLines {
		if err := CheckLine(l); err != nil {
			return fmt.Errorf("build recipe: %w", err)
		}
	}
	return nil
}

// CheckPackage refuses a package specifier that would be more than one
// word of the install line: pip and conda get it unquoted.
func CheckPackage(p string) error {
	if p == "" || strings.HasPrefix(p, "-") || strings.IndexFunc(p, func(c rune) bool {
		return unicode.IsControl(c) || unicode.IsSpace(c) || strings.ContainsRune("'\"`$\\;&|", c)
	}) >= 0 {
		return fmt.Errorf("package %q must be a specifier such as \"prettytable==3.9.0\": no spaces, quotes, shell characters or leading '-'", p)
	}
	return nil
}

// CheckLine refuses an extra Dockerfile line that is not exactly one line:
// a line break, or a trailing backslash that would continue it into the
// next instruction of the template.
func CheckLine(l string) error {
	if strings.ContainsAny(l, "\r\n\x00") || strings.HasSuffix(strings.TrimRight(l, " \t"), "\\") {
		return fmt.Errorf("dockerfile line %q: one whole Dockerfile line per entry, without a trailing '\\'", l)
	}
	return nil
}

// Dockerfile renders the recipe with templates/Dockerfile.tmpl.
func (r *BuildRecipe) Dockerfile() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return templates.Render("Dockerfile.tmpl", r)
}

// Hash identifies what a build would produce: the Dockerfile and the base
// image's ID. It goes on the image as a label, so a plan knows without
// building whether the image is current.
func (r *BuildRecipe) Hash(baseID string) (string, error) {
	df, err := r.Dockerfile()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "provision-recipe-v1\x00%s\x00", baseID)
	h.Write(df)
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// buildContext is an in-memory tar holding only the Dockerfile: the recipe
// copies nothing from the host.
func buildContext(dockerfile []byte) (*bytes.Reader, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(dockerfile); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return bytes.NewReader(b.Bytes()), nil
}
