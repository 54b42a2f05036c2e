package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeMetrics serves a node's metrics page whose height and round changes
// the test moves.
func fakeMetrics(t *testing.T, height, rounds *atomic.Int64) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# HELP charter_chain_height Height.\n# TYPE charter_chain_height gauge\ncharter_chain_height %d\n"+
			"# HELP charter_consensus_round_changes_total Rounds.\n# TYPE charter_consensus_round_changes_total counter\ncharter_consensus_round_changes_total %d\n"+
			"# TYPE go_goroutines gauge\ngo_goroutines 12\n", height.Load(), rounds.Load())
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

func TestScraperRoundChangesPerHeight(t *testing.T) {
	var h0, r0, h1, r1 atomic.Int64
	h0.Store(100)
	r0.Store(7)
	h1.Store(98)
	u0, u1 := fakeMetrics(t, &h0, &r0), fakeMetrics(t, &h1, &r1)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "up 1") }))
	defer bad.Close()
	s := newScraper([]string{u0, u1, bad.URL})
	ctx := context.Background()
	s.scrapeAll(ctx)
	h0.Add(40)
	r0.Add(6)
	h1.Add(38)
	r1.Add(2)
	s.scrapeAll(ctx)
	if got := s.rounds(); got != 8 {
		t.Fatalf("rounds %d, want 6+2", got)
	}
	c := s.summary()
	if c.Heights != 40 || c.RoundChanges != 6 || c.PerHeight != 0.15 || len(c.Nodes) != 3 {
		t.Fatalf("summary %+v", c)
	}
	if n := c.Nodes[1]; n.Heights != 38 || n.RoundChanges != 2 {
		t.Fatalf("node 1 %+v", n)
	}
	if n := c.Nodes[2]; !strings.Contains(n.Error, "no charter_consensus_round_changes_total") {
		t.Fatalf("a page without the metrics: %+v", n)
	}
}

func TestParseNodeMetricsRefusesGarbage(t *testing.T) {
	if _, err := parseNodeMetrics(strings.NewReader("charter_chain_height{ 3\n")); err == nil {
		t.Fatal("garbage parsed")
	}
}
