package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
)

const govUsage = `Usage: charter gov SUBCOMMAND [arguments] [flags]

Subcommands:
  propose ACTION   propose a governance action for your organization (run 'charter gov propose --help' for the actions)
  vote ID yes|no   vote on a proposal for your organization
  cancel ID        withdraw an open proposal of your organization
  show ID          a proposal: action, arguments, status, tally and votes
  list             proposals, newest first (--status to filter)
  history          the governance audit trail
  policy           the voting rule of each class of proposals

Run 'charter gov SUBCOMMAND --help' for its flags.
`

func runGov(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, govUsage)
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	switch args[0] {
	case "propose":
		return govPropose(args[1:], stdout, stderr)
	case "vote":
		return govVote(args[1:], stdout, stderr)
	case "cancel":
		return govCancel(args[1:], stdout, stderr)
	case "show":
		return govShow(args[1:], stdout, stderr)
	case "list":
		return govList(args[1:], stdout, stderr)
	case "history":
		return govHistory(args[1:], stdout, stderr)
	case "policy":
		return govPolicy(args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown subcommand %q; want propose, vote, cancel, show, list, history or policy", args[0])
}

// ---- shared by gov, members and usage ----

const defaultRPC = "http://127.0.0.1:8545"

// readTimeout bounds one read-only command against the node.
const readTimeout = 30 * time.Second

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

// client is a connection to a node's JSON-RPC.
type client struct {
	url string
	rc  *gethrpc.Client
	ec  *ethclient.Client
}

func dial(url string) (*client, error) {
	if strings.TrimSpace(url) == "" {
		return nil, errors.New("--rpc is empty; give the node's JSON-RPC URL, e.g. " + defaultRPC)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	rc, err := gethrpc.DialContext(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("--rpc %s: %v", url, err)
	}
	return &client{url: url, rc: rc, ec: ethclient.NewClient(rc)}, nil
}

func (c *client) Close() { c.rc.Close() }

// wrap names the node in transport errors; errors the node answered
// (JSON-RPC errors, reverts) are returned as they are.
func (c *client) wrap(err error) error {
	if err == nil {
		return nil
	}
	var rerr gethrpc.Error
	if errors.As(err, &rerr) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer from %s within %s", c.url, readTimeout)
	}
	return fmt.Errorf("no answer from %s: %v (is a node running there? start one with 'charter dev' or give --rpc)", c.url, err)
}

// call makes a JSON-RPC call and returns the raw result.
func (c *client) call(method string, args ...any) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	var raw json.RawMessage
	if err := c.rc.CallContext(ctx, &raw, method, args...); err != nil {
		return nil, c.wrap(err)
	}
	return raw, nil
}

// callInto makes a JSON-RPC call and decodes the result into out (large
// numbers in maps kept exact).
// query dials url, calls method into out and hangs up.
func query(url string, out any, method string, args ...any) (json.RawMessage, error) {
	c, err := dial(url)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.callInto(out, method, args...)
}

func (c *client) callInto(out any, method string, args ...any) (json.RawMessage, error) {
	raw, err := c.call(method, args...)
	if err != nil {
		return nil, err
	}
	if out != nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			return nil, fmt.Errorf("%s: unexpected answer from %s: %v", method, c.url, err)
		}
	}
	return raw, nil
}

