package durable

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// cutFS is an FS whose power goes out before its n-th operation that
// changes anything: that operation and every later one fail.
type cutFS struct {
	*MemFS
	left int
}

var errPower = errors.New("power cut")

func (c *cutFS) op() error {
	if c.left <= 0 {
		return errPower
	}
	c.left--
	return nil
}

func (c *cutFS) Create(name string, perm fs.FileMode) (File, error) {
	if err := c.op(); err != nil {
		return nil, err
	}
	f, err := c.MemFS.Create(name, perm)
	return &cutFile{f, c}, err
}

func (c *cutFS) Rename(a, b string) error {
	if err := c.op(); err != nil {
		return err
	}
	return c.MemFS.Rename(a, b)
}

func (c *cutFS) SyncDir(d string) error {
	if err := c.op(); err != nil {
		return err
	}
	return c.MemFS.SyncDir(d)
}

type cutFile struct {
	File
	c *cutFS
}

func (f *cutFile) Write(p []byte) (int, error) {
	if err := f.c.op(); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *cutFile) Sync() error {
	if err := f.c.op(); err != nil {
		return err
	}
	return f.File.Sync()
}

// A state saved with StateFile survives power loss at every step of a
// later Save: Load then returns the old state or the new one, whole; and
// once Save returned, the new one.
func TestStateFileSurvivesPowerLossAtEveryStep(t *testing.T) {
	old, updated := []byte("state one"), bytes.Repeat([]byte("state two "), 100)
	for cut := 0; cut < 8; cut++ {
		for seed := int64(0); seed < 20; seed++ {
			mem := NewMemFS()
			must(t, mem.MkdirAll("/d"))
			must(t, StateFile{FS: mem, Path: "/d/state"}.Save(old))
			c := &cutFS{MemFS: mem, left: cut}
			err := StateFile{FS: c, Path: "/d/state"}.Save(updated)
			mem.Crash(rand.New(rand.NewSource(seed)))
			got, lerr := StateFile{FS: mem, Path: "/d/state"}.Load()
			if lerr != nil {
				t.Fatalf("cut %d seed %d: load after crash: %v", cut, seed, lerr)
			}
			switch {
			case err == nil && !bytes.Equal(got, updated):
				t.Fatalf("cut %d seed %d: Save returned nil but the crash left %q", cut, seed, got)
			case !bytes.Equal(got, old) && !bytes.Equal(got, updated):
				t.Fatalf("cut %d seed %d: the crash left neither state: %q", cut, seed, got)
			}
		}
	}
}

func TestStateFileAbsentAndCorrupt(t *testing.T) {
	mem := NewMemFS()
	s := StateFile{FS: mem, Path: "/d/state"}
	got, err := s.Load()
	if got != nil || err != nil {
		t.Fatalf("absent state: %q, %v; want nil, nil", got, err)
	}
	must(t, s.Save([]byte("hello state")))
	raw, _ := mem.ReadFile("/d/state")
	for _, off := range []int{0, 4, 6, 12, len(raw) - 1} {
		m2 := NewMemFS()
		f, _ := m2.Create("/d/state", 0o600)
		f.Write(raw)
		f.Sync()
		must(t, m2.SyncDir("/d"))
		must(t, m2.Corrupt("/d/state", off))
		_, err := StateFile{FS: m2, Path: "/d/state"}.Load()
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "/d/state") {
			t.Fatalf("damage at %d: got %v, want ErrCorrupt naming the file", off, err)
		}
	}
	// Truncated, as by a write torn in place.
	m3 := NewMemFS()
	f, _ := m3.Create("/d/state", 0o600)
	f.Write(raw[:len(raw)-3])
	f.Sync()
	must(t, m3.SyncDir("/d"))
	if _, err := (StateFile{FS: m3, Path: "/d/state"}).Load(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated state: got %v, want ErrCorrupt", err)
	}
}

func TestWriteFileOnDisk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.crt")
	must(t, WriteFile(OSFS{}, path, []byte("one"), 0o644))
	must(t, WriteFile(OSFS{}, path, []byte("two"), 0o644))
	got, err := os.ReadFile(path)
	must(t, err)
	if string(got) != "two" {
		t.Fatalf("content %q", got)
	}
	st, err := os.Stat(path)
	must(t, err)
	if st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644", st.Mode().Perm())
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temporary file left behind: %v", err)
	}
	if err := WriteFile(OSFS{}, filepath.Join(dir, "missing", "x"), nil, 0o600); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("write into a missing folder: %v", err)
	}
}

func TestMemFSCrashDropsUnsynced(t *testing.T) {
	fsys := NewMemFS()
	f, _ := fsys.Create("/d/a", 0o600)
	f.Write([]byte("synced"))
	f.Sync()
	must(t, fsys.SyncDir("/d"))
	f.Write([]byte("-unsynced"))
	g, _ := fsys.Create("/d/b", 0o600) // never made durable in the directory
	g.Write([]byte("x"))
	g.Sync()
	h, _ := fsys.Create("/e/c", 0o600) // another folder's sync does not cover it
	h.Write([]byte("y"))
	h.Sync()
	must(t, fsys.SyncDir("/f"))
	fsys.Crash(rand.New(rand.NewSource(1)))
	data, err := fsys.ReadFile("/d/a")
	must(t, err)
	if !bytes.HasPrefix(data, []byte("synced")) || !bytes.HasPrefix([]byte("synced-unsynced"), data) {
		t.Fatalf("after crash a holds %q", data)
	}
	for _, name := range []string{"/d/b", "/e/c"} {
		if _, err := fsys.ReadFile(name); err == nil {
			t.Fatalf("%s, created after the last sync of its folder, survived the crash", name)
		}
	}
}

// Torn writes: over many crashes, every prefix length of an unsynced tail
// shows up, not only "all" or "nothing".
func TestMemFSTearsUnsyncedTails(t *testing.T) {
	seen := map[int]bool{}
	for seed := int64(0); seed < 200; seed++ {
		fsys := NewMemFS()
		f, _ := fsys.Create("/d/log", 0o600)
		must(t, fsys.SyncDir("/d"))
		f.Write([]byte("0123"))
		fsys.Crash(rand.New(rand.NewSource(seed)))
		data, err := fsys.ReadFile("/d/log")
		must(t, err)
		if !bytes.HasPrefix([]byte("0123"), data) {
			t.Fatalf("seed %d: %q is not a prefix of what was written", seed, data)
		}
		seen[len(data)] = true
	}
	if len(seen) != 5 {
		t.Fatalf("prefix lengths seen: %v, want all of 0..4", seen)
	}
}

func ExampleWriteFile() {
	mem := NewMemFS()
	_ = WriteFile(mem, "/home/node.crt", []byte("PEM"), 0o644)
	b, _ := mem.ReadFile("/home/node.crt")
	fmt.Println(string(b))
	// Output: PEM
}
