// Package consensus is the whole contract between a node and the engine
// that orders its blocks: everything an engine may ask of the node (Host),
// everything the node may ask of an engine (Engine), and the one shape
// every engine takes inside (Core, Ready, Driver). Engines live below this
// package: solo, raft, bft, poa.
//
// Every engine is a Core: a deterministic state machine fed with messages,
// clock ticks and the answers to its own requests, which returns one Ready
// at a time: what to commit, what to persist, what to send, which blocks
// to build, verify or serve. A core never reads the clock, a socket or a
// file, never calls the node and starts no goroutine, so a whole network
// of cores runs in one process under a seeded simulator (simnet).
//
// The Driver is written once for every engine: it owns the goroutine that
// drives the core (inbox, ticker, a worker that builds and verifies
// blocks), carries out each Ready in the one order Apply documents, saves
// the core's state in a durable.StateFile, and turns a core error or a
// panic into a halt reported on Engine.Done. An engine package is a core
// and a New that hands it to NewDriver; see docs/design/engine.md.
package consensus

import (
	"crypto/ecdsa"
	"log/slog"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/durable"
)

// NodeID names a consensus participant: the Ethereum address of the node's
// secp256k1 node key. Validators are listed by NodeID in the chain spec.
type NodeID = common.Address

// Engine is everything the node may ask of an engine. The node calls Start
// once, then any of the other methods from any goroutine (they are
// goroutine-safe, and none blocks on the engine's work), then Stop once.
type Engine interface {
	// Start begins consensus from the host's last committed block and the
	// engine's saved state.
	Start() error
	// Notify tells the engine that transactions became pending in the
	// local pool. A leader may build at once; a follower of a leader based
	// engine forwards them. It never blocks (a full queue drops the hint:
	// engines also look at the pool every block time).
	Notify(txs []*types.Transaction)
	// HandleMessage takes one consensus message received from a peer. The
	// payload is the engine's own encoding; the engine validates it (size,
	// signature, height) and drops what is bad, stale or duplicated. It
	// never blocks; the engine keeps its own copy of payload.
	HandleMessage(from NodeID, payload []byte)
	// Head returns the newest block that has at least the given number of
	// confirmations (blocks built on top of it). Engines with instant
	// finality (raft, bft, solo) answer the newest committed block for any
	// value. Nil only before the genesis is loaded.
	Head(confirmations uint64) *types.Header
	// SetValidators makes ids the validator set from height from on. The
	// node calls it when a committed block decides a change (from inside
	// Host.CommitBlock, before it returns), and after a restart for the
	// changes decided but not yet in force. Each engine documents the
	// least from it accepts; an earlier one is an error.
	SetValidators(from uint64, ids []NodeID) error
	// Stats returns the engine's counters, for metrics.
	Stats() Stats
	// Done delivers, once, the error that halted the engine by itself (a
	// block that cannot be committed, state that cannot be saved, a broken
	// invariant); the node should stop. It is closed when Stop returns.
	Done() <-chan error
	// Stop ends the engine and waits for its goroutines. Blocks already
	// handed to CommitBlock stay.
	Stop()
}

// Host is everything an engine may ask of the node. Only the Driver calls
// it (never a core); all methods are goroutine-safe.
type Host interface {
	// Self is this node's id.
	Self() NodeID
	Chain
	Pool
	Network
}

// Chain is the chain part of Host: the chain manager
// (internal/blockchain).
type Chain interface {
	// Head is the last committed block.
	Head() *types.Header
	// BlockByNumber returns a committed block and its seal, for peers that
	// catch up. Nil if unknown.
	BlockByNumber(number uint64) (*types.Block, []byte)
	// BuildBlock executes transactions waiting in the pool on top of
	// parent (the committed head, or a block built or verified here and
	// not committed yet) and returns the resulting block (state root,
	// receipts root, gas used filled; not yet committed). The execution
	// result is kept so that CommitBlock of the same block does not
	// execute it again.
	BuildBlock(parent *types.Header, timestamp uint64, proposer NodeID) (*types.Block, error)
	// VerifyBlock executes a block proposed by another node on its parent
	// and checks every header field against the result. A nil error means
	// the block is valid; the result is kept for CommitBlock.
	VerifyBlock(block *types.Block) error
	// CommitBlock makes a block final: block, receipts, state and the
	// engine's seal (bft's commit certificate, raft's entry, poa's ballot
	// signature) are written atomically and synced before it returns. A
	// block neither built nor verified here is executed first; one that
	// does not execute to its header is refused. Blocks are committed in
	// height order. The post-commit effects (SetValidators among them)
	// have happened when it returns.
	CommitBlock(block *types.Block, seal []byte) error
	// Due reports whether the block after the head has work of its own
	// even if no transaction waits (a governance decision executes at its
	// start), so that engines that seal only for transactions seal it.
	Due() bool
}

