package poa

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
	"github.com/charter-ledger/charter/internal/durable"
)

// memHost is a goroutine-safe consensus.Host over the fake app, wired to
// the other hosts of a bus.
type memHost struct {
	self consensus.NodeID
	bus  *bus

	mu       sync.Mutex
	app      *simnet.Chain
	commits  int
	onCommit func(h uint64)
}

type bus struct {
	mu      sync.Mutex
	engines map[consensus.NodeID]consensus.Engine
	cut     map[consensus.NodeID]bool
}

func (b *bus) deliver(from, to consensus.NodeID, p []byte) {
	b.mu.Lock()
	e := b.engines[to]
	cut := b.cut[from] || b.cut[to]
	b.mu.Unlock()
	if e != nil && !cut {
		e.HandleMessage(from, p)
	}
}

func (h *memHost) Self() consensus.NodeID              { return h.self }
func (h *memHost) Due() bool                           { return false }
func (h *memHost) Pending() bool                       { return false }
func (h *memHost) PendingTxs(int) []*types.Transaction { return nil }
func (h *memHost) AddRemoteTxs([][]byte)               {}
func (h *memHost) BuildBlock(parent *types.Header, ts uint64, proposer consensus.NodeID) (*types.Block, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.app.BuildBlock(parent, ts, proposer)
}
func (h *memHost) VerifyBlock(b *types.Block) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.app.VerifyBlock(b)
}
func (h *memHost) CommitBlock(b *types.Block, seal []byte) error {
	h.mu.Lock()
	err := h.app.CommitBlock(b, seal)
	h.commits++
	cb := h.onCommit
	h.mu.Unlock()
	if err == nil && cb != nil {
		cb(b.NumberU64()) // like governance: may call back into the engine
	}
	return err
}
func (h *memHost) Head() *types.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.app.Head()
}
func (h *memHost) BlockByNumber(n uint64) (*types.Block, []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.app.BlockByNumber(n)
}
func (h *memHost) Send(to consensus.NodeID, p []byte) { go h.bus.deliver(h.self, to, p) }
func (h *memHost) Broadcast(p []byte) {
	h.bus.mu.Lock()
	var to []consensus.NodeID
	for id := range h.bus.engines {
		if id != h.self {
			to = append(to, id)
		}
	}
	h.bus.mu.Unlock()
	for _, id := range to {
		go h.bus.deliver(h.self, id, p)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var _ consensus.Host = (*memHost)(nil)

// status reads a running poa engine's core.
func status(e consensus.Engine) (st Status) {
	e.(*consensus.Driver).WithCore(func(c consensus.Core) { st = c.(*Core).Status() })
	return st
}

func TestEngineOverHost(t *testing.T) {
	const n = 4
	b := &bus{engines: map[consensus.NodeID]consensus.Engine{}, cut: map[consensus.NodeID]bool{}}
	dir0 := t.TempDir()
	var hosts []*memHost
	var engines []consensus.Engine
	for i := 0; i < n; i++ {
		cfg := testConfig(i, n)
		cfg.TickInterval = 2 * time.Millisecond
		cfg.TimeoutTicks = 10
		cfg.MaxTimeoutTicks = 60
		h := &memHost{self: ids(n)[i], bus: b, app: newChain(ids(n)[i])}
		env := consensus.Env{Host: h, FS: durable.NewMemFS(), Dir: "/data"}
		if i == 0 {
			env = consensus.Env{Host: h, Dir: dir0}
		}
		e, err := New(cfg, env)
		if err != nil {
			t.Fatal(err)
		}
		hosts, engines = append(hosts, h), append(engines, e)
		b.engines[h.self] = e
	}
	if _, err := New(testConfig(0, n), consensus.Env{Host: hosts[1], FS: durable.NewMemFS()}); err == nil {
		t.Fatal("key and host of different nodes accepted")
	}
	// Governance hook on node 0: a SetValidators call from inside CommitBlock.
	var hookErr error
	hookDone := make(chan struct{})
	var once sync.Once
	lcfg := testConfig(0, n)
	lookahead := lcfg.EnsureDefaults().Lookahead
	hosts[0].onCommit = func(h uint64) {
		if h == 3 {
			once.Do(func() {
				hookErr = engines[0].SetValidators(ActivationHeight(h, lookahead)+100, ids(n))
				close(hookDone)
			})
		}
	}
	for _, e := range engines {
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
	}
	if err := engines[0].Start(); err == nil {
		t.Fatal("second Start accepted")
	}
	final := func(i int) uint64 { return status(engines[i]).Final }
	waitFor(t, "10 final blocks everywhere", func() bool {
		for i := range engines {
			if final(i) < 10 {
				return false
			}
		}
		return true
	})
	<-hookDone
	if hookErr != nil {
		t.Fatalf("SetValidators from CommitBlock: %v", hookErr)
	}
	var drops Stats
	engines[0].(*consensus.Driver).WithCore(func(c consensus.Core) { drops = c.(*Core).Counters() })
	if drops.BadMessages != 0 || drops.BadSeals != 0 {
		t.Fatalf("honest network produced drops: %+v", drops)
	}
	if h := engines[0].Head(0); h == nil || h.Number.Uint64() < 10 {
		t.Fatalf("Head(0) = %v", h)
	}
	if h := engines[0].Head(3); h.Number.Uint64()+3 > engines[0].Head(0).Number.Uint64() {
		t.Fatalf("Head(3) = %d, Head(0) = %d", h.Number.Uint64(), engines[0].Head(0).Number.Uint64())
	}

	// One authority of four stops: the others go on.
	engines[3].Stop()
	b.mu.Lock()
	b.cut[ids(n)[3]] = true
	b.mu.Unlock()
	base := final(0)
	waitFor(t, "progress with one authority down", func() bool { return final(0) >= base+8 && final(1) >= base+8 })
	before := status(engines[0])
	for i := 0; i < 3; i++ {
		engines[i].Stop()
		if err, halted := <-engines[i].Done(); halted {
			t.Fatalf("engine %d halted: %v", i, err)
		}
	}
	engines[0].Stop() // idempotent

	// Same blocks at every height on every node.
	for i := 1; i < n; i++ {
		hosts[i].mu.Lock()
		hosts[0].mu.Lock()
		a, c := hosts[0].app, hosts[i].app
		for h := uint64(0); h <= a.Height() && h <= c.Height(); h++ {
			if blockAt(a, h).Hash() != blockAt(c, h).Hash() {
				t.Errorf("node %d differs at %d", i, h)
			}
		}
		hosts[0].mu.Unlock()
		hosts[i].mu.Unlock()
	}

	// Restart node 0 from its state file and ledger.
	cfg := testConfig(0, n)
	cfg.TickInterval = 2 * time.Millisecond
	e, err := New(cfg, consensus.Env{Host: hosts[0], Dir: dir0})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if st := status(e); st.Final < base+8 || st.Promise.Less(before.Promise) {
		t.Fatalf("restarted status %+v, before %+v", st, before)
	}
	e.Stop()
}

// fullDisk is a file system on which nothing can be written.
type fullDisk struct{ *durable.MemFS }

func (fullDisk) Create(string, fs.FileMode) (durable.File, error) {
	return nil, errors.New("disk full")
}

func TestEngineHaltsOnStorageFailure(t *testing.T) {
	b := &bus{engines: map[consensus.NodeID]consensus.Engine{}, cut: map[consensus.NodeID]bool{}}
	cfg := testConfig(0, 1)
	cfg.TickInterval = time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &memHost{self: ids(1)[0], bus: b, app: newChain(ids(1)[0])}
	e, err := New(cfg, consensus.Env{Host: h, FS: fullDisk{durable.NewMemFS()}, Dir: "/data"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-e.Done():
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("halted with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no halt")
	}
	e.Stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.commits != 0 {
		t.Fatalf("%d blocks committed although nothing could be persisted", h.commits)
	}
}
