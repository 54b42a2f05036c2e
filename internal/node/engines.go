package node

import (
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/blockchain"
	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/engines"
)

// newEngine makes the engine the genesis names, from the chain spec, the
// node's options and the validator changes governance decided (the
// registry at the head). Engine state lives under DataDir next to the
// ledger's chaindata (bft-state, poa-state, raft/).
func (n *Node) newEngine(blockTime time.Duration) (consensus.Engine, consensus.Profile, error) {
	spec := n.cfg.Spec
	reg, head, err := n.registry()
	if err != nil {
		return nil, consensus.Profile{}, err
	}
	cs := consensus.Spec{
		Engine:     spec.Consensus.Engine,
		ChainID:    spec.ChainID(),
		Validators: spec.Consensus.Validators,
		Params:     spec.Consensus.Params,
		BlockTime:  blockTime,
		ForceEmpty: n.cfg.ForceEmptyBlocks,
		Head:       head.Number.Uint64(),
		Network:    n.cfg.Network != nil,
	}
	for _, c := range reg.ValidatorChanges() {
		cs.Changes = append(cs.Changes, consensus.ValidatorChange{From: c.From, IDs: c.IDs})
	}
	for _, c := range reg.ParamChanges() {
		cs.ParamChanges = append(cs.ParamChanges, consensus.ParamChange{From: c.From, Values: c.Map()})
	}
	return engines.New(cs, consensus.Env{
		Host: engineHost{Chain: n.chain, n: n},
		Key:  n.cfg.NodeKey,
		Dir:  n.cfg.DataDir,
		Log:  n.log,
	})
}

// engineHost is the node as its engine sees it (consensus.Host): the
// chain manager (the chain part), the pool and the peers.
type engineHost struct {
	*blockchain.Chain
	n *Node
}

var _ consensus.Host = engineHost{}

// Self is the node id.
func (h engineHost) Self() consensus.NodeID { return h.n.self }

// Pending reports whether transactions wait in the pool.
func (h engineHost) Pending() bool { p, _ := h.n.pool.Stats(); return p > 0 }

// PendingTxs returns up to max pending transactions, oldest first (raft
// re-forwards them to a new leader).
func (h engineHost) PendingTxs(max int) []*types.Transaction {
	src := h.n.pool.Pending(max)
	var out []*types.Transaction
	for tx := src.Peek(); tx != nil; tx = src.Peek() {
		out = append(out, tx)
		src.Shift()
	}
	return out
}

// AddRemoteTxs takes the transactions a raft follower forwarded to this
// node as leader. It is called on the engine goroutine, so it only queues
// them for the admission worker.
func (h engineHost) AddRemoteTxs(raw [][]byte) {
	if h.n.net != nil {
		h.n.net.enqueueRemote(raw)
	}
}

// Send delivers an engine message to one peer; it never blocks (the
// transport queues or drops). A node without peers has nobody to send to.
func (h engineHost) Send(to consensus.NodeID, payload []byte) {
	if h.n.net != nil {
		h.n.net.send(to, payload)
	}
}

// Broadcast delivers an engine message to every connected peer.
func (h engineHost) Broadcast(payload []byte) {
	if h.n.net != nil {
		h.n.net.broadcast(payload)
	}
}
