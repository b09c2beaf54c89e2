package templates

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "''"},
		{"plain-word_1.2/x:y=z@a,b+c", "plain-word_1.2/x:y=z@a,b+c"},
		{"two words", "'two words'"},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{"$(id)", "'$(id)'"},
		{"`id`", "'`id`'"},
		{`"$HOME"`, `'"$HOME"'`},
		{"a\nb", "'a\nb'"},
		{"*", "'*'"},
		{"~", "'~'"},
		{`back\slash`, `'back\slash'`},
	}
	for _, tt := range tests {
		if got := ShellQuote(tt.in); got != tt.want {
			t.Errorf("ShellQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestSystemdQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"/usr/local/bin/start.sh", `"/usr/local/bin/start.sh"`},
		{"two words", `"two words"`},
		{`say "hi"`, `"say \"hi\""`},
		{`back\slash`, `"back\\slash"`},
		{"100%", `"100%%"`},
		{"%n", `"%%n"`},
		{"$HOME ${X}", `"$$HOME $${X}"`},
		{"line\nbreak", `"line\nbreak"`},
		{"tab\there", `"tab\there"`},
		{"cr\rbell\a", `"cr\x0dbell\x07"`},
		{"del\x7f", `"del\x7f"`},
		{";", `";"`},
		{"it's", `"it's"`},
		{"unicode é", `"unicode é"`},
		{"bad utf8 \xff", `"bad utf8 \xff"`},
	}
	for _, tt := range tests {
		got := SystemdQuote(tt.in)
		if got != tt.want {
			t.Errorf("SystemdQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if back, err := systemdUnquote(got); err != nil || back != tt.in {
			t.Errorf("unquote(%s) = %q, %v; want %q", got, back, err, tt.in)
		}
	}
}

// systemdUnquote undoes one quoted Exec= argument the way systemd reads it
// (load-fragment.c config_parse_exec): extract_first_word with
// EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE, then specifiers (%% is %), then
// environment expansion at exec time ($$ is $). It accepts only the
// subset SystemdQuote writes and fails on anything else, so a quoting
// change that relies on other rules shows up here.
func systemdUnquote(q string) (string, error) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return "", fmt.Errorf("not one double-quoted word: %s", q)
	}
	in := q[1 : len(q)-1]
	var b strings.Builder
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch {
		case c == '"':
			return "", fmt.Errorf("unescaped quote at %d in %s", i, q)
		case c < 0x20 || c == 0x7f:
			return "", fmt.Errorf("raw control character %#x in %s", c, q)
		case c == '%' || c == '$':
			if i+1 >= len(in) || in[i+1] != c {
				return "", fmt.Errorf("lone %c at %d in %s", c, i, q)
			}
			b.WriteByte(c)
			i++
		case c == '\\':
			if i+1 >= len(in) {
				return "", fmt.Errorf("trailing backslash in %s", q)
			}
			i++
			switch e := in[i]; e {
			case '\\', '"':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'x':
				if i+2 >= len(in) {
					return "", fmt.Errorf("short \\x escape in %s", q)
				}
				n, err := strconv.ParseUint(in[i+1:i+3], 16, 8)
				if err != nil || n == 0 {
					return "", fmt.Errorf("bad \\x escape in %s", q)
				}
				b.WriteByte(byte(n))
				i += 2
			default:
				return "", fmt.Errorf("escape \\%c not written by SystemdQuote in %s", e, q)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func TestSystemdQuoteHostileRoundTrip(t *testing.T) {
	for _, h := range hostile {
		q := SystemdQuote(h)
		if back, err := systemdUnquote(q); err != nil || back != h {
			t.Errorf("%q: quoted %s, read back %q (%v)", h, q, back, err)
		}
		if strings.ContainsAny(q, "\n\r") {
			t.Errorf("%q: quoted form breaks the line: %q", h, q)
		}
	}
}

// TestSystemdQuoteVerify has systemd's own parser read every hostile value
// as arguments of an ExecStart= line: systemd-analyze verify reports bad
// escapes, unknown specifiers and broken quoting.
func TestSystemdQuoteVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		// The test command installs it; a quoting check that silently
		// does not run proves nothing.
		t.Fatal("systemd-analyze not installed: apt-get install systemd (or run .ci/test)")
	}
	var unit bytes.Buffer
	unit.WriteString("[Service]\nType=oneshot\n")
	for _, h := range append(hostile, "%", "%%", "$", "\\", "\x01", ";") {
		fmt.Fprintf(&unit, "ExecStart=/bin/true %s %s\n", SystemdQuote(h), SystemdQuote("x"+h+"x"))
	}
	path := filepath.Join(t.TempDir(), "quote-test.service")
	if err := os.WriteFile(path, unit.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s\nunit:\n%s", err, out, unit.Bytes())
	}
}
