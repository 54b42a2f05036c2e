// Package ledger stores the chain: blocks, receipts, the transaction index,
// engine seals, the head pointer and the world state, in one pebble
// database. Everything written for one height becomes visible atomically:
// the head pointer is the last write of a height and is synced to disk
// before Commit returns, so a crash at any instant leaves the ledger at the
// previous or the new height, never between, with that height's state once
// Open returns. Under the path scheme (the default, see scheme.go) the
// state of the recent heights is held in memory and Open rebuilds what a
// crash lost by executing those blocks again (Options.Replay). The system
// contracts' storage has a history of its own there (syshist.go,
// SystemStateAt), so that the registry as of any block since it began
// stays readable.
package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/ethereum/go-ethereum/triedb"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/system"
)

// Key layout. Numbers are 8-byte big-endian so that keys sort by height.
var (
	keyHead     = []byte("charter-head")    // number(8) | hash(32)
	keyBase     = []byte("charter-base")    // number(8): the snapshot block a ledger started from
	keyGenesis  = []byte("charter-genesis") // genesis hash(32) | chain id(8)
	prefBlock   = []byte("cb")              // cb | number -> block RLP
	prefNumber  = []byte("cn")              // cn | hash -> number
	prefReceipt = []byte("cr")              // cr | number -> []ReceiptForStorage RLP
	prefTx      = []byte("cx")              // cx | tx hash -> number | index(4)
	prefSeal    = []byte("cs")              // cs | number -> engine seal
)

// Errors callers may test for.
var (
	ErrGenesisMismatch = errors.New("data directory holds another chain")
	ErrCorrupt         = errors.New("ledger corrupt")
	ErrNotNext         = errors.New("block is not the child of the head")
	ErrRootMismatch    = errors.New("committed state root differs from the block's")
)

// Options tune the store.
type Options struct {
	CacheMB     int // pebble block cache; default 256
	TrieCacheMB int // clean trie node and state cache; default 256
	BlockCacheN int // recent blocks kept decoded, and their receipts; default 256
	// BlockCacheMB bounds the memory of the recent blocks kept decoded,
	// and that of their receipts (each); default 32.
	BlockCacheMB int

	// StateHistory is the number of past heights whose state stays
	// readable (and provable) besides the head's, at most
	// MaxStateHistory: StateArchive keeps every height's; zero keeps what
	// the data directory records, or DefaultStateHistory for a new one or
	// one of an earlier release.
	StateHistory uint64

	// StateBufferMB bounds the state changes (path scheme) merged out of
	// the window and waiting to be written to disk in one batch; default
	// 16. It bounds how many heights beyond the window a crash makes
	// Open replay.
	StateBufferMB int

	// StateFlushHeights (path scheme) writes the whole state of the head
	// to disk every so many heights (default 4096) when the write buffer
	// has not filled, so that a crash never makes Open replay more; the
	// window then restarts at that height.
	StateFlushHeights uint64

	// Forks (path scheme) says that blocks below the head may still be
	// replaced by another branch (poa: blocks not final yet), so the
	// parents of competing blocks must stay readable. Writing a state to
	// disk (a periodic flush, a view of the head) drops every state below
	// it, so with Forks neither happens: views read the live state, and
	// what a crash makes Open replay is bounded by the write buffer
	// (StateBufferMB) alone.
	Forks bool

	// BodyHistory, when above 0, lets PruneBodies delete the bodies,
	// receipts and transaction index entries of the blocks below
	// head-BodyHistory (headers and seals stay); 0 keeps every body.
	BodyHistory uint64

	// Replay executes block on st, the state of its parent, leaving the
	// block's state in st (uncommitted). Open calls it to rebuild the
	// heights whose state a crash lost (path scheme: the recent heights'
	// state is held in memory); without it such a directory does not
	// open.
	Replay ReplayFunc
}

// ReplayFunc re-executes a committed block; see Options.Replay. l is
// the ledger being opened (its head is set, for block hashes).
type ReplayFunc func(l *Ledger, parent *types.Header, block *types.Block, st *state.StateDB) error

