package bft

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
	"github.com/charter-ledger/charter/internal/durable"
)

// memHost is the live host of the engine tests (simnet.LiveHost, one fake
// chain for every engine's tests) that also checks every committed seal.
type memHost struct {
	*simnet.LiveHost
	mu   sync.Mutex
	errs []error
}

func newMemHost(bus *simnet.Bus, self consensus.NodeID, valsAt func(uint64) []consensus.NodeID, hook func(*types.Block)) *memHost {
	h := &memHost{LiveHost: simnet.NewLiveHost(self, bus, maxTxBlock)}
	h.OnCommit = func(b *types.Block, seal []byte) {
		if valsAt != nil {
			if _, err := VerifyCertificate(simChainID, valsAt(b.NumberU64()), b.NumberU64(), b.Hash(), seal); err != nil {
				h.mu.Lock()
				h.errs = append(h.errs, err)
				h.mu.Unlock()
			}
		}
		if hook != nil {
			hook(b)
		}
	}
	return h
}

func (h *memHost) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.errs) > 0 {
		return h.errs[0]
	}
	return nil
}

func (h *memHost) height() uint64              { return h.Height() }
func (h *memHost) hashAt(n uint64) common.Hash { return h.HashAt(n) }

type engineCluster struct {
	t     *testing.T
	net   *simnet.Bus
	ids   []consensus.NodeID
	keys  []*ecdsa.PrivateKey
	hosts []*memHost
	fs    []durable.FS
	engs  []consensus.Engine
	vals  []consensus.NodeID
	dirs  []string
}

// counters reads a running bft engine's core.
func counters(e consensus.Engine) (st Stats) {
	e.(*consensus.Driver).WithCore(func(c consensus.Core) { st = c.(*Core).Counters() })
	return st
}

func fastConfig() EngineConfig {
	return EngineConfig{
		ChainID:          simChainID,
		TickInterval:     2 * time.Millisecond,
		ProposeTimeout:   60 * time.Millisecond,
		PrevoteTimeout:   20 * time.Millisecond,
		PrecommitTimeout: 20 * time.Millisecond,
		TimeoutDelta:     20 * time.Millisecond,
		MaxTimeout:       400 * time.Millisecond,
		CommitWait:       4 * time.Millisecond,
		Rebroadcast:      20 * time.Millisecond,
		SyncRetry:        10 * time.Millisecond,
	}
}

// newCluster makes validators + observers engines over file storage.
func newCluster(t *testing.T, validators, observers int) *engineCluster {
	c := &engineCluster{t: t, net: simnet.NewBus()}
	for i := 0; i < validators+observers; i++ {
		k := simKeys[i]
		c.keys = append(c.keys, k)
		c.ids = append(c.ids, keyID(k))
		if i < validators {
			c.vals = append(c.vals, keyID(k))
		}
	}
	dir := t.TempDir()
	for i, id := range c.ids {
		h := newMemHost(c.net, id, func(uint64) []consensus.NodeID { return c.vals }, nil)
		c.hosts = append(c.hosts, h)
		c.fs = append(c.fs, durable.OSFS{})
		c.dirs = append(c.dirs, filepath.Join(dir, fmt.Sprintf("node%d", i)))
		if err := os.MkdirAll(c.dirs[i], 0o700); err != nil {
			t.Fatal(err)
		}
		c.engs = append(c.engs, nil)
	}
	for i := range c.ids {
		c.start(i, validators)
	}
	t.Cleanup(func() {
		for i := range c.engs {
			c.stop(i)
		}
		for _, h := range c.hosts {
			if err := h.err(); err != nil {
				t.Errorf("%s: %v", h.Self(), err)
			}
		}
	})
	return c
}

func (c *engineCluster) start(i, validators int) {
	cfg := fastConfig()
	cfg.Validators = c.vals
	env := consensus.Env{Host: c.hosts[i], FS: c.fs[i], Dir: c.dirs[i]}
	if i < validators {
		env.Key = c.keys[i]
	}
	e, err := New(cfg, env)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.engs[i] = e
	c.net.Attach(c.ids[i], e)
}

