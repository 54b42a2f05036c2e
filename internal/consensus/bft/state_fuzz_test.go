package bft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/trie"
)

// frameSavedState puts body under the header MarshalSavedState writes.
func frameSavedState(body []byte) []byte {
	out := append([]byte{}, stateMagic[:]...)
	out = append(out, stateVersion)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(body, castagnoli))
	out = binary.BigEndian.AppendUint64(out, uint64(len(body)))
	return append(out, body...)
}

// FuzzSavedStateBody: the body of a validator's saved state (RLP under a
// checksummed header), with the header made valid so that the fuzzer
// reaches the decoding. Nothing panics; a refusal wraps ErrCorruptState;
// what decodes has rounds within MaxRound, a block exactly when it has a
// round, and marshals back to a state that unmarshals to the same one.
func FuzzSavedStateBody(f *testing.F) {
	blk := types.NewBlock(&types.Header{Number: big.NewInt(3), Difficulty: new(big.Int), GasLimit: 30_000_000, BaseFee: big.NewInt(1)},
		&types.Body{Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
	other := types.NewBlock(&types.Header{Number: big.NewInt(3), Difficulty: new(big.Int), GasLimit: 30_000_000, BaseFee: big.NewInt(1), Time: 9},
		&types.Body{Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
	sig := bytes.Repeat([]byte{7}, 65)
	for _, s := range []*SavedState{
		{Height: 3, LockedRound: -1, ValidRound: -1},
		{Height: 3, Round: 2, LockedRound: 1, LockedBlock: blk, ValidRound: 1, ValidBlock: blk, ValidJustification: [][]byte{sig, sig},
			Proposal: encodeProposal(3, 2, 1, blk, [][]byte{sig}, sig), Prevote: encodeVote(MsgPrevote, 3, 2, blk.Hash(), sig),
			Precommit: encodeVote(MsgPrecommit, 3, 2, blk.Hash(), sig)},
		// Locked on one block, a later round's quorum made another valid.
		{Height: 3, Round: 4, LockedRound: 1, LockedBlock: blk, ValidRound: 3, ValidBlock: other, ValidJustification: [][]byte{sig}},
	} {
		b, err := MarshalSavedState(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[17:])
	}
	f.Add([]byte{0xc0})
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := UnmarshalSavedState(frameSavedState(body))
		if err != nil {
			if !errors.Is(err, ErrCorruptState) {
				t.Fatalf("refusal %v does not wrap ErrCorruptState", err)
			}
			return
		}
		if s.Round < 0 || s.Round > MaxRound || s.LockedRound < -1 || s.LockedRound > MaxRound || s.ValidRound < -1 || s.ValidRound > MaxRound ||
			(s.LockedRound >= 0) != (s.LockedBlock != nil) || (s.ValidRound >= 0) != (s.ValidBlock != nil) {
			t.Fatalf("inconsistent state accepted: %+v", s)
		}
		again, err := MarshalSavedState(s)
		if err != nil {
			t.Fatalf("a loaded state does not marshal: %v", err)
		}
		s2, err := UnmarshalSavedState(again)
		if err != nil {
			t.Fatalf("a re-marshalled state does not load: %v", err)
		}
		again2, _ := MarshalSavedState(s2)
		if !bytes.Equal(again, again2) {
			t.Fatal("saved state changes through a marshal and an unmarshal")
		}
		if s.LockedBlock != nil && s2.LockedBlock.Hash() != s.LockedBlock.Hash() || s.ValidBlock != nil && s2.ValidBlock.Hash() != s.ValidBlock.Hash() {
			t.Fatal("a block of the saved state changed its hash")
		}
	})
}

// A saved state keeps its locked and valid blocks apart when they differ,
// and whole when they are one.
func TestSavedStateLockedAndValidBlocks(t *testing.T) {
	mk := func(time uint64) *types.Block {
		return types.NewBlock(&types.Header{Number: big.NewInt(5), Difficulty: new(big.Int), GasLimit: 30_000_000, BaseFee: big.NewInt(1), Time: time},
			&types.Body{Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
	}
	a, b := mk(1), mk(2)
	for _, c := range []struct{ locked, valid *types.Block }{{a, b}, {a, a}, {a, mk(1)}, {nil, b}} {
		s := &SavedState{Height: 5, Round: 3, LockedRound: -1, LockedBlock: c.locked, ValidRound: 2, ValidBlock: c.valid}
		if c.locked != nil {
			s.LockedRound = 1
		}
		raw, err := MarshalSavedState(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnmarshalSavedState(raw)
		if err != nil {
			t.Fatal(err)
		}
		if (c.locked == nil) != (got.LockedBlock == nil) || c.locked != nil && got.LockedBlock.Hash() != c.locked.Hash() {
			t.Fatalf("locked block %v came back as %v", c.locked, got.LockedBlock)
		}
		if got.ValidBlock == nil || got.ValidBlock.Hash() != c.valid.Hash() {
			t.Fatalf("valid block %s came back as %v", c.valid.Hash(), got.ValidBlock)
		}
	}
}
