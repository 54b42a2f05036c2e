// Package txpool admits transactions and keeps them until a block includes
// them. Admission is two-stage: stateless checks and sender recovery run in
// the caller's goroutine, without the pool lock (so concurrent submitters
// recover signatures in parallel); the stateful checks (nonce, balance,
// replacement, bounds) run under the lock against the state of the head.
package txpool

import (
	"container/heap"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"sync/atomic"

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
)

// Config bounds the pool.
type Config struct {
	ChainID      *big.Int
	MaxTxBytes   uint64   // encoded size of one transaction
	TxGasLimit   uint64   // gas of one transaction
	BaseFee      *big.Int // the chain's fixed base fee
	MinTip       *big.Int // lowest effective tip admitted
	AccountSlots int      // transactions per account (pending + queued); default 4096
	GlobalSlots  int      // transactions in the pool; default 100,000
	MaxNonceGap  uint64   // how far past the next nonce a transaction may be; default 1024
	PriceBump    uint64   // % a replacement must raise both fee caps; default 10
	// Permit, if set, decides whether from may send tx on the head state
	// (roles, freezes); its error is the rejection.
	Permit func(st StateReader, from common.Address, tx *types.Transaction) error
}

func (c *Config) ensureDefaults() {
	if c.AccountSlots == 0 {
		c.AccountSlots = 4096
	}
	if c.GlobalSlots == 0 {
		c.GlobalSlots = 100_000
	}
	if c.MaxNonceGap == 0 {
		c.MaxNonceGap = 1024
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
}

type account struct {
	txs       map[uint64]*entry
	nonce     uint64 // next nonce by state
	pendingTo uint64 // first nonce after the run of consecutive txs from nonce
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

	mu struct {
		sync.Mutex
		state    StateReader
		accounts map[common.Address]*account
		all      map[common.Hash]*entry
		seq      uint64
		pending  int
	}
}

// New returns an empty pool reading nonces and balances from st.
func New(cfg Config, signer types.Signer, st StateReader) *Pool {
	cfg.ensureDefaults()
	p := &Pool{cfg: cfg, signer: signer}
	p.limits.Store(&Limits{MaxTxBytes: cfg.MaxTxBytes, TxGasLimit: cfg.TxGasLimit, MinTip: cfg.MinTip})
	p.mu.state = st
	p.mu.accounts = make(map[common.Address]*account)
	p.mu.all = make(map[common.Hash]*entry)
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
	promoted, err := p.addLocked(tx, from)
	p.mu.Unlock()
	if len(promoted) > 0 {
		p.feed.Send(NewTxsEvent{Txs: promoted})
	}
	return err
}

// AddBatch admits transactions whose senders the caller has already
// recovered with ValidateBasic; errs[i] is the outcome of txs[i].
func (p *Pool) AddBatch(txs []*types.Transaction, froms []common.Address) []error {
	errs := make([]error, len(txs))
	var promoted []*types.Transaction
	p.mu.Lock()
	for i, tx := range txs {
		var pr []*types.Transaction
		pr, errs[i] = p.addLocked(tx, froms[i])
		promoted = append(promoted, pr...)
	}
	p.mu.Unlock()
	if len(promoted) > 0 {
		p.feed.Send(NewTxsEvent{Txs: promoted})
	}
	return errs
}

func (p *Pool) addLocked(tx *types.Transaction, from common.Address) ([]*types.Transaction, error) {
	hash := tx.Hash()
	if _, ok := p.mu.all[hash]; ok {
		return nil, ErrAlreadyKnown
	}
	acct := p.mu.accounts[from]
	if acct == nil {
		n := p.mu.state.GetNonce(from)
		acct = &account{txs: make(map[uint64]*entry), nonce: n, pendingTo: n}
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
			return nil, err
		}
	}
	cost, overflow := uint256.FromBig(tx.Cost())
	if overflow {
		return nil, fmt.Errorf("%w: cost overflows", ErrInsufficientFunds)
	}
	old := acct.txs[nonce]
	if old != nil {
		if !p.bumped(old.tx, tx) {
			return nil, fmt.Errorf("%w: raise max fee and tip by at least %d%%", ErrReplaceUnderpriced, p.cfg.PriceBump)
		}
	} else {
		if len(acct.txs) >= p.cfg.AccountSlots {
			return nil, fmt.Errorf("%w: %d transactions of %s wait already", ErrAccountLimit, len(acct.txs), from)
		}
		if len(p.mu.all) >= p.cfg.GlobalSlots {
			return nil, fmt.Errorf("%w: %d transactions wait", ErrPoolFull, len(p.mu.all))
		}
	}
	// The sender must afford this transaction after every earlier one of
	// its own that waits.
	balance := p.mu.state.GetBalance(from)
	need := new(uint256.Int).Set(cost)
	for n := acct.nonce; n < nonce; n++ {
		if e := acct.txs[n]; e != nil {
			need.Add(need, e.cost)
		}
	}
	if balance.Cmp(need) < 0 {
		return nil, fmt.Errorf("%w: balance %v, cost %v (with %d earlier transactions)", ErrInsufficientFunds, balance, need, nonce-acct.nonce)
	}
	p.mu.accounts[from] = acct
	if old != nil {
		delete(p.mu.all, old.tx.Hash())
		if nonce < acct.pendingTo {
			p.mu.pending--
		}
	}
	p.mu.seq++
	e := &entry{tx: tx, from: from, seq: p.mu.seq, cost: cost}
	acct.txs[nonce] = e
	p.mu.all[hash] = e
	if nonce < acct.pendingTo {
		p.mu.pending++
		return []*types.Transaction{tx}, nil
	}
	return p.promoteLocked(acct), nil
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
	p.mu.state = st
	for _, tx := range drop {
		if e := p.mu.all[tx.Hash()]; e != nil {
			p.removeFromLocked(e.from, e.tx.Nonce())
		}
	}
	for addr, acct := range p.mu.accounts {
		n := st.GetNonce(addr)
		for old := acct.nonce; old < n; old++ {
			if e := acct.txs[old]; e != nil {
				delete(acct.txs, old)
				delete(p.mu.all, e.tx.Hash())
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
	p.recountLocked()
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
			delete(acct.txs, n)
			delete(p.mu.all, e.tx.Hash())
		}
	}
	if acct.pendingTo > nonce {
		acct.pendingTo = max(nonce, acct.nonce)
	}
}

func (p *Pool) recountLocked() {
	p.mu.pending = 0
	for _, acct := range p.mu.accounts {
		p.mu.pending += int(acct.pendingTo - acct.nonce)
	}
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
	return p.mu.pending, len(p.mu.all) - p.mu.pending
}

// Content returns the waiting transactions by sender and nonce, split into
// pending and queued.
func (p *Pool) Content() (pending, queued map[common.Address][]*types.Transaction) {
	p.mu.Lock()
	defer p.mu.Unlock()
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
