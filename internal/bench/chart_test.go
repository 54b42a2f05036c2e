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