func (c *engineCluster) stop(i int) {
	if c.engs[i] == nil {
		return
	}
	c.net.Attach(c.ids[i], nil)
	c.engs[i].Stop()
	if err, halted := <-c.engs[i].Done(); halted {
		c.t.Errorf("engine %d halted: %v", i, err)
	}
	c.engs[i] = nil
}

// waitHeight waits until every listed node has committed height h.
func (c *engineCluster) waitHeight(h uint64, nodes ...int) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := true
		for _, i := range nodes {
			ok = ok && c.hosts[i].height() >= h
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var hs []uint64
			for _, h := range c.hosts {
				hs = append(hs, h.height())
			}
			c.t.Fatalf("timeout waiting for height %d on %v: heights %v", h, nodes, hs)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (c *engineCluster) checkSameChains() {
	c.t.Helper()
	for n := uint64(1); ; n++ {
		var want common.Hash
		any := false
		for _, h := range c.hosts {
			got := h.hashAt(n)
			if got == (common.Hash{}) {
				continue
			}
			if any && got != want {
				c.t.Fatalf("fork at height %d", n)
			}
			want, any = got, true
		}
		if !any {
			return
		}
	}
}

// TestEngineCluster runs four validators and an observer through the real
// adapter (goroutines, ticker, file storage): the chain goes on with one
// validator stopped, stops with two, and resumes when they restart; the
// restarted ones catch up and every node has the same hash at every
// height.
func TestEngineCluster(t *testing.T) {
	c := newCluster(t, 4, 1)
	all := []int{0, 1, 2, 3, 4}
	c.waitHeight(5, all...)

	c.stop(3)
	h := c.hosts[0].height()
	c.waitHeight(h+5, 0, 1, 2, 4)

	c.stop(2)
	time.Sleep(100 * time.Millisecond)
	stalled := c.hosts[0].height()
	time.Sleep(300 * time.Millisecond)
	if got := c.hosts[0].height(); got > stalled+1 {
		t.Fatalf("two of four validators down, yet heights went from %d to %d", stalled, got)
	}

	c.start(2, 4)
	c.start(3, 4)
	h = c.hosts[0].height()
	c.waitHeight(h+5, all...)
	c.checkSameChains()

	st := counters(c.engs[0])
	if st.Decided == 0 || st.Rounds == 0 || st.MsgsOut[MsgPrecommit] == 0 {
		t.Fatalf("stats: %+v", st)
	}
	if st := counters(c.engs[3]); st.Synced == 0 {
		t.Errorf("restarted validator caught up without certificates? %+v", st)
	}
}

// TestEngineSetValidators: the host calls SetValidators from inside
// CommitBlock (as governance execution will), replacing validator 0 by a
// node that was an observer.
func TestEngineSetValidators(t *testing.T) {
	c := &engineCluster{t: t, net: simnet.NewBus()}
	for i := 0; i < 5; i++ {
		c.keys = append(c.keys, simKeys[i])
		c.ids = append(c.ids, keyID(simKeys[i]))
	}
	c.vals = c.ids[:4]
	newVals := c.ids[1:5]
	const decideAt, from = 3, 6
	valsAt := func(h uint64) []consensus.NodeID {
		if h >= from {
			return newVals
		}
		return c.vals
	}
	for i, id := range c.ids {
		i := i
		h := newMemHost(c.net, id, valsAt, func(b *types.Block) {
			if b.NumberU64() == decideAt {
				if err := c.engs[i].SetValidators(from, newVals); err != nil {
					t.Errorf("SetValidators: %v", err)
				}
			}
		})
		c.hosts = append(c.hosts, h)
		c.fs = append(c.fs, durable.NewMemFS())
		c.dirs = append(c.dirs, "/data")
		c.engs = append(c.engs, nil)
	}
	for i := range c.ids {
		cfg := fastConfig()
		cfg.Validators = c.vals
		e, err := New(cfg, consensus.Env{Host: c.hosts[i], Key: c.keys[i], FS: c.fs[i], Dir: c.dirs[i]})
		if err != nil {
			t.Fatal(err)
		}
		c.engs[i] = e
		c.net.Attach(c.ids[i], e)
	}
	for _, e := range c.engs {
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for i := range c.engs {
			c.stop(i)
		}
	})
	c.waitHeight(from+4, 0, 1, 2, 3, 4)
	c.stop(0) // the validator that left is no longer needed
	h := c.hosts[1].height()
	c.waitHeight(h+3, 1, 2, 3, 4)
	c.checkSameChains()
	for _, h := range c.hosts {
		if err := h.err(); err != nil {
			t.Fatalf("%s: %v", h.Self(), err)
		}
	}
	if counters(c.engs[4]).MsgsOut[MsgPrevote] == 0 {
		t.Fatal("the new validator never voted")
	}
}

