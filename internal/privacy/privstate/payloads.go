package privstate

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethdb"
)

// The payload store of a group: the encrypted envelopes it was sent, in a
// pebble database of its own (groups/<hex group id>/payloads/).
//
// Why apart from the group's database: payloads are most of the bytes a
// group writes (an envelope of two recipients is 0.5 to 2.6 kB, a
// transfer's trie nodes and records a few hundred bytes), and the group's
// database is keyed by hashes (trie nodes), so that every flush of it
// overlaps its whole key range and its compactions rewrote the payloads
// again and again. Here payloads are keyed by the order they arrived in:
// a flush holds keys above every older payload's, and pebble moves its
// payload files down the levels without rewriting them. Only the small
// hash index (hash -> position) overlaps itself; its keys sort after the
// payloads' so that its compactions do not take payload files along.
//
// Keys:
//
//	'd' | position (8, big-endian) | hash (32) -> payload bytes
//	'i' | hash (32)                           -> position (8)
//
// A position is the wall clock at the store's opening in nanoseconds,
// plus one per payload kept since: increasing while the process runs and,
// unless the clock steps back, across restarts. The hash in the data key
// keeps two payloads apart even when a clock step back repeats a
// position (it would only cost the order, not a payload). Nothing is ever
// deleted: a group's payloads go with its folder when it is purged.
type payloadStore struct {
	kv    ethdb.KeyValueStore
	next  atomic.Uint64 // position of the next payload, minus one
	dirty atomic.Bool   // written since its last sync
}

// payloadDirName is the payload store's folder inside a group's folder.
const payloadDirName = "payloads"

// payloadHandles is a payload store's file budget (its reads are rare:
// the applier takes payloads just kept from the node's memory).
const payloadHandles = 16

var (
	prefPayloadData  = []byte("d")
	prefPayloadIndex = []byte("i")
)

func openPayloadStore(s *Store, dir string) (*payloadStore, error) {
	kv, err := s.openKV(dir, payloadHandles)
	if err != nil {
		return nil, fmt.Errorf("open payload store %s: %w", dir, err)
	}
	ps := &payloadStore{kv: kv}
	ps.next.Store(uint64(time.Now().UnixNano()))
	return ps, nil
}

func (ps *payloadStore) close() error { return ps.kv.Close() }

func payloadDataKey(position uint64, hash common.Hash) []byte {
	k := make([]byte, 0, len(prefPayloadData)+8+common.HashLength)
	k = append(k, prefPayloadData...)
	k = binary.BigEndian.AppendUint64(k, position)
	return append(k, hash[:]...)
}

// put keeps payload under hash, without a sync (sync makes it durable).
// A payload kept already is not written again: the caller checked hash
// against the payload, so that the bytes are the same. Two concurrent
// puts of one hash may both write it; the index names the later copy,
// the other stays unreferenced (bounded by the concurrent writers).
func (ps *payloadStore) put(hash common.Hash, payload []byte) error {
	ik := key(prefPayloadIndex, hash[:])
	has, err := ps.kv.Has(ik)
	if err != nil {
		return err
	}
	if has {
		return nil
	}
	position := ps.next.Add(1)
	batch := ps.kv.NewBatchWithSize(len(payload) + 2*(1+8+common.HashLength))
	if err := batch.Put(payloadDataKey(position, hash), payload); err != nil {
		return err
	}
	if err := batch.Put(ik, binary.BigEndian.AppendUint64(nil, position)); err != nil {
		return err
	}
	if err := batch.Write(); err != nil {
		return err
	}
	ps.dirty.Store(true)
	return nil
}

// sync makes every payload put before it durable; it does nothing when
// none was put since the last sync.
func (ps *payloadStore) sync() error {
	if !ps.dirty.Swap(false) {
		return nil
	}
	if err := ps.kv.SyncKeyValue(); err != nil {
		ps.dirty.Store(true)
		return err
	}
	return nil
}

// get reads the payload kept under hash; ok is false when there is none.
// The index is written in the same batch as the payload, after it, and
// nothing is deleted: a position the index names is there.
func (ps *payloadStore) get(hash common.Hash) (payload []byte, ok bool, err error) {
	ik := key(prefPayloadIndex, hash[:])
	has, err := ps.kv.Has(ik)
	if err != nil || !has {
		return nil, false, err
	}
	raw, err := ps.kv.Get(ik)
	if err != nil {
		return nil, false, err
	}
	if len(raw) != 8 {
		return nil, false, fmt.Errorf("payload index entry of %d bytes", len(raw))
	}
	payload, err = ps.kv.Get(payloadDataKey(binary.BigEndian.Uint64(raw), hash))
	if err != nil {
		return nil, false, fmt.Errorf("payload at position %d: %w", binary.BigEndian.Uint64(raw), err)
	}
	return payload, true, nil
}