func (o *Options) ensureDefaults() {
	if o.CacheMB == 0 {
		o.CacheMB = 256
	}
	if o.TrieCacheMB == 0 {
		o.TrieCacheMB = 256
	}
	if o.BlockCacheN == 0 {
		o.BlockCacheN = 256
	}
	if o.BlockCacheMB == 0 {
		o.BlockCacheMB = 32
	}
	if o.StateBufferMB == 0 {
		o.StateBufferMB = 16
	}
	if o.StateFlushHeights == 0 {
		o.StateFlushHeights = 4096
	}
}

// testCrashPoint, set by tests only, is called at the points of Commit
// where a crash is most telling.
var testCrashPoint func(stage string, height uint64)

// Ledger is the chain store of one node. Reads are goroutine-safe and may
// run concurrently with Commit; Commit calls are serialized.
type Ledger struct {
	spec   *chain.Spec
	kv     *kvStore
	db     ethdb.Database
	triedb *triedb.Database
	sdb    state.Database
	log    *slog.Logger

	scheme schemeRecord
	base   uint64 // see Base
	replay ReplayFunc

	// Path scheme: the persistent state id of pathdb at the last height
	// it moved, and that height; guarded by commitMu.
	flushEvery    uint64
	forks         bool // Options.Forks
	flushedID     uint64
	flushedHeight uint64
	// flushWanted says a periodic write of the head's state is due and
	// was left to FlushIfDue (DeferFlushes); guarded by commitMu.
	flushWanted  bool
	deferFlushes bool

	// stateGate is held shared by whoever reads states of heights below
	// the head while blocks are committed (HoldStates) and exclusively by
	// a write of the head's state to disk, which merges every layer
	// below the head; flushes counts those writes (Flushes).
	stateGate sync.RWMutex
	flushes   atomic.Uint64

	// recent maps the state roots of the kept heights (path scheme) to
	// the highest height with that root; heights below head-window are
	// dropped at each Commit.
	recentMu sync.RWMutex
	recent   map[common.Hash]uint64

	commitMu sync.Mutex
	head     atomic.Pointer[types.Header]
	genesis  *types.Block

	blocks   *sizedCache[*types.Block]
	receipts *sizedCache[types.Receipts]

	// bodies is the lowest height whose body is held (bodies.go);
	// bodyHistory is Options.BodyHistory.
	bodies      atomic.Uint64
	bodyHistory uint64

	// sysHist says the ledger keeps the history of the system contracts'
	// state (path scheme), from block sysHistStart (syshist.go). Both are
	// set by Open and do not change.
	sysHist      bool
	sysHistStart uint64
	sysHistHead  uint64    // as Open found it; Commit writes it, not this field
	usage        usageSkip // guarded by commitMu
}

// Open opens (or creates) the ledger in dir for the chain described by
// spec. A fresh directory gets the genesis block; an existing one must hold
// the same genesis, and its head state must be present.
func Open(dir string, spec *chain.Spec, opts Options, log *slog.Logger) (*Ledger, error) {
	opts.ensureDefaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	kv, err := openKVStore(filepath.Join(dir, "chaindata"), KVOptions{CacheMB: opts.CacheMB}, log)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", filepath.Join(dir, "chaindata"), err)
	}
	db := rawdb.NewDatabase(kv)
	l := &Ledger{
		spec:       spec,
		kv:         kv,
		db:         db,
		log:        log,
		replay:     opts.Replay,
		flushEvery: opts.StateFlushHeights,

		bodyHistory: opts.BodyHistory,
		forks:       opts.Forks,
		recent:      make(map[common.Hash]uint64),
		blocks:      newSizedCache(opts.BlockCacheN, opts.BlockCacheMB<<20, blockMemory),
		receipts:    newSizedCache(opts.BlockCacheN, opts.BlockCacheMB<<20, receiptsMemory),
	}
	if err := l.openState(db, opts); err != nil {
		kv.Close()
		return nil, err
	}
	if err := l.load(opts); err != nil {
		l.triedb.Close()
		kv.Close()
		return nil, err
	}
	return l, nil
}

