package execution

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/params"

	"github.com/charter-ledger/charter/internal/system"
)

// Call runs a message on st in the context of header h without
// committing anything (st is modified: pass a copy you can throw away).
// Nonce and EOA checks are skipped, as eth_call does; a zero gas price is
// allowed whatever the base fee.
func (e *Executor) Call(ctx context.Context, h *types.Header, st *state.StateDB, msg *core.Message) (*core.ExecutionResult, error) {
	evm := vm.NewEVM(e.BlockContext(h), st, e.config, vm.Config{NoBaseFee: true})
	contracts := system.Install(evm)
	contracts.SetCall(system.Call{From: msg.From, To: msg.To, Data: msg.Data, Value: msg.Value})
	// The rules at every frame hold in a call as in a block, so that a
	// call predicts the transaction; who may send it is not checked.
	sys := system.Read(st)
	g := newGuard(evm, st, contracts, sys)
	evm.StateDB = g
	g.begin(sys.SenderOf(msg.From).MayDeploy())
	stop := context.AfterFunc(ctx, evm.Cancel)
	defer stop()
	msg.SkipNonceCheck().SkipEOACheck().SkipGasLimitCapCheck()
	st.SetTxContext(common.Hash{}, 0, 0)
	res, err := g.apply(st, msg, core.NewGasPool(math.MaxUint64))
	if err != nil {
		return nil, err
	}
	if evm.Cancelled() {
		return nil, fmt.Errorf("execution aborted: %w", ctx.Err())
	}
	return res, nil
}

// ErrGasCapReached is returned by EstimateGas when even the cap fails.
var ErrGasCapReached = errors.New("gas required exceeds allowance")

// EstimateGas finds the lowest gas limit with which msg succeeds, by binary
// search between the intrinsic gas and cap. A message that fails for a
// reason other than gas returns the failing result (a revert carries its
// data) with a nil error, so the caller can report it.
func (e *Executor) EstimateGas(ctx context.Context, h *types.Header, st *state.StateDB, msg *core.Message, cap uint64) (uint64, *core.ExecutionResult, error) {
	run := func(gas uint64) (*core.ExecutionResult, error) {
		m := *msg
		m.GasLimit = gas
		return e.Call(ctx, h, st.Copy(), &m)
	}
	hi := cap
	if msg.GasLimit != 0 && msg.GasLimit < hi {
		hi = msg.GasLimit
	}
	res, err := run(hi)
	if err != nil {
		return 0, nil, err
	}
	if res.Failed() {
		if errors.Is(res.Err, vm.ErrOutOfGas) || errors.Is(res.Err, vm.ErrCodeStoreOutOfGas) {
			return 0, nil, fmt.Errorf("%w (%d)", ErrGasCapReached, hi)
		}
		return 0, res, nil
	}
	// The gas actually used (before refunds) is the usual answer; check it
	// first to skip the search in the common case.
	lo := params.TxGas - 1
	if guess := res.MaxUsedGas * 64 / 63; guess < hi {
		if r, err := run(guess); err == nil && !r.Failed() {
			hi = guess
		} else {
			lo = max(lo, res.MaxUsedGas-1)
		}
	}
	for lo+1 < hi {
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		mid := lo + (hi-lo)/2
		r, err := run(mid)
		if err != nil && !errors.Is(err, core.ErrIntrinsicGas) && !errors.Is(err, core.ErrFloorDataGas) {
			return 0, nil, err
		}
		if err != nil || r.Failed() {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi, nil, nil
}