// printJSON prints a JSON value indented.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// printValue prints v as indented JSON.
func printValue(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return printJSON(w, raw)
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

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
// form (add-organization, rotate-ca).
func kebab(camel string) string {
	var b strings.Builder
	prev := rune(0)
	for _, r := range camel {
		if unicode.IsUpper(r) {
			if unicode.IsLower(prev) {
				b.WriteByte('-')
			}
			b.WriteRune(unicode.ToLower(r))
		} else {
			b.WriteRune(r)
		}
		prev = r
	}
	return b.String()
}

// allActions lists the actions system knows, in number order.
func allActions() []system.Action {
	var out []system.Action
	for a := system.Action(1); system.ActionArgs(a) != nil; a++ {
		out = append(out, a)
	}
	return out
}

func actionNames() []string {
	var names []string
	for _, a := range allActions() {
		names = append(names, kebab(a.String()))
	}
	return names
}

// actionByName reads an action in kebab case.
func actionByName(name string) (system.Action, error) {
	for _, a := range allActions() {
		if kebab(a.String()) == strings.ToLower(name) {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown action %q; want one of %s", name, strings.Join(actionNames(), ", "))
}

// actionLabel reads an action as the charter_ namespace names it
// (AddOrganization) and gives the CLI's name.
func actionLabel(name string) string {
	if a, err := system.ParseAction(name); err == nil {
		return kebab(a.String())
	}
	return name
}

// ---- sending transactions ----

type sendFlags struct {
	rpc, key, pwFile *string
	json, noWait     *bool
	timeout          *time.Duration
}

func addSendFlags(fs *flag.FlagSet) *sendFlags {
	return &sendFlags{
		rpc:     fs.String("rpc", defaultRPC, "the node's JSON-RPC URL"),
		key:     fs.String("key", "", "key file of the sending admin account (secp256k1, PEM as node keys, or 64 hex digits)"),
		pwFile:  fs.String("password-file", "", "password of the key file, on this file's first line"),
		json:    fs.Bool("json", false, "print the outcome as JSON"),
		noWait:  fs.Bool("no-wait", false, "send and print the transaction hash without waiting for its receipt"),
		timeout: fs.Duration("timeout", 60*time.Second, "how long to wait for the receipt"),
	}
}

// check validates the sending flags before anything is sent.
func (sf *sendFlags) check() error {
	if *sf.key == "" {
		return errors.New("--key is required: the key file of an admin account of your organization")
	}
	if *sf.timeout <= 0 {
		return fmt.Errorf("--timeout %s must be positive", *sf.timeout)
	}
	return nil
}

func (sf *sendFlags) loadKey() (*ecdsa.PrivateKey, error) {
	pw, err := readPassword("password-file", *sf.pwFile)
	if err != nil {
		return nil, err
	}
	key, err := identity.LoadNodeKey(*sf.key, pw)
	if err != nil {
		if errors.Is(err, identity.ErrPasswordRequired) {
			return nil, fmt.Errorf("--key %s: %w (give --password-file)", *sf.key, err)
		}
		return nil, fmt.Errorf("--key: %w", err)
	}
	return key, nil
}

// sentTx is a transaction sent, with its receipt unless --no-wait.
type sentTx struct {
	tx      *types.Transaction
	from    common.Address
	receipt *types.Receipt
}

// send signs a call of a system contract with --key and sends it. It
// estimates gas first: a call the contract refuses is reported with the
// contract's reason and nothing is sent. Unless --no-wait it waits for
// the receipt and reports a failed transaction with the reason a replay
// gives.
func (sf *sendFlags) send(c *client, to common.Address, data []byte) (*sentTx, error) {
	return sf.sendValue(c, to, nil, data)
}

// dialAndSend dials --rpc, sends value wei (nil: none) and data to `to`
// as send does, and hangs up.
func (sf *sendFlags) dialAndSend(to common.Address, value *big.Int, data []byte) (*sentTx, error) {
	c, err := dial(*sf.rpc)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return sf.sendValue(c, to, value, data)
}

// sendValue is send with value wei attached (nil: none).
func (sf *sendFlags) sendValue(c *client, to common.Address, value *big.Int, data []byte) (*sentTx, error) {
	key, err := sf.loadKey()
	if err != nil {
		return nil, err
	}
	from := crypto.PubkeyToAddress(key.PublicKey)
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	chainID, err := c.ec.ChainID(ctx)
	if err != nil {
		return nil, c.wrap(err)
	}
	msg := ethereum.CallMsg{From: from, To: &to, Data: data, Value: value}
	gas, err := c.ec.EstimateGas(ctx, msg)
	if err != nil {
		var rerr gethrpc.Error
		if !errors.As(err, &rerr) {
			return nil, c.wrap(err)
		}
		// The node refused the call: a revert carries the contract's reason.
		return nil, fmt.Errorf("%v (account %s; nothing was sent)", err, from.Hex())
	}
	nonce, err := c.ec.PendingNonceAt(ctx, from)
	if err != nil {
		return nil, c.wrap(err)
	}
	tip, err := c.ec.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, c.wrap(err)
	}
	head, err := c.ec.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, c.wrap(err)
	}
	feeCap := new(big.Int).Set(tip)
	if head.BaseFee != nil {
		feeCap.Add(feeCap, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
	}
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID: chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: gas, To: &to, Data: data, Value: value,
	})
	if err != nil {
		return nil, err
	}
	if err := c.ec.SendTransaction(ctx, tx); err != nil {
		return nil, fmt.Errorf("send: %w", c.wrap(err))
	}
	out := &sentTx{tx: tx, from: from}
	if *sf.noWait {
		return out, nil
	}
	if out.receipt, err = c.waitReceipt(tx.Hash(), *sf.timeout); err != nil {
		return nil, err
	}
	if out.receipt.Status == types.ReceiptStatusFailed {
		msg.Gas = tx.Gas()
		rctx, rcancel := context.WithTimeout(context.Background(), readTimeout)
		defer rcancel()
		if _, err := c.ec.CallContract(rctx, msg, out.receipt.BlockNumber); err != nil {
			return nil, fmt.Errorf("transaction %s failed in block %s: %v", tx.Hash().Hex(), out.receipt.BlockNumber, err)
		}
		return nil, fmt.Errorf("transaction %s failed in block %s (gas used %d of %d); replaying it gives no reason",
			tx.Hash().Hex(), out.receipt.BlockNumber, out.receipt.GasUsed, tx.Gas())
	}
	return out, nil
}

// waitReceipt polls for a transaction's receipt until timeout.
func (c *client) waitReceipt(hash common.Hash, timeout time.Duration) (*types.Receipt, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		r, err := c.ec.TransactionReceipt(ctx, hash)
		if err == nil {
			return r, nil
		}
		if ctx.Err() != nil {
			break
		}
		if !errors.Is(err, ethereum.NotFound) {
			return nil, fmt.Errorf("receipt of %s: %v", hash.Hex(), c.wrap(err))
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	return nil, fmt.Errorf("transaction %s was sent but is not in a block after %s; check it later with eth_getTransactionReceipt or wait longer with --timeout",
		hash.Hex(), timeout)
}

// printNoWait reports a transaction sent with --no-wait.
func printNoWait(w io.Writer, sf *sendFlags, s *sentTx) error {
	if *sf.json {
		return printValue(w, map[string]any{"tx": s.tx.Hash()})
	}
	_, err := fmt.Fprintf(w, "sent transaction %s (not waiting for it)\n", s.tx.Hash().Hex())
	return err
}

// eventLogs returns the logs of a receipt that are the event id of the
// contract at addr.
func eventLogs(r *types.Receipt, addr common.Address, id common.Hash) []*types.Log {
	var out []*types.Log
	for _, l := range r.Logs {
		if l.Address == addr && len(l.Topics) > 0 && l.Topics[0] == id {
			out = append(out, l)
		}
	}
	return out
}

// govLogs returns a receipt's logs of the governance event name.
func govLogs(r *types.Receipt, name string) []*types.Log {
	return eventLogs(r, system.GovernanceAddress, system.Governance.Events[name].ID)
}

func topicUint(h common.Hash) uint64 { return new(big.Int).SetBytes(h[:]).Uint64() }

// ---- propose ----

// proposeCtx is what an action's flags need to build its arguments.
type proposeCtx struct {
	fs   *flag.FlagSet
	conn func() (*client, error)
}

func (p *proposeCtx) given(name string) bool {
	found := false
	p.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// need reports the first of the named flags that was not given.
func (p *proposeCtx) need(names ...string) error {
	for _, n := range names {
		if !p.given(n) {
			return fmt.Errorf("--%s is required for this action", n)
		}
	}
	return nil
}

// actionSpec defines an action's flags; build returns its arguments in
// ABI order.
type actionSpec struct {
	syntax string
	flags  func(fs *flag.FlagSet) (build func(p *proposeCtx) ([]any, error))
}

func addrFlag(fs *flag.FlagSet, name, usage string) *string { return fs.String(name, "", usage) }

func readRoots(flagName, path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("--%s is required: a file of PEM root certificates (an organization's ca.crt)", flagName)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--%s: %w", flagName, err)
	}
	if b, _ := pem.Decode(data); b == nil || b.Type != "CERTIFICATE" {
		return "", fmt.Errorf("--%s %s: no PEM certificate in it (want the organization's ca.crt)", flagName, path)
	}
	return string(data), nil
}

func parseRoleList(flagName, s string, allowNone bool) (system.Role, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		if allowNone {
			return 0, nil
		}
		return 0, fmt.Errorf("--%s is empty: give role names, comma separated (read, write, deploy, admin, auditor)", flagName)
	}
	r, err := system.ParseRoles(strings.Split(s, ","))
	if err != nil {
		return 0, fmt.Errorf("--%s: %v", flagName, err)
	}
	return r, nil
}

