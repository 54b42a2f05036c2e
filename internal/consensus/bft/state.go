package bft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
)

// SavedState is what a validator must have on stable storage before any
// message it signed leaves the node (Ready.State, then Ready.Messages). With
// it a restarted validator resumes in the round it was in, keeps its lock,
// and re-sends the very messages it signed instead of signing different
// ones: it never equivocates, whatever the instant of the crash.
//
// It concerns only the height in progress; committed blocks are the host's.
type SavedState struct {
	Height uint64
	Round  int64 // the round the validator was in when it last saved

	LockedRound int64 // -1: not locked
	LockedBlock *types.Block
	ValidRound  int64 // -1: no valid block
	ValidBlock  *types.Block
	// ValidJustification is a quorum of prevote signatures for ValidBlock
	// in ValidRound, attached when the validator re-proposes it.
	ValidJustification [][]byte

	// The last proposal, prevote and precommit this validator signed at
	// Height, in wire form (nil if none).
	Proposal, Prevote, Precommit []byte
}

// ErrCorruptState is returned by UnmarshalSavedState for bytes that are
// truncated, fail their checksum, or do not decode.
var ErrCorruptState = errors.New("bft: corrupt saved state")

type savedStateWire struct {
	Height             uint64
	Round              uint64
	LockedRound        uint64 // +1
	LockedBlock        []byte // RLP of the block, empty = none
	ValidRound         uint64 // +1
	ValidBlock         []byte
	ValidJustification [][]byte
	Proposal           []byte
	Prevote            []byte
	Precommit          []byte
}

var stateMagic = [4]byte{'C', 'B', 'F', 'T'}

const stateVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MarshalSavedState encodes s with a header and a checksum:
//
//	magic "CBFT" | version[1] | crc32c(body)[4] | len(body)[8] | body (RLP)
func MarshalSavedState(s *SavedState) ([]byte, error) {
	w := savedStateWire{
		Height: s.Height, Round: uint64(s.Round),
		LockedRound: uint64(s.LockedRound + 1), ValidRound: uint64(s.ValidRound + 1),
		ValidJustification: s.ValidJustification,
		Proposal:           s.Proposal, Prevote: s.Prevote, Precommit: s.Precommit,
	}
	var err error
	if s.LockedBlock != nil {
		if w.LockedBlock, err = rlp.EncodeToBytes(s.LockedBlock); err != nil {
			return nil, fmt.Errorf("encode locked block: %w", err)
		}
	}
	switch {
	case s.ValidBlock == nil:
	case s.LockedBlock != nil && s.ValidBlock.Hash() == s.LockedBlock.Hash():
		// Locking on a block makes it the valid one as well: one
		// encoding (a block of thousands of transactions) serves both.
		w.ValidBlock = w.LockedBlock
	default:
		if w.ValidBlock, err = rlp.EncodeToBytes(s.ValidBlock); err != nil {
			return nil, fmt.Errorf("encode valid block: %w", err)
		}
	}
	body, err := rlp.EncodeToBytes(&w)
	if err != nil {
		return nil, fmt.Errorf("encode saved state: %w", err)
	}
	out := make([]byte, 0, 17+len(body))
	out = append(out, stateMagic[:]...)
	out = append(out, stateVersion)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(body, castagnoli))
	out = binary.BigEndian.AppendUint64(out, uint64(len(body)))
	return append(out, body...), nil
}

// UnmarshalSavedState decodes and checks what MarshalSavedState wrote.
func UnmarshalSavedState(b []byte) (*SavedState, error) {
	if len(b) < 17 || !bytes.Equal(b[:4], stateMagic[:]) {
		return nil, fmt.Errorf("%w: bad header", ErrCorruptState)
	}
	if b[4] != stateVersion {
		return nil, fmt.Errorf("%w: version %d", ErrCorruptState, b[4])
	}
	sum := binary.BigEndian.Uint32(b[5:9])
	n := binary.BigEndian.Uint64(b[9:17])
	body := b[17:]
	if uint64(len(body)) != n {
		return nil, fmt.Errorf("%w: %d body bytes, header says %d", ErrCorruptState, len(body), n)
	}
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorruptState)
	}
	var w savedStateWire
	if err := rlp.DecodeBytes(body, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptState, err)
	}
	if w.Round > MaxRound || w.LockedRound > MaxRound+1 || w.ValidRound > MaxRound+1 {
		return nil, fmt.Errorf("%w: round out of range", ErrCorruptState)
	}
	s := &SavedState{
		Height: w.Height, Round: int64(w.Round),
		LockedRound: int64(w.LockedRound) - 1, ValidRound: int64(w.ValidRound) - 1,
		ValidJustification: w.ValidJustification,
		Proposal:           nilIfEmpty(w.Proposal), Prevote: nilIfEmpty(w.Prevote), Precommit: nilIfEmpty(w.Precommit),
	}
	if len(w.LockedBlock) > 0 {
		s.LockedBlock = new(types.Block)
		if err := rlp.DecodeBytes(w.LockedBlock, s.LockedBlock); err != nil {
			return nil, fmt.Errorf("%w: locked block: %v", ErrCorruptState, err)
		}
	}
	if len(w.ValidBlock) > 0 {
		s.ValidBlock = new(types.Block)
		if err := rlp.DecodeBytes(w.ValidBlock, s.ValidBlock); err != nil {
			return nil, fmt.Errorf("%w: valid block: %v", ErrCorruptState, err)
		}
	}
	if (s.LockedRound >= 0) != (s.LockedBlock != nil) || (s.ValidRound >= 0) != (s.ValidBlock != nil) {
		return nil, fmt.Errorf("%w: round and block disagree", ErrCorruptState)
	}
	return s, nil
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
