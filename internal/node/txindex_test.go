package node

import (
	"crypto/ecdsa"
	"io"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/p2p"
	"github.com/charter-ledger/charter/internal/txpool"
)

// countingSigner counts sender recoveries. It equals the signer it wraps
// (and the wrapped signer's copies), as go-ethereum's sender cache asks.
type countingSigner struct {
	types.Signer
	n *atomic.Int64
}

func (s countingSigner) Sender(tx *types.Transaction) (common.Address, error) {
	s.n.Add(1)
	return s.Signer.Sender(tx)
}

func (s countingSigner) Equal(o types.Signer) bool {
	if c, ok := o.(countingSigner); ok {
		o = c.Signer
	}
	return s.Signer.Equal(o)
}

// richState funds every account and starts every nonce at 0.
type richState struct{}

func (richState) GetNonce(common.Address) uint64 { return 0 }
func (richState) GetBalance(common.Address) *uint256.Int {
	return new(uint256.Int).Lsh(uint256.NewInt(1), 100)
}
func (richState) GetState(common.Address, common.Hash) common.Hash { return common.Hash{} }

type gossipRig struct {
	nw         *network
	known      knownTxs
	recoveries *atomic.Int64
	signer     types.Signer
	keys       []*ecdsa.PrivateKey
}

// newGossipRig is a node's admission path (network.handleTxs, admit) and
// block verification's view of the pool (knownTxs), without transport,
// engine or chain, over a pool whose recoveries are counted.
func newGossipRig(t *testing.T, idxCount int, idxBytes uint64) *gossipRig {
	t.Helper()
	spec, err := chain.DevSpec(1337, 1000)
	if err != nil {
		t.Fatal(err)
	}
	r := &gossipRig{recoveries: new(atomic.Int64)}
	r.signer = countingSigner{types.LatestSignerForChainID(big.NewInt(1337)), r.recoveries}
	pool := txpool.New(txpool.Config{ChainID: big.NewInt(1337), MaxTxBytes: spec.MaxTxBytes, TxGasLimit: 1 << 24}, r.signer, richState{})
	n := &Node{cfg: Config{Spec: spec}, pool: pool, txIdx: newTxIndex(idxCount, idxBytes),
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), quit: make(chan struct{})}
	r.nw = &network{n: n, remoteQ: make(chan remoteBatch, remoteQueueLen)}
	r.nw.remote.init(1024)
	r.known = knownTxs{Pool: pool, idx: n.txIdx, signer: r.signer}
	for i := 0; i < 4; i++ {
		k, _ := crypto.GenerateKey()
		r.keys = append(r.keys, k)
	}
	return r
}

// txs signs count transfers spread over the rig's keys, nonces from 0.
func (r *gossipRig) txs(t *testing.T, count int) []*types.Transaction {
	t.Helper()
	plain := types.LatestSignerForChainID(big.NewInt(1337))
	var out []*types.Transaction
	for i := 0; i < count; i++ {
		to := common.Address{0xaa}
		tx, err := types.SignNewTx(r.keys[i%len(r.keys)], plain, transfer(uint64(i/len(r.keys)), to, 1))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tx)
	}
	return out
}

// gossipPayload encodes txs as a peer's msgTxs message.
func gossipPayload(t *testing.T, txs []*types.Transaction) []byte {
	t.Helper()
	var raw [][]byte
	for _, tx := range txs {
		b, err := tx.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b)
	}
	p, err := rlp.EncodeToBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// received decodes a block carrying txs as a proposal's receiver does:
