package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// Flag and argument helpers shared by gov, members and usage.

// parseArgs parses flags that may come before, between or after the
// positional arguments, and returns the positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// setUsage makes --help print a command's syntax before its flags.
func setUsage(fs *flag.FlagSet, stderr io.Writer, syntax string) {
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n\nFlags:\n", syntax)
		fs.PrintDefaults()
	}
}

// wantArgs checks the number of positional arguments.
func wantArgs(pos []string, n int, syntax string) error {
	switch {
	case len(pos) < n:
		return fmt.Errorf("missing arguments; usage: %s", syntax)
	case len(pos) > n:
		return fmt.Errorf("unexpected argument %q; usage: %s", pos[n], syntax)
	}
	return nil
}

// listFlag is a repeatable flag; each value may also hold several
// comma separated items.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

// blockArg reads --block: "latest" (or "") or a height; it returns the
// JSON-RPC arguments to append (none for latest).
func blockArg(s string) ([]any, error) {
	switch s = strings.TrimSpace(s); s {
	case "", "latest":
		return nil, nil
	}
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return nil, fmt.Errorf("--block %q: want a block height or latest", s)
	}
	return []any{hexutil.EncodeUint64(n)}, nil
}

func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("proposal id %q: want a positive number", s)
	}
	return id, nil
}

func parseAddr(what, s string) (common.Address, error) {
	if !common.IsHexAddress(s) {
		return common.Address{}, fmt.Errorf("%s %q is not an address: want 0x and 40 hex digits", what, s)
	}
	return common.HexToAddress(s), nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func pct(bps uint64) string { return fmt.Sprintf("%d.%02d%%", bps/100, bps%100) }

// kebab turns an action name (AddOrganization, RotateCA) into the CLI's

func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// sortedKeys returns a map's keys sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
