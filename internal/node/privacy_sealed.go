package node

import (
	"bytes"
	"sync"

	"github.com/ethereum/go-ethereum/common"
)

// sealedMemo remembers, for the payloads this node sealed, the private
// transaction it sealed and its sender, by the envelope's content hash
// (the marker's commitment), until the applier meets the marker: a
// sending node then neither opens its own envelope again (an X25519 and
// an ML-KEM decapsulation) nor recovers the sender's signature a second
// time. What it saves is only work: the content hash fixes the envelope,
// the envelope's commitment fixes the content key, so the plaintext every
// member opens is the one remembered here; a payload not remembered
// (evicted, or after a restart) is opened as any other. Safe for
// concurrent use.
type sealedMemo struct {
	mu    sync.Mutex
	items map[common.Hash]sealedTx
	order []common.Hash // insertion order, oldest first: eviction
	bytes int
}

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
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.items == nil {
		m.items = make(map[common.Hash]sealedTx)
	}
	if _, ok := m.items[hash]; ok {
		return
	}
	for len(m.order) > 0 && (len(m.items) >= maxSealedMemo || m.bytes+len(raw) > maxSealedMemoBytes) {
		m.dropOldestLocked()
	}
	m.items[hash] = sealedTx{raw: bytes.Clone(raw), from: from}
	m.order = append(m.order, hash)
	m.bytes += len(raw)
}

// dropOldestLocked forgets the oldest entry still in order (entries taken
// leave their hash in order; they are skipped here).
func (m *sealedMemo) dropOldestLocked() {
	h := m.order[0]
	m.order[0] = common.Hash{}
	m.order = m.order[1:]
	if it, ok := m.items[h]; ok {
		m.bytes -= len(it.raw)
		delete(m.items, h)
	}
	if len(m.order) == 0 {
		m.order = nil // let the backing array go
	}
}

// take returns and forgets what was sealed under hash. The caller owns
// raw.
func (m *sealedMemo) take(hash common.Hash) (raw []byte, from common.Address, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[hash]
	if !ok {
		return nil, common.Address{}, false
	}
	delete(m.items, hash)
	m.bytes -= len(it.raw)
	// order keeps the hash until it reaches the front; bound it as well.
	if len(m.order) > 2*maxSealedMemo {
		kept := m.order[:0]
		for _, h := range m.order {
			if _, live := m.items[h]; live {
				kept = append(kept, h)
			}
		}
		clear(m.order[len(kept):])
		m.order = kept
	}
	return it.raw, it.from, true
}

// len is the number of entries remembered.
func (m *sealedMemo) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}
