package raft

import (
	"github.com/charter-ledger/charter/internal/durable"

	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	etcdraft "go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Storage is the raft engine's durable state: raft's log, hard state and
// snapshot. Reads (the etcd raft Storage methods) serve from memory; Save
// and Compact write through to disk. Only the engine goroutine calls it.
type Storage interface {
	etcdraft.Storage
	// Save persists one Ready's output in this order: the received
	// snapshot (replacing the log), the entries (replacing any conflicting
	// suffix), the hard state. When sync is true everything is durable
	// when Save returns. The caller then may send the Ready's messages.
	// An error means the state on disk is unknown: the engine halts.
	Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot, sync bool) error
	// Compact records a snapshot at the applied index (data is the chain
	// position, cs the membership) and discards entries up to compactTo
	// (compactTo <= index). Durable when it returns.
	Compact(index uint64, cs *raftpb.ConfState, data []byte, compactTo uint64) error
	// IsNew reports that nothing was ever saved (the engine bootstraps).
	IsNew() bool
	// Close releases the files. The Storage is unusable afterwards.
	Close() error
}

// ErrCorrupt is wrapped by the error of opening a WAL whose content is
// damaged other than by a torn final write.
var ErrCorrupt = errors.New("raft wal corrupt")

// WAL record framing. Every record is
//
//	length uint32 LE | crc32c(payload) uint32 LE | crc32c(first 8 bytes) uint32 LE | payload
//
// and every payload is a kind byte followed by the body. The header has its
// own checksum so that a damaged length is recognised as damage and not
// mistaken for a record cut short by a crash.
const (
	recHeaderLen = 12
	// maxRecordBytes bounds one record (an entry is at most a message).
	maxRecordBytes = 256 << 20
)

// Record kinds.
const (
	recHardState byte = 1 // body: raftpb.HardState
	recEntry     byte = 2 // body: raftpb.Entry
	recSnapshot  byte = 3 // body: raftpb.Snapshot; resets the log to it
	recCompact   byte = 4 // body: compactTo uint64 BE | raftpb.Snapshot (index, term, conf state, data)
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func appendRecord(buf []byte, kind byte, body []byte) []byte {
	n := 1 + len(body)
	var hdr [recHeaderLen]byte
	binary.LittleEndian.PutUint32(hdr[0:], uint32(n))
	c := crc32.Update(0, crcTable, []byte{kind})
	c = crc32.Update(c, crcTable, body)
	binary.LittleEndian.PutUint32(hdr[4:], c)
	binary.LittleEndian.PutUint32(hdr[8:], crc32.Checksum(hdr[:8], crcTable))
	buf = append(buf, hdr[:]...)
	buf = append(buf, kind)
	return append(buf, body...)
}

func appendProtoRecord(buf []byte, kind byte, m proto.Message) ([]byte, error) {
	body, err := proto.Marshal(m)
	if err != nil {
		return buf, fmt.Errorf("raft wal: marshal record: %w", err)
	}
	return appendRecord(buf, kind, body), nil
}

// parseRecords splits a segment into record payloads. It returns the
// offset after the last good record and whether the rest is a torn final
// write (a record cut short, a final record whose checksum fails, or a
// zero-filled tail). Damage followed by more data is corruption: an error.
func parseRecords(data []byte) (recs [][]byte, end int, torn bool, err error) {
	off := 0
	for off < len(data) {
		rest := data[off:]
		if len(rest) < recHeaderLen {
			return recs, off, true, nil
		}
		if crc32.Checksum(rest[:8], crcTable) != binary.LittleEndian.Uint32(rest[8:12]) {
			if allZero(rest) {
				return recs, off, true, nil
			}
			return recs, off, false, fmt.Errorf("%w: record header at offset %d: checksum mismatch", ErrCorrupt, off)
		}
		n := int(binary.LittleEndian.Uint32(rest[0:4]))
		if n == 0 || n > maxRecordBytes {
			return recs, off, false, fmt.Errorf("%w: record at offset %d: length %d out of range", ErrCorrupt, off, n)
		}
		if len(rest)-recHeaderLen < n {
			return recs, off, true, nil
		}
		payload := rest[recHeaderLen : recHeaderLen+n]
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(rest[4:8]) {
			if recHeaderLen+n == len(rest) {
				return recs, off, true, nil
			}
			return recs, off, false, fmt.Errorf("%w: record at offset %d: payload checksum mismatch", ErrCorrupt, off)
		}
		recs = append(recs, payload)
		off += recHeaderLen + n
	}
	return recs, off, false, nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// WAL is the Storage of a node: raft's state in memory (etcd's
// MemoryStorage) backed by an append-only log file in a folder.
//
// The folder holds one segment, named by a 16-hex-digit sequence number
// with the suffix ".wal". Records are appended to it. When it grows past
// the segment size, the live state (snapshot, entries after the compaction
// point, hard state) is written as a checkpoint to the next segment
// (written to a ".tmp" name, synced, renamed, directory synced), and the
// old segment is removed. Opening reads only the newest segment; older
// segments and ".tmp" files are leftovers of an interrupted rotation and
// are removed.
type WAL struct {
	mu   sync.Mutex // guards all; the engine goroutine is the only writer, raft reads through ms
	fs   durable.FS
	dir  string
	log  *slog.Logger
	ms   *etcdraft.MemoryStorage
	hs   *raftpb.HardState
	f    durable.File
	seq  uint64
	size int64
	// rotateAt is the segment size that triggers a checkpoint: at least
	// segmentBytes, and twice the last checkpoint so that a large live
	// state is not rewritten over and over.
	rotateAt     int64
	segmentBytes int64
	isNew        bool
	buf          []byte
}

var _ Storage = (*WAL)(nil)

func segmentName(seq uint64) string { return fmt.Sprintf("%016x.wal", seq) }

func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, ".wal")
	if !ok || len(hex) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(hex, 16, 64)
	return seq, err == nil
}

