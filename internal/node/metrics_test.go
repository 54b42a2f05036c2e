package node

import (
	"context"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/consensus"
)

func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

func value(f *dto.MetricFamily, labels ...string) float64 {
	if f == nil {
		return -1
	}
	var sum float64
	for _, m := range f.GetMetric() {
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func readyz(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestMetricsAndReadinessOfANetwork scrapes a running raft network and
// checks that /readyz follows the peers.
func TestMetricsAndReadinessOfANetwork(t *testing.T) {
	nodes := startNetwork(t, "raft", 3)
	n0 := nodes[0]
	waitUntil(t, 20*time.Second, "node0 has both peers", func() bool { return n0.PeerCount() == 2 })
	accts, _ := chain.DevAccounts(1)
	signer := types.LatestSignerForChainID(big.NewInt(1337))
	var last common.Hash
	for i := uint64(0); i < 20; i++ {
		tx := types.MustSignNewTx(accts[0].Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: i, Gas: 21000,
			GasFeeCap: big.NewInt(2), GasTipCap: big.NewInt(1), To: &common.Address{1}, Value: big.NewInt(1)})
		if err := n0.client.SendTransaction(context.Background(), tx); err != nil {
			t.Fatal(err)
		}
		last = tx.Hash()
	}
	waitUntil(t, 30*time.Second, "the transactions are final on node0", func() bool {
		_, err := n0.client.TransactionReceipt(context.Background(), last)
		return err == nil
	})
	// One transaction behind a nonce gap waits queued: the pool's bytes show it.
	gapped := types.MustSignNewTx(accts[0].Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 25, Gas: 21000,
		GasFeeCap: big.NewInt(2), GasTipCap: big.NewInt(1), To: &common.Address{1}, Value: big.NewInt(1)})
	if err := n0.client.SendTransaction(context.Background(), gapped); err != nil {
		t.Fatal(err)
	}
	addr := n0.MetricsAddr()
	var fams map[string]*dto.MetricFamily
	waitUntil(t, 10*time.Second, "sampled metrics show the traffic and the queued transaction", func() bool {
		fams = scrape(t, addr)
		return value(fams["charter_p2p_messages_total"], "direction", "out", "type", "consensus") > 0 &&
			value(fams["charter_txpool_transactions"], "state", "queued") == 1
	})
	if got, want := value(fams["charter_txpool_bytes"], "state", "queued"), float64(gapped.Size()); got != want {
		t.Errorf("charter_txpool_bytes{state=queued} = %v, want %v (the queued transaction's encoded size)", got, want)
	}
	if got := value(fams["charter_txpool_evictions_total"]); got > 0 {
		t.Errorf("charter_txpool_evictions_total = %v, want none", got)
	}
	checks := []struct {
		name  string
		value float64
		min   float64
	}{
		{"charter_chain_height", value(fams["charter_chain_height"]), 1},
		{"charter_transactions_committed_total", value(fams["charter_transactions_committed_total"]), 20},
		{"charter_finality_latency_seconds", value(fams["charter_finality_latency_seconds"]), 20},
		{"charter_block_execution_seconds", value(fams["charter_block_execution_seconds"]), 1},
		{"charter_block_commit_seconds", value(fams["charter_block_commit_seconds"]), 1},
		{"charter_p2p_peers", value(fams["charter_p2p_peers"]), 2},
		{"charter_p2p_bytes_total in consensus", value(fams["charter_p2p_bytes_total"], "direction", "in", "type", "consensus"), 1},
		{"charter_txpool_transactions", value(fams["charter_txpool_transactions"], "state", "pending"), 0},
		{"go_goroutines", value(fams["go_goroutines"]), 1},
	}
	for _, c := range checks {
		if c.value < c.min {
			t.Errorf("%s = %v, want at least %v", c.name, c.value, c.min)
		}
	}
	for _, name := range []string{"charter_consensus_round_changes_total", "charter_consensus_leader_changes_total", "charter_block_build_seconds"} {
		if fams[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	if code, body := readyz(t, addr); code != 200 {
		t.Fatalf("/readyz with peers: %d %s", code, body)
	}

	// Without peers the node is not ready, and says why.
	homes := []string{nodes[1].home, nodes[2].home}
	nodes[1].Stop()
	nodes[2].Stop()
	waitUntil(t, 20*time.Second, "node0 unready without peers", func() bool {
		code, body := readyz(t, addr)
		return code == 503 && strings.Contains(body, "no peers")
	})
	// They come back: ready again.
	for _, home := range homes {
		hc, err := LoadHomeConfig(home)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := hc.NodeConfig(home, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		nd, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := nd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nd.Stop)
	}
	waitUntil(t, 30*time.Second, "node0 ready when its peers return", func() bool {
		code, _ := readyz(t, addr)
		return code == 200
	})
}

// TestBFTConsensusMetrics scrapes a bft network: rounds per height and
// consensus messages and bytes by type come from the engine's counters.
func TestBFTConsensusMetrics(t *testing.T) {
	nodes := startNetwork(t, "bft", 4)
	n0 := nodes[0]
	waitUntil(t, 30*time.Second, "height 5", func() bool { return n0.ledger.Head().Number.Uint64() >= 5 })
	var fams map[string]*dto.MetricFamily
	waitUntil(t, 10*time.Second, "sampled rounds per height", func() bool {
		fams = scrape(t, n0.MetricsAddr())
		return value(fams["charter_consensus_rounds_per_height"]) >= 3
	})
	for _, c := range []struct {
		name string
		v    float64
	}{
		{"prevotes out", value(fams["charter_consensus_messages_total"], "direction", "out", "type", "prevote")},
		{"precommits in", value(fams["charter_consensus_messages_total"], "direction", "in", "type", "precommit")},
		{"proposal bytes in or out", value(fams["charter_consensus_bytes_total"], "type", "proposal")},
	} {
		if c.v <= 0 {
			t.Errorf("%s = %v, want > 0", c.name, c.v)
		}
	}

	// Blocks of transactions: every node times its builds and
	// verifications (the pacer) and receives compact proposals.
	accts, _ := chain.DevAccounts(len(nodes))
	signer := types.LatestSignerForChainID(big.NewInt(chain.DefaultChainID))
	to := common.HexToAddress("0xC0FFEE")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var last common.Hash
	for i, nd := range nodes {
		for nonce := uint64(0); nonce < 100; nonce++ {
			tx := types.MustSignNewTx(accts[i].Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(chain.DefaultChainID),
				Nonce: nonce, Gas: 21000, GasFeeCap: big.NewInt(1), To: &to, Value: big.NewInt(1)})
			if err := nd.client.SendTransaction(ctx, tx); err != nil {
				t.Fatal(err)
			}
			last = tx.Hash()
		}
	}
	waitUntil(t, 30*time.Second, "the last transfer final on node 0", func() bool {
		r, err := n0.client.TransactionReceipt(ctx, last)
		return err == nil && r.Status == types.ReceiptStatusSuccessful
	})
	// Some node built a block of at least consensus.PacerMinSample
	// transactions (400 in, a few blocks) and every other verified it.
	waitUntil(t, 10*time.Second, "pacer estimates and compact proposals in some node's metrics", func() bool {
		var caps, builds, verifies, compact float64
		for _, nd := range nodes {
			f := scrape(t, nd.MetricsAddr())
			caps = max(caps, value(f["charter_consensus_block_cap_transactions"]))
			builds = max(builds, value(f["charter_consensus_pacer_seconds_per_transaction"], "work", "build"))
			verifies = max(verifies, value(f["charter_consensus_pacer_seconds_per_transaction"], "work", "verify"))
			compact += value(f["charter_consensus_compact_proposals_total"], "outcome", "rebuilt") +
				value(f["charter_consensus_compact_proposals_total"], "outcome", "fetched")
		}
		return caps >= consensus.PacerMinTxs && builds > 0 && verifies > 0 && compact > 0
	})

	// Timeouts by step: shown (at 0 or more) from the start; a stopped
	// validator's turns to propose end in propose timeouts on the others.
	fams = scrape(t, n0.MetricsAddr())
	if f := fams["charter_consensus_timeouts_total"]; f == nil || len(f.GetMetric()) != 4 {
		t.Fatalf("charter_consensus_timeouts_total: %v, want the steps propose, prevote, precommit, propose_extended", f)
	}
	before := value(fams["charter_consensus_timeouts_total"], "step", "propose")
	nodes[3].Stop()
	waitUntil(t, 60*time.Second, "a propose timeout and a round change on node 0", func() bool {
		f := scrape(t, n0.MetricsAddr())
		return value(f["charter_consensus_timeouts_total"], "step", "propose") > before &&
			value(f["charter_consensus_round_changes_total"]) > 0
	})
}
