package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/node"
)

// TestBenchOnGovernedTestnet runs `charter bench --senders 40` on a
// governed testnet, where only the 20 development accounts may transact:
// without an admin key it stops in one line before sending anything; with
// org0's admin key it grants the 20 other senders write and every
// transaction confirms.
func TestBenchOnGovernedTestnet(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	dir := initNetwork(t, "raft", 3, "--block-time", "200ms")
	tn := runTestnet(t, dir)
	if !strings.Contains(tn.out.String(), "Development accounts: the genesis prefunds and grants roles to the 20 accounts") {
		t.Fatalf("testnet does not say the development accounts are funded:\n%s", tn.out.String())
	}
	rpcs := strings.Join(tn.urls(), ",")
	bench := func(extra ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, charterBin, append([]string{"bench", "--rpc", rpcs, "--txs", "200", "--senders", "40"}, extra...)...).CombinedOutput()
		return string(out), err
	}
	accts, err := chain.DeriveAccounts(chain.DevMnemonic, 40)
	if err != nil {
		t.Fatal(err)
	}
	before, err := height(tn.url(0))
	if err != nil {
		t.Fatal(err)
	}

	out, err := bench()
	line := strings.TrimSpace(out)
	if err == nil || strings.Contains(line, "\n") || !strings.Contains(line, "20 of 40 senders lack role write") || !strings.Contains(line, "--admin-key") {
		t.Fatalf("bench without --admin-key: %v, want one line naming --admin-key:\n%s", err, out)
	}
	// Nothing was sent: no funding, no block.
	var nonce, balance hexutil.Big
	if err := rpcCall(tn.url(0), &nonce, "eth_getTransactionCount", accts[0].Address, "pending"); err != nil || nonce.ToInt().Sign() != 0 {
		t.Fatalf("the funder's nonce is %v (%v): something was sent", nonce.ToInt(), err)
	}
	if err := rpcCall(tn.url(0), &balance, "eth_getBalance", accts[39].Address, "latest"); err != nil || balance.ToInt().Sign() != 0 {
		t.Fatalf("sender 39 holds %v (%v): it was funded", balance.ToInt(), err)
	}
	if h, err := height(tn.url(0)); err != nil || h != before {
		t.Fatalf("height %d -> %d (%v): a block was made", before, h, err)
	}

	t.Log(line)
	res := filepath.Join(t.TempDir(), "bench.json")
	out, err = bench("--admin-key", filepath.Join(dir, "orgs", "org0", node.AdminAccountFile), "--json", res)
	if err != nil {
		t.Fatalf("bench --admin-key: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(res)
	if err != nil {
		t.Fatal(err)
	}
	var r struct{ Sent, Confirmed, Failed int }
	if err := json.Unmarshal(raw, &r); err != nil || r.Sent != 200 || r.Confirmed != 200 || r.Failed != 0 {
		t.Fatalf("bench --admin-key result %s (%v)\n%s", raw, err, out)
	}
	t.Log(out)
	var a struct {
		Org   string   `json:"org"`
		Roles []string `json:"roles"`
	}
	if err := rpcCall(tn.url(1), &a, "charter_account", accts[39].Address); err != nil || a.Org != "org0" || !slices.Contains(a.Roles, "write") {
		t.Fatalf("sender 39 after the bench: %+v (%v), want write in org0", a, err)
	}
}

// TestNodeRefusesDevKeysBeyondLoopback: a node whose genesis funds the
// development accounts refuses to serve JSON-RPC on 0.0.0.0 in one line
// that names --allow-dev-keys. The refusal comes before any listener
// opens, so the test binds nothing beyond 127.0.0.1; that the flag lets
// such a node start is checked without a listener by TestDevKeysOnlyOnLoopback
// in internal/node.
func TestNodeRefusesDevKeysBeyondLoopback(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	rpcPort := freePortBase(t, 1)
	args := []string{"init", "--validators", "1", "--out", dir, "--dev-accounts", "--rpc.port", strconv.Itoa(rpcPort),
		"--p2p.port", strconv.Itoa(freePortBase(t, 1)), "--metrics.port", strconv.Itoa(freePortBase(t, 1))}
	if out, err := exec.Command(charterBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("charter init: %v\n%s", err, out)
	}
	home := filepath.Join(dir, "node0")
	cfgPath := filepath.Join(home, node.ConfigFile)
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	loop := `"rpcAddr": "127.0.0.1:` + strconv.Itoa(rpcPort) + `"`
	wide := strings.Replace(string(cfg), loop, `"rpcAddr": "0.0.0.0:`+strconv.Itoa(rpcPort)+`"`, 1)
	if wide == string(cfg) {
		t.Fatalf("%s not in %s", loop, cfg)
	}
	if err := os.WriteFile(cfgPath, []byte(wide), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	out, err := exec.CommandContext(ctx, charterBin, "node", "--home", home).CombinedOutput()
	cancel()
	line := strings.TrimSpace(string(out))
	if err == nil || strings.Contains(line, "\n") || !strings.Contains(line, "pass --allow-dev-keys") ||
		!strings.Contains(line, "0.0.0.0:"+strconv.Itoa(rpcPort)+" is reachable from other machines") {
		t.Fatalf("node with dev keys on 0.0.0.0: %v, want one line naming --allow-dev-keys:\n%s", err, out)
	}

}