// OpenWAL opens (or creates) the WAL in dir. A torn final write is cut
// away with one log line; other damage is an error wrapping ErrCorrupt.
func OpenWAL(fsys durable.FS, dir string, segmentBytes int64, log *slog.Logger) (*WAL, error) {
	if fsys == nil {
		fsys = durable.OSFS{}
	}
	if segmentBytes <= 0 {
		segmentBytes = DefaultSegmentBytes
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("raft wal: create %s: %w", dir, err)
	}
	names, err := fsys.List(dir)
	if err != nil {
		return nil, fmt.Errorf("raft wal: list %s: %w", dir, err)
	}
	w := &WAL{fs: fsys, dir: dir, log: log, ms: etcdraft.NewMemoryStorage(), segmentBytes: segmentBytes, rotateAt: segmentBytes}
	var segs []uint64
	for _, name := range names {
		if strings.HasSuffix(name, ".wal.tmp") {
			if err := fsys.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("raft wal: remove leftover %s: %w", name, err)
			}
			continue
		}
		if seq, ok := parseSegmentName(name); ok {
			segs = append(segs, seq)
		}
	}
	if len(segs) == 0 {
		w.seq = 1
		path := filepath.Join(dir, segmentName(w.seq))
		if w.f, err = fsys.Create(path, 0o600); err != nil {
			return nil, fmt.Errorf("raft wal: create %s: %w", path, err)
		}
		if err := fsys.SyncDir(dir); err != nil {
			return nil, fmt.Errorf("raft wal: sync %s: %w", dir, err)
		}
		w.isNew = true
		return w, nil
	}
	w.seq = segs[len(segs)-1] // List is sorted and names are fixed-width hex
	for _, old := range segs[:len(segs)-1] {
		log.Info("raft wal: removing segment of an interrupted rotation", "file", segmentName(old))
		if err := fsys.Remove(filepath.Join(dir, segmentName(old))); err != nil {
			return nil, fmt.Errorf("raft wal: remove %s: %w", segmentName(old), err)
		}
	}
	path := filepath.Join(dir, segmentName(w.seq))
	data, err := fsys.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("raft wal: read %s: %w", path, err)
	}
	recs, end, torn, err := parseRecords(data)
	if err != nil {
		return nil, fmt.Errorf("raft wal %s: %w", path, err)
	}
	if w.f, err = fsys.OpenAppend(path); err != nil {
		return nil, fmt.Errorf("raft wal: open %s: %w", path, err)
	}
	if torn {
		log.Warn("raft wal: truncating a torn final write", "file", path, "offset", end, "bytes", len(data)-end)
		if err := w.f.Truncate(int64(end)); err != nil {
			w.f.Close()
			return nil, fmt.Errorf("raft wal: truncate %s: %w", path, err)
		}
		if err := w.f.Sync(); err != nil {
			w.f.Close()
			return nil, fmt.Errorf("raft wal: sync %s: %w", path, err)
		}
	}
	w.size = int64(end)
	w.rotateAt = max(segmentBytes, 2*w.size)
	if err := w.replay(recs); err != nil {
		w.f.Close()
		return nil, fmt.Errorf("raft wal %s: %w", path, err)
	}
	w.isNew = len(recs) == 0
	return w, nil
}

