package raft

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/durable"
)

// Defaults for Config fields left zero.
const (
	DefaultTickInterval    = 100 * time.Millisecond
	DefaultElectionTicks   = 10
	DefaultHeartbeatTicks  = 1
	DefaultBlockTime       = time.Second
	DefaultMaxBlockTxs     = 2000
	DefaultPipelineDepth   = 1
	DefaultSnapshotEntries = 1024
	DefaultSnapshotBytes   = 64 << 20
	DefaultCompactMargin   = 128
	DefaultMaxMessageBytes = 8 << 20 // below p2p's default frame limit (10 MiB)
	DefaultMaxSizePerMsg   = 1 << 20
	DefaultMaxInflightMsgs = 64
	DefaultSegmentBytes    = 64 << 20
	DefaultMaxBlocksPerMsg = 64
	DefaultInboxSize       = 4096
	DefaultForwardRetry    = 2 * time.Second
)

// Limits that are not tunable.
const (
	// entryOverhead is room left in a message for raft's framing around the
	// largest entry (a block) it may carry alone.
	entryOverhead = 4 << 10
	// minMessageBytes keeps MaxMessageBytes large enough for a useful block.
	minMessageBytes = 64 << 10
)

// Config of the raft engine. ConfigFromSpec fills it from the genesis;
// New takes DataDir and FS from the consensus.Env when unset. Zero fields
// take the defaults above (EnsureDefaults).
type Config struct {
	// Validators are the voting members of the genesis, in genesis order.
	// Validator i has raft id i+1. Every node of the network must use the
	// same list: it is the membership every raft log starts from, also on
	// nodes that governance adds later. Changes to the voters come through
	// Engine.SetValidators (raft configuration changes), not this list.
	Validators []consensus.NodeID
	// Learners are the observer nodes (the "read" tier): they replicate the
	// log and commit every block but never vote or lead. Learner i has raft
	// id len(Validators)+i+1. Every node must use the same list. A learner
	// that governance makes a validator is promoted; when it leaves the
	// validator set again it is demoted back to a learner.
	Learners []consensus.NodeID

	// DataDir is the folder of the raft write-ahead log (created 0700).
	DataDir string
	// FS is the file system of the WAL; nil means the operating system's.
	FS durable.FS

	// TickInterval is the length of one raft tick in real time.
	TickInterval time.Duration
	// ElectionTicks is the election timeout in ticks: a follower that hears
	// no leader for a random time in [ElectionTicks, 2*ElectionTicks) ticks
	// starts an election. Must exceed HeartbeatTicks (a ratio of 10 is
	// usual) so that a heartbeat or two lost does not depose a live leader.
	ElectionTicks int
	// HeartbeatTicks is the leader's heartbeat interval in ticks.
	HeartbeatTicks int
	// BlockTime is how often the leader asks for a block without being
	// notified (the owner builds one if transactions wait or governance
	// has work due: consensus.BuildRequest), and the interval of empty
	// blocks when ForceEmpty is set.
	BlockTime time.Duration
	// ForceEmpty makes the leader propose an empty block every BlockTime
	// when nothing waits.
	ForceEmpty bool
	// MaxBlockTxs is the most transactions one block should hold. The
	// node's BuildBlock enforces it (the engine cannot choose
	// transactions); the engine uses it to know that a full block means
	// more may wait, and to bound forwarded transaction batches.
	MaxBlockTxs int
	// PipelineDepth is how many proposed blocks may wait for commit at
	// once. 1 builds every block on the committed head. Above 1 the leader
	// builds on its last proposed block, which requires a Host whose
	// BuildBlock accepts an uncommitted (built, cached) parent.
	PipelineDepth int

	// SnapshotEntries is the number of applied entries between two
	// snapshots (a snapshot here is only a chain position, so it is cheap).
	SnapshotEntries uint64
	// SnapshotBytes also triggers a snapshot when the entries applied since
	// the last one pass this size, bounding the log kept in memory when
	// blocks are large.
	SnapshotBytes uint64
	// CompactMargin is the number of entries kept behind a snapshot, so a
	// follower slightly behind gets entries instead of a snapshot and a
	// block transfer.
	CompactMargin uint64
	// SegmentBytes is the WAL size at which it is rewritten from a
	// checkpoint into a new file.
	SegmentBytes int64

	// MaxMessageBytes bounds every engine message, sent or received. The
	// largest block the leader proposes is a little below it. It must not
	// exceed the p2p layer's frame limit.
	MaxMessageBytes int
	// MaxSizePerMsg bounds the entries of one raft append message (one
	// larger entry still goes alone).
	MaxSizePerMsg uint64
	// MaxInflightMsgs bounds the append messages in flight to one follower.
	MaxInflightMsgs int
	// MaxBlocksPerMsg bounds the blocks of one block-transfer response.
	MaxBlocksPerMsg int
	// InboxSize bounds the messages and notifications waiting for the
	// engine goroutine; more are dropped (raft retransmits).
	InboxSize int

	// ForwardRetry is how often a follower forwards the pool's pending
	// transactions to the leader again (they also go when the leader
	// changes), so that transactions whose forward was lost (no leader
	// known, a dropped message, a leader that crashed) still reach a
	// leader.
	ForwardRetry time.Duration
}

