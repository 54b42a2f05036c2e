package rpc

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/holiman/uint256"
)

// Bounds of single requests of the eth namespace.
const (
	feeHistoryMax = 1024
	maxProofKeys  = 1024
)

// EthAPI is the eth namespace.
type EthAPI struct {
	b       Backend
	cfg     *Config
	signer  types.Signer
	filters *filterSystem
	budgets *budgets
}

// ChainId is eth_chainId.
func (api *EthAPI) ChainId() hexutil.Uint64 { return hexutil.Uint64(api.b.ChainSpec().ChainID()) }

// BlockNumber is eth_blockNumber.
func (api *EthAPI) BlockNumber() hexutil.Uint64 {
	return hexutil.Uint64(api.b.CurrentHeader().Number.Uint64())
}

// Syncing is eth_syncing: a node that serves RPC answers from its own
// committed chain, so false.
func (api *EthAPI) Syncing() bool { return false }

// Mining is eth_mining.
func (api *EthAPI) Mining() bool { return false }

// Coinbase is eth_coinbase: the fee recipient of blocks this node seals.
func (api *EthAPI) Coinbase() common.Address { return api.b.CurrentHeader().Coinbase }

// Accounts is eth_accounts: the unlocked development accounts.
func (api *EthAPI) Accounts() []common.Address {
	accts := api.b.DevAccounts()
	out := make([]common.Address, len(accts))
	for i, a := range accts {
		out[i] = a.Address
	}
	return out
}

// GetBalance is eth_getBalance.
func (api *EthAPI) GetBalance(addr common.Address, bnh *gethrpc.BlockNumberOrHash) (*hexutil.Big, error) {
	h, st, err := stateAt(api.b, latest(bnh))
	if err != nil {
		return nil, err
	}
	b := st.GetBalance(addr)
	if err := readFailed(h, st); err != nil {
		return nil, err
	}
	return (*hexutil.Big)(b.ToBig()), nil
}

// GetTransactionCount is eth_getTransactionCount; "pending" counts the
// sender's transactions waiting in the pool.
func (api *EthAPI) GetTransactionCount(addr common.Address, bnh *gethrpc.BlockNumberOrHash) (hexutil.Uint64, error) {
	if bnh != nil {
		if n, ok := bnh.Number(); ok && n == gethrpc.PendingBlockNumber {
			return hexutil.Uint64(api.b.PoolNonce(addr)), nil
		}
	}
	h, st, err := stateAt(api.b, latest(bnh))
	if err != nil {
		return 0, err
	}
	n := st.GetNonce(addr)
	if err := readFailed(h, st); err != nil {
		return 0, err
	}
	return hexutil.Uint64(n), nil
}

// GetCode is eth_getCode.
func (api *EthAPI) GetCode(addr common.Address, bnh *gethrpc.BlockNumberOrHash) (hexutil.Bytes, error) {
	h, st, err := stateAt(api.b, latest(bnh))
	if err != nil {
		return nil, err
	}
	code := st.GetCode(addr)
	if err := readFailed(h, st); err != nil {
		return nil, err
	}
	return code, nil
}

// GetStorageAt is eth_getStorageAt.
func (api *EthAPI) GetStorageAt(addr common.Address, slot string, bnh *gethrpc.BlockNumberOrHash) (hexutil.Bytes, error) {
	key, err := decodeStorageKey(slot)
	if err != nil {
		return nil, invalidParams("invalid argument 1: %v", err)
	}
	h, st, err := stateAt(api.b, latest(bnh))
	if err != nil {
		return nil, err
	}
	v := st.GetState(addr, key)
	if err := readFailed(h, st); err != nil {
		return nil, err
	}
	return v[:], nil
}

func decodeStorageKey(s string) (common.Hash, error) {
	if len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X") {
		s = s[2:]
	}
	if len(s) > 64 {
		return common.Hash{}, errors.New("storage key longer than 32 bytes")
	}
	if len(s)%2 == 1 {
		s = "0" + s
	}
	b, err := hexutil.Decode("0x" + s)
	if err != nil && s != "" {
		return common.Hash{}, fmt.Errorf("storage key is not hex: %v", err)
	}
	return common.BytesToHash(b), nil
}

