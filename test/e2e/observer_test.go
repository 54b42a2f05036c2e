package e2e

import (
	"context"
	"errors"
	"math/big"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/charter-ledger/charter/internal/chain"
)

// TestRaftObserverFollowsAndNeverVotes runs 3 raft validators and one
// observer (a raft learner): transactions sent to the observer reach the
// chain, the observer holds the same blocks, and it is no part of a quorum.
func TestRaftObserverFollowsAndNeverVotes(t *testing.T) {
	const validators, obs = 3, 3 // node3 is the observer
	dir := filepath.Join(t.TempDir(), "net")
	args := []string{"init", "--validators", "3", "--observers", "1", "--consensus", "raft", "--out", dir, "--block-time", "200ms", "--dev-accounts",
		"--rpc.port", strconv.Itoa(freePortBase(t, 4)), "--p2p.port", strconv.Itoa(freePortBase(t, 4)), "--metrics.port", strconv.Itoa(freePortBase(t, 4))}
	if out, err := exec.Command(charterBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("charter init: %v\n%s", err, out)
	}
	tn := runTestnet(t, dir)
	if len(tn.ep.Nodes) != 4 {
		t.Fatalf("endpoints.json lists %d nodes, want 4", len(tn.ep.Nodes))
	}
	waitFor(t, 30*time.Second, "the observer connected to the validators", func() bool {
		c, err := peerCount(tn.url(obs))
		return err == nil && c == validators
	})
	// Transactions submitted to the observer are forwarded to the leader.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, charterBin, "bench", "--rpc", tn.url(obs), "--txs", "200", "--senders", "5").CombinedOutput(); err != nil {
		t.Fatalf("charter bench through the observer: %v\n%s", err, out)
	}
	top, err := height(tn.url(0))
	if err != nil {
		t.Fatal(err)
	}
	tn.waitAllReach(top, 30*time.Second)
	tn.checkAgreement(top, nil)

	// Two of three validators down: the observer does not make a quorum,
	// so a transaction waits; with them back it is committed.
	tn.kill9(1)
	tn.kill9(2)
	client, err := ethclient.Dial(tn.url(obs))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	accts, _ := chain.DevAccounts(chain.DevAccountCount)
	key := accts[19].Key
	nonce, err := client.PendingNonceAt(ctx, accts[19].Address)
	if err != nil {
		t.Fatal(err)
	}
	to := common.Address{0x0b}
	tx := types.MustSignNewTx(key, types.LatestSignerForChainID(big.NewInt(1337)), &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce,
		Gas: 21000, GasFeeCap: big.NewInt(2), GasTipCap: big.NewInt(1), To: &to, Value: big.NewInt(1)})
	if err := client.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) { // a window in which nothing may commit
		if _, err := client.TransactionReceipt(ctx, tx.Hash()); !errors.Is(err, ethereum.NotFound) {
			t.Fatalf("a transaction was committed with one validator and an observer (err %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	tn.restart(1)
	tn.restart(2)
	waitFor(t, 60*time.Second, "the waiting transaction committed after the validators returned", func() bool {
		_, err := client.TransactionReceipt(ctx, tx.Hash())
		return err == nil
	})
	top, _ = height(tn.url(0))
	tn.waitAllReach(top, 60*time.Second)
	tn.checkAgreement(top, nil)
}