func parseFP(flagName, s string) ([32]byte, error) {
	f, err := identity.ParseFingerprint(s)
	if err != nil {
		return [32]byte{}, fmt.Errorf("--%s %q: want 64 hex digits, optionally 0x (a certificate's SHA-256 as 'charter ca show' prints it)", flagName, s)
	}
	return f, nil
}

func parseStatus(s string) (uint8, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "active":
		return uint8(system.StatusActive), nil
	case "suspended":
		return uint8(system.StatusSuspended), nil
	}
	return 0, fmt.Errorf("--status %q: want active or suspended (an organization leaves with remove-organization)", s)
}

func parseTierFlag(s string) (uint8, error) {
	if strings.TrimSpace(s) == "" {
		return 0, errors.New("--tier is empty: want read, write or validate")
	}
	t, err := system.ParseTier(s)
	if err != nil {
		return 0, fmt.Errorf("--tier: %v", err)
	}
	return uint8(t), nil
}

func checkWeightFlag(w uint64) error {
	if w == 0 || w > 1_000_000 {
		return fmt.Errorf("--weight %d is outside [1, 1000000]", w)
	}
	return nil
}

func classByName(s string) (system.Class, error) {
	var names []string
	for c := system.Class(0); c < system.NumClasses; c++ {
		if strings.EqualFold(strings.TrimSpace(s), c.String()) {
			return c, nil
		}
		names = append(names, c.String())
	}
	return 0, fmt.Errorf("--class %q: want one of %s", s, strings.Join(names, ", "))
}

var paramNames = []string{system.ParamGasLimit, system.ParamTxGasLimit, system.ParamMaxTxBytes, system.ParamMinGasPrice, system.ParamEpochLength}

