package e2e

import (
	"context"
	"math/big"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

const senders = 4

var recipients = func() []common.Address {
	out := make([]common.Address, 8)
	for i := range out {
		out[i] = common.BigToAddress(big.NewInt(int64(0xC0FFEE00 + i)))
	}
	return out
}()

// sentTx is what a client knows about a transaction it submitted.
type sentTx struct {
	hash  common.Hash
	block common.Hash // set once a receipt was returned
}

// load submits transfers from the first `senders` development accounts
// until stop closes or the node goes away, and polls receipts. It returns
// every transaction it sent, with the block of those whose receipt came.
func load(t *testing.T, url string, seed int64, stop <-chan struct{}) []*sentTx {
	accts, _ := chain.DevAccounts(senders)
	signer := types.LatestSignerForChainID(big.NewInt(1337))
	rc, err := gethrpc.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	client := ethclient.NewClient(rc)
	var (
		mu   sync.Mutex
		sent []*sentTx
		wg   sync.WaitGroup
	)
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed + int64(s)))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			nonce, err := client.PendingNonceAt(ctx, accts[s].Address)
			if err != nil {
				return
			}
			for i := 0; i < 100_000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				to := recipients[rng.Intn(len(recipients))]
				tx := types.MustSignNewTx(accts[s].Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce, Gas: 21000,
					GasFeeCap: big.NewInt(1), GasTipCap: new(big.Int), To: &to, Value: big.NewInt(rng.Int63n(1_000_000) + 1)})
				if err := client.SendTransaction(ctx, tx); err != nil {
					return // the node is gone
				}
				mu.Lock()
				sent = append(sent, &sentTx{hash: tx.Hash()})
				mu.Unlock()
				nonce++
			}
		}(s)
	}
	// Receipt poller: batch-asks for the receipts of unconfirmed transactions.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			mu.Lock()
			var pending []*sentTx
			for _, s := range sent {
				if s.block == (common.Hash{}) && len(pending) < 500 {
					pending = append(pending, s)
				}
			}
			mu.Unlock()
			if len(pending) == 0 {
				continue
			}
			batch := make([]gethrpc.BatchElem, len(pending))
			results := make([]*types.Receipt, len(pending))
			for i, s := range pending {
				batch[i] = gethrpc.BatchElem{Method: "eth_getTransactionReceipt", Args: []any{s.hash}, Result: &results[i]}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := rc.BatchCallContext(ctx, batch)
			cancel()
			if err != nil {
				return // the node is gone
			}
			mu.Lock()
			for i, r := range results {
				if batch[i].Error == nil && r != nil {
					pending[i].block = r.BlockHash
				}
			}
			mu.Unlock()
		}
	}()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return sent
}

// checkChain verifies the whole chain of a running node: linked blocks,
// every transaction once, nonces matching the transactions in the chain,
// supply conserved, and every acknowledged transaction where its receipt
// said.
func checkChain(t *testing.T, url string, acked []*sentTx) {
	t.Helper()
	client, err := ethclient.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	head, err := client.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	accts, _ := chain.DevAccounts(senders)
	seen := make(map[common.Hash]common.Hash, 1024)
	perSender := make(map[common.Address]uint64)
	signer := types.LatestSignerForChainID(big.NewInt(1337))
	var parent common.Hash
	for n := uint64(0); n <= head; n++ {
		blk, err := client.BlockByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		if n > 0 && blk.ParentHash() != parent {
			t.Fatalf("block %d does not link to block %d", n, n-1)
		}
		parent = blk.Hash()
		for _, tx := range blk.Transactions() {
			if _, dup := seen[tx.Hash()]; dup {
				t.Fatalf("transaction %s twice in the chain", tx.Hash())
			}
			seen[tx.Hash()] = blk.Hash()
			from, _ := types.Sender(signer, tx)
			perSender[from]++
		}
	}
	total := new(big.Int)
	for _, a := range accts {
		nonce, err := client.NonceAt(ctx, a.Address, nil)
		if err != nil || nonce != perSender[a.Address] {
			t.Fatalf("nonce of %s = %d (%v), chain holds %d of its transactions", a.Address, nonce, err, perSender[a.Address])
		}
		bal, _ := client.BalanceAt(ctx, a.Address, nil)
		total.Add(total, bal)
	}
	for _, r := range recipients {
		bal, _ := client.BalanceAt(ctx, r, nil)
		total.Add(total, bal)
	}
	// Every transfer burns 21,000 gas at the base fee of 1 wei and tips nothing.
	burned := uint64(0)
	for _, n := range perSender {
		burned += n * 21000 * chain.DefaultBaseFeeWei
	}
	total.Add(total, new(big.Int).SetUint64(burned))
	want := new(big.Int).Mul(chain.DevBalance, big.NewInt(senders))
	if total.Cmp(want) != 0 {
		t.Fatalf("supply not conserved: senders and recipients hold %v plus %d burned, want %v", total, burned, want)
	}
	for _, s := range acked {
		if s.block == (common.Hash{}) {
			continue
		}
		if got, ok := seen[s.hash]; !ok || got != s.block {
			t.Fatalf("acknowledged transaction %s lost or moved (block %s, receipt said %s)", s.hash, got, s.block)
		}
	}
}

