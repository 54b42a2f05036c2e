package txpool

import (
	"crypto/ecdsa"
	"errors"
	"math/big"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"
)

// txData is a transfer carrying dataLen zero bytes, with the gas it needs.
func txData(key *ecdsa.PrivateKey, nonce uint64, feeCap int64, dataLen int) *types.Transaction {
	to := common.Address{0xaa}
	gas := uint64(21000 + 10*dataLen + 1000) // the EIP-7623 floor for zero bytes, and some
	return types.MustSignNewTx(key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID: chainID, Nonce: nonce, Gas: gas, GasFeeCap: big.NewInt(feeCap), GasTipCap: big.NewInt(feeCap), To: &to,
		Value: big.NewInt(1), Data: make([]byte, dataLen)})
}

// fakeClock is the pool's clock in tests: it moves only when told.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

// checkPool verifies the pool's bookkeeping against its transactions and
// its bounds against its configuration.
func checkPool(t *testing.T, p *Pool) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var all, pending int
	var bytes, queuedBytes uint64
	linked := map[*entry]bool{}
	for e := p.mu.queued.next; e != &p.mu.queued; e = e.next {
		if e.next.prev != e {
			t.Fatalf("expiry list broken at nonce %d of %s", e.tx.Nonce(), e.from)
		}
		if e.prev != &p.mu.queued && e.prev.queuedAt.After(e.queuedAt) {
			t.Fatalf("expiry list out of order at nonce %d of %s", e.tx.Nonce(), e.from)
		}
		linked[e] = true
	}
	if len(p.mu.loads) != len(p.mu.accounts) {
		t.Fatalf("%d accounts in the load heap, %d in the pool", len(p.mu.loads), len(p.mu.accounts))
	}
	for i, a := range p.mu.loads {
		if a.index != i || p.mu.accounts[a.addr] != a {
			t.Fatalf("load heap entry %d (%s) has index %d", i, a.addr, a.index)
		}
		if i > 0 && p.mu.loads[(i-1)/2].load < a.load {
			t.Fatalf("load heap out of order at %d", i)
		}
	}
	for addr, a := range p.mu.accounts {
		if len(a.txs) == 0 {
			t.Fatalf("account %s is in the pool without transactions", addr)
		}
		var ab, aq uint64
		var cost uint256.Int
		for n, e := range a.txs {
			if n < a.nonce || n > a.top || e.tx.Nonce() != n || e.from != addr || p.mu.all[e.tx.Hash()] != e {
				t.Fatalf("account %s: entry at nonce %d misplaced (state nonce %d, top %d)", addr, n, a.nonce, a.top)
			}
			if e.size != e.tx.Size() {
				t.Fatalf("account %s nonce %d: size %d, tx %d", addr, n, e.size, e.tx.Size())
			}
			ab += e.size
			cost.Add(&cost, e.cost)
			if queued := n >= a.pendingTo; queued != linked[e] {
				t.Fatalf("account %s nonce %d (pending to %d): queued %v, in the expiry list %v", addr, n, a.pendingTo, queued, linked[e])
			} else if queued {
				aq += e.size
			}
		}
		for n := a.nonce; n < a.pendingTo; n++ {
			if a.txs[n] == nil {
				t.Fatalf("account %s: gap at nonce %d in its pending run %d..%d", addr, n, a.nonce, a.pendingTo)
			}
		}
		if a.txs[a.pendingTo] != nil {
			t.Fatalf("account %s: nonce %d is queued after a run ending there", addr, a.pendingTo)
		}
		if ab != a.bytes || aq != a.queuedBytes || cost.Cmp(&a.cost) != 0 {
			t.Fatalf("account %s: bytes %d/%d queued %d/%d cost %v/%v (counted/kept)", addr, ab, a.bytes, aq, a.queuedBytes, &cost, &a.cost)
		}
		if len(a.txs) > p.cfg.AccountSlots || a.bytes > p.cfg.AccountBytes || a.queuedBytes > p.cfg.AccountQueuedBytes {
			t.Fatalf("account %s over its bounds: %d transactions, %d bytes, %d queued bytes", addr, len(a.txs), a.bytes, a.queuedBytes)
		}
		all += len(a.txs)
		pending += int(a.pendingTo - a.nonce)
		bytes += ab
		queuedBytes += aq
	}
	if all != len(p.mu.all) || pending != p.mu.pending || bytes != p.mu.bytes || queuedBytes != p.mu.queuedBytes || len(linked) != all-pending {
		t.Fatalf("tallies: %d/%d transactions, %d/%d pending, %d/%d bytes, %d/%d queued bytes, %d in the expiry list (counted/kept)",
			all, len(p.mu.all), pending, p.mu.pending, bytes, p.mu.bytes, queuedBytes, p.mu.queuedBytes, len(linked))
	}
	if all > p.cfg.GlobalSlots || bytes > p.cfg.GlobalBytes {
		t.Fatalf("pool over its bounds: %d transactions, %d bytes", all, bytes)
	}
}

