package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/node"
	"github.com/charter-ledger/charter/internal/privacy"
	"github.com/charter-ledger/charter/internal/system"
)

// devNode is an in-process `charter dev` chain on a random port.
type devNode struct {
	url    string
	key    string // key file of development account 0, an admin of org "dev"
	accts  []chain.DevAccount
	client *ethclient.Client
}

func startDevNode(t *testing.T) *devNode {
	t.Helper()
	spec, err := chain.DevSpec(chain.DefaultChainID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	accts, err := chain.DevAccounts(chain.DevAccountCount)
	if err != nil {
		t.Fatal(err)
	}
	nodeKey, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{DataDir: t.TempDir(), Spec: spec, NodeKey: nodeKey, HTTPAddr: "127.0.0.1:0",
		DevAccounts: accts, BlockTime: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	url := "http://" + n.RPCAddr()
	client, err := ethclient.Dial(url)
	if err != nil {
		n.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); n.Stop() })
	keyFile := filepath.Join(t.TempDir(), "admin.key")
	if err := identity.SaveNodeKey(keyFile, accts[0].Key, nil); err != nil {
		t.Fatal(err)
	}
	return &devNode{url: url, key: keyFile, accts: accts, client: client}
}

// charter runs the CLI in process and returns its exit status and output.
func charter(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// mustRun runs the CLI and fails the test unless it succeeds.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := charter(args...)
	if code != 0 {
		t.Fatalf("charter %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// mustFail runs the CLI, wants a non-zero exit and exactly one line on
// stderr that contains want, and returns that line.
func mustFail(t *testing.T, want string, args ...string) string {
	t.Helper()
	code, out, errOut := charter(args...)
	line := strings.TrimSuffix(errOut, "\n")
	if code == 0 {
		t.Fatalf("charter %s: exit 0, want a failure\nstdout: %s", strings.Join(args, " "), out)
	}
	if line == "" || strings.Contains(line, "\n") {
		t.Fatalf("charter %s: want one line on stderr, got %q", strings.Join(args, " "), errOut)
	}
	if !strings.Contains(line, want) {
		t.Fatalf("charter %s: stderr %q does not say %q", strings.Join(args, " "), line, want)
	}
	return line
}

func decodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
}

// proposalStatus reads a proposal's status through `gov show --json`.
func (d *devNode) proposalStatus(t *testing.T, id uint64) string {
	t.Helper()
	var p struct {
		Status string `json:"status"`
	}
	decodeJSON(t, mustRun(t, "gov", "show", itoa(id), "--rpc", d.url, "--json"), &p)
	return p.Status
}

func itoa(n uint64) string { return new(big.Int).SetUint64(n).String() }

// waitStatus waits, with a deadline, until proposal id has status want.
// The dev chain seals blocks only when transactions wait, so while it
// waits it sends a transfer to make the next block.
func (d *devNode) waitStatus(t *testing.T, id uint64, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := d.proposalStatus(t, id)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("proposal %d is %s, not %s, after 30s", id, got, want)
		}
		d.transfer(t)
	}
}

