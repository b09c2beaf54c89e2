//go:build integration

package firewalld

import (
	"context"
	"testing"
)

func TestStartStop(t *testing.T) {
	s, err := Start(context.Background(), Options{Dir: t.TempDir()})
	defer func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(context.Background(), "nft", "list", "tables")
	t.Logf("tables: %s %v", out, err)
}
