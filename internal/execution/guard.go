package execution

import (
	"fmt"
	"maps"
	"slices"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/system"
)

// guard enforces the permission rules at every frame of the EVM
// (docs/design/governance.md, "Permission rules"). What is known before a
// message runs (sender, recipient, EIP-7702 authorities) is checked by
// system.State.CheckSender and CheckAuthorizations; the guard covers what
// happens inside:
//
//   - a frozen address is executed by no frame: each one is a precompile
//     of the message's EVM that reverts, so that CALL, CALLCODE,
//     DELEGATECALL and STATICCALL to it fail in that frame alone, and a
//     value sent with the call goes back with the frame's revert;
//   - an account whose delegation designator (EIP-7702) points at a frozen
//     address becomes such a precompile too, from the moment the EVM
//     reads its code to price a call to it (see GetCode);
//   - breaches that go-ethereum gives no way to fail in their own frame
//     fail the whole message: a SELFDESTRUCT that pays a frozen
//     beneficiary, a creation at a frozen address, and a CREATE or
//     CREATE2 by a contract that is not a factory in a transaction whose
//     sender lacks deploy. The guard records the first of them; the
//     executor then reverts the message and runs it again as a call that
//     fails at once and spends all its gas (doom), so that it leaves no
//     trace but its fee and its sender's nonce.
//
// What it relies on in go-ethereum v1.17.10 (core/vm/evm.go,
// core/state_transition.go): evm.Call, CallCode, DelegateCall and
// StaticCall each look the callee up in the precompile map (the map passed
// to SetPrecompiles, used as is) before they run any code, and when the
// precompile fails they revert to the snapshot they took before the value
// transfer; a precompile that returns exactly vm.ErrExecutionReverted
// reverts its frame and returns its gas, any other error spends it;
// core.ApplyMessage does not finalise the state, so a snapshot taken
// before it can be reverted to; GetCode and SetNonce are called as
// described at those methods.
//
// The guard is the vm.StateDB of its EVM, wrapped around the state the
// EVM would use otherwise. Its lookups cost nothing per frame: the frozen
// set is read from the registry when the guard starts and again only
// after a message wrote to the registry's storage (SetState: the system
// contracts write through this StateDB too), so a block in which
// governance changes nothing reads it once, with one storage read while
// nothing is frozen; a factory mark is read only when a creation needs
// one. It is used by one goroutine, for one EVM.
type guard struct {
	vm.StateDB

	evm  *vm.EVM
	sys  *system.State           // read access to the registry
	base vm.PrecompiledContracts // the fork's and the system contracts; never changed

	// The frozen set as last read; stale: to be read again before the
	// next message. frozenPcs is base with a reverting entry per frozen
	// address (base itself while nothing is frozen); it is never changed
	// either, a message that must add to it works on a copy.
	stale     bool
	frozen    map[common.Address]struct{} // nil while nothing is frozen
	frozenPcs vm.PrecompiledContracts

	// Per message (reset by begin).
	pcs        vm.PrecompiledContracts     // the map the EVM runs: frozenPcs, or the message's copy of it
	owned      bool                        // pcs is the message's copy, which it may change
	delegators map[common.Address]struct{} // in pcs because their designator points at a frozen address
	deployer   bool                        // the sender holds deploy: any frame may create
	breach     error                       // the first rule broken where no frame could fail
	off        bool                        // while a doomed message runs
}

// newGuard wraps inner for evm, whose system contracts are sys. Set
// evm.StateDB to the guard before the first message.
func newGuard(evm *vm.EVM, inner vm.StateDB, contracts *system.Contracts, sys *system.State) *guard {
	g := &guard{StateDB: inner, evm: evm, sys: sys, base: contracts.Precompiles(), stale: true}
	g.frozenPcs = g.base
	g.setPrecompiles(g.base, false)
	return g
}

// begin prepares the guard for the next message, of a sender that may or
// may not create contracts itself.
func (g *guard) begin(deployer bool) {
	g.deployer, g.breach, g.off, g.delegators = deployer, nil, false, nil
	if g.stale {
		g.stale = false
		g.readFrozen()
	}
	g.setPrecompiles(g.frozenPcs, false)
}