// transfer sends a transfer from development account 19 to itself and
// waits for its receipt: one more block.
func (d *devNode) transfer(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	acct := d.accts[19]
	nonce, err := d.client.PendingNonceAt(ctx, acct.Address)
	if err != nil {
		t.Fatal(err)
	}
	head, err := d.client.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	feeCap := new(big.Int).Mul(head.BaseFee, big.NewInt(2))
	tx, err := types.SignNewTx(acct.Key, types.LatestSignerForChainID(big.NewInt(int64(chain.DefaultChainID))),
		&types.DynamicFeeTx{ChainID: big.NewInt(int64(chain.DefaultChainID)), Nonce: nonce, Gas: 21000, GasFeeCap: feeCap, GasTipCap: new(big.Int), To: &acct.Address})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.client.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := d.client.TransactionReceipt(ctx, tx.Hash()); err == nil {
			return
		} else if !errors.Is(err, ethereum.NotFound) {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no receipt for transfer %s within the deadline", tx.Hash().Hex())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

type proposeOut struct {
	Tx       common.Hash `json:"tx"`
	Block    uint64      `json:"block"`
	Proposal uint64      `json:"proposal"`
	Action   string      `json:"action"`
	Org      string      `json:"org"`
	Expires  uint64      `json:"expires"`
}

func TestGovFreezeByProposalAndVote(t *testing.T) {
	d := startDevNode(t)
	target := common.HexToAddress("0x00000000000000000000000000000000c0ffee01")

	var p proposeOut
	decodeJSON(t, mustRun(t, "gov", "propose", "freeze", "--target", target.Hex(), "--memo", "stolen key",
		"--rpc", d.url, "--key", d.key, "--json"), &p)
	if p.Proposal != 1 || p.Action != "freeze" || p.Org != chain.DevOrg || p.Block == 0 || p.Expires <= p.Block || p.Tx == (common.Hash{}) {
		t.Fatalf("propose answered %+v", p)
	}
	if got := d.proposalStatus(t, 1); got != "open" {
		t.Fatalf("new proposal is %s, want open", got)
	}

	// The dev organization holds all the weight: one yes passes it.
	out := mustRun(t, "gov", "vote", "1", "yes", "--rpc", d.url, "--key", d.key)
	if !regexp.MustCompile(`^proposal 1 passed; executed at height \d+\n$`).MatchString(out) {
		t.Fatalf("vote printed %q", out)
	}
	// The passing vote returned once the proposal was in force.
	if got := d.proposalStatus(t, 1); got != "executed" {
		t.Fatalf("after the passing vote the proposal is %s, want executed", got)
	}

	var acct struct {
		Address common.Address `json:"address"`
		Frozen  bool           `json:"frozen"`
	}
	decodeJSON(t, mustRun(t, "members", "account", target.Hex(), "--rpc", d.url, "--json"), &acct)
	if acct.Address != target || !acct.Frozen {
		t.Fatalf("members account after the freeze: %+v", acct)
	}
	if out := mustRun(t, "members", "account", target.Hex(), "--rpc", d.url); !regexp.MustCompile(`(?m)^Frozen\s+yes$`).MatchString(out) {
		t.Fatalf("members account does not show the freeze:\n%s", out)
	}

	// The proposal is in the executed list and the audit trail.
	var list []struct {
		ID     uint64 `json:"id"`
		Status string `json:"status"`
	}
	decodeJSON(t, mustRun(t, "gov", "list", "--status", "executed", "--rpc", d.url, "--json"), &list)
	if len(list) != 1 || list[0].ID != 1 {
		t.Fatalf("executed proposals: %+v", list)
	}
	hist := mustRun(t, "gov", "history", "--rpc", d.url)
	for _, kind := range []string{"proposed", "voted", "passed", "executed"} {
		if !strings.Contains(hist, " "+kind+" ") {
			t.Fatalf("history lacks %q:\n%s", kind, hist)
		}
	}
	show := mustRun(t, "gov", "show", "1", "--rpc", d.url)
	for _, want := range []string{"freeze (class freeze)", "executed", "stolen key", target.Hex()} {
		if !strings.Contains(show, want) {
			t.Fatalf("gov show lacks %q:\n%s", want, show)
		}
	}

	// Freezing it again is refused by the contract before anything is sent.
	mustFail(t, "is frozen already", "gov", "propose", "freeze", "--target", target.Hex(), "--memo", "again",
		"--rpc", d.url, "--key", d.key)
	// An executed proposal takes no more votes.
	mustFail(t, "proposal 1 is executed", "gov", "vote", "1", "no", "--rpc", d.url, "--key", d.key)
}

func TestGovAddOrganizationCancelAndSetRoles(t *testing.T) {
	d := startDevNode(t)
	dir := t.TempDir()
	ca, err := identity.NewRootCA("org4", identity.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roots := filepath.Join(dir, "ca.crt")
	if err := identity.WriteCertFile(roots, ca.Cert); err != nil {
		t.Fatal(err)
	}
	// An encrypted key file, read with --password-file.
	pwFile, encKey := filepath.Join(dir, "pw"), filepath.Join(dir, "admin1.key")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := identity.SaveNodeKey(encKey, d.accts[1].Key, []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	mustFail(t, "give --password-file", "gov", "cancel", "1", "--rpc", d.url, "--key", encKey)

	org4Admin := common.HexToAddress("0x0000000000000000000000000000000000a4a4a4")
	nodeID := common.HexToAddress("0x0000000000000000000000000000000000b4b4b4")
	fp := strings.Repeat("ab", 32)
	out := mustRun(t, "gov", "propose", "add-organization", "--name", "org4", "--roots", roots, "--tier", "write", "--weight", "2",
		"--admin", org4Admin.Hex(), "--node", nodeID.Hex(), "--fingerprint", "0x"+fp,
		"--memo", "welcome org4", "--rpc", d.url, "--key", encKey, "--password-file", pwFile)
	if !regexp.MustCompile(`^proposal 1: add-organization by dev, expires at height \d+ \(vote with 'charter gov vote 1 yes'\)\n$`).MatchString(out) {
		t.Fatalf("propose printed %q", out)
	}
	// A second proposal, cancelled by another admin of the organization.
	out = mustRun(t, "gov", "propose", "set-parameter", "--name", "gasLimit", "--value", "40000000", "--memo", "more gas",
		"--rpc", d.url, "--key", d.key)
	if !strings.HasPrefix(out, "proposal 2: set-parameter by dev") {
		t.Fatalf("propose printed %q", out)
	}
	if out := mustRun(t, "gov", "cancel", "2", "--rpc", d.url, "--key", encKey, "--password-file", pwFile); out != "proposal 2 cancelled\n" {
		t.Fatalf("cancel printed %q", out)
	}
	if got := d.proposalStatus(t, 2); got != "cancelled" {
		t.Fatalf("proposal 2 is %s after cancel", got)
	}
	mustFail(t, "proposal 2 is cancelled", "gov", "vote", "2", "yes", "--rpc", d.url, "--key", d.key)

	mustRun(t, "gov", "vote", "1", "yes", "--rpc", d.url, "--key", d.key)
	d.waitStatus(t, 1, "executed")
	var m struct {
		Organizations []struct {
			Name   string `json:"name"`
			Tier   string `json:"tier"`
			Weight uint64 `json:"weight"`
			Status string `json:"status"`
			Nodes  []struct {
				ID          common.Address `json:"id"`
				Fingerprint common.Hash    `json:"fingerprint"`
				Validator   bool           `json:"validator"`
			} `json:"nodes"`
			Accounts []struct {
				Address common.Address `json:"address"`
				Roles   []string       `json:"roles"`
			} `json:"accounts"`
		} `json:"organizations"`
	}
	decodeJSON(t, mustRun(t, "members", "--rpc", d.url, "--json"), &m)
	var found bool
	for _, o := range m.Organizations {
		if o.Name != "org4" {
			continue
		}
		found = true
		if o.Tier != "write" || o.Weight != 2 || o.Status != "active" || len(o.Nodes) != 1 || o.Nodes[0].ID != nodeID ||
			o.Nodes[0].Fingerprint != common.HexToHash(fp) || o.Nodes[0].Validator || len(o.Accounts) != 1 || o.Accounts[0].Address != org4Admin {
			t.Fatalf("org4 in the registry: %+v", o)
		}
	}
	if !found {
		t.Fatalf("org4 is not in the registry: %+v", m)
	}
	if out := mustRun(t, "members", "--rpc", d.url); !regexp.MustCompile(`(?m)^org4\s+write\s+2\s+active\s`).MatchString(out) {
		t.Fatalf("members table lacks org4:\n%s", out)
	}
	mustFail(t, "execution reverted: organization org4 exists already", "gov", "propose", "add-organization", "--name", "org4",
		"--roots", roots, "--admin", "0x0000000000000000000000000000000000a5a5a5", "--memo", "again", "--rpc", d.url, "--key", d.key)

	// An admin sets roles of an account of its organization.
	acct := common.HexToAddress("0x0000000000000000000000000000000000c4c4c4")
	out = mustRun(t, "members", "set-roles", acct.Hex(), "read,write", "--rpc", d.url, "--key", d.key)
	if out != "account "+acct.Hex()+" of dev now holds read,write\n" {
		t.Fatalf("set-roles printed %q", out)
	}
	var info struct {
		Org   string   `json:"org"`
		Roles []string `json:"roles"`
	}
	decodeJSON(t, mustRun(t, "members", "account", acct.Hex(), "--rpc", d.url, "--json"), &info)
	if info.Org != chain.DevOrg || strings.Join(info.Roles, ",") != "read,write" {
		t.Fatalf("account after set-roles: %+v", info)
	}
	// Not an account of the caller's organization.
	mustFail(t, "belongs to organization org4", "members", "set-roles", org4Admin.Hex(), "read", "--rpc", d.url, "--key", d.key)

	// Usage counts the transactions of the dev organization today.
	var rows []struct {
		Org   string `json:"org"`
		Txs   uint64 `json:"txs"`
		Share uint64 `json:"gasShareBps"`
	}
	decodeJSON(t, mustRun(t, "usage", "--rpc", d.url, "--json"), &rows)
	if len(rows) == 0 || rows[0].Org != chain.DevOrg || rows[0].Txs == 0 {
		t.Fatalf("usage: %+v", rows)
	}
	if out := mustRun(t, "usage", "--rpc", d.url); !regexp.MustCompile(`(?m)^dev\s+0\s+\d+\s+\d+\s+\d+\s+\d+\.\d\d%$`).MatchString(out) {
		t.Fatalf("usage table:\n%s", out)
	}
	if out := mustRun(t, "gov", "policy", "--rpc", d.url); !regexp.MustCompile(`(?m)^freeze\s+50\.01%\s+0\.00%\s+10000\s+1\s+0$`).MatchString(out) {
		t.Fatalf("policy table:\n%s", out)
	}
}

func TestGovBadInput(t *testing.T) {
	d := startDevNode(t)
	rpcKey := []string{"--rpc", d.url, "--key", d.key}
	ca, err := identity.NewRootCA("o", identity.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roots := filepath.Join(t.TempDir(), "ca.crt")
	if err := identity.WriteCertFile(roots, ca.Cert); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(t.TempDir(), "junk.txt")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(t.TempDir(), "big.pem")
	if err := os.WriteFile(big, bytes.Repeat([]byte("x"), 9000), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		want string
		args []string
	}{
		{"charter gov: AddOrganization: rootsPem of 9000 bytes, at most 8192", append([]string{"gov", "propose", "add-organization", "--name", "o", "--roots", big,
			"--admin", d.accts[5].Address.Hex(), "--memo", "x"}, rpcKey...)},
		{"charter gov: --memo: memo of 1025 bytes, at most 1024", append([]string{"gov", "propose", "freeze", "--target", d.accts[5].Address.Hex(), "--memo", strings.Repeat("m", 1025)}, rpcKey...)},
		{`charter gov: unknown action "frobnicate"; want one of add-organization,`, []string{"gov", "propose", "frobnicate", "--memo", "x"}},
		{"charter gov: --target is required for this action", append([]string{"gov", "propose", "freeze", "--memo", "x"}, rpcKey...)},
		{`charter gov: --target "0x12" is not an address: want 0x and 40 hex digits`, append([]string{"gov", "propose", "freeze", "--target", "0x12", "--memo", "x"}, rpcKey...)},
		{"charter gov: --memo is required", append([]string{"gov", "propose", "freeze", "--target", d.accts[5].Address.Hex()}, rpcKey...)},
		{"charter gov: --key is required", []string{"gov", "propose", "freeze", "--target", d.accts[5].Address.Hex(), "--memo", "x", "--rpc", d.url}},
		{"charter gov: add-organization: 1 nodes but 0 fingerprints", append([]string{"gov", "propose", "add-organization", "--name", "o", "--roots", roots,
			"--admin", d.accts[5].Address.Hex(), "--node", d.accts[6].Address.Hex(), "--memo", "x"}, rpcKey...)},
		{"charter gov: add-organization: roots: want PEM CA certificates and nothing else", append([]string{"gov", "propose", "add-organization", "--name", "o", "--roots", junk,
			"--admin", d.accts[5].Address.Hex(), "--memo", "x"}, rpcKey...)},
		{`charter gov: --roles: unknown role "boss"`, append([]string{"gov", "propose", "grant-roles", "--account", d.accts[5].Address.Hex(), "--org", "dev", "--roles", "boss", "--memo", "x"}, rpcKey...)},
		{`charter gov: set-parameter: unknown parameter "gas" (want gasLimit,`, append([]string{"gov", "propose", "set-parameter", "--name", "gas", "--value", "1", "--memo", "x"}, rpcKey...)},
		{`charter gov: set-parameter: bft.timeoutVote 5 outside [100, 30000]`, append([]string{"gov", "propose", "set-parameter", "--name", "bft.timeoutVote", "--value", "5", "--memo", "x"}, rpcKey...)},
		{`charter gov: --class: class "everything": want one of membership,`, append([]string{"gov", "propose", "set-rule", "--class", "everything", "--threshold", "5000", "--memo", "x"}, rpcKey...)},
		{"charter gov: give the action first", []string{"gov", "propose", "--memo", "x", "freeze"}},
		{"charter gov: execution reverted: no proposal 999 (account " + d.accts[0].Address.Hex() + "; nothing was sent)", append([]string{"gov", "vote", "999", "yes"}, rpcKey...)},
		{"charter gov: execution reverted: no proposal 999", append([]string{"gov", "cancel", "999"}, rpcKey...)},
		{`charter gov: vote "maybe": want yes or no`, append([]string{"gov", "vote", "1", "maybe"}, rpcKey...)},
		{`charter gov: proposal id "x": want a positive number`, append([]string{"gov", "vote", "x", "yes"}, rpcKey...)},
		{"charter gov: missing arguments; usage: charter gov vote ID yes|no", append([]string{"gov", "vote", "1"}, rpcKey...)},
		{"charter gov: --status \"done\": want one of open,", []string{"gov", "list", "--status", "done", "--rpc", d.url}},
		{"charter gov: no proposal 7 (there are 0)", []string{"gov", "show", "7", "--rpc", d.url}},
		{`charter gov: unknown subcommand "approve"`, []string{"gov", "approve"}},
		{`charter members: account "0xnope" is not an address`, []string{"members", "account", "0xnope", "--rpc", d.url}},
		{`charter members: roles 0x10: an admin sets read 1, write 2, deploy 4, admin 8; auditor needs a proposal`, append([]string{"members", "set-roles", d.accts[5].Address.Hex(), "auditor"}, rpcKey...)},
		{`charter usage: --from "2024-13-01": want a date YYYY-MM-DD`, []string{"usage", "--from", "2024-13-01", "--rpc", d.url}},
		{"charter usage: --from 2024-02-02 is after --to 2024-02-01", []string{"usage", "--from", "2024-02-02", "--to", "2024-02-01", "--rpc", d.url}},
		{"charter members: no answer from http://127.0.0.1:1", []string{"members", "--rpc", "http://127.0.0.1:1"}},
	}
	for _, c := range cases {
		line := mustFail(t, c.want, c.args...)
		if !strings.HasPrefix(line, c.want) {
			t.Errorf("charter %s: stderr %q, want it to start with %q", strings.Join(c.args, " "), line, c.want)
		}
	}
	// Nothing was sent by any of them.
	nonce, err := d.client.NonceAt(context.Background(), d.accts[0].Address, nil)
	if err != nil || nonce != 0 {
		t.Fatalf("admin nonce %d, %v: a refused command sent a transaction", nonce, err)
	}
}

// TestProposeFlagsCoverEveryAction builds every action from its flags and
// checks the arguments are what the system contract decodes.
func TestProposeFlagsCoverEveryAction(t *testing.T) {
	dir := t.TempDir()
	ca, err := identity.NewRootCA("org9", identity.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roots := filepath.Join(dir, "ca.crt")
	if err := identity.WriteCertFile(roots, ca.Cert); err != nil {
		t.Fatal(err)
	}
	pk, err := privacy.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "privacy.pub")
	if err := identity.WritePrivacyPublicKey(pub, pk.Public()); err != nil {
		t.Fatal(err)
	}
	pkText := "privacy identity " + pk.Public().Identity().String() + " (with its ML-KEM-768 key, 1216 bytes in all)"
	a1, a2 := "0x00000000000000000000000000000000000000a1", "0x00000000000000000000000000000000000000a2"
	gid := crypto.Keccak256Hash([]byte("group"))
	fp := strings.Repeat("0f", 32)
	abiDoc := []byte(`[{"type":"function","name":"f","inputs":[],"outputs":[]}]`)
	abiFile := filepath.Join(dir, "token.abi.json")
	if err := os.WriteFile(abiFile, abiDoc, 0o600); err != nil {
		t.Fatal(err)
	}
	samples := map[string][]string{
		"add-organization":    {"--name", "org9", "--roots", roots, "--tier", "validate", "--weight", "3", "--admin", a1, "--node", a2, "--fingerprint", fp, "--validator", a2, "--privacy-key", pub},
		"remove-organization": {"--name", "org9"},
		"set-organization":    {"--name", "org9", "--tier", "read", "--weight", "5", "--status", "suspended"},
		"add-node":            {"--org", "org9", "--id", a2, "--fingerprint", fp, "--validator"},
		"remove-node":         {"--id", a2},
		"add-validator":       {"--id", a2},
		"remove-validator":    {"--id", a2},
		"grant-roles":         {"--account", a1, "--org", "org9", "--roles", "write,deploy"},
		"revoke-roles":        {"--account", a1, "--roles", "deploy"},
		"revoke-certificate":  {"--fingerprint", "0x" + fp},
		"rotate-ca":           {"--org", "org9", "--roots", roots},
		"freeze":              {"--target", a1},
		"unfreeze":            {"--target", a1},
		"set-parameter":       {"--name", "txGasLimit", "--value", "0x1000000"},
		"schedule-upgrade":    {"--name", "fork1", "--height", "1000"},
		"set-rule":            {"--class", "roles", "--threshold", "6000", "--quorum", "2000", "--expiry", "500", "--timelock", "2", "--min-approvals", "1"},
		"set-default-roles":   {"--roles", "none"},
		"set-privacy-key":     {"--org", "org9", "--privacy-key", pub},
		"purge-group":         {"--group", system.GroupIDBase64(gid)},
		"grant-auditor":       {"--group", gid.Hex(), "--org", "org9", "--from", "12"},
		"revoke-auditor":      {"--group", system.GroupIDBase64(gid), "--org", "org9"},
		"upgrade-contract":    {"--name", "token", "--address", a1, "--abi", abiFile, "--abi-hash", crypto.Keccak256Hash(abiDoc).Hex()},
		"deprecate-contract":  {"--name", "token", "--version", "1"},
	}
	// What the node shows (charter_proposal's args, system.ArgsJSON).
	want := map[string]map[string]string{
		"add-organization":   {"name": "org9", "tier": "validate", "weight": "3", "admins": common.HexToAddress(a1).Hex(), "fingerprints": "0x" + fp, "privacyKey": pkText},
		"set-organization":   {"tier": "read", "weight": "5", "status": "suspended"},
		"add-node":           {"org": "org9", "validator": "yes"},
		"grant-roles":        {"org": "org9", "roles": "write, deploy"},
		"revoke-roles":       {"roles": "deploy"},
		"set-parameter":      {"name": "txGasLimit", "value": "16777216"},
		"schedule-upgrade":   {"name": "fork1", "height": "1000"},
		"set-rule":           {"class": "roles", "threshold": "6000", "quorum": "2000", "expiryBlocks": "500", "timelock": "2", "minApprovals": "1"},
		"set-default-roles":  {"roles": "(none)"},
		"set-factory":        {"target": common.HexToAddress(a1).Hex(), "factory": "no"},
		"set-privacy-key":    {"org": "org9", "key": pkText},
		"purge-group":        {"group": gid.Hex()},
		"grant-auditor":      {"group": gid.Hex(), "org": "org9", "fromHeight": "12"},
		"revoke-auditor":     {"group": gid.Hex(), "org": "org9"},
		"upgrade-contract":   {"name": "token", "addr": common.HexToAddress(a1).Hex(), "abiHash": crypto.Keccak256Hash(abiDoc).Hex()},
		"deprecate-contract": {"name": "token", "version": "1"},
	}
	samples["set-factory"] = []string{"--target", a1, "--remove"}
	noNode := func() (*client, error) { return nil, errors.New("no node in this test") }
	for _, a := range system.Actions() {
		name := a.CLIName()
		args, ok := samples[name]
		if !ok {
			t.Errorf("action %s has no sample in this test", name)
			continue
		}
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		af := addActionFlags(fs, a)
		if err := fs.Parse(args); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		act, err := af.build(noNode)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := act.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		enc, err := system.Encode(act)
		if err != nil {
			t.Fatalf("%s: encode: %v", name, err)
		}
		dec, err := system.DecodeArgs(a, enc)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		raw, err := system.ArgsJSON(dec)
		if err != nil {
			t.Fatal(err)
		}
		rows := map[string]string{}
		for _, r := range argRows(a.String(), raw) {
			rows[r[0]] = r[1]
		}
		if len(rows) != len(a.Fields()) {
			t.Fatalf("%s: %d arguments shown, the action has %d: %s", name, len(rows), len(a.Fields()), raw)
		}
		for k, w := range want[name] {
			if got := rows[k]; got != w {
				t.Errorf("%s: %s = %q, want %q", name, k, got, w)
			}
		}
		if syn := actionSyntax(a); !strings.Contains(syn, "--"+a.Fields()[0].Flag) {
			t.Errorf("%s: syntax %q lacks its first flag", name, syn)
		}
	}
	// Flags the chain's definition marks "current" are read from the node
	// when not given, and one of them at least must be.
	fs := flag.NewFlagSet("set-rule", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	af := addActionFlags(fs, system.ActSetRule)
	if err := fs.Parse([]string{"--class", "roles"}); err != nil {
		t.Fatal(err)
	}
	if _, err := af.build(noNode); err == nil || !strings.HasPrefix(err.Error(), "give at least one of --threshold, --quorum, --expiry, --timelock, --min-approvals") {
		t.Fatalf("set-rule with no rule value: %v", err)
	}
	fs = flag.NewFlagSet("set-rule", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	af = addActionFlags(fs, system.ActSetRule)
	if err := fs.Parse([]string{"--class", "roles", "--quorum", "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := af.build(noNode); err == nil || err.Error() != "no node in this test" {
		t.Fatalf("set-rule with one value given does not ask the node for the others: %v", err)
	}
	if _, err := actionByName("rotate-ca"); err != nil {
		t.Fatal(err)
	}
	if system.ActRotateCA.CLIName() != "rotate-ca" || system.ActAddOrganization.CLIName() != "add-organization" {
		t.Fatal("CLI names")
	}
}

// A contract factory is marked through the CLI; members lists it, and the
// policy shows the parameters with setCode and the open-proposal bound.
func TestGovSetFactoryMembersAndPolicy(t *testing.T) {
	d := startDevNode(t)
	factory := common.HexToAddress("0x00000000000000000000000000000000fac70e01")
	var p proposeOut
	decodeJSON(t, mustRun(t, "gov", "propose", "set-factory", "--target", factory.Hex(), "--memo", "our factory",
		"--rpc", d.url, "--key", d.key, "--json"), &p)
	if p.Action != "set-factory" {
		t.Fatalf("propose answered %+v", p)
	}
	mustRun(t, "gov", "vote", itoa(p.Proposal), "yes", "--rpc", d.url, "--key", d.key)
	d.waitStatus(t, p.Proposal, "executed")
	var m struct {
		Factories  []common.Address  `json:"factories"`
		Parameters map[string]uint64 `json:"parameters"`
	}
	decodeJSON(t, mustRun(t, "members", "--rpc", d.url, "--json"), &m)
	if len(m.Factories) != 1 || m.Factories[0] != factory {
		t.Fatalf("members factories %v, want [%s]", m.Factories, factory.Hex())
	}
	if v, ok := m.Parameters["setCode"]; !ok || v != 1 {
		t.Fatalf("members parameters %v: want setCode 1 on charter dev", m.Parameters)
	}
	if out := mustRun(t, "members", "--rpc", d.url); !regexp.MustCompile(`(?m)^Contract factories\s+` + factory.Hex() + `$`).MatchString(out) {
		t.Fatalf("members does not list the factory:\n%s", out)
	}
	show := mustRun(t, "gov", "show", itoa(p.Proposal), "--rpc", d.url)
	for _, want := range []string{"set-factory (class contracts)", "target", factory.Hex(), "factory"} {
		if !strings.Contains(show, want) {
			t.Fatalf("gov show lacks %q:\n%s", want, show)
		}
	}
	pol := mustRun(t, "gov", "policy", "--rpc", d.url)
	for _, re := range []string{`(?m)^contracts\s+50\.01%`, `(?m)^setCode\s+1\s+0 to 1\s`, `(?m)^maxOpenProposals\s+16\s+1 to 256\s`, `may have 16 proposals open at once`} {
		if !regexp.MustCompile(re).MatchString(pol) {
			t.Fatalf("gov policy does not match %s:\n%s", re, pol)
		}
	}
	// Unmarking what is not a factory is refused by the chain, before sending.
	mustFail(t, "is not a factory", "gov", "propose", "set-factory", "--target", d.accts[3].Address.Hex(), "--remove", "--memo", "x",
		"--rpc", d.url, "--key", d.key)
}
