// Package privstate keeps the private state of privacy groups and runs
// their private transactions: one state trie per group, executed by
// go-ethereum's EVM, with the group's private receipts and logs, the
// encrypted payloads it was sent and the private state root after every
// public block that carried its transactions.
//
// Layout (docs/design/privacy.md, "Private state"): under the store's root folder,
//
//	groups/<hex group id>/   one pebble database per group: state trie,
//	                         contract code, receipts, logs, private
//	                         transactions and their markers, per-block
//	                         roots (and the payloads a build before the
//	                         payload store kept)
//	groups/<hex group id>/payloads/
//	                         the group's payload store: a pebble
//	                         database of its own (payloads.go)
//	purged/<hex group id>    the tombstone of a purged group: its height
//
// Everything a group holds is inside its own folder, so that a purge is
// close, remove the folder, sync its parent: no key of the group is left
// in a shared database to be compacted away some day. A group's database
// is opened when first used and closed again when more than
// Options.MaxOpenGroups are open (least recently used first), so that a
// node in many groups holds a bounded number of files and caches.
//
// What survives a crash at any instant: a block applied to a group is
// there whole (state, receipts, logs, transactions and its root record)
// once ApplyBlock returned, or not at all; applying it again after a crash
// executes it once. A purge that returned is complete; one cut off is
// completed by the next Open.
package privstate

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/triedb"
	"github.com/ethereum/go-ethereum/triedb/hashdb"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/durable"
	"github.com/charter-ledger/charter/internal/execution"
	"github.com/charter-ledger/charter/internal/ledger"
	"github.com/charter-ledger/charter/internal/privacy/privtx"
	"github.com/charter-ledger/charter/internal/system"
)

// Bounds of private execution and of the queries of private data. An
// error or a rejection that one of them causes names it.
const (
	// MaxPrivateTxBytes bounds the encoded size of one private
	// transaction: privtx's bound, the chain's default for a public one.
	MaxPrivateTxBytes = privtx.MaxTxBytes
	// MaxPrivateTxsPerBlock bounds the private transactions of one group
	// that one public block executes; those after it are rejected.
	MaxPrivateTxsPerBlock = system.MaxGroupMarkersPerBlock
	// MaxRecordedTxsPerBlock bounds the private transactions, executed or
	// rejected, that one ApplyBlock call takes (more markers than a
	// public block of the default 1 MiB can carry); a call with more is
	// refused whole, with ErrTooMany.
	MaxRecordedTxsPerBlock = 16 * MaxPrivateTxsPerBlock
	// MaxPayloadBytes bounds one stored payload (the encrypted envelope
	// of one private transaction for the group's members).
	MaxPayloadBytes = 2 << 20
	// MaxReasonBytes bounds the rejection reason kept with a receipt;
	// a longer one (the caller's) is kept cut to this length.
	MaxReasonBytes = 1 << 10
	// MaxOutputBytes bounds the return data kept with a private receipt;
	// longer output is kept cut to this length.
	MaxOutputBytes = 64 << 10
	// MaxLogsPerQuery bounds the logs one Logs query returns.
	MaxLogsPerQuery = 10_000
	// MaxLogRange bounds the public blocks one Logs query spans.
	MaxLogRange = 10_000
	// DefaultMaxOpenGroups is Options.MaxOpenGroups when left at 0.
	DefaultMaxOpenGroups = 32
	// MaxOpenGroupsLimit bounds Options.MaxOpenGroups.
	MaxOpenGroupsLimit = 1_024
)

// Database sizing. The databases of all open groups (their state and
// their payload stores) read through one block cache; each has its own
// memtables, large enough that a burst of private transactions is
// flushed in few tables (with go-ethereum's sizing, 2 MB memtables, the
// compactions that followed their flushes took a tenth of a member
// node's CPU), and a file budget that keeps MaxOpenGroups × (groupHandles
// + payloadHandles) file descriptors reasonable. A memtable starts small
// and grows to its size only while writes fill it: an idle group holds
// little of it.
const (
	DefaultGroupCacheMB = 64
	groupMemTableMB     = 8
	groupL0Compaction   = 4
	groupHandles        = 64
	groupTrieCacheMB    = 4
)

// Latest names the newest private state of a group in queries that take a
// block number.
const Latest = ^uint64(0)

