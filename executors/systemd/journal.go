package systemd

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// JournalFunc returns the last n journal lines of a unit.
type JournalFunc func(ctx context.Context, unit string, n int) (string, error)

// journalctl returns a JournalFunc that runs `journalctl -u UNIT -n N
// --no-pager`; with a root other than "" it reads the journal files under
// ROOT/var/log/journal (a container's persistent journal) instead of this
// host's journal.
func journalctl(root string) JournalFunc {
	return func(ctx context.Context, unit string, n int) (string, error) {
		args := []string{"--no-pager", "-u", unit, "-n", strconv.Itoa(n)}
		if root != "" {
			args = append([]string{"-D", filepath.Join(root, "var/log/journal")}, args...)
		}
		var out, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "journalctl", args...)
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			return out.String(), fmt.Errorf("journalctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return out.String(), nil
	}
}

// journalTail formats a unit's last journal lines for an error message. It
// never fails: a journal that cannot be read is said so in the text.
func journalTail(ctx context.Context, j JournalFunc, unit string, n int) string {
	s, err := j(ctx, unit, n)
	s = strings.TrimRight(s, "\n")
	if err != nil {
		s = strings.TrimSpace(s + "\n(reading the journal: " + err.Error() + ")")
	}
	if s == "" {
		s = "(no journal entries)"
	}
	return fmt.Sprintf("last %d journal lines of %s:\n%s", n, unit, indent(s))
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
