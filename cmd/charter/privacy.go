package main

import (
	"flag"
	"fmt"
	"io"
)

const privacyUsage = `Usage: charter privacy SUBCOMMAND [arguments] [flags]

Subcommands:
  group                                 privacy groups: create, list, show, add, remove, delete
  purge ID                              approve purging a group (an admin of a member organization;
                                        purged when every member approved)
  disclose ID --org AUDITOR --from H    approve granting an auditor organization access from height H
                                        (--revoke: approve revoking it; in effect when every member approved)
  log ID                                a group's auditor grants, disclosures and purge, from the chain's events

Run 'charter privacy SUBCOMMAND --help' for its subcommands.
`

// runPrivacy is charter privacy: the privacy groups of the registry, their
// purge, auditor grants and disclosure log.
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
	case "purge":
		return privacyPurge(args[1:], stdout, stderr)
	case "disclose":
		return privacyDisclose(args[1:], stdout, stderr)
	case "log":
		return privacyLog(args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown subcommand %q; want group, purge, disclose or log", args[0])
}
