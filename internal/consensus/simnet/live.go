package simnet

import (
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
)

// Bus connects real engines (consensus.Driver, on goroutines) in one
// process, for the engines' tests that run them live rather than in the
// deterministic Sim. A node may be cut off. It is goroutine-safe.
type Bus struct {
	mu      sync.Mutex
	engines map[consensus.NodeID]consensus.Engine
	cut     map[consensus.NodeID]bool
}

// NewBus returns an empty bus.
func NewBus() *Bus {
	return &Bus{engines: make(map[consensus.NodeID]consensus.Engine), cut: make(map[consensus.NodeID]bool)}
}

// Attach makes e the engine of id (nil: id is down).
func (b *Bus) Attach(id consensus.NodeID, e consensus.Engine) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e == nil {
		delete(b.engines, id)
		return
	}
	b.engines[id] = e
}

// Engine is the engine of id, nil if none.
func (b *Bus) Engine(id consensus.NodeID) consensus.Engine {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.engines[id]
}

// Cut cuts a node off the others (or joins it back).
func (b *Bus) Cut(id consensus.NodeID, cut bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cut[id] = cut
}

func (b *Bus) deliver(from, to consensus.NodeID, payload []byte) {
	b.mu.Lock()
	e := b.engines[to]
	cut := b.cut[from] || b.cut[to]
	b.mu.Unlock()
	if e != nil && !cut {
		e.HandleMessage(from, payload)
	}
}

func (b *Bus) ids() []consensus.NodeID {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]consensus.NodeID, 0, len(b.engines))
	for id := range b.engines {
		out = append(out, id)
	}
	return out
}

// LiveHost is a goroutine-safe consensus.Host over a Chain and a Bus: the
// node, as the engines' live tests see it.
type LiveHost struct {
	self  consensus.NodeID
	bus   *Bus
	mu    sync.Mutex
	chain *Chain
	// OnCommit, if set, runs after each commit, outside the host's lock
	// (on the engine's goroutine, as the node's post-commit effects do: it
	// may call the engine's SetValidators).
	OnCommit func(b *types.Block, seal []byte)
}

var _ consensus.Host = (*LiveHost)(nil)

// NewLiveHost returns the host of node self at genesis.
func NewLiveHost(self consensus.NodeID, bus *Bus, maxTxs int) *LiveHost {
	return &LiveHost{self: self, bus: bus, chain: NewChain(self, self[:4], maxTxs)}
}

// Do runs fn with the chain under the host's lock.
func (h *LiveHost) Do(fn func(*Chain)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn(h.chain)
}

// Self implements consensus.Host.
func (h *LiveHost) Self() consensus.NodeID { return h.self }

// Head implements consensus.Host.
func (h *LiveHost) Head() *types.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.chain.Head()
}

// BlockByNumber implements consensus.Host.
func (h *LiveHost) BlockByNumber(n uint64) (*types.Block, []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.chain.BlockByNumber(n)
}

// BuildBlock implements consensus.Host.
func (h *LiveHost) BuildBlock(parent *types.Header, ts uint64, proposer consensus.NodeID) (*types.Block, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.chain.BuildBlock(parent, ts, proposer)
}

// VerifyBlock implements consensus.Host.
func (h *LiveHost) VerifyBlock(b *types.Block) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.chain.VerifyBlock(b)
}

// CommitBlock implements consensus.Host.
func (h *LiveHost) CommitBlock(b *types.Block, seal []byte) error {
	h.mu.Lock()
	err := h.chain.CommitBlock(b, seal)
	hook := h.OnCommit
	h.mu.Unlock()
	if err == nil && hook != nil {
		hook(b, seal)
	}
	return err
}

// Due implements consensus.Host.
func (h *LiveHost) Due() bool { return false }

// Pending implements consensus.Host.
func (h *LiveHost) Pending() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.chain.Pending()
}

// PendingTxs implements consensus.Host.
func (h *LiveHost) PendingTxs(max int) []*types.Transaction {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.chain.PendingTxs(max)
}

// AddRemoteTxs implements consensus.Host: it admits forwarded
// transactions and notifies this node's engine of the new ones, as the
// node's pool does.
func (h *LiveHost) AddRemoteTxs(raw [][]byte) {
	for _, r := range raw {
		tx := new(types.Transaction)
		if tx.UnmarshalBinary(r) == nil {
			h.Submit(tx)
		}
	}
}

// Send implements consensus.Host.
func (h *LiveHost) Send(to consensus.NodeID, payload []byte) {
	h.bus.deliver(h.self, to, append([]byte(nil), payload...))
}

// Broadcast implements consensus.Host.
func (h *LiveHost) Broadcast(payload []byte) {
	for _, id := range h.bus.ids() {
		if id != h.self {
			h.bus.deliver(h.self, id, append([]byte(nil), payload...))
		}
	}
}

// Submit admits a client transaction to the pool and notifies the node's
// engine.
func (h *LiveHost) Submit(tx *types.Transaction) {
	h.mu.Lock()
	added := h.chain.Add(tx)
	h.mu.Unlock()
	if e := h.bus.Engine(h.self); added && e != nil {
		e.Notify([]*types.Transaction{tx})
	}
}

// Has reports whether tx is committed here.
func (h *LiveHost) Has(tx common.Hash) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.chain.Committed(tx)
	return ok
}

// Height is the committed height.
func (h *LiveHost) Height() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.chain.Height()
}

// HashAt is the hash of the committed block n, zero if none.
func (h *LiveHost) HashAt(n uint64) common.Hash {
	b, _ := h.BlockByNumber(n)
	if b == nil {
		return common.Hash{}
	}
	return b.Hash()
}
