package bench

import (
	"math/rand/v2"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Recorder bounds.
const (
	// maxPoints is how many transactions the scatter chart shows: a
	// uniform sample of the run (reservoir sampling), whatever its length.
	maxPoints = 20_000
	// maxSeconds bounds the per-second series: a day.
	maxSeconds = 24 * 60 * 60
	// latency range of the histograms, microseconds: 1 µs to 1 hour, 3
	// significant digits (a latency above the range is recorded as the
	// highest); each histogram is a fixed ~200 KiB.
	histMinUs, histMaxUs, histDigits = 1, 3_600_000_000, 3
)

// Second is one second of a run, for the per-second series.
type Second struct {
	T         float64 `json:"t_s"`                     // seconds since the first submission, at the end of this second
	Submitted int     `json:"submitted"`               // transactions submitted during this second
	Confirmed int     `json:"confirmed"`               // transactions seen in a block during this second
	P50       float64 `json:"p50_ms"`                  // latency of those confirmed during this second
	P99       float64 `json:"p99_ms"`                  //
	Height    uint64  `json:"height"`                  // the chain's height on the watched endpoint at the end of the second
	Rounds    *int    `json:"round_changes,omitempty"` // consensus round changes during this second, over the scraped nodes (--metrics)
}

// recorder keeps what a run measures in a size that does not depend on
// how many transactions it sends: latency histograms (overall, per kind of
// transaction, and of the current second), a per-second series of at most
// maxSeconds entries, and a uniform sample of at most maxPoints
// transactions for the scatter chart. Not goroutine-safe: the watcher owns
// it.
type recorder struct {
	all     *hdrhistogram.Histogram
	kinds   [numTxKinds]*hdrhistogram.Histogram
	second  *hdrhistogram.Histogram
	seen    int // latencies recorded, for the reservoir
	points  []Point
	rng     *rand.Rand
	series  []Second
	perKind [numTxKinds]int // confirmed per kind
}

func newRecorder(seed uint64) *recorder {
	r := &recorder{
		all:    hdrhistogram.New(histMinUs, histMaxUs, histDigits),
		second: hdrhistogram.New(histMinUs, histMaxUs, histDigits),
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	for k := range r.kinds {
		r.kinds[k] = hdrhistogram.New(histMinUs, histMaxUs, histDigits)
	}
	return r
}

// add records one confirmed transaction of kind k, submitted sentMs after
// the start, with latency latMs.
func (r *recorder) add(k int, sentMs, latMs float64) {
	us := min(max(int64(latMs*1000), histMinUs), histMaxUs)
	_ = r.all.RecordValue(us) // in range by the clamp: no error
	_ = r.kinds[k].RecordValue(us)
	_ = r.second.RecordValue(us)
	r.perKind[k]++
	r.seen++
	p := Point{SentMs: sentMs, LatencyMs: latMs}
	if len(r.points) < maxPoints {
		r.points = append(r.points, p)
	} else if j := r.rng.IntN(r.seen); j < maxPoints {
		r.points[j] = p
	}
}

// tick closes one second: its counts, latencies, height and round changes
// (nil: not scraped) join the series, and the second's histogram starts again.
func (r *recorder) tick(t float64, submitted int, height uint64, rounds *int) Second {
	s := Second{T: t, Submitted: submitted, Confirmed: int(r.second.TotalCount()), Height: height, Rounds: rounds}
	if s.Confirmed > 0 {
		s.P50 = float64(r.second.ValueAtQuantile(50)) / 1000
		s.P99 = float64(r.second.ValueAtQuantile(99)) / 1000
	}
	r.second.Reset()
	if len(r.series) < maxSeconds {
		r.series = append(r.series, s)
	}
	return s
}

// latency summarizes h in milliseconds.
func latencyOf(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1000 }
	return Latency{P50: ms(50), P95: ms(95), P99: ms(99), Max: float64(h.Max()) / 1000}
}
