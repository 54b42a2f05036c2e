package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/ethereum/go-ethereum/triedb"
	"github.com/ethereum/go-ethereum/triedb/hashdb"
	"github.com/ethereum/go-ethereum/triedb/pathdb"
)

// How the world state is kept.
//
// The path scheme (go-ethereum's pathdb) keeps one copy of the state
// trie on disk, keyed by node path and overwritten in place, so the store
// stops growing with the number of updates. The state of the recent
// heights (the window, at most MaxStateHistory) is held in memory as
// layers of changes on top of it; pathdb merges the oldest layer into
// the disk copy as a new height arrives, and writes the merged changes
// out in atomic batches. A clean Close journals the layers to disk. After
// a crash the disk copy is some heights behind the head: Open replays
// those heights' blocks (Options.Replay) and so the head's state is there
// again, as the package promises; the window then starts at the replayed
// heights.
//
// The hash scheme (go-ethereum's hashdb) keys every trie node by its hash
// and never deletes one: every height's state stays readable and provable
// at the cost of ~2 KB of disk per updated account. It is what archive
// nodes use (StateHistory: StateArchive), and what earlier releases wrote.

// StateArchive as Options.StateHistory keeps the state of every height.
const StateArchive = uint64(math.MaxUint64)

// DefaultStateHistory is the number of past heights whose state is kept
// when Options.StateHistory is zero and the data directory records none.
const DefaultStateHistory = 128

// MaxStateHistory is the largest window of the path scheme: the number of
// layers go-ethereum's pathdb holds in memory.
const MaxStateHistory = 128

const (
	schemeHash = "hash"
	schemePath = "path"
)

var (
	keyScheme  = []byte("charter-state-scheme")  // "hash" | "path:N"
	keyCleanup = []byte("charter-state-cleanup") // present while hash-keyed nodes of a migration are being deleted
)

// ErrStateNotKept is wrapped by StateAt's error for a state the node no
// longer keeps (outside its window of --state.history heights).
var ErrStateNotKept = errors.New("state not kept")

// StateNotKeptError names the window of heights whose state is kept.
type StateNotKeptError struct {
	Root   common.Hash
	Window uint64 // past heights kept besides the head
}

func (e *StateNotKeptError) Error() string {
	return fmt.Sprintf("state %s is not kept: this node keeps the last %d blocks (--state.history)", e.Root.TerminalString(), e.Window)
}

// Is makes errors.Is(err, ErrStateNotKept) hold.
func (e *StateNotKeptError) Is(target error) bool { return target == ErrStateNotKept }

// StateWindow is the number of past heights kept, for messages that
// name the block instead of the root.
func (e *StateNotKeptError) StateWindow() uint64 { return e.Window }

// schemeRecord is the decoded keyScheme record.
type schemeRecord struct {
	scheme string
	window uint64 // path scheme only
}

func (r schemeRecord) encode() []byte {
	if r.scheme == schemePath {
		return []byte(schemePath + ":" + strconv.FormatUint(r.window, 10))
	}
	return []byte(schemeHash)
}

func readSchemeRecord(kv ethdb.KeyValueReader) (rec schemeRecord, found bool, err error) {
	has, err := kv.Has(keyScheme)
	if err != nil || !has {
		return rec, false, err
	}
	raw, err := kv.Get(keyScheme)
	if err != nil {
		return rec, false, err
	}
	s := string(raw)
	switch {
	case s == schemeHash:
		return schemeRecord{scheme: schemeHash}, true, nil
	case strings.HasPrefix(s, schemePath+":"):
		n, perr := strconv.ParseUint(strings.TrimPrefix(s, schemePath+":"), 10, 64)
		if perr == nil && n > 0 {
			return schemeRecord{scheme: schemePath, window: n}, true, nil
		}
	}
	return rec, false, fmt.Errorf("%w: state scheme record %q", ErrCorrupt, s)
}

