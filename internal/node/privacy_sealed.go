package node

import (
	"bytes"
	"sync"

	"github.com/ethereum/go-ethereum/common"
)

// hashMemo is a bounded memo of values by hash: at most a count and a
// number of bytes (each value's size as its owner counts it), the oldest
// going first. Safe for concurrent use; the zero value is empty.
type hashMemo[V any] struct {
	mu    sync.Mutex
	items map[common.Hash]memoEntry[V]
	order []common.Hash // insertion order, oldest first: eviction
	bytes int
}

type memoEntry[V any] struct {
	v    V
	size int
}

// put remembers v of size bytes under hash, unless hash is there already
// or v alone is above maxBytes; older entries go to keep both bounds.
func (m *hashMemo[V]) put(hash common.Hash, v V, size, maxItems, maxBytes int) {
	if size > maxBytes {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.items == nil {
		m.items = make(map[common.Hash]memoEntry[V])
	}
	if _, ok := m.items[hash]; ok {
		return
	}
	for len(m.order) > 0 && (len(m.items) >= maxItems || m.bytes+size > maxBytes) {
		m.dropOldestLocked()
	}
	m.items[hash] = memoEntry[V]{v: v, size: size}
	m.order = append(m.order, hash)
	m.bytes += size
}

// dropOldestLocked forgets the oldest entry still in order (entries taken
// leave their hash in order; they are skipped here).
func (m *hashMemo[V]) dropOldestLocked() {
	h := m.order[0]
	m.order[0] = common.Hash{}
	m.order = m.order[1:]
	if it, ok := m.items[h]; ok {
		m.bytes -= it.size
		delete(m.items, h)
	}
	if len(m.order) == 0 {
		m.order = nil // let the backing array go
	}
}

// take returns and forgets the value under hash if keep accepts it (nil:
// any); a value keep refuses stays.
func (m *hashMemo[V]) take(hash common.Hash, keep func(V) bool, maxItems int) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[hash]
	if !ok || (keep != nil && !keep(it.v)) {
		var zero V
		return zero, false
	}
	delete(m.items, hash)
	m.bytes -= it.size
	// order keeps the hash until it reaches the front; bound it as well.
	if len(m.order) > 2*maxItems {
		m.compactLocked()
	}
	return it.v, true
}

// drop forgets every value match accepts.
func (m *hashMemo[V]) drop(match func(V) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for h, it := range m.items {
		if match(it.v) {
			delete(m.items, h)
			m.bytes -= it.size
		}
	}
	m.compactLocked()
}

// compactLocked leaves in order only the hashes still remembered.
func (m *hashMemo[V]) compactLocked() {
	kept := m.order[:0]
	for _, h := range m.order {
		if _, live := m.items[h]; live {
			kept = append(kept, h)
		}
	}
	clear(m.order[len(kept):])
	m.order = kept
}

// len is the number of entries remembered.
func (m *hashMemo[V]) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}

// sealedMemo remembers, for the payloads this node sealed, the private
// transaction it sealed and its sender, by the envelope's content hash
// (the marker's commitment), until the applier meets the marker: a
// sending node then neither opens its own envelope again (an X25519 and
// an ML-KEM decapsulation) nor recovers the sender's signature a second
// time. What it saves is only work: the content hash fixes the envelope,
// the envelope's commitment fixes the content key, so the plaintext every
// member opens is the one remembered here; a payload not remembered
// (evicted, or after a restart) is opened as any other.
type sealedMemo struct{ hashMemo[sealedTx] }

type sealedTx struct {
	raw  []byte
	from common.Address
}

// Bounds of the sealed memo: entries and bytes of the transactions kept.
// Beyond either, the oldest entries go (their payloads are then opened).
const (
	maxSealedMemo      = 16_384
	maxSealedMemoBytes = 32 << 20
)

// put remembers raw (copied) and its sender under the content hash.
func (m *sealedMemo) put(hash common.Hash, raw []byte, from common.Address) {
	if len(raw) > maxSealedMemoBytes {
		return
	}
	m.hashMemo.put(hash, sealedTx{raw: bytes.Clone(raw), from: from}, len(raw), maxSealedMemo, maxSealedMemoBytes)
}

// take returns and forgets what was sealed under hash. The caller owns
// raw.
func (m *sealedMemo) take(hash common.Hash) (raw []byte, from common.Address, ok bool) {
	it, ok := m.hashMemo.take(hash, nil, maxSealedMemo)
	return it.raw, it.from, ok
}

// keptMemo remembers the envelopes this node kept recently (those it
// sealed and those pushed to it) by content hash and group, until the
// applier meets their markers: the applier then takes the envelope from
// memory instead of reading back from the payload store what was written
// to it moments before. The store holds every one of them all the same
// (they are put here only after it kept them); an envelope not
// remembered is read from it. A purge forgets the group's envelopes.
type keptMemo struct{ hashMemo[keptEnvelope] }

type keptEnvelope struct {
	group    common.Hash
	envelope []byte
}

// Bounds of the kept memo: envelopes and their bytes.
const (
	maxKeptMemo      = 16_384
	maxKeptMemoBytes = 64 << 20
)

// put remembers envelope, kept for group under hash; the memo holds
// envelope itself: the caller must not change it afterwards.
func (m *keptMemo) put(group, hash common.Hash, envelope []byte) {
	m.hashMemo.put(hash, keptEnvelope{group: group, envelope: envelope}, len(envelope), maxKeptMemo, maxKeptMemoBytes)
}

// take returns and forgets the envelope kept under hash for group; one
// kept for another group stays.
func (m *keptMemo) take(group, hash common.Hash) ([]byte, bool) {
	it, ok := m.hashMemo.take(hash, func(k keptEnvelope) bool { return k.group == group }, maxKeptMemo)
	return it.envelope, ok
}

// forget drops every envelope of group.
func (m *keptMemo) forget(group common.Hash) {
	m.hashMemo.drop(func(k keptEnvelope) bool { return k.group == group })
}