// replay rebuilds the memory state from records, checking every record
// against the state before handing it to MemoryStorage (which panics on
// inconsistent input).
func (w *WAL) replay(recs [][]byte) error {
	for i, rec := range recs {
		kind, body := rec[0], rec[1:]
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: record %d: "+format, append([]any{ErrCorrupt, i}, args...)...)
		}
		switch kind {
		case recHardState:
			hs := new(raftpb.HardState)
			if err := proto.Unmarshal(body, hs); err != nil {
				return bad("hard state: %v", err)
			}
			w.hs = hs
		case recEntry:
			e := new(raftpb.Entry)
			if err := proto.Unmarshal(body, e); err != nil {
				return bad("entry: %v", err)
			}
			last, _ := w.ms.LastIndex()
			first, _ := w.ms.FirstIndex()
			if e.GetIndex() > last+1 {
				return bad("entry %d after the end of the log %d", e.GetIndex(), last)
			}
			if e.GetIndex() < first {
				continue // below the compaction point: MemoryStorage ignores it too
			}
			if err := w.ms.Append([]*raftpb.Entry{e}); err != nil {
				return bad("entry %d: %v", e.GetIndex(), err)
			}
		case recSnapshot:
			s := new(raftpb.Snapshot)
			if err := proto.Unmarshal(body, s); err != nil {
				return bad("snapshot: %v", err)
			}
			if err := w.ms.ApplySnapshot(s); err != nil {
				return bad("snapshot %d: %v", s.GetMetadata().GetIndex(), err)
			}
		case recCompact:
			if len(body) < 8 {
				return bad("compaction of %d bytes", len(body))
			}
			compactTo := binary.BigEndian.Uint64(body)
			s := new(raftpb.Snapshot)
			if err := proto.Unmarshal(body[8:], s); err != nil {
				return bad("compaction: %v", err)
			}
			if err := w.compactMem(s.GetMetadata().GetIndex(), s.GetMetadata().GetTerm(), s.GetMetadata().GetConfState(), s.GetData(), compactTo); err != nil {
				return bad("compaction: %v", err)
			}
		default:
			return bad("unknown kind %d", kind)
		}
	}
	if w.hs != nil {
		last, _ := w.ms.LastIndex()
		if w.hs.GetCommit() > last {
			return fmt.Errorf("%w: hard state commit %d beyond the last entry %d", ErrCorrupt, w.hs.GetCommit(), last)
		}
		w.ms.SetHardState(w.hs)
	}
	return nil
}

