package consensus

import (
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
)

func TestPacerCap(t *testing.T) {
	var p Pacer
	if n := p.Cap(0); n != 0 {
		t.Fatalf("no budget: cap %d, want none", n)
	}
	if n := p.Cap(2 * time.Second); n != PacerInitialTxs {
		t.Fatalf("nothing timed yet: cap %d, want %d", n, PacerInitialTxs)
	}
	p.Observe(WorkBuild, PacerMinSample-1, time.Hour) // too small to count
	if n := p.Cap(2 * time.Second); n != PacerInitialTxs {
		t.Fatalf("a small block counted: cap %d", n)
	}
	// 100 µs a transaction to build, as much to verify (assumed until
	// timed): half of 200 ms is 500 transactions.
	p.Observe(WorkBuild, 1000, 100*time.Millisecond)
	if n := p.Cap(200 * time.Millisecond); n != 500 {
		t.Fatalf("cap %d, want 500", n)
	}
	// A large budget grows the cap by at most twice the largest timed block.
	if n := p.Cap(2 * time.Second); n != 2000 {
		t.Fatalf("cap %d, want 2000 (twice the largest timed block)", n)
	}
	// Verification is slower: 300 µs. The estimate moves half way at once.
	p.Observe(WorkVerify, 1000, 300*time.Millisecond)
	if n := p.Cap(200 * time.Millisecond); n != 250 {
		t.Fatalf("cap %d, want 250", n)
	}
	// A slower sample moves half way; a faster one a fifth of the way.
	p.Observe(WorkVerify, 1000, 500*time.Millisecond)
	if _, v, _ := p.Estimate(); v != 400*time.Microsecond {
		t.Fatalf("verify estimate %v after a slower block, want 400µs", v)
	}
	p.Observe(WorkVerify, 1000, 100*time.Millisecond)
	if _, v, _ := p.Estimate(); v != 340*time.Microsecond {
		t.Fatalf("verify estimate %v after a faster block, want 340µs", v)
	}
	// However slow, a block of PacerMinTxs is allowed.
	p.Observe(WorkBuild, 100, time.Minute)
	if n := p.Cap(50 * time.Millisecond); n != PacerMinTxs {
		t.Fatalf("cap %d, want the floor %d", n, PacerMinTxs)
	}
}

// maxHost is a testHost whose chain builds a block of at most maxTxs
// transactions (MaxTxsBuilder) and tells which bound it got.
type maxHost struct {
	*testHost
	got chan int
}

func (h maxHost) BuildBlockMax(parent *types.Header, ts uint64, proposer NodeID, maxTxs int) (*types.Block, error) {
	h.got <- maxTxs
	return h.BuildBlock(parent, ts, proposer)
}

// A build request with a budget is capped by the driver's Pacer; one
// without is built with the chain's own bounds.
func TestDriverCapsBudgetedBuilds(t *testing.T) {
	h := maxHost{testHost: newTestHost(), got: make(chan int, 4)}
	h.pending = true
	core := &scriptCore{built: make(chan *types.Block, 4)}
	budgeted := BuildRequest{ID: 1, Parent: h.Head(), Budget: time.Second}
	core.readys = []Ready{{Build: &budgeted}}
	d, err := NewDriver(DriverConfig{Name: "test", TickInterval: time.Hour}, Env{Host: h}, func([]byte) (Core, error) { return core, nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	d.Notify(nil)
	select {
	case n := <-h.got:
		if n != PacerInitialTxs {
			t.Fatalf("budgeted build capped at %d, want %d", n, PacerInitialTxs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no capped build")
	}
	if b := <-core.built; b == nil || b.Number().Cmp(big.NewInt(1)) != 0 {
		t.Fatalf("built %v", b)
	}
	plain := BuildRequest{ID: 2, Parent: h.Head()}
	d.WithCore(func(Core) { core.readys = append(core.readys, Ready{Build: &plain}) })
	d.Notify(nil)
	if b := <-core.built; b == nil {
		t.Fatal("no block for a request without a budget")
	}
	select {
	case n := <-h.got:
		t.Fatalf("a request without a budget was capped at %d", n)
	default:
	}
	if _, _, last := d.Pacer().Estimate(); last != PacerInitialTxs {
		t.Fatalf("last cap %d", last)
	}
}
