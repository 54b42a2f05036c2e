package streams

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

const secret = "0123456789abcdef-secret"

// Every event reaches a webhook that is first unreachable, then
// failing, then slow, in order and none lost, while blocks keep coming.
func TestWebhookThroughOutages(t *testing.T) {
	src := newFakeSource(20)
	rcv := newReceiver(t, secret)
	rcv.down() // connection refused until up again
	m := newTestManager(t, testConfig(t, t.TempDir(), src))
	if _, err := m.Create(Definition{Name: "all", Sink: webhookSink(t, rcv.url(), secret), MaxAttempts: 100}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "refused POSTs", func() bool { return statsOf(m, "all").Failures >= 3 })
	if len(rcv.ids()) != 0 {
		t.Fatal("events arrived while the receiver was down")
	}
	rcv.setMode("fail")
	rcv.up()
	before := statsOf(m, "all").Failures
	waitFor(t, 10*time.Second, "500 answers", func() bool { return statsOf(m, "all").Failures >= before+3 })
	if len(rcv.ids()) != 0 {
		t.Fatal("events counted as accepted on a 500")
	}
	rcv.setMode("slow")
	src.add(20)
	want := src.ids(0, 40, nil)
	waitFor(t, 20*time.Second, "every event", func() bool { return len(firstSeen(rcv.ids())) >= len(want) })
	if got := firstSeen(rcv.ids()); !slices.Equal(got, want) {
		t.Fatalf("order or content differs:\n got %v\nwant %v", got, want)
	}
	if bad := rcv.badSignatures(); len(bad) > 0 {
		t.Fatalf("bad signatures or headers: %v", bad)
	}
	waitFor(t, 5*time.Second, "lag 0 and cursor past the head", func() bool {
		s := statsOf(m, "all")
		return s.Lag == 0 && s.Cursor.Block == src.height()
	})
	if s := statsOf(m, "all"); s.DLQEvents != 0 || s.Delivered < uint64(len(want)) {
		t.Fatalf("stats %+v", s)
	}
}

