package raft

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/charter-ledger/charter/internal/consensus"
)

// MsgType is the first byte of every engine message (the envelope). The
// rest of the message is the payload of that type.
type MsgType byte

// Engine message types. Values are part of the wire format: never reuse one.
const (
	// MsgRaft carries one raftpb.Message, protobuf encoded.
	MsgRaft MsgType = 1
	// MsgTxs carries raw transactions a follower forwards to the leader:
	// an RLP list of byte strings (each a transaction's binary encoding).
	MsgTxs MsgType = 2
	// MsgBlockRequest asks a peer for committed blocks (blockRequest).
	MsgBlockRequest MsgType = 3
	// MsgBlockResponse answers a MsgBlockRequest (blockResponse).
	MsgBlockResponse MsgType = 4

	numMsgTypes = 5
)

func (t MsgType) String() string {
	switch t {
	case MsgRaft:
		return "raft"
	case MsgTxs:
		return "txs"
	case MsgBlockRequest:
		return "block-request"
	case MsgBlockResponse:
		return "block-response"
	}
	return fmt.Sprintf("unknown(%d)", byte(t))
}

// Errors of message decoding. A message that fails to decode is dropped and
// counted; it never stops the engine.
var (
	ErrEmptyMessage   = errors.New("raft: empty message")
	ErrUnknownMsgType = errors.New("raft: unknown message type")
	ErrTooLarge       = errors.New("raft: message too large")
)

// envelope prefixes payload with its type byte.
func envelope(t MsgType, payload []byte) []byte {
	out := make([]byte, 1+len(payload))
	out[0] = byte(t)
	copy(out[1:], payload)
	return out
}

// openEnvelope splits a message into its type and payload. The payload
// aliases msg.
func openEnvelope(msg []byte, maxBytes int) (MsgType, []byte, error) {
	if len(msg) == 0 {
		return 0, nil, ErrEmptyMessage
	}
	if len(msg) > maxBytes {
		return 0, nil, fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(msg), maxBytes)
	}
	t := MsgType(msg[0])
	if t == 0 || t >= numMsgTypes {
		return 0, nil, fmt.Errorf("%w %d", ErrUnknownMsgType, msg[0])
	}
	return t, msg[1:], nil
}

func encodeRaftMsg(m *raftpb.Message) ([]byte, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal raft message: %w", err)
	}
	return envelope(MsgRaft, b), nil
}

// peerProto decodes what peers send: fields this version does not know are
// dropped, never carried into etcd raft (which compares configuration
// states whole and panics when a snapshot's carries unknown fields).
var peerProto = proto.UnmarshalOptions{DiscardUnknown: true}

func decodeRaftMsg(payload []byte) (*raftpb.Message, error) {
	m := new(raftpb.Message)
	if err := peerProto.Unmarshal(payload, m); err != nil {
		return nil, fmt.Errorf("decode raft message: %w", err)
	}
	return m, nil
}

// encodeTxs builds one MsgTxs message.
func encodeTxs(raw [][]byte) ([]byte, error) {
	b, err := rlp.EncodeToBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("encode forwarded txs: %w", err)
	}
	return envelope(MsgTxs, b), nil
}

func decodeTxs(payload []byte, maxTxs int) ([][]byte, error) {
	var raw [][]byte
	if err := rlp.DecodeBytes(payload, &raw); err != nil {
		return nil, fmt.Errorf("decode forwarded txs: %w", err)
	}
	if len(raw) > maxTxs {
		return nil, fmt.Errorf("%w: %d forwarded txs > %d", ErrTooLarge, len(raw), maxTxs)
	}
	return raw, nil
}

// blockRequest asks for up to Count committed blocks from number From on.
// The server answers only if its block at TargetNumber has TargetHash: then
// the blocks it sends are ancestors of the target, the block a raft
// snapshot told the requester to reach.
type blockRequest struct {
	Nonce        uint64
	From         uint64
	Count        uint64
	TargetNumber uint64
	TargetHash   common.Hash
}

type blockWithSeal struct {
	Block rlp.RawValue // RLP of *types.Block
	Seal  []byte
}

// blockResponse carries consecutive committed blocks, ascending, with the
// seal each was committed with. Nonce echoes the request.
type blockResponse struct {
	Nonce  uint64
	Blocks []blockWithSeal
}

func encodeBlockRequest(r *blockRequest) []byte {
	b, err := rlp.EncodeToBytes(r)
	if err != nil {
		panic(fmt.Sprintf("raft: encode block request: %v", err)) // fixed-size fields cannot fail
	}
	return envelope(MsgBlockRequest, b)
}

func decodeBlockRequest(payload []byte) (*blockRequest, error) {
	r := new(blockRequest)
	if err := rlp.DecodeBytes(payload, r); err != nil {
		return nil, fmt.Errorf("decode block request: %w", err)
	}
	return r, nil
}

func encodeBlockResponse(r *blockResponse) ([]byte, error) {
	b, err := rlp.EncodeToBytes(r)
	if err != nil {
		return nil, fmt.Errorf("encode block response: %w", err)
	}
	return envelope(MsgBlockResponse, b), nil
}

// decodedBlock is one block of a response, decoded.
type decodedBlock struct {
	block *types.Block
	seal  []byte
}

