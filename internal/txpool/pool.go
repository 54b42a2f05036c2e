// Package txpool admits transactions and keeps them until a block includes
// them. Admission is two-stage: stateless checks and sender recovery run in
// the caller's goroutine, without the pool lock (so concurrent submitters
// recover signatures in parallel); the stateful checks (nonce, balance,
// replacement, bounds) run under the lock against the state of the head.
//
// The pool is bounded in count and in bytes (encoded transaction size), in
// all and per account, with a tighter byte bound for an account's queued
// (gapped) transactions; a queued transaction leaves after QueuedLifetime.
// When the pool is full, a sender within its fair share (the pool divided
// by the senders in it) still gets in: the sender furthest above its share
// loses transactions from the tail of its nonce sequence, so that what
// remains of its pending run has no gap. A sender above its share is
// refused. See bounds.go.
package txpool

import (
	"container/heap"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/event"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"
)

// Errors of admission. Messages follow go-ethereum's, which Ethereum
// clients and tools match on; details are appended after a colon.
var (
	ErrAlreadyKnown       = txpool.ErrAlreadyKnown
	ErrReplaceUnderpriced = txpool.ErrReplaceUnderpriced
	ErrAccountLimit       = txpool.ErrAccountLimitExceeded
	ErrPoolFull           = errors.New("txpool is full")
	ErrOversized          = txpool.ErrOversizedData
	ErrUnderpriced        = txpool.ErrUnderpriced
	ErrTxType             = errors.New("transaction type not supported")
	ErrChainID            = errors.New("invalid chain id")
	ErrUnprotected        = errors.New("only replay-protected (EIP-155) transactions allowed")
	ErrInvalidSender      = txpool.ErrInvalidSender
	ErrGasLimit           = errors.New("exceeds transaction gas limit")
	ErrNonceTooLow        = core.ErrNonceTooLow
	ErrNonceTooHigh       = errors.New("nonce too far in the future")
	ErrInsufficientFunds  = core.ErrInsufficientFunds
	ErrIntrinsicGas       = core.ErrIntrinsicGas
	ErrFeeCapTooLow       = core.ErrFeeCapTooLow
	ErrTipAboveFeeCap     = core.ErrTipAboveFeeCap
	// ErrStateUnavailable: the pool could not read the head's state to
	// check the transaction; asked again, it reads the current head.
	ErrStateUnavailable = errors.New("head state unavailable, retry")
)

// Config bounds the pool. Zero fields take their defaults. Bytes are
// encoded transaction sizes (tx.Size()); a decoded transaction occupies
// about as much memory again, so the default GlobalBytes keeps the pool
// within about half a gigabyte.
type Config struct {
	ChainID      *big.Int
	MaxTxBytes   uint64   // encoded size of one transaction
	TxGasLimit   uint64   // gas of one transaction
	BaseFee      *big.Int // the chain's fixed base fee
	MinTip       *big.Int // lowest effective tip admitted
	AccountSlots int      // transactions per account (pending + queued); default 4096
	GlobalSlots  int      // transactions in the pool; default 100,000
	GlobalBytes  uint64   // bytes in the pool; default 256 MiB
	AccountBytes uint64   // bytes per account (pending + queued); default 32 MiB
	// AccountQueuedBytes bounds the bytes of an account's queued (gapped)
	// transactions, which cannot execute until the gap is filled; default
	// 4 MiB.
	AccountQueuedBytes uint64
	// QueuedLifetime is how long a transaction may stay queued before it
	// is dropped (pending ones never expire); default 1 hour.
	QueuedLifetime time.Duration
	MaxNonceGap    uint64 // how far past the next nonce a transaction may be; default 1024
	PriceBump      uint64 // % a replacement must raise both fee caps; default 10
	// Now is the clock of QueuedLifetime; nil means time.Now.
	Now func() time.Time
	// Permit, if set, decides whether from may send tx on the head state
	// (roles, freezes); its error is the rejection.
	Permit func(st StateReader, from common.Address, tx *types.Transaction) error
}

// Defaults of the bounds that Config leaves zero.
const (
	DefaultAccountSlots       = 4096
	DefaultGlobalSlots        = 100_000
	DefaultGlobalBytes        = 256 << 20
	DefaultAccountBytes       = 32 << 20
	DefaultAccountQueuedBytes = 4 << 20
	DefaultQueuedLifetime     = time.Hour
	DefaultMaxNonceGap        = 1024
)

