package durable

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

// FS is the part of a file system that Charter's durable writes use: the
// engines' state files, the raft WAL and the key and certificate files.
// It exists so that simulations run them on MemFS, which loses unsynced
// writes on a simulated power loss. Names are paths. OSFS and MemFS are
// goroutine-safe; a File is used by one goroutine at a time.
type FS interface {
	// MkdirAll creates dir and its parents (mode 0700) if missing.
	MkdirAll(dir string) error
	// List returns the names (not paths) of the regular files in dir,
	// sorted.
	List(dir string) ([]string, error)
	// ReadFile returns the content of a file; an error wrapping
	// fs.ErrNotExist if there is none.
	ReadFile(name string) ([]byte, error)
	// Create makes an empty file for writing with the given permissions,
	// truncating one that exists.
	Create(name string, perm fs.FileMode) (File, error)
	// OpenAppend opens an existing file; writes go to its end.
	OpenAppend(name string) (File, error)
	// OpenWrite opens an existing file for writes in place (File.WriteAt,
	// within its size); its Sync makes the data durable, not the file's
	// times (fdatasync where there is one).
	OpenWrite(name string) (File, error)
	Rename(oldname, newname string) error
	Remove(name string) error
	// SyncDir makes the directory's entries (created, renamed, removed
	// files) durable.
	SyncDir(dir string) error
}

// File is an open file of an FS.
type File interface {
	Write(p []byte) (int, error)
	// WriteAt writes p at offset off, within the file's size.
	WriteAt(p []byte, off int64) (int, error)
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

func (OSFS) Create(name string, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return nil, err
	}
	// The mode of a file that existed, or one the umask narrowed.
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (OSFS) OpenAppend(name string) (File, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0o600)
}

func (OSFS) OpenWrite(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	return inPlaceFile{f}, nil
}

// inPlaceFile is a file written in place: its Sync is a data sync.
type inPlaceFile struct{ *os.File }

func (f inPlaceFile) WriteAt(p []byte, off int64) (int, error) {
	st, err := f.File.Stat()
	if err != nil {
		return 0, err
	}
	if off < 0 || off+int64(len(p)) > st.Size() {
		return 0, fmt.Errorf("write in place at %d of %d bytes beyond the %d-byte file %s", off, len(p), st.Size(), f.Name())
	}
	return f.File.WriteAt(p, off)
}

func (f inPlaceFile) Sync() error { return dataSync(f.File) }

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

// MemFS is an in-memory FS that models power loss. Crash keeps what was
// made durable and loses the rest:
//
//   - directory entries (files created, renamed, removed) as of the last
//     SyncDir of their folder: later ones are lost;
//   - file contents as of the last File.Sync; for a file only appended to
//     since, a random prefix of the unsynced bytes survives (a torn
//     write); each write in place since (WriteAt) is lost, kept whole or
//     kept in part (a random prefix of it); a file truncated since goes
//     back to its synced content.
//
// Every random choice comes from the rand.Rand given to Crash, so a
// simulation replays from its seed. It is goroutine-safe.
type MemFS struct {
	mu      sync.Mutex
	files   map[string]*memFile // current directory entries
	durable map[string]*memFile // directory entries as of the last SyncDir
}

type memFile struct {
	data      []byte
	synced    []byte     // content as of the last Sync; a prefix of data unless rewritten or written in place
	rewritten bool       // truncated since the last Sync: synced is not a prefix of data
	inPlace   []memWrite // writes in place since the last Sync, in order
}

// memWrite is one unsynced write in place.
type memWrite struct {
	off  int
	data []byte
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

// Create implements FS; MemFS keeps no permissions.
func (m *MemFS) Create(name string, _ fs.FileMode) (File, error) {
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

// OpenWrite implements FS.
func (m *MemFS) OpenWrite(name string) (File, error) {
	return m.OpenAppend(name)
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

// SyncDir makes the entries of dir durable (not those of other folders).
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = filepath.Clean(dir)
	for name := range m.durable {
		if filepath.Dir(name) == dir {
			if _, ok := m.files[name]; !ok {
				delete(m.durable, name)
			}
		}
	}
	for name, f := range m.files {
		if filepath.Dir(name) == dir {
			m.durable[name] = f
		}
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
		if !old.rewritten {
			for _, w := range old.inPlace {
				keep := len(w.data) // 1 in 3: whole; 1 in 3: lost; else a prefix
				switch rng.Intn(3) {
				case 1:
					keep = 0
				case 2:
					keep = rng.Intn(len(w.data) + 1)
				}
				if w.off < len(data) {
					copy(data[w.off:], w.data[:keep])
				}
			}
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
	f.data, f.synced, f.rewritten, f.inPlace = data, data[:len(data):len(data)], false, nil
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

// WriteAt writes in place, within the file's size. The first write since
// a Sync copies the content, which synced shares.
func (h *memHandle) WriteAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return 0, errClosed
	}
	if off < 0 || off+int64(len(p)) > int64(len(h.f.data)) {
		return 0, fmt.Errorf("memfs: write in place at %d of %d bytes beyond a %d-byte file", off, len(p), len(h.f.data))
	}
	if len(h.f.inPlace) == 0 {
		h.f.data = append([]byte(nil), h.f.data...)
	}
	copy(h.f.data[off:], p)
	h.f.inPlace = append(h.f.inPlace, memWrite{off: int(off), data: append([]byte(nil), p...)})
	return len(p), nil
}

func (h *memHandle) Sync() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return errClosed
	}
	h.f.synced = h.f.data[:len(h.f.data):len(h.f.data)]
	h.f.rewritten, h.f.inPlace = false, nil
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
