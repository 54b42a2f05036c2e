package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/ethereum/go-ethereum/ethdb"
)

// kvStore is the ledger's key-value store: a pebble database seen through
// go-ethereum's ethdb.KeyValueStore interface, so that the state code of
// go-ethereum writes into it, while the ledger keeps the *pebble.DB for
// what that interface lacks (checkpoints, metrics).
//
// Writes are not synced one by one: SyncKeyValue makes every write that
// precedes it durable, since pebble's write-ahead log keeps their order.
type kvStore struct {
	db *pebble.DB

	mu     sync.RWMutex // closed is set under mu; operations hold it for reading
	closed bool
	snaps  map[*kvSnapshot]struct{} // open views; Close releases them first
}

var errStoreClosed = errors.New("store closed")

// pebbleLog passes pebble's own messages to the ledger's logger.
type pebbleLog struct{ log *slog.Logger }

func (p pebbleLog) Infof(format string, args ...any) {
	p.log.Debug("Store: " + fmt.Sprintf(format, args...))
}

func (p pebbleLog) Errorf(format string, args ...any) {
	p.log.Warn("Store: " + fmt.Sprintf(format, args...))
}

func (p pebbleLog) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.log.Error("Store: " + msg)
	panic("pebble: " + msg)
}

// KVOptions shape a pebble key-value store that OpenKeyValueStore opens.
type KVOptions struct {
	// Cache is the block cache to read through, shared by the stores
	// given it; nil: a cache of its own of CacheMB megabytes.
	Cache   *pebble.Cache
	CacheMB int
	// MemTableMB is the size of each of the store's two memtables; 0:
	// a quarter of CacheMB, within 8 and 256.
	MemTableMB int
	// L0CompactionThreshold is how many files level 0 gathers before a
	// compaction moves them down; 0: 2.
	L0CompactionThreshold int
	// MaxOpenFiles bounds the table files held open; 0: 512.
	MaxOpenFiles int
}

// OpenKeyValueStore opens (or creates) the pebble database in dir as the
// ledger opens its own (the same format and bloom filters), shaped by o,
// as a go-ethereum key-value store. log receives pebble's messages.
func OpenKeyValueStore(dir string, o KVOptions, log *slog.Logger) (ethdb.KeyValueStore, error) {
	return openKVStore(dir, o, log)
}

// openKVStore opens (or creates) the pebble database in dir.
func openKVStore(dir string, o KVOptions, log *slog.Logger) (*kvStore, error) {
	cache := o.Cache
	if cache == nil {
		cache = pebble.NewCache(int64(o.CacheMB) << 20)
		defer cache.Unref() // the database holds its own reference
	}
	memTable := uint64(o.MemTableMB) << 20
	if memTable == 0 {
		// A quarter of the cache for each of the two memtables, within
		// bounds: small enough to flush quickly, large enough that a
		// height's writes rarely stall on a flush.
		memTable = min(max(uint64(o.CacheMB)<<20/4, 8<<20), 256<<20)
	}
	l0 := o.L0CompactionThreshold
	if l0 == 0 {
		l0 = 2
	}
	files := o.MaxOpenFiles
	if files == 0 {
		files = 512
	}
	opts := &pebble.Options{
		Cache:                       cache,
		MaxOpenFiles:                files,
		MemTableSize:                memTable,
		MemTableStopWritesThreshold: 2,
		L0CompactionThreshold:       l0,
		CompactionConcurrencyRange:  func() (int, int) { return 1, 2 },
		// Synced writes of large batches would otherwise wait for all the
		// WAL bytes at once.
		WALBytesPerSync: 512 << 10,
		// The format data directories of earlier releases were written
		// in; pebble only ever moves a directory's format forward, so a
		// higher one here would lock those releases out of it.
		FormatMajorVersion: pebble.FormatFlushableIngest,
		Logger:             pebbleLog{log},
	}
	// Trie nodes and records are read by exact key: a bloom filter on each
	// level saves most reads of tables that do not hold the key.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		opts.Levels[i].FilterType = pebble.TableFilter
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	return &kvStore{db: db}, nil
}

// use runs fn unless the store is closed.
func (s *kvStore) use(fn func() error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errStoreClosed
	}
	return fn()
}