// readFrozen reads the frozen set from the registry.
func (g *guard) readFrozen() {
	if g.sys.FrozenCount() == 0 {
		g.frozen, g.frozenPcs = nil, g.base
		return
	}
	list := g.sys.Frozen()
	g.frozen = make(map[common.Address]struct{}, len(list))
	g.frozenPcs = maps.Clone(g.base)
	for _, a := range list {
		g.frozen[a] = struct{}{}
		g.frozenPcs[a] = frozenCode{addr: a, target: a}
	}
}

func (g *guard) setPrecompiles(pcs vm.PrecompiledContracts, owned bool) {
	g.pcs, g.owned = pcs, owned
	g.evm.SetPrecompiles(pcs)
}

// SetState marks the frozen set stale when the registry's storage changes.
func (g *guard) SetState(addr common.Address, key, value common.Hash) common.Hash {
	if addr == system.RegistryAddress {
		g.stale = true
	}
	return g.StateDB.SetState(addr, key, value)
}

func (g *guard) isFrozen(a common.Address) bool {
	_, ok := g.frozen[a]
	return ok
}

// GetCode watches delegation designators. go-ethereum v1.17.10 reads the
// code of the callee, through this StateDB, before it runs any frame that
// could execute code through a designator: every CALL, CALLCODE,
// DELEGATECALL and STATICCALL opcode prices the delegation in its dynamic
// gas function (makeCallVariantGasCallEIP7702 in core/vm/operations_acl.go,
// the dynamic gas of all four since Prague, enable7702 in eips.go), and a
// transaction's top frame does the same in stateTransition.executeCall
// (core/state_transition.go) to warm the target; only then does
// evm.Call / CallCode / DelegateCall / StaticCall look the callee up in
// the precompile map (core/vm/evm.go). An account whose designator points
// at a frozen address is entered into the message's map here, and taken
// out again when its designator no longer does, so that the lookup that
// follows finds the reverting precompile. Charter's chains run the forks
// through Osaka; Amsterdam's top frame no longer reads the target's code
// (executeCall), so enabling it needs another hook there.
// TestFrozenDelegationTarget (a direct call and a forwarded one) fails if
// a go-ethereum upgrade changes this order.
func (g *guard) GetCode(addr common.Address) []byte {
	code := g.StateDB.GetCode(addr)
	if g.frozen == nil || g.off {
		return code
	}
	target, ok := types.ParseDelegation(code)
	switch {
	case ok && g.isFrozen(target) && !g.isFrozen(addr):
		if g.delegators == nil {
			g.delegators = map[common.Address]struct{}{}
		}
		g.delegators[addr] = struct{}{}
		if !g.owned {
			g.setPrecompiles(maps.Clone(g.pcs), true)
		}
		g.pcs[addr] = frozenCode{addr: addr, target: target}
	case !ok || !g.isFrozen(target):
		if _, was := g.delegators[addr]; was {
			delete(g.delegators, addr)
			delete(g.pcs, addr)
		}
	}
	return code
}

// SetNonce watches creations: go-ethereum raises the creator's nonce with
// reason NonceChangeContractCreator in evm.create, for CREATE, CREATE2 and
// a creation transaction alike, once the creation's own checks passed.
func (g *guard) SetNonce(addr common.Address, nonce uint64, reason tracing.NonceChangeReason) {
	g.StateDB.SetNonce(addr, nonce, reason)
	if reason != tracing.NonceChangeContractCreator || g.deployer || g.off || g.breach != nil {
		return
	}
	if !g.sys.IsFactory(addr) {
		g.breach = fmt.Errorf("%w: %s creates a contract, but the transaction's sender lacks role deploy and %s is not a factory", system.ErrNotPermitted, addr.Hex(), addr.Hex())
	}
}

// CreateContract watches creations at a frozen address (a CREATE2 address
// governance froze before anything was there).
func (g *guard) CreateContract(addr common.Address) {
	g.StateDB.CreateContract(addr)
	if g.frozen != nil && !g.off && g.breach == nil && g.isFrozen(addr) {
		g.breach = fmt.Errorf("%w: a contract would be created at frozen address %s", system.ErrNotPermitted, addr.Hex())
	}
}

