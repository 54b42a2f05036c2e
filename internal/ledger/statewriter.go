package ledger

import (
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/ethdb"
)

// stateWriter writes a whole state, built elsewhere (trie.StackTrie
// callbacks, contract code, flat state entries), straight to a store in
// batches of at most about ethdb.IdealBatchSize, so that its memory stays
// bounded whatever the size of the state. It is what a snapshot import
// and a new ledger's genesis write their state through. Not goroutine
// safe; Flush must be called at the end.
type stateWriter struct {
	batch  ethdb.Batch
	scheme string // rawdb.HashScheme or rawdb.PathScheme, how nodes are keyed
	flat   bool   // also write the flat state (pathdb's snapshot)
}

func newStateWriter(db ethdb.KeyValueStore, scheme string, flat bool) *stateWriter {
	return &stateWriter{batch: db.NewBatchWithSize(ethdb.IdealBatchSize * 2), scheme: scheme, flat: flat}
}

func (w *stateWriter) flushIfFull() error {
	if w.batch.ValueSize() < ethdb.IdealBatchSize {
		return nil
	}
	return w.Flush()
}

// Flush writes what is batched.
func (w *stateWriter) Flush() error {
	if err := w.batch.Write(); err != nil {
		return err
	}
	w.batch.Reset()
	return nil
}

// Node writes one trie node (a trie.StackTrie's OnTrieNode): owner is
// zero for the account trie, the account's hash for a storage trie.
func (w *stateWriter) Node(owner common.Hash, path []byte, hash common.Hash, blob []byte) error {
	rawdb.WriteTrieNode(w.batch, owner, path, hash, blob, w.scheme)
	return w.flushIfFull()
}

// Code writes contract code.
func (w *stateWriter) Code(hash common.Hash, code []byte) error {
	rawdb.WriteCode(w.batch, hash, code)
	return w.flushIfFull()
}

// Account writes the flat entry of an account (slim RLP), if the writer
// keeps flat state.
func (w *stateWriter) Account(hash common.Hash, slim []byte) error {
	if !w.flat {
		return nil
	}
	rawdb.WriteAccountSnapshot(w.batch, hash, slim)
	return w.flushIfFull()
}

// Slot writes the flat entry of a storage slot (the trie leaf's value),
// if the writer keeps flat state.
func (w *stateWriter) Slot(account, slot common.Hash, value []byte) error {
	if !w.flat {
		return nil
	}
	rawdb.WriteStorageSnapshot(w.batch, account, slot, value)
	return w.flushIfFull()
}
