package durable

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzStateFile: an engine's state file as a damaged disk gives it back
// (framed false: the whole file; framed true: any body in a valid slot,
// so that the fuzzer need not forge checksums). Load never panics; it
// answers a body or an error wrapping ErrCorrupt; a framed body loads as
// framed; a state saved over it loads again as saved.
func FuzzStateFile(f *testing.F) {
	f.Add(frame([]byte("state")), false)
	f.Add(frame(nil), false)
	f.Add([]byte("state"), true)
	f.Add([]byte("CHST"), false)
	f.Add(append(frame([]byte("state")), 0), false)
	f.Fuzz(func(t *testing.T, data []byte, framed bool) {
		raw := data
		if framed {
			size := minSlot
			for size < stateHeaderLen+len(data) {
				size *= 2
			}
			raw = make([]byte, 2*size)
			copy(raw[size:], slotFrame(7, data))
		}
		fsys := NewMemFS()
		must(t, WriteFile(fsys, "/st/state", raw, 0o600))
		sf := &StateFile{FS: fsys, Path: "/st/state"}
		body, err := sf.Load()
		switch {
		case err != nil && !errors.Is(err, ErrCorrupt):
			t.Fatalf("load error %v does not wrap ErrCorrupt", err)
		case err != nil && body != nil:
			t.Fatal("a state and an error")
		case err == nil && body == nil:
			t.Fatal("an existing file loads as no state")
		case framed && (err != nil || !bytes.Equal(body, data)):
			t.Fatalf("a framed body loads as %x (%v)", body, err)
		}
		must(t, sf.Save(data))
		again, err := (&StateFile{FS: fsys, Path: "/st/state"}).Load()
		if err != nil || !bytes.Equal(again, data) || again == nil {
			t.Fatalf("saved state loads as %x (%v)", again, err)
		}
	})
}
