package consensus

import (
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Core is an engine's state machine. It reads no clock, socket or file,
// never calls the node and starts no goroutine; it is not goroutine-safe:
// one owner (the Driver, or a simulator) calls every method. Given the
// same inputs in the same order it produces the same outputs.
//
// Inputs are Tick, Step, Notify, the answers to its own requests (Built,
// Verified, Served) and SetValidators; each may make Ready work. The owner
// takes the work with Ready, carries it out with Apply, then calls
// Advance, before any further input.
type Core interface {
	// Tick advances the core's time by one tick (the engine's
	// TickInterval in real time): timeouts, re-sending and catch-up
	// requests happen here.
	Tick()
	// Step takes one message from peer from. It returns why the message
	// was dropped or kept for later, nil if it was used; none of these is
	// fatal (see Err).
	Step(from NodeID, payload []byte) error
	// Notify hands the core transactions pending in the local pool: those
	// that became pending, or those it asked for with Ready.WantTxs.
	Notify(txs []*types.Transaction)
	// Built answers Ready.Build: the block built for req, nil if there was
	// nothing to build (see BuildRequest.Empty), or the error.
	Built(req BuildRequest, block *types.Block, err error)
	// Verified answers one block of Ready.Verify: nil if it is valid.
	Verified(hash common.Hash, err error)
	// Served answers Ready.Serve with the committed blocks read for req,
	// in order (fewer than asked if the host lacks some).
	Served(req ServeRequest, blocks []SealedBlock)
	// SetValidators makes ids the validator set from height from on (see
	// Engine.SetValidators).
	SetValidators(from uint64, ids []NodeID) error

	// HasReady reports whether Ready has work.
	HasReady() bool
	// Ready returns the pending work and starts a new batch. The owner
	// owns the Ready.
	Ready() Ready
	// Advance tells the core that the last Ready was carried out: its
	// commits are durable (and their post-commit effects, SetValidators
	// among them, applied), its state saved, its messages handed to the
	// network, its requests started.
	Advance()

	// Head answers Engine.Head (see HeadRef).
	Head(confirmations uint64) HeadRef
	// Stats returns the core's counters.
	Stats() Stats
	// Err is the reason the core stopped itself, nil while it runs. Once
	// set it stays; the owner halts the engine. (A broken invariant may
	// also panic; the owner turns that into a halt too.)
	Err() error
}

// Ready is a batch of work a core hands its owner. Apply carries it out in
// the one order every engine relies on:
//
//  1. Commits: Host.CommitBlock each, in order (consecutive heights). A
//     commit is a decision already taken (a certificate, a committed raft
//     entry, a quorum of poa votes): it does not depend on anything below.
//  2. State: saved durably (StateFile.Save, fsync) before step 3. It
//     describes the height after the commits, so that a crash between 1
//     and 2 leaves a newer chain and an older state, which every core
//     accepts (it ignores a state for a height already committed), and
//     never a state ahead of the chain.
//  3. Messages: handed to the network. What they promise (a vote, an
//     accepted block) is in the state saved in step 2, so a node that
//     crashes after sending re-sends the very same messages, never others.
//  4. Requests: Build, Verify, Serve, Txs and WantTxs are started; their
//     answers come back in later inputs (Built, Verified, Served, Notify).
//
// then the owner calls Core.Advance. Engines whose state is a log they
// write themselves (raft's WAL, through the same durable FS) have written
// it before returning the Ready; their State is nil.
type Ready struct {
	Commits  []SealedBlock
	State    []byte
	Messages []Message
	Build    *BuildRequest
	Verify   []*types.Block
	Serve    []ServeRequest
	// Txs are transactions a peer forwarded to this node, for the pool
	// (Host.AddRemoteTxs).
	Txs [][]byte
	// WantTxs asks for up to this many pending transactions, handed back
	// through Notify (raft re-forwards them to a new leader).
	WantTxs int
}

// Empty reports whether the Ready holds nothing.
func (r *Ready) Empty() bool {
	return len(r.Commits) == 0 && r.State == nil && len(r.Messages) == 0 && r.Build == nil &&
		len(r.Verify) == 0 && len(r.Serve) == 0 && len(r.Txs) == 0 && r.WantTxs == 0
}

// SealedBlock is a block and the engine's seal of it, as committed (and as
// Host.BlockByNumber returns it).
type SealedBlock struct {
	Block *types.Block
	Seal  []byte
}

// Message is an engine message to send: to every connected peer when
// Broadcast, else to To. Delivery is best effort.
type Message struct {
	To        NodeID
	Broadcast bool
	Payload   []byte
}

// BuildRequest asks the owner to build a block on Parent (Host.BuildBlock,
// with this node as proposer and a timestamp of now, never before the
// parent's) and to answer with Core.Built(req, ...).
type BuildRequest struct {
	// ID is the core's own number for the request, to match the answer.
	ID     uint64
	Parent *types.Header
	// Empty: an empty block is wanted too (a block per height, or a
	// forced empty block). Otherwise the answer is a nil block unless the
	// block has transactions or governance work is due (Host.Due).
	Empty bool
	// Budget, when above 0, is the time the block has, from this request
	// on, to be built here and verified by the other validators before
	// they give up on it (bft: the propose timeout of the round). The
	// owner caps the block's transactions so that the time it measured
	// for building and verifying fits in it (see Pacer); the cap is this
	// node's policy, never a rule of validity.
	Budget time.Duration
	// MaxTxs, when above 0, bounds the block's transactions (below the
	// chain's own bounds): set by the owner from Budget, for BuildFor.
	MaxTxs int
}

// MaxTxsBuilder is a Chain that builds a block of at most maxTxs
// transactions (0: its own bounds alone). BuildFor uses it for a
// BuildRequest with MaxTxs.
type MaxTxsBuilder interface {
	BuildBlockMax(parent *types.Header, timestamp uint64, proposer NodeID, maxTxs int) (*types.Block, error)
}

// ServeRequest asks the owner to read the committed blocks From, From+1,
// ... (at most Count, stopping at the first the host lacks) and to hand
// them to Core.Served(req, ...), which answers the peer To.
type ServeRequest struct {
	// ID is the core's own number for the request (a nonce of the peer's
	// request, or a sequence), to match the answer.
	ID    uint64
	To    NodeID
	From  uint64
	Count int
	// Anchor, when not 0, is one more committed block to read (appended
	// last): the core checks it against the peer's request (raft serves
	// only a peer whose target block is in this chain).
	Anchor uint64
}

// HeadRef is a core's answer to Head: the header itself when the core
// holds the block (poa's blocks not yet final), else the number of a
// committed block the owner reads from the host, or, with Latest, the
// host's head.
type HeadRef struct {
	Header *types.Header
	Number uint64
	Latest bool
}

// Effects carries out a Ready: the Driver's, with the Host, or a
// simulator's. Commit and SaveState are synchronous and durable when they
// return nil; the others only start the work.
type Effects interface {
	Commit(SealedBlock) error
	SaveState(state []byte) error
	Send(Message)
	Build(BuildRequest)
	Verify(*types.Block)
	Serve(ServeRequest)
	AddTxs(raw [][]byte)
	WantTxs(max int)
}

// Apply carries out rd in the order documented on Ready. An error from
// Commit or SaveState stops it there: what follows must not happen (the
// engine halts, or the simulated node crashed).
func Apply(rd Ready, fx Effects) error {
	for _, sb := range rd.Commits {
		if err := fx.Commit(sb); err != nil {
			return fmt.Errorf("commit block %d %s: %w", sb.Block.NumberU64(), sb.Block.Hash(), err)
		}
	}
	if rd.State != nil {
		if err := fx.SaveState(rd.State); err != nil {
			return fmt.Errorf("save consensus state: %w", err)
		}
	}
	for _, m := range rd.Messages {
		fx.Send(m)
	}
	if rd.Build != nil {
		fx.Build(*rd.Build)
	}
	for _, b := range rd.Verify {
		fx.Verify(b)
	}
	for _, s := range rd.Serve {
		fx.Serve(s)
	}
	if len(rd.Txs) > 0 {
		fx.AddTxs(rd.Txs)
	}
	if rd.WantTxs > 0 {
		fx.WantTxs(rd.WantTxs)
	}
	return nil
}

// BuildFor carries out a BuildRequest against a chain and a pool: the one
// rule for empty blocks and timestamps, shared by the Driver and the
// simulator.
func BuildFor(chain Chain, pool Pool, self NodeID, req BuildRequest, now time.Time) (*types.Block, error) {
	if req.Parent == nil {
		return nil, errors.New("build request without a parent")
	}
	if !req.Empty && !pool.Pending() && !chain.Due() {
		return nil, nil
	}
	// Timestamps never go back; sub-second blocks share a second.
	ts := max(uint64(max(now.Unix(), 0)), req.Parent.Time)
	var (
		b   *types.Block
		err error
	)
	if mb, ok := chain.(MaxTxsBuilder); ok && req.MaxTxs > 0 {
		b, err = mb.BuildBlockMax(req.Parent, ts, self, req.MaxTxs)
	} else {
		b, err = chain.BuildBlock(req.Parent, ts, self)
	}
	if err != nil {
		return nil, err
	}
	if len(b.Transactions()) == 0 && !req.Empty && !chain.Due() {
		return nil, nil
	}
	return b, nil
}

// BlockReader reads committed blocks (Chain does).
type BlockReader interface {
	BlockByNumber(number uint64) (*types.Block, []byte)
}

// ServeFrom carries out a ServeRequest against a chain, as Apply's owner
// does.
func ServeFrom(chain BlockReader, req ServeRequest) []SealedBlock {
	out := make([]SealedBlock, 0, req.Count+1)
	for n := req.From; n < req.From+uint64(max(req.Count, 0)); n++ {
		b, seal := chain.BlockByNumber(n)
		if b == nil {
			break
		}
		out = append(out, SealedBlock{Block: b, Seal: seal})
	}
	if req.Anchor != 0 {
		if b, seal := chain.BlockByNumber(req.Anchor); b != nil {
			out = append(out, SealedBlock{Block: b, Seal: seal})
		}
	}
	return out
}
