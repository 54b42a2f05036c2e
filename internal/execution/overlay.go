package execution

import (
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/stateless"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/types/bal"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/system"
)

// sharedState is the state the transactions of a block run on in
// parallel: the block's state so far (its parent's post-state, the start
// of block, and every transaction committed so far), read by the workers
// and written only by the committer, each under mu. A go-ethereum StateDB
// is not safe for concurrent use, even to read (it caches what it loads).
type sharedState struct {
	mu sync.Mutex
	st *state.StateDB
}

// acctState is one account as a transaction sees it. codeHash is the
// zero hash while the account does not exist.
type acctState struct {
	exists      bool
	newContract bool // created by this transaction (EIP-6780)
	destructed  bool
	balance     uint256.Int
	nonce       uint64
	codeHash    common.Hash
	code        []byte
}

func (a *acctState) empty() bool {
	return a.nonce == 0 && a.balance.IsZero() && (a.codeHash == types.EmptyCodeHash || a.codeHash == common.Hash{})
}

// readAcctLocked loads addr from st, its code too if code; the caller
// holds the shared lock.
func readAcctLocked(st *state.StateDB, addr common.Address, code bool) acctState {
	if !st.Exist(addr) {
		return acctState{}
	}
	a := acctState{exists: true, balance: *st.GetBalance(addr), nonce: st.GetNonce(addr), codeHash: st.GetCodeHash(addr)}
	if code {
		a.code = st.GetCode(addr)
	}
	return a
}

// ovAccount is an account loaded by the running transaction.
type ovAccount struct {
	orig  acctState // as read from the shared state: the read set
	cur   acctState
	dirty int // journal entries that mark it changed, as go-ethereum's journal counts them

	origin map[common.Hash]common.Hash // slots as read from the shared state: the read set
	slots  map[common.Hash]common.Hash // slots written
}

// journal entry kinds
const (
	jAcct = iota
	jSlot
	jTransient
	jRefund
	jLog
	jAccessAddr
	jAccessSlot
	jFee
)

type jEntry struct {
	kind           uint8
	dirties        bool // counts as a change of addr (EIP-161 deletion of an empty account)
	addr           common.Address
	key            common.Hash
	prev           acctState
	prevVal        common.Hash
	had            bool // the slot was written before
	prevN          uint64
	prevFee        uint256.Int
	prevFeeTouched bool
}

type slotKey struct {
	addr common.Address
	key  common.Hash
}

// overlay is the vm.StateDB of one transaction in the parallel path: the
// writes of the transaction over the shared state, with what it read
// from the shared state (its read set) so that the committer can tell
// whether it ran on the state sequential execution gives it. It follows
// go-ethereum's StateDB rules that decide the post-state: an account is
// created by the first write to it, a zero-value AddBalance touches an
// empty account, SetState of the value a slot holds changes nothing, a
// reverted frame undoes its touches (but RIPEMD-160's, as go-ethereum
// keeps it), and at the end of the transaction every changed account that
// is empty or self-destructed is deleted (commitWrites, through
// StateDB.Finalise).
//
// The fee go-ethereum pays the coinbase at the end of every transaction is
// not read from or added to the coinbase's balance: it is accumulated and
// added by the committer in block order, so that transactions do not
// conflict through the coinbase. A transaction that otherwise loads the
// coinbase (sends from or to it, reads its balance) pays its fee to the
// loaded account, and conflicts with every fee before it, as it must.
//
// An overlay is used by one goroutine, for one transaction at a time
// (reset between them).
type overlay struct {
	shared   *sharedState
	coinbase common.Address

	accounts map[common.Address]*ovAccount
	order    []common.Address // accounts in the order loaded
	spare    []*ovAccount     // allocated by earlier transactions, reused; used of them in use (at most a transaction's cold accounts: 2,600 gas each)
	used     int

	journal    []jEntry
	refund     uint64
	transient  map[slotKey]common.Hash
	accAddrs   map[common.Address]int // access list: address -> 1
	accSlots   map[slotKey]struct{}
	logs       []*types.Log
	fee        uint256.Int
	feeTouched bool
	ripemd     bool // RIPEMD-160 touched: stays changed after a revert, as in go-ethereum

	thash   common.Hash
	txIndex int

	stateBytes uint64 // storage and code written, as the block's meter counts it
	govBytes   uint64
}