var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// proposeSpecs holds every action's flags, keyed by action.
var proposeSpecs = map[system.Action]actionSpec{
	system.ActAddOrganization: {"--name NAME --roots FILE.pem [--tier read|write|validate] [--weight N] --admin 0xADDR... [--node 0xID --fingerprint HEX]... [--validator 0xID]...",
		func(fs *flag.FlagSet) func(*proposeCtx) ([]any, error) {
			name := fs.String("name", "", "organization name")
			roots := fs.String("roots", "", "file of the organization's PEM root certificates (its ca.crt)")
			tier := fs.String("tier", "validate", "read, write or validate")
			weight := fs.Uint64("weight", 1, "voting weight, 1 to 1000000")
			var admins, nodes, fps, vals listFlag
			fs.Var(&admins, "admin", "admin account address (repeatable; at least one)")
			fs.Var(&nodes, "node", "node id: the address of a node key (repeatable)")
			fs.Var(&fps, "fingerprint", "SHA-256 of the node's TLS certificate, one per --node in the same order (64 hex digits; all zeros: any certificate of the organization)")
			fs.Var(&vals, "validator", "node id of a --node that validates (repeatable)")
			return func(p *proposeCtx) ([]any, error) {
				if err := p.need("name"); err != nil {
					return nil, err
				}
				rootsPEM, err := readRoots("roots", *roots)
				if err != nil {
					return nil, err
				}
				t, err := parseTierFlag(*tier)
				if err != nil {
					return nil, err
				}
				if err := checkWeightFlag(*weight); err != nil {
					return nil, err
				}
				if len(admins) == 0 {
					return nil, errors.New("--admin is required: at least one admin account of the new organization")
				}
				adminAddrs := []common.Address{}
				for _, s := range admins {
					a, err := parseAddr("--admin", s)
					if err != nil {
						return nil, err
					}
					adminAddrs = append(adminAddrs, a)
				}
				if len(fps) != len(nodes) {
					return nil, fmt.Errorf("%d --node but %d --fingerprint: give one fingerprint per node, in the same order", len(nodes), len(fps))
				}
				nodeIDs, fpList := []common.Address{}, [][32]byte{}
				for i, s := range nodes {
					id, err := parseAddr("--node", s)
					if err != nil {
						return nil, err
					}
					if slices.Contains(nodeIDs, id) {
						return nil, fmt.Errorf("--node %s is given twice", id.Hex())
					}
					fp, err := parseFP("fingerprint", fps[i])
					if err != nil {
						return nil, err
					}
					nodeIDs, fpList = append(nodeIDs, id), append(fpList, fp)
				}
				valIDs := []common.Address{}
				for _, s := range vals {
					id, err := parseAddr("--validator", s)
					if err != nil {
						return nil, err
					}
					if !slices.Contains(nodeIDs, id) {
						return nil, fmt.Errorf("--validator %s is not one of the --node ids", id.Hex())
					}
					valIDs = append(valIDs, id)
				}
				return []any{*name, rootsPEM, t, *weight, adminAddrs, nodeIDs, fpList, valIDs}, nil
			}
		}},
	system.ActRemoveOrganization: {"--name NAME", func(fs *flag.FlagSet) func(*proposeCtx) ([]any, error) {
		name := fs.String("name", "", "organization name")
		return func(p *proposeCtx) ([]any, error) {
			if err := p.need("name"); err != nil {
				return nil, err
			}
			return []any{*name}, nil
		}
	}},
	system.ActSetOrganization: {"--name NAME [--tier read|write|validate] [--weight N] [--status active|suspended] (unset ones keep their current value)",
		func(fs *flag.FlagSet) func(*proposeCtx) ([]any, error) {
			name := fs.String("name", "", "organization name")
			tier := fs.String("tier", "", "read, write or validate (default: unchanged)")
			weight := fs.Uint64("weight", 0, "voting weight, 1 to 1000000 (default: unchanged)")
			status := fs.String("status", "", "active or suspended (default: unchanged)")
			return func(p *proposeCtx) ([]any, error) {
				if err := p.need("name"); err != nil {
					return nil, err
				}
				if !p.given("tier") && !p.given("weight") && !p.given("status") {
					return nil, errors.New("give at least one of --tier, --weight, --status")
				}
				var t, st uint8
				var err error
				if p.given("tier") {
					if t, err = parseTierFlag(*tier); err != nil {
						return nil, err
					}
				}
				if p.given("weight") {
					if err := checkWeightFlag(*weight); err != nil {
						return nil, err
					}
				}
				if p.given("status") {
					if st, err = parseStatus(*status); err != nil {
						return nil, err
					}
				}
				w := *weight
				if !p.given("tier") || !p.given("weight") || !p.given("status") {
					// Keep what is not given: read it from the registry.
					c, err := p.conn()
					if err != nil {
						return nil, err
					}
					var m rpc.Members
					if _, err := c.callInto(&m, "charter_members"); err != nil {
						return nil, err
					}
					i := slices.IndexFunc(m.Organizations, func(o rpc.MemberOrg) bool { return o.Name == *name })
					if i < 0 {
						return nil, fmt.Errorf("--name %q: no such organization in the registry", *name)
					}
					o := m.Organizations[i]
					if !p.given("tier") {
						if t, err = parseTierFlag(o.Tier); err != nil {
							return nil, err
						}
					}
					if !p.given("weight") {
						w = o.Weight
					}
					if !p.given("status") {
						if st, err = parseStatus(o.Status); err != nil {
							return nil, fmt.Errorf("organization %s is %s; give --status", *name, o.Status)
						}
					}
				}
				return []any{*name, t, w, st}, nil
			}
		}},
	system.ActAddNode: {"--org NAME --id 0xID [--fingerprint HEX] [--validator]", func(fs *flag.FlagSet) func(*proposeCtx) ([]any, error) {
		org := fs.String("org", "", "organization of the node")
		id := addrFlag(fs, "id", "node id: the address of the node key")
		fp := fs.String("fingerprint", "", "SHA-256 of the node's TLS certificate, 64 hex digits (default: any certificate of the organization)")
		val := fs.Bool("validator", false, "the node validates")
		return func(p *proposeCtx) ([]any, error) {
			if err := p.need("org", "id"); err != nil {
				return nil, err
			}
			a, err := parseAddr("--id", *id)
			if err != nil {
				return nil, err
			}
			var f [32]byte
			if p.given("fingerprint") {
				if f, err = parseFP("fingerprint", *fp); err != nil {
					return nil, err
				}
			}
			return []any{*org, a, f, *val}, nil
		}
	}},
	system.ActRemoveNode:      {"--id 0xID", idOnly("node id to remove; its certificate is revoked")},
	system.ActAddValidator:    {"--id 0xID", idOnly("node id of a registered node to make a validator")},
	system.ActRemoveValidator: {"--id 0xID", idOnly("node id of the validator to remove")},
	system.ActGrantRoles: {"--account 0xADDR --org NAME --roles ROLE[,ROLE...]", func(fs *flag.FlagSet) func(*proposeCtx) ([]any, error) {
		acct := addrFlag(fs, "account", "account address")
		org := fs.String("org", "", "organization the account belongs to (or joins)")
		roles := fs.String("roles", "", "roles to add, comma separated: read, write, deploy, admin, auditor")
		return func(p *proposeCtx) ([]any, error) {
			if err := p.need("account", "org", "roles"); err != nil {
				return nil, err
			}
			a, err := parseAddr("--account", *acct)
			if err != nil {
				return nil, err
			}
			r, err := parseRoleList("roles", *roles, false)
			if err != nil {
				return nil, err
			}
			return []any{a, *org, uint32(r)}, nil
		}
	}},
	system.ActRevokeRoles: {"--account 0xADDR --roles ROLE[,ROLE...]", func(fs *flag.FlagSet) func(*proposeCtx) ([]any, error) {
		acct := addrFlag(fs, "account", "account address")
		roles := fs.String("roles", "", "roles to remove, comma separated: read, write, deploy, admin, auditor")
		return func(p *proposeCtx) ([]any, error) {
			if err := p.need("account", "roles"); err != nil {
				return nil, err
			}
			a, err := parseAddr("--account", *acct)
			if err != nil {
				return nil, err
			}
			r, err := parseRoleList("roles", *roles, false)
			if err != nil {
				return nil, err
			}
			return []any{a, uint32(r)}, nil
		}
	}},
	system.ActRevokeCertificate: {"--fingerprint HEX", func(fs *flag.FlagSet) func(*proposeCtx) ([]any, error) {
		fp := fs.String("fingerprint", "", "SHA-256 of the certificate to revoke, 64 hex digits")
		return func(p *proposeCtx) ([]any, error) {
			if err := p.need("fingerprint"); err != nil {
				return nil, err
			}
			f, err := parseFP("fingerprint", *fp)
			if err != nil {
				return nil, err
			}
			return []any{f}, nil
		}
	}},
	system.ActRotateCA: {"--org NAME --roots FILE.pem", func(fs *flag.FlagSet) func(*proposeCtx) ([]any, error) {
		org := fs.String("org", "", "organization whose roots change")
		roots := fs.String("roots", "", "file of the organization's new PEM root certificates")
		return func(p *proposeCtx) ([]any, error) {
			if err := p.need("org"); err != nil {
				return nil, err
			}
			text, err := readRoots("roots", *roots)
			if err != nil {
				return nil, err
			}
			return []any{*org, text}, nil
		}
	}},
	system.ActFreeze:   {"--target 0xADDR", targetOnly("account or contract to freeze")},
	system.ActUnfreeze: {"--target 0xADDR", targetOnly("account or contract to unfreeze")},
	system.ActSetParameter: {"--name " + strings.Join(paramNames, "|") + " --value N", func(fs *flag.FlagSet) func(*proposeCtx) ([]any, error) {
		name := fs.String("name", "", "parameter: "+strings.Join(paramNames, ", "))
		value := fs.String("value", "", "new value (decimal, or hex with 0x)")
		return func(p *proposeCtx) ([]any, error) {
			if err := p.need("name", "value"); err != nil {
				return nil, err
			}
			if !slices.Contains(paramNames, *name) {
				return nil, fmt.Errorf("--name %q: unknown parameter (want %s)", *name, strings.Join(paramNames, ", "))
			}
			v, ok := new(big.Int).SetString(strings.TrimSpace(*value), 0)
			if !ok || v.Sign() < 0 || v.Cmp(maxUint256) > 0 {
				return nil, fmt.Errorf("--value %q: want a non-negative whole number", *value)
			}
			return []any{*name, v}, nil
		}
	}},
	system.ActScheduleUpgrade: {"--name NAME --height H", func(fs *flag.FlagSet) func(*proposeCtx) ([]any, error) {
		name := fs.String("name", "", "upgrade name")
		height := fs.Uint64("height", 0, "block height at which it takes effect")
		return func(p *proposeCtx) ([]any, error) {
			if err := p.need("name", "height"); err != nil {
				return nil, err
			}
			if strings.TrimSpace(*name) == "" {
				return nil, errors.New("--name is empty")
			}
			if *height == 0 {
				return nil, errors.New("--height must be positive")
			}
			return []any{*name, *height}, nil
		}
	}},
	system.ActSetRule: {"--class CLASS [--threshold BPS] [--quorum BPS] [--expiry BLOCKS] [--timelock BLOCKS] [--min-approvals N] (unset ones keep their current value)",
		func(fs *flag.FlagSet) func(*proposeCtx) ([]any, error) {
			var names []string
			for c := system.Class(0); c < system.NumClasses; c++ {
				names = append(names, c.String())
			}
			class := fs.String("class", "", "class of proposals: "+strings.Join(names, ", "))
			threshold := fs.Uint64("threshold", 0, "yes weight needed to pass, in basis points of the total weight (1 to 10000; default: unchanged)")
			quorum := fs.Uint64("quorum", 0, "weight that must vote, in basis points (0 to 10000; default: unchanged)")
			expiry := fs.Uint64("expiry", 0, "blocks an open proposal may be voted (default: unchanged)")
			timelock := fs.Uint64("timelock", 0, "blocks between passing and execution, at least 1 (default: unchanged)")
			minApprovals := fs.Uint64("min-approvals", 0, "distinct organizations that must vote yes (default: unchanged)")
			return func(p *proposeCtx) ([]any, error) {
				if err := p.need("class"); err != nil {
					return nil, err
				}
				c, err := classByName(*class)
				if err != nil {
					return nil, err
				}
				fields := []string{"threshold", "quorum", "expiry", "timelock", "min-approvals"}
				vals := []*uint64{threshold, quorum, expiry, timelock, minApprovals}
				givenAll, givenAny := true, false
				for _, f := range fields {
					givenAll = givenAll && p.given(f)
					givenAny = givenAny || p.given(f)
				}
				if !givenAny {
					return nil, errors.New("give at least one of --threshold, --quorum, --expiry, --timelock, --min-approvals")
				}
				if p.given("threshold") && (*threshold == 0 || *threshold > 10000) {
					return nil, fmt.Errorf("--threshold %d is outside [1, 10000] basis points", *threshold)
				}
				if p.given("quorum") && *quorum > 10000 {
					return nil, fmt.Errorf("--quorum %d is above 10000 basis points", *quorum)
				}
				if p.given("timelock") && *timelock == 0 {
					return nil, errors.New("--timelock must be at least 1 block")
				}
				if p.given("expiry") && *expiry == 0 {
					return nil, errors.New("--expiry must be at least 1 block")
				}
				if !givenAll {
					cl, err := p.conn()
					if err != nil {
						return nil, err
					}
					var pol rpc.PolicyInfo
					if _, err := cl.callInto(&pol, "charter_policy"); err != nil {
						return nil, err
					}
					cur, ok := pol.Rules[c.String()]
					if !ok {
						return nil, fmt.Errorf("the node's policy has no rule for class %s", c)
					}
					curVals := []uint64{cur.Threshold, cur.Quorum, cur.ExpiryBlocks, cur.Timelock, cur.MinApprovals}
					for i, f := range fields {
						if !p.given(f) {
							*vals[i] = curVals[i]
						}
					}
				}
				return []any{uint8(c), *threshold, *quorum, *expiry, *timelock, *minApprovals}, nil
			}
		}},
	system.ActSetDefaultRoles: {"--roles ROLE[,ROLE...]|none", func(fs *flag.FlagSet) func(*proposeCtx) ([]any, error) {
		roles := fs.String("roles", "", "roles of accounts the registry does not list, comma separated (read, write, deploy, auditor), or none")
		return func(p *proposeCtx) ([]any, error) {
			if err := p.need("roles"); err != nil {
				return nil, err
			}
			r, err := parseRoleList("roles", *roles, true)
			if err != nil {
				return nil, err
			}
			return []any{uint32(r)}, nil
		}
	}},
}

