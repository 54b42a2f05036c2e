package node

import (
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/blockchain"
	"github.com/charter-ledger/charter/internal/txpool"
)

// Bounds of the index of peer transactions.
const (
	// peerTxMemory is how many transactions (and hashes of committed ones)
	// the index remembers, oldest forgotten first.
	peerTxMemory = 1 << 17
	// peerTxBytes bounds the encoded size of the transactions it holds.
	peerTxBytes = 64 << 20
)

// txIndex remembers, by hash, the transactions this node decoded from its
// peers (from the moment a gossip message arrives, before admission) and
// the hashes of the transactions of blocks it committed. A hash covers
// the whole signed transaction, signature included, so a transaction
// found by hash is the same transaction with the same sender: a sender
// recovered once on the object it holds serves block verification and
// admission alike, in whichever order they come.
//
// It is bounded in count and bytes; the oldest entries go first.
type txIndex struct {
	mu     sync.Mutex
	byHash map[common.Hash]*indexed
	ring   []common.Hash // insertion order; ring[head] is the oldest
	head   int
	count  int
	bytes  uint64
	max    uint64 // bytes
}

type indexed struct {
	tx        *types.Transaction // nil for a committed transaction decoded elsewhere
	size      uint64
	committed bool
}

func newTxIndex(count int, bytes uint64) *txIndex {
	return &txIndex{
		byHash: make(map[common.Hash]*indexed, count),
		ring:   make([]common.Hash, count),
		max:    bytes,
	}
}

// add remembers a peer transaction; it reports false if the hash was
// known already (the known object is kept).
func (x *txIndex) add(tx *types.Transaction) bool {
	h, size := tx.Hash(), tx.Size()
	x.mu.Lock()
	defer x.mu.Unlock()
	if e := x.byHash[h]; e != nil {
		if e.tx == nil && !e.committed {
			e.tx = tx
		}
		return false
	}
	x.insert(h, &indexed{tx: tx, size: size})
	return true
}

// get returns the transaction object held for h (nil if none), and
// whether a block this node committed included it.
func (x *txIndex) get(h common.Hash) (tx *types.Transaction, committed bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e := x.byHash[h]; e != nil {
		return e.tx, e.committed
	}
	return nil, false
}

// markCommitted marks the transactions of a committed block: their copies
// that arrive from peers later are dropped without admission. Their
// objects are released (the pool and the block hold what is needed).
func (x *txIndex) markCommitted(txs []*types.Transaction) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, tx := range txs {
		h := tx.Hash()
		if e := x.byHash[h]; e != nil {
			if e.tx != nil {
				x.bytes -= e.size
				e.tx, e.size = nil, 0
			}
			e.committed = true
			continue
		}
		x.insert(h, &indexed{committed: true})
	}
}

// insert adds a new entry, evicting the oldest beyond the bounds.
func (x *txIndex) insert(h common.Hash, e *indexed) {
	if e.size > x.max {
		return
	}
	for x.count > 0 && (x.count == len(x.ring) || x.bytes+e.size > x.max) {
		old := x.ring[x.head]
		if o := x.byHash[old]; o != nil {
			x.bytes -= o.size
			delete(x.byHash, old)
		}
		x.head = (x.head + 1) % len(x.ring)
		x.count--
	}
	x.ring[(x.head+x.count)%len(x.ring)] = h
	x.count++
	x.bytes += e.size
	x.byHash[h] = e
}

// len is the number of entries, for tests.
func (x *txIndex) len() (int, uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.byHash), x.bytes
}

// knownTxs is the pool as block verification sees it
// (blockchain.Config.Pool): a transaction of a received block is looked
// up in the pool and, failing that, among the peer transactions decoded
// but not admitted yet, whose sender it recovers on the object the
// admission worker will use, so that the worker finds it recovered.
type knownTxs struct {
	*txpool.Pool
	idx    *txIndex
	signer types.Signer
}

var _ blockchain.Pool = knownTxs{}

func (k knownTxs) Get(h common.Hash) *types.Transaction {
	if tx := k.Pool.Get(h); tx != nil {
		return tx
	}
	tx, _ := k.idx.get(h)
	if tx == nil {
		return nil
	}
	if _, err := types.Sender(k.signer, tx); err != nil {
		return nil // let the block's own copy fail in execution
	}
	return tx
}
