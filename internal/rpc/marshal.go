package rpc

import (
	"encoding/json"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
)

type stateDB = *state.StateDB

// toMap turns a go-ethereum JSON encoding into a map we can extend.
func toMap(v json.Marshaler) map[string]any {
	raw, err := v.MarshalJSON()
	if err != nil {
		return map[string]any{}
	}
	m := make(map[string]any)
	if err := json.Unmarshal(raw, &m); err != nil {
		return map[string]any{}
	}
	return m
}

// marshalHeader encodes a header as eth_getBlockBy* does, without bodies.
func marshalHeader(h *types.Header) map[string]any {
	m := toMap(h)
	m["hash"] = h.Hash()
	m["totalDifficulty"] = "0x0"
	// Fields of forks this chain does not run are left out, not null.
	for _, k := range []string{"blockAccessListHash", "slotNumber"} {
		if m[k] == nil {
			delete(m, k)
		}
	}
	return m
}

// marshalBlock encodes a block; full selects transaction objects over hashes.
func marshalBlock(b *types.Block, full bool, signer types.Signer) map[string]any {
	m := marshalHeader(b.Header())
	m["size"] = hexutil.Uint64(b.Size())
	m["uncles"] = []common.Hash{}
	m["withdrawals"] = []any{}
	txs := b.Transactions()
	if full {
		out := make([]any, len(txs))
		for i, tx := range txs {
			out[i] = marshalTx(tx, b.Hash(), b.NumberU64(), uint64(i), b.BaseFee(), signer)
		}
		m["transactions"] = out
	} else {
		out := make([]common.Hash, len(txs))
		for i, tx := range txs {
			out[i] = tx.Hash()
		}
		m["transactions"] = out
	}
	return m
}

// marshalTx encodes a transaction; blockHash zero means pending.
func marshalTx(tx *types.Transaction, blockHash common.Hash, number, index uint64, baseFee *big.Int, signer types.Signer) map[string]any {
	m := toMap(tx)
	from, _ := types.Sender(signer, tx)
	m["from"] = from
	if blockHash == (common.Hash{}) {
		m["blockHash"], m["blockNumber"], m["transactionIndex"] = nil, nil, nil
	} else {
		m["blockHash"] = blockHash
		m["blockNumber"] = hexutil.Uint64(number)
		m["transactionIndex"] = hexutil.Uint64(index)
		if tx.Type() != types.LegacyTxType && tx.Type() != types.AccessListTxType && baseFee != nil {
			price := new(big.Int).Add(baseFee, tx.EffectiveGasTipValue(baseFee))
			m["gasPrice"] = (*hexutil.Big)(price)
		}
	}
	if _, ok := m["gasPrice"]; !ok {
		m["gasPrice"] = (*hexutil.Big)(tx.GasFeeCap())
	}
	if tx.To() == nil {
		m["to"] = nil
	}
	return m
}

// marshalReceipt encodes a receipt as eth_getTransactionReceipt does. It
// builds the answer directly: receipts are what clients poll most.
func marshalReceipt(r *types.Receipt, tx *types.Transaction, signer types.Signer) map[string]any {
	from, _ := types.Sender(signer, tx)
	m := map[string]any{
		"type":              hexutil.Uint64(r.Type),
		"status":            hexutil.Uint64(r.Status),
		"cumulativeGasUsed": hexutil.Uint64(r.CumulativeGasUsed),
		"logsBloom":         r.Bloom,
		"logs":              r.Logs,
		"transactionHash":   r.TxHash,
		"contractAddress":   nil,
		"gasUsed":           hexutil.Uint64(r.GasUsed),
		"effectiveGasPrice": (*hexutil.Big)(r.EffectiveGasPrice),
		"blockHash":         r.BlockHash,
		"blockNumber":       (*hexutil.Big)(r.BlockNumber),
		"transactionIndex":  hexutil.Uint64(r.TransactionIndex),
		"from":              from,
		"to":                tx.To(),
	}
	if r.ContractAddress != (common.Address{}) {
		m["contractAddress"] = r.ContractAddress
	}
	if r.Logs == nil {
		m["logs"] = []*types.Log{}
	}
	if len(r.PostState) > 0 {
		m["root"] = hexutil.Bytes(r.PostState)
	}
	return m
}
