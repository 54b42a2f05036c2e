// Package rpc serves the Ethereum JSON-RPC (eth, net, web3, txpool,
// personal, charter, and Besu's privacy API priv and eea on a node that
// takes part in private transactions) over go-ethereum's rpc server, for
// HTTP and WebSocket on one port, within the bounds of a Config. Handlers return a result and
// a typed error; the error types below carry the JSON-RPC code, so one
// place decides codes.
package rpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/event"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/events"
	"github.com/charter-ledger/charter/internal/txpool"
)

// Backend is everything the namespaces read, execute and submit: the node
// implements it over its ledger, pool, executor, engine and event bus; the
// tests implement it in memory.
//
// Every method is safe for concurrent use. Headers, blocks, receipts and
// transactions returned are shared: callers must not modify them. A
// StateDB returned by StateAt is the caller's alone, to read and to run
// calls on (changes are never committed). Lookups of what does not exist
// answer nil (or ok false) rather than an error; errors are failures of
// the store.
type Backend interface {
	// ChainSpec is the chain's genesis spec: chain id, fees, limits.
	ChainSpec() *chain.Spec
	// CurrentHeader is the newest committed header; never nil.
	CurrentHeader() *types.Header
	// FinalizedHeader is the newest header the consensus engine holds
	// final (the "safe" and "finalized" tags); nil: use CurrentHeader. One
	// above CurrentHeader is not used (CurrentHeader is).
	FinalizedHeader() *types.Header
	// HeaderByNumber, BlockByNumber and BlockByHash read committed blocks.
	HeaderByNumber(number uint64) *types.Header
	BlockByNumber(number uint64) *types.Block
	BlockByHash(hash common.Hash) *types.Block
	// HeaderByHash reads a committed header, also that of a block whose
	// body the node no longer keeps.
	HeaderByHash(hash common.Hash) *types.Header
	// BodyKept is nil when the node holds the body and receipts of
	// committed block number (or does not know it), else the error that
	// says why not: an observer keeps those of its last --history.bodies
	// blocks only. Its text becomes the JSON-RPC error's message.
	BodyKept(number uint64) error
	// GetReceipts are the receipts of a committed block, with every
	// derived field (block hash, indexes, log positions) filled.
	GetReceipts(number uint64) (types.Receipts, error)
	// GetTransaction locates a committed transaction.
	GetTransaction(hash common.Hash) (number uint64, index int, ok bool)
	// StateAt opens the world state with the given root.
	StateAt(root common.Hash) (*state.StateDB, error)

	// SendTx admits a signed transaction to the pool; the error says why
	// not (it becomes the -32000 message).
	SendTx(tx *types.Transaction) error
	// PoolNonce is the next nonce of addr, counting its pending transactions.
	PoolNonce(addr common.Address) uint64
	// PoolTransaction is a transaction waiting in the pool, or nil.
	PoolTransaction(hash common.Hash) *types.Transaction
	// PoolStats counts the executable (pending) and future (queued) transactions.
	PoolStats() (pending, queued int)
	// PoolContent lists them by sender, in nonce order.
	PoolContent() (pending, queued map[common.Address][]*types.Transaction)

	// Call runs msg on st (a state the caller throws away) in the context
	// of header h, until ctx ends. Nonce and EOA checks are skipped as
	// eth_call does. A reverted or failed execution is a result, not an
	// error.
	Call(ctx context.Context, h *types.Header, st *state.StateDB, msg *core.Message) (*core.ExecutionResult, error)
	// EstimateGas finds the lowest gas limit up to gasCap with which msg
	// succeeds; a message that fails for another reason than gas returns
	// the failing result and a nil error, one that fails even with gasCap
	// an error that wraps ErrGasCapReached.
	EstimateGas(ctx context.Context, h *types.Header, st *state.StateDB, msg *core.Message, gasCap uint64) (uint64, *core.ExecutionResult, error)

	// SubscribeChainEvent delivers every committed block, in height order;
	// SubscribeNewTxsEvent every transaction that becomes pending. The
	// subscriber must keep reading: the publisher waits for it.
	SubscribeChainEvent(ch chan<- events.ChainEvent) event.Subscription
	SubscribeNewTxsEvent(ch chan<- txpool.NewTxsEvent) event.Subscription

	// DevAccounts are the unlocked development accounts (charter dev
	// only; empty on a network node).
	DevAccounts() []chain.DevAccount
}

// LogIndexBackend is implemented by a Backend whose node may keep an
// index of its public logs; eth_getLogs and log filters answer from it
// when LogIndex returns non-nil and it holds every block of the range.
type LogIndexBackend interface {
	LogIndex() LogIndex
}

