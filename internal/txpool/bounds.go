package txpool

import (
	"container/heap"
	"fmt"
	"time"
)

// The pool's bounds beyond one transaction's, and how it stays within them.
//
// Counts and bytes: AccountSlots and AccountBytes per account,
// AccountQueuedBytes for an account's queued transactions, GlobalSlots and
// GlobalBytes in all. A transaction that would break an account's bound is
// refused (ErrAccountLimit, naming the bound).
//
// Fair share: when a transaction would break a global bound, the pool is
// divided evenly between the senders in it, the newcomer included: each
// may hold GlobalSlots/senders transactions and GlobalBytes/senders bytes.
// A sender that would hold more with the transaction is refused
// (ErrPoolFull, with its holdings and its share). A sender within its share
// gets in: the sender holding the largest part of the pool (by the larger
// of its parts of the count and the bytes), which is then above its share,
// loses its transaction of the highest nonce, again until the newcomer
// fits. Taking from the tail of a nonce sequence evicts queued
// transactions first and never leaves a gap in a pending run (a block
// being built holds its own snapshot of the runs; what it includes the
// next Reset clears).
//
// Expiry: a transaction that becomes queued is appended to a list kept in
// the order entries became queued, which, the lifetime being one for all,
// is the order they expire in. Every entry point of the pool first drops
// the list's expired head: the cost is O(expired), and nothing when the
// list's oldest has time left. Promotion unlinks an entry in O(1).

// clock reads the pool's clock at most once per call into the pool.
type clock struct {
	read func() time.Time
	now  time.Time
	ok   bool
}

func (c *clock) get() time.Time {
	if !c.ok {
		c.now, c.ok = c.read(), true
	}
	return c.now
}

// fairShare is what each sender may hold of a full pool.
type fairShare struct {
	senders int
	txs     int
	bytes   uint64
}

// shareLocked divides the pool between the senders in it and, if fresh, a
// newcomer.
func (p *Pool) shareLocked(fresh bool) fairShare {
	n := len(p.mu.accounts)
	if fresh {
		n++
	}
	return fairShare{senders: n, txs: p.cfg.GlobalSlots / n, bytes: p.cfg.GlobalBytes / uint64(n)}
}

func (s fairShare) exceededBy(a *account) bool { return len(a.txs) > s.txs || a.bytes > s.bytes }

// makeRoomLocked evicts from the tails of the senders above their share,
// the one holding the most first, until the pool can grow to poolTxs
// transactions and poolBytes bytes. The sender acct is within its share
// and loses nothing. By the pigeonhole principle, while the pool is over
// a bound and acct within its share, another sender is above its share;
// the error is a guard.
func (p *Pool) makeRoomLocked(acct *account, share fairShare, poolTxs int, poolBytes uint64) error {
	for poolTxs > p.cfg.GlobalSlots || poolBytes > p.cfg.GlobalBytes {
		var victim *account
		if len(p.mu.loads) > 0 {
			victim = p.mu.loads[0]
		}
		if victim == nil || victim == acct || !share.exceededBy(victim) {
			return fmt.Errorf("%w: %d transactions, %d bytes wait and no sender holds more than its share of %d transactions, %d bytes",
				ErrPoolFull, len(p.mu.all), p.mu.bytes, share.txs, share.bytes)
		}
		e := p.evictTailLocked(victim)
		if e == nil {
			return fmt.Errorf("%w: no transaction of %s to evict", ErrPoolFull, victim.addr)
		}
		poolTxs--
		poolBytes -= e.size
	}
	return nil
}

// evictTailLocked drops the transaction of acct with the highest nonce: a
// queued one if acct has any, else the last of its pending run.
func (p *Pool) evictTailLocked(acct *account) *entry {
	e := acct.tail()
	if e == nil {
		return nil
	}
	n := e.tx.Nonce()
	p.dropLocked(acct, e)
	if n < acct.pendingTo {
		// Nothing was queued, so n was the last of the run.
		acct.pendingTo = n
		p.mu.pending--
	}
	p.mu.evicted++
	p.reloadLocked(acct)
	return e
}

