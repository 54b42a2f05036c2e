package bench

import (
	"strings"
	"testing"
)

func TestWriteHTML(t *testing.T) {
	res := &Result{Kind: "transfer", Sent: 3, Confirmed: 3, TPS: 100, Latency: Latency{P50: 20, P95: 30, P99: 40, Max: 41},
		Points: []Point{{SentMs: 0, LatencyMs: 20}, {SentMs: 5, LatencyMs: 30}, {SentMs: 10, LatencyMs: 41}}}
	var b strings.Builder
	if err := WriteHTML(&b, res); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if strings.Count(page, "<circle") != 3 || !strings.Contains(page, "p99 40 ms") || !strings.Contains(page, "100.0 tx/s") {
		t.Fatalf("chart lacks dots, percentile lines or summary:\n%s", page)
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "http://") && !strings.Contains(page, `xmlns="http://www.w3.org/2000/svg"`) {
		t.Fatal("the page must be self-contained")
	}
}

// A run with a per-second series and scraped round changes charts them,
// and a mixed run lists its kinds.
func TestWriteHTMLSeries(t *testing.T) {
	one, two := 1, 0
	res := &Result{Kind: KindMixed, Sent: 4, Confirmed: 4, TPS: 2, Mix: DefaultMix.String(),
		ByKind:    map[string]*KindRun{"hot": {Sent: 4, Confirmed: 4}},
		Points:    []Point{{SentMs: 0, LatencyMs: 20}},
		Series:    []Second{{T: 1, Submitted: 3, Confirmed: 2, P50: 10, P99: 20, Height: 5, Rounds: &one}, {T: 2, Submitted: 1, Confirmed: 2, P50: 11, P99: 21, Height: 7, Rounds: &two}},
		Consensus: &Consensus{Heights: 2, RoundChanges: 1, PerHeight: 0.5, Nodes: []NodeConsensus{{URL: "x"}}}}
	var b strings.Builder
	if err := WriteHTML(&b, res); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"submitted/s", "confirmed/s", "p99 ms", "round changes/s", "height", "0.500 per height", "<td>hot</td>", "<polyline"} {
		if !strings.Contains(page, want) {
			t.Fatalf("chart lacks %q:\n%s", want, page)
		}
	}
	if strings.Count(page, "<polyline") != 6 {
		t.Fatalf("%d lines, want 6", strings.Count(page, "<polyline"))
	}
	// Without scraped metrics there is no rounds chart.
	res.Series[0].Rounds, res.Series[1].Rounds, res.Consensus = nil, nil, nil
	b.Reset()
	if err := WriteHTML(&b, res); err != nil || strings.Contains(b.String(), "round changes/s") {
		t.Fatalf("rounds charted without metrics (%v)", err)
	}
}