func (c *Config) ensureDefaults() {
	if c.AccountSlots == 0 {
		c.AccountSlots = DefaultAccountSlots
	}
	if c.GlobalSlots == 0 {
		c.GlobalSlots = DefaultGlobalSlots
	}
	if c.GlobalBytes == 0 {
		c.GlobalBytes = DefaultGlobalBytes
	}
	if c.AccountBytes == 0 {
		c.AccountBytes = DefaultAccountBytes
	}
	if c.AccountQueuedBytes == 0 {
		c.AccountQueuedBytes = DefaultAccountQueuedBytes
	}
	if c.QueuedLifetime == 0 {
		c.QueuedLifetime = DefaultQueuedLifetime
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxNonceGap == 0 {
		c.MaxNonceGap = DefaultMaxNonceGap
	}
	if c.PriceBump == 0 {
		c.PriceBump = 10
	}
	if c.MinTip == nil {
		c.MinTip = new(big.Int)
	}
	if c.BaseFee == nil {
		c.BaseFee = new(big.Int)
	}
}

// StateReader is the part of the head state the pool reads.
type StateReader interface {
	GetNonce(common.Address) uint64
	GetBalance(common.Address) *uint256.Int
	GetState(common.Address, common.Hash) common.Hash
}

// NewTxsEvent is sent on the feed when transactions become pending
// (executable in nonce order).
type NewTxsEvent struct{ Txs []*types.Transaction }

type entry struct {
	tx   *types.Transaction
	from common.Address
	seq  uint64 // arrival order, for fairness between accounts
	cost *uint256.Int
	size uint64 // encoded size, counted against the byte bounds

	// A queued entry is linked in the pool's expiry list (prev, next not
	// nil), which is in the order entries became queued; queuedAt is when.
	queuedAt   time.Time
	prev, next *entry
}

// An account is in the pool while it has transactions there. Every one of
// them has a nonce at least nonce; those below pendingTo are pending (a
// run without gaps), the others queued.
type account struct {
	addr        common.Address
	txs         map[uint64]*entry
	nonce       uint64 // next nonce by state
	pendingTo   uint64 // first nonce after the run of consecutive txs from nonce
	top         uint64 // no transaction has a higher nonce (the tail is at or below it)
	bytes       uint64 // encoded size of txs
	queuedBytes uint64 // of those at pendingTo or later
	cost        uint256.Int
	load        float64 // the larger of its parts of GlobalSlots and GlobalBytes
	index       int     // in Pool.mu.loads
}

// Limits are the bounds of one transaction that governance may change
// while the chain runs.
type Limits struct {
	MaxTxBytes uint64
	TxGasLimit uint64
	MinTip     *big.Int
}

// Pool is goroutine-safe.
type Pool struct {
	cfg    Config
	signer types.Signer
	feed   event.Feed
	limits atomic.Pointer[Limits]
	// 1/GlobalSlots and 1/GlobalBytes, to weigh an account's load
	perSlot, perByte float64

	mu struct {
		sync.Mutex
		state       StateReader
		accounts    map[common.Address]*account
		all         map[common.Hash]*entry
		seq         uint64
		pending     int    // transactions in the accounts' pending runs
		bytes       uint64 // encoded size of all
		queuedBytes uint64 // of the queued ones
		loads       loadHeap
		queued      entry // sentinel of the expiry list: next is the oldest queued
		evicted     uint64
		expired     uint64
	}
}

// New returns an empty pool reading nonces and balances from st.
func New(cfg Config, signer types.Signer, st StateReader) *Pool {
	cfg.ensureDefaults()
	p := &Pool{cfg: cfg, signer: signer, perSlot: 1 / float64(cfg.GlobalSlots), perByte: 1 / float64(cfg.GlobalBytes)}
	p.limits.Store(&Limits{MaxTxBytes: cfg.MaxTxBytes, TxGasLimit: cfg.TxGasLimit, MinTip: cfg.MinTip})
	p.mu.state = st
	p.mu.accounts = make(map[common.Address]*account)
	p.mu.all = make(map[common.Hash]*entry)
	p.mu.queued.next, p.mu.queued.prev = &p.mu.queued, &p.mu.queued
	return p
}

// SetLimits replaces the per-transaction bounds (a governance decision);
// transactions admitted before stay.
func (p *Pool) SetLimits(l Limits) {
	if l.MinTip == nil {
		l.MinTip = new(big.Int)
	}
	p.limits.Store(&l)
}

// SubscribeNewTxs delivers NewTxsEvent for every transaction that becomes
// pending. The subscriber must keep reading.
func (p *Pool) SubscribeNewTxs(ch chan<- NewTxsEvent) event.Subscription { return p.feed.Subscribe(ch) }

// ValidateBasic runs every check that needs no state and recovers the
// sender. It is safe to call from many goroutines at once.
func (p *Pool) ValidateBasic(tx *types.Transaction) (common.Address, error) {
	lim := p.limits.Load()
	if size := tx.Size(); size > lim.MaxTxBytes {
		return common.Address{}, fmt.Errorf("%w: %d bytes, limit %d", ErrOversized, size, lim.MaxTxBytes)
	}
	switch tx.Type() {
	case types.LegacyTxType, types.AccessListTxType, types.DynamicFeeTxType, types.SetCodeTxType:
	default:
		return common.Address{}, fmt.Errorf("%w: type %d (blob transactions are not accepted)", ErrTxType, tx.Type())
	}
	if tx.Type() == types.LegacyTxType && !tx.Protected() {
		return common.Address{}, ErrUnprotected
	}
	if tx.ChainId().Cmp(p.cfg.ChainID) != 0 {
		return common.Address{}, fmt.Errorf("%w: transaction for chain %v, this chain is %v", ErrChainID, tx.ChainId(), p.cfg.ChainID)
	}
	if tx.Gas() > lim.TxGasLimit {
		return common.Address{}, fmt.Errorf("%w: %d > %d", ErrGasLimit, tx.Gas(), lim.TxGasLimit)
	}
	if tx.GasFeeCap().BitLen() > 256 || tx.GasTipCap().BitLen() > 256 || tx.Value().Sign() < 0 {
		return common.Address{}, errors.New("fee or value out of range")
	}
	if tx.GasFeeCapIntCmp(tx.GasTipCap()) < 0 {
		return common.Address{}, ErrTipAboveFeeCap
	}
	if tx.GasFeeCapIntCmp(p.cfg.BaseFee) < 0 {
		return common.Address{}, fmt.Errorf("%w: max fee %v, base fee %v", ErrFeeCapTooLow, tx.GasFeeCap(), p.cfg.BaseFee)
	}
	if tip := tx.EffectiveGasTipValue(p.cfg.BaseFee); tip.Cmp(lim.MinTip) < 0 {
		return common.Address{}, fmt.Errorf("%w: tip %v, minimum %v", ErrUnderpriced, tip, lim.MinTip)
	}
	if tx.Type() == types.SetCodeTxType && len(tx.SetCodeAuthorizations()) == 0 {
		return common.Address{}, core.ErrEmptyAuthList
	}
	from, err := types.Sender(p.signer, tx)
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %v", ErrInvalidSender, err)
	}
	value, _ := uint256.FromBig(tx.Value())
	rules := params.Rules{IsHomestead: true, IsIstanbul: true, IsBerlin: true, IsShanghai: true, IsPrague: true}
	gas, err := core.IntrinsicGas(tx.Data(), tx.AccessList(), tx.SetCodeAuthorizations(), from, tx.To(), value, rules)
	if err != nil {
		return common.Address{}, err
	}
	if tx.Gas() < gas {
		return common.Address{}, fmt.Errorf("%w: gas %d, minimum needed %d", ErrIntrinsicGas, tx.Gas(), gas)
	}
	if floor, err := core.FloorDataGas(rules, from, tx.To(), value, tx.Data(), tx.AccessList()); err == nil && tx.Gas() < floor {
		return common.Address{}, fmt.Errorf("%w: gas %d, floor %d", core.ErrFloorDataGas, tx.Gas(), floor)
	}
	return from, nil
}

