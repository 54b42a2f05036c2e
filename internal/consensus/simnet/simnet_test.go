package simnet

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/consensus"
)

func testIDs(n int) []consensus.NodeID {
	out := make([]consensus.NodeID, n)
	for i := range out {
		out[i] = common.BytesToAddress([]byte{0xc0, byte(i + 1)})
	}
	return out
}

// gossip runs a small deterministic workload: every node broadcasts a
// counter at every tick; receivers echo every third message back. It
// returns a digest of the delivery trace.
func gossip(seed int64, f Faults, ticks uint64) (string, Stats) {
	nodes := testIDs(5)
	n := New(seed, nodes, f)
	h := sha256.New()
	var buf [8]byte
	for t := uint64(1); t <= ticks; t++ {
		for {
			d, ok := n.NextUntil(t * 10)
			if !ok {
				break
			}
			fmt.Fprintf(h, "%d %s %s %x\n", d.At, d.From, d.To, d.Payload)
			if d.Payload[7]%3 == 0 {
				n.Send(d.To, d.From, append([]byte(nil), d.Payload...))
			}
		}
		n.AdvanceTo(t * 10)
		for i, id := range nodes {
			binary.BigEndian.PutUint64(buf[:], t*100+uint64(i))
			n.Broadcast(id, buf[:])
		}
		// Random topology events from the same source.
		switch r := n.Rand().Intn(20); {
		case r == 0:
			n.Partition(nodes[:2], nodes[2:])
		case r == 1:
			n.Heal()
		case r == 2:
			n.Crash(nodes[n.Rand().Intn(len(nodes))])
		case r == 3:
			n.Restart(nodes[n.Rand().Intn(len(nodes))])
		}
	}
	for {
		d, ok := n.Next()
		if !ok {
			break
		}
		fmt.Fprintf(h, "%d %s %s %x\n", d.At, d.From, d.To, d.Payload)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), n.Stats()
}

func TestDeterministicTrace(t *testing.T) {
	f := Faults{DropRate: 0.2, DupRate: 0.1, MinDelay: 1, MaxDelay: 40}
	for seed := int64(1); seed <= 20; seed++ {
		a, sa := gossip(seed, f, 200)
		b, sb := gossip(seed, f, 200)
		if a != b || sa != sb {
			t.Fatalf("seed %d: two runs differ: %s %+v vs %s %+v", seed, a, sa, b, sb)
		}
	}
	a, _ := gossip(1, f, 200)
	b, _ := gossip(2, f, 200)
	if a == b {
		t.Fatalf("seeds 1 and 2 gave the same trace")
	}
}

func TestFaultsApplied(t *testing.T) {
	_, s := gossip(7, Faults{DropRate: 0.3, DupRate: 0.2, MinDelay: 0, MaxDelay: 30}, 300)
	if s.Dropped == 0 || s.Duplicated == 0 || s.Delivered == 0 {
		t.Fatalf("faults not applied: %+v", s)
	}
	_, s = gossip(7, Faults{MinDelay: 5, MaxDelay: 5}, 50)
	if s.Duplicated != 0 {
		t.Fatalf("duplicates without DupRate: %+v", s)
	}
}

func TestDelayOrderAndTies(t *testing.T) {
	nodes := testIDs(3)
	n := New(1, nodes, Faults{MinDelay: 3, MaxDelay: 3})
	for i := 0; i < 10; i++ {
		n.Send(nodes[0], nodes[1+i%2], []byte{byte(i)})
	}
	for i := 0; i < 10; i++ {
		d, ok := n.Next()
		if !ok || d.Payload[0] != byte(i) || d.At != 3 || n.Now() != 3 {
			t.Fatalf("delivery %d: %+v ok=%v now=%d", i, d, ok, n.Now())
		}
	}
	if _, ok := n.Next(); ok {
		t.Fatal("queue should be empty")
	}
	// Random delays reorder.
	n = New(1, nodes, Faults{MinDelay: 0, MaxDelay: 100})
	for i := 0; i < 50; i++ {
		n.Send(nodes[0], nodes[1], []byte{byte(i)})
	}
	var last uint64
	reordered := false
	for i := 0; ; i++ {
		d, ok := n.Next()
		if !ok {
			break
		}
		if d.At < last {
			t.Fatalf("time went back: %d after %d", d.At, last)
		}
		last = d.At
		if int(d.Payload[0]) != i {
			reordered = true
		}
	}
	if !reordered {
		t.Fatal("random delays did not reorder")
	}
}