// ErrInvalidConfig is wrapped by every Config validation error.
var ErrInvalidConfig = errors.New("invalid raft config")

// EnsureDefaults fills zero fields with defaults.
func (c *Config) EnsureDefaults() {
	if c.TickInterval == 0 {
		c.TickInterval = DefaultTickInterval
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = DefaultElectionTicks
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = DefaultHeartbeatTicks
	}
	if c.BlockTime == 0 {
		c.BlockTime = DefaultBlockTime
	}
	if c.MaxBlockTxs == 0 {
		c.MaxBlockTxs = DefaultMaxBlockTxs
	}
	if c.PipelineDepth == 0 {
		c.PipelineDepth = DefaultPipelineDepth
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = DefaultSnapshotEntries
	}
	if c.SnapshotBytes == 0 {
		c.SnapshotBytes = DefaultSnapshotBytes
	}
	if c.CompactMargin == 0 {
		c.CompactMargin = DefaultCompactMargin
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = DefaultMaxSizePerMsg
	}
	if c.MaxInflightMsgs == 0 {
		c.MaxInflightMsgs = DefaultMaxInflightMsgs
	}
	if c.MaxBlocksPerMsg == 0 {
		c.MaxBlocksPerMsg = DefaultMaxBlocksPerMsg
	}
	if c.InboxSize == 0 {
		c.InboxSize = DefaultInboxSize
	}
	if c.ForwardRetry == 0 {
		c.ForwardRetry = DefaultForwardRetry
	}
}

// Validate reports the first inconsistent field, by name.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case len(c.Validators) == 0:
		return bad("Validators is empty")
	case c.TickInterval <= 0:
		return bad("TickInterval %v must be positive", c.TickInterval)
	case c.HeartbeatTicks <= 0:
		return bad("HeartbeatTicks %d must be positive", c.HeartbeatTicks)
	case c.ElectionTicks <= c.HeartbeatTicks:
		return bad("ElectionTicks %d must exceed HeartbeatTicks %d", c.ElectionTicks, c.HeartbeatTicks)
	case c.BlockTime <= 0:
		return bad("BlockTime %v must be positive", c.BlockTime)
	case c.MaxBlockTxs <= 0:
		return bad("MaxBlockTxs %d must be positive", c.MaxBlockTxs)
	case c.PipelineDepth <= 0 || c.PipelineDepth > 64:
		return bad("PipelineDepth %d not in [1, 64]", c.PipelineDepth)
	case c.SnapshotEntries == 0:
		return bad("SnapshotEntries must be positive")
	case c.SegmentBytes < 1<<10:
		return bad("SegmentBytes %d below 1 KiB", c.SegmentBytes)
	case c.MaxMessageBytes < minMessageBytes:
		return bad("MaxMessageBytes %d below %d", c.MaxMessageBytes, minMessageBytes)
	case c.MaxSizePerMsg == 0 || c.MaxSizePerMsg > uint64(c.MaxMessageBytes-entryOverhead):
		return bad("MaxSizePerMsg %d not in [1, MaxMessageBytes-%d]", c.MaxSizePerMsg, entryOverhead)
	case c.MaxInflightMsgs <= 0:
		return bad("MaxInflightMsgs %d must be positive", c.MaxInflightMsgs)
	case c.MaxBlocksPerMsg <= 0:
		return bad("MaxBlocksPerMsg %d must be positive", c.MaxBlocksPerMsg)
	case c.InboxSize <= 0:
		return bad("InboxSize %d must be positive", c.InboxSize)
	case c.ForwardRetry <= 0:
		return bad("ForwardRetry %v must be positive", c.ForwardRetry)
	}
	seen := make(map[consensus.NodeID]string)
	for i, v := range c.Validators {
		if v == (consensus.NodeID{}) {
			return bad("Validators[%d] is the zero address", i)
		}
		if prev, dup := seen[v]; dup {
			return bad("Validators[%d] %s already listed as %s", i, v, prev)
		}
		seen[v] = fmt.Sprintf("Validators[%d]", i)
	}
	for i, l := range c.Learners {
		if l == (consensus.NodeID{}) {
			return bad("Learners[%d] is the zero address", i)
		}
		if prev, dup := seen[l]; dup {
			return bad("Learners[%d] %s already listed as %s", i, l, prev)
		}
		seen[l] = fmt.Sprintf("Learners[%d]", i)
	}
	return nil
}