// Add admits one transaction: stateless checks, then stateful checks under
// the lock. It returns nil if the transaction is now in the pool.
func (p *Pool) Add(tx *types.Transaction) error {
	from, err := p.ValidateBasic(tx)
	if err != nil {
		return err
	}
	p.mu.Lock()
	now := clock{read: p.cfg.Now}
	p.expireLocked(&now)
	promoted, err := p.addLocked(tx, from, &now)
	p.mu.Unlock()
	if len(promoted) > 0 {
		p.feed.Send(NewTxsEvent{Txs: promoted})
	}
	return err
}

// AddSigned is Add for a transaction this node has just signed itself
// with the key of from (a private transaction's marker): every check of
// Add, stateless and stateful, runs as there, but the sender is taken as
// from instead of being recovered from the signature, and is kept in the
// transaction as a recovered sender is (block building and verification
// read it from there). The caller vouches for from; a transaction signed
// anywhere else goes through Add.
func (p *Pool) AddSigned(tx *types.Transaction, from common.Address) error {
	types.Sender(signedBy{Signer: p.signer, from: from}, tx) // caches from in tx, unless it holds a sender already
	return p.Add(tx)
}

// signedBy is a signer whose sender is known: a sender it gives is cached
// in the transaction as one the wrapped signer recovered (go-ethereum's
// types.Sender keeps it for every signer that the cached one's Equal
// accepts, and signedBy's Equal is the wrapped signer's).
type signedBy struct {
	types.Signer
	from common.Address
}

