package bench

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// A long run keeps a fixed size: a million latencies leave at most
// maxPoints sampled points and histograms of unchanged size, and the
// percentiles stay within the histograms' precision.
func TestRecorderBounded(t *testing.T) {
	r := newRecorder(1)
	size := r.all.ByteSize()
	const n = 1_000_000
	for i := 0; i < n; i++ {
		lat := float64(1 + i%1000) // 1..1000 ms, uniform
		r.add(i%numTxKinds, float64(i), lat)
		if i%100_000 == 99_999 {
			r.tick(float64(i/100_000+1), 100_000, uint64(i), nil)
		}
	}
	if len(r.points) != maxPoints || cap(r.points) > 2*maxPoints {
		t.Fatalf("%d points kept (cap %d), want %d", len(r.points), cap(r.points), maxPoints)
	}
	if r.all.ByteSize() != size || r.all.TotalCount() != n {
		t.Fatalf("histogram %d bytes (was %d), %d values", r.all.ByteSize(), size, r.all.TotalCount())
	}
	l := latencyOf(r.all)
	for _, c := range []struct{ got, want float64 }{{l.P50, 500}, {l.P99, 990}, {l.Max, 1000}} {
		if math.Abs(c.got-c.want) > c.want*0.002 {
			t.Fatalf("latency %+v, want p50 500, p99 990, max 1000", l)
		}
	}
	// The sample is uniform over the run: about half its points come from
	// the second half.
	late := 0
	for _, p := range r.points {
		if p.SentMs >= n/2 {
			late++
		}
	}
	if late < maxPoints*45/100 || late > maxPoints*55/100 {
		t.Fatalf("%d of %d sampled points from the second half", late, maxPoints)
	}
	if len(r.series) != 10 || r.series[3].Confirmed != 100_000 || r.series[3].Submitted != 100_000 || r.series[3].P99 < 980 {
		t.Fatalf("series %+v", r.series[:min(len(r.series), 4)])
	}
	// The per-kind histograms split the values.
	for k := range numTxKinds {
		if r.perKind[k] != n/numTxKinds || r.kinds[k].TotalCount() != n/numTxKinds {
			t.Fatalf("kind %d: %d", k, r.perKind[k])
		}
	}
	// The series stops at maxSeconds.
	for i := 0; i < maxSeconds+5; i++ {
		r.tick(float64(i), 0, 0, nil)
	}
	if len(r.series) != maxSeconds {
		t.Fatalf("series of %d seconds", len(r.series))
	}
}

// The in-flight set is bounded: add waits while it is full and gives up
// when its context ends; take frees a slot.
func TestInflightBounded(t *testing.T) {
	f := newInflight(2)
	ctx := context.Background()
	h := func(i int) common.Hash { return common.BytesToHash([]byte(fmt.Sprint(i))) }
	if !f.add(ctx, h(1), sendRec{sent: 1}) || !f.add(ctx, h(2), sendRec{sent: 2}) {
		t.Fatal("add below the bound")
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if f.add(short, h(3), sendRec{}) {
		t.Fatal("a third add into a set of two")
	}
	done := make(chan bool)
	go func() { done <- f.add(ctx, h(3), sendRec{sent: 3}) }()
	if rec, ok := f.take(h(1)); !ok || rec.sent != 1 {
		t.Fatalf("take: %v %v", rec, ok)
	}
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("add after a take failed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("add still waits after a take")
	}
	if _, ok := f.take(h(1)); ok || f.len() != 2 {
		t.Fatalf("a second take of the same hash, or len %d", f.len())
	}
}
