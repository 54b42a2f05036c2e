package consensus

import (
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/durable"
)

// testHost is a goroutine-safe Host over an in-memory chain that records
// what the driver did, in order.
type testHost struct {
	mu        sync.Mutex
	chain     []*types.Block
	log       []string
	commitErr error
	pending   bool
	due       bool
	onCommit  func()
}

func newTestHost() *testHost {
	return &testHost{chain: []*types.Block{types.NewBlockWithHeader(&types.Header{Number: new(big.Int), Difficulty: new(big.Int)})}}
}

func (h *testHost) note(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = append(h.log, s)
}

func (h *testHost) events() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.log, " ")
}

func (h *testHost) Self() NodeID { return NodeID{1} }
func (h *testHost) Head() *types.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.chain[len(h.chain)-1].Header()
}
func (h *testHost) BlockByNumber(n uint64) (*types.Block, []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n >= uint64(len(h.chain)) {
		return nil, nil
	}
	return h.chain[n], []byte{byte(n)}
}
func (h *testHost) BuildBlock(parent *types.Header, ts uint64, proposer NodeID) (*types.Block, error) {
	h.note("build")
	var txs []*types.Transaction
	if h.Pending() {
		txs = append(txs, types.NewTx(&types.LegacyTx{Nonce: parent.Number.Uint64(), GasPrice: new(big.Int)}))
	}
	return types.NewBlockWithHeader(&types.Header{ParentHash: parent.Hash(), Number: new(big.Int).Add(parent.Number, common.Big1),
		Time: ts, Difficulty: new(big.Int)}).WithBody(types.Body{Transactions: txs}), nil
}
func (h *testHost) VerifyBlock(*types.Block) error { h.note("verify"); return nil }
func (h *testHost) CommitBlock(b *types.Block, _ []byte) error {
	h.note("commit")
	h.mu.Lock()
	err := h.commitErr
	if err == nil {
		h.chain = append(h.chain, b)
	}
	hook := h.onCommit
	h.mu.Unlock()
	if err == nil && hook != nil {
		hook()
	}
	return err
}
func (h *testHost) Due() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.due
}
func (h *testHost) Pending() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pending
}
func (h *testHost) PendingTxs(int) []*types.Transaction { return nil }
func (h *testHost) AddRemoteTxs([][]byte)               { h.note("txs") }
func (h *testHost) Send(NodeID, []byte)                 { h.note("send") }
func (h *testHost) Broadcast([]byte)                    { h.note("broadcast") }

// scriptCore hands out prepared Readys, one per input, and records its
// inputs.
type scriptCore struct {
	mu      sync.Mutex
	readys  []Ready
	err     error
	panicAt string
	inputs  []string
	built   chan *types.Block
	vals    []ValidatorChange
}

func (c *scriptCore) in(s string) {
	c.inputs = append(c.inputs, s)
	if c.panicAt == s {
		panic("broken invariant at " + s)
	}
}
func (c *scriptCore) Tick()                              { c.in("tick") }
func (c *scriptCore) Step(NodeID, []byte) error          { c.in("step"); return nil }
func (c *scriptCore) Notify([]*types.Transaction)        { c.in("notify") }
func (c *scriptCore) Verified(common.Hash, error)        { c.in("verified") }
func (c *scriptCore) Served(ServeRequest, []SealedBlock) { c.in("served") }
func (c *scriptCore) Built(_ BuildRequest, b *types.Block, _ error) {
	c.in("built")
	if c.built != nil {
		c.built <- b
	}
}
func (c *scriptCore) SetValidators(from uint64, ids []NodeID) error {
	c.vals = append(c.vals, ValidatorChange{From: from, IDs: ids})
	return nil
}
func (c *scriptCore) HasReady() bool { return len(c.readys) > 0 }
func (c *scriptCore) Ready() Ready {
	rd := c.readys[0]
	c.readys = c.readys[1:]
	return rd
}
func (c *scriptCore) Advance()            { c.in("advance") }
func (c *scriptCore) Head(uint64) HeadRef { return HeadRef{Latest: true} }
func (c *scriptCore) Stats() Stats        { return Stats{Height: 7} }
func (c *scriptCore) Err() error          { return c.err }

