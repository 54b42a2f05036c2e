package bft

import (
	"bytes"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/trie"
)

// FuzzDecodeMessage: every message a peer may send, decoded without its
// signature checked (what Step does first). Nothing panics; a refusal
// wraps ErrMalformed; what decodes has a round within MaxRound and a
// valid round below it, and encodes back to a message that decodes to the
// same fields.
func FuzzDecodeMessage(f *testing.F) {
	blk := types.NewBlock(&types.Header{Number: big.NewInt(3), Difficulty: new(big.Int), GasLimit: 30_000_000, BaseFee: big.NewInt(1)},
		&types.Body{Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
	sig := bytes.Repeat([]byte{7}, 65)
	for _, seed := range [][]byte{
		encodeVote(MsgPrevote, 3, 0, blk.Hash(), sig),
		encodeVote(MsgPrecommit, 3, 2, common.Hash{}, sig),
		encodeProposal(3, 0, -1, blk, nil, sig),
		encodeProposal(3, 2, 1, blk, [][]byte{sig, sig}, sig),
		encodeStatus(3, 1, sig),
		EncodeSyncRequest(4),
		EncodeSyncBlock(blk, EncodeCertificate(Certificate{Round: 1, Sigs: [][]byte{sig}})),
		{byte(MsgProposal), 0xc0},
		{0xff, 0xc0},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := decodeMessage(payload)
		if err != nil {
			if m != nil {
				t.Fatal("a message and an error")
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("refusal %v does not wrap ErrMalformed", err)
			}
			return
		}
		if m.round < 0 || m.round > MaxRound || m.validRound < -1 || (m.validRound >= 0 && m.validRound >= m.round) {
			t.Fatalf("round %d, valid round %d accepted", m.round, m.validRound)
		}
		var again []byte
		switch m.typ {
		case MsgPrevote, MsgPrecommit:
			again = encodeVote(m.typ, m.height, m.round, m.hash, m.sig)
		case MsgProposal:
			again = encodeProposal(m.height, m.round, m.validRound, m.block, m.just, m.sig)
		case MsgStatus:
			again = encodeStatus(m.height, m.round, m.sig)
		case MsgSyncRequest:
			again = EncodeSyncRequest(m.height)
		case MsgSyncBlock:
			again = EncodeSyncBlock(m.block, m.seal)
		default:
			t.Fatalf("decoded a message of type %d", m.typ)
		}
		m2, err := decodeMessage(again)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", m.typ, err)
		}
		if m2.typ != m.typ || m2.height != m.height || m2.round != m.round || m2.hash != m.hash || m2.validRound != m.validRound ||
			!bytes.Equal(m2.sig, m.sig) || !bytes.Equal(m2.seal, m.seal) || len(m2.just) != len(m.just) {
			t.Fatalf("%s changed through a re-encoding", m.typ)
		}
		if m.typ != MsgProposal && m.typ != MsgSyncBlock && !bytes.Equal(again, payload) {
			t.Fatalf("%s re-encodes to other bytes", m.typ)
		}
	})
}

// FuzzCertificateRoundTrip: a commit certificate (a block's seal) that
// decodes is bounded and encodes back to its bytes.
func FuzzCertificateRoundTrip(f *testing.F) {
	f.Add(EncodeCertificate(Certificate{Round: 1, Sigs: [][]byte{make([]byte, 65)}}))
	f.Add(EncodeCertificate(Certificate{}))
	f.Add([]byte{0xc3, 0x01, 0x80, 0xc0})
	f.Fuzz(func(t *testing.T, seal []byte) {
		c, err := DecodeCertificate(seal)
		if err != nil {
			return
		}
		if c.Round < 0 || c.Round > MaxRound || len(c.Sigs) > MaxValidators {
			t.Fatalf("certificate of round %d with %d signatures accepted", c.Round, len(c.Sigs))
		}
		if !bytes.Equal(EncodeCertificate(c), seal) {
			t.Fatal("certificate re-encodes to other bytes")
		}
	})
}
