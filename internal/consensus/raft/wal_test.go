package raft

import (
	"github.com/charter-ledger/charter/internal/durable"

	"bytes"
	"errors"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

func quietLog() *slog.Logger {
	if os.Getenv("CHARTER_RAFT_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

func ent(index, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Index: new(index), Term: new(term), Type: raftpb.EntryNormal.Enum(), Data: []byte(data)}
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
}

func bootSnap(index, term uint64) *raftpb.Snapshot {
	return &raftpb.Snapshot{
		Data: []byte("boot"),
		Metadata: &raftpb.SnapshotMetadata{Index: new(index), Term: new(term),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}},
	}
}

// walState is what a WAL reports, for comparing two WALs.
type walState struct {
	first, last uint64
	hs          string
	snapIndex   uint64
	snapData    string
	ents        []string
}

func stateOf(t *testing.T, w *WAL) walState {
	t.Helper()
	first, _ := w.FirstIndex()
	last, _ := w.LastIndex()
	hs, _, err := w.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := w.Snapshot()
	s := walState{first: first, last: last, hs: hs.String(), snapIndex: snap.GetMetadata().GetIndex(), snapData: string(snap.GetData())}
	if last >= first {
		ents, err := w.Entries(first, last+1, ^uint64(0))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			s.ents = append(s.ents, e.String())
		}
	}
	return s
}

func mustOpen(t *testing.T, fs durable.FS, dir string, seg int64) *WAL {
	t.Helper()
	w, err := OpenWAL(fs, dir, seg, quietLog())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return w
}

func TestWALReopenRestoresState(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   func(t *testing.T) (durable.FS, string)
	}{
		{"os", func(t *testing.T) (durable.FS, string) { return durable.OSFS{}, t.TempDir() }},
		{"mem", func(t *testing.T) (durable.FS, string) { return durable.NewMemFS(), "/raft" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys, dir := tc.fs(t)
			w := mustOpen(t, fsys, dir, 1<<20)
			if !w.IsNew() {
				t.Fatal("new WAL not reported new")
			}
			must(t, w.Save(hardState(1, 0, 1), nil, bootSnap(1, 1), true))
			must(t, w.Save(hardState(2, 1, 1), []*raftpb.Entry{ent(2, 2, ""), ent(3, 2, "a"), ent(4, 2, "b")}, nil, true))
			// A conflicting suffix replaces entries 4..
			must(t, w.Save(hardState(3, 2, 3), []*raftpb.Entry{ent(4, 3, "c"), ent(5, 3, "d")}, nil, true))
			must(t, w.Compact(4, bootSnap(1, 1).Metadata.ConfState, []byte("pos4"), 3))
			must(t, w.Save(hardState(3, 2, 5), nil, nil, false))
			want := stateOf(t, w)
			must(t, w.Close())

			w2 := mustOpen(t, fsys, dir, 1<<20)
			defer w2.Close()
			if w2.IsNew() {
				t.Fatal("reopened WAL reported new")
			}
			got := stateOf(t, w2)
			if !equalState(got, want) {
				t.Fatalf("reopened state\n got %+v\nwant %+v", got, want)
			}
			if want.first != 4 || want.last != 5 || want.snapIndex != 4 || want.snapData != "pos4" {
				t.Fatalf("unexpected state %+v", want)
			}
		})
	}
}

func equalState(a, b walState) bool {
	if a.first != b.first || a.last != b.last || a.hs != b.hs || a.snapIndex != b.snapIndex || a.snapData != b.snapData || len(a.ents) != len(b.ents) {
		return false
	}
	for i := range a.ents {
		if a.ents[i] != b.ents[i] {
			return false
		}
	}
	return true
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestWALRotationCheckpoint(t *testing.T) {
	fsys := durable.NewMemFS()
	w := mustOpen(t, fsys, "/raft", 1<<10) // tiny segments: rotate often
	must(t, w.Save(hardState(1, 0, 1), nil, bootSnap(1, 1), true))
	cs := bootSnap(1, 1).Metadata.ConfState
	for i := uint64(2); i < 200; i++ {
		must(t, w.Save(hardState(2, 1, i-1), []*raftpb.Entry{ent(i, 2, "some entry data of moderate length")}, nil, true))
		if i%17 == 0 {
			must(t, w.Compact(i-1, cs, []byte{byte(i)}, i-5))
		}
	}
	want := stateOf(t, w)
	names, _ := fsys.List("/raft")
	if len(names) != 1 || names[0] == segmentName(1) {
		t.Fatalf("after rotations the folder holds %v, want one later segment", names)
	}
	must(t, w.Close())
	w2 := mustOpen(t, fsys, "/raft", 1<<10)
	defer w2.Close()
	if got := stateOf(t, w2); !equalState(got, want) {
		t.Fatalf("state after rotation and reopen\n got %+v\nwant %+v", got, want)
	}
}

// A crash at any point of a rotation leaves a WAL that opens to the state
// before or after it.
func TestWALCrashDuringRotation(t *testing.T) {
	seeds, err := simnet.Seeds(200, 200)
	if err != nil {
		t.Fatal(err)
	}
	var seed int64
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d failed: %s=%d replays it", seed, simnet.EnvSeed, seed)
		}
	})
	for _, seed = range seeds {
		rng := rand.New(rand.NewSource(seed))
		fsys := durable.NewMemFS()
		w := mustOpen(t, fsys, "/raft", 512)
		must(t, w.Save(hardState(1, 0, 1), nil, bootSnap(1, 1), true))
		n := 2 + uint64(rng.Intn(60))
		for i := uint64(2); i < n; i++ {
			must(t, w.Save(hardState(2, 1, i-1), []*raftpb.Entry{ent(i, 2, "entry")}, nil, rng.Intn(3) > 0))
		}
		last, _ := w.LastIndex()
		fsys.Crash(rng)
		w2, err := OpenWAL(fsys, "/raft", 512, quietLog())
		if err != nil {
			t.Fatalf("seed %d: open after crash: %v", seed, err)
		}
		got, _ := w2.LastIndex()
		if got > last || got < 1 {
			t.Fatalf("seed %d: last index %d after crash, before %d", seed, got, last)
		}
		w2.Close()
	}
}

