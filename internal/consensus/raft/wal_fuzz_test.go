package raft

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/charter-ledger/charter/internal/durable"
)

const fuzzWALDir = "/raft"

// walSegmentSeeds are segments a WAL really wrote: a bootstrap snapshot,
// entries, a conflicting suffix, a compaction and hard states.
func walSegmentSeeds(t testing.TB) [][]byte {
	fsys := durable.NewMemFS()
	w, err := OpenWAL(fsys, fuzzWALDir, 1<<20, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	snapshot := func() {
		names, _ := fsys.List(fuzzWALDir)
		data, err := fsys.ReadFile(filepath.Join(fuzzWALDir, names[len(names)-1]))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	steps := []func() error{
		func() error { return w.Save(hardState(1, 0, 1), nil, bootSnap(1, 1), true) },
		func() error {
			return w.Save(hardState(2, 1, 1), []*raftpb.Entry{ent(2, 2, ""), ent(3, 2, "a"), ent(4, 2, "b")}, nil, true)
		},
		func() error {
			return w.Save(hardState(3, 2, 3), []*raftpb.Entry{ent(4, 3, "c"), ent(5, 3, "d")}, nil, true)
		},
		func() error { return w.Compact(4, bootSnap(1, 1).Metadata.ConfState, []byte("pos4"), 3) },
		func() error { return w.Save(hardState(3, 2, 5), nil, nil, false) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		snapshot()
	}
	return out
}

// frameRecords turns the fuzzer's compact form of records (kind byte,
// body length uint16 BE, body; repeated) into a segment with valid
// checksums, so that the fuzzer explores record content rather than
// checksums.
func frameRecords(data []byte) []byte {
	var seg []byte
	for len(data) >= 3 {
		kind, n := data[0], int(binary.BigEndian.Uint16(data[1:3]))
		data = data[3:]
		n = min(n, len(data))
		seg = appendRecord(seg, kind, data[:n])
		data = data[n:]
	}
	return seg
}

// unframeRecords is the inverse of frameRecords for a valid segment.
func unframeRecords(t testing.TB, seg []byte) []byte {
	recs, _, _, err := parseRecords(seg)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, r := range recs {
		out = append(out, r[0])
		out = binary.BigEndian.AppendUint16(out, uint16(len(r)-1))
		out = append(out, r[1:]...)
	}
	return out
}

func writeSegment(t *testing.T, fsys *durable.MemFS, seg []byte) {
	t.Helper()
	f, err := fsys.Create(filepath.Join(fuzzWALDir, segmentName(1)), 0o600)
	if err == nil {
		_, err = f.Write(seg)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = f.Close()
	}
	if err == nil {
		err = fsys.SyncDir(fuzzWALDir)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzWAL opens a WAL whose segment holds arbitrary bytes (framed false)
// or arbitrary records with valid checksums (framed true), as a damaged
// or hostile disk gives it back. Nothing panics; the records that parse
// re-frame to the bytes they came from; a refusal wraps ErrCorrupt; a WAL
// that opens reopens to the same state (a torn tail, once cut, stays cut)
// and still takes an entry after its last, which survives a reopen.
func FuzzWAL(f *testing.F) {
	for _, seg := range walSegmentSeeds(f) {
		f.Add(seg, false)
		f.Add(unframeRecords(f, seg), true)
		f.Add(seg[:len(seg)-3], false)
		f.Add(append(seg, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), false)
	}
	f.Add([]byte{recHardState, 0, 2, 0x18, 9}, true) // commit 9 beyond the log
	f.Add([]byte{recCompact, 0, 3, 1, 2, 3}, true)
	f.Add([]byte{9, 0, 0}, true)
	f.Fuzz(func(t *testing.T, data []byte, framed bool) {
		seg := data
		if framed {
			seg = frameRecords(data)
		}
		recs, end, torn, err := parseRecords(seg)
		switch {
		case err != nil && !errors.Is(err, ErrCorrupt):
			t.Fatalf("parse error %v does not wrap ErrCorrupt", err)
		case end < 0 || end > len(seg):
			t.Fatalf("end %d outside the segment of %d bytes", end, len(seg))
		case torn && end == len(seg):
			t.Fatal("torn tail of zero bytes")
		}
		var again []byte
		for _, r := range recs {
			again = appendRecord(again, r[0], r[1:])
		}
		if string(again) != string(seg[:end]) {
			t.Fatal("parsed records do not re-frame to the segment")
		}

		fsys := durable.NewMemFS()
		writeSegment(t, fsys, seg)
		w, err := OpenWAL(fsys, fuzzWALDir, 1<<20, quietLog())
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("open error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		want := stateOf(t, w)
		must(t, w.Close())
		w = mustOpen(t, fsys, fuzzWALDir, 1<<20)
		if got := stateOf(t, w); !equalState(got, want) {
			t.Fatalf("reopened state\n got %+v\nwant %+v", got, want)
		}
		last, _ := w.LastIndex()
		term, err := w.Term(last)
		if err != nil {
			t.Fatalf("term of the last entry %d: %v", last, err)
		}
		if err := w.Save(&raftpb.HardState{}, []*raftpb.Entry{ent(last+1, term, "next")}, nil, true); err != nil {
			t.Fatalf("save after the last entry %d: %v", last, err)
		}
		must(t, w.Close())
		w = mustOpen(t, fsys, fuzzWALDir, 1<<20)
		defer w.Close()
		if got, _ := w.LastIndex(); got != last+1 {
			t.Fatalf("entry %d saved after reopening is gone: last %d", last+1, got)
		}
	})
}