func idOnly(usage string) func(fs *flag.FlagSet) func(*proposeCtx) ([]any, error) {
	return func(fs *flag.FlagSet) func(*proposeCtx) ([]any, error) {
		id := addrFlag(fs, "id", usage)
		return func(p *proposeCtx) ([]any, error) {
			if err := p.need("id"); err != nil {
				return nil, err
			}
			a, err := parseAddr("--id", *id)
			if err != nil {
				return nil, err
			}
			return []any{a}, nil
		}
	}
}

func targetOnly(usage string) func(fs *flag.FlagSet) func(*proposeCtx) ([]any, error) {
	return func(fs *flag.FlagSet) func(*proposeCtx) ([]any, error) {
		target := addrFlag(fs, "target", usage)
		return func(p *proposeCtx) ([]any, error) {
			if err := p.need("target"); err != nil {
				return nil, err
			}
			a, err := parseAddr("--target", *target)
			if err != nil {
				return nil, err
			}
			return []any{a}, nil
		}
	}
}

const proposeSyntax = "charter gov propose ACTION [action flags] --memo TEXT --key FILE [--rpc URL] [--password-file F] [--json] [--no-wait] [--timeout D]"

func proposeHelp(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\nActions and their flags:\n", proposeSyntax)
	tw := newTable(w)
	for _, a := range allActions() {
		fmt.Fprintf(tw, "  %s\t%s\n", kebab(a.String()), proposeSpecs[a].syntax)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nRun 'charter gov propose ACTION --help' for an action's flags.")
}

func govPropose(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		proposeHelp(stderr)
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	if strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("give the action first: %s; actions: %s", proposeSyntax, strings.Join(actionNames(), ", "))
	}
	action, err := actionByName(args[0])
	if err != nil {
		return err
	}
	spec, ok := proposeSpecs[action]
	if !ok {
		return fmt.Errorf("action %s has no flags in this CLI", args[0])
	}
	name := kebab(action.String())
	fs := newFlagSet("gov propose "+name, stderr)
	build := spec.flags(fs)
	memo := fs.String("memo", "", "why: kept with the proposal and in the audit trail (at most 1024 bytes)")
	sf := addSendFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: charter gov propose %s %s --memo TEXT --key FILE [flags]\n\nFlags:\n", name, spec.syntax)
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q; usage: charter gov propose %s %s --memo TEXT --key FILE", pos[0], name, spec.syntax)
	}
	var c *client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	conn := func() (*client, error) {
		if c == nil {
			var err error
			if c, err = dial(*sf.rpc); err != nil {
				return nil, err
			}
		}
		return c, nil
	}
	vals, err := build(&proposeCtx{fs: fs, conn: conn})
	if err != nil {
		return err
	}
	encoded, err := system.EncodeArgs(action, vals...)
	if err != nil {
		return fmt.Errorf("encode %s arguments: %v", name, err)
	}
	if strings.TrimSpace(*memo) == "" {
		return errors.New("--memo is required: say why; it is kept with the proposal")
	}
	if len(*memo) > 1024 {
		return fmt.Errorf("--memo of %d bytes; at most 1024", len(*memo))
	}
	if err := sf.check(); err != nil {
		return err
	}
	data, err := system.Governance.Pack("propose", uint8(action), encoded, *memo)
	if err != nil {
		return err
	}
	if _, err := conn(); err != nil {
		return err
	}
	s, err := sf.send(c, system.GovernanceAddress, data)
	if err != nil {
		return err
	}
	if s.receipt == nil {
		return printNoWait(stdout, sf, s)
	}
	logs := govLogs(s.receipt, "ProposalCreated")
	if len(logs) == 0 || len(logs[0].Topics) < 2 {
		return fmt.Errorf("transaction %s succeeded in block %s but made no ProposalCreated event", s.tx.Hash().Hex(), s.receipt.BlockNumber)
	}
	fields := map[string]any{}
	if err := system.Governance.UnpackIntoMap(fields, "ProposalCreated", logs[0].Data); err != nil {
		return fmt.Errorf("ProposalCreated event: %v", err)
	}
	id := topicUint(logs[0].Topics[1])
	org, _ := fields["org"].(string)
	expires, _ := fields["expires"].(uint64)
	if *sf.json {
		return printValue(stdout, map[string]any{"tx": s.tx.Hash(), "block": s.receipt.BlockNumber.Uint64(), "proposal": id,
			"action": name, "org": org, "proposer": s.from, "expires": expires})
	}
	_, err = fmt.Fprintf(stdout, "proposal %d: %s by %s, expires at height %d\n", id, name, org, expires)
	return err
}

