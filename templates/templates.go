// Package templates holds the files provision renders onto hosts: the start
// script, the systemd unit, the Dockerfile of an extended image. Each
// template escapes values for its target language through the functions
// here, so no spec value reaches a shell or unit file unquoted.
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"unicode/utf8"
)

//go:embed *.tmpl
var files embed.FS

// Template functions:
//   - sh quotes one POSIX shell word (ShellQuote);
//   - systemd quotes one Exec= argument (SystemdQuote);
//   - comment makes a value safe inside a one-line # comment.
//
// sh and systemd fail on a NUL byte, which neither language can carry.
var parsed = template.Must(template.New("").Funcs(template.FuncMap{
	"sh":      quoteWith(ShellQuote),
	"systemd": quoteWith(SystemdQuote),
	"comment": Comment,
}).ParseFS(files, "*.tmpl"))

// ErrNUL is returned for a value with a NUL byte: no argument can hold one.
var ErrNUL = errors.New("value contains a NUL byte")

func quoteWith(quote func(string) string) func(string) (string, error) {
	return func(s string) (string, error) {
		if strings.IndexByte(s, 0) >= 0 {
			return "", fmt.Errorf("%q: %w", s, ErrNUL)
		}
		return quote(s), nil
	}
}

// Render executes the named template (e.g. "start.sh.tmpl") with data.
func Render(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := parsed.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("render template %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// ShellQuote quotes s as one POSIX shell word: single quotes, with each
// embedded single quote closing the quotes, written as \', and reopening
// them. Nothing inside is expanded.
// A NUL byte cannot be quoted; the template function refuses it.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// SystemdQuote quotes s as one argument in a unit's Exec= lines: double
// quotes with C-style backslash escapes (control characters and bytes that
// are not UTF-8 as \xNN: systemd ignores a line that is not UTF-8 clean),
// % doubled against specifiers and $ doubled against variable expansion.
// It is not for the executable itself, whose prefixes (-@:+!) systemd reads
// after unquoting. A NUL byte cannot be quoted; the template function
// refuses it.
func SystemdQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '"':
			b.WriteString(`\"`)
		case r == '%':
			b.WriteString("%%")
		case r == '$':
			b.WriteString("$$")
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
	return b.String()
}

// Comment makes s safe for the rest of a one-line # comment: control
// characters, which could end the comment and start a command, become '?'.
func Comment(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
