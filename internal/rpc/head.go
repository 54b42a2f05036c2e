package rpc

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
)

// EngineHeadBackend is implemented by a Backend whose node runs a
// consensus engine: charter_head answers numeric confirmation levels from
// it. A Backend without it has instant finality (every level is the
// committed head).
type EngineHeadBackend interface {
	// EngineHead is the newest block with at least confirmations blocks
	// on top of it as the engine sees the chain (consensus.Engine.Head).
	// On poa it may be a block sealed but not yet final, which this node
	// has not committed; the other engines answer the committed head for
	// any value. Nil while unknown.
	EngineHead(confirmations uint64) *types.Header
}

// Confirmation levels of charter_head besides a number of confirmations.
const (
	LevelLatest    = "latest"
	LevelSafe      = "safe"
	LevelFinalized = "finalized"
)

// maxConfirmations bounds a numeric level.
const maxConfirmations = 1 << 32

// HeadInfo is the answer of charter_head: the block at a confirmation
// level.
type HeadInfo struct {
	// Level is the level asked: latest, safe, finalized, or the number of
	// confirmations in decimal.
	Level  string         `json:"level"`
	Number hexutil.Uint64 `json:"number"`
	Hash   common.Hash    `json:"hash"`
	// Committed: this node holds the block, so eth_getBlockByNumber and
	// state queries answer at it. Always true for latest, safe and
	// finalized; a numeric level on poa may name a block the authorities
	// sealed that is not final yet, which no node has committed.
	Committed bool `json:"committed"`
}

// Head is charter_head(level): the block number and hash at a
// confirmation level. level is "latest" (the default: the newest committed
// block, eth_blockNumber), "safe" or "finalized" (what the engine promises
// will never be reverted, as the block tags of the same names; every
// engine commits only final blocks, so on every engine they are the
// committed head: raft and bft decide a block final before it is
// committed, and poa commits a block once a majority of the authorities
// accepted it and FinalityDepth sealed blocks are on top of it), or a
// number of confirmations N (a JSON number, or a string in decimal or
// 0x hex): the newest block with at least N blocks on top of it as the
// engine sees the chain, the confirmation levels of the engine interface.
func (api *CharterAPI) Head(level *json.RawMessage) (*HeadInfo, error) {
	name, conf, numeric, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	var h *types.Header
	switch {
	case numeric:
		if eb, ok := api.b.(EngineHeadBackend); ok {
			h = eb.EngineHead(conf)
		}
		if h == nil {
			h = api.b.CurrentHeader()
		}
	case name == LevelLatest:
		h = api.b.CurrentHeader()
	case name == LevelSafe:
		h, err = headerByNumber(api.b, gethrpc.SafeBlockNumber)
	default:
		h, err = headerByNumber(api.b, gethrpc.FinalizedBlockNumber)
	}
	if err != nil {
		return nil, err
	}
	hash := h.Hash()
	local := api.b.HeaderByNumber(h.Number.Uint64())
	return &HeadInfo{Level: name, Number: hexutil.Uint64(h.Number.Uint64()), Hash: hash,
		Committed: local != nil && local.Hash() == hash}, nil
}

// parseLevel reads charter_head's argument: absent or null is latest.
func parseLevel(raw *json.RawMessage) (name string, conf uint64, numeric bool, err error) {
	bad := invalidParams(`level: want "latest", "safe", "finalized" or a number of confirmations (0 to %d)`, uint64(maxConfirmations))
	if raw == nil || len(bytes.TrimSpace(*raw)) == 0 || string(bytes.TrimSpace(*raw)) == "null" {
		return LevelLatest, 0, false, nil
	}
	var text string
	if err := json.Unmarshal(*raw, &text); err != nil {
		// A JSON number.
		var n uint64
		if err := json.Unmarshal(*raw, &n); err != nil || n > maxConfirmations {
			return "", 0, false, bad
		}
		return strconv.FormatUint(n, 10), n, true, nil
	}
	switch text {
	case LevelLatest, LevelSafe, LevelFinalized:
		return text, 0, false, nil
	}
	var n uint64
	if strings.HasPrefix(text, "0x") || strings.HasPrefix(text, "0X") {
		n, err = hexutil.DecodeUint64(strings.ToLower(text))
	} else {
		n, err = strconv.ParseUint(text, 10, 64)
	}
	if err != nil || n > maxConfirmations {
		return "", 0, false, bad
	}
	return strconv.FormatUint(n, 10), n, true, nil
}
