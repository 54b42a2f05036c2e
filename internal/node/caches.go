package node

import "math"

// Bounds of the ledger's caches (megabytes) that ledgerCacheMB sizes from
// the process's memory limit.
const (
	minStoreCacheMB = 256  // pebble's block cache: ledger.Options.CacheMB's default
	maxStoreCacheMB = 1024 // beyond it the OS page cache serves as well
	minStateCacheMB = 256  // trie nodes and flat accounts: ledger.Options.TrieCacheMB's default
	maxStateCacheMB = 2048 // most of a 5,000,000-account state
)

// ledgerCacheMB sizes the ledger's caches from the Go runtime's soft
// memory limit (debug.SetMemoryLimit; math.MaxInt64 when none is set):
// the store's block cache an eighth of it, the clean trie node and flat
// state cache a quarter, each within its bounds. Both caches live outside
// the Go heap, so the limit does not count them: a validator whose limit
// is a quarter of its machine's memory (cmd/charter) keeps at most 3 GiB
// in them, three eighths of the limit below that. With no limit they keep
// the ledger's defaults. A state larger than the caches reads its
// remaining trie nodes and accounts from the store, which is what makes a
// block of transfers to random accounts of a large state slower.
func ledgerCacheMB(memoryLimit int64) (storeMB, stateMB int) {
	if memoryLimit <= 0 || memoryLimit == math.MaxInt64 {
		return minStoreCacheMB, minStateCacheMB
	}
	mb := memoryLimit >> 20
	return int(min(max(mb/8, minStoreCacheMB), maxStoreCacheMB)), int(min(max(mb/4, minStateCacheMB), maxStateCacheMB))
}
