package e2e

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/charter-ledger/charter/internal/identity"
)

// charter runs the CLI and returns its stdout; a non-zero exit fails t
// unless wantErr, in which case stderr is returned.
func charter(t *testing.T, wantErr bool, args ...string) string {
	t.Helper()
	cmd := exec.Command(charterBin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if wantErr {
		if err == nil {
			t.Fatalf("charter %s succeeded, want a failure; stdout: %s", strings.Join(args, " "), out.String())
		}
		return errb.String()
	}
	if err != nil {
		t.Fatalf("charter %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

type proposalView struct {
	ID          uint64 `json:"id"`
	Status      string `json:"status"`
	ActivatesAt uint64 `json:"activatesAt"`
	Result      string `json:"result"`
}

func showProposal(t *testing.T, url string, id uint64) proposalView {
	t.Helper()
	var p proposalView
	if err := json.Unmarshal([]byte(charter(t, false, "gov", "show", strconv.FormatUint(id, 10), "--rpc", url, "--json")), &p); err != nil {
		t.Fatalf("gov show --json: %v", err)
	}
	return p
}

// proposeJSON runs `charter gov propose ... --json` and returns the id.
func proposeJSON(t *testing.T, args ...string) uint64 {
	t.Helper()
	var res struct {
		Proposal uint64 `json:"proposal"`
	}
	out := charter(t, false, append([]string{"gov", "propose"}, append(args, "--json")...)...)
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Proposal == 0 {
		t.Fatalf("gov propose --json printed %q: %v", out, err)
	}
	return res.Proposal
}

type memberView struct {
	Organizations []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	} `json:"organizations"`
	Validators       []common.Address `json:"validators"`
	ValidatorChanges []struct {
		From uint64           `json:"from"`
		IDs  []common.Address `json:"ids"`
	} `json:"validatorChanges"`
}

func members(t *testing.T, url string) memberView {
	t.Helper()
	var m memberView
	if err := json.Unmarshal([]byte(charter(t, false, "members", "--rpc", url, "--json")), &m); err != nil {
		t.Fatalf("members --json: %v", err)
	}
	return m
}

// transfer sends value from key to `to` and waits for its receipt.
func transfer(t *testing.T, url string, key *ecdsa.PrivateKey, to common.Address, value *big.Int) error {
	t.Helper()
	c, err := ethclient.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := c.PendingNonceAt(ctx, from)
	if err != nil {
		return err
	}
	id, err := c.ChainID(ctx)
	if err != nil {
		return err
	}
	tx, _ := types.SignNewTx(key, types.LatestSignerForChainID(id), &types.DynamicFeeTx{ChainID: id, Nonce: nonce, To: &to,
		Value: value, Gas: 21000, GasFeeCap: big.NewInt(1_000_000_000), GasTipCap: big.NewInt(1)})
	if err := c.SendTransaction(ctx, tx); err != nil {
		return err
	}
	for {
		if r, err := c.TransactionReceipt(ctx, tx.Hash()); err == nil {
			if r.Status != 1 {
				return fmt.Errorf("transfer %s failed", tx.Hash())
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestGovernanceJoinAndExit is the consortium's lifecycle on a
// 4-organization bft network of processes, driven through the CLI as the
// README shows: a fifth organization prepares its node with `charter
// join`, is admitted with its validator by a 3-of-4 vote, and its node
// validates after the epoch boundary (the chain goes on with one original
// validator killed, which needs the newcomer's vote); then org3 is voted
// out: its node is disconnected, its accounts are refused, its blocks
// remain.
func TestGovernanceJoinAndExit(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process network test")
	}
	dir := initNetwork(t, "bft", 4, "--block-time", "200ms")
	tn := runTestnet(t, dir)
	url := tn.url(0)
	adminKey := func(k int) string { return filepath.Join(dir, "orgs", "org"+strconv.Itoa(k), "admin-account.key") }
	tn.waitAllReach(2, 30*time.Second)

	// An account the registry does not list cannot transact.
	stranger, _ := crypto.GenerateKey()
	if err := transfer(t, url, stranger, common.Address{1}, big.NewInt(0)); err == nil || !strings.Contains(err.Error(), "not permitted") || !strings.Contains(err.Error(), "lacks role write") {
		t.Fatalf("unlisted account: %v, want not permitted: ... lacks role write", err)
	}

	// org4 prepares its CA, admin account and node.
	orgDir := filepath.Join(filepath.Dir(dir), "org4")
	ports := freePortBase(t, 2)
	out := charter(t, false, "join", "--genesis", filepath.Join(dir, "genesis.json"), "--peers", filepath.Join(dir, "peers.json"),
		"--org", "org4", "--out", orgDir, "--rpc.port", strconv.Itoa(ports), "--p2p.port", strconv.Itoa(ports+1))
	if !strings.Contains(out, "charter gov propose add-organization") {
		t.Fatalf("join did not print the proposal to make:\n%s", out)
	}
	var jr struct {
		Roots       string         `json:"roots"`
		Admin       common.Address `json:"admin"`
		AdminKey    string         `json:"adminKey"`
		NodeID      common.Address `json:"nodeId"`
		Fingerprint common.Hash    `json:"fingerprint"`
		Home        string         `json:"home"`
		RPCAddr     string         `json:"rpcAddr"`
		PrivacyPub  string         `json:"privacyKeyFile"`
	}
	raw, err := os.ReadFile(filepath.Join(orgDir, "join.json"))
	if err != nil || json.Unmarshal(raw, &jr) != nil {
		t.Fatalf("join.json: %v", err)
	}

	// org0 proposes; org0, org1, org2 vote: 3 of 4.
	id := proposeJSON(t, "add-organization", "--name", "org4", "--roots", jr.Roots, "--tier", "validate", "--weight", "1",
		"--admin", jr.Admin.Hex(), "--node", jr.NodeID.Hex(), "--fingerprint", jr.Fingerprint.Hex(), "--validator", jr.NodeID.Hex(),
		"--privacy-key", jr.PrivacyPub, "--memo", "admit org4", "--key", adminKey(0), "--rpc", url)
	for k := 0; k < 3; k++ {
		if k == 2 {
			if p := showProposal(t, url, id); p.Status != "open" {
				t.Fatalf("after 2 of 4 votes proposal %d is %s, want open", id, p.Status)
			}
			// A second vote of org1 is refused with the reason.
			if msg := charter(t, true, "gov", "vote", strconv.FormatUint(id, 10), "yes", "--key", adminKey(1), "--rpc", tn.url(1)); !strings.Contains(msg, "voted") {
				t.Fatalf("double vote: %q, want a reason naming the earlier vote", msg)
			}
		}
		charter(t, false, "gov", "vote", strconv.FormatUint(id, 10), "yes", "--key", adminKey(k), "--rpc", tn.url(k))
	}
	waitFor(t, 30*time.Second, "admission executed", func() bool { return showProposal(t, url, id).Status == "executed" })
	m := members(t, url)
	last := m.ValidatorChanges[len(m.ValidatorChanges)-1]
	if len(last.IDs) != 5 || last.IDs[4] != jr.NodeID || last.From%10 != 0 {
		t.Fatalf("validator changes %+v: want org4's node added at an epoch boundary", m.ValidatorChanges)
	}
	t.Logf("org4 admitted by proposal %d; its validator counts from height %d", id, last.From)

	// org4's node starts, syncs and, after the boundary, takes part.
	logf, err := os.Create(filepath.Join(jr.Home, "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	n4 := exec.Command(charterBin, "node", "--home", jr.Home)
	n4.Stdout, n4.Stderr = logf, logf
	if err := n4.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	t.Cleanup(func() { n4.Process.Signal(os.Interrupt); waitExit(n4, 30*time.Second) })
	url4 := "http://" + jr.RPCAddr
	tn.waitAllReach(last.From+2, 60*time.Second)
	waitFor(t, 60*time.Second, "org4's node synced past the boundary", func() bool { h, err := height(url4); return err == nil && h >= last.From+2 })

	// With 5 validators a quorum is 4: kill -9 node1 and the chain goes on
	// only with org4's node voting.
	tn.kill9(1)
	h1, _ := height(url)
	waitFor(t, 60*time.Second, "progress without node1, which needs org4's vote", func() bool { h, err := height(url); return err == nil && h >= h1+5 })
	tn.restart(1)

	// org0's admin sends org4's admin gas money, as the README shows.
	charter(t, false, "send", "--to", jr.Admin.Hex(), "--value", "1", "--key", adminKey(0), "--rpc", url)

	// org3 is voted out by org0, org1, org2 and org4: 4 of 5.
	exitAt, _ := height(tn.url(3))
	before := blockHash(t, url, exitAt)
	out2 := proposeJSON(t, "remove-organization", "--name", "org3", "--memo", "org3 leaves", "--key", adminKey(0), "--rpc", url)
	for _, v := range []struct{ key, url string }{{adminKey(0), url}, {adminKey(1), tn.url(1)}, {adminKey(2), tn.url(2)}, {jr.AdminKey, url4}} {
		charter(t, false, "gov", "vote", strconv.FormatUint(out2, 10), "yes", "--key", v.key, "--rpc", v.url)
	}
	waitFor(t, 30*time.Second, "exit executed", func() bool { return showProposal(t, url, out2).Status == "executed" })
	waitFor(t, 30*time.Second, "org3's node disconnected from every peer", func() bool { n, err := peerCount(tn.url(3)); return err == nil && n == 0 })
	if err := transfer(t, url, mustKey(t, adminKey(3)), common.Address{2}, big.NewInt(1)); err == nil || !strings.Contains(err.Error(), "not permitted") {
		t.Fatalf("exited organization's account: %v, want not permitted", err)
	}
	if got := blockHash(t, url, exitAt); got != before {
		t.Fatalf("block %d changed from %s to %s", exitAt, before, got)
	}
	for _, o := range members(t, url).Organizations {
		if o.Name == "org3" && o.Status != "exited" {
			t.Fatalf("org3 is %s, want exited", o.Status)
		}
	}
	// The chain goes on with org0, org1, org2 and org4 after the next boundary.
	hist := charter(t, false, "gov", "history", "--rpc", url)
	for _, want := range []string{"proposed", "voted", "passed", "executed"} {
		if !strings.Contains(hist, want) {
			t.Fatalf("gov history lacks %q:\n%s", want, hist)
		}
	}
	h, _ := height(url)
	for _, u := range []string{url, tn.url(1), tn.url(2), url4} {
		waitFor(t, 60*time.Second, "progress after the exit", func() bool { x, err := height(u); return err == nil && x >= h+12 })
	}
	for hh := uint64(1); hh <= h; hh++ {
		want := blockHash(t, url, hh)
		for _, u := range []string{tn.url(1), tn.url(2), url4} {
			if got := blockHash(t, u, hh); got != want {
				t.Fatalf("block %d: %s on %s, %s on node0", hh, got, u, want)
			}
		}
	}
}

func blockHash(t *testing.T, url string, n uint64) common.Hash {
	t.Helper()
	var b struct {
		Hash common.Hash `json:"hash"`
	}
	if err := rpcCall(url, &b, "eth_getBlockByNumber", fmt.Sprintf("0x%x", n), false); err != nil {
		t.Fatalf("block %d from %s: %v", n, url, err)
	}
	return b.Hash
}

func mustKey(t *testing.T, path string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := identity.LoadNodeKey(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
