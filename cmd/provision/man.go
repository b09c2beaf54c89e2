package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newManCmd writes a man page for every command into a directory, for the
// Debian package (.ci/package). It is hidden: packagers need it, admins
// read the pages. The pages are dated SOURCE_DATE_EPOCH when it is set,
// in UTC, so two builds of one commit give the same bytes.
func newManCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "__man DIR",
		Short:  "Write the man pages into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			date := time.Now().UTC()
			if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return fmt.Errorf("SOURCE_DATE_EPOCH %q: not a number of seconds", s)
				}
				date = time.Unix(n, 0).UTC()
			}
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			literalBlocks(root)
			header := &doc.GenManHeader{
				Section: "1",
				Date:    &date,
				Source:  "provision " + version,
				Manual:  "provision manual",
			}
			return doc.GenManTree(root, header, args[0])
		},
	}
}

// literalBlocks makes the lines that help texts indent by two spaces (the
// commands in the root's description) literal blocks in the pages: the
// generator reads the texts as markdown, which wants four.
func literalBlocks(c *cobra.Command) {
	c.Long = strings.ReplaceAll(c.Long, "\n  ", "\n    ")
	for _, sub := range c.Commands() {
		literalBlocks(sub)
	}
}
