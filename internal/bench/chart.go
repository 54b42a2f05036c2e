package bench

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
)

// WriteHTML writes a self-contained HTML page (inline SVG, no scripts or
// outside resources) with the latency of every transaction over the time
// of its submission, the p50 and p99 lines, and the summary.
func WriteHTML(w io.Writer, res *Result) error {
	const width, height, left, bottom, top, right = 900.0, 420.0, 70.0, 40.0, 20.0, 20.0
	pts := res.Points
	maxX, maxY := 1.0, 1.0
	for _, p := range pts {
		maxX = math.Max(maxX, p.SentMs)
		maxY = math.Max(maxY, p.LatencyMs)
	}
	maxY *= 1.05
	x := func(ms float64) float64 { return left + ms/maxX*(width-left-right) }
	y := func(ms float64) float64 { return height - bottom - ms/maxY*(height-bottom-top) }
	// At most 20,000 dots: a sample in submission order keeps the shape.
	step := max(1, len(pts)/20_000)
	sorted := append([]Point(nil), pts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].SentMs < sorted[j].SentMs })
	var dots strings.Builder
	for i := 0; i < len(sorted); i += step {
		fmt.Fprintf(&dots, `<circle cx="%.1f" cy="%.1f" r="1.2"/>`, x(sorted[i].SentMs), y(sorted[i].LatencyMs))
	}
	var axes strings.Builder
	for i := 0; i <= 5; i++ {
		v := maxY * float64(i) / 5
		fmt.Fprintf(&axes, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" class="grid"/><text x="%.0f" y="%.1f" class="lbl" text-anchor="end">%.0f ms</text>`,
			left, width-right, y(v), y(v), left-6, y(v)+4, v)
		t := maxX * float64(i) / 5
		fmt.Fprintf(&axes, `<text x="%.1f" y="%.0f" class="lbl" text-anchor="middle">%.1f s</text>`, x(t), height-bottom+18, t/1000)
	}
	line := func(v float64, class, name string) string {
		return fmt.Sprintf(`<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" class="%s"/><text x="%.0f" y="%.1f" class="lbl %s">%s %.0f ms</text>`,
			left, width-right, y(v), y(v), class, width-right-4, y(v)-4, class, name, v)
	}
	page := template.Must(template.New("chart").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>charter bench: {{.Kind}}</title>
<style>body{font:14px sans-serif;margin:24px;color:#222} svg{background:#fff;border:1px solid #ddd}
circle{fill:#1f77b4;fill-opacity:.35} .grid{stroke:#eee} .lbl{font-size:11px;fill:#555}
.p50{stroke:#2ca02c;fill:#2ca02c} .p99{stroke:#d62728;fill:#d62728} text.p50,text.p99{stroke:none;text-anchor:end}
.ln{fill:none;stroke-width:1.5} .sub{stroke:#ff7f0e;fill:#ff7f0e} .conf{stroke:#1f77b4;fill:#1f77b4} text.ln,text.sub,text.conf{stroke:none}
svg text.lbl.p50,svg text.lbl.p99{text-anchor:start} td,th{padding:2px 10px;text-align:right}</style></head>
<body><h2>charter bench: {{.Kind}}</h2>
<p>{{.Confirmed}} of {{.Sent}} transactions confirmed ({{.Failed}} failed) in {{printf "%.2f" .DurationS}} s over {{.Blocks}} blocks:
<b>{{printf "%.1f" .TPS}} tx/s</b>; submission to finality p50 {{printf "%.1f" .Latency.P50}} ms, p95 {{printf "%.1f" .Latency.P95}} ms,
p99 {{printf "%.1f" .Latency.P99}} ms, max {{printf "%.1f" .Latency.Max}} ms. {{.Senders}} senders over {{.Endpoints}} endpoint(s){{if .Rate}}, open loop at {{.Rate}} tx/s{{end}}.</p>
{{if .ByKind}}<table><tr><th>kind</th><th>sent</th><th>confirmed</th><th>failed</th><th>p50 ms</th><th>p99 ms</th></tr>
{{range $k, $v := .ByKind}}<tr><td>{{$k}}</td><td>{{$v.Sent}}</td><td>{{$v.Confirmed}}</td><td>{{$v.Failed}}</td><td>{{printf "%.1f" $v.Latency.P50}}</td><td>{{printf "%.1f" $v.Latency.P99}}</td></tr>
{{end}}</table><p>Mix {{.Mix}}.</p>{{end}}
{{with .Consensus}}<p>Consensus: {{printf "%.0f" .RoundChanges}} round changes over {{printf "%.0f" .Heights}} heights, <b>{{printf "%.3f" .PerHeight}} per height</b> (the busiest of {{len .Nodes}} scraped nodes).</p>{{end}}
<p>Latency of each transaction (vertical) by the time it was submitted (horizontal){{if gt .Confirmed 20000}}, a uniform sample of 20,000{{end}}.</p>
{{.SVG}}
{{if .Series}}<h3>Per second</h3>
<p>Transactions submitted and confirmed in each second.</p>
{{.Throughput}}
<p>Latency p50 and p99 of the transactions confirmed in each second.</p>
{{.SecondLatency}}
{{if .HasRounds}}<p>Consensus round changes in each second (all scraped nodes) and the chain's height.</p>
{{.Rounds}}{{end}}{{end}}
</body></html>
`))
	svg := fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f">%s%s%s%s</svg>`,
		width, height, axes.String(), dots.String(), line(res.Latency.P50, "p50", "p50"), line(res.Latency.P99, "p99", "p99"))
	ser := res.Series
	col := func(f func(Second) float64) []float64 {
		v := make([]float64, len(ser))
		for i, s := range ser {
			v[i] = f(s)
		}
		return v
	}
	ts := col(func(s Second) float64 { return s.T })
	hasRounds := len(ser) > 0 && ser[0].Rounds != nil
	var rounds template.HTML
	if hasRounds {
		rounds = seriesSVG(ts, []series{
			{"round changes/s", "p99", col(func(s Second) float64 {
				if s.Rounds == nil {
					return 0
				}
				return float64(*s.Rounds)
			}), ""},
			{"height", "p50", col(func(s Second) float64 { return float64(s.Height) }), "right"},
		})
	}
	return page.Execute(w, struct {
		*Result
		SVG, Throughput, SecondLatency, Rounds template.HTML
		HasRounds                              bool
	}{res, template.HTML(svg),
		seriesSVG(ts, []series{
			{"submitted/s", "sub", col(func(s Second) float64 { return float64(s.Submitted) }), ""},
			{"confirmed/s", "conf", col(func(s Second) float64 { return float64(s.Confirmed) }), ""},
		}),
		seriesSVG(ts, []series{
			{"p50 ms", "p50", col(func(s Second) float64 { return s.P50 }), ""},
			{"p99 ms", "p99", col(func(s Second) float64 { return s.P99 }), ""},
		}),
		rounds, hasRounds})
}

// series is one line of a per-second chart.
type series struct {
	name, class string
	v           []float64
	axis        string // "": the left axis; "right": its own scale, on the right
}

// seriesSVG draws lines over the seconds ts (at most 2,000 points each: a
// longer run is thinned evenly), each series named in a legend.
func seriesSVG(ts []float64, lines []series) template.HTML {
	const width, height, left, bottom, top, right = 900.0, 260.0, 70.0, 40.0, 20.0, 70.0
	if len(ts) == 0 {
		return ""
	}
	maxX := math.Max(ts[len(ts)-1], 1)
	maxL, maxR := 1.0, 1.0
	for _, l := range lines {
		for _, v := range l.v {
			if l.axis == "right" {
				maxR = math.Max(maxR, v)
			} else {
				maxL = math.Max(maxL, v)
			}
		}
	}
	maxL *= 1.05
	x := func(t float64) float64 { return left + t/maxX*(width-left-right) }
	y := func(v, m float64) float64 { return height - bottom - v/m*(height-bottom-top) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f">`, width, height)
	for i := 0; i <= 4; i++ {
		v := maxL * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" class="grid"/><text x="%.0f" y="%.1f" class="lbl" text-anchor="end">%.0f</text>`,
			left, width-right, y(v, maxL), y(v, maxL), left-6, y(v, maxL)+4, v)
		t := maxX * float64(i) / 4
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" class="lbl" text-anchor="middle">%.0f s</text>`, x(t), height-bottom+18, t)
	}
	step := max(1, len(ts)/2000)
	for n, l := range lines {
		m := maxL
		if l.axis == "right" {
			m = maxR
			fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" class="lbl">%.0f</text>`, width-right+6, y(maxR, m)+4, maxR)
		}
		var pts strings.Builder
		for i := 0; i < len(ts); i += step {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(ts[i]), y(l.v[i], m))
		}
		fmt.Fprintf(&b, `<polyline class="ln %s" points="%s"/><text x="%.0f" y="%.0f" class="lbl %s" style="text-anchor:start">%s</text>`,
			l.class, strings.TrimSpace(pts.String()), left+10+float64(n)*140, top-4, l.class, template.HTMLEscapeString(l.name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