func (s *kvStore) Has(key []byte) (bool, error) {
	var found bool
	err := s.use(func() error {
		_, closer, err := s.db.Get(key)
		if errors.Is(err, pebble.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return closer.Close()
	})
	return found, err
}

func (s *kvStore) Get(key []byte) ([]byte, error) {
	var out []byte
	err := s.use(func() error {
		v, closer, err := s.db.Get(key)
		if err != nil {
			return err
		}
		// pebble's slice is only valid until closer is closed.
		out = bytes.Clone(v)
		if out == nil {
			out = []byte{}
		}
		return closer.Close()
	})
	return out, err
}

func (s *kvStore) Put(key, value []byte) error {
	return s.use(func() error { return s.db.Set(key, value, pebble.NoSync) })
}

func (s *kvStore) Delete(key []byte) error {
	return s.use(func() error { return s.db.Delete(key, pebble.NoSync) })
}

// bounds turns the open-ended range [start, end) of the ethdb interface
// (nil start: from the first key; nil end: through the last key) into
// the explicit bounds pebble wants. ok is false when the store is empty
// past start.
func (s *kvStore) bounds(start, end []byte) (lo, hi []byte, ok bool, err error) {
	lo = start
	if lo == nil {
		lo = []byte{}
	}
	if end != nil {
		return lo, end, true, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo})
	if err != nil {
		return nil, nil, false, err
	}
	defer it.Close()
	if !it.Last() {
		return nil, nil, false, it.Error()
	}
	// The smallest key greater than the last one.
	return lo, append(bytes.Clone(it.Key()), 0), true, nil
}

func (s *kvStore) DeleteRange(start, end []byte) error {
	return s.use(func() error {
		lo, hi, ok, err := s.bounds(start, end)
		if err != nil || !ok {
			return err
		}
		return s.db.DeleteRange(lo, hi, pebble.NoSync)
	})
}

func (s *kvStore) Stat() (string, error) {
	var out string
	err := s.use(func() error {
		out = s.db.Metrics().String()
		return nil
	})
	return out, err
}

// SyncKeyValue makes every write so far durable: an empty, synced record
// in the write-ahead log waits for all the records before it.
func (s *kvStore) SyncKeyValue() error {
	return s.use(func() error { return s.db.LogData(nil, pebble.Sync) })
}

func (s *kvStore) Compact(start, limit []byte) error {
	return s.use(func() error {
		lo, hi, ok, err := s.bounds(start, limit)
		if err != nil || !ok {
			return err
		}
		return s.db.Compact(context.Background(), lo, hi, true)
	})
}

// Close closes the database; later operations fail with errStoreClosed.
func (s *kvStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for v := range s.snaps {
		v.snap.Close()
	}
	s.snaps = nil
	return s.db.Close()
}

// kvSnapshot is a read-only view of the store as it was when made. Its
// reads fail with errStoreClosed once it is released or the store closed.
type kvSnapshot struct {
	s    *kvStore
	snap *pebble.Snapshot
}

// snapshot makes a view of the store as it is now.
func (s *kvStore) snapshot() (*kvSnapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errStoreClosed
	}
	v := &kvSnapshot{s: s, snap: s.db.NewSnapshot()}
	if s.snaps == nil {
		s.snaps = map[*kvSnapshot]struct{}{}
	}
	s.snaps[v] = struct{}{}
	return v, nil
}

// release closes the view; later reads fail.
func (v *kvSnapshot) release() {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	if _, open := v.s.snaps[v]; open {
		delete(v.s.snaps, v)
		v.snap.Close()
	}
}

// open reports whether the view can still be read.
func (v *kvSnapshot) open() bool {
	v.s.mu.RLock()
	defer v.s.mu.RUnlock()
	_, ok := v.s.snaps[v]
	return ok
}

func (v *kvSnapshot) Get(key []byte) ([]byte, error) {
	v.s.mu.RLock()
	defer v.s.mu.RUnlock()
	if _, open := v.s.snaps[v]; !open {
		return nil, errStoreClosed
	}
	val, closer, err := v.snap.Get(key)
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(val)
	if out == nil {
		out = []byte{}
	}
	return out, closer.Close()
}

