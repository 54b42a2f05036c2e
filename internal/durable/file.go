// Package durable is how Charter writes files that must survive a crash at
// any instant: the consensus engines' state (bft and poa state files, the
// raft write-ahead log) and the key and certificate files. Everything goes
// through an FS, so that the simulations run the same code on MemFS and
// cut its power (torn and lost writes) between any two steps.
//
// Two ways of writing, and what survives a crash at any instant:
//
//   - WriteFile replaces a whole file: the old content or the new, whole
//     (a synced temporary file renamed over it, then the folder synced).
//   - StateFile keeps an engine's state in two slots written in place in
//     turn, each framed with a sequence number and a checksum: the latest
//     whole one is read, and a file with none is reported (ErrCorrupt,
//     naming the file), never half read.
//
// Appending logs (the raft WAL) use the FS directly and frame their own
// records.
package durable

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
)

// WriteFile replaces path with data, atomically and durably: data goes to
// path+".tmp" (mode perm), which is synced, renamed over path, and the
// folder is synced. When it returns nil the new content survives any
// crash; a crash before leaves the old content (or no file), whole. One
// writer per path at a time.
func WriteFile(fsys FS, path string, data []byte, perm fs.FileMode) error {
	tmp := path + ".tmp"
	f, err := fsys.Create(tmp, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err != nil {
		_ = fsys.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The rename is durable only once the folder's entries are.
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("write %s: sync folder: %w", path, err)
	}
	return nil
}

// ErrCorrupt is wrapped by StateFile.Load for a file that exists but does
// not hold a whole state (damaged at rest, or not a state file).
var ErrCorrupt = errors.New("corrupt state file")

// stateMagic starts every state frame; the version follows it.
var stateMagic = [4]byte{'C', 'H', 'S', 'T'}

const (
	// stateVersion 1 is a file of one frame, replaced whole by every Save
	// (written by earlier releases; still read). stateVersion 2 is a file
	// of two slots, written in place in turn.
	stateVersion1  = 1
	stateVersion   = 2
	v1HeaderLen    = 4 + 1 + 4 + 8     // magic, version, crc32c(body), len(body)
	stateHeaderLen = 4 + 1 + 4 + 8 + 8 // magic, version, crc32c(seq|len|body), seq, len(body)
	// MaxStateBytes bounds a state (bft keeps two blocks in it).
	MaxStateBytes = 256 << 20
	// minSlot is the smallest slot; slots are powers of two.
	minSlot = 4 << 10
	// keepSlot is the slot size up to which a file is never shrunk, so
	// that states of changing sizes (bft's, with and without blocks) are
	// written in place; a larger slot is shrunk when a state fits in an
	// eighth of it.
	keepSlot = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// StateFile keeps one engine's state. A crash at any instant leaves the
// state of the last Save that returned nil, or of a Save that had not
// returned yet, never a mix or a part.
//
// The file holds two slots of equal size. Each Save writes the state,
// framed with a sequence number and a checksum, into the slot that does
// not hold the latest state, and syncs its data; Load returns the slot
// with the higher sequence number among the whole ones. Written in place
// into space written before, a Save changes no metadata of the file
// system: on Linux it is one fdatasync, which does not wait for the
// journal (and for every other process's data the journal orders before
// it, as a new file renamed into place does). Only a state larger than a
// slot, or much smaller than a large one, rewrites the file whole
// (WriteFile). A slot damaged at rest reads as a Save that never
// completed: the file is reported corrupt when neither slot holds a
// whole state.
//
// Used by one goroutine at a time. A StateFile finds which slot holds
// the latest state at its first Load or Save, from the file.
type StateFile struct {
	FS   FS
	Path string

	known bool   // slot, seq and size below are the file's
	slot  int    // the slot holding the latest state
	seq   uint64 // its sequence number
	size  int64  // slot size; 0: the file must be written whole
}

// Load returns the last saved state, or nil and no error if none was ever
// saved. A file that does not hold a whole state is an error naming it
// (wrapping ErrCorrupt): never a partial state in silence.
func (s *StateFile) Load() ([]byte, error) {
	raw, err := s.FS.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		s.known, s.size, s.seq = true, 0, 0
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", s.Path, err)
	}
	body, err := s.parse(raw)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", s.Path, err)
	}
	return body, nil
}

