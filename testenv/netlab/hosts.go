package netlab

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The block of a server's /etc/hosts that SetHosts manages; lines outside
// it are the server's own and are kept.
const (
	beginMark = "# BEGIN netlab"
	endMark   = "# END netlab"
)

// baseHosts starts a user's hosts file, which replaces /etc/hosts whole
// inside `ip netns exec`.
const baseHosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

// hostsFile is where a member's hosts entries go, seen from this machine.
func hostsFile(m *Member) string {
	if m.NS != "" {
		return filepath.Join("/etc/netns", m.NS, "hosts")
	}
	return fmt.Sprintf("/proc/%d/root/etc/hosts", m.Pid)
}

func writeHosts(m *Member, hosts map[string][]string) error {
	path := hostsFile(m)
	old := baseHosts
	if m.NS != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("write hosts of %s: %w", m.Name, err)
		}
	} else if b, err := os.ReadFile(path); err == nil {
		old = string(b)
	} else if !os.IsNotExist(err) {
		return fmt.Errorf("write hosts of %s: %w", m.Name, err)
	}
	if err := writeFileAtomic(path, []byte(replaceBlock(old, hostsBlock(hosts)))); err != nil {
		return fmt.Errorf("write hosts of %s: %w", m.Name, err)
	}
	return nil
}

// hostsBlock renders entries one address per line, sorted by name so the
// file does not change between equal calls.
func hostsBlock(hosts map[string][]string) string {
	names := make([]string, 0, len(hosts))
	for n := range hosts {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(beginMark + "\n")
	for _, n := range names {
		for _, a := range hosts[n] {
			if a != "" {
				fmt.Fprintf(&b, "%s\t%s\n", a, n)
			}
		}
	}
	b.WriteString(endMark + "\n")
	return b.String()
}

// replaceBlock puts block in place of the managed block of text, or at its
// end when it has none.
func replaceBlock(text, block string) string {
	lines := strings.SplitAfter(text, "\n")
	var out strings.Builder
	in, done := false, false
	for _, l := range lines {
		switch strings.TrimSpace(l) {
		case beginMark:
			in = true
			continue
		case endMark:
			if in {
				in = false
				if !done {
					out.WriteString(block)
					done = true
				}
				continue
			}
		}
		if !in {
			out.WriteString(l)
		}
	}
	if !done {
		s := out.String()
		if s != "" && !strings.HasSuffix(s, "\n") {
			out.WriteString("\n")
		}
		out.WriteString(block)
	}
	return out.String()
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".hosts-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
