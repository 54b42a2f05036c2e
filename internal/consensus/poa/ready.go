package poa

import (
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
)

// Ready is a batch of work the core hands to its driver (the adapter, or a
// simulator). The driver, in this order:
//
//  1. persists State durably, if non-nil (it replaces the previous one);
//  2. hands Commit to Host.CommitBlock, in order (each with its Seal());
//  3. sends Messages;
//  4. calls Core.Advance;
//  5. at any time after, runs Build and Verify and reports each result with
//     Core.BuildDone and Core.VerifyDone.
//
// Persisting before sending is what makes a vote a promise that survives a
// crash. The driver owns the Ready; the core keeps no reference to it.
type Ready struct {
	State    *PersistentState
	Commit   []SealedBlock
	Messages []Message
	Build    *BuildRequest
	Verify   []*types.Block
}

// Message is an outgoing engine message. A zero To means broadcast.
type Message struct {
	To      consensus.NodeID
	Payload []byte
}

// Broadcast reports whether the message goes to every peer.
func (m Message) Broadcast() bool { return m.To == (consensus.NodeID{}) }

// BuildRequest asks the driver to build a block on Parent by calling
// Host.BuildBlock(Parent, timestamp, self), and to report with BuildDone.
type BuildRequest struct {
	Ballot Ballot
	Parent *types.Header
}

// PersistentState is what a node must find again after a crash. It is
// small: the promise and the chain of accepted blocks above the last block
// handed to Host.CommitBlock (at most Lookahead blocks).
type PersistentState struct {
	// Promise is the highest ballot this node voted for or accepted a
	// block at; it never votes or accepts below it again.
	Promise Ballot
	// Committed is the highest block known to be committed by a quorum.
	Committed BlockRef
	// Chain is the node's accepted chain above its final block, parents
	// first; the last one is its tip.
	Chain []SealedBlock
}

// BlockRef names a sealed block: its number, hash and the ballot it was
// sealed at.
type BlockRef struct {
	Height uint64
	Ballot Ballot
	Hash   common.Hash
}

// BlockSource reads blocks already handed to Host.CommitBlock; the
// consensus.Host satisfies it. The core reads it (as etcd raft reads its
// Storage) to serve catch-up requests and to answer Head.
type BlockSource interface {
	BlockByNumber(number uint64) (*types.Block, []byte)
}

// Status is a snapshot of a core's position, for tests and metrics.
type Status struct {
	Tip       BlockRef
	Final     uint64
	Committed BlockRef
	Promise   Ballot
}

// Stats count what the core dropped and why.
type Stats struct {
	BadMessages  uint64 // undecodable or oversized
	BadSeals     uint64 // signer not the ballot's authority, or bad signature
	Equivocation uint64 // a second block at one ballot
	Stale        uint64 // at or below the final height
	TooFar       uint64 // above the lookahead
	Full         uint64 // block store full
	Invalid      uint64 // rejected by Host.VerifyBlock
	Orphans      uint64 // fork of a final block
	Timeouts     uint64 // rounds that timed out here
	Reorgs       uint64 // tip moved to a block not extending the old tip
}