// compactMem applies a compaction to memory. term, when not zero, must be
// the term of entry index (a check of the record against the log).
func (w *WAL) compactMem(index, term uint64, cs *raftpb.ConfState, data []byte, compactTo uint64) error {
	first, _ := w.ms.FirstIndex()
	last, _ := w.ms.LastIndex()
	if index < first-1 || index > last || compactTo > index {
		return fmt.Errorf("snapshot at %d (compact to %d) outside the log [%d, %d]", index, compactTo, first-1, last)
	}
	if t, err := w.ms.Term(index); err != nil || (term != 0 && t != term) {
		return fmt.Errorf("snapshot at %d: term %d, log has %d (%v)", index, term, t, err)
	}
	snap, _ := w.ms.Snapshot()
	if index > snap.GetMetadata().GetIndex() {
		if _, err := w.ms.CreateSnapshot(index, cs, data); err != nil {
			return err
		}
	}
	if compactTo > first-1 {
		if err := w.ms.Compact(compactTo); err != nil {
			return err
		}
	}
	return nil
}

// IsNew implements Storage.
func (w *WAL) IsNew() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.isNew
}

// Save implements Storage.
func (w *WAL) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot, sync bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return errors.New("raft wal: closed")
	}
	buf := w.buf[:0]
	var err error
	if snap != nil && !etcdraft.IsEmptySnap(snap) {
		if buf, err = appendProtoRecord(buf, recSnapshot, snap); err != nil {
			return err
		}
	}
	for _, e := range ents {
		if buf, err = appendProtoRecord(buf, recEntry, e); err != nil {
			return err
		}
	}
	if !etcdraft.IsEmptyHardState(hs) {
		if buf, err = appendProtoRecord(buf, recHardState, hs); err != nil {
			return err
		}
	}
	if len(buf) > 0 {
		if err := w.write(buf, sync); err != nil {
			return err
		}
	}
	w.buf = buf[:0]
	if cap(w.buf) > 4<<20 {
		w.buf = nil // do not keep a large block's buffer
	}
	// Memory follows disk.
	if snap != nil && !etcdraft.IsEmptySnap(snap) {
		if err := w.ms.ApplySnapshot(proto.Clone(snap).(*raftpb.Snapshot)); err != nil {
			return fmt.Errorf("raft wal: apply snapshot: %w", err)
		}
	}
	if len(ents) > 0 {
		if err := w.ms.Append(ents); err != nil {
			return fmt.Errorf("raft wal: append: %w", err)
		}
	}
	if !etcdraft.IsEmptyHardState(hs) {
		w.hs = proto.Clone(hs).(*raftpb.HardState)
		if err := w.ms.SetHardState(w.hs); err != nil {
			return err
		}
	}
	w.isNew = false
	return w.maybeRotate()
}

// Compact implements Storage.
func (w *WAL) Compact(index uint64, cs *raftpb.ConfState, data []byte, compactTo uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return errors.New("raft wal: closed")
	}
	term, err := w.ms.Term(index)
	if err != nil {
		return fmt.Errorf("raft wal: compact at %d: %w", index, err)
	}
	s := &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{Index: new(index), Term: new(term), ConfState: cs}}
	body, err := proto.Marshal(s)
	if err != nil {
		return fmt.Errorf("raft wal: marshal snapshot: %w", err)
	}
	var to [8]byte
	binary.BigEndian.PutUint64(to[:], compactTo)
	if err := w.write(appendRecord(nil, recCompact, append(to[:], body...)), true); err != nil {
		return err
	}
	if err := w.compactMem(index, term, cs, data, compactTo); err != nil {
		return fmt.Errorf("raft wal: compact: %w", err)
	}
	return w.maybeRotate()
}

func (w *WAL) write(buf []byte, sync bool) error {
	if _, err := w.f.Write(buf); err != nil {
		return fmt.Errorf("raft wal: write: %w", err)
	}
	w.size += int64(len(buf))
	if sync {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("raft wal: sync: %w", err)
		}
	}
	return nil
}

