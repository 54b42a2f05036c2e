package poa

import (
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/consensus"
)

// fakeLedger is a node's committed chain: it survives crashes.
type fakeLedger struct {
	blocks []*types.Block
	seals  [][]byte
	txAt   map[common.Hash]uint64
}

func newLedger(genesis *types.Block) *fakeLedger {
	return &fakeLedger{blocks: []*types.Block{genesis}, seals: [][]byte{nil}, txAt: map[common.Hash]uint64{}}
}

func (l *fakeLedger) BlockByNumber(n uint64) (*types.Block, []byte) {
	if n >= uint64(len(l.blocks)) {
		return nil, nil
	}
	return l.blocks[n], l.seals[n]
}

func (l *fakeLedger) head() *types.Block { return l.blocks[len(l.blocks)-1] }

// fakeApp stands for execution: it builds and verifies blocks whose only
// rule is that a transaction appears at most once in a chain, and keeps
// the "execution cache" of built and verified blocks (lost on a crash).
type fakeApp struct {
	ledger *fakeLedger
	exec   map[common.Hash]*types.Block
	pool   []*types.Transaction
}

func newApp(l *fakeLedger) *fakeApp {
	return &fakeApp{ledger: l, exec: map[common.Hash]*types.Block{}}
}

func fakeTx(id uint64) *types.Transaction {
	return types.NewTx(&types.LegacyTx{Nonce: id, Gas: 21000, GasPrice: big.NewInt(0), Value: big.NewInt(0)})
}

func txDigest(txs []*types.Transaction) common.Hash {
	if len(txs) == 0 {
		return types.EmptyTxsHash
	}
	buf := make([]byte, 0, 32*len(txs))
	for _, tx := range txs {
		h := tx.Hash()
		buf = append(buf, h[:]...)
	}
	return crypto.Keccak256Hash(buf)
}

// chainTxs returns the transactions of the non-final blocks from parent
// down to the ledger head; ok is false if parent does not lead there.
func (a *fakeApp) chainTxs(parent common.Hash) (map[common.Hash]bool, bool) {
	seen := map[common.Hash]bool{}
	head := a.ledger.head()
	for parent != head.Hash() {
		b := a.exec[parent]
		if b == nil || b.NumberU64() <= head.NumberU64() {
			return nil, false
		}
		for _, tx := range b.Transactions() {
			seen[tx.Hash()] = true
		}
		parent = b.ParentHash()
	}
	return seen, true
}

func (a *fakeApp) known(h common.Hash) (*types.Block, bool) {
	if b := a.exec[h]; b != nil {
		return b, true
	}
	if hd := a.ledger.head(); hd.Hash() == h {
		return hd, true
	}
	return nil, false
}

func (a *fakeApp) build(parent *types.Header, ts uint64, proposer consensus.NodeID) (*types.Block, error) {
	if _, ok := a.known(parent.Hash()); !ok {
		return nil, errors.New("build: parent not executed")
	}
	inChain, ok := a.chainTxs(parent.Hash())
	if !ok {
		return nil, errors.New("build: parent off the final chain")
	}
	var txs []*types.Transaction
	kept := a.pool[:0]
	for _, tx := range a.pool {
		h := tx.Hash()
		if _, final := a.ledger.txAt[h]; final {
			continue // drop from pool
		}
		kept = append(kept, tx)
		if !inChain[h] && len(txs) < 4 {
			txs = append(txs, tx)
			inChain[h] = true
		}
	}
	a.pool = kept
	hd := &types.Header{
		ParentHash: parent.Hash(),
		Number:     new(big.Int).Add(parent.Number, common.Big1),
		Time:       max(ts, parent.Time),
		Coinbase:   proposer,
		Difficulty: new(big.Int),
		GasLimit:   30_000_000,
		TxHash:     txDigest(txs),
	}
	b := types.NewBlockWithHeader(hd).WithBody(types.Body{Transactions: txs})
	a.exec[b.Hash()] = b
	return b, nil
}

func (a *fakeApp) verify(b *types.Block) error {
	parent, ok := a.known(b.ParentHash())
	if !ok {
		return errors.New("verify: parent not executed")
	}
	if b.NumberU64() != parent.NumberU64()+1 {
		return errors.New("verify: bad number")
	}
	if b.Header().TxHash != txDigest(b.Transactions()) {
		return errors.New("verify: bad tx digest")
	}
	inChain, ok := a.chainTxs(b.ParentHash())
	if !ok {
		return errors.New("verify: parent off the final chain")
	}
	seen := map[common.Hash]bool{}
	for _, tx := range b.Transactions() {
		h := tx.Hash()
		if _, final := a.ledger.txAt[h]; final || inChain[h] || seen[h] {
			return fmt.Errorf("verify: tx %s twice", h)
		}
		seen[h] = true
	}
	a.exec[b.Hash()] = b
	return nil
}

func (a *fakeApp) commit(b *types.Block, seal []byte) error {
	if _, ok := a.exec[b.Hash()]; !ok {
		return fmt.Errorf("commit: block %d %s was never built or verified here", b.NumberU64(), b.Hash())
	}
	head := a.ledger.head()
	if b.ParentHash() != head.Hash() || b.NumberU64() != head.NumberU64()+1 {
		return fmt.Errorf("commit: block %d does not extend head %d", b.NumberU64(), head.NumberU64())
	}
	a.ledger.blocks = append(a.ledger.blocks, b)
	a.ledger.seals = append(a.ledger.seals, seal)
	for _, tx := range b.Transactions() {
		a.ledger.txAt[tx.Hash()] = b.NumberU64()
	}
	// Prune the execution cache below the head.
	for h, eb := range a.exec {
		if eb.NumberU64() < b.NumberU64() {
			delete(a.exec, h)
		}
	}
	return nil
}

func testGenesis() *types.Block {
	return types.NewBlockWithHeader(&types.Header{
		Number: new(big.Int), Difficulty: new(big.Int), GasLimit: 30_000_000, TxHash: types.EmptyTxsHash,
	})
}

// testKey derives a deterministic key from an index.
func testKey(i int) *ecdsa.PrivateKey {
	var seed [32]byte
	binary.BigEndian.PutUint64(seed[24:], uint64(i)+1)
	seed[0] = 0x42
	k, err := crypto.ToECDSA(seed[:])
	if err != nil {
		panic(err)
	}
	return k
}

// sigMemo shares signature recovery between the simulated nodes of one
// run: recovery is a pure function, and it dominates the run time.
type sigMemo map[string]common.Address

func (m sigMemo) recover(hash common.Hash, sig []byte) (common.Address, error) {
	k := string(hash[:]) + string(sig)
	if a, ok := m[k]; ok {
		if a == (common.Address{}) {
			return a, ErrBadSeal
		}
		return a, nil
	}
	a, err := recoverSigner(hash, sig)
	if err != nil {
		m[k] = common.Address{}
		return a, err
	}
	m[k] = a
	return a, nil
}