// Errors callers may test for.
var (
	// ErrPurged: the group was purged; nothing of its private data is left.
	ErrPurged = errors.New("privacy group purged")
	// ErrUnknownGroup: this node holds nothing of the group (it is not a
	// member, or nothing was sent or executed for the group yet).
	ErrUnknownGroup = errors.New("no private data for the privacy group on this node")
	// ErrNotFound: the group is known but holds no such record.
	ErrNotFound = errors.New("not found in the privacy group's private data")
	// ErrConflict: a block applied again differs from the one applied at
	// its height.
	ErrConflict = errors.New("block differs from the one applied at its height")
	// ErrOutOfOrder: a block below the group's last applied block that was
	// never applied to it.
	ErrOutOfOrder = errors.New("block below the privacy group's last applied block")
	// ErrCorrupt: a group's data on disk does not read back.
	ErrCorrupt = errors.New("private state corrupt")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("private state store closed")
	// ErrTooMany: a query would go over one of the bounds above.
	ErrTooMany = errors.New("query over a bound")
)

// Options tune the store.
type Options struct {
	// MaxOpenGroups bounds the group databases open at once; the least
	// recently used idle one is closed to open another. Default
	// DefaultMaxOpenGroups.
	MaxOpenGroups int
	// GroupCacheMB is the pebble block cache, in megabytes, that the
	// databases of all open groups share. Default DefaultGroupCacheMB.
	GroupCacheMB int
}

// EnsureDefaults fills the fields left at zero.
func (o *Options) EnsureDefaults() {
	if o.MaxOpenGroups == 0 {
		o.MaxOpenGroups = DefaultMaxOpenGroups
	}
	if o.GroupCacheMB == 0 {
		o.GroupCacheMB = DefaultGroupCacheMB
	}
}

// Validate checks the options, with errors that name the field.
func (o *Options) Validate() error {
	if o.MaxOpenGroups < 1 || o.MaxOpenGroups > MaxOpenGroupsLimit {
		return fmt.Errorf("private state: MaxOpenGroups %d: want 1 to %d", o.MaxOpenGroups, MaxOpenGroupsLimit)
	}
	if o.GroupCacheMB < 8 || o.GroupCacheMB > 1024 {
		return fmt.Errorf("private state: GroupCacheMB %d: want 8 to 1024", o.GroupCacheMB)
	}
	return nil
}

// Store is the private state of every privacy group this node keeps. All
// methods are goroutine-safe. ApplyBlock and PutPayload calls for one
// group are serialized; reads run concurrently with them and see the
// group at a block it has applied whole.
type Store struct {
	root     string // groups/ and purged/ are under it
	spec     *chain.Spec
	exec     *execution.Executor // block context, chain config, signer
	log      *slog.Logger
	opts     Options
	cache    *pebble.Cache // the block cache of every group's databases
	fs       durable.OSFS
	testFail func(point string) error // a crash point in tests; nil otherwise

	mu struct {
		sync.Mutex
		cond    *sync.Cond // signalled when a handle's refs drop or one closes
		open    map[common.Hash]*handle
		tick    uint64                 // LRU clock
		purged  map[common.Hash]uint64 // tombstones: group -> public height of its purge
		purging map[common.Hash]bool   // purge in progress: no new handle
		closed  bool
	}
}

// handle is one open group database. refs and lastUse are guarded by
// Store.mu; the databases are used with a reference held (acquire).
type handle struct {
	id  common.Hash
	dir string
	kv  ethdb.KeyValueStore
	db  ethdb.Database
	tdb *triedb.Database
	sdb state.Database

	pay *payloadStore // the group's payloads, a database of their own

	refs    int
	lastUse uint64

	write sync.Mutex // serializes ApplyBlock's of the group (payload writes need no lock)

	recent recentBlocks // decoded block records and their receipts, read again by receipt lookups

	// headCache is the head record as last read or written (nil until
	// then): ApplyBlock, under write, stores it right after the batch that
	// writes it, so that it is never behind what the database answers.
	headCache atomic.Pointer[headRecord]
	nonces    nonceMemo // nonces at the head, read again by every send
}

// nonceMemo keeps the nonces read from one private state root, the
// group's head: a node that sends many private transactions of a group
// reads each sender's nonce from the trie once per applied block, not
// once per transaction. A root's state never changes, so that a nonce
// kept under it is the nonce read again.
type nonceMemo struct {
	mu   sync.Mutex
	root common.Hash
	m    map[common.Address]uint64 // at most maxNonceMemo entries
}