// openState decides the state scheme (migrating a hash-scheme directory
// when asked to keep a window) and opens the trie database.
func (l *Ledger) openState(db ethdb.Database, opts Options) error {
	rec, recorded, err := readSchemeRecord(l.kv)
	if err != nil {
		return err
	}
	hasChain, err := l.kv.Has(keyGenesis)
	if err != nil {
		return fmt.Errorf("read genesis record: %w", err)
	}
	use, migrate, err := chooseScheme(rec, recorded, hasChain, opts)
	if err != nil {
		return err
	}
	if migrate {
		if err := l.migrateToPath(db, use, opts); err != nil {
			return err
		}
	} else if cleanup, err := l.kv.Has(keyCleanup); err != nil {
		return err
	} else if cleanup && use.scheme == schemePath {
		freed, err := l.deleteHashNodes()
		if err != nil {
			return err
		}
		l.log.Info("Finished deleting the hash-keyed state of an interrupted move to the path scheme", "deleted_bytes", freed)
	}
	if !recorded || rec != use {
		if err := l.kv.Put(keyScheme, use.encode()); err != nil {
			return fmt.Errorf("write state scheme record: %w", err)
		}
		if err := l.kv.SyncKeyValue(); err != nil {
			return err
		}
	}
	if use.scheme == schemeHash && hasChain {
		l.log.Info("State kept for every block (archive, hash scheme); start with --state.history N to keep only the last N blocks' state")
	}
	l.scheme = use
	l.openTrieDB(db, opts)
	if use.scheme == schemePath {
		// pathdb has read the layers journaled by the last Close; the
		// journal would only take space until the next Close writes a
		// new one (after a crash it is of no use).
		rawdb.WriteTrieJournal(l.kv, []byte{})
	}
	return nil
}

// openTrieDB opens the trie database of l.scheme and the state database
// over it.
func (l *Ledger) openTrieDB(db ethdb.Database, opts Options) {
	l.triedb = newTrieDB(db, l.scheme, opts)
	l.sdb = state.NewDatabase(l.triedb, state.NewCodeDB(db))
}

// StateHistory is the number of past heights whose state is kept, or
// StateArchive.
func (l *Ledger) StateHistory() uint64 {
	if l.scheme.scheme == schemeHash {
		return StateArchive
	}
	return l.scheme.window
}

func decodeHead(raw []byte) (uint64, common.Hash) {
	return binary.BigEndian.Uint64(raw[:8]), common.BytesToHash(raw[8:])
}

func (l *Ledger) load(opts Options) error {
	has, err := l.kv.Has(keyGenesis)
	if err != nil {
		return fmt.Errorf("read genesis record: %w", err)
	}
	var genesis *types.Block
	if has {
		genesis, err = l.checkGenesis()
	} else {
		genesis, err = l.createGenesis(opts)
	}
	if err != nil {
		return err
	}
	l.genesis = genesis
	if has, err := l.kv.Has(keyBase); err != nil {
		return fmt.Errorf("read base record: %w", err)
	} else if has {
		raw, err := l.kv.Get(keyBase)
		if err != nil || len(raw) != 8 {
			return fmt.Errorf("%w: base record of %d bytes (%v)", ErrCorrupt, len(raw), err)
		}
		l.base = binary.BigEndian.Uint64(raw)
	}
	if err := l.loadBodies(); err != nil {
		return err
	}
	raw, err := l.kv.Get(keyHead)
	if err != nil || len(raw) != 40 {
		return fmt.Errorf("%w: head pointer missing or damaged", ErrCorrupt)
	}
	number, hash := decodeHead(raw)
	head := l.readBlock(number)
	if head == nil || head.Hash() != hash {
		return fmt.Errorf("%w: head block %d (%s) missing or differs", ErrCorrupt, number, hash.TerminalString())
	}
	l.head.Store(head.Header())
	if err := l.readSystemHistoryStart(); err != nil {
		return err
	}
	if l.scheme.scheme == schemePath {
		if err := l.rebuildState(head); err != nil {
			return err
		}
	}
	if _, err := state.New(head.Root(), l.sdb); err != nil {
		return fmt.Errorf("%w: state of head block %d missing: %v", ErrCorrupt, number, err)
	}
	if err := l.startSystemHistory(head.Header()); err != nil {
		return err
	}
	l.head.Store(head.Header())
	return nil
}

// compactGenesisAccounts is the number of genesis accounts from which a
// new ledger compacts its store after writing the genesis.
const compactGenesisAccounts = 100_000

