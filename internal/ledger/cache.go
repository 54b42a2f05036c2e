package ledger

import (
	"sync"

	"github.com/ethereum/go-ethereum/common/lru"
	"github.com/ethereum/go-ethereum/core/types"
)

// sizedCache is a least-recently-used cache of decoded blocks or receipts
// by height, bounded in entries and in bytes (size estimates each value's
// memory): a count alone lets a run of big blocks hold hundreds of MiB.
// A value above the byte bound is not kept. It is goroutine-safe.
type sizedCache[V any] struct {
	mu       sync.Mutex
	lru      lru.BasicLRU[uint64, sized[V]]
	entries  int
	bytes    int
	maxBytes int
	size     func(V) int
}

type sized[V any] struct {
	v    V
	size int
}

func newSizedCache[V any](entries, maxBytes int, size func(V) int) *sizedCache[V] {
	entries = max(entries, 1)
	return &sizedCache[V]{lru: lru.NewBasicLRU[uint64, sized[V]](entries), entries: entries, maxBytes: maxBytes, size: size}
}

func (c *sizedCache[V]) Get(k uint64) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Get(k)
	return e.v, ok
}

func (c *sizedCache[V]) Add(k uint64, v V) {
	n := c.size(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.lru.Peek(k); ok {
		c.lru.Remove(k)
		c.bytes -= old.size
	}
	if n > c.maxBytes {
		return
	}
	for c.lru.Len() > 0 && (c.lru.Len() >= c.entries || c.bytes+n > c.maxBytes) {
		_, old, _ := c.lru.RemoveOldest()
		c.bytes -= old.size
	}
	c.lru.Add(k, sized[V]{v: v, size: n})
	c.bytes += n
}

// Remove drops k's entry, if kept.
func (c *sizedCache[V]) Remove(k uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.lru.Peek(k); ok {
		c.lru.Remove(k)
		c.bytes -= old.size
	}
}

// Len and Bytes are the entries and estimated bytes held.
func (c *sizedCache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *sizedCache[V]) Bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// blockMemory estimates a decoded block's memory: its encoded size and
// the objects of its transactions (a transaction decodes into a few
// hundred bytes of structs, big integers and caches beyond its encoding).
func blockMemory(b *types.Block) int {
	return int(b.Size()) + 512 + 384*len(b.Transactions())
}

// receiptsMemory estimates decoded receipts' memory: a receipt's structs
// and bloom, and its logs' topics and data.
func receiptsMemory(rs types.Receipts) int {
	n := 0
	for _, r := range rs {
		n += 512
		for _, l := range r.Logs {
			n += 256 + len(l.Data) + 32*len(l.Topics)
		}
	}
	return n
}