// maxNonceMemo bounds the senders a group's nonce memo keeps.
const maxNonceMemo = 4096

func (n *nonceMemo) get(root common.Hash, addr common.Address) (uint64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.root != root {
		return 0, false
	}
	v, ok := n.m[addr]
	return v, ok
}

func (n *nonceMemo) put(root common.Hash, addr common.Address, nonce uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.root != root || len(n.m) >= maxNonceMemo {
		n.root, n.m = root, make(map[common.Address]uint64)
	}
	n.m[addr] = nonce
}

// recentBlocks keeps the last few block records a handle decoded, with
// their derived receipts: a client polling for the receipts of one block's
// transactions one by one decodes it once, not once per receipt. Block
// records never change once written.
type recentBlocks struct {
	mu      sync.Mutex
	entries []recentBlock // newest last, at most recentBlocksKept
}

type recentBlock struct {
	number   uint64
	rec      *blockRecord
	receipts []*Receipt // nil until derived
}

const recentBlocksKept = 8

func (r *recentBlocks) get(number uint64) (recentBlock, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.entries {
		if e.number == number {
			return e, true
		}
	}
	return recentBlock{}, false
}

func (r *recentBlocks) put(e recentBlock) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.entries {
		if r.entries[i].number == e.number {
			if e.receipts == nil {
				e.receipts = r.entries[i].receipts
			}
			r.entries[i] = e
			return
		}
	}
	if len(r.entries) >= recentBlocksKept {
		r.entries = append(r.entries[:0], r.entries[1:]...)
	}
	r.entries = append(r.entries, e)
}

// Open opens (or creates) the private state store in dir (the node's
// DATA/private), for the chain described by spec. headers answers BLOCKHASH
// inside private execution with the public chain's committed headers. A
// purge a crash cut off is completed here.
func Open(dir string, spec *chain.Spec, headers execution.HeaderReader, opts Options, log *slog.Logger) (*Store, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Store{
		root: dir,
		spec: spec,
		exec: execution.New(spec, headers),
		log:  log,
		opts: opts,
	}
	s.mu.cond = sync.NewCond(&s.mu.Mutex)
	s.mu.open = map[common.Hash]*handle{}
	s.mu.purged = map[common.Hash]uint64{}
	s.mu.purging = map[common.Hash]bool{}
	for _, d := range []string{dir, s.groupsDir(), s.purgedDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("private state: create folder %s: %w", d, err)
		}
	}
	if err := s.loadTombstones(); err != nil {
		return nil, err
	}
	s.cache = pebble.NewCache(int64(opts.GroupCacheMB) << 20) // Close gives it back
	return s, nil
}

func (s *Store) groupsDir() string { return filepath.Join(s.root, "groups") }
func (s *Store) purgedDir() string { return filepath.Join(s.root, "purged") }

// GroupDir is the folder that holds everything of a group on this node.
func (s *Store) GroupDir(group common.Hash) string {
	return filepath.Join(s.groupsDir(), hex.EncodeToString(group[:]))
}

// parseGroupName is the inverse of the folder and tombstone names.
func parseGroupName(name string) (common.Hash, bool) {
	if len(name) != 2*common.HashLength || strings.ToLower(name) != name {
		return common.Hash{}, false
	}
	b, err := hex.DecodeString(name)
	if err != nil {
		return common.Hash{}, false
	}
	return common.BytesToHash(b), true
}

// acquire returns the open handle of group with a reference the caller
// must give back with release. create opens a group this node holds
// nothing of yet (a writer); a reader gets ErrUnknownGroup instead, and
// nothing is created on disk. When MaxOpenGroups are open and all in use,
// it waits for one to be released: a caller holds at most one handle at a
// time, so that this cannot deadlock.
func (s *Store) acquire(group common.Hash, create bool) (*handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.mu.closed {
			return nil, ErrClosed
		}
		if err := s.purgedErrLocked(group); err != nil {
			return nil, err
		}
		if h := s.mu.open[group]; h != nil {
			h.refs++
			s.mu.tick++
			h.lastUse = s.mu.tick
			return h, nil
		}
		if len(s.mu.open) < s.opts.MaxOpenGroups || s.evictLocked() {
			break
		}
		s.mu.cond.Wait()
	}
	dir := s.GroupDir(group)
	if !create {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: group %s", ErrUnknownGroup, group.Hex())
		} else if err != nil {
			return nil, fmt.Errorf("private state: group %s: %w", group.Hex(), err)
		}
	}
	// Opening under the lock serializes the opening of groups; it takes
	// milliseconds and keeps the bound exact.
	h, err := s.openGroup(group, dir)
	if err != nil {
		return nil, err
	}
	s.mu.tick++
	h.refs, h.lastUse = 1, s.mu.tick
	s.mu.open[group] = h
	return h, nil
}

