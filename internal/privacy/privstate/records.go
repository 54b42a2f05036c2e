package privstate

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/charter-ledger/charter/internal/privacy/privtx"
)

// Key layout of a group's database, beside go-ethereum's trie nodes
// (32-byte keys) and contract code ("c" + 32 bytes). Numbers are 8-byte
// big-endian so that keys sort by height. None of these keys is 32 or 33
// bytes long.
var (
	keyIdentity = []byte("charter-private-group") // identity record
	keyHead     = []byte("charter-private-head")  // head record: the last applied block
	prefRoot    = []byte("pr")                    // pr | number -> root record
	prefBlock   = []byte("pb")                    // pb | number -> block record
	prefTx      = []byte("px")                    // px | private tx hash -> number(8) | index(4)
	prefMarker  = []byte("pm")                    // pm | marker tx hash -> number(8) | index(4)
	prefPayload = []byte("pp")                    // pp | payload hash -> payload bytes: read only, written by builds before the payload store (payloads.go)
)

// formatVersion is the version of this layout, in the identity record.
// 2: private transactions in privtx's format, with their markers.
const formatVersion = 2

func key(prefix, suffix []byte) []byte {
	k := make([]byte, 0, len(prefix)+len(suffix))
	return append(append(k, prefix...), suffix...)
}

func numKey(prefix []byte, n uint64) []byte {
	return key(prefix, binary.BigEndian.AppendUint64(nil, n))
}

// identity is written when a group's database is created: a folder moved
// under another group's name, or kept from another chain, is refused.
type identity struct {
	Version uint64
	Group   common.Hash
	ChainID uint64
}

// headRecord is the last block applied to the group; it is the last write
// of ApplyBlock's batch.
type headRecord struct {
	Number uint64
	Hash   common.Hash // of the public block
	Root   common.Hash // private state root after it
}

// rootRecord is one applied block: the public block's hash, the private
// state root before and after it, and the bloom of its private logs.
type rootRecord struct {
	Hash       common.Hash
	Root       common.Hash
	ParentRoot common.Hash
	Bloom      types.Bloom
}

// blockRecord holds what one public block executed for the group: the
// private transactions as their payloads carried them (privtx encoding;
// empty for one over MaxPrivateTxBytes, which was rejected), the markers
// that ordered them, their receipts and what a receipt does not keep.
// Markers[i], Receipts[i], Extras[i] belong to Txs[i].
type blockRecord struct {
	Time     uint64
	Txs      [][]byte
	Markers  []common.Hash
	Receipts []*types.ReceiptForStorage
	Extras   []txExtra
}

// txExtra is kept with each private receipt.
type txExtra struct {
	Hash     common.Hash    // private transaction hash: keccak256 of the bytes carried
	From     common.Address // zero when the signature recovers no sender
	Output   []byte         // return data (revert data of a failure), cut at MaxOutputBytes
	Rejected string         // why the transaction was not executed; "" when it ran
}

func (h *handle) checkIdentity(chainID uint64) error {
	raw, ok, err := h.getOptional(keyIdentity)
	if err != nil {
		return fmt.Errorf("%w: group %s: read identity record: %v", ErrCorrupt, h.id.Hex(), err)
	}
	if !ok {
		enc, _ := rlp.EncodeToBytes(&identity{Version: formatVersion, Group: h.id, ChainID: chainID})
		if err := h.kv.Put(keyIdentity, enc); err != nil {
			return fmt.Errorf("private state: group %s: write identity record: %w", h.id.Hex(), err)
		}
		if err := h.kv.SyncKeyValue(); err != nil {
			return fmt.Errorf("private state: group %s: sync identity record: %w", h.id.Hex(), err)
		}
		return nil
	}
	var id identity
	if err := rlp.DecodeBytes(raw, &id); err != nil {
		return fmt.Errorf("%w: group %s: identity record: %v", ErrCorrupt, h.id.Hex(), err)
	}
	switch {
	case id.Version != formatVersion:
		return fmt.Errorf("%w: group folder %s has format version %d, this binary reads %d", ErrCorrupt, h.dir, id.Version, formatVersion)
	case id.Group != h.id:
		return fmt.Errorf("%w: group folder %s holds group %s", ErrCorrupt, h.dir, id.Group.Hex())
	case id.ChainID != chainID:
		return fmt.Errorf("%w: group folder %s belongs to chain id %d, this chain is %d", ErrCorrupt, h.dir, id.ChainID, chainID)
	}
	return nil
}

// head reads the head record; ok is false for a group that applied no
// block yet (its private state is empty).
func (h *handle) head() (rec headRecord, ok bool, err error) {
	if c := h.headCache.Load(); c != nil {
		return *c, true, nil
	}
	raw, ok, err := h.getOptional(keyHead)
	if err != nil {
		return rec, false, fmt.Errorf("%w: group %s: head record: %v", ErrCorrupt, h.id.Hex(), err)
	}
	if !ok {
		return headRecord{Root: types.EmptyRootHash}, false, nil
	}
	if err := rlp.DecodeBytes(raw, &rec); err != nil {
		return rec, false, fmt.Errorf("%w: group %s: head record: %v", ErrCorrupt, h.id.Hex(), err)
	}
	// Only ApplyBlock writes the head record, and it replaces the cache
	// under the group's write lock; a reader racing it stores the record
	// it read only if nothing newer was stored meanwhile.
	h.headCache.CompareAndSwap(nil, &rec)
	return rec, true, nil
}

