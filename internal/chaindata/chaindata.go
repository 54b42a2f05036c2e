// Package chaindata is the seam between a node and what takes the chain's
// facts out of it: the SQL indexer, the event streams and the REST
// gateway. It names what they read (final blocks, the contract registry)
// and what the streams hand to their sinks (decoded events), so that each
// of them can be built and tested without a node.
//
// Every block a node's ledger holds is final in every engine (raft and bft
// commit final blocks; poa hands a block to the ledger only once it has
// FinalityDepth sealed blocks on top), so a reader of the ledger never
// sees a fork.
package chaindata

import (
	"context"
	"sync"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// Source is read access to the final blocks a node holds (the ledger).
// Safe for concurrent use.
type Source interface {
	// Head is the last final block's header.
	Head() *types.Header
	// BlockByNumber is the final block at number, nil above the head.
	BlockByNumber(number uint64) *types.Block
	// Receipts are the block's receipts with their derived fields (block
	// hash and number, transaction index, log indexes within the block).
	Receipts(number uint64) (types.Receipts, error)
}

// Based is a Source that lacks the blocks between the genesis and Base: a
// node started from a snapshot of block Base (Base 0: every block held).
type Based interface {
	Base() uint64
}

// BaseOf is src's Base, or 0 when src holds every block.
func BaseOf(src Source) uint64 {
	if b, ok := src.(Based); ok {
		return b.Base()
	}
	return 0
}

// Heads wakes readers when a new final block arrives, without ever making
// the publisher wait: Notify closes the current channel and replaces it.
type Heads struct {
	mu sync.Mutex
	ch chan struct{}
}

// Notify wakes every reader waiting on a channel from Changed.
func (h *Heads) Notify() {
	h.mu.Lock()
	if h.ch != nil {
		close(h.ch)
		h.ch = nil
	}
	h.mu.Unlock()
}

// Changed is a channel closed at the next Notify. Take it before reading
// the head, then wait on it, so that no block is missed between the two.
func (h *Heads) Changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ch == nil {
		h.ch = make(chan struct{})
	}
	return h.ch
}

// Contract is one version of a contract in the contract registry.
type Contract struct {
	Name       string
	Version    uint64 // 1 for the first registration, +1 per upgrade
	Address    common.Address
	CodeHash   common.Hash // of the code at Address when registered
	ABIHash    common.Hash // keccak256 of the ABI document's bytes
	ABIJSON    []byte      // the ABI document (a Solidity compiler's JSON array); nil if this node lacks it
	ABI        *abi.ABI    // parsed ABIJSON; nil if this node lacks it
	Org        string      // the organization that registered the name
	Deprecated bool
}

// Contracts resolves registered contracts as of the final head. Safe for
// concurrent use; callers must not modify what it returns.
type Contracts interface {
	// ByAddress is the registered contract at addr (any version of any
	// name whose address it is; the newest if several).
	ByAddress(addr common.Address) (Contract, bool)
	// ByName is the newest version registered under name.
	ByName(name string) (Contract, bool)
	// All lists every registered version, by name then version.
	All() []Contract
	// Generation changes whenever a registration changes (a name
	// registered, upgraded or deprecated, an ABI document arriving), so a
	// reader that caches decoders knows when to look again.
	Generation() uint64
}

// Event is one log of a final block as the event streams deliver it,
// decoded by the registry's ABI when the emitting contract is registered.
type Event struct {
	// ID is stable across node restarts and replays, so consumers can
	// deduplicate: "<chainID>-<block>-<logIndex>" (logIndex within the block).
	ID          string         `json:"id"`
	Stream      string         `json:"stream"`
	ChainID     uint64         `json:"chainId"`
	BlockNumber uint64         `json:"blockNumber"`
	BlockHash   common.Hash    `json:"blockHash"`
	Timestamp   uint64         `json:"timestamp"` // block time, Unix seconds
	TxHash      common.Hash    `json:"transactionHash"`
	TxIndex     uint           `json:"transactionIndex"`
	LogIndex    uint           `json:"logIndex"`
	Address     common.Address `json:"address"`
	Topics      []common.Hash  `json:"topics"`
	Data        hexutil.Bytes  `json:"data"`
	// Decoded, when the registry has the contract's ABI and the log
	// matches one of its events.
	Contract  string         `json:"contract,omitempty"`  // registered name
	Version   uint64         `json:"version,omitempty"`   // registered version
	Event     string         `json:"event,omitempty"`     // e.g. Transfer
	Signature string         `json:"signature,omitempty"` // e.g. Transfer(address,address,uint256)
	Args      map[string]any `json:"args,omitempty"`      // JSON-ready: integers as decimal strings, bytes and addresses as 0x hex
}

// Sink is where a stream delivers its events: a webhook, a NATS JetStream
// subject, a Kafka topic.
type Sink interface {
	// Deliver hands over events in order. It returns nil only when the
	// receiver has accepted every one of them durably (a 2xx answer, a
	// JetStream ack, a Kafka produce ack); on an error the stream retries
	// the same events later, so delivery is at least once.
	Deliver(ctx context.Context, events []Event) error
	// Close releases the sink's connections.
	Close() error
}
