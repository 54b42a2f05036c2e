package consensus

import (
	"sync"
	"time"
)

// Bounds and weights of a Pacer.
const (
	// PacerShare is the part of a BuildRequest's Budget that building the
	// block and verifying it may take: the rest is for the network, the
	// votes and the error of the estimate.
	PacerShare = 0.5
	// PacerMinTxs is the least cap: a block of this many transactions is
	// always allowed, so that a slow estimate never stops the chain (a
	// later round's larger budget makes room anyway).
	PacerMinTxs = 64
	// PacerInitialTxs is the cap before any block of PacerMinSample
	// transactions was timed: a first burst does not make a block nobody
	// can verify in time.
	PacerInitialTxs = 1000
	// PacerMinSample is the least transactions of a block whose time
	// counts: a smaller block's time is mostly its fixed costs.
	PacerMinSample = 32
	// pacerGrowth bounds the cap to this many times the largest block
	// timed so far (a slow start: the estimate comes from blocks of a
	// size near the cap).
	pacerGrowth = 2
)

// WorkKind is what a Pacer sample timed.
type WorkKind uint8

// Kinds of work a Pacer times.
const (
	WorkBuild WorkKind = iota
	WorkVerify
)

// Pacer keeps a moving estimate of the time building and verifying a
// block take per transaction on this node, and caps a block so that both
// fit in a share of the time the block has (BuildRequest.Budget). It is
// how a proposer stops a big backlog from making a block that the
// validators cannot verify before their timeout: a round that fails makes
// the backlog, and the next block, bigger still. The cap is the
// proposer's own policy: blocks of any size within the chain's rules stay
// valid. A Pacer reads no clock (the owner times the work), so a
// simulator drives it with virtual time. The zero Pacer is ready; it is
// goroutine-safe.
type Pacer struct {
	mu      sync.Mutex
	perTx   [2]float64 // nanoseconds per transaction, by WorkKind; 0: none yet
	largest int        // most transactions of a timed block
	last    int        // last cap
}

// Observe records that work of kind on a block of txs transactions took d.
func (p *Pacer) Observe(kind WorkKind, txs int, d time.Duration) {
	if txs < PacerMinSample || d <= 0 || int(kind) >= len(p.perTx) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	x := float64(d) / float64(txs)
	old := p.perTx[kind]
	switch {
	case old == 0:
		p.perTx[kind] = x
	case x > old:
		// Slow down at once, speed up gently.
		p.perTx[kind] = old + 0.5*(x-old)
	default:
		p.perTx[kind] = old + 0.2*(x-old)
	}
	p.largest = max(p.largest, txs)
}

// Cap returns the most transactions of a block that has budget to be
// built here and verified by the validators; 0 means no cap (no budget).
func (p *Pacer) Cap(budget time.Duration) int {
	if budget <= 0 {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b, v := p.perTx[WorkBuild], p.perTx[WorkVerify]
	if b == 0 {
		b = v
	}
	if v == 0 {
		v = b
	}
	n := PacerInitialTxs
	if b > 0 {
		n = int(PacerShare * float64(budget) / (b + v))
		n = min(n, max(pacerGrowth*p.largest, PacerInitialTxs))
	}
	n = max(n, PacerMinTxs)
	p.last = n
	return n
}

// Estimate returns the time per transaction of building and verifying
// (0 while unknown) and the last cap given.
func (p *Pacer) Estimate() (build, verify time.Duration, lastCap int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Duration(p.perTx[WorkBuild]), time.Duration(p.perTx[WorkVerify]), p.last
}