// A sender that floods gapped transactions of 120 KB fills its queued
// allowance and no more; each refusal says which bound.
func TestGappedFloodStaysWithinBytes(t *testing.T) {
	k, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(k.PublicKey)
	p, _ := newTestPool(Config{}, k)
	const size = 120_000
	var admitted int
	for n := uint64(1); n <= 1024; n++ { // nonce 0 never comes
		err := p.Add(txData(k, n, 1, size))
		switch {
		case err == nil:
			admitted++
		case !errors.Is(err, ErrAccountLimit) || !strings.Contains(err.Error(), "queued transactions of "+addr.Hex()) || !strings.Contains(err.Error(), "limit 4194304"):
			t.Fatalf("nonce %d: %v", n, err)
		}
	}
	u := p.Usage()
	if u.QueuedBytes > DefaultAccountQueuedBytes || u.Queued != admitted || u.PendingBytes != 0 {
		t.Fatalf("usage %+v after the flood, queued bound %d", u, DefaultAccountQueuedBytes)
	}
	if want := DefaultAccountQueuedBytes / (size + 200); admitted < want || admitted > DefaultAccountQueuedBytes/size {
		t.Fatalf("%d admitted, want about %d", admitted, want)
	}
	checkPool(t, p)

	// In nonce order the same flood fills the account's allowance.
	k2, _ := crypto.GenerateKey()
	p, _ = newTestPool(Config{}, k2)
	admitted = 0
	for n := uint64(0); n < 1024; n++ {
		err := p.Add(txData(k2, n, 1, size))
		if err == nil {
			admitted++
			continue
		}
		if !errors.Is(err, ErrAccountLimit) || !strings.Contains(err.Error(), "bytes of transactions, limit 33554432") {
			t.Fatalf("nonce %d: %v", n, err)
		}
		break
	}
	if u := p.Usage(); u.PendingBytes > DefaultAccountBytes || u.Pending != admitted || admitted < DefaultAccountBytes/(size+200) {
		t.Fatalf("usage %+v, %d admitted, account bound %d", u, admitted, DefaultAccountBytes)
	}
	checkPool(t, p)
}

// The pool as a whole stays within GlobalBytes when many senders flood.
func TestGlobalBytes(t *testing.T) {
	var keys []*ecdsa.PrivateKey
	for i := 0; i < 6; i++ {
		k, _ := crypto.GenerateKey()
		keys = append(keys, k)
	}
	const size = 10_000
	p, _ := newTestPool(Config{GlobalBytes: 30 * size}, keys...)
	var full int
	for n := uint64(0); n < 20; n++ {
		for _, k := range keys {
			if err := p.Add(txData(k, n, 1, size)); errors.Is(err, ErrPoolFull) {
				full++
			} else if err != nil {
				t.Fatal(err)
			}
			checkPool(t, p)
		}
	}
	// Each sender holds at least what fits in its sixth of the bytes.
	pending, _ := p.Content()
	for _, k := range keys {
		if got := len(pending[crypto.PubkeyToAddress(k.PublicKey)]); got < 4 {
			t.Fatalf("a sender holds %d transactions, less than its share", got)
		}
	}
	if u := p.Usage(); full == 0 || u.PendingBytes > 30*size {
		t.Fatalf("usage %+v, %d refused as full", u, full)
	}
}

