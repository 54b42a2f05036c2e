package e2e

import (
	"context"
	"errors"
	"math/big"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// TestBFTAndPoAObservers runs `charter testnet` networks of 4 validators
// and one observer (node4, of the read-tier organization init makes) as
// processes: transactions sent through the observer are committed, it
// holds the same blocks and answers the confirmation levels, the
// validators go on with it killed, and restarted it catches up.
func TestBFTAndPoAObservers(t *testing.T) {
	for _, engine := range []string{"bft", "poa"} {
		t.Run(engine, func(t *testing.T) {
			const validators, obs = 4, 4
			dir := filepath.Join(t.TempDir(), "net")
			args := []string{"init", "--validators", "4", "--observers", "1", "--consensus", engine, "--out", dir, "--block-time", "250ms", "--dev-accounts",
				"--rpc.port", strconv.Itoa(freePortBase(t, 5)), "--p2p.port", strconv.Itoa(freePortBase(t, 5)), "--metrics.port", strconv.Itoa(freePortBase(t, 5))}
			if out, err := exec.Command(charterBin, args...).CombinedOutput(); err != nil {
				t.Fatalf("charter init: %v\n%s", err, out)
			}
			tn := runTestnet(t, dir)
			if len(tn.ep.Nodes) != 5 || tn.ep.Nodes[obs].Org != "observers" {
				t.Fatalf("endpoints.json: %+v", tn.ep.Nodes)
			}
			waitFor(t, 30*time.Second, "the observer connected to the validators", func() bool {
				c, err := peerCount(tn.url(obs))
				return err == nil && c == validators
			})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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
			var fin struct {
				Number    string `json:"number"`
				Committed bool   `json:"committed"`
			}
			if err := rpcCall(tn.url(obs), &fin, "charter_head", "finalized"); err != nil || !fin.Committed {
				t.Fatalf("charter_head(finalized) on the observer: %+v %v", fin, err)
			}
			if n, err := strconv.ParseUint(strings.TrimPrefix(fin.Number, "0x"), 16, 64); err != nil || n < top {
				t.Fatalf("finalized %s on the observer, below %d", fin.Number, top)
			}

			// The observer killed: the validators go on.
			tn.kill9(obs)
			before, _ := height(tn.url(0))
			if out, err := exec.CommandContext(ctx, charterBin, "bench", "--rpc", tn.url(0), "--txs", "50", "--senders", "5").CombinedOutput(); err != nil {
				t.Fatalf("charter bench without the observer: %v\n%s", err, out)
			}
			waitFor(t, 30*time.Second, "the validators go on without the observer", func() bool {
				h, err := height(tn.url(0))
				return err == nil && h >= before+3
			})
			// Restarted, it catches up and agrees.
			tn.restart(obs)
			top, _ = height(tn.url(0))
			tn.waitAllReach(top, 60*time.Second)
			tn.checkAgreement(top, nil)
			if log := tn.logOf(obs); !strings.Contains(log, "role=observer") {
				t.Fatalf("the restarted observer's start line does not name its role:\n%s", log)
			}
		})
	}
}
