package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
)

// Body retention (an observer's --history.bodies): the bodies and
// receipts of old blocks are deleted, with the transaction index entries
// that point into them, while their headers and seals (certificates)
// stay, so the node still knows and proves every block of the chain.
//
// Layout: a pruned height's header moves from its block record (cb) to
// a header record (ch); keyBodies is the lowest height whose block
// record is still there (0: none pruned). One batch moves the headers,
// deletes the records and raises keyBodies, so a crash at any instant
// leaves every height either whole or pruned, and keyBodies right.
var (
	keyBodies  = []byte("charter-bodies") // number(8): the lowest height holding its body
	prefHeader = []byte("ch")             // ch | number -> header RLP (pruned heights only)
)

// ErrBodyPruned is wrapped by the error for a block whose body and
// receipts this node no longer keeps.
var ErrBodyPruned = errors.New("block body not kept")

// BodyPrunedError names the block and the retention that removed it.
type BodyPrunedError struct {
	Number uint64
	From   uint64 // the lowest height whose body is kept
	Keep   uint64 // the retention in force (Options.BodyHistory); 0: none now
}

func (e *BodyPrunedError) Error() string {
	if e.Keep == 0 {
		return fmt.Sprintf("the body and receipts of block %d are not kept: this node pruned those below block %d (--history.bodies)", e.Number, e.From)
	}
	return fmt.Sprintf("the body and receipts of block %d are not kept: this node keeps those of the last %d blocks (--history.bodies), from block %d", e.Number, e.Keep, e.From)
}

// Is makes errors.Is(err, ErrBodyPruned) hold.
func (e *BodyPrunedError) Is(target error) bool { return target == ErrBodyPruned }

// BodiesFrom is the lowest height whose body and receipts the ledger
// holds besides the genesis (0 or Base when none was pruned): blocks
// below it have their header and seal only.
func (l *Ledger) BodiesFrom() uint64 { return l.bodies.Load() }

// BodyHistory is the retention of Options.BodyHistory (0: every body).
func (l *Ledger) BodyHistory() uint64 { return l.bodyHistory }

// pruned reports whether the body of block number was pruned.
func (l *Ledger) pruned(number uint64) bool {
	return number > 0 && number < l.bodies.Load()
}

// BodyKept is nil when the ledger holds the body and receipts of block
// number (or does not know the block), else a *BodyPrunedError.
func (l *Ledger) BodyKept(number uint64) error {
	if !l.pruned(number) {
		return nil
	}
	return &BodyPrunedError{Number: number, From: l.bodies.Load(), Keep: l.bodyHistory}
}

// prunedHeader reads the header record of a pruned height.
func (l *Ledger) prunedHeader(number uint64) *types.Header {
	raw, err := l.kv.Get(key(prefHeader, binary.BigEndian.AppendUint64(nil, number)))
	if err != nil {
		return nil
	}
	h := new(types.Header)
	if err := rlp.DecodeBytes(raw, h); err != nil {
		l.log.Error("Stored header does not decode", "height", number, "err", err)
		return nil
	}
	return h
}

// HeaderByHash returns a committed header, or nil; it finds the headers
// of pruned blocks too.
func (l *Ledger) HeaderByHash(hash common.Hash) *types.Header {
	n, ok := l.NumberOf(hash)
	if !ok {
		return nil
	}
	if h := l.HeaderByNumber(n); h != nil && h.Hash() == hash {
		return h
	}
	return nil
}

// loadBodies reads keyBodies at Open.
func (l *Ledger) loadBodies() error {
	raw, err := l.kv.Get(keyBodies)
	if err != nil {
		if has, herr := l.kv.Has(keyBodies); herr == nil && !has {
			return nil
		}
		return fmt.Errorf("read body retention record: %w", err)
	}
	if len(raw) != 8 {
		return fmt.Errorf("%w: body retention record of %d bytes", ErrCorrupt, len(raw))
	}
	l.bodies.Store(binary.BigEndian.Uint64(raw))
	return nil
}