func TestNewEngineChecksConfig(t *testing.T) {
	h := newMemHost(simnet.NewBus(), keyID(simKeys[0]), nil, nil)
	vals := []consensus.NodeID{keyID(simKeys[0])}
	for name, c := range map[string]struct {
		cfg EngineConfig
		key *ecdsa.PrivateKey
	}{
		"no chain id":   {EngineConfig{Validators: vals}, simKeys[0]},
		"wrong key":     {EngineConfig{ChainID: 1, Validators: vals}, simKeys[1]},
		"no validators": {EngineConfig{ChainID: 1}, simKeys[0]},
	} {
		if _, err := New(c.cfg, consensus.Env{Host: h, Key: c.key, FS: durable.NewMemFS()}); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: got %v, want ErrBadConfig", name, err)
		}
	}
}

// TestSavedStateInStateFile: the state goes through the driver's state
// file whole, and a damaged file is reported, never loaded.
func TestSavedStateInStateFile(t *testing.T) {
	mem := durable.NewMemFS()
	s := durable.StateFile{FS: mem, Path: "/data/" + StateFileName}
	b := genesis
	want := &SavedState{Height: 7, Round: 3, LockedRound: 2, LockedBlock: b, ValidRound: 2, ValidBlock: b,
		ValidJustification: [][]byte{{1, 2}}, Prevote: []byte{3}, Precommit: []byte{4}}
	raw, err := MarshalSavedState(want)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(raw); err != nil {
		t.Fatal(err)
	}
	loaded, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalSavedState(loaded)
	if err != nil {
		t.Fatal(err)
	}
	if got.Height != 7 || got.Round != 3 || got.LockedRound != 2 || got.LockedBlock.Hash() != b.Hash() ||
		got.ValidBlock.Hash() != b.Hash() || string(got.Prevote) != "\x03" || got.Proposal != nil {
		t.Fatalf("round trip: %+v", got)
	}
	if err := mem.Corrupt(s.Path, 30); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(); !errors.Is(err, durable.ErrCorrupt) {
		t.Fatalf("corrupt file: %v", err)
	}
}

// failingHost refuses every commit.
type failingHost struct{ *memHost }

func (failingHost) CommitBlock(*types.Block, []byte) error { return errors.New("disk full") }

// TestEngineHaltsOnCommitError: a block that cannot be committed stops the
// engine with one error, instead of going on to sign the next height.
func TestEngineHaltsOnCommitError(t *testing.T) {
	id := keyID(simKeys[0])
	h := failingHost{newMemHost(simnet.NewBus(), id, nil, nil)}
	cfg := fastConfig()
	cfg.Validators = []consensus.NodeID{id}
	e, err := New(cfg, consensus.Env{Host: h, Key: simKeys[0], FS: durable.NewMemFS(), Dir: "/data"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	select {
	case err := <-e.Done():
		if got := err.Error(); !strings.Contains(got, "disk full") || !strings.Contains(got, "commit block 1") {
			t.Fatalf("halt error: %v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("engine did not halt")
	}
	if st := counters(e); st.Decided != 1 {
		t.Fatalf("decided %d heights", st.Decided)
	}
}