// tail returns the transaction with the highest nonce, or nil if there is
// none. The walk down from top is bounded by AccountSlots + MaxNonceGap
// and, over successive calls, amortized.
func (a *account) tail() *entry {
	if len(a.txs) == 0 {
		return nil
	}
	for n := a.top; ; n-- {
		if e := a.txs[n]; e != nil {
			a.top = n
			return e
		}
		if n <= a.nonce {
			return nil
		}
	}
}

// expireLocked drops the queued transactions older than QueuedLifetime.
func (p *Pool) expireLocked(c *clock) {
	head := &p.mu.queued
	if head.next == head {
		return
	}
	now := c.get()
	for e := head.next; e != head && now.Sub(e.queuedAt) >= p.cfg.QueuedLifetime; e = head.next {
		acct := p.mu.accounts[e.from]
		p.dropLocked(acct, e)
		p.mu.expired++
		p.reloadLocked(acct)
	}
}

// dropLocked takes e out of acct and the pool's tallies. The caller keeps
// acct's pending run whole (e is queued, the last of the run, or below the
// state's nonce) and its pending count right.
func (p *Pool) dropLocked(acct *account, e *entry) {
	delete(acct.txs, e.tx.Nonce())
	delete(p.mu.all, e.tx.Hash())
	acct.bytes -= e.size
	acct.cost.Sub(&acct.cost, e.cost)
	p.mu.bytes -= e.size
	p.unqueueLocked(acct, e)
}

// queueLocked marks e queued since now: last in the expiry list.
func (p *Pool) queueLocked(acct *account, e *entry, now time.Time) {
	head := &p.mu.queued
	e.queuedAt = now
	e.prev, e.next = head.prev, head
	head.prev.next = e
	head.prev = e
	acct.queuedBytes += e.size
	p.mu.queuedBytes += e.size
}

// unqueueLocked takes e out of the expiry list if it is queued.
func (p *Pool) unqueueLocked(acct *account, e *entry) {
	if e.next == nil {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	acct.queuedBytes -= e.size
	p.mu.queuedBytes -= e.size
}

// reloadLocked reweighs acct after its transactions changed: it leaves
// the pool if it has none, else takes its place in the load heap.
func (p *Pool) reloadLocked(acct *account) {
	if len(acct.txs) == 0 {
		if acct.index >= 0 {
			heap.Remove(&p.mu.loads, acct.index)
		}
		delete(p.mu.accounts, acct.addr)
		return
	}
	acct.load = max(float64(len(acct.txs))*p.perSlot, float64(acct.bytes)*p.perByte)
	if acct.index < 0 {
		heap.Push(&p.mu.loads, acct)
	} else {
		heap.Fix(&p.mu.loads, acct.index)
	}
}

// rebuildLoadsLocked reweighs every account, after Reset changed many.
func (p *Pool) rebuildLoadsLocked() {
	clear(p.mu.loads)
	p.mu.loads = p.mu.loads[:0]
	for _, acct := range p.mu.accounts {
		acct.load = max(float64(len(acct.txs))*p.perSlot, float64(acct.bytes)*p.perByte)
		acct.index = len(p.mu.loads)
		p.mu.loads = append(p.mu.loads, acct)
	}
	heap.Init(&p.mu.loads)
}

// loadHeap orders the pool's accounts by load, the largest first.
type loadHeap []*account

func (h loadHeap) Len() int           { return len(h) }
func (h loadHeap) Less(i, j int) bool { return h[i].load > h[j].load }
func (h loadHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *loadHeap) Push(x any) {
	a := x.(*account)
	a.index = len(*h)
	*h = append(*h, a)
}
func (h *loadHeap) Pop() any {
	old := *h
	a := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	a.index = -1
	return a
}
