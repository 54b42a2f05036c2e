package rpc

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// sendMu serializes eth_sendTransaction so that two concurrent calls from
// one account do not take the same nonce.
var sendMu sync.Mutex

func (api *EthAPI) devKey(addr *common.Address) (*ecdsa.PrivateKey, error) {
	if len(api.b.DevAccounts()) == 0 {
		return nil, serverError("no unlocked accounts: this method signs with development accounts (charter dev only); sign locally and use eth_sendRawTransaction")
	}
	if addr == nil {
		return nil, invalidParams("invalid argument 0: from is required")
	}
	for _, a := range api.b.DevAccounts() {
		if a.Address == *addr {
			return a.Key, nil
		}
	}
	return nil, serverError("unknown account %s: not an unlocked development account", addr.Hex())
}

// fill completes transaction arguments as a wallet would and signs them.
func (api *EthAPI) fillAndSign(ctx context.Context, args TransactionArgs) (*types.Transaction, error) {
	if err := args.check(); err != nil {
		return nil, err
	}
	key, err := api.devKey(args.From)
	if err != nil {
		return nil, err
	}
	chainID := api.b.ChainSpec().Config.ChainID
	if args.ChainID != nil && (*big.Int)(args.ChainID).Cmp(chainID) != 0 {
		return nil, invalidParams("invalid argument 0: chainId %v, this chain is %v", (*big.Int)(args.ChainID), chainID)
	}
	nonce := api.b.PoolNonce(*args.From)
	if args.Nonce != nil {
		nonce = uint64(*args.Nonce)
	}
	gas := uint64(0)
	if args.Gas != nil {
		gas = uint64(*args.Gas)
	} else {
		est, err := api.EstimateGas(ctx, args, nil)
		if err != nil {
			return nil, err
		}
		gas = uint64(est)
	}
	value := new(big.Int)
	if args.Value != nil {
		value = (*big.Int)(args.Value)
	}
	var al types.AccessList
	if args.AccessList != nil {
		al = *args.AccessList
	}
	baseFee := api.b.ChainSpec().BaseFeeWei()
	minTip := api.b.ChainSpec().MinGasPriceWei()
	legacy := args.GasPrice != nil || (args.Type != nil && *args.Type < types.DynamicFeeTxType)
	var inner types.TxData
	if legacy {
		price := new(big.Int).Add(baseFee, minTip)
		if args.GasPrice != nil {
			price = (*big.Int)(args.GasPrice)
		}
		if args.AccessList != nil || (args.Type != nil && *args.Type == types.AccessListTxType) {
			inner = &types.AccessListTx{ChainID: chainID, Nonce: nonce, GasPrice: price, Gas: gas, To: args.To, Value: value, Data: args.data(), AccessList: al}
		} else {
			inner = &types.LegacyTx{Nonce: nonce, GasPrice: price, Gas: gas, To: args.To, Value: value, Data: args.data()}
		}
	} else {
		tip := minTip
		if args.MaxPriorityFeePerGas != nil {
			tip = (*big.Int)(args.MaxPriorityFeePerGas)
		}
		feeCap := new(big.Int).Add(new(big.Int).Mul(baseFee, big.NewInt(2)), tip)
		if args.MaxFeePerGas != nil {
			feeCap = (*big.Int)(args.MaxFeePerGas)
		}
		inner = &types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: gas, To: args.To, Value: value, Data: args.data(), AccessList: al}
	}
	tx, err := types.SignNewTx(key, api.signer, inner)
	if err != nil {
		return nil, serverError("sign: %v", err)
	}
	return tx, nil
}

// SendTransaction is eth_sendTransaction: signs with an unlocked
// development account and submits.
func (api *EthAPI) SendTransaction(ctx context.Context, args TransactionArgs) (common.Hash, error) {
	sendMu.Lock()
	defer sendMu.Unlock()
	tx, err := api.fillAndSign(ctx, args)
	if err != nil {
		return common.Hash{}, err
	}
	return api.submit(tx)
}

// SignTransaction is eth_signTransaction: the signed raw transaction.
func (api *EthAPI) SignTransaction(ctx context.Context, args TransactionArgs) (hexutil.Bytes, error) {
	tx, err := api.fillAndSign(ctx, args)
	if err != nil {
		return nil, err
	}
	return tx.MarshalBinary()
}

// Sign is eth_sign: an EIP-191 personal message signature.
func (api *EthAPI) Sign(addr common.Address, data hexutil.Bytes) (hexutil.Bytes, error) {
	key, err := api.devKey(&addr)
	if err != nil {
		return nil, err
	}
	return signText(key, data)
}

func signText(key *ecdsa.PrivateKey, data []byte) (hexutil.Bytes, error) {
	sig, err := crypto.Sign(accounts.TextHash(data), key)
	if err != nil {
		return nil, serverError("sign: %v", err)
	}
	sig[crypto.RecoveryIDOffset] += 27
	return sig, nil
}

// PersonalAPI is the personal namespace (personal_sign only).
type PersonalAPI struct{ eth *EthAPI }

// Sign is personal_sign(data, address).
func (api *PersonalAPI) Sign(data hexutil.Bytes, addr common.Address, _ *string) (hexutil.Bytes, error) {
	return api.eth.Sign(addr, data)
}
