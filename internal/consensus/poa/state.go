package poa

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
)

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

// stateRLP is the stored form of a PersistentState.
type stateRLP struct {
	Version   uint
	Promise   Ballot
	Committed BlockRef
	Chain     []sealedRLP
}

const stateVersion = 1

// EncodeState is the byte form of st: a 32-byte keccak checksum, then RLP.
func EncodeState(st PersistentState) []byte {
	b, err := rlp.EncodeToBytes(stateRLP{Version: stateVersion, Promise: st.Promise, Committed: st.Committed, Chain: toRLP(st.Chain)})
	if err != nil {
		panic(fmt.Sprintf("poa: encode state: %v", err))
	}
	return append(crypto.Keccak256(b), b...)
}

// ErrCorruptState reports a stored state that fails its checksum or decoding.
var ErrCorruptState = errors.New("poa: corrupt persisted state")

// DecodeState parses EncodeState's output.
func DecodeState(data []byte) (PersistentState, error) {
	if len(data) < 32 {
		return PersistentState{}, fmt.Errorf("%w: %d bytes", ErrCorruptState, len(data))
	}
	sum, body := data[:32], data[32:]
	if !bytes.Equal(sum, crypto.Keccak256(body)) {
		return PersistentState{}, fmt.Errorf("%w: checksum mismatch", ErrCorruptState)
	}
	var s stateRLP
	if err := rlp.DecodeBytes(body, &s); err != nil {
		return PersistentState{}, fmt.Errorf("%w: %v", ErrCorruptState, err)
	}
	if s.Version != stateVersion {
		return PersistentState{}, fmt.Errorf("%w: version %d", ErrCorruptState, s.Version)
	}
	st := PersistentState{Promise: s.Promise, Committed: s.Committed}
	for _, r := range s.Chain {
		sb, err := fromRLP(r)
		if err != nil {
			return PersistentState{}, fmt.Errorf("%w: %v", ErrCorruptState, err)
		}
		st.Chain = append(st.Chain, sb)
	}
	return st, nil
}