func decodeBlockResponse(payload []byte, maxBlocks int) (uint64, []decodedBlock, error) {
	var r blockResponse
	if err := rlp.DecodeBytes(payload, &r); err != nil {
		return 0, nil, fmt.Errorf("decode block response: %w", err)
	}
	if len(r.Blocks) > maxBlocks {
		return 0, nil, fmt.Errorf("%w: %d blocks > %d", ErrTooLarge, len(r.Blocks), maxBlocks)
	}
	out := make([]decodedBlock, 0, len(r.Blocks))
	for i, bs := range r.Blocks {
		b := new(types.Block)
		if err := rlp.DecodeBytes(bs.Block, b); err != nil {
			return 0, nil, fmt.Errorf("decode block response: block %d: %w", i, err)
		}
		out = append(out, decodedBlock{block: b, seal: bs.Seal})
	}
	return r.Nonce, out, nil
}

// Entry data. A raft entry proposed by this engine is a kind byte followed
// by the body; an entry with empty data is raft's own (the empty entry a
// new leader appends).
const entryBlock byte = 1 // body: RLP of *types.Block

func encodeBlockEntry(b *types.Block) ([]byte, error) {
	body, err := rlp.EncodeToBytes(b)
	if err != nil {
		return nil, fmt.Errorf("encode block %d: %w", b.NumberU64(), err)
	}
	out := make([]byte, 1+len(body))
	out[0] = entryBlock
	copy(out[1:], body)
	return out, nil
}

func decodeBlockEntry(data []byte) (*types.Block, error) {
	if len(data) == 0 || data[0] != entryBlock {
		return nil, errors.New("not a block entry")
	}
	b := new(types.Block)
	if err := rlp.DecodeBytes(data[1:], b); err != nil {
		return nil, fmt.Errorf("decode block entry: %w", err)
	}
	return b, nil
}

// Seal: what the raft engine passes to Host.CommitBlock with each block,
// stored atomically with it. It names the raft entry that committed the
// block, so that after a crash the engine knows exactly which entries the
// chain already reflects (the applied index), without a separate write.
//
//	version byte (1) | index uint64 BE | term uint64 BE
const (
	sealVersion = 1
	sealLen     = 17
)

func encodeSeal(index, term uint64) []byte {
	s := make([]byte, sealLen)
	s[0] = sealVersion
	binary.BigEndian.PutUint64(s[1:], index)
	binary.BigEndian.PutUint64(s[9:], term)
	return s
}

// decodeSeal returns the entry index and term of a seal; ok is false for a
// seal not written by this engine (nil for genesis).
func decodeSeal(s []byte) (index, term uint64, ok bool) {
	if len(s) != sealLen || s[0] != sealVersion {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(s[1:]), binary.BigEndian.Uint64(s[9:]), true
}

// Snapshot data: the chain position the applied log prefix produced, and
// the node ids of the members outside the genesis (so that a node that
// installs or restarts from the snapshot can address them).
//
//	version byte (1) | height uint64 BE | block hash (32 bytes)
//	version byte (2) | height uint64 BE | block hash (32 bytes) | node ids (20 bytes each)
//
// Version 1 is written while every member is a genesis member.
const (
	snapVersion        = 1
	snapVersionMembers = 2
	snapLen            = 1 + 8 + common.HashLength
	// maxListedMembers bounds the node ids of a snapshot or of a
	// configuration change context.
	maxListedMembers = 1024
)

// SnapshotData is the content of a raft snapshot of this engine: the last
// committed block when the snapshot was taken.
type SnapshotData struct {
	Height uint64
	Hash   common.Hash
}

func (d SnapshotData) encode() []byte { return encodeSnapshot(d, nil) }

// encodeSnapshot encodes a chain position and the node ids of the
// non-genesis members.
func encodeSnapshot(d SnapshotData, members []consensus.NodeID) []byte {
	s := make([]byte, snapLen, snapLen+len(members)*common.AddressLength)
	s[0] = snapVersion
	if len(members) > 0 {
		s[0] = snapVersionMembers
	}
	binary.BigEndian.PutUint64(s[1:], d.Height)
	copy(s[9:], d.Hash[:])
	return append(s, encodeNodeList(members)...)
}

func decodeSnapshotData(s []byte) (SnapshotData, error) {
	d, _, err := decodeSnapshot(s)
	return d, err
}

// decodeSnapshot decodes snapshot data of either version.
func decodeSnapshot(s []byte) (SnapshotData, []consensus.NodeID, error) {
	bad := fmt.Errorf("raft: snapshot data of %d bytes is not a chain position", len(s))
	if len(s) < snapLen {
		return SnapshotData{}, nil, bad
	}
	var members []consensus.NodeID
	switch s[0] {
	case snapVersion:
		if len(s) != snapLen {
			return SnapshotData{}, nil, bad
		}
	case snapVersionMembers:
		var err error
		if members, err = decodeNodeList(s[snapLen:]); err != nil || len(members) == 0 {
			return SnapshotData{}, nil, bad
		}
	default:
		return SnapshotData{}, nil, bad
	}
	return SnapshotData{Height: binary.BigEndian.Uint64(s[1:]), Hash: common.BytesToHash(s[9:snapLen])}, members, nil
}

// encodeNodeList concatenates node ids: the context of a configuration
// change (the nodes it adds or changes) and the member list of a snapshot.
func encodeNodeList(ids []consensus.NodeID) []byte {
	out := make([]byte, 0, len(ids)*common.AddressLength)
	for _, id := range ids {
		out = append(out, id[:]...)
	}
	return out
}

func decodeNodeList(b []byte) ([]consensus.NodeID, error) {
	if len(b)%common.AddressLength != 0 || len(b)/common.AddressLength > maxListedMembers {
		return nil, fmt.Errorf("raft: node list of %d bytes", len(b))
	}
	out := make([]consensus.NodeID, 0, len(b)/common.AddressLength)
	for i := 0; i < len(b); i += common.AddressLength {
		out = append(out, common.BytesToAddress(b[i:i+common.AddressLength]))
	}
	return out, nil
}