func startDriver(t *testing.T, h *testHost, core *scriptCore, state *durable.StateFile) *Driver {
	t.Helper()
	d, err := NewDriver(DriverConfig{Name: "test", TickInterval: time.Hour, State: state}, Env{Host: h},
		func([]byte) (Core, error) { return core, nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func block(parent *types.Header) *types.Block {
	return types.NewBlockWithHeader(&types.Header{ParentHash: parent.Hash(), Number: new(big.Int).Add(parent.Number, common.Big1), Difficulty: new(big.Int)})
}

// The driver carries out a Ready in the one order: commits, then the
// state (durable before), then messages, then requests, then Advance.
func TestDriverAppliesReadyInOrder(t *testing.T) {
	h := newTestHost()
	mem := durable.NewMemFS()
	state := &durable.StateFile{FS: mem, Path: "/d/state"}
	b1 := block(h.Head())
	core := &scriptCore{}
	core.readys = []Ready{{
		Commits:  []SealedBlock{{Block: b1}, {Block: block(b1.Header())}},
		State:    []byte("promise"),
		Messages: []Message{{Broadcast: true, Payload: []byte{1}}, {To: NodeID{2}, Payload: []byte{2}}},
		Txs:      [][]byte{{3}},
	}}
	var sawState []byte
	h.onCommit = func() {
		b, _ := state.Load()
		sawState = b
	}
	d := startDriver(t, h, core, state)
	d.HandleMessage(NodeID{2}, []byte{9}) // wakes the loop
	waitUntil(t, "the Ready", func() bool { return strings.Count(h.events(), " ") >= 4 })
	if got, want := h.events(), "commit commit broadcast send txs"; got != want {
		t.Fatalf("order: %q, want %q", got, want)
	}
	if sawState != nil {
		t.Fatalf("state saved before a commit: %q", sawState)
	}
	if b, err := state.Load(); err != nil || string(b) != "promise" {
		t.Fatalf("state after the Ready: %q %v", b, err)
	}
	var adv bool
	waitUntil(t, "Advance", func() bool {
		d.WithCore(func(Core) { adv = strings.Contains(strings.Join(core.inputs, " "), "advance") })
		return adv
	})
}

// Requests go to the worker; an empty build is refused unless the pool
// has transactions or governance work is due.
func TestDriverBuildsOnlyWhatIsWanted(t *testing.T) {
	h := newTestHost()
	core := &scriptCore{built: make(chan *types.Block, 3)}
	req := BuildRequest{ID: 1, Parent: h.Head()}
	core.readys = []Ready{{Build: &req}}
	d := startDriver(t, h, core, nil)
	d.Notify(nil)
	if b := <-core.built; b != nil {
		t.Fatalf("an empty block was built for a request without Empty: %v", b.Number())
	}
	h.mu.Lock()
	h.due = true
	h.mu.Unlock()
	d.WithCore(func(Core) { core.readys = append(core.readys, Ready{Build: &req}) })
	d.Notify(nil)
	if b := <-core.built; b == nil || len(b.Transactions()) != 0 {
		t.Fatalf("governance due: want an empty block, got %v", b)
	}
	h.mu.Lock()
	h.due, h.pending = false, true
	h.mu.Unlock()
	d.WithCore(func(Core) { core.readys = append(core.readys, Ready{Build: &req}) })
	d.Notify(nil)
	if b := <-core.built; b == nil || len(b.Transactions()) != 1 {
		t.Fatalf("pending transactions: want a block with them, got %v", b)
	}
}

// A commit that fails halts the engine: the error on Done, and nothing of
// the Ready after it (no state saved, no message sent).
func TestDriverHaltsOnCommitError(t *testing.T) {
	h := newTestHost()
	h.commitErr = errors.New("disk full")
	mem := durable.NewMemFS()
	state := &durable.StateFile{FS: mem, Path: "/d/state"}
	core := &scriptCore{readys: []Ready{{Commits: []SealedBlock{{Block: block(h.Head())}}, State: []byte("s"), Messages: []Message{{Broadcast: true}}}}}
	d := startDriver(t, h, core, state)
	d.Notify(nil)
	select {
	case err := <-d.Done():
		if !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "commit block 1") {
			t.Fatalf("halt: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no halt")
	}
	if b, _ := state.Load(); b != nil || strings.Contains(h.events(), "broadcast") {
		t.Fatalf("went on after a failed commit: state %q, events %q", b, h.events())
	}
	d.Stop()
	if _, open := <-d.Done(); open {
		t.Fatal("Done not closed after Stop")
	}
}

// A core error and a panic in the core halt the engine too.
func TestDriverHaltsOnCoreErrorAndPanic(t *testing.T) {
	for name, core := range map[string]*scriptCore{
		"error": {err: errors.New("determinism broken")},
		"panic": {panicAt: "notify"},
	} {
		t.Run(name, func(t *testing.T) {
			d := startDriver(t, newTestHost(), core, nil)
			d.Notify(nil)
			select {
			case err := <-d.Done():
				if err == nil || !strings.Contains(err.Error(), "test engine halted") {
					t.Fatalf("halt: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no halt")
			}
		})
	}
}

// Validator changes given before Start reach the core when Start makes
// it; Stop without a halt closes Done without a value.
func TestDriverValidatorChangesBeforeStart(t *testing.T) {
	core := &scriptCore{}
	d, err := NewDriver(DriverConfig{Name: "test", TickInterval: time.Hour}, Env{Host: newTestHost()},
		func([]byte) (Core, error) { return core, nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetValidators(10, []NodeID{{1}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	d.WithCore(func(Core) {
		if len(core.vals) != 1 || core.vals[0].From != 10 {
			t.Errorf("changes at start: %+v", core.vals)
		}
	})
	if d.Stats().Height != 7 {
		t.Fatalf("stats: %+v", d.Stats())
	}
	d.Stop()
	if err, halted := <-d.Done(); halted {
		t.Fatalf("Done after a clean Stop: %v", err)
	}
}

// Oversized messages and messages beyond the inbox are dropped, counted,
// and never block.
func TestDriverInboxBounds(t *testing.T) {
	d, err := NewDriver(DriverConfig{Name: "test", TickInterval: time.Hour, InboxSize: 2, MaxMessageBytes: 4}, Env{Host: newTestHost()},
		func([]byte) (Core, error) { return &scriptCore{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	d.HandleMessage(NodeID{2}, []byte("too large"))
	for i := 0; i < 5; i++ {
		d.HandleMessage(NodeID{2}, []byte{1})
	}
	if got := d.Stats().Dropped; got != 4 {
		t.Fatalf("dropped %d, want 4 (one oversized, three beyond the inbox)", got)
	}
	d.Stop()
}
