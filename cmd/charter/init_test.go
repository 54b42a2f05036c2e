package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/node"
)

// devKeysIn lists the development accounts a genesis funds and those it
// gives roles.
func devKeysIn(t *testing.T, genesis string) (funded, roles []common.Address) {
	t.Helper()
	spec, err := chain.LoadSpec(genesis)
	if err != nil {
		t.Fatal(err)
	}
	accts, err := chain.DevAccounts(chain.DevAccountCount)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		if al, ok := spec.Alloc[a.Address]; ok && al.Balance.Sign() > 0 {
			funded = append(funded, a.Address)
		}
		for _, g := range spec.Governance.Accounts {
			if g.Address == a.Address && len(g.Roles) > 0 {
				roles = append(roles, a.Address)
			}
		}
	}
	return funded, roles
}

// TestInitGrantsNothingToDevKeysByDefault: the keys of the public test
// mnemonic get neither funds nor roles from `charter init` unless
// --dev-accounts asks for them; --no-dev-accounts is accepted (the
// default), contradicting flags are refused, and so is --dev-accounts for
// a host beyond loopback unless --allow-dev-keys.
func TestInitGrantsNothingToDevKeysByDefault(t *testing.T) {
	dir := t.TempDir()
	out := mustRun(t, "init", "--validators", "1", "--out", filepath.Join(dir, "plain"))
	if funded, roles := devKeysIn(t, filepath.Join(dir, "plain", node.GenesisFile)); len(funded)+len(roles) != 0 {
		t.Fatalf("init without --dev-accounts funds %d and gives roles to %d development accounts", len(funded), len(roles))
	}
	if !strings.Contains(out, "the development accounts get nothing (--dev-accounts for a local playground)") {
		t.Fatalf("init does not say so:\n%s", out)
	}
	mustRun(t, "init", "--validators", "1", "--out", filepath.Join(dir, "nodev"), "--no-dev-accounts")
	if funded, roles := devKeysIn(t, filepath.Join(dir, "nodev", node.GenesisFile)); len(funded)+len(roles) != 0 {
		t.Fatal("--no-dev-accounts funds development accounts")
	}

	out = mustRun(t, "init", "--validators", "1", "--out", filepath.Join(dir, "dev"), "--dev-accounts")
	funded, roles := devKeysIn(t, filepath.Join(dir, "dev", node.GenesisFile))
	if len(funded) != chain.DevAccountCount || len(roles) != chain.DevAccountCount || !strings.Contains(out, "a local playground only") {
		t.Fatalf("--dev-accounts: %d funded, %d with roles\n%s", len(funded), len(roles), out)
	}

	mustFail(t, "--dev-accounts and --no-dev-accounts contradict", "init", "--validators", "1", "--out", filepath.Join(dir, "both"),
		"--dev-accounts", "--no-dev-accounts")
	mustFail(t, "pass --allow-dev-keys", "init", "--validators", "1", "--out", filepath.Join(dir, "wide"), "--dev-accounts", "--host", "0.0.0.0")
	mustRun(t, "init", "--validators", "1", "--out", filepath.Join(dir, "wide"), "--dev-accounts", "--host", "0.0.0.0", "--allow-dev-keys")
	// A network without them may listen anywhere.
	mustRun(t, "init", "--validators", "1", "--out", filepath.Join(dir, "open"), "--host", "0.0.0.0")
}

