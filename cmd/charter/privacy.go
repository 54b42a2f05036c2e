package main

import (
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
  send --group ID --key FILE ...        sign and send a private transaction (deploy or call a contract) and
                                        print its private receipt
  call --group ID --to ADDR --call SIG  call a private contract on the group's private state (priv_call)
  receipt MARKER                        the private receipt of a marker transaction

Run 'charter privacy SUBCOMMAND --help' for its subcommands.
`

// runPrivacy is charter privacy: the privacy groups of the registry, their
// purge, auditor grants and disclosure log.
func runPrivacy(args []string, stdout, stderr io.Writer) error {
	return runSubcommand(privacyUsage, args, stdout, stderr,
		subcommand{"group", runPrivacyGroup}, subcommand{"purge", privacyPurge}, subcommand{"disclose", privacyDisclose}, subcommand{"log", privacyLog}, subcommand{"send", privacySend}, subcommand{"call", privacyCall}, subcommand{"receipt", privacyReceipt})
}
