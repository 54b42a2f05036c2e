package simnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/charter-ledger/charter/internal/consensus"
)

// leaderCore is the smallest engine there is, to test the harness: node
// 0 seals every block and broadcasts it; every node commits the blocks of
// node 0 in order and saves the height it reached; a node behind asks
// node 0 for what it lacks. It is what a fifth engine's author writes: a
// core, nothing else, and the harness gives it crashes, partitions and
// the checkers.
type leaderCore struct {
	self, leader consensus.NodeID
	head         *types.Header
	building     bool
	seq          uint64
	rd           consensus.Ready
	saveEvery    bool // save the state at every commit
	broken       bool // a planted bug: commit a block that skips a height
}

type blockMsg struct {
	Block *types.Block
	Seal  []byte
}

func (c *leaderCore) Tick() {
	if c.self == c.leader && !c.building {
		c.seq++
		c.building = true
		c.rd.Build = &consensus.BuildRequest{ID: c.seq, Parent: c.head, Empty: true}
	}
	if c.self != c.leader {
		req := binary.BigEndian.AppendUint64([]byte{'?'}, c.head.Number.Uint64()+1)
		c.rd.Messages = append(c.rd.Messages, consensus.Message{To: c.leader, Payload: req})
	}
}

func (c *leaderCore) Step(from consensus.NodeID, p []byte) error {
	if len(p) == 9 && p[0] == '?' && c.self == c.leader {
		c.rd.Serve = append(c.rd.Serve, consensus.ServeRequest{To: from, From: binary.BigEndian.Uint64(p[1:]), Count: 4})
		return nil
	}
	var m blockMsg
	if err := rlp.DecodeBytes(p, &m); err != nil {
		return err
	}
	if from != c.leader || m.Block.ParentHash() != c.head.Hash() {
		if !c.broken || m.Block.NumberU64() <= c.head.Number.Uint64() {
			return errors.New("not next")
		}
	}
	c.commit(m.Block)
	return nil
}

func (c *leaderCore) commit(b *types.Block) {
	c.rd.Commits = append(c.rd.Commits, consensus.SealedBlock{Block: b, Seal: []byte{1}})
	c.head = b.Header()
	if c.saveEvery {
		c.rd.State = binary.BigEndian.AppendUint64(nil, c.head.Number.Uint64())
	}
}

func (c *leaderCore) Notify([]*types.Transaction) {}

func (c *leaderCore) Built(req consensus.BuildRequest, b *types.Block, err error) {
	if req.ID != c.seq {
		return
	}
	c.building = false
	if err != nil || b == nil || b.ParentHash() != c.head.Hash() {
		return
	}
	c.commit(b)
	payload, _ := rlp.EncodeToBytes(blockMsg{Block: b, Seal: []byte{1}})
	c.rd.Messages = append(c.rd.Messages, consensus.Message{Broadcast: true, Payload: payload})
}

func (c *leaderCore) Verified(common.Hash, error) {}

func (c *leaderCore) Served(req consensus.ServeRequest, blocks []consensus.SealedBlock) {
	for _, sb := range blocks {
		payload, _ := rlp.EncodeToBytes(blockMsg{Block: sb.Block, Seal: sb.Seal})
		c.rd.Messages = append(c.rd.Messages, consensus.Message{To: req.To, Payload: payload})
	}
}

func (c *leaderCore) SetValidators(uint64, []consensus.NodeID) error { return nil }
func (c *leaderCore) HasReady() bool                                 { return !c.rd.Empty() }
func (c *leaderCore) Ready() consensus.Ready {
	rd := c.rd
	c.rd = consensus.Ready{}
	return rd
}
func (c *leaderCore) Advance()                      {}
func (c *leaderCore) Head(uint64) consensus.HeadRef { return consensus.HeadRef{Latest: true} }
func (c *leaderCore) Stats() consensus.Stats        { return consensus.Stats{Height: c.head.Number.Uint64()} }
func (c *leaderCore) Err() error                    { return nil }

func decodeHeight(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}

func toySim(t *testing.T, seed int64, crashRate float64, broken bool) (*Sim, error) {
	t.Helper()
	ids := testIDs(4)
	return NewSim(Config{
		Seed:         seed,
		Faults:       Faults{DropRate: 0.1, DupRate: 0.05, MinDelay: 1, MaxDelay: 30},
		IDs:          ids,
		StateFile:    "/data/toy-state",
		CrashRate:    crashRate,
		RestartAfter: 20,
		SlowHost:     true,
		Open: func(n *Node, saved []byte) (consensus.Core, error) {
			if saved != nil {
				h, ok := decodeHeight(saved)
				if !ok {
					return nil, fmt.Errorf("state of %d bytes", len(saved))
				}
				// The state is saved after the commits of its Ready:
				// it never runs ahead of the chain.
				if h > n.Chain.Height() {
					return nil, fmt.Errorf("saved height %d above the chain's %d", h, n.Chain.Height())
				}
			}
			return &leaderCore{self: n.ID, leader: ids[0], head: n.Chain.Head(), saveEvery: true, broken: broken}, nil
		},
	})
}

// A toy engine under the harness: crashes with power loss at every Ready
// step and in the middle of writes, drops, delays, partitions; it stays
// safe and live, every transaction committed once, and every restart
// finds a whole state file no newer than its chain.
func TestSimRunsAnyCore(t *testing.T) {
	RunSeeds(t, 100, 10_000, func(seed int64) error {
		s, err := toySim(t, seed, 0.05, false)
		if err != nil {
			return err
		}
		for i := 0; i < 300; i++ {
			if i%3 == 0 {
				s.Submit(Tx(uint64(i)), s.Nodes[0])
			}
			if s.Rand.Intn(50) == 0 {
				s.Partition(s.Nodes[:2], s.Nodes[2:])
			}
			if s.Rand.Intn(30) == 0 {
				s.Net.Heal()
			}
			s.Step()
			if err := s.Err(); err != nil {
				return err
			}
		}
		if err := s.Heal(Faults{MinDelay: 1, MaxDelay: 5}); err != nil {
			return err
		}
		target := s.MaxHeight() + 3
		if !s.RunUntil(3000, 100, func() bool { return s.MinHeight(s.Nodes) >= target && len(s.Pending()) == 0 }) {
			return fmt.Errorf("liveness: heights %d..%d, %d pending, err %v", s.MinHeight(s.Nodes), s.MaxHeight(), len(s.Pending()), s.Err())
		}
		return s.FinalCheck()
	})
}

// The checkers can fail: a planted bug (followers commit a block that
// skips heights) is caught.
func TestSimCatchesABrokenCore(t *testing.T) {
	for seed := int64(1); seed <= 50; seed++ {
		s, err := toySim(t, seed, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 200 && s.Err() == nil; i++ {
			if s.Rand.Intn(10) == 0 {
				s.Crash(s.Nodes[1+s.Rand.Intn(3)])
			}
			if s.Rand.Intn(10) == 0 {
				for _, n := range s.Nodes {
					if err := s.Restart(n); err != nil {
						t.Fatal(err)
					}
				}
			}
			s.Step()
		}
		if err := s.Err(); err != nil {
			t.Logf("seed %d: caught: %v", seed, err)
			return
		}
	}
	t.Fatal("a core that commits out of order was never caught")
}