func (s signedBy) Sender(*types.Transaction) (common.Address, error) { return s.from, nil }

// AddBatch admits transactions whose senders the caller has already
// recovered with ValidateBasic; errs[i] is the outcome of txs[i].
func (p *Pool) AddBatch(txs []*types.Transaction, froms []common.Address) []error {
	errs := make([]error, len(txs))
	var promoted []*types.Transaction
	p.mu.Lock()
	now := clock{read: p.cfg.Now}
	p.expireLocked(&now)
	for i, tx := range txs {
		var pr []*types.Transaction
		pr, errs[i] = p.addLocked(tx, froms[i], &now)
		promoted = append(promoted, pr...)
	}
	p.mu.Unlock()
	if len(promoted) > 0 {
		p.feed.Send(NewTxsEvent{Txs: promoted})
	}
	return errs
}

// stateErrLocked reports a failed read of the pool's head state.
// go-ethereum's StateDB answers a failed read with a zero value and
// records the error: a nonce, permission or balance read is only what the
// head holds if nothing failed.
func (p *Pool) stateErrLocked() error {
	if st, ok := p.mu.state.(interface{ Error() error }); ok && st.Error() != nil {
		return fmt.Errorf("%w: %v", ErrStateUnavailable, st.Error())
	}
	return nil
}

