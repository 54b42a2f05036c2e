package execution

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"

	"github.com/charter-ledger/charter/internal/system"
)

// Options tune the executor. The zero value is the default: sequential
// execution.
type Options struct {
	// Parallel verifies blocks (Apply) by running their transactions
	// speculatively in parallel and committing them in block order (see
	// applyParallel). Experimental, off by default. The result is the
	// sequential one, byte for byte; blocks it does not cover (those with
	// a call of a system contract) run sequentially.
	Parallel bool
	// Workers is the number of goroutines that run transactions, the
	// committer included; 0 means GOMAXPROCS. 1 runs the parallel path's
	// code with no speculation (tests).
	Workers int

	// waitForWorkers (tests) makes the committer wait for a worker's run
	// of every transaction instead of running it itself, so that every
	// transaction goes through validation.
	waitForWorkers bool
	// speculateFirst (tests) makes the committer start only when the
	// workers have run every transaction, each on the block's pre-state
	// then: every read of an earlier transaction's write is stale, so that
	// a test can count on conflicts whatever the scheduling.
	speculateFirst bool
}

// mutantSkipValidation, set only by a test, makes the committer take every
// speculative run as valid: the differential test must then fail.
var mutantSkipValidation bool

// parallelStats counts, over the process, the speculative runs the
// committer kept and those it ran again, the transactions it ran itself
// first, and those run as in the sequential loop after too many conflicts
// (tests and benchmarks read them).
var parallelStats struct{ kept, rerun, own, serial atomic.Int64 }

// Transaction states in applyParallel.
const (
	txFree      = iota
	txRunning   // by a worker
	txDone      // by a worker: its result is there to validate
	txCommitter // taken by the committer before any worker
)

// maxRerunStreak is the number of speculative runs in a row the committer
// runs again before it stops the workers and runs the rest of the block
// sequentially.
const maxRerunStreak = 4

// maxWorkers bounds Options.Workers.
const maxWorkers = 64

// WithOptions returns an executor like e with options o.
func (e *Executor) WithOptions(o Options) *Executor {
	c := *e
	c.opts = o
	return &c
}

// Options are the executor's options.
func (e *Executor) Options() Options { return e.opts }

func (o Options) workers() int {
	n := o.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return min(n, maxWorkers)
}

// parallelizable reports whether the parallel path covers txs. A call of
// a system contract may change the registry (the permissions, the frozen
// set) that every later transaction's checks read outside the EVM, and
// the governance and marker budgets; such blocks run sequentially.
func parallelizable(txs types.Transactions) bool {
	if len(txs) < 2 {
		return false
	}
	for _, tx := range txs {
		if callsSystem(tx) || tx.Type() == types.BlobTxType {
			return false
		}
	}
	return true
}

// txRun is one execution of a transaction by a txRunner.
type txRun struct {
	fx     *txEffects
	res    *core.ExecutionResult
	msg    *core.Message
	sender system.Sender
	gas    *core.GasPool // the transaction's own pool: what it took and gave back
	err    error         // the transaction cannot be part of the block
}

// txRunner runs transactions on an overlay of the shared state: its own
// EVM, system contracts and guard (the permission rules at every frame,
// as in the sequential path). Used by one goroutine.
type txRunner struct {
	e          *Executor
	h          *types.Header
	ov         *overlay
	evm        *vm.EVM
	contracts  *system.Contracts
	guard      *guard
	sys        *system.State
	txGasLimit uint64
}

func (e *Executor) newTxRunner(run *blockRun, h *types.Header, shared *sharedState) *txRunner {
	ov := newOverlay(shared, h.Coinbase)
	ctx := run.evm.Context
	ctx.GetHash = lockedGetHash(ctx.GetHash)
	evm := vm.NewEVM(ctx, ov, e.config, vm.Config{})
	contracts := system.Install(evm)
	sys := system.Open(ov, h.Number.Uint64(), h.Time)
	g := newGuard(evm, ov, contracts, sys)
	evm.StateDB = g
	return &txRunner{e: e, h: h, ov: ov, evm: evm, contracts: contracts, guard: g, sys: sys, txGasLimit: run.txGasLimit}
}

