package node

import (
	"crypto/ecdsa"
	"io"
	"log/slog"
	"math/big"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/chain"
)

// benchNode is a node without RPC whose blocks the benchmark seals itself,
// through the same BuildBlock and CommitBlock the engines call.
type benchNode struct {
	*Node
	keys   []*ecdsa.PrivateKey
	addrs  []common.Address
	signer types.Signer
	funded int // accounts funded in the genesis besides the senders
	// started is how long the node took to start on its new data
	// directory: writing the genesis dominates it when the genesis funds
	// many accounts (reported as genesis-s).
	started time.Duration
	// stateBytes is the bytes of the genesis state's trie nodes in the
	// store's tables (ledger.StateDiskBytes), reported as state-disk-MB.
	stateBytes uint64
}

// benchAccounts is CHARTER_BENCH_ACCOUNTS: how many accounts, besides the
// senders, the benchmark chain's genesis funds (0 by default), to measure
// throughput with a large state.
func benchAccounts(b *testing.B) int {
	v := os.Getenv("CHARTER_BENCH_ACCOUNTS")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		b.Fatalf("CHARTER_BENCH_ACCOUNTS=%q: want a count of accounts", v)
	}
	return n
}

// fundedAccount is the i-th account the genesis funds besides the senders.
func fundedAccount(i int) common.Address {
	return common.BigToAddress(new(big.Int).Add(big.NewInt(int64(i)), new(big.Int).Lsh(big.NewInt(1), 64)))
}

// recipient is the receiver of the i-th benchmark transfer: one of the
// funded accounts, spread over all of them, when there are any (every
// transfer then updates an existing account somewhere in a large trie),
// else one of 5,000 fresh addresses.
func (bn *benchNode) recipient(i int) common.Address {
	if bn.funded > 0 {
		return fundedAccount(int(uint64(i) * 2654435761 % uint64(bn.funded)))
	}
	return common.BigToAddress(big.NewInt(int64(i%5000 + 1000)))
}

