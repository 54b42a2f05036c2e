package metrics

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestServeMetricsAndHealth(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.Height.Set(42)
	m.TxPoolTransaction.WithLabelValues("pending").Set(3)
	m.P2PMessages.WithLabelValues("out", "consensus").Add(5)
	now := time.Now()
	m.Seen([32]byte{1}, now)
	m.Seen([32]byte{1}, now.Add(time.Second)) // later sightings do not count
	m.Final([][32]byte{{1}, {2}}, now.Add(250*time.Millisecond))

	ready, reason := false, "no peers"
	srv, err := Listen("127.0.0.1:0", reg, func() (bool, string) { return ready, reason }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	if v := families["charter_chain_height"].GetMetric()[0].GetGauge().GetValue(); v != 42 {
		t.Fatalf("height %v", v)
	}
	h := families["charter_finality_latency_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 0.25 {
		t.Fatalf("finality latency: %d samples, sum %v; want 1 and 0.25", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, name := range []string{"charter_txpool_transactions", "charter_p2p_peers", "charter_p2p_messages_total", "go_goroutines", "charter_block_execution_seconds"} {
		if families[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "no peers") {
		t.Fatalf("/readyz unready: %d %q", code, body)
	}
	ready = true
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz ready: %d", code)
	}
}