// ---- vote, cancel ----

func govVote(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter gov vote ID yes|no --key FILE [--rpc URL] [--json] [--no-wait]"
	fs := newFlagSet("gov vote", stderr)
	sf := addSendFlags(fs)
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 2, syntax); err != nil {
		return err
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	var support bool
	switch strings.ToLower(pos[1]) {
	case "yes":
		support = true
	case "no":
	default:
		return fmt.Errorf("vote %q: want yes or no", pos[1])
	}
	if err := sf.check(); err != nil {
		return err
	}
	data, err := system.Governance.Pack("vote", id, support)
	if err != nil {
		return err
	}
	s, err := sf.dialAndSend(system.GovernanceAddress, nil, data)
	if err != nil {
		return err
	}
	if s.receipt == nil {
		return printNoWait(stdout, sf, s)
	}
	g := &system.Governance
	out := map[string]any{"tx": s.tx.Hash(), "block": s.receipt.BlockNumber.Uint64(), "proposal": id, "support": support}
	var org string
	var weight uint64
	if logs := govLogs(s.receipt, "VoteCast"); len(logs) > 0 {
		fields := map[string]any{}
		if err := g.UnpackIntoMap(fields, "VoteCast", logs[0].Data); err == nil {
			org, _ = fields["org"].(string)
			weight, _ = fields["weight"].(uint64)
			out["org"], out["weight"] = org, weight
		}
	}
	status := "open"
	var line string
	if logs := govLogs(s.receipt, "ProposalPassed"); len(logs) > 0 {
		fields := map[string]any{}
		if err := g.UnpackIntoMap(fields, "ProposalPassed", logs[0].Data); err != nil {
			return fmt.Errorf("ProposalPassed event: %v", err)
		}
		at, _ := fields["activatesAt"].(uint64)
		status, out["activatesAt"] = "passed", at
		line = fmt.Sprintf("proposal %d passed; executes at height %d", id, at)
	} else if len(govLogs(s.receipt, "ProposalRejected")) > 0 {
		status = "rejected"
		line = fmt.Sprintf("proposal %d rejected", id)
	} else {
		line = fmt.Sprintf("proposal %d: %s voted %s (weight %d); still open", id, org, yesNo(support), weight)
		var p rpc.ProposalInfo
		if _, err := query(*sf.rpc, &p, "charter_proposal", id, hexutil.EncodeBig(s.receipt.BlockNumber)); err == nil {
			out["yesWeight"], out["noWeight"], out["totalWeight"] = p.Yes, p.No, p.Total
			line += fmt.Sprintf(": yes %d, no %d of total weight %d, %s needed", p.Yes, p.No, p.Total, pct(p.Threshold))
		}
	}
	out["status"] = status
	if *sf.json {
		return printValue(stdout, out)
	}
	_, err = fmt.Fprintln(stdout, line)
	return err
}

