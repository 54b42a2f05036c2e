package keystore

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/system"
	"github.com/charter-ledger/charter/internal/txpool"
)

// fakePool is a strict pool: it admits a transaction only at its
// sender's next nonce (state nonce + admitted ones), refusing a used
// nonce as the real pool does and a gap with errGap, so that a
// duplicate or a gap fails the send that makes it.
type fakePool struct {
	signer types.Signer
	// recover checks every transaction's signature and chain id (off in
	// the benchmark).
	recover bool

	mu struct {
		sync.Mutex
		state    map[common.Address]uint64
		admitted map[common.Address][]*types.Transaction
		hashes   map[common.Hash]bool
		// stale, when set, is what PoolNonce answers (a lagging view),
		// until a send is refused for a used nonce.
		stale    *uint64
		attempts int
		// reject, when set, refuses a transaction before the nonce check.
		reject func(tx *types.Transaction) error
		// block, when set, holds SendTx until it is closed; entered gets
		// a value as SendTx waits.
		block, entered chan struct{}
		estimates      []ethereum.CallMsg
	}
}

var errGap = errors.New("fake pool: nonce gap")

func newFakePool(spec *chain.Spec) *fakePool {
	p := &fakePool{signer: types.LatestSigner(spec.Config), recover: true}
	p.mu.state = make(map[common.Address]uint64)
	p.mu.admitted = make(map[common.Address][]*types.Transaction)
	p.mu.hashes = make(map[common.Hash]bool)
	return p
}

func (p *fakePool) PoolNonce(addr common.Address) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.stale != nil {
		return *p.mu.stale
	}
	return p.mu.state[addr] + uint64(len(p.mu.admitted[addr]))
}

func (p *fakePool) EstimateGas(_ context.Context, msg ethereum.CallMsg) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.estimates = append(p.mu.estimates, msg)
	if len(msg.Data) > 0 && msg.Data[0] == 0xfe {
		return 0, errors.New("execution reverted")
	}
	return 21000 + uint64(len(msg.Data))*16, nil
}

func (p *fakePool) SendTx(tx *types.Transaction) error {
	var from common.Address
	if p.recover {
		var err error
		if from, err = types.Sender(p.signer, tx); err != nil {
			return err
		}
	}
	p.mu.Lock()
	block, entered := p.mu.block, p.mu.entered
	p.mu.Unlock()
	if block != nil {
		entered <- struct{}{}
		<-block
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.attempts++
	if p.mu.reject != nil {
		if err := p.mu.reject(tx); err != nil {
			return err
		}
	}
	if p.mu.hashes[tx.Hash()] {
		return txpool.ErrAlreadyKnown
	}
	next := p.mu.state[from] + uint64(len(p.mu.admitted[from]))
	switch {
	case tx.Nonce() < next:
		p.mu.stale = nil
		return fmt.Errorf("%w: next nonce %d, tx nonce %d", txpool.ErrNonceTooLow, next, tx.Nonce())
	case tx.Nonce() > next:
		return fmt.Errorf("%w: next nonce %d, tx nonce %d", errGap, next, tx.Nonce())
	}
	p.mu.admitted[from] = append(p.mu.admitted[from], tx)
	p.mu.hashes[tx.Hash()] = true
	return nil
}

// nonces are the nonces of addr's admitted transactions, in order.
func (p *fakePool) nonces(addr common.Address) []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []uint64
	for _, tx := range p.mu.admitted[addr] {
		out = append(out, tx.Nonce())
	}
	return out
}

func (p *fakePool) attempts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.attempts
}

// memStore is a Store with keys made in memory (no scrypt, no files).
func memStore(t testing.TB, ids ...string) *Store {
	t.Helper()
	s := &Store{dir: "mem", now: time.Now}
	s.mu.byID = make(map[string][]*entry)
	s.mu.addrs = make(map[common.Address]string)
	for _, id := range ids {
		key, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		e := &entry{info: Info{ID: id, Version: 1, Address: crypto.PubkeyToAddress(key.PublicKey), Created: time.Now()}, key: key}
		s.mu.byID[id] = []*entry{e}
		s.mu.addrs[e.info.Address] = id
	}
	return s
}