// GetBlockByNumber is eth_getBlockByNumber; null for an unknown block.
func (api *EthAPI) GetBlockByNumber(num gethrpc.BlockNumber, full bool) (map[string]any, error) {
	blk, err := blockByNumber(api.b, num)
	if err != nil || blk == nil {
		if err == errUnknownBlock {
			return nil, nil
		}
		return nil, err
	}
	return marshalBlock(blk, full, api.signer), nil
}

// GetBlockByHash is eth_getBlockByHash; null for an unknown block.
func (api *EthAPI) GetBlockByHash(hash common.Hash, full bool) (map[string]any, error) {
	blk, err := blockByHash(api.b, hash)
	if err != nil || blk == nil {
		return nil, err
	}
	return marshalBlock(blk, full, api.signer), nil
}

// GetBlockTransactionCountByNumber is eth_getBlockTransactionCountByNumber.
func (api *EthAPI) GetBlockTransactionCountByNumber(num gethrpc.BlockNumber) (*hexutil.Uint, error) {
	blk, err := blockByNumber(api.b, num)
	if err != nil || blk == nil {
		if err == errUnknownBlock {
			return nil, nil
		}
		return nil, err
	}
	n := hexutil.Uint(len(blk.Transactions()))
	return &n, nil
}

// GetBlockTransactionCountByHash is eth_getBlockTransactionCountByHash.
func (api *EthAPI) GetBlockTransactionCountByHash(hash common.Hash) (*hexutil.Uint, error) {
	blk, err := blockByHash(api.b, hash)
	if err != nil || blk == nil {
		return nil, err
	}
	n := hexutil.Uint(len(blk.Transactions()))
	return &n, nil
}

// GetUncleCountByBlockNumber is eth_getUncleCountByBlockNumber: always 0.
func (api *EthAPI) GetUncleCountByBlockNumber(gethrpc.BlockNumber) hexutil.Uint { return 0 }

// GetUncleCountByBlockHash is eth_getUncleCountByBlockHash: always 0.
func (api *EthAPI) GetUncleCountByBlockHash(common.Hash) hexutil.Uint { return 0 }