func (p *Pool) addLocked(tx *types.Transaction, from common.Address, now *clock) ([]*types.Transaction, error) {
	hash := tx.Hash()
	if _, ok := p.mu.all[hash]; ok {
		return nil, ErrAlreadyKnown
	}
	acct := p.mu.accounts[from]
	fresh := acct == nil
	if fresh {
		n := p.mu.state.GetNonce(from)
		if err := p.stateErrLocked(); err != nil {
			return nil, err
		}
		acct = &account{addr: from, txs: make(map[uint64]*entry), nonce: n, pendingTo: n, index: -1}
	}
	nonce := tx.Nonce()
	if nonce < acct.nonce {
		return nil, fmt.Errorf("%w: next nonce %d, tx nonce %d", ErrNonceTooLow, acct.nonce, nonce)
	}
	// A gap may be at most MaxNonceGap past the sender's next executable
	// nonce; a long run without gaps is fine (AccountSlots bounds it).
	if nonce > acct.pendingTo+p.cfg.MaxNonceGap {
		return nil, fmt.Errorf("%w: next nonce %d, tx nonce %d, at most %d ahead", ErrNonceTooHigh, acct.pendingTo, nonce, p.cfg.MaxNonceGap)
	}
	if p.cfg.Permit != nil {
		if err := p.cfg.Permit(p.mu.state, from, tx); err != nil {
			if serr := p.stateErrLocked(); serr != nil {
				return nil, serr
			}
			return nil, err
		}
	}
	cost, overflow := uint256.FromBig(tx.Cost())
	if overflow {
		return nil, fmt.Errorf("%w: cost overflows", ErrInsufficientFunds)
	}
	size := tx.Size()
	old := acct.txs[nonce]
	var oldSize uint64
	holdTxs := len(acct.txs)
	if old != nil {
		if !p.bumped(old.tx, tx) {
			return nil, fmt.Errorf("%w: raise max fee and tip by at least %d%%", ErrReplaceUnderpriced, p.cfg.PriceBump)
		}
		oldSize = old.size
	} else {
		if len(acct.txs) >= p.cfg.AccountSlots {
			return nil, fmt.Errorf("%w: %d transactions of %s wait already", ErrAccountLimit, len(acct.txs), from)
		}
		holdTxs++
	}
	// What the sender and the pool would hold with tx.
	holdBytes := acct.bytes - oldSize + size
	if holdBytes > p.cfg.AccountBytes {
		return nil, fmt.Errorf("%w: sender %s would hold %d bytes of transactions, limit %d", ErrAccountLimit, from, holdBytes, p.cfg.AccountBytes)
	}
	if nonce > acct.pendingTo {
		// tx (and the one it replaces) waits queued behind a gap.
		if q := acct.queuedBytes - oldSize + size; q > p.cfg.AccountQueuedBytes {
			return nil, fmt.Errorf("%w: queued transactions of %s would hold %d bytes, limit %d (nonce %d waits for nonce %d)",
				ErrAccountLimit, from, q, p.cfg.AccountQueuedBytes, nonce, acct.pendingTo)
		}
	}
	poolTxs := len(p.mu.all) + holdTxs - len(acct.txs)
	poolBytes := p.mu.bytes - oldSize + size
	full := poolTxs > p.cfg.GlobalSlots || poolBytes > p.cfg.GlobalBytes
	var share fairShare
	if full {
		share = p.shareLocked(fresh)
		if holdTxs > share.txs || holdBytes > share.bytes {
			return nil, fmt.Errorf("%w: sender %s would hold %d transactions, %d bytes, over its share of %d transactions, %d bytes (the pool's %d transactions, %d bytes shared by %d senders)",
				ErrPoolFull, from, holdTxs, holdBytes, share.txs, share.bytes, p.cfg.GlobalSlots, p.cfg.GlobalBytes, share.senders)
		}
	}
	// The sender must afford this transaction after every earlier one of
	// its own that waits. Appended past the tail (the usual case), that is
	// all of them.
	balance := p.mu.state.GetBalance(from)
	if err := p.stateErrLocked(); err != nil {
		return nil, err
	}
	need := new(uint256.Int)
	if old == nil && (len(acct.txs) == 0 || nonce > acct.top) {
		need.Add(&acct.cost, cost)
	} else {
		need.Set(cost)
		for n := acct.nonce; n < nonce; n++ {
			if e := acct.txs[n]; e != nil {
				need.Add(need, e.cost)
			}
		}
	}
	if balance.Cmp(need) < 0 {
		return nil, fmt.Errorf("%w: balance %v, cost %v (with %d earlier transactions)", ErrInsufficientFunds, balance, need, nonce-acct.nonce)
	}
	if full {
		if err := p.makeRoomLocked(acct, share, poolTxs, poolBytes); err != nil {
			return nil, err
		}
	}
	if old != nil {
		wasPending := nonce < acct.pendingTo
		p.dropLocked(acct, old)
		if wasPending {
			p.mu.pending--
		}
	}
	p.mu.seq++
	e := &entry{tx: tx, from: from, seq: p.mu.seq, cost: cost, size: size}
	acct.txs[nonce] = e
	acct.top = max(acct.top, nonce)
	acct.bytes += size
	acct.cost.Add(&acct.cost, cost)
	p.mu.all[hash] = e
	p.mu.bytes += size
	if fresh {
		p.mu.accounts[from] = acct
	}
	var promoted []*types.Transaction
	switch {
	case nonce < acct.pendingTo: // a replacement in the pending run
		p.mu.pending++
		promoted = []*types.Transaction{tx}
	case nonce == acct.pendingTo:
		acct.pendingTo++
		p.mu.pending++
		promoted = append([]*types.Transaction{tx}, p.promoteLocked(acct)...)
	default:
		p.queueLocked(acct, e, now.get())
	}
	p.reloadLocked(acct)
	return promoted, nil
}