// maxEntryBytes is the largest entry (encoded block) the leader proposes.
func (c *Config) maxEntryBytes() int { return c.MaxMessageBytes - entryOverhead }

// blockTicks is BlockTime in ticks, at least 1.
func (c *Config) blockTicks() int { return durationTicks(c.BlockTime, c.TickInterval) }

// forwardTicks is ForwardRetry in ticks, at least 1.
func (c *Config) forwardTicks() int { return durationTicks(c.ForwardRetry, c.TickInterval) }

func durationTicks(d, tick time.Duration) int {
	return max(int((d+tick-1)/tick), 1)
}

// members maps node ids to raft ids and back. Raft ids are a pure function
// of the node id, the same on every node and across restarts:
//
//   - the genesis members keep their positions: Validators[i] is i+1,
//     Learners[j] is len(Validators)+j+1;
//   - any other node (added later by governance) has derivedRaftID: the
//     first 8 bytes of keccak256(node id) with the top bit set, so it never
//     equals a position.
//
// The reverse map (raft id to node id, to address messages) holds the
// genesis members and every node learned since: from configuration change
// entries (their context lists the nodes they add), snapshots (their data
// lists the members outside the genesis), SetValidators and authenticated
// senders (a message from node n carries raft id raftID(n)). Because ids
// are derived, a learned pair is never wrong and never needs forgetting.
type members struct {
	genesis  map[consensus.NodeID]uint64
	byRaft   map[uint64]consensus.NodeID
	voters   int // genesis validators: raft ids 1..voters
	learners int // genesis learners: the next ids
}

func newMembers(validators, learners []consensus.NodeID) *members {
	m := &members{
		genesis:  make(map[consensus.NodeID]uint64),
		byRaft:   make(map[uint64]consensus.NodeID),
		voters:   len(validators),
		learners: len(learners),
	}
	for i, id := range append(slices.Clone(validators), learners...) {
		m.genesis[id] = uint64(i + 1)
		m.byRaft[uint64(i+1)] = id
	}
	return m
}

// derivedRaftID is the raft id of a node that is not a genesis member.
func derivedRaftID(n consensus.NodeID) uint64 {
	h := crypto.Keccak256(n[:])
	return binary.BigEndian.Uint64(h[:8]) | 1<<63
}

// raftID returns the raft id of a node (never 0).
func (m *members) raftID(n consensus.NodeID) uint64 {
	if id, ok := m.genesis[n]; ok {
		return id
	}
	return derivedRaftID(n)
}

// inGenesis reports whether a raft id is a genesis position.
func (m *members) inGenesis(id uint64) bool {
	return id != 0 && id <= uint64(m.voters+m.learners)
}

// learn records the raft id of a node and returns it; ok is false if
// another node already holds that id (a hash collision of two derived ids:
// the first stays).
func (m *members) learn(n consensus.NodeID) (id uint64, ok bool) {
	id = m.raftID(n)
	if prev, known := m.byRaft[id]; known {
		return id, prev == n
	}
	m.byRaft[id] = n
	return id, true
}

// node returns the node id of a raft id; ok is false for an unknown id.
func (m *members) node(id uint64) (consensus.NodeID, bool) {
	n, ok := m.byRaft[id]
	return n, ok
}

