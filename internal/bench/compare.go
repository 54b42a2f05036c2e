package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
)

// MaxCompareRuns bounds Compare's runs per side.
const MaxCompareRuns = 50

// Comparison is the result of Compare: every run of both sides in the
// order they ran, the medians of each side, and the ratios of Charter's
// medians to the other's.
type Comparison struct {
	Kind    string    `json:"kind"`
	Charter []*Result `json:"charter"`
	Other   []*Result `json:"other"`
	Medians struct {
		Charter Summary `json:"charter"`
		Other   Summary `json:"other"`
	} `json:"medians"`
	// Ratio is Charter's median over the other's: above 1 for throughput
	// and below 1 for latency favour Charter.
	Ratio Summary `json:"ratio"`
}

// Summary is what Compare sets side by side.
type Summary struct {
	TPS float64 `json:"tps"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

// RunFunc runs one benchmark: Run, or a stand-in in tests.
type RunFunc func(ctx context.Context, cfg Config) (*Result, error)

// Compare runs the same load against Charter (charter) and another
// JSON-RPC endpoint (other), runs times each, alternating — charter,
// other, charter, other, ... — so that a change of the machine's load
// over time touches both alike. It reports each run to each as it ends
// (nil: no report), and stops at the first error.
func Compare(ctx context.Context, run RunFunc, charter, other Config, runs int, each func(side string, k int, res *Result)) (*Comparison, error) {
	if runs < 1 || runs > MaxCompareRuns {
		return nil, fmt.Errorf("--runs %d is outside [1, %d]", runs, MaxCompareRuns)
	}
	if charter.Kind != other.Kind {
		return nil, errors.New("compare: both sides must run the same kind of load")
	}
	c := &Comparison{Kind: charter.Kind}
	for k := 1; k <= runs; k++ {
		for _, side := range []struct {
			name string
			cfg  Config
			out  *[]*Result
		}{{"charter", charter, &c.Charter}, {"other", other, &c.Other}} {
			res, err := run(ctx, side.cfg)
			if err != nil {
				return nil, fmt.Errorf("%s run %d of %d: %w", side.name, k, runs, err)
			}
			*side.out = append(*side.out, res)
			if each != nil {
				each(side.name, k, res)
			}
		}
	}
	c.Medians.Charter, c.Medians.Other = medians(c.Charter), medians(c.Other)
	m, o := c.Medians.Charter, c.Medians.Other
	c.Ratio = Summary{TPS: ratio(m.TPS, o.TPS), P50: ratio(m.P50, o.P50), P99: ratio(m.P99, o.P99)}
	return c, nil
}

// medians of throughput, p50 and p99 over runs, each taken on its own.
func medians(runs []*Result) Summary {
	med := func(f func(*Result) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v) == 0 {
			return 0
		}
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return Summary{
		TPS: med(func(r *Result) float64 { return r.TPS }),
		P50: med(func(r *Result) float64 { return r.Latency.P50 }),
		P99: med(func(r *Result) float64 { return r.Latency.P99 }),
	}
}

// WriteComparison prints the medians and the ratios of c.
func WriteComparison(w io.Writer, c *Comparison) {
	m, o := c.Medians.Charter, c.Medians.Other
	fmt.Fprintf(w, "%s, medians of %d runs each: charter %.1f tx/s p50 %.1f ms p99 %.1f ms; other %.1f tx/s p50 %.1f ms p99 %.1f ms\n",
		c.Kind, len(c.Charter), m.TPS, m.P50, m.P99, o.TPS, o.P50, o.P99)
	fmt.Fprintf(w, "charter/other: throughput %.2f, p50 %.2f, p99 %.2f\n", c.Ratio.TPS, c.Ratio.P50, c.Ratio.P99)
}
