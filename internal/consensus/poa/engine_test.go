package poa

import (
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
)

// memHost is a goroutine-safe consensus.Host over the fake app, wired to
// the other hosts of a bus.
type memHost struct {
	self consensus.NodeID
	bus  *bus

	mu       sync.Mutex
	app      *fakeApp
	commits  int
	onCommit func(h uint64)
}

type bus struct {
	mu      sync.Mutex
	engines map[consensus.NodeID]*Engine
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

func (h *memHost) Self() consensus.NodeID { return h.self }
func (h *memHost) BuildBlock(parent *types.Header, ts uint64, proposer consensus.NodeID) (*types.Block, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.app.build(parent, ts, proposer)
}
func (h *memHost) VerifyBlock(b *types.Block) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.app.verify(b)
}
func (h *memHost) CommitBlock(b *types.Block, seal []byte) error {
	h.mu.Lock()
	err := h.app.commit(b, seal)
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
	return h.app.ledger.head().Header()
}
func (h *memHost) BlockByNumber(n uint64) (*types.Block, []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.app.ledger.BlockByNumber(n)
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

var _ consensus.Engine = (*Engine)(nil)

func TestEngineOverHost(t *testing.T) {
	const n = 4
	b := &bus{engines: map[consensus.NodeID]*Engine{}, cut: map[consensus.NodeID]bool{}}
	g := testGenesis()
	var hosts []*memHost
	var engines []*Engine
	for i := 0; i < n; i++ {
		cfg := testConfig(i, n)
		cfg.TickInterval = 2 * time.Millisecond
		cfg.TimeoutTicks = 10
		cfg.MaxTimeoutTicks = 60
		h := &memHost{self: ids(n)[i], bus: b, app: newApp(newLedger(g))}
		var store Storage = &MemStorage{}
		if i == 0 {
			store = FileStorage{Path: t.TempDir() + "/state"}
		}
		e, err := New(cfg, h, store)
		if err != nil {
			t.Fatal(err)
		}
		hosts, engines = append(hosts, h), append(engines, e)
		b.engines[h.self] = e
	}
	if _, err := New(testConfig(0, n), hosts[1], &MemStorage{}); err == nil {
		t.Fatal("key and host of different nodes accepted")
	}
	if err := engines[0].SetValidators(100, ids(n)); err == nil {
		t.Fatal("SetValidators before Start accepted")
	}
	// Governance hook on node 0: a SetValidators call from inside CommitBlock.
	var hookErr error
	hookDone := make(chan struct{})
	var once sync.Once
	hosts[0].onCommit = func(h uint64) {
		if h == 3 {
			once.Do(func() {
				hookErr = engines[0].SetValidators(ActivationHeight(h, engines[0].cfg.Lookahead)+100, ids(n))
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
	final := func(i int) uint64 { return engines[i].Status().Final }
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
	if st := engines[0].Stats(); st.BadMessages != 0 || st.BadSeals != 0 {
		t.Fatalf("honest network produced drops: %+v", st)
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
	for i := 0; i < 3; i++ {
		engines[i].Stop()
		if err := engines[i].Err(); err != nil {
			t.Fatalf("engine %d halted: %v", i, err)
		}
	}
	engines[0].Stop() // idempotent

	// Same blocks at every height on every node.
	for i := 1; i < n; i++ {
		hosts[i].mu.Lock()
		hosts[0].mu.Lock()
		a, c := hosts[0].app.ledger.blocks, hosts[i].app.ledger.blocks
		for h := 0; h < len(a) && h < len(c); h++ {
			if a[h].Hash() != c[h].Hash() {
				t.Errorf("node %d differs at %d", i, h)
			}
		}
		hosts[0].mu.Unlock()
		hosts[i].mu.Unlock()
	}

	// Restart node 0 from its file storage and ledger.
	cfg := testConfig(0, n)
	cfg.TickInterval = 2 * time.Millisecond
	e, err := New(cfg, hosts[0], FileStorage{Path: engines[0].store.(FileStorage).Path})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if st := e.Status(); st.Final < base+8 || st.Promise.Less(engines[0].Status().Promise) {
		t.Fatalf("restarted status %+v, before %+v", st, engines[0].Status())
	}
	e.Stop()
}

type failingStore struct{ MemStorage }

func (f *failingStore) Save(PersistentState) error { return errors.New("disk full") }

func TestEngineHaltsOnStorageFailure(t *testing.T) {
	b := &bus{engines: map[consensus.NodeID]*Engine{}, cut: map[consensus.NodeID]bool{}}
	cfg := testConfig(0, 1)
	cfg.TickInterval = time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &memHost{self: ids(1)[0], bus: b, app: newApp(newLedger(testGenesis()))}
	e, err := New(cfg, h, &failingStore{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "halt", func() bool { return e.Err() != nil })
	e.Stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.commits != 0 {
		t.Fatalf("%d blocks committed although nothing could be persisted", h.commits)
	}
}