// maybeRotate writes a checkpoint of the live state to a new segment when
// the current one has grown past rotateAt.
func (w *WAL) maybeRotate() error {
	if w.size < w.rotateAt {
		return nil
	}
	cp, err := w.checkpoint()
	if err != nil {
		return err
	}
	next := w.seq + 1
	path := filepath.Join(w.dir, segmentName(next))
	tmp := path + ".tmp"
	f, err := w.fs.Create(tmp, 0o600)
	if err != nil {
		return fmt.Errorf("raft wal: create %s: %w", tmp, err)
	}
	if _, err := f.Write(cp); err != nil {
		f.Close()
		return fmt.Errorf("raft wal: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("raft wal: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("raft wal: close %s: %w", tmp, err)
	}
	if err := w.fs.Rename(tmp, path); err != nil {
		return fmt.Errorf("raft wal: rename %s: %w", tmp, err)
	}
	if err := w.fs.SyncDir(w.dir); err != nil {
		return fmt.Errorf("raft wal: sync %s: %w", w.dir, err)
	}
	old := filepath.Join(w.dir, segmentName(w.seq))
	w.f.Close()
	if w.f, err = w.fs.OpenAppend(path); err != nil {
		w.f = nil
		return fmt.Errorf("raft wal: open %s: %w", path, err)
	}
	w.seq, w.size = next, int64(len(cp))
	w.rotateAt = max(w.segmentBytes, 2*w.size)
	if err := w.fs.Remove(old); err != nil {
		// The next open removes it; the new segment is complete.
		w.log.Warn("raft wal: cannot remove old segment", "file", old, "err", err)
	}
	return nil
}

// checkpoint encodes the live state: the log base (as a snapshot record
// that resets the log), the entries, the latest snapshot when it is past
// the base, the hard state.
func (w *WAL) checkpoint() ([]byte, error) {
	snap, err := w.ms.Snapshot()
	if err != nil {
		return nil, err
	}
	first, _ := w.ms.FirstIndex()
	last, _ := w.ms.LastIndex()
	base := first - 1
	baseTerm, err := w.ms.Term(base)
	if err != nil {
		return nil, fmt.Errorf("raft wal: checkpoint base %d: %w", base, err)
	}
	meta := snap.GetMetadata()
	var buf []byte
	if meta.GetIndex() == base {
		buf, err = appendProtoRecord(buf, recSnapshot, snap)
	} else {
		baseSnap := &raftpb.Snapshot{Data: snap.GetData(), Metadata: &raftpb.SnapshotMetadata{
			Index: new(base), Term: new(baseTerm), ConfState: meta.GetConfState()}}
		buf, err = appendProtoRecord(buf, recSnapshot, baseSnap)
	}
	if err != nil {
		return nil, err
	}
	if last >= first {
		ents, err := w.ms.Entries(first, last+1, ^uint64(0))
		if err != nil {
			return nil, fmt.Errorf("raft wal: checkpoint entries: %w", err)
		}
		for _, e := range ents {
			if buf, err = appendProtoRecord(buf, recEntry, e); err != nil {
				return nil, err
			}
		}
	}
	if meta.GetIndex() > base {
		body, err := proto.Marshal(snap)
		if err != nil {
			return nil, err
		}
		var to [8]byte
		binary.BigEndian.PutUint64(to[:], base)
		buf = appendRecord(buf, recCompact, append(to[:], body...))
	}
	if w.hs != nil {
		if buf, err = appendProtoRecord(buf, recHardState, w.hs); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// Close implements Storage.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// HardState returns the last saved hard state (nil if none).
func (w *WAL) HardState() *raftpb.HardState {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hs == nil {
		return nil
	}
	return proto.Clone(w.hs).(*raftpb.HardState)
}

// The etcd raft Storage methods read memory.

func (w *WAL) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	return w.ms.InitialState()
}
func (w *WAL) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	return w.ms.Entries(lo, hi, maxSize)
}
func (w *WAL) Term(i uint64) (uint64, error)       { return w.ms.Term(i) }
func (w *WAL) LastIndex() (uint64, error)          { return w.ms.LastIndex() }
func (w *WAL) FirstIndex() (uint64, error)         { return w.ms.FirstIndex() }
func (w *WAL) Snapshot() (*raftpb.Snapshot, error) { return w.ms.Snapshot() }