// GetBlockReceipts is eth_getBlockReceipts.
func (api *EthAPI) GetBlockReceipts(ctx context.Context, bnh gethrpc.BlockNumberOrHash) ([]map[string]any, error) {
	h, err := header(api.b, bnh)
	if err != nil {
		if err == errUnknownBlock {
			return nil, nil
		}
		return nil, err
	}
	if err := bodyKept(api.b, h.Number.Uint64()); err != nil {
		return nil, err
	}
	_, done, err := api.heavy(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	blk := api.b.BlockByNumber(h.Number.Uint64())
	receipts, err := api.b.GetReceipts(h.Number.Uint64())
	if err != nil {
		return nil, internalError(err)
	}
	if blk == nil || len(receipts) != len(blk.Transactions()) {
		return nil, internalError(fmt.Errorf("block %d: %d receipts for its transactions", h.Number.Uint64(), len(receipts)))
	}
	out := make([]map[string]any, len(receipts))
	for i, r := range receipts {
		out[i] = marshalReceipt(r, blk.Transactions()[i], api.signer)
	}
	return out, nil
}

// GetTransactionByHash is eth_getTransactionByHash: committed or pending.
func (api *EthAPI) GetTransactionByHash(hash common.Hash) map[string]any {
	if num, idx, ok := api.b.GetTransaction(hash); ok {
		blk := api.b.BlockByNumber(num)
		if blk != nil && idx < len(blk.Transactions()) {
			return marshalTx(blk.Transactions()[idx], blk.Hash(), num, uint64(idx), blk.BaseFee(), api.signer)
		}
	}
	if tx := api.b.PoolTransaction(hash); tx != nil {
		return marshalTx(tx, common.Hash{}, 0, 0, nil, api.signer)
	}
	return nil
}

// GetTransactionByBlockNumberAndIndex is eth_getTransactionByBlockNumberAndIndex.
func (api *EthAPI) GetTransactionByBlockNumberAndIndex(num gethrpc.BlockNumber, index hexutil.Uint) (map[string]any, error) {
	blk, err := blockByNumber(api.b, num)
	if err != nil || blk == nil || int(index) >= len(blk.Transactions()) {
		if err == errUnknownBlock {
			err = nil
		}
		return nil, err
	}
	return marshalTx(blk.Transactions()[index], blk.Hash(), blk.NumberU64(), uint64(index), blk.BaseFee(), api.signer), nil
}

// GetTransactionByBlockHashAndIndex is eth_getTransactionByBlockHashAndIndex.
func (api *EthAPI) GetTransactionByBlockHashAndIndex(hash common.Hash, index hexutil.Uint) (map[string]any, error) {
	blk, err := blockByHash(api.b, hash)
	if err != nil || blk == nil || int(index) >= len(blk.Transactions()) {
		return nil, err
	}
	return marshalTx(blk.Transactions()[index], blk.Hash(), blk.NumberU64(), uint64(index), blk.BaseFee(), api.signer), nil
}

// GetTransactionReceipt is eth_getTransactionReceipt; null until committed.
func (api *EthAPI) GetTransactionReceipt(hash common.Hash) (map[string]any, error) {
	num, idx, ok := api.b.GetTransaction(hash)
	if !ok {
		return nil, nil
	}
	if err := bodyKept(api.b, num); err != nil {
		return nil, err // pruned since the lookup
	}
	blk := api.b.BlockByNumber(num)
	receipts, err := api.b.GetReceipts(num)
	if err != nil {
		return nil, internalError(err)
	}
	if blk == nil || idx >= len(receipts) || idx >= len(blk.Transactions()) {
		return nil, &Error{Code: codeInternal, Msg: fmt.Sprintf("receipt %s: index %d out of range in block %d", hash, idx, num)}
	}
	return marshalReceipt(receipts[idx], blk.Transactions()[idx], api.signer), nil
}

// SendRawTransaction is eth_sendRawTransaction.
func (api *EthAPI) SendRawTransaction(input hexutil.Bytes) (common.Hash, error) {
	if max := api.b.ChainSpec().MaxTxBytes; uint64(len(input)) > max {
		return common.Hash{}, serverError("oversized data: transaction of %d bytes, limit %d", len(input), max)
	}
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(input); err != nil {
		return common.Hash{}, invalidParams("invalid argument 0: transaction does not decode: %v", err)
	}
	return api.submit(tx)
}

// submit hands a signed transaction to the pool. One that is in a block
// already is answered as such: a client that re-sends the very same
// signed transaction (ethers reuses a cached nonce for 250 ms) learns
// that it went through, rather than "nonce too low". The pool refuses
// such a transaction (its nonce is used), so the transaction index is
// read only for refused ones, not on every submission.
func (api *EthAPI) submit(tx *types.Transaction) (common.Hash, error) {
	err := api.b.SendTx(tx)
	if err == nil {
		return tx.Hash(), nil
	}
	if num, _, ok := api.b.GetTransaction(tx.Hash()); ok {
		return common.Hash{}, serverError("already included in block %d: transaction %s", num, tx.Hash().Hex())
	}
	return common.Hash{}, serverError("%v", err)
}

// GasPrice is eth_gasPrice: the fixed base fee plus the minimum tip.
func (api *EthAPI) GasPrice() *hexutil.Big {
	s := api.b.ChainSpec()
	return (*hexutil.Big)(new(big.Int).Add(s.BaseFeeWei(), s.MinGasPriceWei()))
}

// MaxPriorityFeePerGas is eth_maxPriorityFeePerGas: the minimum tip the
// pool admits (zero by default: blocks are not auctioned).
func (api *EthAPI) MaxPriorityFeePerGas() *hexutil.Big {
	return (*hexutil.Big)(api.b.ChainSpec().MinGasPriceWei())
}

// BlobBaseFee is eth_blobBaseFee (blob transactions are not accepted).
func (api *EthAPI) BlobBaseFee() *hexutil.Big { return (*hexutil.Big)(big.NewInt(1)) }

// FeeHistoryResult is the answer of eth_feeHistory.
type FeeHistoryResult struct {
	OldestBlock      *hexutil.Big     `json:"oldestBlock"`
	Reward           [][]*hexutil.Big `json:"reward,omitempty"`
	BaseFee          []*hexutil.Big   `json:"baseFeePerGas,omitempty"`
	GasUsedRatio     []float64        `json:"gasUsedRatio"`
	BlobBaseFee      []*hexutil.Big   `json:"baseFeePerBlobGas,omitempty"`
	BlobGasUsedRatio []float64        `json:"blobGasUsedRatio,omitempty"`
}

// FeeHistory is eth_feeHistory.
func (api *EthAPI) FeeHistory(ctx context.Context, count decimalOrHex, newest gethrpc.BlockNumber, percentiles []float64) (*FeeHistoryResult, error) {
	if count == 0 {
		return &FeeHistoryResult{OldestBlock: (*hexutil.Big)(new(big.Int))}, nil
	}
	if count > feeHistoryMax {
		count = feeHistoryMax
	}
	for i, p := range percentiles {
		if p < 0 || p > 100 || (i > 0 && p < percentiles[i-1]) {
			return nil, invalidParams("invalid argument 2: reward percentiles must be ascending and within [0, 100]")
		}
	}
	last, err := headerByNumber(api.b, newest)
	if err != nil {
		return nil, err
	}
	_, done, err := api.heavy(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	end := last.Number.Uint64()
	first := uint64(0)
	if end+1 > uint64(count) {
		first = end + 1 - uint64(count)
	}
	res := &FeeHistoryResult{OldestBlock: (*hexutil.Big)(new(big.Int).SetUint64(first))}
	for n := first; n <= end; n++ {
		blk := api.b.BlockByNumber(n)
		if blk == nil {
			if err := bodyKept(api.b, n); err != nil {
				return nil, err
			}
			return nil, errUnknownBlock
		}
		res.BaseFee = append(res.BaseFee, (*hexutil.Big)(blk.BaseFee()))
		res.BlobBaseFee = append(res.BlobBaseFee, (*hexutil.Big)(big.NewInt(1)))
		res.GasUsedRatio = append(res.GasUsedRatio, float64(blk.GasUsed())/float64(blk.GasLimit()))
		res.BlobGasUsedRatio = append(res.BlobGasUsedRatio, 0)
		if len(percentiles) > 0 {
			rewards, err := api.rewards(blk, percentiles)
			if err != nil {
				return nil, err
			}
			res.Reward = append(res.Reward, rewards)
		}
	}
	// The base fee of the block after newest: fixed on this chain.
	res.BaseFee = append(res.BaseFee, (*hexutil.Big)(api.b.ChainSpec().BaseFeeWei()))
	res.BlobBaseFee = append(res.BlobBaseFee, (*hexutil.Big)(big.NewInt(1)))
	return res, nil
}

// rewards gives the effective tips at the given gas-weighted percentiles.
func (api *EthAPI) rewards(blk *types.Block, percentiles []float64) ([]*hexutil.Big, error) {
	out := make([]*hexutil.Big, len(percentiles))
	txs := blk.Transactions()
	if len(txs) == 0 {
		for i := range out {
			out[i] = (*hexutil.Big)(new(big.Int))
		}
		return out, nil
	}
	receipts, err := api.b.GetReceipts(blk.NumberU64())
	if err != nil {
		return nil, internalError(err)
	}
	if len(receipts) != len(txs) {
		return nil, internalError(fmt.Errorf("block %d: %d receipts for %d transactions", blk.NumberU64(), len(receipts), len(txs)))
	}
	type tipGas struct {
		tip *big.Int
		gas uint64
	}
	sorted := make([]tipGas, len(txs))
	for i, tx := range txs {
		sorted[i] = tipGas{tx.EffectiveGasTipValue(blk.BaseFee()), receipts[i].GasUsed}
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].tip.Cmp(sorted[j].tip) < 0 })
	var idx int
	sum := sorted[0].gas
	for i, p := range percentiles {
		threshold := uint64(float64(blk.GasUsed()) * p / 100)
		for sum < threshold && idx < len(sorted)-1 {
			idx++
			sum += sorted[idx].gas
		}
		out[i] = (*hexutil.Big)(sorted[idx].tip)
	}
	return out, nil
}