// getOptional reads a key; ok is false when it is absent. No key of a
// group's database is ever deleted, so that a key Has finds is there for
// the Get that follows, whatever a writer does meanwhile.
func (h *handle) getOptional(k []byte) ([]byte, bool, error) {
	has, err := h.kv.Has(k)
	if err != nil || !has {
		return nil, false, err
	}
	raw, err := h.kv.Get(k)
	if err != nil {
		return nil, false, err
	}
	return raw, true, nil
}

func (h *handle) rootRecord(number uint64) (*rootRecord, bool, error) {
	raw, ok, err := h.getOptional(numKey(prefRoot, number))
	if err != nil || !ok {
		return nil, ok, err
	}
	rec, err := decodeRootRecord(raw)
	if err != nil {
		return nil, false, fmt.Errorf("%w: group %s: root record of block %d: %v", ErrCorrupt, h.id.Hex(), number, err)
	}
	return rec, true, nil
}

func (h *handle) blockRecord(number uint64) (*blockRecord, error) {
	if e, ok := h.recent.get(number); ok {
		return e.rec, nil
	}
	raw, ok, err := h.getOptional(numKey(prefBlock, number))
	if err != nil {
		return nil, fmt.Errorf("%w: group %s: block record %d: %v", ErrCorrupt, h.id.Hex(), number, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: group %s: block record %d missing", ErrCorrupt, h.id.Hex(), number)
	}
	rec, err := decodeBlockRecord(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: group %s: block record %d: %v", ErrCorrupt, h.id.Hex(), number, err)
	}
	h.recent.put(recentBlock{number: number, rec: rec})
	return rec, nil
}

func decodeRootRecord(raw []byte) (*rootRecord, error) {
	var rec rootRecord
	if err := rlp.DecodeBytes(raw, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// decodeBlockRecord decodes a block record and checks that its lists
// agree and stay within the bounds a write respects.
func decodeBlockRecord(raw []byte) (*blockRecord, error) {
	var rec blockRecord
	if err := rlp.DecodeBytes(raw, &rec); err != nil {
		return nil, err
	}
	n := len(rec.Txs)
	switch {
	case len(rec.Markers) != n || len(rec.Receipts) != n || len(rec.Extras) != n:
		return nil, fmt.Errorf("%d transactions, %d markers, %d receipts, %d extras", n, len(rec.Markers), len(rec.Receipts), len(rec.Extras))
	case n > MaxRecordedTxsPerBlock:
		return nil, fmt.Errorf("%d transactions, above MaxRecordedTxsPerBlock %d", n, MaxRecordedTxsPerBlock)
	}
	var cumulative uint64
	for i, x := range rec.Extras {
		switch {
		case len(rec.Txs[i]) > MaxPrivateTxBytes:
			return nil, fmt.Errorf("transaction %d is %d bytes, above MaxPrivateTxBytes %d", i, len(rec.Txs[i]), MaxPrivateTxBytes)
		case len(x.Output) > MaxOutputBytes:
			return nil, fmt.Errorf("output of transaction %d is %d bytes, above MaxOutputBytes %d", i, len(x.Output), MaxOutputBytes)
		case len(x.Rejected) > MaxReasonBytes:
			return nil, fmt.Errorf("rejection reason of transaction %d is %d bytes, above MaxReasonBytes %d", i, len(x.Rejected), MaxReasonBytes)
		case rec.Receipts[i].CumulativeGasUsed < cumulative:
			return nil, fmt.Errorf("receipt %d: cumulative gas %d below the previous receipt's %d", i, rec.Receipts[i].CumulativeGasUsed, cumulative)
		}
		cumulative = rec.Receipts[i].CumulativeGasUsed
	}
	return &rec, nil
}

// decodeTxs decodes the private transactions of a block record; the bytes
// of a rejected one may not decode (its entry is nil), those of one that
// ran always do, or the record is corrupt.
func (r *blockRecord) decodeTxs() ([]*privtx.Tx, error) {
	txs := make([]*privtx.Tx, len(r.Txs))
	for i, raw := range r.Txs {
		tx, err := privtx.Decode(raw)
		if err != nil {
			if r.Extras[i].Rejected == "" {
				return nil, fmt.Errorf("transaction %d ran, and does not decode: %w", i, err)
			}
			continue
		}
		txs[i] = tx
	}
	return txs, nil
}

func decodeTxLookup(raw []byte) (number uint64, index int, err error) {
	if len(raw) != 12 {
		return 0, 0, errors.New("transaction lookup of the wrong length")
	}
	return binary.BigEndian.Uint64(raw[:8]), int(binary.BigEndian.Uint32(raw[8:])), nil
}
