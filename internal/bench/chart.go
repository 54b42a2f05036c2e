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
.p50{stroke:#2ca02c;fill:#2ca02c} .p99{stroke:#d62728;fill:#d62728} text.p50,text.p99{stroke:none;text-anchor:end}</style></head>
<body><h2>charter bench: {{.Kind}}</h2>
<p>{{.Confirmed}} of {{.Sent}} transactions confirmed ({{.Failed}} failed) in {{printf "%.2f" .DurationS}} s over {{.Blocks}} blocks:
<b>{{printf "%.1f" .TPS}} tx/s</b>; submission to finality p50 {{printf "%.1f" .Latency.P50}} ms, p95 {{printf "%.1f" .Latency.P95}} ms,
p99 {{printf "%.1f" .Latency.P99}} ms, max {{printf "%.1f" .Latency.Max}} ms. {{.Senders}} senders over {{.Endpoints}} endpoint(s){{if .Rate}}, open loop at {{.Rate}} tx/s{{end}}.</p>
<p>Latency of each transaction (vertical) by the time it was submitted (horizontal).</p>
{{.SVG}}
</body></html>
`))
	svg := fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f">%s%s%s%s</svg>`,
		width, height, axes.String(), dots.String(), line(res.Latency.P50, "p50", "p50"), line(res.Latency.P99, "p99", "p99"))
	return page.Execute(w, struct {
		*Result
		SVG template.HTML
	}{res, template.HTML(svg)})
}