// release gives back a reference taken by acquire.
func (s *Store) release(h *handle) {
	s.mu.Lock()
	h.refs--
	if h.refs < 0 {
		panic("privstate: handle released more often than acquired")
	}
	s.mu.Unlock()
	s.mu.cond.Broadcast()
}

// evictLocked closes the least recently used idle handle; false when every
// open handle is in use.
func (s *Store) evictLocked() bool {
	var lru *handle
	for _, h := range s.mu.open {
		if h.refs == 0 && (lru == nil || h.lastUse < lru.lastUse) {
			lru = h
		}
	}
	if lru == nil {
		return false
	}
	delete(s.mu.open, lru.id)
	if err := lru.close(); err != nil {
		s.log.Error("Close of a privacy group's database failed", "group", lru.id.Hex(), "err", err)
	}
	return true
}

// openGroup opens (or creates) a group's database and checks that it
// belongs to the group and the chain.
func (s *Store) openGroup(group common.Hash, dir string) (*handle, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("private state: create group folder %s: %w", dir, err)
	}
	kv, err := s.openKV(dir, groupHandles)
	if err != nil {
		return nil, fmt.Errorf("private state: open group database %s: %w", dir, err)
	}
	db := rawdb.NewDatabase(kv)
	tdb := triedb.NewDatabase(db, &triedb.Config{HashDB: &hashdb.Config{CleanCacheSize: groupTrieCacheMB << 20}})
	h := &handle{id: group, dir: dir, kv: kv, db: db, tdb: tdb, sdb: state.NewDatabase(tdb, state.NewCodeDB(db))}
	if err := h.checkIdentity(s.spec.ChainID()); err != nil {
		h.close()
		return nil, err
	}
	// The identity record is written before the payload store is created:
	// a folder with a payload store is a group's.
	if h.pay, err = openPayloadStore(s, filepath.Join(dir, payloadDirName)); err != nil {
		h.close()
		return nil, fmt.Errorf("private state: group %s: %w", group.Hex(), err)
	}
	return h, nil
}

// openKV opens one database of a group: its state or its payloads.
func (s *Store) openKV(dir string, handles int) (ethdb.KeyValueStore, error) {
	return ledger.OpenKeyValueStore(dir, ledger.KVOptions{Cache: s.cache, MemTableMB: groupMemTableMB,
		L0CompactionThreshold: groupL0Compaction, MaxOpenFiles: handles}, s.log)
}

func (h *handle) close() error {
	err := h.tdb.Close()
	if h.pay != nil {
		if cerr := h.pay.close(); err == nil {
			err = cerr
		}
	}
	if cerr := h.kv.Close(); err == nil {
		err = cerr
	}
	return err
}

// rules are the fork rules of a block of the chain.
func (s *Store) rules(header *types.Header) params.Rules {
	return s.exec.Config().Rules(header.Number, true, header.Time)
}

// Close closes every group database. It waits for the calls under way to
// finish; calls after it fail with ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	wasClosed := s.mu.closed
	s.mu.closed = true
	var err error
	for len(s.mu.open) > 0 {
		closedOne := false
		for id, h := range s.mu.open {
			if h.refs > 0 {
				continue
			}
			if cerr := h.close(); err == nil && cerr != nil {
				err = fmt.Errorf("private state: close group %s: %w", id.Hex(), cerr)
			}
			delete(s.mu.open, id)
			closedOne = true
		}
		if !closedOne {
			s.mu.cond.Wait()
		}
	}
	if !wasClosed {
		s.cache.Unref() // the databases closed above held their own references
	}
	return err
}

// OpenGroups is the number of group databases open now (at most
// Options.MaxOpenGroups).
func (s *Store) OpenGroups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.open)
}

// fail is a crash point: in tests, testFail may stop a write there.
func (s *Store) fail(point string) error {
	if s.testFail == nil {
		return nil
	}
	return s.testFail(point)
}