func (v *kvSnapshot) Has(key []byte) (bool, error) {
	_, err := v.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// checkpoint writes a consistent copy of the database into dir, which
// must not exist. The write-ahead log is flushed first so that the copy
// holds every write made before the call, in tables.
func (s *kvStore) checkpoint(dir string) error {
	return s.use(func() error { return s.db.Checkpoint(dir, pebble.WithFlushedWAL()) })
}

// diskSize is the bytes of the database's tables and logs on disk.
func (s *kvStore) diskSize() (uint64, error) {
	var n uint64
	err := s.use(func() error {
		n = s.db.Metrics().DiskSpaceUsage()
		return nil
	})
	return n, err
}

// estimateDiskUsage is the bytes of the tables holding keys in [start, end).
func (s *kvStore) estimateDiskUsage(start, end []byte) (uint64, error) {
	var n uint64
	err := s.use(func() (err error) {
		n, err = s.db.EstimateDiskUsage(start, end)
		return err
	})
	return n, err
}

func (s *kvStore) NewBatch() ethdb.Batch {
	return &kvBatch{store: s, b: s.db.NewBatch()}
}

func (s *kvStore) NewBatchWithSize(size int) ethdb.Batch {
	return &kvBatch{store: s, b: s.db.NewBatchWithSize(size)}
}

// upperBound is the smallest key greater than every key with the prefix,
// or nil when there is none (a prefix of 0xff bytes only).
func upperBound(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			out := bytes.Clone(prefix[:i+1])
			out[i]++
			return out
		}
	}
	return nil
}

func (s *kvStore) NewIterator(prefix, start []byte) ethdb.Iterator {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return &kvIterator{err: errStoreClosed}
	}
	lo := append(bytes.Clone(prefix), start...)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: upperBound(prefix)})
	if err != nil {
		return &kvIterator{err: err}
	}
	return &kvIterator{it: it}
}

// kvBatch gathers writes and applies them at once on Write.
type kvBatch struct {
	store *kvStore
	b     *pebble.Batch
	size  int // bytes of keys and values staged, as ethdb counts them
}

func (b *kvBatch) Put(key, value []byte) error {
	if err := b.b.Set(key, value, nil); err != nil {
		return err
	}
	b.size += len(key) + len(value)
	return nil
}

func (b *kvBatch) Delete(key []byte) error {
	if err := b.b.Delete(key, nil); err != nil {
		return err
	}
	b.size += len(key)
	return nil
}

func (b *kvBatch) DeleteRange(start, end []byte) error {
	lo, hi, ok, err := b.store.bounds(start, end)
	if err != nil || !ok {
		return err
	}
	if err := b.b.DeleteRange(lo, hi, nil); err != nil {
		return err
	}
	b.size += len(lo) + len(hi)
	return nil
}

func (b *kvBatch) ValueSize() int { return b.size }

func (b *kvBatch) Write() error {
	return b.store.use(func() error { return b.b.Commit(pebble.NoSync) })
}

func (b *kvBatch) Reset() {
	b.b.Reset()
	b.size = 0
}

func (b *kvBatch) Close() { _ = b.b.Close() }

// Replay applies the staged writes, in order, to w.
func (b *kvBatch) Replay(w ethdb.KeyValueWriter) error {
	r := b.b.Reader()
	for {
		kind, k, v, ok, err := r.Next()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		switch kind {
		case pebble.InternalKeyKindSet:
			err = w.Put(k, v)
		case pebble.InternalKeyKindDelete, pebble.InternalKeyKindSingleDelete:
			err = w.Delete(k)
		case pebble.InternalKeyKindRangeDelete:
			d, can := w.(ethdb.KeyValueRangeDeleter)
			if !can {
				return fmt.Errorf("replay a range deletion onto %T, which cannot delete ranges", w)
			}
			err = d.DeleteRange(k, v)
		case pebble.InternalKeyKindLogData:
		default:
			return fmt.Errorf("replay: unexpected record kind %v in batch", kind)
		}
		if err != nil {
			return err
		}
	}
}

// kvIterator walks keys in order; the first Next moves to the first key.
type kvIterator struct {
	it      *pebble.Iterator
	started bool
	err     error
}

func (i *kvIterator) Next() bool {
	if i.it == nil {
		return false
	}
	if !i.started {
		i.started = true
		return i.it.First()
	}
	return i.it.Next()
}

func (i *kvIterator) Error() error {
	if i.err != nil {
		return i.err
	}
	if i.it == nil {
		return nil
	}
	return i.it.Error()
}

func (i *kvIterator) Key() []byte {
	if i.it == nil || !i.started || !i.it.Valid() {
		return nil
	}
	return i.it.Key()
}

func (i *kvIterator) Value() []byte {
	if i.it == nil || !i.started || !i.it.Valid() {
		return nil
	}
	return i.it.Value()
}

func (i *kvIterator) Release() {
	if i.it != nil {
		i.err = i.it.Close()
		i.it = nil
	}
}

var _ ethdb.KeyValueStore = (*kvStore)(nil)