// newTrieDB opens the trie database of the given scheme over db.
func newTrieDB(db ethdb.Database, rec schemeRecord, opts Options) *triedb.Database {
	if rec.scheme == schemeHash {
		return triedb.NewDatabase(db, &triedb.Config{HashDB: &hashdb.Config{CleanCacheSize: opts.TrieCacheMB << 20}})
	}
	return triedb.NewDatabase(db, &triedb.Config{PathDB: &pathdb.Config{
		TrieCleanSize:  opts.TrieCacheMB << 20 / 2,
		StateCleanSize: opts.TrieCacheMB << 20 / 2,
		// Merged layers wait here until it is full, then go to disk in
		// one batch: it bounds how many heights a crash makes Open
		// replay beyond the window.
		WriteBufferSize: opts.StateBufferMB << 20,
		// No history on disk: the window is the layers in memory.
		TrienodeHistory: -1,
	}})
}

// diskRoot is the root of the state trie stored under the path scheme.
func diskRoot(kv ethdb.KeyValueReader) common.Hash {
	blob := rawdb.ReadAccountTrieNode(kv, nil)
	if len(blob) == 0 {
		return types.EmptyRootHash
	}
	return crypto.Keccak256Hash(blob)
}

// chooseScheme decides how the state of the data directory is kept, from
// its record and the options, and whether the hash-scheme state found in
// it must first be moved to the path scheme.
func chooseScheme(rec schemeRecord, recorded, hasChain bool, opts Options) (use schemeRecord, migrate bool, err error) {
	archive := opts.StateHistory == StateArchive
	window := opts.StateHistory
	if window == 0 {
		window = DefaultStateHistory
	}
	if !archive && window > MaxStateHistory {
		return use, false, fmt.Errorf("state history of %d blocks: at most %d under the path scheme; give all to keep every block's state", window, MaxStateHistory)
	}
	switch {
	case !hasChain:
		// A new ledger (a record without genesis is from an interrupted
		// first start, and is decided again).
		if archive {
			return schemeRecord{scheme: schemeHash}, false, nil
		}
		return schemeRecord{scheme: schemePath, window: window}, false, nil
	case !recorded || rec.scheme == schemeHash:
		// Earlier releases kept every height's state by hash, and wrote
		// no record. A recorded archive stays one unless a window is
		// asked for explicitly.
		if archive || (recorded && opts.StateHistory == 0) {
			return schemeRecord{scheme: schemeHash}, false, nil
		}
		return schemeRecord{scheme: schemePath, window: window}, true, nil
	default: // path
		if archive {
			return rec, false, fmt.Errorf("this data directory keeps the state of the last %d blocks only, so it cannot serve --state.history all; "+
				"start an archive node on a new data directory, or give --state.history N", rec.window)
		}
		if opts.StateHistory != 0 {
			rec.window = opts.StateHistory
		}
		return rec, false, nil
	}
}