func newOverlay(shared *sharedState, coinbase common.Address) *overlay {
	return &overlay{
		shared:    shared,
		coinbase:  coinbase,
		accounts:  map[common.Address]*ovAccount{},
		transient: map[slotKey]common.Hash{},
		accAddrs:  map[common.Address]int{},
		accSlots:  map[slotKey]struct{}{},
	}
}

// reset readies the overlay for the next transaction.
func (o *overlay) reset() {
	clear(o.accounts)
	o.order = o.order[:0]
	o.used = 0
	o.journal = o.journal[:0]
	o.refund = 0
	clear(o.transient)
	clear(o.accAddrs)
	clear(o.accSlots)
	o.logs = nil
	o.fee.Clear()
	o.feeTouched, o.ripemd = false, false
	o.stateBytes, o.govBytes = 0, 0
}

func (o *overlay) account(addr common.Address) *ovAccount {
	if a := o.accounts[addr]; a != nil {
		return a
	}
	o.shared.mu.Lock()
	st := readAcctLocked(o.shared.st, addr, true)
	o.shared.mu.Unlock()
	var a *ovAccount
	if o.used < len(o.spare) {
		a = o.spare[o.used]
		clear(a.origin)
		clear(a.slots)
		a.dirty = 0
	} else {
		a = new(ovAccount)
		o.spare = append(o.spare, a)
	}
	o.used++
	a.orig, a.cur = st, st
	o.accounts[addr] = a
	o.order = append(o.order, addr)
	return a
}

// change journals the account before a change that marks it changed.
func (o *overlay) change(addr common.Address, a *ovAccount) {
	o.journal = append(o.journal, jEntry{kind: jAcct, dirties: true, addr: addr, prev: a.cur})
	a.dirty++
}

// getOrNew is go-ethereum's getOrNewStateObject: the first write to an
// account that does not exist creates it.
func (o *overlay) getOrNew(addr common.Address) *ovAccount {
	a := o.account(addr)
	if !a.cur.exists {
		o.create(addr, a)
	}
	return a
}

func (o *overlay) create(addr common.Address, a *ovAccount) {
	o.change(addr, a)
	a.cur = acctState{exists: true, codeHash: types.EmptyCodeHash}
}

func (o *overlay) CreateAccount(addr common.Address) { o.create(addr, o.account(addr)) }

func (o *overlay) CreateContract(addr common.Address) {
	a := o.account(addr)
	if !a.cur.newContract {
		o.change(addr, a)
		a.cur.newContract = true
	}
}

func (o *overlay) SubBalance(addr common.Address, amount *uint256.Int, _ tracing.BalanceChangeReason) uint256.Int {
	a := o.getOrNew(addr)
	prev := a.cur.balance
	if amount.IsZero() {
		return prev
	}
	o.change(addr, a)
	a.cur.balance.Sub(&a.cur.balance, amount)
	return prev
}

func (o *overlay) AddBalance(addr common.Address, amount *uint256.Int, reason tracing.BalanceChangeReason) uint256.Int {
	if addr == o.coinbase && reason == tracing.BalanceIncreaseRewardTransactionFee && o.accounts[addr] == nil {
		o.journal = append(o.journal, jEntry{kind: jFee, prevFee: o.fee, prevFeeTouched: o.feeTouched})
		o.fee.Add(&o.fee, amount)
		o.feeTouched = true
		return uint256.Int{}
	}
	a := o.getOrNew(addr)
	prev := a.cur.balance
	if amount.IsZero() {
		if a.cur.empty() {
			o.change(addr, a) // a touch
			if addr == ripemdAddr {
				o.ripemd = true
			}
		}
		return prev
	}
	o.change(addr, a)
	a.cur.balance.Add(&a.cur.balance, amount)
	return prev
}

var ripemdAddr = common.BytesToAddress([]byte{3})

func (o *overlay) GetBalance(addr common.Address) *uint256.Int {
	b := o.account(addr).cur.balance
	return &b
}

