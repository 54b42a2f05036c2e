package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Version is the client version reported by web3_clientVersion.
var Version = "0.1.0"

// decimalOrHex is an unsigned integer given as a JSON number, a decimal
// string or a 0x-prefixed hex string (eth_feeHistory's block count).
type decimalOrHex uint64

func (d *decimalOrHex) UnmarshalJSON(data []byte) error {
	var n uint64
	if err := json.Unmarshal(data, &n); err == nil {
		*d = decimalOrHex(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("want a number or a string, got %s", data)
	}
	var err error
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		n, err = hexutil.DecodeUint64(s)
	} else {
		n, err = strconv.ParseUint(s, 10, 64)
	}
	if err != nil {
		return fmt.Errorf("not an unsigned integer: %q", s)
	}
	*d = decimalOrHex(n)
	return nil
}

// Web3API is the web3 namespace.
type Web3API struct{}

// ClientVersion is web3_clientVersion.
func (Web3API) ClientVersion() string {
	return fmt.Sprintf("Charter/v%s/%s-%s/%s", Version, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// Sha3 is web3_sha3: keccak-256 of the input.
func (Web3API) Sha3(input hexutil.Bytes) hexutil.Bytes { return crypto.Keccak256(input) }

// NetAPI is the net namespace.
type NetAPI struct {
	b     Backend
	peers func() int
}

// Version is net_version: the chain id in decimal.
func (api *NetAPI) Version() string { return strconv.FormatUint(api.b.ChainSpec().ChainID(), 10) }

// Listening is net_listening.
func (api *NetAPI) Listening() bool { return true }

// PeerCount is net_peerCount.
func (api *NetAPI) PeerCount() hexutil.Uint {
	if api.peers == nil {
		return 0
	}
	return hexutil.Uint(api.peers())
}

// TxPoolAPI is the txpool namespace.
type TxPoolAPI struct{ eth *EthAPI }

// Status is txpool_status.
func (api *TxPoolAPI) Status() map[string]hexutil.Uint {
	pending, queued := api.eth.b.PoolStats()
	return map[string]hexutil.Uint{"pending": hexutil.Uint(pending), "queued": hexutil.Uint(queued)}
}

// Content is txpool_content: waiting transactions by sender and nonce.
func (api *TxPoolAPI) Content(ctx context.Context) (map[string]map[string]map[string]map[string]any, error) {
	_, done, err := api.eth.heavy(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	pending, queued := api.eth.b.PoolContent()
	signer := api.eth.signer
	conv := func(in map[common.Address][]*types.Transaction) map[string]map[string]map[string]any {
		out := make(map[string]map[string]map[string]any, len(in))
		for addr, txs := range in {
			byNonce := make(map[string]map[string]any, len(txs))
			for _, tx := range txs {
				byNonce[strconv.FormatUint(tx.Nonce(), 10)] = marshalTx(tx, common.Hash{}, 0, 0, nil, signer)
			}
			out[addr.Hex()] = byNonce
		}
		return out
	}
	return map[string]map[string]map[string]map[string]any{"pending": conv(pending), "queued": conv(queued)}, nil
}
