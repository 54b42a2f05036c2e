package bft

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Storage keeps a validator's SavedState across restarts. The engine calls
// it from one goroutine; implementations need not be goroutine-safe.
type Storage interface {
	// Load returns the state last saved, or nil and no error if none was
	// ever saved. A state that cannot be read back whole is an error
	// (never a silently older or partial state).
	Load() (*SavedState, error)
	// Save replaces the saved state. When it returns nil the state is on
	// stable storage: a crash at any later instant loads this state or a
	// newer one. The engine sends no message signed after the previous
	// Save until Save returns.
	Save(*SavedState) error
}

// FileStorage keeps the state in one file, replaced atomically: the new
// state goes to a temporary file, which is synced, renamed over the old
// one, and the folder synced. A crash leaves the old or the new file,
// whole; the checksum inside catches a damaged disk.
type FileStorage struct {
	path string
}

// NewFileStorage keeps the state at path (its folder must exist).
func NewFileStorage(path string) *FileStorage { return &FileStorage{path: path} }

// Load implements Storage.
func (s *FileStorage) Load() (*SavedState, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read bft state: %w", err)
	}
	st, err := UnmarshalSavedState(b)
	if err != nil {
		return nil, fmt.Errorf("bft state %s: %w", s.path, err)
	}
	return st, nil
}

// Save implements Storage.
func (s *FileStorage) Save(st *SavedState) error {
	b, err := MarshalSavedState(st)
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("save bft state: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("save bft state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save bft state: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save bft state: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("save bft state: %w", err)
	}
	dir, err := os.Open(filepath.Dir(s.path))
	if err != nil {
		return fmt.Errorf("save bft state: open folder: %w", err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("save bft state: sync folder: %w", err)
	}
	return nil
}

// MemoryStorage keeps the state in memory (tests, development chains).
// It is goroutine-safe. It keeps the encoded bytes, so Load returns a
// state decoded afresh, as from a file.
type MemoryStorage struct {
	mu sync.Mutex
	b  []byte
}

// Load implements Storage.
func (s *MemoryStorage) Load() (*SavedState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b == nil {
		return nil, nil
	}
	return UnmarshalSavedState(s.b)
}

// Save implements Storage.
func (s *MemoryStorage) Save(st *SavedState) error {
	b, err := MarshalSavedState(st)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = b
	return nil
}
