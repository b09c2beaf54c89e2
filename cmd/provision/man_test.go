package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestManPages(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1764547200") // 1 Dec 2025 00:00 UTC
	dir := filepath.Join(t.TempDir(), "man1")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"__man", dir}, nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("__man: exit %d: %s", code, stderr.String())
	}
	page, err := os.ReadFile(filepath.Join(dir, "provision-plan.1"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `.TH "PROVISION-PLAN" "1" "Dec 2025" "provision dev" "provision manual"`; !strings.Contains(string(page), want) {
		t.Errorf("provision-plan.1 lacks %s:\n%.300s", want, page)
	}
	if _, err := os.Stat(filepath.Join(dir, "provision-__man.1")); err == nil {
		t.Errorf("the hidden __man command has a page")
	}
	stdout.Reset()
	run(context.Background(), []string{"--help"}, nil, &stdout, &stderr)
	if strings.Contains(stdout.String(), "__man") {
		t.Errorf("--help lists __man")
	}
}
