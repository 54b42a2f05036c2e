package privstate

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethdb"

	"github.com/charter-ledger/charter/internal/privacy"
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
//	'i' | hash (32)                           -> position (8) [| form (1)]
//	'k' | keccak256 of a ciphertext (32)      -> ML-KEM ciphertext
//
// An envelope of the hybrid-session scheme is kept detached (form 1,
// privacy.Detach): each entry's ML-KEM ciphertext, the same in every
// envelope of one session, is kept once under a 'k' key and named by its
// hash in the envelope, which so takes about 0.5 kB instead of 2.6 kB for
// two recipients. Other payloads are kept as they are (form 0, and index
// entries without the form byte, as earlier builds wrote them).
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

	kmu   sync.Mutex
	kemOK map[[32]byte]struct{} // ciphertexts known to be kept ('k' keys); at most maxKnownKEMs

	rmu    sync.Mutex
	seed   maphash.Seed
	recent map[uint64]recentKEM // ciphertexts met lately with their keccak256; at most maxRecentKEMs
}

// recentKEM is a ciphertext and its keccak256.
type recentKEM struct {
	ct   []byte
	hash [32]byte
}

// maxRecentKEMs bounds the ciphertexts a payload store remembers with
// their hashes: those of the sessions in use (one a sending node and
// recipient key), each met in every envelope of its session.
const maxRecentKEMs = 64

// maxKnownKEMs bounds the ciphertexts a payload store remembers having
// kept (one a session and recipient key); beyond, it starts again and
// asks the database.
const maxKnownKEMs = 4_096

// Index forms: how the payload at a position is kept.
const (
	formWhole    = 0 // the bytes as given
	formDetached = 1 // privacy.Detach's form, the ciphertexts under 'k' keys
)

// payloadDirName is the payload store's folder inside a group's folder.
const payloadDirName = "payloads"

// payloadHandles is a payload store's file budget (its reads are rare:
// the applier takes payloads just kept from the node's memory).
const payloadHandles = 16

var (
	prefPayloadData  = []byte("d")
	prefPayloadIndex = []byte("i")
	prefPayloadKEM   = []byte("k")
)

func openPayloadStore(s *Store, dir string) (*payloadStore, error) {
	kv, err := s.openKV(dir, payloadHandles)
	if err != nil {
		return nil, fmt.Errorf("open payload store %s: %w", dir, err)
	}
	ps := &payloadStore{kv: kv, seed: maphash.MakeSeed()}
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
// against the payload, so that the bytes are the same; fresh says that
// the payload cannot be kept yet (this node sealed it just now, with a
// content key of its own drawing), and the store does not look. Two
// concurrent puts of one hash may both write it; the index names the
// later copy, the other stays unreferenced (bounded by the concurrent
// writers).
func (ps *payloadStore) put(hash common.Hash, payload []byte, fresh bool) error {
	ik := key(prefPayloadIndex, hash[:])
	if !fresh {
		has, err := ps.kv.Has(ik)
		if err != nil {
			return err
		}
		if has {
			return nil
		}
	}
	stored, form := payload, byte(formWhole)
	var kems []privacy.DetachedKEM
	if len(payload) > 0 && privacy.Scheme(payload[0]) == privacy.SchemeHybridSession {
		if d, k, err := privacy.DetachHashed(payload, ps.kemHash); err == nil {
			stored, kems, form = d, k, formDetached
		}
	}
	position := ps.next.Add(1)
	batch := ps.kv.NewBatchWithSize(len(stored) + 2*(1+8+common.HashLength) + 1)
	var added [][32]byte
	for _, k := range kems {
		known, err := ps.kemKept(k.Hash)
		if err != nil {
			return err
		}
		if known || slices.Contains(added, k.Hash) {
			continue
		}
		if err := batch.Put(key(prefPayloadKEM, k.Hash[:]), k.Ciphertext); err != nil {
			return err
		}
		added = append(added, k.Hash)
	}
	if err := batch.Put(payloadDataKey(position, hash), stored); err != nil {
		return err
	}
	index := binary.BigEndian.AppendUint64(nil, position)
	if form != formWhole {
		index = append(index, form)
	}
	if err := batch.Put(ik, index); err != nil {
		return err
	}
	if err := batch.Write(); err != nil {
		return err
	}
	ps.noteKEMs(added)
	ps.dirty.Store(true)
	return nil
}

// kemHash is keccak256 of ct, remembered for the ciphertexts met lately.
func (ps *payloadStore) kemHash(ct []byte) [32]byte {
	k := maphash.Bytes(ps.seed, ct)
	ps.rmu.Lock()
	r, ok := ps.recent[k]
	ps.rmu.Unlock()
	if ok && bytes.Equal(r.ct, ct) {
		return r.hash
	}
	h := crypto.Keccak256Hash(ct)
	ps.rmu.Lock()
	defer ps.rmu.Unlock()
	if ps.recent == nil || len(ps.recent) >= maxRecentKEMs {
		ps.recent = make(map[uint64]recentKEM)
	}
	ps.recent[k] = recentKEM{ct: bytes.Clone(ct), hash: h}
	return h
}

// kemKept reports whether the ciphertext named h is kept already.
func (ps *payloadStore) kemKept(h [32]byte) (bool, error) {
	ps.kmu.Lock()
	_, ok := ps.kemOK[h]
	ps.kmu.Unlock()
	if ok {
		return true, nil
	}
	has, err := ps.kv.Has(key(prefPayloadKEM, h[:]))
	if err == nil && has {
		ps.noteKEMs([][32]byte{h})
	}
	return has, err
}

// noteKEMs remembers ciphertexts written (or found) in the database.
func (ps *payloadStore) noteKEMs(hs [][32]byte) {
	if len(hs) == 0 {
		return
	}
	ps.kmu.Lock()
	defer ps.kmu.Unlock()
	if ps.kemOK == nil || len(ps.kemOK)+len(hs) > maxKnownKEMs {
		ps.kemOK = make(map[[32]byte]struct{})
	}
	for _, h := range hs {
		ps.kemOK[h] = struct{}{}
	}
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
	form := byte(formWhole)
	switch len(raw) {
	case 8:
	case 9:
		form = raw[8]
	default:
		return nil, false, fmt.Errorf("payload index entry of %d bytes", len(raw))
	}
	position := binary.BigEndian.Uint64(raw)
	payload, err = ps.kv.Get(payloadDataKey(position, hash))
	if err != nil {
		return nil, false, fmt.Errorf("payload at position %d: %w", position, err)
	}
	switch form {
	case formWhole:
	case formDetached:
		payload, err = privacy.Attach(payload, func(h [32]byte) ([]byte, error) {
			return ps.kv.Get(key(prefPayloadKEM, h[:]))
		})
		if err != nil {
			return nil, false, fmt.Errorf("payload at position %d: %w", position, err)
		}
	default:
		return nil, false, fmt.Errorf("payload at position %d kept in form %d, which this build does not read", position, form)
	}
	return payload, true, nil
}
