// Package rpc serves the Ethereum JSON-RPC (eth, net, web3, txpool) over
// go-ethereum's rpc server, for HTTP and WebSocket on one port. Handlers
// return a result and a typed error; the error types below carry the
// JSON-RPC code, so one place decides codes.
package rpc

import (
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/events"
	"github.com/charter-ledger/charter/internal/execution"
	"github.com/charter-ledger/charter/internal/ledger"
	"github.com/charter-ledger/charter/internal/txpool"
)

// Backend is what the APIs read and submit to. The node implements it.
type Backend interface {
	Spec() *chain.Spec
	Ledger() *ledger.Ledger
	Pool() *txpool.Pool
	Executor() *execution.Executor
	Bus() *events.Bus
	Engine() consensus.Engine
	// DevAccounts are the unlocked development accounts (dev mode only).
	DevAccounts() []chain.DevAccount
}

// JSON-RPC error codes.
const (
	codeInvalidParams = -32602
	codeInternal      = -32603
	codeServer        = -32000 // rejected transaction, unknown block, limits
	codeRevert        = 3
)

// Error is a JSON-RPC error with a code and optional data.
type Error struct {
	Code int
	Msg  string
	Data any
}

func (e *Error) Error() string  { return e.Msg }
func (e *Error) ErrorCode() int { return e.Code }

// ErrorData is the error's data member (nil: none).
func (e *Error) ErrorData() any { return e.Data }

func invalidParams(format string, args ...any) error {
	return &Error{Code: codeInvalidParams, Msg: fmt.Sprintf(format, args...)}
}

func serverError(format string, args ...any) error {
	return &Error{Code: codeServer, Msg: fmt.Sprintf(format, args...)}
}

// revertError reports a reverted call the way Ethereum clients expect:
// code 3, "execution reverted" with the decoded reason, the raw revert data
// as hex in data (libraries decode custom errors from it).
func revertError(ret []byte) error {
	msg := vm.ErrExecutionReverted.Error()
	if reason, err := abi.UnpackRevert(ret); err == nil {
		msg += ": " + reason
	}
	return &Error{Code: codeRevert, Msg: msg, Data: hexutil.Encode(ret)}
}

var errUnknownBlock = &Error{Code: codeServer, Msg: "header not found"}

// header resolves a block number, tag or hash to a committed header.
func header(b Backend, bnh gethrpc.BlockNumberOrHash) (*types.Header, error) {
	if hash, ok := bnh.Hash(); ok {
		blk := b.Ledger().BlockByHash(hash)
		if blk == nil {
			return nil, errUnknownBlock
		}
		return blk.Header(), nil
	}
	num, ok := bnh.Number()
	if !ok {
		return nil, invalidParams("invalid argument: block number or hash required")
	}
	return headerByNumber(b, num)
}

func headerByNumber(b Backend, num gethrpc.BlockNumber) (*types.Header, error) {
	switch num {
	case gethrpc.LatestBlockNumber, gethrpc.PendingBlockNumber:
		return b.Ledger().Head(), nil
	case gethrpc.SafeBlockNumber, gethrpc.FinalizedBlockNumber:
		if h := b.Engine().Head(0); h != nil {
			return h, nil
		}
		return b.Ledger().Head(), nil
	case gethrpc.EarliestBlockNumber:
		return b.Ledger().Genesis().Header(), nil
	}
	if num < 0 {
		return nil, invalidParams("invalid argument: unknown block tag %d", num)
	}
	h := b.Ledger().HeaderByNumber(uint64(num))
	if h == nil {
		return nil, errUnknownBlock
	}
	return h, nil
}

func blockByNumber(b Backend, num gethrpc.BlockNumber) (*types.Block, error) {
	h, err := headerByNumber(b, num)
	if err != nil {
		return nil, err
	}
	return b.Ledger().BlockByNumber(h.Number.Uint64()), nil
}

var errNoState = errors.New("state not available")

// stateAt opens the state after the given block.
func stateAt(b Backend, bnh gethrpc.BlockNumberOrHash) (*types.Header, stateDB, error) {
	h, err := header(b, bnh)
	if err != nil {
		return nil, nil, err
	}
	st, err := b.Ledger().StateAt(h.Root)
	if err != nil {
		return nil, nil, &Error{Code: codeServer, Msg: fmt.Sprintf("%v: block %d: %v", errNoState, h.Number.Uint64(), err)}
	}
	return h, st, nil
}

// latest is the default block argument.
func latest(bnh *gethrpc.BlockNumberOrHash) gethrpc.BlockNumberOrHash {
	if bnh == nil {
		return gethrpc.BlockNumberOrHashWithNumber(gethrpc.LatestBlockNumber)
	}
	return *bnh
}

var zeroAddress common.Address
