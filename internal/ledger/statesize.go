package ledger

import "github.com/ethereum/go-ethereum/core/rawdb"

// StateDiskBytes estimates the bytes the state's trie nodes take in the
// store's tables: under the path scheme those of the account and storage
// tries, under the hash scheme (whose nodes are keyed by hash, among the
// other records) the whole store, which an archive's nodes dominate. What
// pathdb still holds in memory (the recent heights' layers, its write
// buffer) and what the store has not flushed yet are not counted. It
// reads table metadata only, and is cheap enough to call once a block.
func (l *Ledger) StateDiskBytes() (uint64, error) {
	if l.scheme.scheme == schemeHash {
		return l.kv.diskSize()
	}
	var total uint64
	for _, prefix := range [][]byte{rawdb.TrieNodeAccountPrefix, rawdb.TrieNodeStoragePrefix} {
		end := append([]byte{}, prefix...)
		end[len(end)-1]++
		n, err := l.kv.estimateDiskUsage(prefix, end)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}
