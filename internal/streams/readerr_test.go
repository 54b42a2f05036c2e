package streams

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
)

// flakySource fails every receipts read while fail is set.
type flakySource struct {
	*fakeSource
	fail atomic.Bool
}

func (s *flakySource) Receipts(n uint64) (types.Receipts, error) {
	if s.fail.Load() {
		return nil, errors.New("store is busy")
	}
	return s.fakeSource.Receipts(n)
}

// syncBuffer is a log sink safe for the stream's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// A chain read that keeps failing is retried with a growing pause, warned
// about once (not once a retry), counted and shown in the stream's stats
// until a read succeeds; then the stream delivers everything.
func TestReadErrorsBackOffAndShow(t *testing.T) {
	src := &flakySource{fakeSource: newFakeSource(5)}
	src.fail.Store(true)
	var logs syncBuffer
	cfg := testConfig(t, t.TempDir(), src.fakeSource)
	cfg.Source = src
	cfg.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	m := newTestManager(t, cfg)
	rcv := newReceiver(t, secret)
	if _, err := m.Create(Definition{Name: "all", Sink: webhookSink(t, rcv.url(), secret)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "failed reads", func() bool { return statsOf(m, "all").ReadErrors >= 5 })
	st := statsOf(m, "all")
	if !strings.Contains(st.Error, "reading the chain: ") || !strings.Contains(st.Error, "store is busy") {
		t.Fatalf("stats error %q does not show the failed read", st.Error)
	}
	if n := strings.Count(logs.String(), "read blocks: retrying"); n != 1 {
		t.Fatalf("%d warnings for %d failed reads of the same error, want 1:\n%s", n, st.ReadErrors, logs.String())
	}
	// The pause grows: far fewer reads than RetryBase (2 ms) would allow.
	start, before := time.Now(), statsOf(m, "all").ReadErrors
	time.Sleep(200 * time.Millisecond)
	got := statsOf(m, "all").ReadErrors - before
	if max := uint64(time.Since(start)/cfg.RetryMax) + 2; got > max {
		t.Fatalf("%d reads in %s, want at most %d (a pause of RetryMax %s)", got, time.Since(start), max, cfg.RetryMax)
	}
	src.fail.Store(false)
	want := src.ids(0, 5, nil)
	waitFor(t, 10*time.Second, "every event", func() bool { return len(firstSeen(rcv.ids())) >= len(want) })
	waitFor(t, 5*time.Second, "the error cleared", func() bool { return statsOf(m, "all").Error == "" })
	if !strings.Contains(logs.String(), "read blocks: recovered") {
		t.Fatalf("no recovery line:\n%s", logs.String())
	}
}
