package browser

import (
	"context"
	"testing"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		stat  string
		state string
		pgrp  int
		ok    bool
	}{
		{"42 (chromium) S 1 40 40 0 -1", "S", 40, true},
		{"43 (Web Content (x)) Z 42 40 40 0", "Z", 40, true},
		{"44 (a b) R 1 7", "R", 7, true},
		{"garbage", "", 0, false},
		{"45 (short) S", "", 0, false},
	}
	for _, tt := range tests {
		state, pgrp, ok := parseStat(tt.stat)
		if state != tt.state || pgrp != tt.pgrp || ok != tt.ok {
			t.Errorf("parseStat(%q) = %q, %d, %v; want %q, %d, %v", tt.stat, state, pgrp, ok, tt.state, tt.pgrp, tt.ok)
		}
	}
}

func TestStartNeedsNamespace(t *testing.T) {
	if _, err := Start(context.Background(), Options{}); err == nil {
		t.Fatal("Start without a namespace succeeded")
	}
}