func (p *Pool) bumped(old, tx *types.Transaction) bool {
	pct := big.NewInt(int64(100 + p.cfg.PriceBump))
	threshold := func(v *big.Int) *big.Int {
		t := new(big.Int).Mul(v, pct)
		return t.Div(t, big.NewInt(100))
	}
	feeOK := tx.GasFeeCapCmp(old) > 0 && tx.GasFeeCap().Cmp(threshold(old.GasFeeCap())) >= 0
	tipOK := tx.GasTipCap().Cmp(threshold(old.GasTipCap())) >= 0 && (old.GasTipCap().Sign() == 0 || tx.GasTipCapCmp(old) > 0)
	if old.GasFeeCap().Sign() == 0 {
		feeOK = tx.GasFeeCap().Sign() > 0
	}
	return feeOK && tipOK
}

// promoteLocked extends the pending run of acct and returns what became pending.
func (p *Pool) promoteLocked(acct *account) []*types.Transaction {
	var out []*types.Transaction
	for {
		e := acct.txs[acct.pendingTo]
		if e == nil {
			return out
		}
		p.unqueueLocked(acct, e)
		out = append(out, e.tx)
		acct.pendingTo++
		p.mu.pending++
	}
}

// Reset moves the pool to a new head state: transactions whose nonce the
// state has passed are dropped, pending runs recomputed. Drop lists
// transactions a block builder found unexecutable.
func (p *Pool) Reset(st StateReader, drop []*types.Transaction) {
	var promoted []*types.Transaction
	p.mu.Lock()
	now := clock{read: p.cfg.Now}
	p.expireLocked(&now)
	p.mu.state = st
	for _, tx := range drop {
		if e := p.mu.all[tx.Hash()]; e != nil {
			p.removeFromLocked(e.from, e.tx.Nonce())
		}
	}
	for addr, acct := range p.mu.accounts {
		n := st.GetNonce(addr)
		if n < acct.nonce {
			// The head went back (a final chain never does): the run
			// from n has a hole where included transactions were, so
			// all of acct's wait queued again.
			for k := acct.nonce; k < acct.pendingTo; k++ {
				p.queueLocked(acct, acct.txs[k], now.get())
			}
			p.mu.pending -= int(acct.pendingTo - acct.nonce)
			acct.pendingTo = n
		}
		for old := acct.nonce; old < n && old <= acct.top; old++ {
			if e := acct.txs[old]; e != nil {
				if old < acct.pendingTo {
					p.mu.pending--
				}
				p.dropLocked(acct, e)
			}
		}
		if acct.pendingTo < n {
			acct.pendingTo = n
		}
		acct.nonce = n
		if len(acct.txs) == 0 {
			delete(p.mu.accounts, addr)
			continue
		}
		promoted = append(promoted, p.promoteLocked(acct)...)
	}
	p.rebuildLoadsLocked()
	p.mu.Unlock()
	if len(promoted) > 0 {
		p.feed.Send(NewTxsEvent{Txs: promoted})
	}
}

// removeFromLocked drops the transaction of addr at nonce and every later
// one of addr's (they could not execute before it).
func (p *Pool) removeFromLocked(addr common.Address, nonce uint64) {
	acct := p.mu.accounts[addr]
	if acct == nil {
		return
	}
	for n, e := range acct.txs {
		if n >= nonce {
			if n < acct.pendingTo {
				p.mu.pending--
			}
			p.dropLocked(acct, e)
		}
	}
	if acct.pendingTo > nonce {
		acct.pendingTo = max(nonce, acct.nonce)
	}
	p.reloadLocked(acct)
}

// Get returns a waiting transaction by hash, or nil.
func (p *Pool) Get(hash common.Hash) *types.Transaction {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.mu.all[hash]; e != nil {
		return e.tx
	}
	return nil
}

// Sender returns the recovered sender of a waiting transaction.
func (p *Pool) Sender(hash common.Hash) (common.Address, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.mu.all[hash]; e != nil {
		return e.from, true
	}
	return common.Address{}, false
}

// Nonce returns the next nonce of addr counting its pending transactions.
func (p *Pool) Nonce(addr common.Address) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if acct := p.mu.accounts[addr]; acct != nil {
		return acct.pendingTo
	}
	return p.mu.state.GetNonce(addr)
}

// Stats returns the number of pending (executable) and queued (waiting
// for a nonce gap to fill) transactions.
func (p *Pool) Stats() (pending, queued int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expireLocked(&clock{read: p.cfg.Now})
	return p.mu.pending, len(p.mu.all) - p.mu.pending
}

