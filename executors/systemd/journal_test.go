package systemd

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestJournalTail(t *testing.T) {
	for _, tc := range []struct {
		name  string
		j     JournalFunc
		wants []string
	}{
		{"lines", func(_ context.Context, unit string, n int) (string, error) {
			return "a\nb\n", nil
		}, []string{"last 20 journal lines of u.service:\n    a\n    b"}},
		{"empty", func(context.Context, string, int) (string, error) { return "", nil }, []string{"(no journal entries)"}},
		{"error", func(context.Context, string, int) (string, error) {
			return "", errors.New("no journal files")
		}, []string{"(reading the journal: no journal files)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := journalTail(context.Background(), tc.j, "u.service", 20)
			for _, w := range tc.wants {
				if !strings.Contains(got, w) {
					t.Errorf("journalTail = %q, want %q", got, w)
				}
			}
		})
	}
}