var getHashMu sync.Mutex

// lockedGetHash serializes BLOCKHASH lookups, which read the chain's
// headers through a HeaderReader that is not documented as goroutine-safe.
func lockedGetHash(f vm.GetHashFunc) vm.GetHashFunc {
	return func(n uint64) common.Hash {
		getHashMu.Lock()
		defer getHashMu.Unlock()
		return f(n)
	}
}

// exec runs tx, the index-th of the block, on the shared state as it is
// now, and returns what it read and wrote. It makes the checks of applyTx
// that do not depend on the transactions before it in the block; the
// committer makes the others (the block's gas, the governance budget).
func (r *txRunner) exec(tx *types.Transaction, index int) *txRun {
	r.ov.reset()
	out := &txRun{}
	defer func() { out.fx = r.ov.effects() }()
	if tx.Gas() > r.txGasLimit {
		out.err = errTxGasLimit(tx.Gas(), r.txGasLimit)
		return out
	}
	msg, sender, err := r.e.admit(r.sys, tx, r.h)
	if err != nil {
		out.err = err
		return out
	}
	out.msg, out.sender = msg, sender
	r.ov.SetTxContext(tx.Hash(), index, uint32(index+1))
	r.contracts.SetCall(system.Call{From: msg.From, To: msg.To, Data: msg.Data, Value: msg.Value})
	r.guard.begin(sender.MayDeploy())
	out.gas = core.NewGasPool(msg.GasLimit)
	out.res, out.err = r.guard.apply(r.ov, msg, out.gas)
	return out
}

// speculate is exec for a worker: a panic is a failed speculation (nil,
// false), not a crash. The shared state is read only under its lock,
// which a panic in exec never holds (reads take it and let it go without
// calling out).
func (r *txRunner) speculate(tx *types.Transaction, index int) (out *txRun, ok bool) {
	defer func() {
		if recover() != nil {
			out, ok = nil, false
		}
	}()
	return r.exec(tx, index), true
}