// Usage is what the pool holds, and what it has dropped to stay bounded.
type Usage struct {
	Pending, Queued           int    // transactions
	PendingBytes, QueuedBytes uint64 // their encoded size
	Senders                   int    // accounts with transactions in the pool
	// Evicted counts the transactions dropped since New to make room for
	// a sender within its share of a full pool.
	Evicted uint64
	// Expired counts the transactions dropped since New after waiting
	// queued for QueuedLifetime.
	Expired uint64
}

// Usage returns what the pool holds and the totals of what it dropped.
func (p *Pool) Usage() Usage {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expireLocked(&clock{read: p.cfg.Now})
	return Usage{
		Pending: p.mu.pending, Queued: len(p.mu.all) - p.mu.pending,
		PendingBytes: p.mu.bytes - p.mu.queuedBytes, QueuedBytes: p.mu.queuedBytes,
		Senders: len(p.mu.accounts), Evicted: p.mu.evicted, Expired: p.mu.expired,
	}
}

// Content returns the waiting transactions by sender and nonce, split into
// pending and queued.
func (p *Pool) Content() (pending, queued map[common.Address][]*types.Transaction) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expireLocked(&clock{read: p.cfg.Now})
	pending = make(map[common.Address][]*types.Transaction)
	queued = make(map[common.Address][]*types.Transaction)
	for addr, acct := range p.mu.accounts {
		nonces := make([]uint64, 0, len(acct.txs))
		for n := range acct.txs {
			nonces = append(nonces, n)
		}
		sort.Slice(nonces, func(i, j int) bool { return nonces[i] < nonces[j] })
		for _, n := range nonces {
			if n < acct.pendingTo {
				pending[addr] = append(pending[addr], acct.txs[n].tx)
			} else {
				queued[addr] = append(queued[addr], acct.txs[n].tx)
			}
		}
	}
	return pending, queued
}

// Pending returns a source of the pending transactions for building a
// block: accounts take turns by the arrival of their next transaction
// (first come, first served; the tip breaks no ties on a chain whose gas
// price is usually zero), each account in nonce order. limit bounds the
// number of transactions taken (0: no bound).
func (p *Pool) Pending(limit int) *Source {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expireLocked(&clock{read: p.cfg.Now})
	s := &Source{}
	for _, acct := range p.mu.accounts {
		if acct.pendingTo == acct.nonce {
			continue
		}
		run := make([]*entry, 0, acct.pendingTo-acct.nonce)
		for n := acct.nonce; n < acct.pendingTo; n++ {
			run = append(run, acct.txs[n])
		}
		s.heads = append(s.heads, run)
	}
	heap.Init(s)
	s.limit = limit
	return s
}

// Source iterates pending transactions; it implements execution.TxSource.
// It holds a snapshot and does not lock the pool.
type Source struct {
	heads [][]*entry // per account, the remaining run; heap by first entry's seq
	taken int
	limit int
}

func (s *Source) Len() int           { return len(s.heads) }
func (s *Source) Less(i, j int) bool { return s.heads[i][0].seq < s.heads[j][0].seq }
func (s *Source) Swap(i, j int)      { s.heads[i], s.heads[j] = s.heads[j], s.heads[i] }
func (s *Source) Push(x any)         { s.heads = append(s.heads, x.([]*entry)) }
func (s *Source) Pop() any {
	last := s.heads[len(s.heads)-1]
	s.heads = s.heads[:len(s.heads)-1]
	return last
}

// Peek returns the next transaction, or nil.
func (s *Source) Peek() *types.Transaction {
	if len(s.heads) == 0 || (s.limit > 0 && s.taken >= s.limit) {
		return nil
	}
	return s.heads[0][0].tx
}

// Shift accepts the peeked transaction.
func (s *Source) Shift() {
	s.taken++
	if s.heads[0] = s.heads[0][1:]; len(s.heads[0]) == 0 {
		heap.Pop(s)
	} else {
		heap.Fix(s, 0)
	}
}

// Skip rejects the peeked transaction and the rest of its sender's.
func (s *Source) Skip() { heap.Pop(s) }

// state.StateDB satisfies StateReader.
var _ StateReader = (*state.StateDB)(nil)