// genesisConf is the membership every raft log starts from.
func (m *members) genesisConf() *raftpb.ConfState {
	cs := &raftpb.ConfState{}
	for i := 0; i < m.voters+m.learners; i++ {
		if i < m.voters {
			cs.Voters = append(cs.Voters, uint64(i+1))
		} else {
			cs.Learners = append(cs.Learners, uint64(i+1))
		}
	}
	return cs
}

// Params are the raft section of the genesis: consensus.params when
// consensus.engine is "raft". Every field is optional.
type Params struct {
	// TickIntervalMs is the raft tick in milliseconds (default 100).
	TickIntervalMs uint64 `json:"tickIntervalMs,omitempty"`
	// ElectionTicks is the election timeout in ticks (default 10).
	ElectionTicks int `json:"electionTicks,omitempty"`
	// HeartbeatTicks is the heartbeat interval in ticks (default 1).
	HeartbeatTicks int `json:"heartbeatTicks,omitempty"`
	// MaxBlockTxs caps the transactions of a block (default 2000).
	MaxBlockTxs int `json:"maxBlockTxs,omitempty"`
	// ForceEmpty makes the leader seal an empty block every block time.
	ForceEmpty bool `json:"forceEmpty,omitempty"`
	// SnapshotEntries is the snapshot interval in entries (default 1024).
	SnapshotEntries uint64 `json:"snapshotEntries,omitempty"`
	// Learners are the observer nodes' ids (addresses of their node keys).
	Learners []common.Address `json:"learners,omitempty"`
}

// ParseParams decodes the raft parameters of a genesis; unknown fields are
// an error so that a misspelt one is not silently ignored. Empty input
// gives zero Params.
func ParseParams(raw json.RawMessage) (Params, error) {
	var p Params
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return p, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("%w: consensus.params: %v", ErrInvalidConfig, err)
	}
	return p, nil
}

// ConfigFromSpec builds the network-wide part of a Config from a genesis
// whose engine is raft: validators, learners, ticks, block time and size.
// The node-local fields (DataDir, FS) come from the consensus.Env.
func ConfigFromSpec(spec consensus.Spec) (Config, error) {
	if spec.Engine != "raft" {
		return Config{}, fmt.Errorf("%w: genesis consensus engine is %q, not raft", ErrInvalidConfig, spec.Engine)
	}
	p, err := ParseParams(spec.Params)
	if err != nil {
		return Config{}, err
	}
	cfg := Config{
		Validators:      append([]consensus.NodeID(nil), spec.Validators...),
		Learners:        append([]consensus.NodeID(nil), p.Learners...),
		TickInterval:    time.Duration(p.TickIntervalMs) * time.Millisecond,
		ElectionTicks:   p.ElectionTicks,
		HeartbeatTicks:  p.HeartbeatTicks,
		BlockTime:       spec.BlockTime,
		ForceEmpty:      p.ForceEmpty || spec.ForceEmpty,
		MaxBlockTxs:     p.MaxBlockTxs,
		SnapshotEntries: p.SnapshotEntries,
	}
	cfg.EnsureDefaults()
	return cfg, cfg.Validate()
}

// FromSpec makes the raft engine a genesis names, with the validator
// sets governance decided (the raft voters follow them: the set in force
// after the head, and the later ones).
func FromSpec(spec consensus.Spec, env consensus.Env) (consensus.Engine, consensus.Profile, error) {
	cfg, err := ConfigFromSpec(spec)
	if err != nil {
		return nil, consensus.Profile{}, fmt.Errorf("genesis: consensus: %w", err)
	}
	e, err := New(cfg, env)
	if err != nil {
		return nil, consensus.Profile{}, err
	}
	// Given to the core at Start.
	if len(spec.Changes) > 0 {
		if err := e.SetValidators(spec.Head+1, spec.ValidatorsAt(spec.Head+1)); err != nil {
			return nil, consensus.Profile{}, err
		}
		for _, c := range spec.ChangesAfter(spec.Head + 1) {
			if err := e.SetValidators(c.From, c.IDs); err != nil {
				return nil, consensus.Profile{}, err
			}
		}
	}
	members := append(append([]consensus.NodeID(nil), cfg.Validators...), cfg.Learners...)
	return e, consensus.Profile{Members: members, MaxBlockTxs: cfg.MaxBlockTxs}, nil
}