// migrateToPath rewrites the head state, kept by hash, under the path
// scheme, records the scheme, then deletes the hash-keyed nodes (all
// heights' state) and compacts the store. Interrupted before the record,
// it starts again at the next Open; after it, the deletion resumes.
func (l *Ledger) migrateToPath(db ethdb.Database, rec schemeRecord, opts Options) error {
	start := time.Now()
	sizeBefore, _ := l.kv.diskSize()
	number, root, err := l.storedHead()
	if err != nil {
		return err
	}
	hdb := triedb.NewDatabase(db, &triedb.Config{HashDB: &hashdb.Config{CleanCacheSize: opts.TrieCacheMB << 20}})
	defer hdb.Close()

	batch := l.kv.NewBatchWithSize(ethdb.IdealBatchSize * 2)
	flush := func() error {
		if batch.ValueSize() < ethdb.IdealBatchSize {
			return nil
		}
		if err := batch.Write(); err != nil {
			return err
		}
		batch.Reset()
		return nil
	}
	var accounts, slots, nodes int
	// copyTrie writes every stored node of one trie at its path.
	copyTrie := func(id *trie.ID, leaf func(key, blob []byte) error) error {
		t, err := trie.New(id, hdb)
		if err != nil {
			return err
		}
		it, err := t.NodeIterator(nil)
		if err != nil {
			return err
		}
		for it.Next(true) {
			if it.Hash() != (common.Hash{}) { // nodes embedded in their parent have none
				if id.Owner == (common.Hash{}) {
					rawdb.WriteAccountTrieNode(batch, it.Path(), it.NodeBlob())
				} else {
					rawdb.WriteStorageTrieNode(batch, id.Owner, it.Path(), it.NodeBlob())
				}
				nodes++
			}
			if it.Leaf() && leaf != nil {
				if err := leaf(it.LeafKey(), it.LeafBlob()); err != nil {
					return err
				}
			}
			if err := flush(); err != nil {
				return err
			}
		}
		return it.Error()
	}
	err = copyTrie(trie.StateTrieID(root), func(key, blob []byte) error {
		accounts++
		var acct types.StateAccount
		if err := rlp.DecodeBytes(blob, &acct); err != nil {
			return fmt.Errorf("account %x: %w", key, err)
		}
		if acct.Root == types.EmptyRootHash {
			return nil
		}
		return copyTrie(trie.StorageTrieID(root, common.BytesToHash(key), acct.Root), func(_, _ []byte) error {
			slots++
			return nil
		})
	})
	if err == nil {
		err = batch.Write()
	}
	if err != nil {
		return fmt.Errorf("move state of block %d to the path scheme: %w", number, err)
	}
	if got := diskRoot(l.kv); got != root {
		return fmt.Errorf("%w: state of block %d rewritten under the path scheme has root %s, want %s", ErrCorrupt, number, got.TerminalString(), root.TerminalString())
	}
	// The rewritten state is synced before the record says it is there.
	if err := l.kv.SyncKeyValue(); err != nil {
		return err
	}
	b := l.kv.NewBatch()
	if err := b.Put(keyScheme, rec.encode()); err != nil {
		return err
	}
	if err := b.Put(keyCleanup, []byte{1}); err != nil {
		return err
	}
	if err := b.Write(); err != nil {
		return err
	}
	if err := l.kv.SyncKeyValue(); err != nil {
		return err
	}
	freed, err := l.deleteHashNodes()
	if err != nil {
		return err
	}
	sizeAfter, _ := l.kv.diskSize()
	l.log.Info("Moved the state to the path scheme: the head state was rewritten by path and the older heights' state deleted",
		"head", number, "accounts", accounts, "slots", slots, "nodes", nodes,
		"deleted_bytes", freed, "disk_before", sizeBefore, "disk_after", sizeAfter,
		"kept_blocks", rec.window, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// deleteHashNodes deletes the trie nodes kept by hash (32-byte keys whose
// value hashes to the key), clears the cleanup mark and compacts the
// store so that the space is given back. It returns the bytes deleted.
func (l *Ledger) deleteHashNodes() (uint64, error) {
	var freed uint64
	it := l.kv.NewIterator(nil, nil)
	batch := l.kv.NewBatchWithSize(ethdb.IdealBatchSize * 2)
	for it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != common.HashLength || !bytes.Equal(crypto.Keccak256(v), k) {
			continue
		}
		if err := batch.Delete(common.CopyBytes(k)); err != nil {
			it.Release()
			return 0, err
		}
		freed += uint64(len(k) + len(v))
		if batch.ValueSize() >= ethdb.IdealBatchSize {
			if err := batch.Write(); err != nil {
				it.Release()
				return 0, err
			}
			batch.Reset()
		}
	}
	err := it.Error()
	it.Release()
	if err != nil {
		return 0, err
	}
	if err := batch.Delete(keyCleanup); err != nil {
		return 0, err
	}
	if err := batch.Write(); err != nil {
		return 0, err
	}
	if err := l.kv.SyncKeyValue(); err != nil {
		return 0, err
	}
	if err := l.kv.Compact(nil, nil); err != nil {
		return freed, fmt.Errorf("compact after deleting the hash-keyed state: %w", err)
	}
	return freed, nil
}

// storedHead reads the head pointer and the head block's state root.
func (l *Ledger) storedHead() (uint64, common.Hash, error) {
	raw, err := l.kv.Get(keyHead)
	if err != nil || len(raw) != 40 {
		return 0, common.Hash{}, fmt.Errorf("%w: head pointer missing or damaged", ErrCorrupt)
	}
	number, hash := decodeHead(raw)
	head := l.readBlock(number)
	if head == nil || head.Hash() != hash {
		return 0, common.Hash{}, fmt.Errorf("%w: head block %d (%s) missing or differs", ErrCorrupt, number, hash.TerminalString())
	}
	return number, head.Root(), nil
}

// rebuildState brings the state of the path scheme up to the head after
// a crash, replaying the blocks above the highest height whose state is
// there, and fills the window of kept roots.
func (l *Ledger) rebuildState(head *types.Block) error {
	number := head.NumberU64()
	from := number
	for {
		b := l.readBlock(from)
		if b == nil {
			return fmt.Errorf("%w: block %d missing", ErrCorrupt, from)
		}
		if _, err := l.triedb.StateReader(b.Root()); err == nil {
			break
		}
		if from == 0 {
			break
		}
		from--
	}
	start := time.Now()
	next := from + 1
	if from == 0 {
		if _, err := l.triedb.StateReader(l.genesis.Root()); err != nil {
			// Nothing merged to disk yet: the genesis state is built again.
			if disk := diskRoot(l.kv); disk != types.EmptyRootHash {
				return fmt.Errorf("%w: state on disk %s is not of any block", ErrCorrupt, disk.TerminalString())
			}
			_, st, err := l.buildGenesis(l.sdb)
			if err != nil {
				return err
			}
			if err := l.commitReplayed(l.genesis, st); err != nil {
				return err
			}
			next = 0 // counted below as rebuilt
		}
	}
	if next <= number {
		if l.replay == nil && max(next, 1) <= number {
			return fmt.Errorf("%w: the state of heights %d to %d was lost when the node stopped uncleanly; it is rebuilt from their blocks by a node (Options.Replay)",
				ErrCorrupt, max(next, 1), number)
		}
		l.log.Warn("The node stopped uncleanly: rebuilding the state of the heights it lost by executing their blocks again, before it starts",
			"from", max(next, 1), "to", number)
		lastLog := time.Now()
		for n := max(next, 1); n <= number; n++ {
			if time.Since(lastLog) >= replayProgressEvery {
				lastLog = time.Now()
				l.log.Info("Rebuilding the lost state", "height", n, "to", number, "left", number-n+1,
					"elapsed", time.Since(start).Round(time.Second))
			}
			parent, block := l.readBlock(n-1), l.readBlock(n)
			if parent == nil || block == nil {
				return fmt.Errorf("%w: block %d missing", ErrCorrupt, n)
			}
			st, err := state.New(parent.Root(), l.sdb)
			if err != nil {
				return fmt.Errorf("%w: state of block %d: %v", ErrCorrupt, n-1, err)
			}
			if err := l.replay(l, parent.Header(), block, st); err != nil {
				return fmt.Errorf("rebuild the state of block %d: %w", n, err)
			}
			if err := l.commitReplayed(block, st); err != nil {
				return err
			}
		}
		l.log.Warn("Rebuilt the state lost when the node stopped uncleanly, by executing the blocks again",
			"from", next, "to", number, "elapsed", time.Since(start).Round(time.Millisecond))
	}
	low := uint64(0)
	if number > l.scheme.window {
		low = number - l.scheme.window
	}
	for n := low; n <= number; n++ {
		if b := l.readBlock(n); b != nil {
			l.remember(b.Root(), n)
		}
	}
	return nil
}

// flushIfDue writes the whole state of the head to disk when pathdb has
// not written any for StateFlushHeights heights (a small state never
// fills its write buffer), bounding what a crash makes Open replay. It
// runs after the head pointer is synced: a crash during it leaves the
// state on disk at or below the head. After DeferFlushes it only notes
// that a write is due, for FlushIfDue.
func (l *Ledger) flushIfDue(root common.Hash, number uint64) {
	if id := rawdb.ReadPersistentStateID(l.kv); id != l.flushedID {
		l.flushedID, l.flushedHeight, l.flushWanted = id, number, false
		return
	}
	if number < l.flushedHeight+l.flushEvery || l.forks {
		return
	}
	parent := l.readBlock(number - 1)
	if parent == nil || parent.Root() == root {
		return // an unchanged state is no layer of its own; the next height
	}
	if l.deferFlushes {
		l.flushWanted = true
		return
	}
	l.flushHead(root, number)
}

// flushHead writes the head's state to disk unless a holder of older
// states (HoldStates) is reading them; then a later height does, and
// past flushWaitHeights it waits for the holders. commitMu is held.
func (l *Ledger) flushHead(root common.Hash, number uint64) {
	if !l.stateGate.TryLock() {
		if number < l.flushedHeight+l.flushEvery+flushWaitHeights {
			return
		}
		l.stateGate.Lock()
	}
	defer l.stateGate.Unlock()
	start := time.Now()
	err := l.triedb.Commit(root, false)
	l.flushes.Add(1)
	l.flushWanted = false
	if err != nil {
		l.flushedHeight = number // not again at every height
		l.log.Error("Could not write the state to disk; a crash now would replay more heights", "height", number, "err", err)
		return
	}
	l.flushedID, l.flushedHeight = rawdb.ReadPersistentStateID(l.kv), number
	l.log.Info("Wrote the state to disk; the window of past state restarts here", "height", number, "elapsed", time.Since(start).Round(time.Millisecond))
}

// flushWaitHeights is how many heights a due write of the head's state
// waits for a moment when no older state is held, before it waits for
// the holders to finish.
const flushWaitHeights = 64

// DeferFlushes makes Commit leave the periodic write of the head's state
// to FlushIfDue. Writing the head's state merges every layer below it
// into the disk copy: a state of an earlier height still in use (a view
// of the previous head not yet replaced, a block executed on a parent
// not yet committed) would then read nothing (go-ethereum's StateDB
// answers a failed read with a zero value and records the error). The
// caller runs FlushIfDue once those have moved to the head.
func (l *Ledger) DeferFlushes() {
	l.commitMu.Lock()
	l.deferFlushes = true
	l.commitMu.Unlock()
}

// FlushIfDue writes the head's state to disk if Commit found it due
// (DeferFlushes), unless a holder of older states (HoldStates) is
// reading them: a later call does it then.
func (l *Ledger) FlushIfDue() {
	l.commitMu.Lock()
	defer l.commitMu.Unlock()
	head := l.head.Load()
	if !l.flushWanted || head == nil {
		return
	}
	l.flushHead(head.Root, head.Number.Uint64())
}

// HoldStates keeps the layers of the states below the head in memory
// until release is called: no write of the head's state to disk (a
// periodic flush, ViewHead) runs meanwhile. Hold it while executing on
// the state of an uncommitted or earlier block; Flushes tells whether a
// write ran between two holds (states opened before it are unreadable).
func (l *Ledger) HoldStates() (release func()) {
	l.stateGate.RLock()
	return l.stateGate.RUnlock
}

// Flushes counts the writes of the head's state to disk that merged the
// layers below it: a state opened at an earlier height before the count
// changed can no longer be read.
func (l *Ledger) Flushes() uint64 { return l.flushes.Load() }

// replayProgressEvery is how often a long rebuild of lost state says how
// far it is (a rebuild after a crash under load can take minutes, and
// the node listens only once it is done).
var replayProgressEvery = 10 * time.Second

// commitReplayed commits the state of a block executed again into the
// layers in memory.
func (l *Ledger) commitReplayed(block *types.Block, st *state.StateDB) error {
	root, history, err := l.commitState(block, st)
	if err != nil {
		return fmt.Errorf("commit the rebuilt state of block %d: %w", block.NumberU64(), err)
	}
	if root != block.Root() {
		return fmt.Errorf("%w: block %d rebuilt: state %s, header %s", ErrRootMismatch, block.NumberU64(), root.TerminalString(), block.Root().TerminalString())
	}
	return l.writeReplayedHistory(block.NumberU64(), history)
}

// remember adds a kept root at height n and forgets the roots of heights
// that left the window.
func (l *Ledger) remember(root common.Hash, n uint64) {
	if l.scheme.scheme != schemePath {
		return
	}
	l.recentMu.Lock()
	defer l.recentMu.Unlock()
	if old, ok := l.recent[root]; !ok || old < n {
		l.recent[root] = n
	}
	if n > l.scheme.window {
		floor := n - l.scheme.window
		for r, h := range l.recent {
			if h < floor {
				delete(l.recent, r)
			}
		}
	}
}
