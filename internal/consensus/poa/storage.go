package poa

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
)

// Storage keeps a node's PersistentState across restarts. Save must be
// durable (synced) when it returns: the engine sends votes only after it.
// Implementations are used from one goroutine at a time.
type Storage interface {
	// Load returns the last saved state; ok is false if none was saved.
	Load() (st PersistentState, ok bool, err error)
	// Save replaces the saved state atomically.
	Save(st PersistentState) error
}

// stateRLP is the stored form of a PersistentState.
type stateRLP struct {
	Version   uint
	Promise   Ballot
	Committed BlockRef
	Chain     []sealedRLP
}

const stateVersion = 1

// EncodeState is the byte form of st: a 32-byte keccak checksum, then RLP.
func EncodeState(st PersistentState) []byte {
	b, err := rlp.EncodeToBytes(stateRLP{Version: stateVersion, Promise: st.Promise, Committed: st.Committed, Chain: toRLP(st.Chain)})
	if err != nil {
		panic(fmt.Sprintf("poa: encode state: %v", err))
	}
	return append(crypto.Keccak256(b), b...)
}

// ErrCorruptState reports a stored state that fails its checksum or decoding.
var ErrCorruptState = errors.New("poa: corrupt persisted state")

// DecodeState parses EncodeState's output.
func DecodeState(data []byte) (PersistentState, error) {
	if len(data) < 32 {
		return PersistentState{}, fmt.Errorf("%w: %d bytes", ErrCorruptState, len(data))
	}
	sum, body := data[:32], data[32:]
	if !bytes.Equal(sum, crypto.Keccak256(body)) {
		return PersistentState{}, fmt.Errorf("%w: checksum mismatch", ErrCorruptState)
	}
	var s stateRLP
	if err := rlp.DecodeBytes(body, &s); err != nil {
		return PersistentState{}, fmt.Errorf("%w: %v", ErrCorruptState, err)
	}
	if s.Version != stateVersion {
		return PersistentState{}, fmt.Errorf("%w: version %d", ErrCorruptState, s.Version)
	}
	st := PersistentState{Promise: s.Promise, Committed: s.Committed}
	for _, r := range s.Chain {
		sb, err := fromRLP(r)
		if err != nil {
			return PersistentState{}, fmt.Errorf("%w: %v", ErrCorruptState, err)
		}
		st.Chain = append(st.Chain, sb)
	}
	return st, nil
}

// MemStorage keeps the state in memory (tests, dev mode). Goroutine-safe.
type MemStorage struct {
	mu   sync.Mutex
	data []byte
}

// Load implements Storage.
func (m *MemStorage) Load() (PersistentState, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		return PersistentState{}, false, nil
	}
	st, err := DecodeState(m.data)
	return st, err == nil, err
}

// Save implements Storage.
func (m *MemStorage) Save(st PersistentState) error {
	b := EncodeState(st)
	m.mu.Lock()
	m.data = b
	m.mu.Unlock()
	return nil
}

// FileStorage keeps the state in one file, replaced atomically: write a
// temporary file, sync it, rename it over the old one, sync the directory.
// A crash leaves either the old or the new state; a damaged file is
// reported by Load (ErrCorruptState, naming the file), never half-read.
type FileStorage struct {
	Path string
}

// Load implements Storage.
func (f FileStorage) Load() (PersistentState, bool, error) {
	data, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return PersistentState{}, false, nil
	}
	if err != nil {
		return PersistentState{}, false, fmt.Errorf("poa: read state: %w", err)
	}
	st, err := DecodeState(data)
	if err != nil {
		return PersistentState{}, false, fmt.Errorf("%s: %w", f.Path, err)
	}
	return st, true, nil
}

// Save implements Storage.
func (f FileStorage) Save(st PersistentState) error {
	tmp := f.Path + ".tmp"
	if err := writeSync(tmp, EncodeState(st)); err != nil {
		return fmt.Errorf("poa: save state: %w", err)
	}
	if err := os.Rename(tmp, f.Path); err != nil {
		return fmt.Errorf("poa: save state: %w", err)
	}
	dir, err := os.Open(filepath.Dir(f.Path))
	if err != nil {
		return fmt.Errorf("poa: save state: %w", err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("poa: save state: sync dir: %w", err)
	}
	return nil
}

func writeSync(path string, data []byte) error {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
