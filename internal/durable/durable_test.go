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
	"time"
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

func (c *cutFS) OpenWrite(name string) (File, error) {
	f, err := c.MemFS.OpenWrite(name)
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

func (f *cutFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.c.op(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *cutFile) Sync() error {
	if err := f.c.op(); err != nil {
		return err
	}
	return f.File.Sync()
}

// A state saved with StateFile survives power loss at every step of a
// later Save, written in place (a state that fits the slot) or whole (one
// that does not): Load then returns the old state or the new one, whole;
// and once Save returned, the new one.
func TestStateFileSurvivesPowerLossAtEveryStep(t *testing.T) {
	old := []byte("state one")
	for _, updated := range [][]byte{bytes.Repeat([]byte("state two "), 100), bytes.Repeat([]byte("big state "), 1000)} {
		for cut := 0; cut < 8; cut++ {
			for seed := int64(0); seed < 20; seed++ {
				mem := NewMemFS()
				must(t, mem.MkdirAll("/d"))
				must(t, (&StateFile{FS: mem, Path: "/d/state"}).Save(old))
				c := &cutFS{MemFS: mem, left: cut}
				err := (&StateFile{FS: c, Path: "/d/state"}).Save(updated)
				mem.Crash(rand.New(rand.NewSource(seed)))
				got, lerr := (&StateFile{FS: mem, Path: "/d/state"}).Load()
				if lerr != nil {
					t.Fatalf("%d bytes, cut %d seed %d: load after crash: %v", len(updated), cut, seed, lerr)
				}
				switch {
				case err == nil && !bytes.Equal(got, updated):
					t.Fatalf("%d bytes, cut %d seed %d: Save returned nil but the crash left %q", len(updated), cut, seed, got)
				case !bytes.Equal(got, old) && !bytes.Equal(got, updated):
					t.Fatalf("%d bytes, cut %d seed %d: the crash left neither state: %q", len(updated), cut, seed, got)
				}
			}
		}
	}
}

// Many Saves of states of changing sizes, one StateFile kept as an engine
// keeps it, with power lost at a random step: the state loaded is the last
// one whose Save returned, or the one being saved. The seeds start from
// the clock (printed) so that every run tries other schedules.
func TestStateFileManySavesThenPowerLoss(t *testing.T) {
	base := time.Now().UnixNano()
	t.Logf("seeds from %d", base)
	for i := int64(0); i < 300; i++ {
		seed := base + i
		rng := rand.New(rand.NewSource(seed))
		mem := NewMemFS()
		c := &cutFS{MemFS: mem, left: rng.Intn(60)}
		sf := &StateFile{FS: c, Path: "/d/state"}
		var last, pending []byte
		for k := 0; ; k++ {
			state := bytes.Repeat([]byte{byte(k)}, []int{0, 10, 3000, 5000, 40000}[rng.Intn(5)])
			pending = state
			if err := sf.Save(state); err != nil {
				break
			}
			last, pending = state, nil
		}
		mem.Crash(rng)
		got, err := (&StateFile{FS: mem, Path: "/d/state"}).Load()
		if err != nil {
			t.Fatalf("seed %d: load after crash: %v", seed, err)
		}
		if !bytes.Equal(got, last) && (pending == nil || !bytes.Equal(got, pending)) {
			t.Fatalf("seed %d: loaded %d bytes, want the last saved (%d) or the one in progress", seed, len(got), len(last))
		}
	}
}

func TestStateFileAbsentAndCorrupt(t *testing.T) {
	mem := NewMemFS()
	s := &StateFile{FS: mem, Path: "/d/state"}
	got, err := s.Load()
	if got != nil || err != nil {
		t.Fatalf("absent state: %q, %v; want nil, nil", got, err)
	}
	must(t, s.Save([]byte("hello state")))
	raw, _ := mem.ReadFile("/d/state")
	if len(raw) != 2*minSlot {
		t.Fatalf("file of %d bytes, want two slots of %d", len(raw), minSlot)
	}
	load := func(raw []byte, damage int) ([]byte, error) {
		m2 := NewMemFS()
		f, _ := m2.Create("/d/state", 0o600)
		f.Write(raw)
		f.Sync()
		must(t, m2.SyncDir("/d"))
		if damage >= 0 {
			must(t, m2.Corrupt("/d/state", damage))
		}
		return (&StateFile{FS: m2, Path: "/d/state"}).Load()
	}
	// The only state damaged anywhere in its frame: no state is whole.
	for _, off := range []int{0, 4, 6, 12, 20, stateHeaderLen + 3} {
		if _, err := load(raw, off); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "/d/state") {
			t.Fatalf("damage at %d: got %v, want ErrCorrupt naming the file", off, err)
		}
	}
	// Damage in the unused slot does not matter.
	if got, err := load(raw, minSlot+7); err != nil || string(got) != "hello state" {
		t.Fatalf("damage in the empty slot: %q, %v", got, err)
	}
	// Two states: damage to the newer reads as its Save never completing.
	must(t, s.Save([]byte("second state")))
	raw, _ = mem.ReadFile("/d/state")
	if got, err := load(raw, minSlot+stateHeaderLen); err != nil || string(got) != "hello state" {
		t.Fatalf("newer slot damaged: %q, %v; want the older state", got, err)
	}
	if got, err := load(raw, stateHeaderLen); err != nil || string(got) != "second state" {
		t.Fatalf("older slot damaged: %q, %v; want the newer state", got, err)
	}
	// Truncated, and a file of another kind.
	for _, bad := range [][]byte{raw[:len(raw)-3], raw[:minSlot], []byte("not a state file")} {
		if _, err := load(bad, -1); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%d-byte file: got %v, want ErrCorrupt", len(bad), err)
		}
	}
}

