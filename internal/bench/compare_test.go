package bench

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
)

// Compare alternates the sides, charter first, and takes each figure's
// median on its own.
func TestCompareAlternatesAndMedians(t *testing.T) {
	var order []string
	figures := map[string][]Result{
		"c": {{TPS: 100, Latency: Latency{P50: 10, P99: 50}}, {TPS: 300, Latency: Latency{P50: 30, P99: 20}}, {TPS: 200, Latency: Latency{P50: 20, P99: 40}}},
		"o": {{TPS: 50, Latency: Latency{P50: 40, P99: 80}}, {TPS: 60, Latency: Latency{P50: 20, P99: 100}}, {TPS: 40, Latency: Latency{P50: 30, P99: 90}}},
	}
	run := func(_ context.Context, cfg Config) (*Result, error) {
		side := cfg.Endpoints[0]
		order = append(order, side)
		r := figures[side][0]
		figures[side] = figures[side][1:]
		return &r, nil
	}
	var reported []string
	c, err := Compare(context.Background(), run, Config{Kind: KindERC20, Endpoints: []string{"c"}}, Config{Kind: KindERC20, Endpoints: []string{"o"}}, 3,
		func(side string, k int, _ *Result) { reported = append(reported, side) })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, "") != "cococo" || strings.Join(reported, ",") != "charter,other,charter,other,charter,other" {
		t.Fatalf("ran %v, reported %v", order, reported)
	}
	if c.Medians.Charter != (Summary{TPS: 200, P50: 20, P99: 40}) || c.Medians.Other != (Summary{TPS: 50, P50: 30, P99: 90}) {
		t.Fatalf("medians %+v", c.Medians)
	}
	if c.Ratio.TPS != 4 || math.Abs(c.Ratio.P50-2.0/3) > 1e-9 || math.Abs(c.Ratio.P99-4.0/9) > 1e-9 {
		t.Fatalf("ratios %+v", c.Ratio)
	}
	var b strings.Builder
	WriteComparison(&b, c)
	if !strings.Contains(b.String(), "charter/other: throughput 4.00, p50 0.67, p99 0.44") {
		t.Fatalf("printed %q", b.String())
	}
	// An even count of runs: the mean of the middle two.
	if m := medians([]*Result{{TPS: 1}, {TPS: 4}, {TPS: 2}, {TPS: 3}}); m.TPS != 2.5 {
		t.Fatalf("median of 1..4: %v", m.TPS)
	}
}

func TestCompareErrors(t *testing.T) {
	calls := 0
	run := func(_ context.Context, cfg Config) (*Result, error) {
		calls++
		if cfg.Endpoints[0] == "o" {
			return nil, errors.New("connection refused")
		}
		return &Result{}, nil
	}
	a, b := Config{Kind: KindTransfer, Endpoints: []string{"c"}}, Config{Kind: KindTransfer, Endpoints: []string{"o"}}
	if _, err := Compare(context.Background(), run, a, b, 3, nil); err == nil || err.Error() != "other run 1 of 3: connection refused" || calls != 2 {
		t.Fatalf("%v after %d runs", err, calls)
	}
	for _, n := range []int{0, MaxCompareRuns + 1} {
		if _, err := Compare(context.Background(), run, a, b, n, nil); err == nil || !strings.Contains(err.Error(), "--runs") {
			t.Fatalf("runs %d: %v", n, err)
		}
	}
	b.Kind = KindERC20
	if _, err := Compare(context.Background(), run, a, b, 1, nil); err == nil {
		t.Fatal("sides of different kinds")
	}
}