func govCancel(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter gov cancel ID --key FILE [--rpc URL] [--json] [--no-wait]"
	fs := newFlagSet("gov cancel", stderr)
	sf := addSendFlags(fs)
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, syntax); err != nil {
		return err
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	if err := sf.check(); err != nil {
		return err
	}
	data, err := system.Governance.Pack("cancel", id)
	if err != nil {
		return err
	}
	s, err := sf.dialAndSend(system.GovernanceAddress, nil, data)
	if err != nil {
		return err
	}
	if s.receipt == nil {
		return printNoWait(stdout, sf, s)
	}
	if len(govLogs(s.receipt, "ProposalCancelled")) == 0 {
		return fmt.Errorf("transaction %s succeeded in block %s but made no ProposalCancelled event", s.tx.Hash().Hex(), s.receipt.BlockNumber)
	}
	if *sf.json {
		return printValue(stdout, map[string]any{"tx": s.tx.Hash(), "block": s.receipt.BlockNumber.Uint64(), "proposal": id, "status": "cancelled"})
	}
	_, err = fmt.Fprintf(stdout, "proposal %d cancelled\n", id)
	return err
}

// ---- show, list, history, policy ----

func govShow(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter gov show ID [--rpc URL] [--block N] [--json]"
	fs := newFlagSet("gov show", stderr)
	rpcURL := fs.String("rpc", defaultRPC, "the node's JSON-RPC URL")
	block := fs.String("block", "latest", "show the proposal as of this block height")
	jsonOut := fs.Bool("json", false, "print the charter_proposal answer as JSON")
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, syntax); err != nil {
		return err
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	bargs, err := blockArg(*block)
	if err != nil {
		return err
	}
	var p rpc.ProposalInfo
	raw, err := query(*rpcURL, &p, "charter_proposal", append([]any{id}, bargs...)...)
	if err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(stdout, raw)
	}
	tw := newTable(stdout)
	fmt.Fprintf(tw, "Proposal\t%d\n", p.ID)
	fmt.Fprintf(tw, "Action\t%s (class %s)\n", actionLabel(p.Action), p.Class)
	fmt.Fprintf(tw, "Status\t%s\n", p.Status)
	fmt.Fprintf(tw, "Organization\t%s\n", p.Org)
	fmt.Fprintf(tw, "Proposer\t%s\n", p.Proposer.Hex())
	fmt.Fprintf(tw, "Memo\t%s\n", strings.Join(strings.Fields(p.Memo), " "))
	fmt.Fprintf(tw, "Created\theight %d\n", p.Created)
	fmt.Fprintf(tw, "Expires\theight %d\n", p.Expires)
	if p.Decided != 0 {
		fmt.Fprintf(tw, "Decided\theight %d\n", p.Decided)
	}
	if p.ActivatesAt != 0 {
		fmt.Fprintf(tw, "Executes\theight %d\n", p.ActivatesAt)
	}
	if p.Result != "" {
		fmt.Fprintf(tw, "Result\t%s\n", p.Result)
	}
	fmt.Fprintf(tw, "Tally\tyes %d, no %d of total weight %d; %s of the weight needed\n", p.Yes, p.No, p.Total, pct(p.Threshold))
	if rows := argRows(p.Action, p.Args); len(rows) > 0 {
		fmt.Fprintln(tw, "Arguments\t")
		for _, kv := range rows {
			fmt.Fprintf(tw, "  %s\t%s\n", kv[0], kv[1])
		}
	}
	tw.Flush()
	if len(p.Votes) > 0 {
		fmt.Fprintln(stdout)
		tw = newTable(stdout)
		fmt.Fprintln(tw, "ORGANIZATION\tVOTER\tVOTE\tWEIGHT\tHEIGHT")
		for _, v := range p.Votes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", v.Org, v.Voter.Hex(), yesNo(v.Support), v.Weight, v.Height)
		}
		tw.Flush()
	}
	return nil
}

// argRows shows a proposal's arguments in ABI order, as name and text.
func argRows(action string, args map[string]any) [][2]string {
	var names []string
	if a, err := system.ParseAction(action); err == nil {
		for _, s := range system.ActionArgs(a) {
			n, _, _ := strings.Cut(s, " ")
			names = append(names, n)
		}
	}
	for k := range args {
		if !slices.Contains(names, k) {
			names = append(names, k)
		}
	}
	var rows [][2]string
	for _, n := range names {
		v, ok := args[n]
		if !ok {
			continue
		}
		rows = append(rows, [2]string{n, argText(n, v)})
	}
	return rows
}