// Pool is the transaction pool part of Host.
type Pool interface {
	// Pending reports whether transactions wait in the local pool.
	Pending() bool
	// PendingTxs returns up to max of them, oldest first (raft re-forwards
	// them to a new leader).
	PendingTxs(max int) []*types.Transaction
	// AddRemoteTxs takes transactions a peer forwarded to this node (raft
	// followers forward to the leader), in their binary encoding, for
	// admission through the pool's checks. It never blocks.
	AddRemoteTxs(raw [][]byte)
}

// Network is the peer part of Host. Delivery is best effort: engines
// re-send what matters. Neither method blocks.
type Network interface {
	// Send delivers an engine message to one peer.
	Send(to NodeID, payload []byte)
	// Broadcast delivers an engine message to every connected peer.
	Broadcast(payload []byte)
}

// Env is what every engine's New takes besides its own Config; the one
// constructor shape is
//
//	func New(cfg Config, env consensus.Env) (consensus.Engine, error)
type Env struct {
	// Host is the node.
	Host Host
	// Key is the node key (its address is Host.Self()). Nil runs a node
	// that never signs (a bft observer).
	Key *ecdsa.PrivateKey
	// FS and Dir are where the engine keeps its state: a StateFile
	// (bft-state, poa-state) or a folder (raft/) under Dir. FS nil means
	// the operating system's.
	FS  durable.FS
	Dir string
	// Log receives the engine's lines; nil discards them.
	Log *slog.Logger
	// Now is the clock for block timestamps; nil means time.Now.
	Now func() time.Time
}

func (e *Env) ensureDefaults() {
	if e.FS == nil {
		e.FS = durable.OSFS{}
	}
	if e.Log == nil {
		e.Log = slog.New(slog.DiscardHandler)
	}
	if e.Now == nil {
		e.Now = time.Now
	}
}

// RoundBuckets is the number of buckets of Stats.DecidedInRound: heights
// decided in round 0, 1, ..., RoundBuckets-2, and RoundBuckets-1 or later.
const RoundBuckets = 8

// Stats are an engine's counters, the same shape for every engine; an
// engine leaves zero what it does not have. Counters only grow; Height
// and Round are gauges.
type Stats struct {
	Height uint64 // height in progress (bft), or of the engine's tip
	Round  int64  // round in progress (bft)
	// Validators is the size of the validator set in force at Height:
	// bft's set, poa's authorities, raft's voters (while a joint raft
	// configuration is in force, the voters of the outgoing one, whose
	// majority is still needed).
	Validators int

	RoundChanges   uint64               // rounds started after a height's first (bft), rounds timed out (poa)
	LeaderChanges  uint64               // leaders seen to change (raft)
	DecidedInRound [RoundBuckets]uint64 // heights decided, by the round of the decision (bft)

	// Messages are the counters by message type, in the engine's order.
	Messages []MessageStats
	// Dropped are messages refused, by the core (bad, stale, duplicate)
	// or before it (oversized, a full inbox).
	Dropped uint64

	// Timeouts that fired, by step (bft: propose, prevote, precommit;
	// poa: round), so that an operator sees which wait ends rounds.
	Timeouts []StepCount

	// Compact proposals received (bft): rebuilt from transactions this
	// node held, rebuilt after asking the proposer for missing ones, and
	// full proposals asked for after such a request timed out.
	CompactRebuilt, CompactFetched, CompactFull uint64

	// The Pacer's estimate of building and verifying a block here, per
	// transaction (0 while unknown), and the last cap it put on a block
	// this node built (0: none yet).
	BuildPerTx, VerifyPerTx time.Duration
	BlockCap                int
}

// StepCount counts one step's events.
type StepCount struct {
	Step  string
	Count uint64
}

// MessageStats count one type of engine message. A broadcast counts once.
type MessageStats struct {
	Type                               string
	MsgsIn, MsgsOut, BytesIn, BytesOut uint64
}