// TransactionArgs are the arguments of eth_call, eth_estimateGas and
// eth_sendTransaction.
type TransactionArgs struct {
	From                 *common.Address   `json:"from"`
	To                   *common.Address   `json:"to"`
	Gas                  *hexutil.Uint64   `json:"gas"`
	GasPrice             *hexutil.Big      `json:"gasPrice"`
	MaxFeePerGas         *hexutil.Big      `json:"maxFeePerGas"`
	MaxPriorityFeePerGas *hexutil.Big      `json:"maxPriorityFeePerGas"`
	Value                *hexutil.Big      `json:"value"`
	Nonce                *hexutil.Uint64   `json:"nonce"`
	Data                 *hexutil.Bytes    `json:"data"`
	Input                *hexutil.Bytes    `json:"input"`
	AccessList           *types.AccessList `json:"accessList,omitempty"`
	ChainID              *hexutil.Big      `json:"chainId,omitempty"`
	Type                 *hexutil.Uint64   `json:"type,omitempty"`
}

func (a *TransactionArgs) data() []byte {
	if a.Input != nil {
		return *a.Input
	}
	if a.Data != nil {
		return *a.Data
	}
	return nil
}

func (a *TransactionArgs) check() error {
	if a.Input != nil && a.Data != nil && string(*a.Input) != string(*a.Data) {
		return invalidParams("invalid argument 0: both \"data\" and \"input\" are set and differ")
	}
	if a.GasPrice != nil && (a.MaxFeePerGas != nil || a.MaxPriorityFeePerGas != nil) {
		return invalidParams("invalid argument 0: both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
	}
	for name, v := range map[string]*hexutil.Big{"gasPrice": a.GasPrice, "maxFeePerGas": a.MaxFeePerGas, "maxPriorityFeePerGas": a.MaxPriorityFeePerGas, "value": a.Value} {
		if v != nil && ((*big.Int)(v).Sign() < 0 || (*big.Int)(v).BitLen() > 256) {
			return invalidParams("invalid argument 0: %s out of range", name)
		}
	}
	return nil
}

// message turns call arguments into an EVM message.
func (a *TransactionArgs) message(baseFee *big.Int, gas uint64) *core.Message {
	msg := &core.Message{
		To:       a.To,
		GasLimit: gas,
		Data:     a.data(),
		Value:    new(uint256.Int),
	}
	if a.From != nil {
		msg.From = *a.From
	}
	if a.Value != nil {
		msg.Value, _ = uint256.FromBig((*big.Int)(a.Value))
	}
	if a.AccessList != nil {
		msg.AccessList = *a.AccessList
	}
	if a.Nonce != nil {
		msg.Nonce = uint64(*a.Nonce)
	}
	u := func(b *hexutil.Big) *uint256.Int {
		if b == nil {
			return new(uint256.Int)
		}
		v, _ := uint256.FromBig((*big.Int)(b))
		return v
	}
	switch {
	case a.GasPrice != nil:
		msg.GasPrice, msg.GasFeeCap, msg.GasTipCap = u(a.GasPrice), u(a.GasPrice), u(a.GasPrice)
	case a.MaxFeePerGas != nil || a.MaxPriorityFeePerGas != nil:
		msg.GasFeeCap, msg.GasTipCap = u(a.MaxFeePerGas), u(a.MaxPriorityFeePerGas)
		if a.MaxFeePerGas == nil {
			msg.GasFeeCap = new(uint256.Int).Add(u(a.MaxPriorityFeePerGas), u((*hexutil.Big)(baseFee)))
		}
		bf, _ := uint256.FromBig(baseFee)
		msg.GasPrice = new(uint256.Int).Add(bf, msg.GasTipCap)
		if msg.GasPrice.Cmp(msg.GasFeeCap) > 0 {
			msg.GasPrice = new(uint256.Int).Set(msg.GasFeeCap)
		}
	default:
		msg.GasPrice, msg.GasFeeCap, msg.GasTipCap = new(uint256.Int), new(uint256.Int), new(uint256.Int)
	}
	return msg
}

// Call is eth_call.
func (api *EthAPI) Call(ctx context.Context, args TransactionArgs, bnh *gethrpc.BlockNumberOrHash) (hexutil.Bytes, error) {
	if err := args.check(); err != nil {
		return nil, err
	}
	h, st, err := stateAt(api.b, latest(bnh))
	if err != nil {
		return nil, err
	}
	want := api.cfg.GasCap
	if args.Gas != nil && uint64(*args.Gas) < want {
		want = uint64(*args.Gas)
	}
	var res *core.ExecutionResult
	err = api.execute(ctx, want, func(ctx context.Context, gas uint64) (uint64, error) {
		var err error
		if res, err = api.b.Call(ctx, h, st, args.message(h.BaseFee, gas)); err != nil {
			return 0, err
		}
		if res.Failed() && errors.Is(res.Err, vm.ErrOutOfGas) {
			return res.UsedGas, &outOfGas{res.Err}
		}
		return res.UsedGas, nil
	})
	if err != nil {
		return nil, err
	}
	if err := readFailed(h, st); err != nil {
		return nil, err
	}
	return callResult(res)
}

// callResult answers a call's result as eth_call does: its return data,
// a revert as code 3 with the revert data, another failure as -32000.
func callResult(res *core.ExecutionResult) (hexutil.Bytes, error) {
	if len(res.Revert()) > 0 || (res.Failed() && res.Err.Error() == "execution reverted") {
		return nil, revertError(res.Revert())
	}
	if res.Failed() {
		return nil, serverError("%v", res.Err)
	}
	return res.Return(), nil
}

// EstimateGas is eth_estimateGas.
func (api *EthAPI) EstimateGas(ctx context.Context, args TransactionArgs, bnh *gethrpc.BlockNumberOrHash) (hexutil.Uint64, error) {
	if err := args.check(); err != nil {
		return 0, err
	}
	h, st, err := stateAt(api.b, latest(bnh))
	if err != nil {
		return 0, err
	}
	want := min(uint64(api.b.ChainSpec().TxGasLimit), api.cfg.GasCap)
	var given uint64
	if args.Gas != nil {
		given = uint64(*args.Gas)
	}
	var (
		est    uint64
		failed *core.ExecutionResult
	)
	err = api.execute(ctx, want, func(ctx context.Context, gasCap uint64) (uint64, error) {
		var err error
		est, failed, err = api.b.EstimateGas(ctx, h, st, args.message(h.BaseFee, given), gasCap)
		switch {
		case errors.Is(err, ErrGasCapReached):
			return gasCap, &outOfGas{err}
		case err != nil:
			return 0, err
		case failed != nil:
			return failed.UsedGas, nil
		}
		// The search ran the message several times; its answer is what
		// one run costs, which is what the budget counts.
		return est, nil
	})
	if err != nil {
		return 0, err
	}
	if failed != nil {
		if len(failed.Revert()) > 0 || failed.Err.Error() == "execution reverted" {
			return 0, revertError(failed.Revert())
		}
		return 0, serverError("%v", failed.Err)
	}
	return hexutil.Uint64(est), nil
}

// outOfGas marks a run that needed more gas than it was given.
type outOfGas struct{ err error }

func (e *outOfGas) Error() string { return e.err.Error() }

// heavy admits a request that costs more than a lookup (logs, receipts
// of a block, proofs, fee history, pool content) against the time budget
// of its batch; done must be called when it returns.
func (api *EthAPI) heavy(ctx context.Context) (context.Context, context.CancelFunc, error) {
	return api.budgets.of(ctx).begin(ctx, time.Now(), 0, false)
}

// execute runs one eth_call or eth_estimateGas within the per-call bounds
// (--rpc.gascap, --rpc.evmtimeout) and what is left of its batch's
// budget. run gets the context and the gas it may use, and returns the gas
// it used. A run that fails for lack of gas the batch no longer had, or
// that the batch's deadline cut, reports the budget (-32005).
func (api *EthAPI) execute(ctx context.Context, want uint64, run func(ctx context.Context, gas uint64) (uint64, error)) error {
	b := api.budgets.of(ctx)
	ctx, cancel, err := b.begin(ctx, time.Now(), api.cfg.EVMTimeout, true)
	if err != nil {
		return err
	}
	defer cancel()
	gas := min(want, b.gas())
	limited := gas < want
	used, err := run(ctx, gas)
	b.charge(used)
	var oog *outOfGas
	switch {
	case err == nil:
		return nil
	case errors.As(err, &oog):
		if limited {
			return b.gasError()
		}
		return serverError("%v", oog.err)
	case ctx.Err() != nil:
		if b.expired(time.Now()) {
			return b.timeError()
		}
		return serverError("execution aborted (timeout = %s, --rpc.evmtimeout)", api.cfg.EVMTimeout)
	}
	return serverError("%v", err)
}

// AccountResult is the answer of eth_getProof.
type AccountResult struct {
	Address      common.Address  `json:"address"`
	AccountProof []string        `json:"accountProof"`
	Balance      *hexutil.Big    `json:"balance"`
	CodeHash     common.Hash     `json:"codeHash"`
	Nonce        hexutil.Uint64  `json:"nonce"`
	StorageHash  common.Hash     `json:"storageHash"`
	StorageProof []StorageResult `json:"storageProof"`
}

// StorageResult is one storage slot's proof.
type StorageResult struct {
	Key   string       `json:"key"`
	Value *hexutil.Big `json:"value"`
	Proof []string     `json:"proof"`
}

// GetProof is eth_getProof: Merkle proofs of an account and storage slots.
func (api *EthAPI) GetProof(ctx context.Context, addr common.Address, keys []string, bnh gethrpc.BlockNumberOrHash) (*AccountResult, error) {
	if len(keys) > maxProofKeys {
		return nil, invalidParams("invalid argument 1: at most %d storage keys", maxProofKeys)
	}
	slots := make([]common.Hash, len(keys))
	for i, k := range keys {
		h, err := decodeStorageKey(k)
		if err != nil {
			return nil, invalidParams("invalid argument 1: key %d: %v", i, err)
		}
		slots[i] = h
	}
	h, st, err := stateAt(api.b, bnh)
	if err != nil {
		return nil, err
	}
	_, done, err := api.heavy(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	// The state's own database opens its tries: a historical state's
	// proofs come from the node history it keeps.
	sdb := st.Database()
	res := &AccountResult{
		Address:      addr,
		Balance:      (*hexutil.Big)(st.GetBalance(addr).ToBig()),
		Nonce:        hexutil.Uint64(st.GetNonce(addr)),
		CodeHash:     st.GetCodeHash(addr),
		StorageHash:  st.GetStorageRoot(addr),
		StorageProof: make([]StorageResult, len(slots)),
	}
	if err := readFailed(h, st); err != nil {
		return nil, err
	}
	if res.CodeHash == (common.Hash{}) {
		res.CodeHash = types.EmptyCodeHash
	}
	if res.StorageHash == (common.Hash{}) {
		res.StorageHash = types.EmptyRootHash
	}
	accTrie, err := sdb.OpenTrie(h.Root)
	if err != nil {
		return nil, serverError("open state trie: %v", err)
	}
	var list proofList
	if err := accTrie.Prove(crypto.Keccak256(addr.Bytes()), &list); err != nil {
		return nil, serverError("prove account: %v", err)
	}
	res.AccountProof = list.hex()
	var stTrie state.Trie
	if res.StorageHash != types.EmptyRootHash && len(slots) > 0 {
		stTrie, err = sdb.OpenStorageTrie(h.Root, addr, res.StorageHash, accTrie)
		if err != nil {
			return nil, serverError("open storage trie: %v", err)
		}
	}
	for i, slot := range slots {
		value := st.GetState(addr, slot)
		sr := StorageResult{Key: keys[i], Value: (*hexutil.Big)(new(big.Int).SetBytes(value[:])), Proof: []string{}}
		if stTrie != nil {
			var sl proofList
			if err := stTrie.Prove(crypto.Keccak256(slot.Bytes()), &sl); err != nil {
				return nil, serverError("prove storage: %v", err)
			}
			sr.Proof = sl.hex()
		}
		res.StorageProof[i] = sr
	}
	return res, nil
}

// proofList collects trie nodes in proof order.
type proofList struct{ nodes [][]byte }

func (l *proofList) Put(_ []byte, value []byte) error {
	l.nodes = append(l.nodes, common.CopyBytes(value))
	return nil
}

func (l *proofList) Delete([]byte) error { return nil }

func (l *proofList) hex() []string {
	out := make([]string, len(l.nodes))
	for i, n := range l.nodes {
		out[i] = hexutil.Encode(n)
	}
	return out
}