// A batch refused MaxAttempts times goes to the dead-letter queue, the
// stream moves on, and ReplayDLQ delivers the queue in order.
func TestDeadLetterAndReplay(t *testing.T) {
	src := newFakeSource(10)
	sink, sc := newMemSink(t)
	sink.set(true, false)
	m := newTestManager(t, testConfig(t, t.TempDir(), src))
	if _, err := m.Create(Definition{Name: "dl", Sink: sc, MaxAttempts: 2}); err != nil {
		t.Fatal(err)
	}
	want := src.ids(0, 10, nil)
	waitFor(t, 10*time.Second, "every event dead-lettered", func() bool { return statsOf(m, "dl").DLQEvents == len(want) })
	waitFor(t, 5*time.Second, "cursor past the head", func() bool { return statsOf(m, "dl").Cursor.Block == 10 })
	q, err := m.DLQ("dl")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range q {
		ids = append(ids, e.Event.ID)
		if e.Attempts != 2 || e.Error == "" {
			t.Fatalf("entry %+v", e)
		}
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("queue %v, want %v", ids, want)
	}
	if s := statsOf(m, "dl"); s.Failures != uint64(2*((len(want)+6)/7)) {
		t.Fatalf("failures %d, want 2 per batch of 7", s.Failures)
	}
	// Still refusing: the queue stays whole.
	if n, err := m.ReplayDLQ(context.Background(), "dl"); !errors.Is(err, ErrDLQReplay) || n != 0 {
		t.Fatalf("replay to a refusing sink: %d, %v", n, err)
	}
	sink.set(false, false)
	n, err := m.ReplayDLQ(context.Background(), "dl")
	if err != nil || n != len(want) {
		t.Fatalf("replay: %d, %v", n, err)
	}
	if got := sink.ids(); !slices.Equal(got, want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
	if q, _ := m.DLQ("dl"); len(q) != 0 {
		t.Fatalf("queue not cleared: %d", len(q))
	}
	// New blocks still flow after the replay.
	src.add(2)
	waitFor(t, 5*time.Second, "new events", func() bool { return len(sink.ids()) == len(want)+6 })
}

// A full dead-letter queue drops its oldest entries and counts them,
// also across a restart.
func TestDeadLetterBound(t *testing.T) {
	src := newFakeSource(10)
	sink, sc := newMemSink(t)
	sink.set(true, false)
	dir := t.TempDir()
	cfg := testConfig(t, dir, src)
	cfg.DLQMaxEvents = 10
	m := newTestManager(t, cfg)
	if _, err := m.Create(Definition{Name: "dl", Sink: sc, MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	all := src.ids(0, 10, nil)
	waitFor(t, 10*time.Second, "cursor past the head", func() bool { return statsOf(m, "dl").Cursor.Block == 10 })
	s := statsOf(m, "dl")
	if s.DLQEvents != 10 || s.DLQDropped != uint64(len(all)-10) {
		t.Fatalf("stats %+v", s)
	}
	m.Stop()
	m2 := newTestManager(t, cfg)
	q, err := m2.DLQ("dl")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range q {
		ids = append(ids, e.Event.ID)
	}
	if !slices.Equal(ids, all[len(all)-10:]) {
		t.Fatalf("queue after restart %v, want the newest 10 of %v", ids, all)
	}
	if s := statsOf(m2, "dl"); s.DLQDropped != uint64(len(all)-10) {
		t.Fatalf("dropped count lost at restart: %+v", s)
	}
}

// A new Manager on the same folder resumes from the saved cursor with
// the same IDs; ReplayFrom moves it back; Pause survives a restart.
func TestRestartAndReplayFrom(t *testing.T) {
	src := newFakeSource(10)
	dir := t.TempDir()
	cfg := testConfig(t, dir, src)
	m := newTestManager(t, cfg)
	sink, sc := newMemSink(t)
	if _, err := m.Create(Definition{Name: "r", Sink: sc, StartHeight: 2, Filter: Filter{Addresses: []common.Address{addrA}}}); err != nil {
		t.Fatal(err)
	}
	onlyA := func(a common.Address) bool { return a == addrA }
	want := src.ids(2, 10, onlyA)
	waitFor(t, 5*time.Second, "first events", func() bool { return len(sink.ids()) == len(want) })
	waitFor(t, 5*time.Second, "cursor saved past the head", func() bool { return statsOf(m, "r").Cursor.Block == 10 })
	m.Stop()
	if !sink.closed {
		t.Fatal("sink not closed at Stop")
	}

	src.add(5)
	m2 := newTestManager(t, cfg)
	info, err := m2.Get("r")
	if err != nil || info.Cursor != (Cursor{Block: 10}) || info.StartHeight != 2 {
		t.Fatalf("after restart: %+v, %v", info, err)
	}
	want = append(want, src.ids(10, 15, onlyA)...)
	waitFor(t, 5*time.Second, "events after restart", func() bool { return len(sink.ids()) >= len(want) })
	if got := sink.ids(); !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if err := m2.ReplayFrom("r", 12); err != nil {
		t.Fatal(err)
	}
	want = append(want, src.ids(12, 15, onlyA)...)
	waitFor(t, 5*time.Second, "replayed events", func() bool { return len(sink.ids()) >= len(want) })
	if got := sink.ids(); !slices.Equal(got, want) {
		t.Fatalf("after replay got %v\nwant %v", got, want)
	}
	if err := m2.Pause("r"); err != nil {
		t.Fatal(err)
	}
	n := len(sink.ids())
	m2.Stop()
	m3 := newTestManager(t, cfg)
	src.add(3)
	if info, _ := m3.Get("r"); !info.Paused {
		t.Fatal("pause lost at restart")
	}
	if s := statsOf(m3, "r"); s.Lag != 2 { // head 17 − cursor 15
		t.Fatalf("lag %d while paused, want 2", s.Lag)
	}
	if len(sink.ids()) != n {
		t.Fatal("a paused stream delivered")
	}
	if err := m3.Resume("r"); err != nil {
		t.Fatal(err)
	}
	want = append(want, src.ids(15, 18, onlyA)...)
	waitFor(t, 5*time.Second, "events after resume", func() bool { return len(sink.ids()) >= len(want) })
	if got := sink.ids(); !slices.Equal(got, want) {
		t.Fatalf("after resume got %v\nwant %v", got, want)
	}
}

// A stream whose sink never answers does not hold up the ledger or the
// other streams; it only lags.
func TestStuckStreamNeverBlocks(t *testing.T) {
	src := newFakeSource(1)
	m := newTestManager(t, testConfig(t, t.TempDir(), src))
	stuck, sc1 := newMemSink(t)
	stuck.set(false, true)
	fast, sc2 := newMemSink(t)
	for name, sc := range map[string]SinkConfig{"stuck": sc1, "fast": sc2} {
		if _, err := m.Create(Definition{Name: name, Sink: sc}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		for range 200 {
			src.add(1)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the ledger was held up by a stream")
	}
	want := src.ids(0, 201, nil)
	waitFor(t, 10*time.Second, "the other stream's events", func() bool { return len(fast.ids()) >= len(want) })
	if got := fast.ids(); !slices.Equal(got, want) {
		t.Fatalf("fast stream differs")
	}
	if s := statsOf(m, "stuck"); s.Lag != 200 || s.Delivered != 0 {
		t.Fatalf("stuck stream stats %+v, want lag 200", s)
	}
	stopped := make(chan struct{})
	go func() { m.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop waits on a stuck sink")
	}
}

func TestBadInput(t *testing.T) {
	src := newFakeSource(1)
	m := newTestManager(t, testConfig(t, t.TempDir(), src))
	_, sc := newMemSink(t)
	ok := Definition{Name: "a", Sink: sc}
	if _, err := m.Create(ok); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		def  Definition
		want error
	}{
		{"duplicate", ok, ErrExists},
		{"bad name", Definition{Name: "../x", Sink: sc}, ErrBadInput},
		{"unknown kind", Definition{Name: "b", Sink: SinkConfig{Kind: "carrier-pigeon"}}, ErrSinkKind},
		{"bad url", Definition{Name: "b", Sink: webhookSink(t, "ftp://example.com/x", secret)}, ErrBadInput},
		{"plain http off loopback", Definition{Name: "b", Sink: webhookSink(t, "http://example.com/x", secret)}, ErrBadInput},
		{"short secret", Definition{Name: "b", Sink: webhookSink(t, "https://example.com/x", "short")}, ErrBadInput},
		{"unknown contract", Definition{Name: "b", Sink: sc, Filter: Filter{Contracts: []string{"Token"}}}, ErrBadInput},
		{"bad topic", Definition{Name: "b", Sink: sc, Filter: Filter{Events: []string{"0x12"}}}, ErrBadInput},
		{"too many topics", Definition{Name: "b", Sink: sc, Filter: Filter{Topics: make([][]common.Hash, 4)}}, ErrBadInput},
	}
	for _, c := range cases {
		if _, err := m.Create(c.def); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	for name, op := range map[string]func() error{
		"get":    func() error { _, err := m.Get("zz"); return err },
		"delete": func() error { return m.Delete("zz") },
		"pause":  func() error { return m.Pause("zz") },
		"replay": func() error { return m.ReplayFrom("zz", 1) },
		"dlq":    func() error { _, err := m.DLQ("zz"); return err },
	} {
		if err := op(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of an unknown stream: %v", name, err)
		}
	}
	if err := m.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if len(m.List()) != 0 {
		t.Fatal("deleted stream listed")
	}
	m.Stop()
	m2 := newTestManager(t, testConfig(t, m.cfg.Dir, src))
	if len(m2.List()) != 0 {
		t.Fatal("deleted stream back after restart")
	}
}

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"stream":"s","events":[]}`)
	now := time.Unix(1_800_000_000, 0)
	h := Sign([]byte(secret), now, body)
	if err := verifyAt([]byte(secret), h, body, 5*time.Minute, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := verifyAt([]byte(secret), h, append(body, ' '), 5*time.Minute, now); !errors.Is(err, ErrSignatureBad) {
		t.Fatalf("changed body: %v", err)
	}
	if err := verifyAt([]byte("another-secret-of-16"), h, body, 5*time.Minute, now); !errors.Is(err, ErrSignatureBad) {
		t.Fatalf("other secret: %v", err)
	}
	if err := verifyAt([]byte(secret), h, body, 5*time.Minute, now.Add(6*time.Minute)); !errors.Is(err, ErrSignatureStale) {
		t.Fatalf("old: %v", err)
	}
	for _, bad := range []string{"", "t=1", "v1=00", "t=x,v1=" + h[len(h)-64:], "t=1,v1=zz"} {
		if err := verifyAt([]byte(secret), bad, body, 0, now); !errors.Is(err, ErrSignatureFormat) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// A batch in flight when the node stops is not counted as delivered:
// the next Manager offers it again, with the same IDs.
func TestStopInFlightRedelivers(t *testing.T) {
	src := newFakeSource(5)
	cfg := testConfig(t, t.TempDir(), src)
	m := newTestManager(t, cfg)
	sink, sc := newMemSink(t)
	if _, err := m.Create(Definition{Name: "f", Sink: sc}); err != nil {
		t.Fatal(err)
	}
	want := src.ids(0, 5, nil)
	waitFor(t, 5*time.Second, "first events", func() bool { return len(sink.ids()) == len(want) })
	waitFor(t, 5*time.Second, "cursor saved", func() bool { return statsOf(m, "f").Cursor.Block == 5 })
	sink.set(false, true) // the next Deliver hangs
	src.add(3)
	waitFor(t, 5*time.Second, "a Deliver in flight", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return sink.blocked > 0
	})
	m.Stop()
	if info, _ := newTestManagerNoStart(t, cfg).Get("f"); info.Cursor != (Cursor{Block: 5}) {
		t.Fatalf("cursor moved without delivery: %+v", info.Cursor)
	}
	sink.set(false, false)
	m2 := newTestManager(t, cfg)
	want = append(want, src.ids(5, 8, nil)...)
	waitFor(t, 5*time.Second, "redelivery", func() bool { return len(sink.ids()) == len(want) })
	if got := sink.ids(); !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	waitFor(t, 5*time.Second, "caught up", func() bool { return statsOf(m2, "f").Cursor.Block == 8 })
}

func newTestManagerNoStart(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}
