package main

import (
	"flag"
	"fmt"
	"io"
)

const privacyUsage = `Usage: charter privacy SUBCOMMAND [arguments] [flags]

Subcommands:
  group   privacy groups: create, list, show, add, remove, delete

Run 'charter privacy SUBCOMMAND --help' for its subcommands.
`

// runPrivacy is charter privacy: the privacy groups of the registry.
func runPrivacy(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, privacyUsage)
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	switch args[0] {
	case "group":
		return runPrivacyGroup(args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown subcommand %q; want group", args[0])
}
