// Command charter is the whole of Charter: node, CLI and tools. It only
// parses flags and calls the library under internal/.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"
)

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"backup":   {"back up the running node (ledger, private state, keys, config) into a folder on its machine", runBackup},
	"bench":    {"measure throughput and submission-to-finality latency over JSON-RPC", runBench},
	"ca":       {"create an organization's CA; issue, check and show certificates", runCA},
	"contract": {"the contract registry: register, upgrade, list and show contracts, print their ABI documents", runContract},
	"client":   {"the built-in OAuth2 issuer's clients: add, list and revoke (id and secret for bearer tokens)", runClient},
	"dev":      {"run a one-node development chain with JSON-RPC on 127.0.0.1:8545", runDev},
	"events":   {"event streams of final blocks' logs to webhooks, NATS and Kafka: list, create, show, delete, replay, dlq", runEvents},
	"gov":      {"governance: propose, vote, cancel; show and list proposals, the audit trail and the policy", runGov},
	"init":     {"write a network: genesis, organization CAs, node keys, certificates and configs", runInit},
	"join":     {"prepare a new organization's CA, admin identities and node for an existing network", runJoin},
	"keys":     {"node-held signing keys of the organization's applications: add, list, rotate", runKeys},
	"sql":      {"run one read-only SQL statement over the node's index of final blocks", runSQL},
	"members":  {"the registry: organizations, nodes, accounts and validators; set an account's roles", runMembers},
	"node":     {"run one node of a network from its home folder", runNode},
	"privacy":  {"privacy groups and private transactions: groups, send, call, receipt, purge, disclosure", runPrivacy},
	"restore":  {"restore a stopped node's home from a backup (charter backup), at the backup's height", runRestore},
	"snapshot": {"snapshots of the state at a height: export from a node, verify, import into a new node", runSnapshot},
	"send":     {"send ether from a key file's account (e.g. gas money for a new organization's admin)", runSend},
	"testnet":  {"run a local network: every node its own process (init first if needed)", runTestnet},
	"usage":    {"transactions, gas and state written per organization over UTC days", runUsage},
	"version":  {"print the version", runVersion},
}

// errUsage marks errors whose usage text has been printed already.
var errUsage = errors.New("usage")

func main() {
	// A node allocates many short-lived objects per transaction; collecting
	// at 4x the live heap instead of 2x gives 10-18% more throughput in
	// `charter bench` (BENCHMARKS.md) for a heap of a few hundred MiB.
	// GOGC in the environment still decides when set.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	// GOGC=400 lets the heap grow to five times what is live: a soft
	// limit (memoryLimit) makes the collector work harder before the
	// process outgrows the machine. GOMEMLIMIT in the environment still
	// decides when set.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit(machineMemory()))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "charter: unknown command %q; run 'charter help' for the list\n", args[0])
		return 2
	}
	if err := cmd.run(args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if !errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "charter %s: %s\n", args[0], oneLine(err))
		}
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Charter, a permissioned ledger for consortia.\n\nUsage: charter COMMAND [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-10s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w, "\nRun 'charter COMMAND --help' for a command's flags.")
}

// oneLine keeps an error on one line, as every failing command prints.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// newFlagSet returns a flag set that reports errors through run.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("charter "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses flags; a bad flag has already been reported by the set.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
