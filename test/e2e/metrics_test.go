package e2e

import (
	"context"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestTestnetServesMetrics runs `charter testnet`, loads it with
// `charter bench`, and scrapes every node's metrics URL from
// endpoints.json: the metrics parse and show the chain, the traffic and the
// latency; /readyz answers ready.
func TestTestnetServesMetrics(t *testing.T) {
	const n = 3
	dir := initNetwork(t, "raft", n, "--block-time", "200ms")
	tn := runTestnet(t, dir)
	waitFor(t, 30*time.Second, "every node connected to both others", func() bool {
		for i := 0; i < n; i++ {
			if c, err := peerCount(tn.url(i)); err != nil || c != n-1 {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, charterBin, "bench", "--rpc", strings.Join(tn.urls(), ","), "--txs", "400", "--senders", "10").CombinedOutput()
	if err != nil {
		t.Fatalf("charter bench: %v\n%s", err, out)
	}
	for i, node := range tn.ep.Nodes {
		var fams map[string]*dto.MetricFamily
		// Metrics are sampled every second: wait for a sample after the load.
		waitFor(t, 10*time.Second, node.Name+" metrics sampled", func() bool {
			fams = scrapeURL(t, node.Metrics)
			return gauge(fams, "charter_p2p_peers") == n-1 && fams["charter_p2p_messages_total"] != nil &&
				gauge(fams, "charter_txpool_transactions") == 0
		})
		if h := gauge(fams, "charter_chain_height"); h < 1 {
			t.Errorf("%s: charter_chain_height %v", node.Name, h)
		}
		if c := counter(fams, "charter_transactions_committed_total"); c < 400 {
			t.Errorf("%s: charter_transactions_committed_total %v, want at least 400", node.Name, c)
		}
		for _, name := range []string{"charter_p2p_messages_total", "charter_p2p_bytes_total", "charter_block_execution_seconds",
			"charter_consensus_leader_changes_total", "charter_txpool_transactions"} {
			if fams[name] == nil {
				t.Errorf("%s: %s missing", node.Name, name)
			}
		}
		if i == 0 {
			if h := fams["charter_finality_latency_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleCount() == 0 {
				t.Errorf("%s: no finality latency observed", node.Name)
			}
		}
		resp, err := http.Get(strings.TrimSuffix(node.Metrics, "/metrics") + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: /readyz %d", node.Name, resp.StatusCode)
		}
	}
	tn.stop()
}

func scrapeURL(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s does not parse: %v", url, err)
	}
	return fams
}

func gauge(fams map[string]*dto.MetricFamily, name string) float64 {
	if f := fams[name]; f != nil && len(f.GetMetric()) > 0 {
		return f.GetMetric()[0].GetGauge().GetValue()
	}
	return -1
}

func counter(fams map[string]*dto.MetricFamily, name string) float64 {
	if f := fams[name]; f != nil && len(f.GetMetric()) > 0 {
		return f.GetMetric()[0].GetCounter().GetValue()
	}
	return -1
}
