package docker

import (
	"testing"

	"github.com/openbis/provision/internal/imageref"
)

func TestHistoryNames(t *testing.T) {
	repo := historyRepo("Lab 1/Prod", "jupyter_hub")
	if repo != "provision/lab-1-prod/jupyter-hub" {
		t.Errorf("repo = %q", repo)
	}
	if _, err := imageref.Parse(repo + ":" + historyTag("20261128-120000", "Jo Doe$", "sha256:0123456789abcdef")); err != nil {
		t.Errorf("history reference does not parse: %v", err)
	}
	if got := historyTag("20261128-120000", "alice", "sha256:585a9adf333bffff"); got != "20261128-120000-alice-585a9adf333b" {
		t.Errorf("tag = %q", got)
	}
}