// PruneBodies deletes the bodies, receipts and transaction index entries
// of at most limit heights, the oldest first, among those below
// head-BodyHistory (none when BodyHistory is 0) and below ceiling (a
// reader that still needs them: the SQL index), keeping their headers
// and seals; it returns how many heights it pruned and the bytes of
// the records deleted. One batch, not synced: a crash loses at most the
// batch, which the next call repeats. Calls must not overlap; Commit may
// run meanwhile.
func (l *Ledger) PruneBodies(limit int, ceiling uint64) (heights int, bytes int, err error) {
	head := l.head.Load()
	if l.bodyHistory == 0 || head == nil || limit <= 0 {
		return 0, 0, nil
	}
	number := head.Number.Uint64()
	if number <= l.bodyHistory {
		return 0, 0, nil
	}
	below := min(number-l.bodyHistory, ceiling)
	from := max64(l.bodies.Load(), l.base, 1)
	if from >= below {
		return 0, 0, nil
	}
	to := min(below, from+uint64(limit))
	batch := l.kv.NewBatch()
	for n := from; n < to; n++ {
		num := binary.BigEndian.AppendUint64(nil, n)
		raw, gerr := l.kv.Get(key(prefBlock, num))
		if gerr != nil {
			return 0, 0, fmt.Errorf("%w: prune bodies: block %d: %v", ErrCorrupt, n, gerr)
		}
		b := new(types.Block)
		if derr := rlp.DecodeBytes(raw, b); derr != nil {
			return 0, 0, fmt.Errorf("%w: prune bodies: block %d: %v", ErrCorrupt, n, derr)
		}
		hraw, _ := rlp.EncodeToBytes(b.Header())
		if err = batch.Put(key(prefHeader, num), hraw); err != nil {
			return 0, 0, err
		}
		if err = batch.Delete(key(prefBlock, num)); err != nil {
			return 0, 0, err
		}
		bytes += len(raw)
		if rraw, rerr := l.kv.Get(key(prefReceipt, num)); rerr == nil {
			bytes += len(rraw)
		}
		if err = batch.Delete(key(prefReceipt, num)); err != nil {
			return 0, 0, err
		}
		for _, tx := range b.Transactions() {
			h := tx.Hash()
			if err = batch.Delete(key(prefTx, h[:])); err != nil {
				return 0, 0, err
			}
			bytes += len(prefTx) + len(h) + 12
		}
	}
	if err = batch.Put(keyBodies, binary.BigEndian.AppendUint64(nil, to)); err != nil {
		return 0, 0, err
	}
	if err = batch.Write(); err != nil {
		return 0, 0, fmt.Errorf("prune bodies %d-%d: %w", from, to-1, err)
	}
	// Readers check the floor before the caches, so a block read into a
	// cache meanwhile is never answered.
	l.bodies.Store(to)
	for n := from; n < to; n++ {
		l.blocks.Remove(n)
		l.receipts.Remove(n)
	}
	return int(to - from), bytes, nil
}

// CompactBodies compacts the store's block and receipt records below
// height to, so that the space of pruned bodies returns to the disk
// (pebble drops deleted records at compaction).
func (l *Ledger) CompactBodies(to uint64) error {
	end := binary.BigEndian.AppendUint64(nil, to)
	for _, p := range [][]byte{prefBlock, prefReceipt} {
		if err := l.kv.Compact(key(p, make([]byte, 8)), key(p, end)); err != nil {
			return err
		}
	}
	return nil
}

// DiskSize is the bytes of the store's tables and logs on disk.
func (l *Ledger) DiskSize() (uint64, error) { return l.kv.diskSize() }

// BodiesDiskUsage estimates the bytes of the store's tables that hold the
// block and receipt records below height to (what is in memory or the
// write-ahead log is not counted).
func (l *Ledger) BodiesDiskUsage(to uint64) (uint64, error) {
	end := binary.BigEndian.AppendUint64(nil, to)
	var total uint64
	for _, p := range [][]byte{prefBlock, prefReceipt} {
		n, err := l.kv.estimateDiskUsage(key(p, make([]byte, 8)), key(p, end))
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func max64(a uint64, rest ...uint64) uint64 {
	for _, b := range rest {
		a = max(a, b)
	}
	return a
}