func TestQueuedExpire(t *testing.T) {
	k, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(k.PublicKey)
	clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	p, _ := newTestPool(Config{QueuedLifetime: time.Hour, Now: clk.Now}, k)
	add := func(n uint64) {
		t.Helper()
		if err := p.Add(tx(k, n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	has := func(n uint64) bool { return p.Get(tx(k, n, 1).Hash()) != nil }
	add(0)
	add(1) // pending: 0, 1
	add(3)
	add(4) // queued at 0:00
	clk.Advance(20 * time.Minute)
	add(6) // queued at 0:20
	add(9) // queued at 0:20
	clk.Advance(10 * time.Minute)
	add(2)                                        // 0:30: fills the gap, 3 and 4 become pending
	clk.Advance(50*time.Minute - time.Nanosecond) // 1:20 less a nanosecond
	if u := p.Usage(); u.Pending != 5 || u.Queued != 2 || u.Expired != 0 {
		t.Fatalf("just before the lifetime of 6 and 9: %+v", u)
	}
	clk.Advance(time.Nanosecond) // 1:20
	if u := p.Usage(); u.Pending != 5 || u.Queued != 0 || u.Expired != 2 || u.QueuedBytes != 0 {
		t.Fatalf("after the lifetime of 6 and 9: %+v", u)
	}
	if has(6) || has(9) || !has(3) || !has(4) {
		t.Fatal("expired the wrong transactions")
	}
	checkPool(t, p)
	// A transaction queued again after the others expired gets its own
	// lifetime; pending ones never expire.
	add(7)
	clk.Advance(59 * time.Minute)
	if !has(7) {
		t.Fatal("7 expired early")
	}
	clk.Advance(10 * time.Hour)
	pending, queued := p.Content()
	if len(pending[addr]) != 5 || len(queued[addr]) != 0 {
		t.Fatalf("after ten hours: %d pending, %d queued; want 5 and 0", len(pending[addr]), len(queued[addr]))
	}
	if u := p.Usage(); u.Expired != 3 {
		t.Fatalf("expired %d, want 3", u.Expired)
	}
	checkPool(t, p)
}

// A flooder fills the pool with a pending run and queued transactions;
// honest senders within their share still get in, each evicting the
// flooder's tail: queued first, then the pending run from its end, which
// keeps it without a gap. Past its share, the flooder and honest senders
// alike are refused with the reason.
func TestFullPoolEvictsFlooderTail(t *testing.T) {
	flooder, _ := crypto.GenerateKey()
	honest, _ := crypto.GenerateKey()
	late, _ := crypto.GenerateKey()
	fAddr := crypto.PubkeyToAddress(flooder.PublicKey)
	p, _ := newTestPool(Config{GlobalSlots: 64}, flooder, honest, late)
	for n := uint64(0); n < 62; n++ {
		if n == 50 || n == 51 {
			continue // a gap: 52..61 wait queued
		}
		if err := p.Add(tx(flooder, n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	for n := uint64(0); n < 4; n++ {
		if err := p.Add(tx(honest, n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if u := p.Usage(); u.Pending != 54 || u.Queued != 10 {
		t.Fatalf("full pool: %+v", u)
	}
	// Three senders share 64 slots: 21 each.
	if err := p.Add(tx(late, 0, 1)); err != nil {
		t.Fatalf("a newcomer within its share: %v", err)
	}
	for n := uint64(4); n < 21; n++ {
		if err := p.Add(tx(honest, n, 1)); err != nil {
			t.Fatalf("honest nonce %d, within its share: %v", n, err)
		}
		checkPool(t, p)
	}
	if err := p.Add(tx(honest, 21, 1)); !errors.Is(err, ErrPoolFull) || !strings.Contains(err.Error(), "would hold 22 transactions") || !strings.Contains(err.Error(), "over its share of 21 transactions") {
		t.Fatalf("honest past its share: %v", err)
	}
	err := p.Add(tx(flooder, 42, 1))
	if !errors.Is(err, ErrPoolFull) || !strings.Contains(err.Error(), "sender "+fAddr.Hex()+" would hold 43 transactions") {
		t.Fatalf("flooder: %v", err)
	}
	t.Log(err)
	// 18 evicted: the 10 queued, then 49 down to 42.
	pending, queued := p.Content()
	if u := p.Usage(); u.Evicted != 18 || u.Pending != 64 || u.Queued != 0 || len(queued[fAddr]) != 0 || len(pending[fAddr]) != 42 {
		t.Fatalf("after the honest senders: %+v, flooder %d pending %d queued", u, len(pending[fAddr]), len(queued[fAddr]))
	}
	for i, x := range pending[fAddr] {
		if x.Nonce() != uint64(i) {
			t.Fatalf("flooder's pending run has a gap at %d", i)
		}
	}
	if n := p.Nonce(fAddr); n != 42 {
		t.Fatalf("flooder's next nonce %d, want 42", n)
	}
	// A block takes the flooder's run in order, without a gap.
	src := p.Pending(0)
	next := map[common.Address]uint64{}
	for x := src.Peek(); x != nil; x = src.Peek() {
		from, _ := types.Sender(p.signer, x)
		if x.Nonce() != next[from] {
			t.Fatalf("block source: %s nonce %d, want %d", from, x.Nonce(), next[from])
		}
		next[from]++
		src.Shift()
	}
	if next[fAddr] != 42 {
		t.Fatalf("block source gave %d of the flooder's, want 42", next[fAddr])
	}
	checkPool(t, p)
}

// Full by bytes: a small transaction within its share evicts the tail of
// the sender of large ones.
func TestFullPoolByBytes(t *testing.T) {
	flooder, _ := crypto.GenerateKey()
	honest, _ := crypto.GenerateKey()
	const size = 10_000
	// The pool holds exactly the flooder's 20 (their sizes differ by a
	// byte when a signature value has a leading zero).
	var flood []*types.Transaction
	var total uint64
	for n := uint64(0); n < 20; n++ {
		x := txData(flooder, n, 1, size)
		flood = append(flood, x)
		total += x.Size()
	}
	p, _ := newTestPool(Config{GlobalBytes: total}, flooder, honest)
	for _, x := range flood {
		if err := p.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	for n := uint64(0); n < 5; n++ {
		if err := p.Add(tx(honest, n, 1)); err != nil {
			t.Fatalf("honest %d: %v", n, err)
		}
	}
	if u := p.Usage(); u.Evicted != 1 || u.Pending != 24 {
		t.Fatalf("%+v, want one large transaction evicted", u)
	}
	if err := p.Add(txData(flooder, 19, 2, size)); !errors.Is(err, ErrPoolFull) || !strings.Contains(err.Error(), "over its share") {
		t.Fatalf("the flooder replacing its evicted tail: %v", err)
	}
	checkPool(t, p)
}

// Random admissions, replacements, blocks, drops and the passing of time
// keep the bookkeeping exact and the pool within every bound.
func TestBoundsProperty(t *testing.T) {
	var evicted, expired uint64
	refused := map[error]int{}
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		var keys []*ecdsa.PrivateKey
		for i := 0; i < 5; i++ {
			k, _ := crypto.GenerateKey()
			keys = append(keys, k)
		}
		clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
		p, st := newTestPool(Config{GlobalSlots: 24, AccountSlots: 12, GlobalBytes: 20_000, AccountBytes: 12_000, AccountQueuedBytes: 6_000,
			QueuedLifetime: time.Minute, MaxNonceGap: 8, Now: clk.Now}, keys...)
		for step := 0; step < 400; step++ {
			k := keys[rng.Intn(len(keys))]
			addr := crypto.PubkeyToAddress(k.PublicKey)
			switch op := rng.Intn(10); {
			case op < 7:
				n := st.nonces[addr] + uint64(rng.Intn(12))
				x := txData(k, n, int64(1+rng.Intn(3)), []int{0, 500, 3000}[rng.Intn(3)])
				if err := p.Add(x); err != nil {
					refused[errors.Unwrap(err)]++
				}
			case op < 8 && rng.Intn(2) == 0: // a block includes some of the sender's run
				pend, _ := p.Content()
				if run := pend[addr]; len(run) > 0 {
					st.nonces[addr] = run[rng.Intn(len(run))].Nonce() + 1
				}
				p.Reset(st, nil)
			case op < 9: // a builder found a transaction unexecutable
				pend, queued := p.Content()
				all := append(pend[addr], queued[addr]...)
				if len(all) > 0 {
					p.Reset(st, []*types.Transaction{all[rng.Intn(len(all))]})
				}
			default:
				clk.Advance(time.Duration(rng.Intn(40)) * time.Second)
				p.Stats()
			}
			checkPool(t, p)
		}
		u := p.Usage()
		evicted += u.Evicted
		expired += u.Expired
	}
	// The walk must have reached every way of staying bounded.
	if evicted == 0 || expired == 0 || refused[ErrPoolFull] == 0 || refused[ErrAccountLimit] == 0 {
		t.Fatalf("evicted %d, expired %d, refused %v", evicted, expired, refused)
	}
	t.Logf("evicted %d, expired %d, refused %v", evicted, expired, refused)
}

// Concurrent submitters, blocks and readers (run with -race): the pool's
// bookkeeping stays exact.
func TestConcurrentAdmission(t *testing.T) {
	const senders, perSender = 4, 60
	var keys []*ecdsa.PrivateKey
	for i := 0; i < senders; i++ {
		k, _ := crypto.GenerateKey()
		keys = append(keys, k)
	}
	var clk atomic.Int64
	clk.Store(time.Unix(1_700_000_000, 0).UnixNano())
	p, st := newTestPool(Config{GlobalSlots: 100, QueuedLifetime: time.Second, Now: func() time.Time { return time.Unix(0, clk.Load()) }}, keys...)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Add(1)
		go func(k *ecdsa.PrivateKey) {
			defer wg.Done()
			for n := uint64(0); n < perSender; n++ {
				if n%7 == 3 {
					continue // gaps: what follows waits queued, some of it expires
				}
				p.Add(tx(k, n, 1))
			}
		}(k)
	}
	go func() {
		defer close(done)
		wg.Wait()
	}()
	// Blocks: each takes what is pending; the state is a new value each
	// time, as the head state is.
	nonces := map[common.Address]uint64{}
	for blocks := 0; blocks < 1000; blocks++ {
		finished := false
		select {
		case <-done:
			finished = true
		default:
		}
		src := p.Pending(10)
		for x := src.Peek(); x != nil; x = src.Peek() {
			from, _ := types.Sender(p.signer, x)
			nonces[from] = x.Nonce() + 1
			src.Shift()
		}
		next := &fakeState{nonces: map[common.Address]uint64{}, balances: st.balances}
		for a, n := range nonces {
			next.nonces[a] = n
		}
		p.Reset(next, nil)
		clk.Add(int64(100 * time.Millisecond))
		p.Usage()
		if finished {
			break
		}
	}
	<-done
	checkPool(t, p)
}