// LogIndex finds the public logs of committed blocks without reading
// their receipts. Its answers are those of the receipts: the same logs,
// fields and order.
type LogIndex interface {
	// LogsIndexed is the last block the index holds, and false while it
	// holds none.
	LogsIndexed() (uint64, bool)
	// FilterLogs returns the logs of blocks from..to (inclusive) emitted
	// by one of addresses (any if empty) that have at least len(topics)
	// topics, the i-th one of topics[i] (any if empty), in chain order,
	// and at most max+1 of them (more than max: too many).
	FilterLogs(ctx context.Context, from, to uint64, addresses []common.Address, topics [][]common.Hash, max int) ([]*types.Log, error)
}

// JSON-RPC error codes.
const (
	codeInvalidParams = -32602
	codeInternal      = -32603
	codeServer        = -32000 // rejected transaction, unknown block, query limits
	codeLimit         = -32005 // a per-client or per-batch bound is reached (EIP-1474 "limit exceeded")
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

func limitError(format string, args ...any) error {
	return &Error{Code: codeLimit, Msg: fmt.Sprintf(format, args...)}
}

func internalError(err error) error {
	return &Error{Code: codeInternal, Msg: err.Error()}
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

// ErrGasCapReached is what Backend.EstimateGas wraps when a message runs
// out of gas even with the whole cap.
var ErrGasCapReached = errors.New("gas required exceeds allowance")

var errUnknownBlock = &Error{Code: codeServer, Msg: "header not found"}

// header resolves a block number, tag or hash to a committed header.
func header(b Backend, bnh gethrpc.BlockNumberOrHash) (*types.Header, error) {
	if hash, ok := bnh.Hash(); ok {
		h := b.HeaderByHash(hash)
		if h == nil {
			return nil, errUnknownBlock
		}
		return h, nil
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
		return b.CurrentHeader(), nil
	case gethrpc.SafeBlockNumber, gethrpc.FinalizedBlockNumber:
		// Never above the committed head: a block this node does not
		// hold cannot be read at.
		cur := b.CurrentHeader()
		if h := b.FinalizedHeader(); h != nil && h.Number.Cmp(cur.Number) <= 0 {
			return h, nil
		}
		return cur, nil
	case gethrpc.EarliestBlockNumber:
		num = 0
	}
	if num < 0 {
		return nil, invalidParams("invalid argument: unknown block tag %d", num)
	}
	h := b.HeaderByNumber(uint64(num))
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
	return bodyOf(b, h)
}

// bodyOf reads the block of a committed header: an error naming the
// retention when the node pruned its body, nil for a block it does not
// know.
func bodyOf(b Backend, h *types.Header) (*types.Block, error) {
	if err := bodyKept(b, h.Number.Uint64()); err != nil {
		return nil, err
	}
	return b.BlockByNumber(h.Number.Uint64()), nil
}

// bodyKept is Backend.BodyKept as a JSON-RPC error.
func bodyKept(b Backend, number uint64) error {
	if err := b.BodyKept(number); err != nil {
		return &Error{Code: codeServer, Msg: err.Error()}
	}
	return nil
}

// blockByHash reads a committed block by hash: nil for an unknown one,
// an error naming the retention for one whose body the node pruned.
func blockByHash(b Backend, hash common.Hash) (*types.Block, error) {
	if blk := b.BlockByHash(hash); blk != nil {
		return blk, nil
	}
	h := b.HeaderByHash(hash)
	if h == nil {
		return nil, nil
	}
	return bodyOf(b, h)
}

var errNoState = errors.New("state not available")

// stateAt opens the state after the given block.
func stateAt(b Backend, bnh gethrpc.BlockNumberOrHash) (*types.Header, stateDB, error) {
	h, err := header(b, bnh)
	if err != nil {
		return nil, nil, err
	}
	st, err := b.StateAt(h.Root)
	// A state outside the window the node keeps (ledger.StateNotKeptError).
	var window interface{ StateWindow() uint64 }
	if errors.As(err, &window) {
		return nil, nil, &Error{Code: codeServer, Msg: fmt.Sprintf("state of block %d is not kept: this node keeps the last %d blocks (--state.history)",
			h.Number.Uint64(), window.StateWindow())}
	}
	if err != nil {
		return nil, nil, &Error{Code: codeServer, Msg: fmt.Sprintf("%v: block %d: %v", errNoState, h.Number.Uint64(), err)}
	}
	return h, st, nil
}

// readFailed reports a read of st that failed: go-ethereum's StateDB
// answers it with a zero value and records the error. A state of an
// earlier height becomes unreadable when the node writes the head's
// state to disk while it is read; asked again, the call reads a state
// that is there.
func readFailed(h *types.Header, st stateDB) error {
	if err := st.Error(); err != nil {
		return &Error{Code: codeServer, Msg: fmt.Sprintf("%v: block %d could not be read (%v); ask again", errNoState, h.Number.Uint64(), err)}
	}
	return nil
}

// latest is the default block argument.
func latest(bnh *gethrpc.BlockNumberOrHash) gethrpc.BlockNumberOrHash {
	if bnh == nil {
		return gethrpc.BlockNumberOrHashWithNumber(gethrpc.LatestBlockNumber)
	}
	return *bnh
}