func (o *overlay) GetNonce(addr common.Address) uint64 { return o.account(addr).cur.nonce }

func (o *overlay) SetNonce(addr common.Address, nonce uint64, _ tracing.NonceChangeReason) {
	a := o.getOrNew(addr)
	o.change(addr, a)
	a.cur.nonce = nonce
}

func (o *overlay) GetCodeHash(addr common.Address) common.Hash {
	a := o.account(addr)
	if !a.cur.exists {
		return common.Hash{}
	}
	return a.cur.codeHash
}

func (o *overlay) GetCode(addr common.Address) []byte {
	a := o.account(addr)
	if !a.cur.exists {
		return nil
	}
	return a.cur.code
}

func (o *overlay) GetCodeSize(addr common.Address) int { return len(o.GetCode(addr)) }

func (o *overlay) SetCode(addr common.Address, code []byte, _ tracing.CodeChangeReason) []byte {
	a := o.getOrNew(addr)
	prev := a.cur.code
	o.change(addr, a)
	h := crypto.Keccak256Hash(code)
	if h != a.cur.codeHash {
		o.stateBytes += uint64(len(code))
	}
	a.cur.code, a.cur.codeHash = code, h
	return prev
}

func (o *overlay) AddRefund(gas uint64) {
	o.journal = append(o.journal, jEntry{kind: jRefund, prevN: o.refund})
	o.refund += gas
}

func (o *overlay) SubRefund(gas uint64) {
	o.journal = append(o.journal, jEntry{kind: jRefund, prevN: o.refund})
	if gas > o.refund {
		panic("refund counter below zero")
	}
	o.refund -= gas
}

func (o *overlay) GetRefund() uint64 { return o.refund }

// committed is the slot's value when the transaction started.
func (o *overlay) committed(addr common.Address, a *ovAccount, key common.Hash) common.Hash {
	if v, ok := a.origin[key]; ok {
		return v
	}
	o.shared.mu.Lock()
	v := o.shared.st.GetState(addr, key)
	o.shared.mu.Unlock()
	if a.origin == nil {
		a.origin = map[common.Hash]common.Hash{}
	}
	a.origin[key] = v
	return v
}

func (o *overlay) state(addr common.Address, a *ovAccount, key common.Hash) common.Hash {
	if v, ok := a.slots[key]; ok {
		return v
	}
	return o.committed(addr, a, key)
}

func (o *overlay) GetStateAndCommittedState(addr common.Address, key common.Hash) (common.Hash, common.Hash) {
	a := o.account(addr)
	if !a.cur.exists {
		return common.Hash{}, common.Hash{}
	}
	return o.state(addr, a, key), o.committed(addr, a, key)
}

func (o *overlay) GetState(addr common.Address, key common.Hash) common.Hash {
	a := o.account(addr)
	if !a.cur.exists {
		return common.Hash{}
	}
	return o.state(addr, a, key)
}

func (o *overlay) SetState(addr common.Address, key, value common.Hash) common.Hash {
	a := o.getOrNew(addr)
	prev := o.state(addr, a, key)
	if prev == value {
		return prev
	}
	old, had := a.slots[key]
	o.journal = append(o.journal, jEntry{kind: jSlot, dirties: true, addr: addr, key: key, prevVal: old, had: had})
	a.dirty++
	if a.slots == nil {
		a.slots = map[common.Hash]common.Hash{}
	}
	a.slots[key] = value
	o.stateBytes += 32
	if system.IsSystem(addr) {
		o.govBytes += 32
	}
	return prev
}

func (o *overlay) GetTransientState(addr common.Address, key common.Hash) common.Hash {
	return o.transient[slotKey{addr, key}]
}

func (o *overlay) SetTransientState(addr common.Address, key, value common.Hash) {
	k := slotKey{addr, key}
	prev := o.transient[k]
	if prev == value {
		return
	}
	o.journal = append(o.journal, jEntry{kind: jTransient, addr: addr, key: key, prevVal: prev})
	o.transient[k] = value
}

func (o *overlay) SelfDestruct(addr common.Address) {
	a := o.account(addr)
	if !a.cur.exists || a.cur.destructed {
		return
	}
	o.change(addr, a)
	a.cur.destructed = true
}

