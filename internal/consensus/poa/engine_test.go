package poa

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
	"github.com/charter-ledger/charter/internal/durable"
)

// newHost is a live host of the engine tests (simnet.LiveHost, one fake
// chain for every engine's tests); commits counts its commits and hook
// runs after each (like governance, it may call back into the engine).
func newHost(bus *simnet.Bus, self consensus.NodeID, commits *atomic.Int64, hook func(h uint64)) *simnet.LiveHost {
	h := simnet.NewLiveHost(self, bus, 4)
	h.OnCommit = func(b *types.Block, _ []byte) {
		if commits != nil {
			commits.Add(1)
		}
		if hook != nil {
			hook(b.NumberU64())
		}
	}
	return h
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

// status reads a running poa engine's core.
func status(e consensus.Engine) (st Status) {
	e.(*consensus.Driver).WithCore(func(c consensus.Core) { st = c.(*Core).Status() })
	return st
}

func TestEngineOverHost(t *testing.T) {
	const n = 4
	b := simnet.NewBus()
	dir0 := t.TempDir()
	var hosts []*simnet.LiveHost
	var hook0 atomic.Pointer[func(uint64)]
	var engines []consensus.Engine
	for i := 0; i < n; i++ {
		cfg := testConfig(i, n)
		cfg.TickInterval = 2 * time.Millisecond
		cfg.TimeoutTicks = 10
		cfg.MaxTimeoutTicks = 60
		var hook func(uint64)
		if i == 0 {
			hook = func(h uint64) {
				if f := hook0.Load(); f != nil {
					(*f)(h)
				}
			}
		}
		h := newHost(b, ids(n)[i], nil, hook)
		env := consensus.Env{Host: h, FS: durable.NewMemFS(), Dir: "/data"}
		if i == 0 {
			env = consensus.Env{Host: h, Dir: dir0}
		}
		e, err := New(cfg, env)
		if err != nil {
			t.Fatal(err)
		}
		hosts, engines = append(hosts, h), append(engines, e)
		b.Attach(h.Self(), e)
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
	f := func(h uint64) {
		if h == 3 {
			once.Do(func() {
				hookErr = engines[0].SetValidators(ActivationHeight(h, lookahead)+100, ids(n))
				close(hookDone)
			})
		}
	}
	hook0.Store(&f)
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
	b.Cut(ids(n)[3], true)
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
		for h := uint64(0); h <= hosts[0].Height() && h <= hosts[i].Height(); h++ {
			if hosts[0].HashAt(h) != hosts[i].HashAt(h) {
				t.Errorf("node %d differs at %d", i, h)
			}
		}
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
	b := simnet.NewBus()
	cfg := testConfig(0, 1)
	cfg.TickInterval = time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	var commits atomic.Int64
	h := newHost(b, ids(1)[0], &commits, nil)
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
	if n := commits.Load(); n != 0 {
		t.Fatalf("%d blocks committed although nothing could be persisted", n)
	}
}
