package raft

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

// liveHost is a live host of the engine tests (simnet.LiveHost, one fake
// chain for every engine's tests).
type liveHost = simnet.LiveHost

func newLiveHost(bus *simnet.Bus, id consensus.NodeID, maxTxs int) *liveHost {
	return simnet.NewLiveHost(id, bus, maxTxs)
}

// engineCounters reads a running raft engine's core.
func engineCounters(e consensus.Engine) (s Stats) {
	e.(*consensus.Driver).WithCore(func(c consensus.Core) {
		if c != nil {
			s = c.(*Core).Counters()
		}
	})
	return s
}

// stopLive stops an engine and fails the test if it had halted.
func stopLive(t *testing.T, e consensus.Engine) {
	t.Helper()
	e.Stop()
	if err, halted := <-e.Done(); halted {
		t.Errorf("engine halted: %v", err)
	}
}

func startLive(t *testing.T, net *simnet.Bus, h *liveHost, cfg Config, dir string) consensus.Engine {
	t.Helper()
	cfg.DataDir = dir
	e, err := New(cfg, consensus.Env{Host: h, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	net.Attach(h.Self(), e)
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	return e
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Three engines on goroutines, the real WAL on disk: transactions sent to
// any node are committed everywhere; after every engine is stopped and
// restarted from its folder, the chain goes on.
func TestEngineLive(t *testing.T) {
	ids := []consensus.NodeID{nodeID(0), nodeID(1), nodeID(2)}
	cfg := Config{Validators: ids, TickInterval: 2 * time.Millisecond, ElectionTicks: 10, BlockTime: 10 * time.Millisecond,
		MaxBlockTxs: 50, SnapshotEntries: 20, CompactMargin: 5, ForwardRetry: 50 * time.Millisecond}
	net := simnet.NewBus()
	root := t.TempDir()
	var hosts []*liveHost
	var engines []consensus.Engine
	for _, id := range ids {
		h := newLiveHost(net, id, cfg.MaxBlockTxs)
		hosts = append(hosts, h)
		engines = append(engines, startLive(t, net, h, cfg, filepath.Join(root, name(id))))
	}
	var txs []*types.Transaction
	submitAll := func(from, n int) {
		for i := 0; i < n; i++ {
			tx := simnet.Tx(uint64(from + i))
			txs = append(txs, tx)
			k := i % len(hosts)
			hosts[k].Submit(tx)
		}
	}
	allIn := func() bool {
		for _, h := range hosts {
			for _, tx := range txs {
				if !h.Has(tx.Hash()) {
					return false
				}
			}
		}
		return true
	}
	submitAll(1, 300)
	waitFor(t, "300 transactions on every node", 20*time.Second, allIn)

	for _, e := range engines {
		stopLive(t, e)
	}
	for i, h := range hosts {
		h.Do(func(c *simnet.Chain) { c.Crash() }) // a restart loses the pool and the execution cache
		engines[i] = startLive(t, net, h, cfg, filepath.Join(root, name(h.Self())))
	}
	submitAll(1000, 200)
	waitFor(t, "200 more transactions after restart", 20*time.Second, allIn)
	for _, e := range engines {
		stopLive(t, e)
	}
	top := hosts[0].Height()
	for _, h := range hosts[1:] {
		top = min(top, h.Height())
	}
	for n := uint64(0); n <= top; n++ {
		if hosts[0].HashAt(n) != hosts[1].HashAt(n) || hosts[0].HashAt(n) != hosts[2].HashAt(n) {
			t.Fatalf("chains differ at %d", n)
		}
	}
	var s Stats
	for _, e := range engines {
		addStats(&s, engineCounters(e))
	}
	if s.CommittedBlocks == 0 || s.Sent[MsgRaft].Msgs == 0 {
		t.Fatalf("stats not counted: %+v", s)
	}
}

func TestEngineRejectsBadSetup(t *testing.T) {
	h := newLiveHost(simnet.NewBus(), nodeID(9), 10)
	// A node outside the genesis lists starts as a non-member.
	e, err := New(Config{Validators: []consensus.NodeID{nodeID(0)}, DataDir: t.TempDir()}, consensus.Env{Host: h, Log: quietLog()})
	if err != nil {
		t.Fatalf("non-member: %v", err)
	}
	if err := e.SetValidators(5, []consensus.NodeID{nodeID(0), nodeID(9)}); err != nil {
		t.Fatal(err)
	}
	// Changes given before Start reach the core at Start: a bad one fails it.
	for name, bad := range map[string][]consensus.NodeID{"empty": nil, "duplicate": {nodeID(0), nodeID(0)}} {
		e, err := New(Config{Validators: []consensus.NodeID{nodeID(0)}, DataDir: t.TempDir()}, consensus.Env{Host: h, Log: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.SetValidators(5, bad); err != nil {
			t.Fatal(err)
		}
		if err := e.Start(); !errors.Is(err, ErrBadValidators) {
			t.Fatalf("%s validator set: %v", name, err)
		}
		e.Stop()
	}
	_, err = New(Config{Validators: []consensus.NodeID{nodeID(9)}}, consensus.Env{Host: h, Log: quietLog()})
	if err == nil || !strings.Contains(err.Error(), "DataDir") {
		t.Fatalf("no data dir: %v", err)
	}
	// A chain past genesis with an empty raft folder must not bootstrap.
	b1, err := h.BuildBlock(h.Head(), 0, nodeID(9))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.CommitBlock(b1, nil); err != nil {
		t.Fatal(err)
	}
	e, err = New(Config{Validators: []consensus.NodeID{nodeID(9)}, DataDir: t.TempDir()}, consensus.Env{Host: h, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err == nil || !strings.Contains(err.Error(), "no raft state") {
		t.Fatalf("start over a non-empty chain: %v", err)
	}
	e.Stop()
}

// Engines on goroutines with the on-disk WAL: a node outside the genesis
// starts as a non-member; the validators decide (from inside CommitBlock,
// as the node does) to add it; it catches up, commits the transactions
// given to it, and keeps its membership across a restart of every engine.
func TestEngineLiveAddsNode(t *testing.T) {
	ids := []consensus.NodeID{nodeID(0), nodeID(1), nodeID(2), nodeID(3)}
	cfg := Config{Validators: ids[:3], TickInterval: 2 * time.Millisecond, ElectionTicks: 10, BlockTime: 10 * time.Millisecond,
		MaxBlockTxs: 50, SnapshotEntries: 8, CompactMargin: 2, ForwardRetry: 50 * time.Millisecond}
	net := simnet.NewBus()
	root := t.TempDir()
	var decideAt atomic.Uint64
	decideAt.Store(1 << 62)
	engineOf := net.Engine
	var hosts []*liveHost
	var engines []consensus.Engine
	for _, id := range ids {
		h := newLiveHost(net, id, cfg.MaxBlockTxs)
		h.OnCommit = func(b *types.Block, _ []byte) {
			if b.NumberU64() == decideAt.Load() {
				if err := engineOf(id).SetValidators(b.NumberU64()+8, ids); err != nil {
					t.Error(err)
				}
			}
		}
		hosts = append(hosts, h)
		engines = append(engines, startLive(t, net, h, cfg, filepath.Join(root, name(id))))
	}
	var txs []*types.Transaction
	submit := func(k, n int) {
		for i := 0; i < n; i++ {
			tx := simnet.Tx(uint64(len(txs) + 1))
			txs = append(txs, tx)
			hosts[k].Submit(tx)
		}
	}
	allIn := func(hs []*liveHost) func() bool {
		return func() bool {
			for _, h := range hs {
				for _, tx := range txs {
					if !h.Has(tx.Hash()) {
						return false
					}
				}
			}
			return true
		}
	}
	for i := 0; i < 10; i++ {
		submit(i%3, 5)
	}
	waitFor(t, "blocks on the validators", 10*time.Second, allIn(hosts[:3]))
	decideAt.Store(hosts[0].Height() + 1)
	// Blocks up to the decision's, then (empty ones) to its height.
	submit(0, 5)
	waitFor(t, "the new node to join and catch up", 20*time.Second, func() bool {
		return engineCounters(engines[3]).ConfChanges >= 1 && allIn(hosts)()
	})
	submit(3, 20) // forwarded by the new node to the leader
	waitFor(t, "transactions given to the new node", 20*time.Second, allIn(hosts))

	for _, e := range engines {
		stopLive(t, e)
	}
	for i, h := range hosts {
		h.Do(func(c *simnet.Chain) { c.Crash() })
		engines[i] = startLive(t, net, h, cfg, filepath.Join(root, name(h.Self())))
		// As the node does at start: the set in force after the head.
		if err := engines[i].SetValidators(h.Height()+1, ids); err != nil {
			t.Fatal(err)
		}
	}
	submit(3, 20)
	waitFor(t, "transactions after the restart", 20*time.Second, allIn(hosts))
	for _, e := range engines {
		stopLive(t, e)
	}
	top := hosts[0].Height()
	for _, h := range hosts[1:] {
		top = min(top, h.Height())
	}
	for n := uint64(0); n <= top; n++ {
		for _, h := range hosts[1:] {
			if h.HashAt(n) != hosts[0].HashAt(n) {
				t.Fatalf("chains differ at %d", n)
			}
		}
	}
}

func TestConfigValidateNamesField(t *testing.T) {
	v := []consensus.NodeID{nodeID(0), nodeID(1)}
	for _, tc := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.Validators = nil }, "Validators"},
		{func(c *Config) { c.Validators = []consensus.NodeID{nodeID(0), nodeID(0)} }, "Validators[1]"},
		{func(c *Config) { c.Learners = []consensus.NodeID{nodeID(1)} }, "Learners[0]"},
		{func(c *Config) { c.ElectionTicks, c.HeartbeatTicks = 3, 3 }, "ElectionTicks"},
		{func(c *Config) { c.MaxMessageBytes = 100 }, "MaxMessageBytes"},
		{func(c *Config) { c.PipelineDepth = 100 }, "PipelineDepth"},
		{func(c *Config) { c.TickInterval = -1 }, "TickInterval"},
	} {
		c := Config{Validators: v}
		tc.mut(&c)
		c.EnsureDefaults()
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error naming %s, got %v", tc.want, err)
		}
	}
	c := Config{Validators: v}
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestFromSpec(t *testing.T) {
	spec := consensus.Spec{
		Engine:     "raft",
		BlockTime:  250 * time.Millisecond,
		Validators: []common.Address{nodeID(0), nodeID(1), nodeID(2)},
		Params:     json.RawMessage(fmt.Sprintf(`{"tickIntervalMs": 50, "electionTicks": 20, "heartbeatTicks": 2, "maxBlockTxs": 500, "learners": ["%s"]}`, nodeID(3).Hex())),
	}
	cfg, err := ConfigFromSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TickInterval != 50*time.Millisecond || cfg.ElectionTicks != 20 || cfg.HeartbeatTicks != 2 || cfg.MaxBlockTxs != 500 ||
		cfg.BlockTime != 250*time.Millisecond || len(cfg.Validators) != 3 || len(cfg.Learners) != 1 || cfg.Learners[0] != nodeID(3) {
		t.Fatalf("config from spec: %+v", cfg)
	}
	m := newMembers(cfg.Validators, cfg.Learners)
	if m.raftID(nodeID(0)) != 1 || m.raftID(nodeID(2)) != 3 || m.raftID(nodeID(3)) != 4 {
		t.Fatal("raft ids are not index+1 in validators then learners")
	}
	spec.Params = json.RawMessage(`{"electionTick": 20}`)
	if _, err := ConfigFromSpec(spec); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "electionTick") {
		t.Fatalf("misspelt param: %v", err)
	}
	spec.Engine = "bft"
	if _, err := ConfigFromSpec(spec); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("wrong engine: %v", err)
	}
}

// A damaged WAL stops the node at start with a clear error, not a panic.
func TestEngineStartReportsCorruptWAL(t *testing.T) {
	ids := []consensus.NodeID{nodeID(0)}
	dir := t.TempDir()
	net := simnet.NewBus()
	h := newLiveHost(net, ids[0], 10)
	cfg := Config{Validators: ids, TickInterval: 2 * time.Millisecond, BlockTime: 10 * time.Millisecond}
	e := startLive(t, net, h, cfg, dir)
	h.Submit(simnet.Tx(1))
	waitFor(t, "a block", 10*time.Second, func() bool { return h.Has(simnet.Tx(1).Hash()) })
	stopLive(t, e)

	path := filepath.Join(dir, segmentName(1))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[recHeaderLen+2] ^= 0xff // inside the first record's payload, more records follow
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = dir
	e2, err := New(cfg, consensus.Env{Host: h, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	err = e2.Start()
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("start over a damaged WAL: %v", err)
	}
	e2.Stop()
}