func newBenchNode(b *testing.B, senders int) *benchNode {
	b.Helper()
	spec, err := chain.DevSpec(1337, 1000)
	if err != nil {
		b.Fatal(err)
	}
	bn := &benchNode{signer: types.LatestSignerForChainID(big.NewInt(1337)), funded: benchAccounts(b)}
	if b.N == 1 {
		// go test's first call of a benchmark, with b.N=1, only probes
		// it (its figures are not reported, -benchtime Nx included): it
		// runs on the plain genesis rather than write a large one twice.
		bn.funded = 0
	}
	for i := 0; i < bn.funded; i++ {
		spec.Alloc[fundedAccount(i)] = types.Account{Balance: big.NewInt(1)}
	}
	for i := 0; i < senders; i++ {
		key, _ := crypto.GenerateKey()
		bn.keys = append(bn.keys, key)
		bn.addrs = append(bn.addrs, crypto.PubkeyToAddress(key.PublicKey))
		spec.Alloc[bn.addrs[i]] = types.Account{Balance: new(big.Int).Mul(big.NewInt(1000), big.NewInt(params.Ether))}
	}
	cfg := Config{DataDir: b.TempDir(), Spec: spec, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	// CHARTER_BENCH_STATE=N|all is the node's --state.history (default:
	// the bounded window).
	if v := os.Getenv("CHARTER_BENCH_STATE"); v != "" {
		if cfg.StateHistory, err = ParseStateHistory(v); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	n, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	bn.started = time.Since(start)
	b.Cleanup(n.Stop)
	if bn.stateBytes, err = n.ledger.StateDiskBytes(); err != nil {
		b.Fatal(err)
	}
	bn.Node = n
	if bn.funded > 0 && os.Getenv("CHARTER_BENCH_COLD") == "" {
		warmState(b, n)
	}
	return bn
}

// warmState reads every account and trie node of the head state once,
// untimed, so that the ledger's caches hold what fits of them, as they
// do on a node that has run for a while; without it the timed blocks
// would measure a node just started on a new genesis, whose every read
// goes to the store (CHARTER_BENCH_COLD=1 measures that).
func warmState(b *testing.B, n *Node) {
	root := n.ledger.Head().Root
	reader, err := n.ledger.TrieDB().StateReader(root)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := trie.New(trie.StateTrieID(root), n.ledger.TrieDB())
	if err != nil {
		b.Fatal(err)
	}
	it, err := tr.NodeIterator(nil)
	if err != nil {
		b.Fatal(err)
	}
	for it.Next(true) {
		if it.Leaf() {
			if _, err := reader.Account(common.BytesToHash(it.LeafKey())); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := it.Error(); err != nil {
		b.Fatal(err)
	}
}

// admit recovers senders on every core and adds the transactions to the
// pool, as concurrent JSON-RPC submissions do.
func (bn *benchNode) admit(b *testing.B, txs []*types.Transaction) {
	workers := runtime.GOMAXPROCS(0)
	froms := make([]common.Address, len(txs))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(txs); i += workers {
				from, err := bn.pool.ValidateBasic(txs[i])
				if err != nil {
					b.Error(err)
					return
				}
				froms[i] = from
			}
		}(w)
	}
	wg.Wait()
	for i, err := range bn.pool.AddBatch(txs, froms) {
		if err != nil {
			b.Fatalf("tx %d: %v", i, err)
		}
	}
}

// sealAll builds and commits blocks until the pool is empty.
func (bn *benchNode) sealAll(b *testing.B) (blocks int) {
	for {
		if p, _ := bn.pool.Stats(); p == 0 {
			return blocks
		}
		blk, err := bn.chain.BuildBlock(bn.chain.Head(), uint64(time.Now().Unix()), bn.self)
		if err != nil {
			b.Fatal(err)
		}
		if len(blk.Transactions()) == 0 {
			b.Fatal("pool has pending transactions but the block is empty")
		}
		if err := bn.chain.CommitBlock(blk, nil); err != nil {
			b.Fatal(err)
		}
		blocks++
	}
}

func (bn *benchNode) signTxs(count int, nonces []uint64, to func(i int) (common.Address, []byte, uint64)) []*types.Transaction {
	txs := make([]*types.Transaction, count)
	for i := range txs {
		s := i % len(bn.keys)
		addr, data, gas := to(i)
		txs[i] = types.MustSignNewTx(bn.keys[s], bn.signer, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonces[s], Gas: gas,
			GasFeeCap: big.NewInt(1), GasTipCap: new(big.Int), To: &addr, Value: big.NewInt(1), Data: data})
		nonces[s]++
	}
	// Senders are recovered again on admission: drop the signing cache by
	// re-decoding, as transactions arriving over the network are.
	for i, tx := range txs {
		raw, _ := tx.MarshalBinary()
		fresh := new(types.Transaction)
		if err := fresh.UnmarshalBinary(raw); err != nil {
			panic(err)
		}
		txs[i] = fresh
	}
	return txs
}

// profileTimed starts a CPU profile of the timed part of a benchmark
// into the file CHARTER_BENCH_CPUPROFILE names (the test binary's
// -cpuprofile covers the setup too, which a genesis of a million
// accounts dominates); the returned func stops it.
func profileTimed(b *testing.B) (stop func()) {
	path := os.Getenv("CHARTER_BENCH_CPUPROFILE")
	if path == "" || b.N == 1 {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// BenchmarkBlockTransfers measures admission (sender recovery on every
// core), block building (EVM) and commit (state root, pebble, fsync) of
// plain transfers, in blocks as large as the pool allows. With
// CHARTER_BENCH_ACCOUNTS=N the state holds N more funded accounts and the
// transfers go to them.
func BenchmarkBlockTransfers(b *testing.B) {
	bn := newBenchNode(b, 2000)
	nonces := make([]uint64, len(bn.keys))
	txs := bn.signTxs(b.N, nonces, func(i int) (common.Address, []byte, uint64) {
		return bn.recipient(i), nil, 21000
	})
	b.ResetTimer()
	stopProfile := profileTimed(b)
	start := time.Now()
	bn.admit(b, txs)
	admitted := time.Since(start)
	blocks := bn.sealAll(b)
	b.StopTimer()
	stopProfile()
	total := time.Since(start)
	b.ReportMetric(float64(b.N)/total.Seconds(), "tx/s")
	b.ReportMetric(float64(b.N)/(total-admitted).Seconds(), "exec+commit-tx/s")
	b.ReportMetric(float64(blocks), "blocks")
	b.ReportMetric(bn.started.Seconds(), "genesis-s")
	b.ReportMetric(float64(bn.stateBytes)/(1<<20), "state-disk-MB")
}

// BenchmarkBlockERC20 is BenchmarkBlockTransfers for ERC-20 transfers
// between holders of the bench token.
func BenchmarkBlockERC20(b *testing.B) {
	bn := newBenchNode(b, 2000)
	nonces := make([]uint64, len(bn.keys))
	// Setup, not timed: deploy and give every sender tokens.
	deploy := types.MustSignNewTx(bn.keys[0], bn.signer, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 0, Gas: 3_000_000,
		GasFeeCap: big.NewInt(1), GasTipCap: new(big.Int), Data: token.DeployData(new(big.Int).Lsh(big.NewInt(1), 200))})
	nonces[0]++
	tokenAddr := crypto.CreateAddress(bn.addrs[0], 0)
	setup := []*types.Transaction{deploy}
	for i := 1; i < len(bn.keys); i++ {
		setup = append(setup, types.MustSignNewTx(bn.keys[0], bn.signer, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonces[0], Gas: 100_000,
			GasFeeCap: big.NewInt(1), GasTipCap: new(big.Int), To: &tokenAddr, Data: token.TransferData(bn.addrs[i], new(big.Int).Lsh(big.NewInt(1), 100))}))
		nonces[0]++
	}
	bn.admit(b, setup)
	bn.sealAll(b)
	txs := bn.signTxs(b.N, nonces, func(i int) (common.Address, []byte, uint64) {
		return tokenAddr, token.TransferData(bn.recipient(i), big.NewInt(1)), 100_000
	})
	b.ResetTimer()
	stopProfile := profileTimed(b)
	start := time.Now()
	bn.admit(b, txs)
	admitted := time.Since(start)
	blocks := bn.sealAll(b)
	b.StopTimer()
	stopProfile()
	total := time.Since(start)
	b.ReportMetric(float64(b.N)/total.Seconds(), "tx/s")
	b.ReportMetric(float64(b.N)/(total-admitted).Seconds(), "exec+commit-tx/s")
	b.ReportMetric(float64(blocks), "blocks")
	b.ReportMetric(bn.started.Seconds(), "genesis-s")
	b.ReportMetric(float64(bn.stateBytes)/(1<<20), "state-disk-MB")
}

// BenchmarkSenderRecovery is the single-core rate of secp256k1 sender
// recovery on this machine: the yardstick that makes figures from
// different machines comparable.
func BenchmarkSenderRecovery(b *testing.B) {
	key, _ := crypto.GenerateKey()
	signer := types.LatestSignerForChainID(big.NewInt(1337))
	to := common.Address{1}
	raw, _ := types.MustSignNewTx(key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Gas: 21000, GasFeeCap: big.NewInt(1), GasTipCap: new(big.Int), To: &to}).MarshalBinary()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tx := new(types.Transaction)
		if err := tx.UnmarshalBinary(raw); err != nil {
			b.Fatal(err)
		}
		if _, err := types.Sender(signer, tx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "recoveries/s")
}
