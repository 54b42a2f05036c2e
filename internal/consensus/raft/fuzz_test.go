package raft

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
	"github.com/charter-ledger/charter/internal/durable"
)

// fuzzCore is a fresh follower core of a three-validator network.
func fuzzCore(t testing.TB) *Core {
	cfg := quietConfig()
	cfg.Validators = []consensus.NodeID{nodeID(0), nodeID(1), nodeID(2)}
	store, err := OpenWAL(durable.NewMemFS(), "/raft", cfg.SegmentBytes, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCore(cfg, nodeID(0), simnet.NewChain(nodeID(0), nil, 10), store, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func raftPayload(m *raftpb.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return envelope(MsgRaft, b)
}

// FuzzCoreStep feeds arbitrary messages from a member to a core: whatever
// the bytes, the core drops or handles them and never halts or panics.
func FuzzCoreStep(f *testing.F) {
	one := uint64(1)
	f.Add(raftPayload(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(2)), To: &one, Term: new(uint64(2))}))
	f.Add(raftPayload(&raftpb.Message{Type: raftpb.MsgApp.Enum(), From: new(uint64(2)), To: &one, Term: new(uint64(2)), Index: &one, LogTerm: &one,
		Commit: new(uint64(2)), Entries: []*raftpb.Entry{{Index: new(uint64(2)), Term: new(uint64(2)), Data: []byte{1, 0xc0}}}}))
	f.Add(raftPayload(&raftpb.Message{Type: raftpb.MsgVote.Enum(), From: new(uint64(3)), To: &one, Term: new(uint64(5)), Index: new(uint64(9)), LogTerm: new(uint64(4))}))
	f.Add(raftPayload(&raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: new(uint64(2)), To: &one, Term: new(uint64(2)),
		Snapshot: &raftpb.Snapshot{Data: SnapshotData{Height: 5, Hash: common.HexToHash("0x01")}.encode(),
			Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(10)), Term: new(uint64(2)), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}}))
	// A committed configuration change (adds a learner with a listed node
	// id) and a snapshot of a membership with a node outside the genesis.
	ccData, _ := proto.Marshal(&raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: new(derivedRaftID(nodeID(5)))}},
		Context: encodeNodeList([]consensus.NodeID{nodeID(5)})})
	f.Add(raftPayload(&raftpb.Message{Type: raftpb.MsgApp.Enum(), From: new(uint64(2)), To: &one, Term: new(uint64(2)), Index: &one, LogTerm: &one,
		Commit: new(uint64(2)), Entries: []*raftpb.Entry{{Index: new(uint64(2)), Term: new(uint64(2)), Type: raftpb.EntryConfChangeV2.Enum(), Data: ccData}}}))
	f.Add(raftPayload(&raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: new(uint64(2)), To: &one, Term: new(uint64(2)),
		Snapshot: &raftpb.Snapshot{Data: encodeSnapshot(SnapshotData{Height: 5, Hash: common.HexToHash("0x01")}, []consensus.NodeID{nodeID(5)}),
			Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(10)), Term: new(uint64(2)), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, derivedRaftID(nodeID(5))}}}}}))
	txs, _ := encodeTxs([][]byte{{0xc0}, fakeTxBytes()})
	f.Add(txs)
	f.Add(encodeBlockRequest(&blockRequest{Nonce: 1, From: 0, Count: 1}))
	resp, _ := encodeBlockResponse(&blockResponse{Nonce: 1, Blocks: []blockWithSeal{{Block: []byte{0xc0}, Seal: []byte{1}}}})
	f.Add(resp)
	f.Add([]byte{})
	f.Add([]byte{9, 1, 2, 3})
	f.Fuzz(func(t *testing.T, payload []byte) {
		c := fuzzCore(t)
		_ = c.Step(nodeID(1), payload)
		if err := c.Err(); err != nil {
			t.Fatalf("Step halted the core: %v", err)
		}
		for i := 0; i < 3; i++ {
			c.Tick()
			if err := c.Err(); err != nil {
				t.Fatalf("Tick after the message halted the core: %v", err)
			}
			if c.HasReady() {
				rd := c.Ready()
				c.Advance()
				for _, req := range rd.Serve {
					c.Served(req, nil)
				}
			}
		}
	})
}

func fakeTxBytes() []byte {
	b, _ := simnet.Tx(7).MarshalBinary()
	return b
}