// buildGenesis computes the genesis block and its state without writing it.
func (l *Ledger) buildGenesis(sdb state.Database) (*types.Block, *state.StateDB, error) {
	st, err := state.New(types.EmptyRootHash, sdb)
	if err != nil {
		return nil, nil, fmt.Errorf("genesis state: %w", err)
	}
	for addr, acct := range l.spec.Alloc {
		if acct.Balance != nil {
			st.SetBalance(addr, uint256FromBig(acct.Balance), 0)
		}
		st.SetNonce(addr, acct.Nonce, 0)
		if len(acct.Code) > 0 {
			st.SetCode(addr, acct.Code, 0)
		}
		for k, v := range acct.Storage {
			st.SetState(addr, k, v)
		}
	}
	g, err := l.spec.SystemGenesis()
	if err != nil {
		return nil, nil, fmt.Errorf("genesis governance: %w", err)
	}
	system.Seed(st, g)
	root := st.IntermediateRoot(l.spec.Config.Rules(common.Big0, true, uint64(l.spec.Timestamp)))
	header := l.spec.GenesisHeader(root)
	block := types.NewBlock(header, &types.Body{Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
	return block, st, nil
}

// Spec is the chain spec the ledger was opened with.
func (l *Ledger) Spec() *chain.Spec { return l.spec }

// Genesis is block 0.
func (l *Ledger) Genesis() *types.Block { return l.genesis }

// Base is the block a ledger started from a snapshot holds first after
// the genesis: blocks 1 to Base-1 are not in it. Zero when it holds every
// block.
func (l *Ledger) Base() uint64 { return l.base }

// Head is the last committed header.
func (l *Ledger) Head() *types.Header { return l.head.Load() }

// Commit writes a block, its receipts, its state and the engine's seal,
// then moves the head to it and syncs. The block must be the child of the
// head (or the genesis of an empty ledger). st must be the state obtained
// by executing the block; it is consumed.
func (l *Ledger) Commit(block *types.Block, receipts types.Receipts, st *state.StateDB, seal []byte) error {
	l.commitMu.Lock()
	defer l.commitMu.Unlock()

	number := block.NumberU64()
	if head := l.head.Load(); head != nil {
		if number != head.Number.Uint64()+1 || block.ParentHash() != head.Hash() {
			return fmt.Errorf("%w: block %d (parent %s) on head %d (%s)", ErrNotNext, number,
				block.ParentHash().TerminalString(), head.Number.Uint64(), head.Hash().TerminalString())
		}
	} else if number != 0 {
		return fmt.Errorf("%w: first block must be genesis, got %d", ErrNotNext, number)
	}
	root, history, err := l.commitState(block, st)
	if err != nil {
		return fmt.Errorf("commit state %d: %w", number, err)
	}
	if root != block.Root() {
		return fmt.Errorf("%w: block %d: state %s, header %s", ErrRootMismatch, number, root.TerminalString(), block.Root().TerminalString())
	}
	// Under the path scheme the state is now a layer in memory on top
	// of its parent's; go-ethereum's pathdb merges the oldest layers
	// beyond MaxStateHistory into the state on disk, which Open brings
	// back up to the head by replaying blocks after a crash.
	if l.scheme.scheme == schemeHash {
		if err := l.triedb.Commit(root, false); err != nil {
			return fmt.Errorf("flush state %d: %w", number, err)
		}
	}
	if testCrashPoint != nil {
		testCrashPoint("state", number)
	}

	blockRLP, err := rlp.EncodeToBytes(block)
	if err != nil {
		return fmt.Errorf("encode block %d: %w", number, err)
	}
	stored := make([]*types.ReceiptForStorage, len(receipts))
	for i, r := range receipts {
		stored[i] = (*types.ReceiptForStorage)(r)
	}
	receiptRLP, err := rlp.EncodeToBytes(stored)
	if err != nil {
		return fmt.Errorf("encode receipts %d: %w", number, err)
	}
	num := binary.BigEndian.AppendUint64(nil, number)
	hash := block.Hash()
	batch := l.kv.NewBatchWithSize(len(blockRLP) + len(receiptRLP) + 64*len(receipts) + 96*len(history) + 256)
	put := func(k, v []byte) {
		if err == nil {
			err = batch.Put(k, v)
		}
	}
	put(key(prefBlock, num), blockRLP)
	put(key(prefNumber, hash[:]), num)
	put(key(prefReceipt, num), receiptRLP)
	for i, tx := range block.Transactions() {
		h := tx.Hash()
		put(key(prefTx, h[:]), binary.BigEndian.AppendUint32(common.CopyBytes(num), uint32(i)))
	}
	if len(seal) > 0 {
		put(key(prefSeal, num), seal)
	}
	// The history of the system state goes with its block (syshist.go).
	for _, h := range history {
		put(h.key, h.value)
	}
	if l.sysHist {
		put(keySysHistHead, num)
	}
	put(keyHead, append(common.CopyBytes(num), hash[:]...))
	if err != nil {
		return fmt.Errorf("stage block %d: %w", number, err)
	}
	if err := batch.Write(); err != nil {
		return fmt.Errorf("write block %d: %w", number, err)
	}
	if testCrashPoint != nil {
		testCrashPoint("block", number)
	}
	// One fsync per height: it makes the state, code and block writes above
	// durable too, since they precede it in the write-ahead log.
	if err := l.kv.SyncKeyValue(); err != nil {
		return fmt.Errorf("sync block %d: %w", number, err)
	}
	l.blocks.Add(number, block)
	// The receipts just written are kept decoded, with derived fields, so
	// the subscribers of this block do not read them back from disk.
	if err := l.deriveReceipts(block, receipts); err == nil {
		l.receipts.Add(number, receipts)
	}
	l.head.Store(block.Header())
	l.remember(root, number)
	if l.scheme.scheme == schemePath {
		l.flushIfDue(root, number)
	}
	return nil
}

func (l *Ledger) deriveReceipts(block *types.Block, receipts types.Receipts) error {
	var blobGasPrice *big.Int
	if block.ExcessBlobGas() != nil {
		blobGasPrice = big.NewInt(1)
	}
	return receipts.DeriveFields(l.spec.Config, block.Hash(), block.NumberU64(), block.Time(), block.BaseFee(), blobGasPrice, block.Transactions())
}

func key(prefix, suffix []byte) []byte {
	k := make([]byte, 0, len(prefix)+len(suffix))
	return append(append(k, prefix...), suffix...)
}

// readBlock reads a block by number from disk or cache, without checking
// it against the head.
func (l *Ledger) readBlock(number uint64) *types.Block {
	if b, ok := l.blocks.Get(number); ok {
		return b
	}
	raw, err := l.kv.Get(key(prefBlock, binary.BigEndian.AppendUint64(nil, number)))
	if err != nil {
		return nil
	}
	b := new(types.Block)
	if err := rlp.DecodeBytes(raw, b); err != nil {
		l.log.Error("Stored block does not decode", "height", number, "err", err)
		return nil
	}
	l.blocks.Add(number, b)
	return b
}

// BlockByNumber returns a committed block, or nil.
func (l *Ledger) BlockByNumber(number uint64) *types.Block {
	if head := l.head.Load(); head == nil || number > head.Number.Uint64() || l.pruned(number) {
		return nil
	}
	return l.readBlock(number)
}

// NumberOf returns the height of a committed block hash.
func (l *Ledger) NumberOf(hash common.Hash) (uint64, bool) {
	raw, err := l.kv.Get(key(prefNumber, hash[:]))
	if err != nil || len(raw) != 8 {
		return 0, false
	}
	n := binary.BigEndian.Uint64(raw)
	if head := l.head.Load(); head == nil || n > head.Number.Uint64() {
		return 0, false
	}
	return n, true
}

// BlockByHash returns a committed block, or nil.
func (l *Ledger) BlockByHash(hash common.Hash) *types.Block {
	n, ok := l.NumberOf(hash)
	if !ok {
		return nil
	}
	if b := l.BlockByNumber(n); b != nil && b.Hash() == hash {
		return b
	}
	return nil
}

// HeaderByNumber returns a committed header, or nil; a block whose body
// was pruned (BodiesFrom) still has its header.
func (l *Ledger) HeaderByNumber(number uint64) *types.Header {
	if b := l.BlockByNumber(number); b != nil {
		return b.Header()
	}
	if l.pruned(number) {
		return l.prunedHeader(number)
	}
	return nil
}

// Seal returns the engine seal stored with a block (nil if none).
func (l *Ledger) Seal(number uint64) []byte {
	raw, err := l.kv.Get(key(prefSeal, binary.BigEndian.AppendUint64(nil, number)))
	if err != nil {
		return nil
	}
	return raw
}

// Receipts returns the receipts of a committed block with every derived
// field (hashes, indexes, addresses, effective gas price) filled. The
// caller must not modify them.
func (l *Ledger) Receipts(number uint64) (types.Receipts, error) {
	if err := l.BodyKept(number); err != nil {
		return nil, err
	}
	if r, ok := l.receipts.Get(number); ok {
		return r, nil
	}
	block := l.BlockByNumber(number)
	if block == nil {
		return nil, fmt.Errorf("block %d not found", number)
	}
	raw, err := l.kv.Get(key(prefReceipt, binary.BigEndian.AppendUint64(nil, number)))
	if err != nil {
		return nil, fmt.Errorf("%w: receipts of block %d: %v", ErrCorrupt, number, err)
	}
	var stored []*types.ReceiptForStorage
	if err := rlp.DecodeBytes(raw, &stored); err != nil {
		return nil, fmt.Errorf("%w: receipts of block %d: %v", ErrCorrupt, number, err)
	}
	receipts := make(types.Receipts, len(stored))
	for i, r := range stored {
		receipts[i] = (*types.Receipt)(r)
	}
	if err := l.deriveReceipts(block, receipts); err != nil {
		return nil, fmt.Errorf("%w: receipts of block %d: %v", ErrCorrupt, number, err)
	}
	l.receipts.Add(number, receipts)
	return receipts, nil
}

// TxLookup finds a committed transaction: its block number and index.
func (l *Ledger) TxLookup(hash common.Hash) (number uint64, index int, ok bool) {
	raw, err := l.kv.Get(key(prefTx, hash[:]))
	if err != nil || len(raw) != 12 {
		return 0, 0, false
	}
	number = binary.BigEndian.Uint64(raw[:8])
	if head := l.head.Load(); head == nil || number > head.Number.Uint64() {
		return 0, 0, false
	}
	return number, int(binary.BigEndian.Uint32(raw[8:])), true
}

// StateAt opens the world state with the given root for reading or for
// executing on top of it. Under the path scheme, a state older than the
// head's is a historical one: readable, provable, executable (eth_call),
// not committable; one outside the kept window gives a
// *StateNotKeptError (errors.Is ErrStateNotKept).
func (l *Ledger) StateAt(root common.Hash) (*state.StateDB, error) {
	if l.scheme.scheme == schemeHash {
		return state.New(root, l.sdb)
	}
	l.recentMu.RLock()
	_, kept := l.recent[root]
	l.recentMu.RUnlock()
	if kept {
		if st, err := state.New(root, l.sdb); err == nil {
			return st, nil
		}
	}
	return nil, &StateNotKeptError{Root: root, Window: l.scheme.window}
}

// TrieDB is the trie node database, for Merkle proofs.
func (l *Ledger) TrieDB() *triedb.Database { return l.triedb }

// Checkpoint writes a consistent copy of the ledger into dir, which must
// not exist, while the ledger keeps running: dir becomes a data directory
// (dir/chaindata) that Open accepts, at the height returned. Commits wait
// while the copy is made, so it holds a whole height; the copy shares
// unchanged table files with the store by hard links where the file
// system allows, and costs little time or space then. Under the path
// scheme the recent heights' state is in memory, not in the copy: Open
// rebuilds it with Options.Replay (as after a crash).
func (l *Ledger) Checkpoint(dir string) (height uint64, err error) {
	l.commitMu.Lock()
	defer l.commitMu.Unlock()
	head := l.head.Load()
	if head == nil {
		return 0, errors.New("checkpoint: ledger has no head")
	}
	if _, err := os.Stat(dir); err == nil {
		return 0, fmt.Errorf("checkpoint: %s already exists; give a new directory", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("checkpoint: create %s: %w", dir, err)
	}
	if err := l.kv.checkpoint(filepath.Join(dir, "chaindata")); err != nil {
		return 0, fmt.Errorf("checkpoint into %s: %w", dir, err)
	}
	return head.Number.Uint64(), nil
}

// Close flushes and closes the store.
func (l *Ledger) Close() error {
	l.commitMu.Lock()
	defer l.commitMu.Unlock()
	var err error
	if head := l.head.Load(); head != nil && l.scheme.scheme == schemePath {
		// The layers in memory, written to disk so that the next Open
		// has the window back without replaying.
		err = l.triedb.Journal(head.Root)
	}
	if cerr := l.triedb.Close(); err == nil {
		err = cerr
	}
	if cerr := l.kv.Close(); err == nil {
		err = cerr
	}
	return err
}