func (o *overlay) HasSelfDestructed(addr common.Address) bool {
	return o.account(addr).cur.destructed
}

func (o *overlay) Exist(addr common.Address) bool { return o.account(addr).cur.exists }

func (o *overlay) Touch(addr common.Address) { o.account(addr) }

func (o *overlay) IsNewContract(addr common.Address) bool {
	a := o.account(addr)
	return a.cur.exists && a.cur.newContract
}

func (o *overlay) Empty(addr common.Address) bool {
	a := o.account(addr)
	return !a.cur.exists || a.cur.empty()
}

func (o *overlay) AddressInAccessList(addr common.Address) bool {
	_, ok := o.accAddrs[addr]
	return ok
}

func (o *overlay) SlotInAccessList(addr common.Address, slot common.Hash) (bool, bool) {
	_, a := o.accAddrs[addr]
	_, s := o.accSlots[slotKey{addr, slot}]
	return a, s
}

func (o *overlay) AddAddressToAccessList(addr common.Address) {
	if _, ok := o.accAddrs[addr]; ok {
		return
	}
	o.accAddrs[addr] = 1
	o.journal = append(o.journal, jEntry{kind: jAccessAddr, addr: addr})
}

func (o *overlay) AddSlotToAccessList(addr common.Address, slot common.Hash) {
	o.AddAddressToAccessList(addr)
	k := slotKey{addr, slot}
	if _, ok := o.accSlots[k]; ok {
		return
	}
	o.accSlots[k] = struct{}{}
	o.journal = append(o.journal, jEntry{kind: jAccessSlot, addr: addr, key: slot})
}

// Prepare is StateDB.Prepare: the access list of EIP-2929 and EIP-3651,
// and empty transient storage.
func (o *overlay) Prepare(rules params.Rules, sender, coinbase common.Address, dst *common.Address, precompiles []common.Address, list types.AccessList) {
	if rules.IsEIP2929 {
		clear(o.accAddrs)
		clear(o.accSlots)
		o.accAddrs[sender] = 1
		if dst != nil {
			o.accAddrs[*dst] = 1
		}
		for _, a := range precompiles {
			o.accAddrs[a] = 1
		}
		for _, el := range list {
			o.accAddrs[el.Address] = 1
			for _, k := range el.StorageKeys {
				o.accSlots[slotKey{el.Address, k}] = struct{}{}
			}
		}
		if rules.IsShanghai {
			o.accAddrs[coinbase] = 1
		}
	}
	clear(o.transient)
}

func (o *overlay) Snapshot() int { return len(o.journal) }

func (o *overlay) RevertToSnapshot(id int) {
	for i := len(o.journal) - 1; i >= id; i-- {
		e := &o.journal[i]
		switch e.kind {
		case jAcct:
			a := o.accounts[e.addr]
			a.cur = e.prev
			a.dirty--
		case jSlot:
			a := o.accounts[e.addr]
			if e.had {
				a.slots[e.key] = e.prevVal
			} else {
				delete(a.slots, e.key)
			}
			a.dirty--
		case jTransient:
			o.transient[slotKey{e.addr, e.key}] = e.prevVal
		case jRefund:
			o.refund = e.prevN
		case jLog:
			o.logs = o.logs[:e.prevN]
		case jAccessAddr:
			delete(o.accAddrs, e.addr)
		case jAccessSlot:
			delete(o.accSlots, slotKey{e.addr, e.key})
		case jFee:
			o.fee, o.feeTouched = e.prevFee, e.prevFeeTouched
		}
	}
	o.journal = o.journal[:id]
}

func (o *overlay) AddLog(l *types.Log) {
	o.journal = append(o.journal, jEntry{kind: jLog, prevN: uint64(len(o.logs))})
	l.TxHash, l.TxIndex = o.thash, uint(o.txIndex)
	o.logs = append(o.logs, l)
}

func (o *overlay) AddPreimage(common.Hash, []byte)   {}
func (o *overlay) Witness() *stateless.Witness       { return nil }
func (o *overlay) AccessEvents() *state.AccessEvents { return nil }