// applyParallel runs the transactions of a block in the manner of
// Block-STM: workers run them speculatively, each on the shared state as
// committed so far, recording what it read (accounts and storage slots,
// with their values) and what it wrote; the committer takes them in block
// order, checks that every value a transaction read is still the one the
// shared state holds (so its run is the one sequential execution gives:
// execution is a function of what it reads), runs it again itself when
// not (the shared state then is exactly its pre-state), applies its
// writes and finalises, and makes the receipt. A transaction no worker
// has taken yet the committer runs itself; one a worker is running it
// waits for. After maxRerunStreak re-runs in a row the workers stop and
// the rest of the block runs through applyTx, as in the sequential loop.
// Fees to the coinbase are accumulated per transaction and added in order
// (overlay). The receipts and the state are those of the sequential loop
// of Apply.
//
// It returns the receipts, or the index of the first transaction that
// cannot be part of the block and why. Bounds: one result and one
// channel per transaction of the block, at most maxWorkers goroutines,
// all gone when it returns.
func (e *Executor) applyParallel(run *blockRun, st *state.StateDB, gp *core.GasPool, h *types.Header, txs types.Transactions) (types.Receipts, int, error) {
	n := len(txs)
	shared := &sharedState{st: st}
	var (
		results  = make([]*txRun, n)
		status   = make([]atomic.Uint32, n) // txFree, txRunning, txDone, txCommitter
		done     = make([]chan struct{}, n) // closed when a worker's run is there
		next     atomic.Int64               // the next transaction a worker tries
		frontier atomic.Int64               // the committer's transaction: workers skip those before it
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	for i := range done {
		done[i] = make(chan struct{})
	}
	for w := 1; w < e.opts.workers(); w++ {
		r := e.newTxRunner(run, h, shared)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if int64(i) < frontier.Load() || !status[i].CompareAndSwap(txFree, txRunning) {
					continue
				}
				out, ok := r.speculate(txs[i], i)
				if !ok {
					// A run on a state no sequential execution would give
					// it may break what the EVM relies on: the committer
					// runs the transaction again; the worker starts over.
					r = e.newTxRunner(run, h, shared)
				}
				results[i] = out
				status[i].Store(txDone)
				close(done[i])
			}
		}()
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()

	if e.opts.speculateFirst && e.opts.workers() > 1 {
		for i := range done {
			<-done[i]
		}
	}
	committer := e.newTxRunner(run, h, shared)
	rules := run.evm.GetRules()
	receipts := make(types.Receipts, 0, n)
	streak := 0 // speculative runs in a row that had to run again

	for i, tx := range txs {
		if streak >= maxRerunStreak {
			// The block is one chain of dependencies: the workers only
			// burn CPU, and the overlay costs more than the state itself.
			// With the workers gone, the rest runs as in the sequential
			// loop of Apply.
			stop.Store(true)
			wg.Wait()
			for j := i; j < n; j++ {
				receipt, err := e.applyTx(run, st, gp, h, txs[j], j)
				if err != nil {
					return nil, j, err
				}
				receipts = append(receipts, receipt)
				parallelStats.serial.Add(1)
			}
			break
		}
		frontier.Store(int64(i))
		if e.opts.waitForWorkers && e.opts.workers() > 1 {
			<-done[i]
		}
		var out *txRun
		if status[i].CompareAndSwap(txFree, txCommitter) {
			// No worker has taken it: the committer runs it itself, on its
			// exact pre-state.
			out = committer.exec(tx, i)
			parallelStats.own.Add(1)
		} else {
			// A worker has: waiting for it costs less than running it
			// again, and leaves the CPU to the worker.
			<-done[i]
			out, results[i] = results[i], nil
			valid := out != nil
			if valid {
				shared.mu.Lock()
				valid = mutantSkipValidation || out.fx.validLocked(st)
				shared.mu.Unlock()
			}
			if valid {
				streak = 0
				parallelStats.kept.Add(1)
			} else {
				out = committer.exec(tx, i)
				parallelStats.rerun.Add(1)
				streak++
			}
		}
		if out.err != nil {
			return nil, i, out.err
		}
		// The block's gas, as ApplyMessage takes it (CheckGasLegacy: all
		// forks before Amsterdam) and gives back what was left.
		if err := gp.CheckGasLegacy(out.msg.GasLimit); err != nil {
			return nil, i, err
		}
		if err := gp.ChargeGasLegacy(out.gas.Available(false), out.gas.CumulativeUsed()); err != nil {
			return nil, i, err
		}
		if w := out.fx.govBytes; w > 0 && run.gov.bytes > 0 && run.gov.bytes+w > run.limits.GovBytes {
			return nil, i, fmt.Errorf("%w: its %d bytes of system-contract storage bring the block's to %d, above maxBlockGovBytes %d",
				errGovBudget, w, run.gov.bytes+w, run.limits.GovBytes)
		}
		run.gov.bytes += out.fx.govBytes
		shared.mu.Lock()
		out.fx.commitLocked(st, h.Coinbase, rules)
		st.SetTxContext(tx.Hash(), i, uint32(i+1))
		for _, l := range out.fx.logs {
			st.AddLog(l)
		}
		run.evm.TxContext.Origin = out.msg.From
		receipt := core.MakeReceipt(run.evm, out.res, st, h.Number, common.Hash{}, h.Time, tx, gp.CumulativeUsed(), nil)
		shared.mu.Unlock()
		run.stateBytes = out.fx.stateBytes
		run.meter(out.sender.Org, receipt)
		receipts = append(receipts, receipt)
	}
	return receipts, n, nil
}
