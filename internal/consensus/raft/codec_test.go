package raft

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

func TestEnvelopeBounds(t *testing.T) {
	for _, tc := range []struct {
		msg  []byte
		want error
	}{
		{nil, ErrEmptyMessage},
		{[]byte{0}, ErrUnknownMsgType},
		{[]byte{numMsgTypes}, ErrUnknownMsgType},
		{make([]byte, 101), ErrTooLarge},
	} {
		if tc.msg != nil && len(tc.msg) > 1 {
			tc.msg[0] = byte(MsgRaft)
		}
		if _, _, err := openEnvelope(tc.msg, 100); !errors.Is(err, tc.want) {
			t.Errorf("openEnvelope(%x): %v, want %v", tc.msg[:min(len(tc.msg), 4)], err, tc.want)
		}
	}
	typ, body, err := openEnvelope(envelope(MsgTxs, []byte{0xc0}), 100)
	if err != nil || typ != MsgTxs || !bytes.Equal(body, []byte{0xc0}) {
		t.Fatalf("round trip: %v %v %x", typ, err, body)
	}
}

func TestSealAndSnapshotData(t *testing.T) {
	idx, term, ok := decodeSeal(encodeSeal(1<<40+7, 9))
	if !ok || idx != 1<<40+7 || term != 9 {
		t.Fatalf("seal round trip: %d %d %v", idx, term, ok)
	}
	for _, bad := range [][]byte{nil, {1}, append([]byte{2}, make([]byte, 16)...)} {
		if _, _, ok := decodeSeal(bad); ok {
			t.Errorf("seal %x accepted", bad)
		}
	}
	sd := SnapshotData{Height: 12345, Hash: common.HexToHash("0xabcdef")}
	got, err := decodeSnapshotData(sd.encode())
	if err != nil || got != sd {
		t.Fatalf("snapshot data round trip: %+v %v", got, err)
	}
	if _, err := decodeSnapshotData([]byte("boot")); err == nil {
		t.Fatal("foreign snapshot data accepted")
	}
}

func TestTxsAndBlockMessagesBounded(t *testing.T) {
	payload, err := encodeTxs([][]byte{{1}, {2}, {3}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeTxs(payload[1:], 2); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("3 txs over a bound of 2: %v", err)
	}
	raw, err := decodeTxs(payload[1:], 3)
	if err != nil || len(raw) != 3 {
		t.Fatalf("decode txs: %v %d", err, len(raw))
	}
	blk, _ := encodeBlockEntry(simnet.Genesis)
	resp, err := encodeBlockResponse(&blockResponse{Nonce: 4, Blocks: []blockWithSeal{{Block: blk[1:], Seal: encodeSeal(1, 1)}, {Block: blk[1:]}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := decodeBlockResponse(resp[1:], 1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("2 blocks over a bound of 1: %v", err)
	}
	nonce, blocks, err := decodeBlockResponse(resp[1:], 2)
	if err != nil || nonce != 4 || len(blocks) != 2 || blocks[0].block.Hash() != simnet.Genesis.Hash() {
		t.Fatalf("decode block response: %v %d %d", err, nonce, len(blocks))
	}
	req := &blockRequest{Nonce: 1, From: 2, Count: 3, TargetNumber: 4, TargetHash: common.HexToHash("0x05")}
	got, err := decodeBlockRequest(encodeBlockRequest(req)[1:])
	if err != nil || *got != *req {
		t.Fatalf("block request round trip: %+v %v", got, err)
	}
}

func TestSnapshotMembersAndNodeList(t *testing.T) {
	sd := SnapshotData{Height: 7, Hash: common.HexToHash("0x77")}
	members := []consensus.NodeID{nodeID(4), nodeID(5)}
	enc := encodeSnapshot(sd, members)
	if enc[0] != snapVersionMembers || len(enc) != snapLen+2*common.AddressLength {
		t.Fatalf("encoding %x", enc)
	}
	got, listed, err := decodeSnapshot(enc)
	if err != nil || got != sd || !slices.Equal(listed, members) {
		t.Fatalf("round trip: %+v %v %v", got, listed, err)
	}
	// Without members it is the version 1 encoding.
	if v1 := encodeSnapshot(sd, nil); !bytes.Equal(v1, sd.encode()) || v1[0] != snapVersion {
		t.Fatalf("no members: %x", v1)
	}
	for _, bad := range [][]byte{
		enc[:len(enc)-1],                         // a torn node id
		enc[:snapLen],                            // version 2 without members
		append(sd.encode(), make([]byte, 20)...), // version 1 with trailing bytes
	} {
		if _, _, err := decodeSnapshot(bad); err == nil {
			t.Errorf("snapshot data %x accepted", bad)
		}
	}
	if _, err := decodeNodeList(make([]byte, 21)); err == nil {
		t.Error("node list of 21 bytes accepted")
	}
}