func TestNextUntilAndAdvance(t *testing.T) {
	nodes := testIDs(2)
	n := New(1, nodes, Faults{MinDelay: 10, MaxDelay: 10})
	n.Send(nodes[0], nodes[1], []byte("x"))
	if _, ok := n.NextUntil(9); ok {
		t.Fatal("delivered early")
	}
	if n.Now() != 0 {
		t.Fatalf("NextUntil moved time to %d", n.Now())
	}
	if at, ok := n.Peek(); !ok || at != 10 {
		t.Fatalf("Peek = %d %v", at, ok)
	}
	n.AdvanceTo(5)
	n.AdvanceTo(2) // never back
	if n.Now() != 5 {
		t.Fatalf("Now = %d", n.Now())
	}
	d, ok := n.NextUntil(10)
	if !ok || d.At != 10 || string(d.Payload) != "x" {
		t.Fatalf("got %+v %v", d, ok)
	}
}

func TestPayloadCopied(t *testing.T) {
	nodes := testIDs(2)
	n := New(1, nodes, Faults{})
	p := []byte("abc")
	n.Send(nodes[0], nodes[1], p)
	p[0] = 'z'
	d, _ := n.Next()
	if string(d.Payload) != "abc" {
		t.Fatalf("payload aliased: %q", d.Payload)
	}
}

func TestPartition(t *testing.T) {
	nodes := testIDs(5)
	n := New(1, nodes, Faults{MinDelay: 1, MaxDelay: 1})
	n.Partition(nodes[:2], nodes[2:4]) // nodes[4] alone
	for _, from := range nodes {
		n.Broadcast(from, []byte{1})
	}
	got := map[[2]int]bool{}
	idx := func(id consensus.NodeID) int {
		for i, x := range nodes {
			if x == id {
				return i
			}
		}
		return -1
	}
	for {
		d, ok := n.Next()
		if !ok {
			break
		}
		got[[2]int{idx(d.From), idx(d.To)}] = true
	}
	want := map[[2]int]bool{{0, 1}: true, {1, 0}: true, {2, 3}: true, {3, 2}: true}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("deliveries across partition: got %v want %v", got, want)
	}

	// Messages in flight across a new partition are lost; Heal restores.
	n.Heal()
	n.Send(nodes[0], nodes[4], []byte{2})
	n.Partition(nodes[:4])
	if _, ok := n.Next(); ok {
		t.Fatal("in-flight message crossed a partition")
	}
	n.Heal()
	n.Send(nodes[0], nodes[4], []byte{3})
	if d, ok := n.Next(); !ok || d.Payload[0] != 3 {
		t.Fatalf("after heal: %+v %v", d, ok)
	}
}

func TestCrashRestart(t *testing.T) {
	nodes := testIDs(3)
	n := New(1, nodes, Faults{MinDelay: 5, MaxDelay: 5})
	n.Send(nodes[0], nodes[1], []byte("in flight to crashed"))
	n.Send(nodes[1], nodes[2], []byte("sent before crash"))
	n.Crash(nodes[1])
	if n.IsUp(nodes[1]) {
		t.Fatal("crashed node is up")
	}
	n.Send(nodes[0], nodes[1], []byte("to crashed"))
	n.Send(nodes[1], nodes[0], []byte("from crashed"))
	n.AdvanceTo(1)
	n.Restart(nodes[1])
	n.Send(nodes[0], nodes[1], []byte("after restart"))
	var got []string
	for {
		d, ok := n.Next()
		if !ok {
			break
		}
		got = append(got, string(d.Payload))
	}
	want := "sent before crash|after restart"
	if strings.Join(got, "|") != want {
		t.Fatalf("got %q want %q", strings.Join(got, "|"), want)
	}
}

func TestUnknownIDPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for unknown id")
		}
	}()
	n := New(1, testIDs(2), Faults{})
	n.Send(common.Address{0xff}, testIDs(2)[0], nil)
}

func h(s string) common.Hash { return common.BytesToHash([]byte(s)) }

