package raft

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// FS is the part of a file system the WAL uses. It exists so that tests
// run the WAL on MemFS, which loses unsynced writes on a simulated crash.
// Names are paths; implementations need not be goroutine-safe beyond what
// one WAL does (one goroutine at a time).
type FS interface {
	MkdirAll(dir string) error
	// List returns the names (not paths) of the files in dir, sorted.
	List(dir string) ([]string, error)
	ReadFile(name string) ([]byte, error)
	// Create makes an empty file for writing, truncating one that exists.
	Create(name string) (File, error)
	// OpenAppend opens an existing file; writes go to its end.
	OpenAppend(name string) (File, error)
	Rename(oldname, newname string) error
	Remove(name string) error
	// SyncDir makes the directory's entries (created, renamed, removed
	// files) durable.
	SyncDir(dir string) error
}

// File is an open file of an FS.
type File interface {
	Write(p []byte) (int, error)
	// Sync makes everything written so far durable.
	Sync() error
	Truncate(size int64) error
	Close() error
}

// OSFS is the operating system's file system.
type OSFS struct{}

var _ FS = OSFS{}

func (OSFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o700) }

func (OSFS) List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	return out, nil // os.ReadDir sorts by name
}

func (OSFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

func (OSFS) Create(name string) (File, error) {
	return os.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
}

func (OSFS) OpenAppend(name string) (File, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0o600)
}

func (OSFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (OSFS) Remove(name string) error             { return os.Remove(name) }

func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// MemFS is an in-memory FS that models power loss: Crash keeps what was
// synced (file contents at File.Sync, directory entries at SyncDir) and,
// for a file only appended to since its last sync, a random prefix of the
// unsynced bytes (a torn write). It is goroutine-safe.
type MemFS struct {
	mu      sync.Mutex
	files   map[string]*memFile // current directory entries
	durable map[string]*memFile // directory entries as of the last SyncDir
}

type memFile struct {
	data      []byte
	synced    []byte // content as of the last Sync; a prefix of data unless rewritten
	rewritten bool   // truncated since the last Sync: synced is not a prefix of data
}

// NewMemFS returns an empty MemFS.
func NewMemFS() *MemFS {
	return &MemFS{files: make(map[string]*memFile), durable: make(map[string]*memFile)}
}

var _ FS = (*MemFS)(nil)

func (m *MemFS) MkdirAll(string) error { return nil }

func (m *MemFS) List(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for name := range m.files {
		if filepath.Dir(name) == filepath.Clean(dir) {
			out = append(out, filepath.Base(name))
		}
	}
	sort.Strings(out)
	return out, nil
}

func (m *MemFS) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[filepath.Clean(name)]
	if !ok {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return append([]byte(nil), f.data...), nil
}

func (m *MemFS) Create(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := &memFile{}
	m.files[filepath.Clean(name)] = f
	return &memHandle{fs: m, f: f}, nil
}

func (m *MemFS) OpenAppend(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[filepath.Clean(name)]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memHandle{fs: m, f: f}, nil
}

func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[filepath.Clean(oldname)]
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	delete(m.files, filepath.Clean(oldname))
	m.files[filepath.Clean(newname)] = f
	return nil
}

func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[filepath.Clean(name)]; !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(m.files, filepath.Clean(name))
	return nil
}

func (m *MemFS) SyncDir(string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.durable = make(map[string]*memFile, len(m.files))
	for name, f := range m.files {
		m.durable[name] = f
	}
	return nil
}

// Crash simulates power loss. Handles opened before it must not be used
// afterwards. rng chooses how much of each unsynced tail survives.
func (m *MemFS) Crash(rng *rand.Rand) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files = make(map[string]*memFile, len(m.durable))
	names := make([]string, 0, len(m.durable))
	for name := range m.durable {
		names = append(names, name)
	}
	sort.Strings(names) // rng draws in a fixed order
	for _, name := range names {
		old := m.durable[name]
		data := append([]byte(nil), old.synced...)
		if !old.rewritten && len(old.data) > len(old.synced) {
			tail := old.data[len(old.synced):]
			data = append(data, tail[:rng.Intn(len(tail)+1)]...)
		}
		f := &memFile{data: data, synced: data[:len(data):len(data)]}
		m.files[name] = f
		m.durable[name] = f
	}
}

// Corrupt flips one byte of a file, for tests of corruption detection.
func (m *MemFS) Corrupt(name string, offset int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[filepath.Clean(name)]
	if !ok || offset < 0 || offset >= len(f.data) {
		return fmt.Errorf("memfs: cannot corrupt %s at %d", name, offset)
	}
	data := append([]byte(nil), f.data...)
	data[offset] ^= 0xff
	f.data, f.synced, f.rewritten = data, data[:len(data):len(data)], false
	return nil
}

type memHandle struct {
	fs     *MemFS
	f      *memFile
	closed bool
}

var errClosed = errors.New("memfs: file closed")

func (h *memHandle) Write(p []byte) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return 0, errClosed
	}
	// Appending never touches bytes shared with synced: synced is capped at
	// its length, and Truncate reallocates.
	h.f.data = append(h.f.data, p...)
	return len(p), nil
}

func (h *memHandle) Sync() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return errClosed
	}
	h.f.synced = h.f.data[:len(h.f.data):len(h.f.data)]
	h.f.rewritten = false
	return nil
}

func (h *memHandle) Truncate(size int64) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return errClosed
	}
	if size < 0 || size > int64(len(h.f.data)) {
		return fmt.Errorf("memfs: truncate to %d of a %d-byte file", size, len(h.f.data))
	}
	h.f.data = append([]byte(nil), h.f.data[:size]...)
	if size < int64(len(h.f.synced)) {
		h.f.rewritten = true
	}
	return nil
}

func (h *memHandle) Close() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	h.closed = true
	return nil
}