func testSpec(t testing.TB) *chain.Spec {
	t.Helper()
	spec, err := chain.DevSpec(chain.DefaultChainID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func addrOf(t testing.TB, s *Store, id string) common.Address {
	t.Helper()
	info, ok := s.Current(id)
	if !ok {
		t.Fatalf("no key %q", id)
	}
	return info.Address
}

var to = common.HexToAddress("0x00000000000000000000000000000000000000aa")

func transfer(wei int64) TxRequest {
	return TxRequest{To: &to, Value: big.NewInt(wei), Gas: 21000}
}

// wantNonces fails unless the pool admitted exactly nonces from..from+n-1
// from addr, in order.
func wantNonces(t *testing.T, pool *fakePool, addr common.Address, from, n uint64) {
	t.Helper()
	got := pool.nonces(addr)
	want := make([]uint64, n)
	for i := range want {
		want[i] = from + uint64(i)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("admitted nonces %v, want %v", got, want)
	}
}

// TestConcurrentSendsTakeConsecutiveNonces: 200 sends from 20 goroutines
// on one key give 200 distinct, consecutive nonces, each admitted at
// once by a pool that refuses gaps and reuses; also when the pool's nonce
// view lags (always 0), so the signer's own next nonce decides.
func TestConcurrentSendsTakeConsecutiveNonces(t *testing.T) {
	for _, lag := range []bool{false, true} {
		t.Run(fmt.Sprintf("lagging pool %v", lag), func(t *testing.T) {
			spec := testSpec(t)
			ks := memStore(t, "payments")
			pool := newFakePool(spec)
			if lag {
				zero := uint64(0)
				pool.mu.stale = &zero
			}
			s := NewSigner(ks, spec, pool, SignerConfig{Org: "org1"})
			const goroutines, each = 20, 10
			var wg sync.WaitGroup
			errs := make(chan error, goroutines*each)
			hashes := make(chan common.Hash, goroutines*each)
			for g := range goroutines {
				wg.Go(func() {
					for i := range each {
						h, err := s.Send(context.Background(), "payments", nil, transfer(int64(g*each+i+1)))
						if err != nil {
							errs <- err
							return
						}
						hashes <- h
					}
				})
			}
			wg.Wait()
			close(errs)
			close(hashes)
			for err := range errs {
				t.Fatal(err)
			}
			seen := make(map[common.Hash]bool)
			for h := range hashes {
				seen[h] = true
			}
			if len(seen) != goroutines*each {
				t.Fatalf("%d distinct hashes, want %d", len(seen), goroutines*each)
			}
			wantNonces(t, pool, addrOf(t, ks, "payments"), 0, goroutines*each)
			if n := pool.attempts(); n != goroutines*each {
				t.Fatalf("%d submissions for %d sends", n, goroutines*each)
			}
		})
	}
}

// TestSendResyncsAfterNonceTooLow: the key's account has sent 7
// transactions elsewhere and the pool's view lags at 0: the first
// submission is refused as nonce too low, the signer resyncs from the
// pool and the one retry goes through at 7; the next send takes 8. A
// pool that refuses the retry too gets exactly one retry.
func TestSendResyncsAfterNonceTooLow(t *testing.T) {
	spec := testSpec(t)
	ks := memStore(t, "payments")
	addr := addrOf(t, ks, "payments")
	pool := newFakePool(spec)
	pool.mu.state[addr] = 7
	zero := uint64(0)
	pool.mu.stale = &zero
	s := NewSigner(ks, spec, pool, SignerConfig{})
	if _, err := s.Send(context.Background(), "payments", nil, transfer(1)); err != nil {
		t.Fatal(err)
	}
	if n := pool.attempts(); n != 2 {
		t.Fatalf("%d submissions, want 2 (one refused, one retry)", n)
	}
	if _, err := s.Send(context.Background(), "payments", nil, transfer(2)); err != nil {
		t.Fatal(err)
	}
	wantNonces(t, pool, addr, 7, 2)

	pool.mu.Lock()
	pool.mu.reject = func(tx *types.Transaction) error {
		return fmt.Errorf("%w: next nonce 100, tx nonce %d", txpool.ErrNonceTooLow, tx.Nonce())
	}
	pool.mu.Unlock()
	before := pool.attempts()
	if _, err := s.Send(context.Background(), "payments", nil, transfer(3)); !errors.Is(err, txpool.ErrNonceTooLow) {
		t.Fatalf("send refused twice: %v", err)
	}
	if n := pool.attempts() - before; n != 2 {
		t.Fatalf("%d submissions, want 2 (one retry only)", n)
	}
}

// TestRefusedSendLeavesNoNonceGap: a send the pool refuses (no funds), a
// failed estimate and a send whose context ends while it waits for the
// key take no nonce: the next send gets the nonce they would have had.
func TestRefusedSendLeavesNoNonceGap(t *testing.T) {
	spec := testSpec(t)
	ks := memStore(t, "payments")
	addr := addrOf(t, ks, "payments")
	pool := newFakePool(spec)
	zero := uint64(0)
	pool.mu.stale = &zero // the signer's own next nonce decides
	s := NewSigner(ks, spec, pool, SignerConfig{})
	ctx := context.Background()
	if _, err := s.Send(ctx, "payments", nil, transfer(1)); err != nil {
		t.Fatal(err)
	}
	pool.mu.Lock()
	pool.mu.reject = func(*types.Transaction) error { return txpool.ErrInsufficientFunds }
	pool.mu.Unlock()
	if _, err := s.Send(ctx, "payments", nil, transfer(2)); !errors.Is(err, txpool.ErrInsufficientFunds) {
		t.Fatalf("refused send: %v", err)
	}
	pool.mu.Lock()
	pool.mu.reject = nil
	pool.mu.Unlock()
	if _, err := s.Send(ctx, "payments", nil, TxRequest{To: &to, Data: []byte{0xfe}}); err == nil {
		t.Fatal("a send whose estimate fails went through")
	}
	// A send waiting for the key when its context ends.
	sl := s.slot(addr)
	sl.lock <- struct{}{}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() {
		_, err := s.Send(cctx, "payments", nil, transfer(3))
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled send: %v", err)
	}
	<-sl.lock
	if _, err := s.Send(ctx, "payments", nil, transfer(4)); err != nil {
		t.Fatal(err)
	}
	wantNonces(t, pool, addr, 0, 2)
}

// TestAlreadyKnownIsSuccess: a pool that holds the very transaction
// (a signer that lost its next nonce, a lagging pool) answers "already
// known": the send succeeds with its hash, and nothing is sent twice.
func TestAlreadyKnownIsSuccess(t *testing.T) {
	spec := testSpec(t)
	ks := memStore(t, "payments")
	pool := newFakePool(spec)
	zero := uint64(0)
	pool.mu.stale = &zero
	first, err := NewSigner(ks, spec, pool, SignerConfig{}).Send(context.Background(), "payments", nil, transfer(1))
	if err != nil {
		t.Fatal(err)
	}
	again := NewSigner(ks, spec, pool, SignerConfig{})
	h, err := again.Send(context.Background(), "payments", nil, transfer(1))
	if err != nil || h != first {
		t.Fatalf("the same send again: %s, %v; want %s", h, err, first)
	}
	if _, err := again.Send(context.Background(), "payments", nil, transfer(2)); err != nil {
		t.Fatal(err)
	}
	wantNonces(t, pool, addrOf(t, ks, "payments"), 0, 2)
}

// TestSendChecksTheCaller: a caller may use a key among its Keys when it
// acts for the node's organization; one without the key, of another
// organization or anonymous is refused before anything is estimated or
// sent, and learns nothing of whether the key exists.
func TestSendChecksTheCaller(t *testing.T) {
	spec := testSpec(t)
	ks := memStore(t, "payments", "treasury")
	pool := newFakePool(spec)
	s := NewSigner(ks, spec, pool, SignerConfig{Org: "org1"})
	app := &auth.Identity{Kind: auth.KindToken, Subject: "app", Org: "org1", Roles: system.RoleWrite, Keys: []string{"payments", "ghost"}}
	other := &auth.Identity{Kind: auth.KindToken, Subject: "app", Org: "org2", Roles: system.RoleWrite, Keys: []string{"payments"}}
	anon := &auth.Identity{Kind: auth.KindAnonymous, Roles: system.RoleWrite}
	for name, c := range map[string]struct {
		id     string
		caller *auth.Identity
		want   error
	}{
		"allowed":           {"payments", app, nil},
		"dev (no identity)": {"treasury", nil, nil},
		"key not its":       {"treasury", app, ErrDenied},
		"unknown, not its":  {"nothing", app, ErrDenied},
		"another org":       {"payments", other, ErrDenied},
		"anonymous":         {"payments", anon, ErrDenied},
		"its, not held":     {"ghost", app, ErrUnknownKey},
	} {
		before := pool.attempts()
		_, err := s.Send(context.Background(), c.id, c.caller, TxRequest{To: &to})
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: Send = %v, want %v", name, err, c.want)
		}
		if sent := pool.attempts() - before; (c.want == nil) != (sent == 1) {
			t.Errorf("%s: %d submissions", name, sent)
		}
	}
	pool.mu.Lock()
	estimates := len(pool.mu.estimates)
	pool.mu.Unlock()
	if estimates != 2 {
		t.Fatalf("%d estimates, want 2 (the allowed sends only)", estimates)
	}
}

// TestSendBoundsInFlightPerKey: with MaxInFlight sends of a key in
// progress, one more is refused with ErrBusy at once; another key is not
// affected; once they finish the key sends again.
func TestSendBoundsInFlightPerKey(t *testing.T) {
	spec := testSpec(t)
	ks := memStore(t, "payments", "treasury")
	pool := newFakePool(spec)
	block, entered := make(chan struct{}), make(chan struct{}, 4)
	pool.mu.block, pool.mu.entered = block, entered
	s := NewSigner(ks, spec, pool, SignerConfig{MaxInFlight: 2})
	done := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := s.Send(context.Background(), "payments", nil, transfer(int64(i+1)))
			done <- err
		}()
	}
	<-entered // one send is in the pool, the other holds a token
	sl := s.slot(addrOf(t, ks, "payments"))
	for deadline := time.Now().Add(10 * time.Second); len(sl.inflight) < 2; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatal("the second send never started")
		}
	}
	// Bounded wait: a signer that queued instead would hang here.
	ctx3, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Send(ctx3, "payments", nil, transfer(3)); !errors.Is(err, ErrBusy) {
		t.Fatalf("third send: %v, want ErrBusy", err)
	}
	go func() { <-entered }() // treasury's send passes through the block
	tdone := make(chan error, 1)
	go func() {
		_, err := s.Send(context.Background(), "treasury", nil, transfer(1))
		tdone <- err
	}()
	close(block)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-tdone; err != nil {
		t.Fatal(err)
	}
	pool.mu.Lock()
	pool.mu.block = nil
	pool.mu.Unlock()
	if _, err := s.Send(context.Background(), "payments", nil, transfer(4)); err != nil {
		t.Fatal(err)
	}
	wantNonces(t, pool, addrOf(t, ks, "payments"), 0, 3)
}

