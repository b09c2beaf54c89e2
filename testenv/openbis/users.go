package openbis

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// ParseUsers reads "user:password" pairs separated by commas or newlines,
// the form the -users flag and the users file take. Blank lines and lines
// starting with # are skipped, so a file can carry comments.
func ParseUsers(r io.Reader) (map[string]string, error) {
	users := make(map[string]string)
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		for _, pair := range strings.Split(text, ",") {
			pair = strings.TrimSpace(pair)
			if pair == "" {
				continue
			}
			user, password, ok := strings.Cut(pair, ":")
			if !ok || user == "" {
				return nil, fmt.Errorf("users line %d: %q is not user:password", line, pair)
			}
			// openBIS derives the user from the token's prefix before the
			// timestamp, so a user name must not contain '-' or spaces.
			if strings.ContainsAny(user, "- \t") {
				return nil, fmt.Errorf("users line %d: user %q must not contain '-' or spaces", line, user)
			}
			if _, dup := users[user]; dup {
				return nil, fmt.Errorf("users line %d: user %q given twice", line, user)
			}
			users[user] = password
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	return users, nil
}
