package execution

import (
	"fmt"
	"sort"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"

	"github.com/charter-ledger/charter/internal/system"
)

// KnownUpgrades are the protocol upgrades this binary implements. A
// governance-scheduled upgrade it does not know stops block processing at
// its height, with a message that says to upgrade the binary.
var KnownUpgrades = map[string]bool{}

// blockRun is the execution of one block: its EVM over a state that
// counts storage writes, the system contracts, and the usage metered.
type blockRun struct {
	evm        *vm.EVM
	contracts  *system.Contracts
	guard      *guard // the EVM's StateDB: the permission rules at every frame
	sys        *system.State
	effects    system.BlockEffects
	txGasLimit uint64
	maxTxBytes uint64
	limits     system.BlockLimits
	gov        govWork             // of the transactions kept so far
	markers    map[common.Hash]int // privacy markers kept so far, by group

	stateBytes uint64 // written by the transaction running
	govBytes   uint64 // of it, written in the system contracts' storage
	usage      map[string]*system.Usage
}

// begin starts a block on st: it runs governance's start of block (expiry,
// execution of passed proposals), applies the chain parameters governance
// set to h, and makes the EVM.
func (e *Executor) begin(h *types.Header, st *state.StateDB) (*blockRun, error) {
	number := h.Number.Uint64()
	run := &blockRun{usage: map[string]*system.Usage{}, markers: map[common.Hash]int{}}
	run.sys = system.Open(st, number, h.Time)
	if number > 0 {
		run.effects = run.sys.BeginBlock(st)
	}
	for _, u := range run.sys.Upgrades() {
		if u.Height <= number && !KnownUpgrades[u.Name] {
			return nil, fmt.Errorf("protocol upgrade %q activates at height %d and this charter binary does not implement it: install a release that does", u.Name, u.Height)
		}
	}
	if gl := run.sys.Param(system.ParamGasLimit); gl != 0 {
		h.GasLimit = gl
	}
	run.txGasLimit = uint64(e.spec.TxGasLimit)
	if v := run.sys.Param(system.ParamTxGasLimit); v != 0 {
		run.txGasLimit = v
	}
	run.maxTxBytes = e.spec.MaxTxBytes
	if v := run.sys.Param(system.ParamMaxTxBytes); v != 0 {
		run.maxTxBytes = v
	}
	run.limits = run.sys.BlockLimits()
	hooks := &tracing.Hooks{
		OnStorageChange: func(addr common.Address, slot, prev, new common.Hash) {
			run.stateBytes += 32
			if system.IsSystem(addr) {
				run.govBytes += 32
			}
		},
		OnCodeChangeV2: func(addr common.Address, prevHash common.Hash, prev []byte, hash common.Hash, code []byte, reason tracing.CodeChangeReason) {
			run.stateBytes += uint64(len(code))
		},
	}
	hooked := state.NewHookedState(st, hooks)
	run.evm = vm.NewEVM(e.BlockContext(h), hooked, e.config, vm.Config{})
	run.contracts = system.Install(run.evm)
	run.guard = newGuard(run.evm, hooked, run.contracts, run.sys)
	run.evm.StateDB = run.guard
	return run, nil
}

// meter adds a transaction to its sender's organization's usage; the
// state it wrote counts only if it succeeded.
func (r *blockRun) meter(org string, receipt *types.Receipt) {
	u := r.usage[org]
	if u == nil {
		u = new(system.Usage)
		r.usage[org] = u
	}
	u.Txs++
	u.Gas += receipt.GasUsed
	if receipt.Status == types.ReceiptStatusSuccessful {
		u.StateBytes += r.stateBytes
	}
}

// end writes the block's usage, per organization in name order
// (transactions of accounts of no organization are metered under "").
func (r *blockRun) end() {
	orgs := make([]string, 0, len(r.usage))
	for o := range r.usage {
		orgs = append(orgs, o)
	}
	sort.Strings(orgs)
	for _, o := range orgs {
		r.sys.AddUsage(o, *r.usage[o])
	}
}