// TestNodeStopsInOneLineNamingTheFlag: a node whose keys are encrypted
// and no password given, whose key file others may read, or whose RPC
// would serve the development keys beyond loopback, stops before it
// opens anything, in one line that names what to do.
func TestNodeStopsInOneLineNamingTheFlag(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "init", "--validators", "1", "--out", filepath.Join(dir, "enc"), "--password-file", pw)
	home := filepath.Join(dir, "enc", "node0")
	mustFail(t, "nodekey is encrypted: password required; give --password-file FILE", "node", "--home", home)
	wrong := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrong, []byte("guess\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustFail(t, "wrong password for key file "+filepath.Join(home, "nodekey"), "node", "--home", home, "--password-file", wrong)
	if err := os.Chmod(filepath.Join(home, "tls", "node.key"), 0o640); err != nil {
		t.Fatal(err)
	}
	mustFail(t, "run chmod 600 "+filepath.Join(home, "tls", "node.key"), "node", "--home", home, "--password-file", pw)

	// RPC on 0.0.0.0 while the genesis funds the development accounts.
	mustRun(t, "init", "--validators", "1", "--out", filepath.Join(dir, "dev"), "--dev-accounts")
	home = filepath.Join(dir, "dev", "node0")
	cfg, err := os.ReadFile(filepath.Join(home, node.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	wide := strings.Replace(string(cfg), `"rpcAddr": "127.0.0.1:8545"`, `"rpcAddr": "0.0.0.0:8545"`, 1)
	if wide == string(cfg) || os.WriteFile(filepath.Join(home, node.ConfigFile), []byte(wide), 0o644) != nil {
		t.Fatal("could not set rpcAddr")
	}
	line := mustFail(t, "pass --allow-dev-keys", "node", "--home", home)
	for _, want := range []string{"0.0.0.0:8545", "development accounts", "anyone who reaches the port"} {
		if !strings.Contains(line, want) {
			t.Fatalf("%q does not say %q", line, want)
		}
	}
}

// TestNodeRefusesBodyRetentionOnAValidator: --history.bodies is for
// observers; a validator, a retention below the least and a negative
// value are refused in one line that says why.
func TestNodeRefusesBodyRetentionOnAValidator(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "init", "--validators", "4", "--consensus", "bft", "--out", dir)
	home := filepath.Join(dir, "node0")
	mustFail(t, "this node is a validator, which must keep every block", "node", "--home", home, "--history.bodies", "64")
	mustFail(t, "history.bodies 8: keep at least 16 blocks", "node", "--home", home, "--history.bodies", "8")
	mustFail(t, "--history.bodies -1: give a number of blocks", "node", "--home", home, "--history.bodies", "-1")
}

// --block-time paces a bft network: bft reads its block time from
// consensus.params.blockTime, so init writes it there; given twice, it is
// refused.
func TestInitBlockTimeReachesBFT(t *testing.T) {
	dir := t.TempDir()
	params := func(name string) map[string]any {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name, node.GenesisFile))
		if err != nil {
			t.Fatal(err)
		}
		var g struct {
			Consensus struct {
				Params map[string]any `json:"params"`
			} `json:"consensus"`
		}
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatal(err)
		}
		return g.Consensus.Params
	}
	mustRun(t, "init", "--validators", "1", "--consensus", "bft", "--block-time", "2s", "--out", filepath.Join(dir, "a"))
	if p := params("a"); p["blockTime"] != "2s" {
		t.Fatalf("consensus.params %v, want blockTime 2s", p)
	}
	mustRun(t, "init", "--validators", "1", "--consensus", "bft", "--block-time", "500ms", "--consensus-params", `{"timeoutVote":"1s"}`, "--out", filepath.Join(dir, "b"))
	if p := params("b"); p["blockTime"] != "500ms" || p["timeoutVote"] != "1s" {
		t.Fatalf("consensus.params %v, want blockTime 500ms beside timeoutVote 1s", p)
	}
	mustRun(t, "init", "--validators", "1", "--consensus", "bft", "--out", filepath.Join(dir, "c"))
	if p := params("c"); p["blockTime"] != nil {
		t.Fatalf("consensus.params %v without --block-time, want the engine's default", p)
	}
	mustFail(t, "both set the block time", "init", "--validators", "1", "--consensus", "bft", "--block-time", "2s",
		"--consensus-params", `{"blockTime":"1s"}`, "--out", filepath.Join(dir, "d"))
}