// parse reads a whole file, version 1 or 2, and records its position.
func (s *StateFile) parse(raw []byte) ([]byte, error) {
	s.known, s.size, s.seq, s.slot = true, 0, 0, 0
	if len(raw) >= 5 && bytes.Equal(raw[:4], stateMagic[:]) && raw[4] == stateVersion1 {
		return unframe(raw) // the next Save rewrites it in slots
	}
	if len(raw) < 2*minSlot || len(raw)%2 != 0 {
		return nil, fmt.Errorf("%w: %d bytes, not two slots", ErrCorrupt, len(raw))
	}
	half := int64(len(raw) / 2)
	var (
		best  []byte
		found bool
	)
	for i := range 2 {
		seq, body, ok := unslot(raw[int64(i)*half : int64(i+1)*half])
		if ok && (!found || seq > s.seq) {
			best, found, s.seq, s.slot = body, true, seq, i
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: neither slot holds a whole state", ErrCorrupt)
	}
	s.size = half
	return append([]byte{}, best...), nil
}

// Save replaces the state with data (nil is an empty state, not "none").
// When it returns nil the state is durable.
func (s *StateFile) Save(data []byte) error {
	if len(data) > MaxStateBytes {
		return fmt.Errorf("save state %s: %d bytes, at most %d", s.Path, len(data), MaxStateBytes)
	}
	if !s.known {
		if _, err := s.Load(); err != nil {
			s.known, s.size = true, 0 // a file that cannot be read is written whole
		}
	}
	need := int64(stateHeaderLen + len(data))
	if s.size == 0 || need > s.size || (s.size > keepSlot && need*8 < s.size) {
		return s.rewrite(data, need)
	}
	next := 1 - s.slot
	f, err := s.FS.OpenWrite(s.Path)
	if err != nil {
		return fmt.Errorf("save state %s: %w", s.Path, err)
	}
	_, err = f.WriteAt(slotFrame(s.seq+1, data), int64(next)*s.size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// What is on disk is unknown now: the next Save reads it again.
		s.known = false
		return fmt.Errorf("save state %s: %w", s.Path, err)
	}
	s.slot, s.seq = next, s.seq+1
	return nil
}

// rewrite replaces the file whole with slots of the smallest size that
// holds need bytes: the state in the first, the second zero (space
// written, so that later Saves write in place).
func (s *StateFile) rewrite(data []byte, need int64) error {
	size := int64(minSlot)
	for size < need {
		size *= 2
	}
	buf := make([]byte, 2*size)
	copy(buf, slotFrame(s.seq+1, data))
	if err := WriteFile(s.FS, s.Path, buf, 0o600); err != nil {
		s.known = false
		return fmt.Errorf("save state: %w", err)
	}
	s.known, s.size, s.slot, s.seq = true, size, 0, s.seq+1
	return nil
}

// slotFrame is magic | version | crc32c(seq|len|body) | seq | len(body) | body.
func slotFrame(seq uint64, body []byte) []byte {
	out := make([]byte, stateHeaderLen, stateHeaderLen+len(body))
	copy(out, stateMagic[:])
	out[4] = stateVersion
	binary.BigEndian.PutUint64(out[9:], seq)
	binary.BigEndian.PutUint64(out[17:], uint64(len(body)))
	out = append(out, body...)
	binary.BigEndian.PutUint32(out[5:], crc32.Checksum(out[9:], castagnoli))
	return out
}

// unslot reads the frame at the start of a slot: its sequence number and
// body (within slot), or false if the slot holds no whole frame.
func unslot(slot []byte) (uint64, []byte, bool) {
	if len(slot) < stateHeaderLen || !bytes.Equal(slot[:4], stateMagic[:]) || slot[4] != stateVersion {
		return 0, nil, false
	}
	n := binary.BigEndian.Uint64(slot[17:])
	if n > uint64(len(slot)-stateHeaderLen) {
		return 0, nil, false
	}
	end := stateHeaderLen + int(n)
	if crc32.Checksum(slot[9:end], castagnoli) != binary.BigEndian.Uint32(slot[5:]) {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(slot[9:]), slot[stateHeaderLen:end], true
}

// frame is the version 1 file: magic | version | crc32c(body) | len(body) | body.
func frame(body []byte) []byte {
	out := make([]byte, 0, v1HeaderLen+len(body))
	out = append(out, stateMagic[:]...)
	out = append(out, stateVersion1)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(body, castagnoli))
	out = binary.BigEndian.AppendUint64(out, uint64(len(body)))
	return append(out, body...)
}

func unframe(raw []byte) ([]byte, error) {
	if len(raw) < v1HeaderLen || !bytes.Equal(raw[:4], stateMagic[:]) {
		return nil, fmt.Errorf("%w: bad header (%d bytes)", ErrCorrupt, len(raw))
	}
	if raw[4] != stateVersion1 {
		return nil, fmt.Errorf("%w: version %d", ErrCorrupt, raw[4])
	}
	sum := binary.BigEndian.Uint32(raw[5:9])
	n := binary.BigEndian.Uint64(raw[9:17])
	body := raw[v1HeaderLen:]
	if uint64(len(body)) != n {
		return nil, fmt.Errorf("%w: %d bytes of state, the header says %d", ErrCorrupt, len(body), n)
	}
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return body, nil
}