func TestCheckerFork(t *testing.T) {
	nodes := testIDs(3)
	c := NewChecker()
	for height := uint64(1); height <= 3; height++ {
		for _, id := range nodes {
			if err := c.Finalized(id, height, h(fmt.Sprint(height))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Finalized(nodes[0], 4, h("a")); err != nil {
		t.Fatal(err)
	}
	err := c.Finalized(nodes[1], 4, h("b")) // planted fork
	if err == nil || !strings.Contains(err.Error(), "fork at height 4") {
		t.Fatalf("fork not reported: %v", err)
	}
	if c.Err() == nil {
		t.Fatal("Err lost the violation")
	}
	if got := c.MinHeight(nodes); got != 3 {
		t.Fatalf("MinHeight = %d", got)
	}
}

func TestCheckerGoingBack(t *testing.T) {
	id := testIDs(1)[0]
	c := NewChecker()
	if err := c.Finalized(id, 5, h("5")); err != nil {
		t.Fatal(err)
	}
	if err := c.Finalized(id, 5, h("5")); err == nil {
		t.Fatal("height finalized twice not reported")
	}
	c = NewChecker()
	_ = c.Finalized(id, 5, h("5"))
	if err := c.Finalized(id, 4, h("4")); err == nil {
		t.Fatal("going back not reported")
	}
}

func TestCheckerExactlyOnce(t *testing.T) {
	nodes := testIDs(2)
	good := func() *Checker {
		c := NewChecker()
		for _, id := range nodes {
			_ = c.Finalized(id, 1, h("b1"))
			c.Included(id, 1, []common.Hash{h("t1"), h("t2")})
		}
		c.Acknowledge(h("t1"))
		return c
	}
	if err := good().CheckExactlyOnce(); err != nil {
		t.Fatal(err)
	}

	c := good()
	c.Acknowledge(h("lost"))
	if err := c.CheckExactlyOnce(); err == nil || !strings.Contains(err.Error(), "no node's chain") {
		t.Fatalf("lost tx not reported: %v", err)
	}

	c = good()
	_ = c.Finalized(nodes[0], 2, h("b2"))
	c.Included(nodes[0], 2, []common.Hash{h("t1")})
	if err := c.CheckExactlyOnce(); err == nil || !strings.Contains(err.Error(), "heights") {
		t.Fatalf("duplicate not reported: %v", err)
	}

	c = NewChecker()
	_ = c.Finalized(nodes[0], 1, h("b1"))
	c.Included(nodes[0], 1, []common.Hash{h("t1")})
	_ = c.Finalized(nodes[1], 1, h("b1"))
	c.Included(nodes[1], 1, nil) // node 1 lacks t1 at the same height
	c.Acknowledge(h("t1"))
	if err := c.CheckExactlyOnce(); err == nil || !strings.Contains(err.Error(), "lacks") {
		t.Fatalf("missing tx on one node not reported: %v", err)
	}

	// A node that is behind is not blamed.
	c = NewChecker()
	_ = c.Finalized(nodes[0], 1, h("b1"))
	_ = c.Finalized(nodes[0], 2, h("b2"))
	c.Included(nodes[0], 2, []common.Hash{h("t1")})
	_ = c.Finalized(nodes[1], 1, h("b1"))
	c.Acknowledge(h("t1"))
	if err := c.CheckExactlyOnce(); err != nil {
		t.Fatalf("lagging node blamed: %v", err)
	}
}

func TestSeedsEnv(t *testing.T) {
	t.Setenv(EnvSeed, "")
	t.Setenv(EnvSoak, "")
	t.Setenv(EnvSeeds, "")
	t.Setenv(EnvSeedStart, "")
	s, err := Seeds(10, 1000)
	if err != nil || len(s) != 10 || s[0] < 1 || s[9] != s[0]+9 {
		t.Fatalf("normal: %v %v", s, err)
	}
	t.Setenv(EnvSoak, "1")
	if s, _ = Seeds(10, 1000); len(s) != 1000 {
		t.Fatalf("soak: %d seeds", len(s))
	}
	t.Setenv(EnvSeeds, "3")
	if s, _ = Seeds(10, 1000); len(s) != 3 {
		t.Fatalf("count: %d seeds", len(s))
	}
	t.Setenv(EnvSeedStart, "500")
	if s, _ = Seeds(10, 1000); len(s) != 3 || s[0] != 500 || s[2] != 502 {
		t.Fatalf("start: %v", s)
	}
	t.Setenv(EnvSeedStart, "")
	t.Setenv(EnvSeed, "42")
	if s, _ = Seeds(10, 1000); len(s) != 1 || s[0] != 42 {
		t.Fatalf("replay: %v", s)
	}
	t.Setenv(EnvSeed, "x")
	if _, err = Seeds(10, 1000); err == nil {
		t.Fatal("bad seed accepted")
	}
}

type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper()                   {}
func (f *fakeTB) Name() string              { return "TestFake" }
func (f *fakeTB) Logf(string, ...any)       {}
func (f *fakeTB) Fatal(args ...any)         { f.failed = fmt.Sprint(args...) }
func (f *fakeTB) Fatalf(s string, a ...any) { f.failed = fmt.Sprintf(s, a...) }

func TestRunSeedsReportsSeed(t *testing.T) {
	t.Setenv(EnvSeed, "")
	t.Setenv(EnvSoak, "")
	t.Setenv(EnvSeeds, "")
	t.Setenv(EnvSeedStart, "1")
	ft := &fakeTB{}
	RunSeeds(ft, 50, 50, func(seed int64) error {
		if seed == 17 {
			panic("boom")
		}
		if seed%20 == 0 {
			return fmt.Errorf("bad")
		}
		return nil
	})
	if !strings.Contains(ft.failed, "seed 17 failed") || !strings.Contains(ft.failed, "CHARTER_SEED=17") {
		t.Fatalf("report: %q", ft.failed)
	}
}