// new transaction objects, no sender cached.
func received(t *testing.T, txs []*types.Transaction) *types.Block {
	t.Helper()
	b := types.NewBlockWithHeader(&types.Header{Number: big.NewInt(1)}).WithBody(types.Body{Transactions: txs})
	enc, err := rlp.EncodeToBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	var out types.Block
	if err := rlp.DecodeBytes(enc, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// drain admits every queued batch.
func (r *gossipRig) drain() int {
	n := 0
	for {
		select {
		case b := <-r.nw.remoteQ:
			r.nw.admit(b)
			n++
		default:
			return n
		}
	}
}

// A block whose transactions arrived by gossip but were not admitted yet
// when the block is verified: verification finds them by hash and
// recovers each sender once, on the object admission then uses; a copy
// gossiped after the block committed is dropped without recovery.
func TestGossipedTxRecoveredOncePerNode(t *testing.T) {
	r := newGossipRig(t, 1024, 1<<20)
	txs := r.txs(t, 40)
	r.nw.handleTxs(p2p.NodeID{}, gossipPayload(t, txs)) // queued, not admitted
	if got := r.recoveries.Load(); got != 0 {
		t.Fatalf("%d recoveries before admission, want 0", got)
	}
	block := received(t, txs)
	for i, tx := range block.Transactions() {
		got := r.known.Get(tx.Hash())
		if got == nil {
			t.Fatalf("tx %d of the block not found among the gossiped ones: verification would recover it again", i)
		}
		if got == tx {
			t.Fatalf("tx %d: the block's own object returned", i)
		}
	}
	if got := r.recoveries.Load(); got != int64(len(txs)) {
		t.Fatalf("%d recoveries after verification, want %d", got, len(txs))
	}
	if r.drain() != 1 {
		t.Fatal("the gossip batch was not queued")
	}
	if p, _ := r.nw.n.pool.Stats(); p != len(txs) {
		t.Fatalf("%d pending after admission, want %d", p, len(txs))
	}
	if got := r.recoveries.Load(); got != int64(len(txs)) {
		t.Fatalf("%d recoveries after admission, want %d (admission recovered again)", got, len(txs))
	}
	// Verification after admission takes the pool's objects: no recovery.
	for _, tx := range received(t, txs).Transactions() {
		if r.known.Get(tx.Hash()) == nil {
			t.Fatal("admitted tx not found")
		}
	}
	// The block commits; a late copy from another peer is dropped.
	r.nw.n.txIdx.markCommitted(block.Transactions())
	r.nw.n.pool.Reset(richState{}, txs)
	r.nw.handleTxs(p2p.NodeID{}, gossipPayload(t, txs))
	if n := r.drain(); n != 0 {
		t.Fatalf("%d batches of committed transactions queued", n)
	}
	if got := r.recoveries.Load(); got != int64(len(txs)) {
		t.Fatalf("%d recoveries after a late copy, want %d", got, len(txs))
	}
}

// Gossip admitted before the proposal (the usual order): the pool's
// objects serve verification, and the block's transactions are recovered
// once in all, by admission.
func TestAdmittedThenVerifiedRecoversOnce(t *testing.T) {
	r := newGossipRig(t, 1024, 1<<20)
	txs := r.txs(t, 20)
	r.nw.handleTxs(p2p.NodeID{}, gossipPayload(t, txs))
	r.drain()
	for _, tx := range received(t, txs).Transactions() {
		if r.known.Get(tx.Hash()) == nil {
			t.Fatal("admitted tx not found")
		}
	}
	if got := r.recoveries.Load(); got != int64(len(txs)) {
		t.Fatalf("%d recoveries, want %d", got, len(txs))
	}
}

// The index is keyed by hash, which covers the signature: a block's
// transaction signed differently from a gossiped one (another sender, or
// a signature that recovers nobody) is never replaced by the gossiped
// object, so verification recovers and checks the block's own.
func TestKnownTxsNeverSubstituteADifferentSignature(t *testing.T) {
	r := newGossipRig(t, 1024, 1<<20)
	good := r.txs(t, 1)[0]
	plain := types.LatestSignerForChainID(big.NewInt(1337))
	other, _ := crypto.GenerateKey()
	resigned, err := types.SignTx(good, plain, other) // same payload, another sender
	if err != nil {
		t.Fatal(err)
	}
	v, _, _ := good.RawSignatureValues()
	broken, err := good.WithSignature(plain, append(make([]byte, 64), byte(v.Uint64()))) // r = s = 0
	if err != nil {
		t.Fatal(err)
	}
	r.nw.handleTxs(p2p.NodeID{}, gossipPayload(t, []*types.Transaction{good, broken}))
	if got := r.known.Get(resigned.Hash()); got != nil {
		t.Fatal("a transaction with another signature was found by the gossiped one's content")
	}
	if got := r.known.Get(broken.Hash()); got != nil {
		t.Fatal("a gossiped transaction whose sender cannot be recovered was offered to verification")
	}
	got := r.known.Get(good.Hash())
	if got == nil {
		t.Fatal("the gossiped transaction was not found")
	}
	from, err := types.Sender(plain, got)
	if want := crypto.PubkeyToAddress(r.keys[0].PublicKey); err != nil || from != want {
		t.Fatalf("sender %s, %v; want %s", from, err, want)
	}
	r.drain()
	if p, _ := r.nw.n.pool.Stats(); p != 1 {
		t.Fatalf("%d pending, want only the well-signed one", p)
	}
}

func TestTxIndexBoundsCountAndBytes(t *testing.T) {
	r := newGossipRig(t, 8, 1<<20)
	txs := r.txs(t, 20)
	for _, tx := range txs {
		r.nw.n.txIdx.add(tx)
	}
	if n, _ := r.nw.n.txIdx.len(); n != 8 {
		t.Fatalf("%d entries, want the bound 8", n)
	}
	for i, tx := range txs {
		got, _ := r.nw.n.txIdx.get(tx.Hash())
		if kept := i >= len(txs)-8; (got != nil) != kept {
			t.Fatalf("tx %d kept %v, want %v (the oldest go first)", i, got != nil, kept)
		}
	}
	// A signature's encoding varies by a byte or two: the bound is the
	// newest three's bytes, not three times one transaction's.
	last3 := txs[17].Size() + txs[18].Size() + txs[19].Size()
	x := newTxIndex(100, last3)
	for _, tx := range txs {
		x.add(tx)
	}
	if n, b := x.len(); n != 3 || b != last3 {
		t.Fatalf("%d entries of %d bytes, want 3 of %d", n, b, last3)
	}
	// Committed marks release the objects' bytes and stay bounded.
	x.markCommitted(txs)
	if n, b := x.len(); n != 20 && n != 100 || b != 0 {
		t.Fatalf("%d entries of %d bytes after commit marks", n, b)
	}
	if _, committed := x.get(txs[0].Hash()); !committed {
		t.Fatal("committed mark lost")
	}
}

// Gossip from several peers, verification and admission at once, under
// the race detector.
func TestGossipIndexConcurrent(t *testing.T) {
	r := newGossipRig(t, 256, 1<<20)
	txs := r.txs(t, 400)
	var payloads [][]byte
	for i := 0; i < len(txs); i += 50 {
		payloads = append(payloads, gossipPayload(t, txs[i:i+50]))
	}
	var wg sync.WaitGroup
	for p := 0; p < 3; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, pl := range payloads {
				r.nw.handleTxs(p2p.NodeID{}, pl)
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for _, tx := range txs {
			r.known.Get(tx.Hash())
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 40; i++ {
			r.drain()
		}
	}()
	wg.Wait()
	r.drain()
	if p, _ := r.nw.n.pool.Stats(); p != len(txs) {
		t.Fatalf("%d pending, want %d", p, len(txs))
	}
	if n, _ := r.nw.n.txIdx.len(); n > 256 {
		t.Fatalf("%d entries above the bound", n)
	}
}
