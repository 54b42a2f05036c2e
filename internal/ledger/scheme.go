package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/rawdb"
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
// trie, keyed by node path, overwritten in place, plus a bounded history
// of reverse diffs: the store stops growing with the number of updates.
// Every height is flushed to disk before its head pointer is written (no
// state lives only in memory), so the crash promise of the package holds
// as with the hash scheme; a crash after the state flush and before the
// head pointer is undone at the next Open by one step of the history.
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

// historyDB gives pathdb a directory for its state history files: the
// ledger's database has no ancient store of its own.
type historyDB struct {
	ethdb.Database
	dir string
}

func (h historyDB) AncientDatadir() (string, error) { return h.dir, nil }

// newTrieDB opens the trie database of the given scheme over db.
func newTrieDB(db ethdb.Database, rec schemeRecord, opts Options) *triedb.Database {
	if rec.scheme == schemeHash {
		return triedb.NewDatabase(db, &triedb.Config{HashDB: &hashdb.Config{CleanCacheSize: opts.TrieCacheMB << 20}})
	}
	return triedb.NewDatabase(db, &triedb.Config{PathDB: &pathdb.Config{
		TrieCleanSize:  opts.TrieCacheMB << 20 / 2,
		StateCleanSize: opts.TrieCacheMB << 20 / 2,
		// Every height is flushed at once (see Commit); the buffer only
		// holds one height's writes.
		WriteBufferSize: 16 << 20,
		NoAsyncFlush:    true,
		// History of the window: reverse diffs of accounts and slots for
		// historical reads, of trie nodes for historical proofs.
		StateHistory:        rec.window,
		TrienodeHistory:     int64(rec.window),
		EnableStateIndexing: true,
		// The indexer would otherwise wait for go-ethereum's own head
		// block record, which the ledger does not write.
		NoHistoryIndexDelay: true,
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

// copyDir copies the regular files under src into dst (which must not
// exist), keeping the tree; lock files are left out.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !d.Type().IsRegular() || d.Name() == "FLOCK" {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Sync(); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