func TestWALTruncatedTailRepaired(t *testing.T) {
	dir := t.TempDir()
	w := mustOpen(t, durable.OSFS{}, dir, 1<<20)
	must(t, w.Save(hardState(1, 0, 1), nil, bootSnap(1, 1), true))
	must(t, w.Save(hardState(2, 1, 1), []*raftpb.Entry{ent(2, 2, "a"), ent(3, 2, "b")}, nil, true))
	must(t, w.Close())
	path := filepath.Join(dir, segmentName(1))
	data, err := os.ReadFile(path)
	must(t, err)
	good := len(data)

	for _, tail := range [][]byte{
		{1, 2, 3},        // a partial header
		make([]byte, 40), // a zero-filled tail
		appendRecord(nil, 2, []byte("this record is cut short"))[:20], // a partial payload
	} {
		must(t, os.WriteFile(path, append(append([]byte(nil), data...), tail...), 0o600))
		var logs bytes.Buffer
		w, err := OpenWAL(durable.OSFS{}, dir, 1<<20, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatalf("open with a torn tail: %v", err)
		}
		if last, _ := w.LastIndex(); last != 3 {
			t.Fatalf("last index %d after repair, want 3", last)
		}
		// Writing after the repair continues a clean file.
		must(t, w.Save(hardState(2, 1, 3), []*raftpb.Entry{ent(4, 2, "c")}, nil, true))
		must(t, w.Close())
		if n := bytes.Count(logs.Bytes(), []byte("torn")); n != 1 {
			t.Fatalf("want one log line about the torn write, got %q", logs.String())
		}
		w = mustOpen(t, durable.OSFS{}, dir, 1<<20)
		if last, _ := w.LastIndex(); last != 4 {
			t.Fatalf("last index %d after write past the repair, want 4", last)
		}
		must(t, w.Close())
		must(t, os.WriteFile(path, data[:good], 0o600))
	}

	// A final record whose checksum fails (its last byte torn) is cut too.
	must(t, os.WriteFile(path, append(data[:good-1:good-1], data[good-1]^0xff), 0o600))
	w = mustOpen(t, durable.OSFS{}, dir, 1<<20)
	if last, _ := w.LastIndex(); last != 3 {
		// The hard state record was last; the entries survive.
		t.Fatalf("last index %d, want 3", last)
	}
	must(t, w.Close())
}

func TestWALCorruptedMiddleReported(t *testing.T) {
	fsys := durable.NewMemFS()
	w := mustOpen(t, fsys, "/raft", 1<<20)
	must(t, w.Save(hardState(1, 0, 1), nil, bootSnap(1, 1), true))
	must(t, w.Save(hardState(2, 1, 1), []*raftpb.Entry{ent(2, 2, "aaaaaaaa"), ent(3, 2, "bbbbbbbb")}, nil, true))
	must(t, w.Save(hardState(2, 1, 3), []*raftpb.Entry{ent(4, 2, "cccccccc")}, nil, true))
	must(t, w.Close())
	name := "/raft/" + segmentName(1)
	data, _ := fsys.ReadFile(name)
	recs, _, _, err := parseRecords(data)
	must(t, err)
	// Damage the payload of the second record and, separately, a header.
	second := recHeaderLen + len(recs[0])
	for _, off := range []int{second + recHeaderLen + 3, second + 1, second + 9} {
		f2 := durable.NewMemFS()
		fh, _ := f2.Create(name, 0o600)
		fh.Write(data)
		fh.Sync()
		f2.SyncDir("/raft")
		must(t, f2.Corrupt(name, off))
		_, err := OpenWAL(f2, "/raft", 1<<20, quietLog())
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("damage at %d: got %v, want ErrCorrupt", off, err)
		}
	}
}

func TestWALRejectsInconsistentRecords(t *testing.T) {
	fsys := durable.NewMemFS()
	f, _ := fsys.Create("/raft/"+segmentName(1), 0o600)
	var buf []byte
	buf, _ = appendProtoRecord(buf, recSnapshot, bootSnap(1, 1))
	buf, _ = appendProtoRecord(buf, recEntry, ent(5, 1, "gap")) // index 2..4 missing
	f.Write(buf)
	f.Sync()
	fsys.SyncDir("/raft")
	if _, err := OpenWAL(fsys, "/raft", 1<<20, quietLog()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt for a gap in the log", err)
	}
}
