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
//   - StateFile is WriteFile for an engine's state, framed with a checksum,
//     so that a file damaged at rest is reported (ErrCorrupt, naming the
//     file) and never half read.
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

// stateMagic starts every state file; the version follows it.
var stateMagic = [4]byte{'C', 'H', 'S', 'T'}

const (
	stateVersion   = 1
	stateHeaderLen = 4 + 1 + 4 + 8 // magic, version, crc32c(body), len(body)
	// MaxStateBytes bounds a state file (bft keeps two blocks in it).
	MaxStateBytes = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// StateFile keeps one engine's state, replaced whole by every Save. A
// crash at any instant leaves the state of the last Save that returned
// nil, or of a Save that had not returned yet, never a mix or a part.
// Used by one goroutine at a time.
type StateFile struct {
	FS   FS
	Path string
}

// Load returns the last saved state, or nil and no error if none was ever
// saved. A file that does not hold a whole state is an error naming it
// (wrapping ErrCorrupt): never an older or partial state in silence.
func (s StateFile) Load() ([]byte, error) {
	raw, err := s.FS.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", s.Path, err)
	}
	body, err := unframe(raw)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", s.Path, err)
	}
	return body, nil
}

// Save replaces the state with data (nil is an empty state, not "none").
// When it returns nil the state is durable.
func (s StateFile) Save(data []byte) error {
	if len(data) > MaxStateBytes {
		return fmt.Errorf("save state %s: %d bytes, at most %d", s.Path, len(data), MaxStateBytes)
	}
	if err := WriteFile(s.FS, s.Path, frame(data), 0o600); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// frame is magic | version | crc32c(body) | len(body) | body.
func frame(body []byte) []byte {
	out := make([]byte, 0, stateHeaderLen+len(body))
	out = append(out, stateMagic[:]...)
	out = append(out, stateVersion)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(body, castagnoli))
	out = binary.BigEndian.AppendUint64(out, uint64(len(body)))
	return append(out, body...)
}

func unframe(raw []byte) ([]byte, error) {
	if len(raw) < stateHeaderLen || !bytes.Equal(raw[:4], stateMagic[:]) {
		return nil, fmt.Errorf("%w: bad header (%d bytes)", ErrCorrupt, len(raw))
	}
	if raw[4] != stateVersion {
		return nil, fmt.Errorf("%w: version %d", ErrCorrupt, raw[4])
	}
	sum := binary.BigEndian.Uint32(raw[5:9])
	n := binary.BigEndian.Uint64(raw[9:17])
	body := raw[stateHeaderLen:]
	if uint64(len(body)) != n {
		return nil, fmt.Errorf("%w: %d bytes of state, the header says %d", ErrCorrupt, len(body), n)
	}
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return body, nil
}
