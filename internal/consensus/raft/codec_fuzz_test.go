package raft

import (
	"bytes"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

// FuzzCodec feeds the same bytes to every decoder of the engine's
// messages, raft entries, snapshots, configuration change contexts and
// seals. None panics; what decodes is bounded by the limits passed, and
// encodes back to the input (or, for blocks, to a block of the same hash).
func FuzzCodec(f *testing.F) {
	const maxBytes, maxTxs, maxBlocks = 1 << 20, 64, 8
	blk := types.NewBlock(&types.Header{Number: big.NewInt(7), Difficulty: new(big.Int), GasLimit: 30_000_000, BaseFee: big.NewInt(1)},
		&types.Body{Transactions: []*types.Transaction{simnet.Tx(1)}, Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
	blkRLP, _ := rlp.EncodeToBytes(blk)
	entry, _ := encodeBlockEntry(blk)
	txs, _ := encodeTxs([][]byte{fakeTxBytes(), {0xc0}})
	resp, _ := encodeBlockResponse(&blockResponse{Nonce: 3, Blocks: []blockWithSeal{{Block: blkRLP, Seal: encodeSeal(9, 2)}}})
	for _, seed := range [][]byte{
		txs[1:],
		encodeBlockRequest(&blockRequest{Nonce: 1, From: 2, Count: 3, TargetNumber: 4, TargetHash: common.Hash{5}})[1:],
		resp[1:],
		entry,
		encodeSeal(9, 2),
		encodeSnapshot(SnapshotData{Height: 5, Hash: common.Hash{1}}, nil),
		encodeSnapshot(SnapshotData{Height: 5, Hash: common.Hash{1}}, []consensus.NodeID{{1}, {2}}),
		encodeNodeList([]consensus.NodeID{{3}}),
		{},
		{0xc0},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if typ, body, err := openEnvelope(data, maxBytes); err == nil && !bytes.Equal(envelope(typ, body), data) {
			t.Fatal("envelope does not re-encode")
		}
		if raw, err := decodeTxs(data, maxTxs); err == nil {
			if len(raw) > maxTxs {
				t.Fatalf("%d forwarded transactions accepted, at most %d", len(raw), maxTxs)
			}
			if again, err := encodeTxs(raw); err != nil || !bytes.Equal(again[1:], data) {
				t.Fatalf("forwarded transactions re-encode to %x (%v)", again, err)
			}
		}
		if r, err := decodeBlockRequest(data); err == nil && !bytes.Equal(encodeBlockRequest(r)[1:], data) {
			t.Fatal("block request does not re-encode")
		}
		if nonce, blocks, err := decodeBlockResponse(data, maxBlocks); err == nil {
			if len(blocks) > maxBlocks {
				t.Fatalf("%d blocks accepted, at most %d", len(blocks), maxBlocks)
			}
			out := blockResponse{Nonce: nonce}
			for _, b := range blocks {
				raw, err := rlp.EncodeToBytes(b.block)
				if err != nil {
					t.Fatalf("a decoded block does not encode: %v", err)
				}
				out.Blocks = append(out.Blocks, blockWithSeal{Block: raw, Seal: b.seal})
			}
			again, err := encodeBlockResponse(&out)
			if err != nil {
				t.Fatal(err)
			}
			n2, blocks2, err := decodeBlockResponse(again[1:], maxBlocks)
			if err != nil || n2 != nonce || len(blocks2) != len(blocks) {
				t.Fatalf("re-encoded block response: %v", err)
			}
			for i := range blocks {
				if blocks[i].block.Hash() != blocks2[i].block.Hash() || !bytes.Equal(blocks[i].seal, blocks2[i].seal) {
					t.Fatalf("block %d changed through a re-encoding", i)
				}
			}
		}
		if b, err := decodeBlockEntry(data); err == nil {
			again, err := encodeBlockEntry(b)
			if err != nil {
				t.Fatalf("a decoded block entry does not encode: %v", err)
			}
			if b2, err := decodeBlockEntry(again); err != nil || b2.Hash() != b.Hash() {
				t.Fatalf("block entry changed through a re-encoding: %v", err)
			}
		}
		if index, term, ok := decodeSeal(data); ok && !bytes.Equal(encodeSeal(index, term), data) {
			t.Fatal("seal does not re-encode")
		}
		if d, members, err := decodeSnapshot(data); err == nil {
			if len(members) > maxListedMembers {
				t.Fatalf("snapshot lists %d members", len(members))
			}
			if !bytes.Equal(encodeSnapshot(d, members), data) {
				t.Fatal("snapshot data does not re-encode")
			}
		}
		if ids, err := decodeNodeList(data); err == nil && !bytes.Equal(encodeNodeList(ids), data) {
			t.Fatal("node list does not re-encode")
		}
		_, _ = decodeRaftMsg(data)
	})
}
