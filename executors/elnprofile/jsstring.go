package elnprofile

import (
	"fmt"
	"strings"
	"unicode/utf16"
)

// jsString renders s as a double-quoted JavaScript string literal that is
// pure ASCII and inert wherever the file ends up: quotes and backslashes are
// escaped, line terminators (including U+2028/U+2029) and other controls
// become escapes, and <, > and & are escaped so that "</script>" or "<!--"
// cannot close or open anything if the profile is ever inlined into HTML.
// s must be valid UTF-8 (New checks).
func jsString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			switch {
			case r < 0x20 || r == 0x7f || r == '<' || r == '>' || r == '&' || r == '\'':
				fmt.Fprintf(&b, `\u%04x`, r)
			case r > 0x7f && r <= 0xffff:
				fmt.Fprintf(&b, `\u%04x`, r)
			case r > 0xffff:
				hi, lo := utf16.EncodeRune(r)
				fmt.Fprintf(&b, `\u%04x\u%04x`, hi, lo)
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