// TestSendFillsTheTransaction: fees, chain id, type and gas as the chain
// wants them: an EIP-1559 transaction by default, a protected legacy one
// with GasPrice or before London; gas estimated from the key's address
// when 0; contract creation with To nil.
func TestSendFillsTheTransaction(t *testing.T) {
	spec := testSpec(t)
	ks := memStore(t, "payments")
	addr := addrOf(t, ks, "payments")
	pool := newFakePool(spec)
	s := NewSigner(ks, spec, pool, SignerConfig{})
	ctx := context.Background()
	if _, err := s.Send(ctx, "payments", nil, TxRequest{To: &to, Data: []byte{1, 2}, Value: big.NewInt(5)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, "payments", nil, TxRequest{Data: []byte{0x60}, Gas: 100000, GasPrice: big.NewInt(7)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, "payments", nil, TxRequest{To: &to, Value: big.NewInt(-1), Gas: 21000}); err == nil {
		t.Fatal("a negative value was sent")
	}
	pool.mu.Lock()
	txs, estimates := pool.mu.admitted[addr], pool.mu.estimates
	pool.mu.Unlock()
	if len(estimates) != 1 || estimates[0].From != addr || *estimates[0].To != to || estimates[0].Value.Int64() != 5 {
		t.Fatalf("estimates %+v", estimates)
	}
	dyn, legacy := txs[0], txs[1]
	baseFee, tip := spec.BaseFeeWei(), spec.MinGasPriceWei()
	if dyn.Type() != types.DynamicFeeTxType || dyn.ChainId().Cmp(spec.Config.ChainID) != 0 || dyn.Gas() != 21032 ||
		dyn.GasTipCap().Cmp(tip) != 0 || dyn.GasFeeCap().Cmp(new(big.Int).Add(new(big.Int).Mul(baseFee, big.NewInt(2)), tip)) != 0 ||
		*dyn.To() != to || dyn.Value().Int64() != 5 {
		t.Fatalf("default transaction: type %d chain %v gas %d tip %v cap %v", dyn.Type(), dyn.ChainId(), dyn.Gas(), dyn.GasTipCap(), dyn.GasFeeCap())
	}
	if legacy.Type() != types.LegacyTxType || !legacy.Protected() || legacy.GasPrice().Int64() != 7 || legacy.To() != nil || legacy.Gas() != 100000 {
		t.Fatalf("legacy transaction: type %d protected %v price %v to %v", legacy.Type(), legacy.Protected(), legacy.GasPrice(), legacy.To())
	}

	// A chain whose London comes later gets legacy transactions.
	pre := testSpec(t)
	cfg := *pre.Config
	cfg.LondonBlock = big.NewInt(100)
	pre.Config = &cfg
	prePool := newFakePool(pre)
	if _, err := NewSigner(ks, pre, prePool, SignerConfig{}).Send(ctx, "payments", nil, transfer(1)); err != nil {
		t.Fatal(err)
	}
	prePool.mu.Lock()
	tx := prePool.mu.admitted[addr][0]
	prePool.mu.Unlock()
	if tx.Type() != types.LegacyTxType || !tx.Protected() || tx.GasPrice().Cmp(new(big.Int).Add(baseFee, tip)) != 0 {
		t.Fatalf("before London: type %d protected %v price %v", tx.Type(), tx.Protected(), tx.GasPrice())
	}
}

// TestSendUsesTheCurrentVersion: after a rotation, sends sign with the
// new key, from nonce 0 of its account; the retired key sends only
// through SendRetired, for an admin (or the CLI: no identity).
func TestSendUsesTheCurrentVersion(t *testing.T) {
	spec := testSpec(t)
	ks := memStore(t, "payments")
	ks.password = []byte("x")
	ks.dir = t.TempDir()
	old := addrOf(t, ks, "payments")
	pool := newFakePool(spec)
	s := NewSigner(ks, spec, pool, SignerConfig{})
	if _, err := s.Send(context.Background(), "payments", nil, transfer(1)); err != nil {
		t.Fatal(err)
	}
	v2, err := ks.Rotate("payments")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(context.Background(), "payments", nil, transfer(2)); err != nil {
		t.Fatal(err)
	}
	wantNonces(t, pool, old, 0, 1)
	wantNonces(t, pool, v2.Address, 0, 1)

	admin := &auth.Identity{Kind: auth.KindToken, Subject: "ops", Roles: system.RoleAdmin | system.RoleWrite, Keys: []string{"payments"}}
	writer := &auth.Identity{Kind: auth.KindToken, Subject: "app", Roles: system.RoleWrite, Keys: []string{"payments"}}
	ctx := context.Background()
	for name, c := range map[string]struct {
		version int
		caller  *auth.Identity
		ok      bool
	}{
		"no identity":  {1, nil, true},
		"admin":        {1, admin, true},
		"not an admin": {1, writer, false},
		"current":      {2, nil, false},
		"no such":      {3, nil, false},
	} {
		before := pool.attempts()
		_, err := s.SendRetired(ctx, "payments", c.version, c.caller, transfer(3))
		if (err == nil) != c.ok || (pool.attempts()-before == 1) != c.ok {
			t.Errorf("%s: SendRetired = %v", name, err)
		}
	}
	if _, err := s.SendRetired(ctx, "payments", 1, writer, transfer(3)); !errors.Is(err, ErrDenied) {
		t.Fatalf("retired key without admin: %v", err)
	}
	if _, err := s.SendRetired(ctx, "payments", 3, nil, transfer(3)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("retired key without such version: %v", err)
	}
	wantNonces(t, pool, old, 0, 3)
	wantNonces(t, pool, v2.Address, 0, 1)
}

// BenchmarkSend is one send with a node-held key: nonce, signing and
// submission to a pool that only records it (no sender recovery).
func BenchmarkSend(b *testing.B) {
	spec := testSpec(b)
	ks := memStore(b, "payments")
	pool := newFakePool(spec)
	pool.recover = false
	s := NewSigner(ks, spec, pool, SignerConfig{})
	ctx := context.Background()
	req := transfer(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Send(ctx, "payments", nil, req); err != nil {
			b.Fatal(err)
		}
	}
}