// TestKillDuringLoad kills `charter dev` with SIGKILL at random instants
// under load and restarts it on the same data directory: every transaction
// whose receipt was returned is still there, and the chain is consistent.
func TestKillDuringLoad(t *testing.T) {
	rounds := 3
	if os.Getenv("CHARTER_SOAK") != "" {
		rounds = 100
	}
	seed := simnet.Seed(t) // kill instants and load; CHARTER_SEED repeats them
	rng := rand.New(rand.NewSource(seed))
	dir := t.TempDir()
	var acked []*sentTx
	for round := 0; round < rounds; round++ {
		p := startDev(t, "--datadir", dir)
		if round > 0 {
			checkChain(t, p.url, acked)
		}
		stop := make(chan struct{})
		done := make(chan []*sentTx, 1)
		go func() { done <- load(t, p.url, seed+int64(round)*100, stop) }()
		time.Sleep(time.Duration(200+rng.Intn(1300)) * time.Millisecond)
		p.kill()
		close(stop)
		sent := <-done
		n := 0
		for _, s := range sent {
			if s.block != (common.Hash{}) {
				n++
			}
		}
		acked = append(acked, sent...)
		t.Logf("round %d: %d sent, %d acknowledged before kill -9", round, len(sent), n)
	}
	p := startDev(t, "--datadir", dir)
	checkChain(t, p.url, acked)
	p.terminate(t)
}

// TestCleanShutdownKeepsEverything stops with SIGTERM under load.
func TestCleanShutdownKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	p := startDev(t, "--datadir", dir)
	stop := make(chan struct{})
	done := make(chan []*sentTx, 1)
	go func() { done <- load(t, p.url, 7, stop) }()
	time.Sleep(500 * time.Millisecond)
	p.terminate(t)
	close(stop)
	sent := <-done
	p = startDev(t, "--datadir", dir)
	checkChain(t, p.url, sent)
}

// TestBadStartsFailWithOneLine checks that a node that cannot start says
// why in one line and exits non-zero.
func TestBadStartsFailWithOneLine(t *testing.T) {
	corrupt := t.TempDir()
	p := startDev(t, "--datadir", corrupt)
	p.terminate(t)
	// Damage every table and manifest of the store.
	files, _ := filepath.Glob(filepath.Join(corrupt, "chaindata", "*"))
	for _, f := range files {
		if strings.Contains(f, "MANIFEST") || strings.HasSuffix(f, ".sst") || strings.HasSuffix(f, ".log") || strings.Contains(f, "CURRENT") {
			os.WriteFile(f, []byte("garbage"), 0o644)
		}
	}
	other := t.TempDir()
	startDev(t, "--datadir", other, "--chain-id", "5").terminate(t)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"corrupt data directory", []string{"dev", "--datadir", corrupt, "--http.port", "0"}, "charter dev:"},
		{"another chain in the directory", []string{"dev", "--datadir", other, "--http.port", "0"}, "another chain"},
		{"bad port", []string{"dev", "--http.port", "99999"}, "not a port"},
		{"bad block time", []string{"dev", "--block-time", "1ns"}, "--block-time"},
		{"unknown flag", []string{"dev", "--nope"}, "flag provided but not defined"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, charterBin, c.args...).CombinedOutput()
		timedOut := ctx.Err() == context.DeadlineExceeded
		cancel()
		if timedOut {
			t.Errorf("%s: still running after 30s", c.name)
			continue
		}
		if err == nil {
			t.Errorf("%s: exited 0", c.name)
			continue
		}
		if !strings.Contains(string(out), c.want) {
			t.Errorf("%s: output %q does not contain %q", c.name, out, c.want)
		}
		if strings.Contains(string(out), "panic") || strings.Contains(string(out), "goroutine ") {
			t.Errorf("%s: crashed: %s", c.name, out)
		}
	}
}

// TestRPCLimits checks batch and body bounds and that the node serves on.
func TestRPCLimits(t *testing.T) {
	p := startDev(t)
	rc, err := gethrpc.Dial(p.url)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	batch := make([]gethrpc.BatchElem, 1001)
	for i := range batch {
		batch[i] = gethrpc.BatchElem{Method: "eth_chainId", Result: new(string)}
	}
	err = rc.BatchCall(batch)
	if err == nil && batch[0].Error == nil {
		t.Fatal("a batch of 1001 requests was served")
	}
	ok := make([]gethrpc.BatchElem, 1000)
	for i := range ok {
		ok[i] = gethrpc.BatchElem{Method: "eth_blockNumber", Result: new(string)}
	}
	if err := rc.BatchCall(ok); err != nil || ok[999].Error != nil {
		t.Fatalf("a batch of 1000: %v %v", err, ok[999].Error)
	}
	var res string
	err = rc.Call(&res, "eth_sendRawTransaction", "0x"+strings.Repeat("ab", 6<<20))
	if err == nil {
		t.Fatal("a 6 MiB request was served")
	}
	if err := rc.Call(&res, "eth_chainId"); err != nil || res != "0x539" {
		t.Fatalf("node stopped serving: %v", err)
	}
}
