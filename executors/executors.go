// Package executors holds the host helpers every kind of managed thing
// shares: atomic writes with backups, safe reads, fingerprints and diffs.
// One sub-package per kind owns reading, diffing and applying that kind,
// behind the engine's Resource contract (internal/engine).
package executors

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// Fingerprint hashes what a resource observed, for saved-plan staleness.
func Fingerprint(parts ...any) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, p := range parts {
		enc.Encode(p)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// UnifiedDiff renders a unified diff of a text file's old and new content
// as diff(1) and git write it: a new file is "@@ -0,0 +1,N @@", and a last
// line without a newline is followed by "\ No newline at end of file".
// A nil side is a file that does not exist: /dev/null in the header.
func UnifiedDiff(path string, old, new []byte) string {
	from, to := path, path
	if old == nil {
		from = "/dev/null"
	}
	if new == nil {
		to = "/dev/null"
	}
	d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: diffLines(old), B: diffLines(new),
		FromFile: from, ToFile: to, Context: 3,
	})
	return d
}

// diffLines splits s into lines that keep their "\n". Unlike
// difflib.SplitLines it adds no empty line after the last one.
func diffLines(s []byte) []string {
	if len(s) == 0 {
		return nil
	}
	lines := strings.SplitAfter(string(s), "\n")
	if last := lines[len(lines)-1]; last == "" {
		lines = lines[:len(lines)-1]
	} else {
		// The marker rides on the line, so a line that gains or loses its
		// newline shows as changed, as in git.
		lines[len(lines)-1] = last + "\n\\ No newline at end of file\n"
	}
	return lines
}

// SameFile reports whether paths a and b name one existing file, however
// they are spelt (/sbin/x and /usr/sbin/x on a merged /usr): records that
// differ only in spelling name one object.
func SameFile(a, b string) bool {
	if a == b {
		return true
	}
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
