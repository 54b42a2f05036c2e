package ledger

import (
	"testing"
	"time"
)

// After DeferFlushes the periodic write of the head's state waits for
// FlushIfDue, and skips a moment when states are held (HoldStates); past
// flushWaitHeights heights it waits for the holders instead.
func TestDeferredFlushWaitsForHolders(t *testing.T) {
	l, err := Open(t.TempDir(), devSpec(t, 5), Options{StateHistory: 16, StateFlushHeights: 1}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.DeferFlushes()
	h := uint64(0)
	next := func() {
		h++
		commitNext(t, l, setBalances(h, 1, 2))
	}
	next()
	next()
	start := l.Flushes()
	if l.FlushIfDue(); l.Flushes() == start {
		t.Fatal("a due write of the state did not run")
	}
	next()
	before := l.Flushes()
	release := l.HoldStates()
	next()
	if l.Flushes() != before {
		t.Fatal("Commit wrote the state itself after DeferFlushes")
	}
	l.FlushIfDue()
	if l.Flushes() != before {
		t.Fatal("the state was written while states were held")
	}
	release()
	next()
	if l.FlushIfDue(); l.Flushes() == before {
		t.Fatal("a due write did not run once the states were released")
	}

	// Held for longer than flushWaitHeights: the write waits.
	release = l.HoldStates()
	before = l.Flushes()
	for i := 0; i < flushWaitHeights+2; i++ {
		next()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.FlushIfDue()
	}()
	release()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("FlushIfDue did not return after the states were released")
	}
	if l.Flushes() == before {
		t.Fatalf("no write after %d heights of held states", flushWaitHeights+2)
	}
}
