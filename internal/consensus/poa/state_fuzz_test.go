package poa

import (
	"bytes"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// FuzzDecodeStateBody: the body of a node's persisted state (RLP after a
// keccak checksum), with the checksum made valid so that the fuzzer
// reaches the decoding. Nothing panics; a refusal wraps ErrCorruptState;
// what decodes encodes back to the same state.
func FuzzDecodeStateBody(f *testing.F) {
	blk := types.NewBlockWithHeader(&types.Header{Number: big.NewInt(3), Difficulty: new(big.Int)})
	sb := SealedBlock{Block: blk, Ballot: Ballot{3, 1}, Sig: bytes.Repeat([]byte{1}, 65)}
	for _, st := range []PersistentState{
		{},
		{Promise: Ballot{4, 2}, Committed: BlockRef{Height: 2, Ballot: Ballot{2, 0}, Hash: common.Hash{9}}, Chain: []SealedBlock{sb, sb}},
	} {
		f.Add(EncodeState(st)[32:])
	}
	f.Add([]byte{0xc0})
	f.Fuzz(func(t *testing.T, body []byte) {
		st, err := DecodeState(append(crypto.Keccak256(body), body...))
		if err != nil {
			if !errors.Is(err, ErrCorruptState) {
				t.Fatalf("refusal %v does not wrap ErrCorruptState", err)
			}
			return
		}
		again := EncodeState(st)
		st2, err := DecodeState(again)
		if err != nil {
			t.Fatalf("a re-encoded state does not decode: %v", err)
		}
		if !bytes.Equal(EncodeState(st2), again) {
			t.Fatal("state changes through an encoding and a decoding")
		}
	})
}