func argText(name string, v any) string {
	switch x := v.(type) {
	case string:
		if name == "rootsPem" {
			n := strings.Count(x, "-----BEGIN CERTIFICATE-----")
			return fmt.Sprintf("%d PEM certificate(s), %d bytes", n, len(x))
		}
		if len(x) == 42 && common.IsHexAddress(x) {
			return common.HexToAddress(x).Hex()
		}
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = argText(name, e)
		}
		if len(parts) == 0 {
			return "(none)"
		}
		return strings.Join(parts, ", ")
	case json.Number:
		if name == "roles" {
			if n, err := x.Int64(); err == nil {
				return system.Role(n).String()
			}
		}
		if name == "tier" {
			if n, err := x.Int64(); err == nil {
				return system.Tier(n).String()
			}
		}
		if name == "status" {
			if n, err := x.Int64(); err == nil {
				return system.Status(n).String()
			}
		}
		if name == "class" {
			if n, err := x.Int64(); err == nil {
				return system.Class(n).String()
			}
		}
		return x.String()
	case bool:
		return yesNo(x)
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

var proposalStatuses = []string{"open", "passed", "executed", "rejected", "expired", "cancelled", "failed"}

func govList(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gov list", stderr)
	rpcURL := fs.String("rpc", defaultRPC, "the node's JSON-RPC URL")
	status := fs.String("status", "", "only proposals of this status: "+strings.Join(proposalStatuses, ", "))
	limit := fs.Uint64("limit", 100, "at most this many, newest first (1 to 1000)")
	jsonOut := fs.Bool("json", false, "print the charter_proposals answer as JSON")
	setUsage(fs, stderr, "charter gov list [--status STATUS] [--limit N] [--rpc URL] [--json]")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *status != "" && !slices.Contains(proposalStatuses, *status) {
		return fmt.Errorf("--status %q: want one of %s", *status, strings.Join(proposalStatuses, ", "))
	}
	if *limit == 0 || *limit > 1000 {
		return fmt.Errorf("--limit %d is outside [1, 1000]", *limit)
	}
	var ps []rpc.ProposalInfo
	raw, err := query(*rpcURL, &ps, "charter_proposals", *status, *limit)
	if err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(stdout, raw)
	}
	if len(ps) == 0 {
		if *status != "" {
			_, err = fmt.Fprintf(stdout, "no %s proposals\n", *status)
		} else {
			_, err = fmt.Fprintln(stdout, "no proposals")
		}
		return err
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "ID\tACTION\tSTATUS\tORGANIZATION\tCREATED\tEXPIRES\tYES/TOTAL\tNEEDED\tMEMO")
	for _, p := range ps {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d/%d\t%s\t%s\n", p.ID, actionLabel(p.Action), p.Status, p.Org, p.Created, p.Expires,
			p.Yes, p.Total, pct(p.Threshold), shorten(strings.Join(strings.Fields(p.Memo), " "), 60))
	}
	return tw.Flush()
}

func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func govHistory(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gov history", stderr)
	rpcURL := fs.String("rpc", defaultRPC, "the node's JSON-RPC URL")
	from := fs.Uint64("from", 0, "first entry (0-based index)")
	limit := fs.Uint64("limit", 1000, "at most this many entries (1 to 10000)")
	jsonOut := fs.Bool("json", false, "print the charter_history answer as JSON")
	setUsage(fs, stderr, "charter gov history [--from I] [--limit N] [--rpc URL] [--json]")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *limit == 0 || *limit > 10000 {
		return fmt.Errorf("--limit %d is outside [1, 10000]", *limit)
	}
	var evs []rpc.HistoryEvent
	raw, err := query(*rpcURL, &evs, "charter_history", *from, *limit)
	if err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(stdout, raw)
	}
	if len(evs) == 0 {
		_, err = fmt.Fprintln(stdout, "no governance events")
		return err
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "#\tHEIGHT\tPROPOSAL\tEVENT\tORGANIZATION\tACTOR\tDETAIL")
	for _, e := range evs {
		prop, actor := "", ""
		if e.Proposal != 0 {
			prop = strconv.FormatUint(e.Proposal, 10)
		}
		if e.Actor != (common.Address{}) {
			actor = e.Actor.Hex()
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\n", e.Index, e.Height, prop, e.Kind, e.Org, actor, shorten(strings.Join(strings.Fields(e.Detail), " "), 80))
	}
	return tw.Flush()
}

func govPolicy(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gov policy", stderr)
	rpcURL := fs.String("rpc", defaultRPC, "the node's JSON-RPC URL")
	jsonOut := fs.Bool("json", false, "print the charter_policy answer as JSON")
	setUsage(fs, stderr, "charter gov policy [--rpc URL] [--json]")
	if err := parse(fs, args); err != nil {
		return err
	}
	var p rpc.PolicyInfo
	raw, err := query(*rpcURL, &p, "charter_policy")
	if err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(stdout, raw)
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "CLASS\tTHRESHOLD\tQUORUM\tEXPIRY (BLOCKS)\tTIMELOCK (BLOCKS)\tMIN APPROVALS")
	var classes []string
	for c := system.Class(0); c < system.NumClasses; c++ {
		classes = append(classes, c.String())
	}
	for k := range p.Rules {
		if !slices.Contains(classes, k) {
			classes = append(classes, k)
		}
	}
	for _, name := range classes {
		r, ok := p.Rules[name]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", name, pct(r.Threshold), pct(r.Quorum), r.ExpiryBlocks, r.Timelock, r.MinApprovals)
	}
	tw.Flush()
	roles := strings.Join(p.DefaultRoles, ",")
	if roles == "" {
		roles = "none"
	}
	_, err = fmt.Fprintf(stdout, "\nThresholds and quorums are shares of the total weight of the active organizations.\nValidator set changes take effect every %d blocks. Accounts the registry does not list hold: %s.\n", p.EpochLength, roles)
	return err
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
