// Package consensus defines the contract between a node and the engine that
// orders its blocks. Engines live below this package: solo, raft, bft, poa.
//
// Every engine is split in two:
//
//   - a core: a deterministic state machine fed with messages, clock ticks and
//     the answers to its own requests, which returns messages to send, blocks
//     to build or verify, and blocks to commit. The core never reads the clock,
//     a socket or a file, so a whole network of cores runs in one process under
//     a seeded simulator (see simnet).
//   - an adapter implementing Engine: it owns the goroutine that drives the
//     core, turns real time into ticks, and talks to the node through Host.
package consensus

import (
	"errors"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// NodeID names a consensus participant: the Ethereum address of the node's
// secp256k1 node key. Validators are listed by NodeID in the chain spec.
type NodeID = common.Address

// Engine orders blocks for one node. The node calls Start once, then any of
// the other methods from any goroutine (implementations are goroutine-safe),
// then Stop once. Stop returns after the engine's goroutines have ended.
type Engine interface {
	// Start begins consensus from the host's last committed block.
	Start() error
	// Notify tells the engine that transactions wait in the local pool, so a
	// proposer can build a block without waiting for its next tick. Leader
	// based engines may forward the transactions to the leader.
	Notify(txs []*types.Transaction)
	// HandleMessage takes one consensus message received from a peer. The
	// payload is the engine's own encoding; the engine validates it (size,
	// signature, height) and drops what is bad, stale or duplicated.
	HandleMessage(from NodeID, payload []byte)
	// Head returns the newest block that has at least the given number of
	// confirmations (blocks built on top of it). Engines with instant
	// finality (raft, bft, solo) answer the newest committed block for any
	// value. Nil only before genesis is loaded.
	Head(confirmations uint64) *types.Header
	// Stop ends the engine. Blocks already handed to CommitBlock stay.
	Stop()
}

// Host is what the node gives an engine. All methods are goroutine-safe.
type Host interface {
	// Self is this node's id.
	Self() NodeID
	// BuildBlock executes transactions waiting in the pool on top of parent
	// and returns the resulting block (state root, receipts root, gas used
	// filled; not yet committed). The execution result is cached so that
	// CommitBlock of the same block does not execute it again.
	BuildBlock(parent *types.Header, timestamp uint64, proposer NodeID) (*types.Block, error)
	// VerifyBlock executes a block proposed by another node on its parent and
	// checks every header field against the result. A nil error means the
	// block is valid; the result is cached for CommitBlock.
	VerifyBlock(block *types.Block) error
	// CommitBlock makes a block final: block, receipts, state and the
	// engine's seal (for bft, the commit certificate) are written atomically
	// and synced before it returns. Blocks must be committed in height order.
	CommitBlock(block *types.Block, seal []byte) error
	// Head is the last committed block.
	Head() *types.Header
	// BlockByNumber returns a committed block and its seal, for peers that
	// catch up. Nil if unknown.
	BlockByNumber(number uint64) (*types.Block, []byte)
	// Send delivers an engine message to one peer, best effort.
	Send(to NodeID, payload []byte)
	// Broadcast delivers an engine message to every connected peer, best effort.
	Broadcast(payload []byte)
}

// ErrStopped is returned by engine calls made after Stop.
var ErrStopped = errors.New("consensus engine stopped")