// Finalise does nothing: the committer finalises the shared state after
// it applies the transaction's writes.
func (o *overlay) Finalise(params.Rules) *bal.ConstructionBlockAccessList { return nil }

func (o *overlay) SetTxContext(thash common.Hash, ti int, _ uint32) { o.thash, o.txIndex = thash, ti }

// acctRead and slotRead are the read set of a transaction.
type acctRead struct {
	addr common.Address
	st   acctState
}

type slotRead struct {
	addr common.Address
	key  common.Hash
	val  common.Hash
}

// acctWrite is an account the transaction changed, as it is at its end.
type acctWrite struct {
	addr  common.Address
	st    acctState
	slots []slotRead // written slots whose value differs from the one at the start
}

// txEffects is what one execution of a transaction read and wrote.
type txEffects struct {
	acctReads  []acctRead
	slotReads  []slotRead
	writes     []acctWrite
	fee        uint256.Int
	feeTouched bool
	logs       []*types.Log
	stateBytes uint64
	govBytes   uint64
}

// effects collects the read and write sets of the transaction run.
func (o *overlay) effects() *txEffects {
	fx := &txEffects{fee: o.fee, feeTouched: o.feeTouched, logs: o.logs, stateBytes: o.stateBytes, govBytes: o.govBytes}
	fx.acctReads = make([]acctRead, 0, len(o.order))
	for _, addr := range o.order {
		a := o.accounts[addr]
		orig := a.orig
		orig.code = nil
		fx.acctReads = append(fx.acctReads, acctRead{addr, orig})
		for k, v := range a.origin {
			fx.slotReads = append(fx.slotReads, slotRead{addr, k, v})
		}
		if a.dirty == 0 && !(addr == ripemdAddr && o.ripemd) {
			continue
		}
		w := acctWrite{addr: addr, st: a.cur}
		for k, v := range a.slots {
			if a.origin[k] != v {
				w.slots = append(w.slots, slotRead{addr, k, v})
			}
		}
		fx.writes = append(fx.writes, w)
	}
	return fx
}

// validLocked reports whether every value fx read is what the shared
// state holds now. The caller holds the shared lock.
func (fx *txEffects) validLocked(st *state.StateDB) bool {
	for _, r := range fx.acctReads {
		now := readAcctLocked(st, r.addr, false)
		if now.exists != r.st.exists || now.nonce != r.st.nonce || now.codeHash != r.st.codeHash || now.balance != r.st.balance {
			return false
		}
	}
	for _, r := range fx.slotReads {
		if st.GetState(r.addr, r.key) != r.val {
			return false
		}
	}
	return true
}

// commitLocked applies fx's writes to st and finalises the transaction
// there, which deletes the accounts go-ethereum would delete (changed and
// empty, or self-destructed). The caller holds the shared lock.
func (fx *txEffects) commitLocked(st *state.StateDB, coinbase common.Address, rules params.Rules) {
	for i := range fx.writes {
		w := &fx.writes[i]
		if w.st.destructed {
			st.SelfDestruct(w.addr)
			continue
		}
		if !w.st.exists {
			// Only RIPEMD-160's lasting touch leaves a changed account
			// that does not exist: nothing to do.
			continue
		}
		if !st.Exist(w.addr) {
			st.CreateAccount(w.addr)
		}
		if b := st.GetBalance(w.addr); *b != w.st.balance {
			st.SetBalance(w.addr, &w.st.balance, tracing.BalanceChangeUnspecified)
		}
		if st.GetNonce(w.addr) != w.st.nonce {
			st.SetNonce(w.addr, w.st.nonce, tracing.NonceChangeUnspecified)
		}
		if st.GetCodeHash(w.addr) != w.st.codeHash {
			st.SetCode(w.addr, w.st.code, tracing.CodeChangeUnspecified)
		}
		for _, s := range w.slots {
			st.SetState(w.addr, s.key, s.val)
		}
		if w.st.empty() {
			st.AddBalance(w.addr, new(uint256.Int), tracing.BalanceChangeTouchAccount) // touched: deleted by Finalise
		}
	}
	if fx.feeTouched {
		st.AddBalance(coinbase, &fx.fee, tracing.BalanceIncreaseRewardTransactionFee)
	}
	st.Finalise(rules)
}
