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
	txs := []*types.Transaction{
		types.NewTx(&types.LegacyTx{Nonce: 1, Gas: 21000, GasPrice: big.NewInt(1)}),
		types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(5), Nonce: 2, Gas: 21000, GasFeeCap: big.NewInt(2), GasTipCap: big.NewInt(1)}),
	}
	txBlk := types.NewBlock(&types.Header{Number: big.NewInt(3), Difficulty: new(big.Int), GasLimit: 30_000_000},
		&types.Body{Transactions: txs}, nil, trie.NewStackTrie(nil))
	for _, seed := range [][]byte{
		encodeVote(MsgPrevote, 3, 0, blk.Hash(), sig),
		encodeVote(MsgPrecommit, 3, 2, common.Hash{}, sig),
		encodeProposal(3, 0, -1, blk, nil, sig),
		encodeProposal(3, 2, 1, blk, [][]byte{sig, sig}, sig),
		encodeStatus(3, 1, sig),
		EncodeSyncRequest(4),
		EncodeSyncBlock(blk, EncodeCertificate(Certificate{Round: 1, Sigs: [][]byte{sig}})),
		encodeCompactProposal(3, 0, -1, txBlk, nil, sig),
		encodeCompactProposal(3, 2, 1, txBlk, [][]byte{sig}, sig),
		encodeTxRequest(3, 1, txBlk.Hash(), false, []uint64{0, 1}),
		encodeTxRequest(3, 1, txBlk.Hash(), true, nil),
		encodeTxResponse(3, txBlk.Hash(), []uint64{1}, txBlk.Transactions()[1:]),
		{byte(MsgProposal), 0xc0},
		{byte(MsgCompactProposal), 0xc0},
		{byte(MsgTxResponse), 0xc4, 0x03, 0x80, 0xc0, 0xc0},
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
		case MsgCompactProposal:
			if len(m.txHashes) == 0 || len(m.txHashes) > MaxCompactTxs {
				t.Fatalf("compact proposal of %d hashes accepted", len(m.txHashes))
			}
			again = encode(MsgCompactProposal, &compactProposalWire{Height: m.height, Round: uint64(m.round), ValidRound: uint64(m.validRound + 1),
				Header: m.header, TxHashes: m.txHashes, Justification: m.just, Sig: m.sig})
		case MsgTxRequest:
			if len(m.indexes) > MaxTxRequest || (!m.full && len(m.indexes) == 0) {
				t.Fatalf("request of %d indexes accepted", len(m.indexes))
			}
			again = encodeTxRequest(m.height, m.round, m.hash, m.full, m.indexes)
		case MsgTxResponse:
			if len(m.txs) != len(m.indexes) || len(m.txs) == 0 || len(m.txs) > MaxTxRequest {
				t.Fatalf("response of %d transactions, %d indexes accepted", len(m.txs), len(m.indexes))
			}
			again = encodeTxResponse(m.height, m.hash, m.indexes, m.txs)
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
		// Blocks, headers and transactions may have several encodings.
		if m.typ != MsgProposal && m.typ != MsgSyncBlock && m.typ != MsgCompactProposal && m.typ != MsgTxResponse && !bytes.Equal(again, payload) {
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