// AddBalance watches SELFDESTRUCT beneficiaries. Other value that reaches
// a frozen address comes with a call to it, whose frame reverts (the
// precompile), or with a creation at it (CreateContract). Fees paid to a
// frozen coinbase are not a transfer of the transaction and go through.
func (g *guard) AddBalance(addr common.Address, amount *uint256.Int, reason tracing.BalanceChangeReason) uint256.Int {
	prev := g.StateDB.AddBalance(addr, amount, reason)
	if g.frozen != nil && !g.off && g.breach == nil && reason == tracing.BalanceIncreaseSelfdestruct && !amount.IsZero() && g.isFrozen(addr) {
		g.breach = fmt.Errorf("%w: SELFDESTRUCT pays frozen beneficiary %s", system.ErrNotPermitted, addr.Hex())
	}
	return prev
}

// apply runs msg on the guard's EVM, on st (the state under the guard).
// A message that breached a rule at a frame that could not fail alone is
// reverted and run again doomed: as a call (to its recipient, or for a
// creation to the address it would have created) that fails in its first
// frame with the breach as its error and spends all its gas. The
// transaction is then a failed one like any other: its sender pays for
// all its gas and its nonce moves on, nothing else changes. Errors are
// those of core.ApplyMessage: the message cannot be part of a block.
func (g *guard) apply(st vm.StateDB, msg *core.Message, gp *core.GasPool) (*core.ExecutionResult, error) {
	snap, gpSnap := st.Snapshot(), gp.Snapshot()
	res, err := core.ApplyMessage(g.evm, msg, gp)
	if err != nil || g.breach == nil {
		return res, err
	}
	breach := g.breach
	st.RevertToSnapshot(snap)
	gp.Set(gpSnap)
	doomed := *msg
	to := crypto.CreateAddress(msg.From, st.GetNonce(msg.From))
	if msg.To != nil {
		to = *msg.To
	}
	doomed.To = &to
	pcs := g.pcs
	doom := maps.Clone(pcs)
	doom[to] = doomCode{breach}
	g.off = true
	g.evm.SetPrecompiles(doom)
	res, err = core.ApplyMessage(g.evm, &doomed, gp)
	g.setPrecompiles(pcs, g.owned)
	if err != nil {
		// The message ran once with this state and gas; its doomed form
		// needs no more of either.
		return nil, fmt.Errorf("doomed run of a message that broke a rule (%v): %w", breach, err)
	}
	return res, nil
}

// frozenCode answers for a frozen address, or for an account whose
// delegation designator points at one: every frame that would execute it
// reverts with the reason, and its gas goes back to the caller.
type frozenCode struct{ addr, target common.Address }

func (frozenCode) RequiredGas([]byte) uint64 { return 0 }
func (frozenCode) Name() string              { return "CHARTER_FROZEN" }

func (f frozenCode) Run([]byte) ([]byte, error) {
	reason := fmt.Sprintf("%v: %s is frozen", system.ErrNotPermitted, f.addr.Hex())
	if f.target != f.addr {
		reason = fmt.Sprintf("%v: %s delegates to %s, which is frozen", system.ErrNotPermitted, f.addr.Hex(), f.target.Hex())
	}
	// The frame must fail with exactly vm.ErrExecutionReverted for the
	// EVM to treat it as a revert (gas returned, data kept).
	return revertData(reason), vm.ErrExecutionReverted
}

// doomCode is the first frame of a doomed message: it fails with the
// breach, not as a revert, so that the frame spends all its gas.
type doomCode struct{ breach error }

func (doomCode) RequiredGas([]byte) uint64    { return 0 }
func (doomCode) Name() string                 { return "CHARTER_DOOMED" }
func (d doomCode) Run([]byte) ([]byte, error) { return nil, d.breach }

var errorSelector = crypto.Keccak256([]byte("Error(string)"))[:4]

// revertData is the ABI encoding of Error(reason), as Solidity reverts.
func revertData(reason string) []byte {
	t, _ := abi.NewType("string", "", nil)
	packed, err := abi.Arguments{{Type: t}}.Pack(reason)
	if err != nil {
		panic(err)
	}
	return append(slices.Clone(errorSelector), packed...)
}
