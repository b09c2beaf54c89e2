// Package executors holds the host helpers every kind of managed thing
// shares: atomic writes with backups, safe reads, fingerprints and diffs.
// One sub-package per kind owns reading, diffing and applying that kind,
// behind the engine's Resource contract (internal/engine).
package executors

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

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

// UnifiedDiff renders a unified diff of a text file's old and new content.
func UnifiedDiff(path string, old, new []byte) string {
	d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(old)), B: difflib.SplitLines(string(new)),
		FromFile: path, ToFile: path, Context: 3,
	})
	return d
}