// A file of one frame, as earlier releases wrote it, loads; the next Save
// writes slots.
func TestStateFileReadsVersionOne(t *testing.T) {
	mem := NewMemFS()
	must(t, WriteFile(mem, "/d/state", frame([]byte("old format")), 0o600))
	s := &StateFile{FS: mem, Path: "/d/state"}
	got, err := s.Load()
	if err != nil || string(got) != "old format" {
		t.Fatalf("version 1 file: %q, %v", got, err)
	}
	must(t, s.Save([]byte("new")))
	if raw, _ := mem.ReadFile("/d/state"); len(raw) != 2*minSlot {
		t.Fatalf("after a Save the file has %d bytes, want two slots", len(raw))
	}
	if got, err := (&StateFile{FS: mem, Path: "/d/state"}).Load(); err != nil || string(got) != "new" {
		t.Fatalf("after a Save: %q, %v", got, err)
	}
	bad := frame([]byte("old format"))
	bad[len(bad)-1] ^= 1
	must(t, WriteFile(mem, "/d/state", bad, 0o600))
	if _, err := (&StateFile{FS: mem, Path: "/d/state"}).Load(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged version 1 file: %v", err)
	}
}

// On disk: states that fit are written in place (the file keeps its size
// and its inode), a larger one rewrites it with larger slots, and a small
// state after a very large one shrinks it.
func TestStateFileOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	s := &StateFile{FS: OSFS{}, Path: path}
	must(t, s.Save([]byte("one")))
	st1, err := os.Stat(path)
	must(t, err)
	for i := range 5 {
		must(t, s.Save(bytes.Repeat([]byte{byte(i)}, 100*i)))
	}
	st2, err := os.Stat(path)
	must(t, err)
	if !os.SameFile(st1, st2) || st2.Size() != 2*minSlot {
		t.Fatalf("states that fit a slot replaced the file or changed its size (%d bytes)", st2.Size())
	}
	big := bytes.Repeat([]byte("x"), keepSlot+1)
	must(t, s.Save(big))
	if st, _ := os.Stat(path); st.Size() != 4*keepSlot {
		t.Fatalf("after a state larger than a slot: %d bytes", st.Size())
	}
	if got, err := (&StateFile{FS: OSFS{}, Path: path}).Load(); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("large state loads as %d bytes, %v", len(got), err)
	}
	must(t, s.Save([]byte("small again")))
	if st, _ := os.Stat(path); st.Size() != 2*minSlot {
		t.Fatalf("a small state after a very large one keeps %d bytes", st.Size())
	}
	if got, err := (&StateFile{FS: OSFS{}, Path: path}).Load(); err != nil || string(got) != "small again" {
		t.Fatalf("loads as %q, %v", got, err)
	}
	f, err := OSFS{}.OpenWrite(path)
	must(t, err)
	defer f.Close()
	if _, err := f.WriteAt([]byte("x"), 2*minSlot); err == nil {
		t.Fatal("a write in place beyond the file's end was taken")
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
