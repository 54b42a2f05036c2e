package node

import (
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	dto "github.com/prometheus/client_model/go"
)

// sqlPost sends body to POST /api/v1/sql and decodes the answer.
func sqlPost(t *testing.T, tn *testNode, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post("http://"+tn.RPCAddr()+"/api/v1/sql", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("POST /api/v1/sql %s: %d, undecodable answer: %v", body, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

// TestSQLIndexOfANode runs a development node with --index: a transfer
// reaches the SQLite index in the data directory, POST /api/v1/sql
// answers it, writes are refused, and the index figures are on /metrics.
func TestSQLIndexOfANode(t *testing.T) {
	tn := startNodeWith(t, t.TempDir(), func(c *Config) { c.Index = &IndexConfig{}; c.MetricsAddr = "127.0.0.1:0" })
	if tn.Index() == nil {
		t.Fatal("a node started with an index config has no index")
	}
	to := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	tx := tn.sign(t, tn.accts[0].Key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 0, Gas: 21000,
		GasFeeCap: big.NewInt(2e9), GasTipCap: big.NewInt(1), To: &to, Value: big.NewInt(12345)})
	if err := tn.client.SendTransaction(t.Context(), tx); err != nil {
		t.Fatal(err)
	}
	rec := tn.waitReceipt(t, tx.Hash())
	waitUntil(t, 10*time.Second, "the index holds the transfer's block", func() bool {
		return tn.Index().Indexed() >= rec.BlockNumber.Uint64()
	})

	status, out := sqlPost(t, tn, `{"query":"SELECT block_number, to_addr, value FROM transactions WHERE hash = ?","args":["`+tx.Hash().Hex()+`"]}`)
	if status != http.StatusOK {
		t.Fatalf("select: %d %v", status, out)
	}
	rows, _ := out["rows"].([]any)
	if len(rows) != 1 {
		t.Fatalf("select returned %v, want one row", out)
	}
	row := rows[0].([]any)
	if got := row[0].(float64); uint64(got) != rec.BlockNumber.Uint64() {
		t.Fatalf("block_number %v, receipt says %d", row[0], rec.BlockNumber)
	}
	if !strings.EqualFold(row[1].(string), to.Hex()) || row[2] != "12345" {
		t.Fatalf("to_addr, value = %v, %v; want %s, 12345", row[1], row[2], to.Hex())
	}

	for _, bad := range []string{
		`{"query":"DELETE FROM transactions"}`,
		`{"query":"SELECT 1; SELECT 2"}`,
		`{"query":"PRAGMA table_info(blocks)"}`,
		`{"query":""}`,
		`not json`,
	} {
		if status, out := sqlPost(t, tn, bad); status != http.StatusBadRequest || out["detail"] == "" {
			t.Errorf("%s: %d %v, want 400 with a detail", bad, status, out)
		}
	}

	waitUntil(t, 10*time.Second, "/metrics shows the index at the transfer's block", func() bool {
		fams := scrape(t, tn.MetricsAddr())
		if value(fams["charter_index_height"]) < float64(rec.BlockNumber.Uint64()) || value(fams["charter_index_lag_blocks"]) < 0 {
			return false
		}
		// The transfer's block was committed while the node ran: its delay
		// to the index is observed.
		f := fams["charter_index_delay_seconds"]
		return f != nil && len(f.GetMetric()) == 1 && f.GetMetric()[0].GetHistogram().GetSampleCount() >= 1
	})
}

// TestIndexDelay: every block committed while the ring holds its time is
// observed once when the index reaches it; blocks indexed again, never
// committed here, or older than the ring are not observed.
func TestIndexDelay(t *testing.T) {
	d := newIndexDelay()
	count := func() uint64 {
		m := &dto.Metric{}
		if err := d.hist.Write(m); err != nil {
			t.Fatal(err)
		}
		return m.GetHistogram().GetSampleCount()
	}
	for h := uint64(1); h <= 5; h++ {
		d.committed(h)
	}
	d.indexed(3)
	if c := count(); c != 3 {
		t.Fatalf("after indexing 1..3: %d observations, want 3", c)
	}
	d.indexed(3)
	d.indexed(7) // 6 and 7 were never committed here
	if c := count(); c != 5 {
		t.Fatalf("after indexing up to 7: %d observations, want 5", c)
	}
	for h := uint64(8); h < 8+2*indexDelayRing; h++ {
		d.committed(h)
	}
	d.indexed(7 + 2*indexDelayRing)
	if c := count(); c != 5+indexDelayRing {
		t.Fatalf("after a lag of twice the ring: %d observations, want %d", c, 5+indexDelayRing)
	}
}

// TestSQLWithoutIndex: a node without an index says how to get one.
func TestSQLWithoutIndex(t *testing.T) {
	tn := startNode(t, t.TempDir())
	status, out := sqlPost(t, tn, `{"query":"SELECT 1"}`)
	if status != http.StatusNotImplemented || !strings.Contains(out["detail"].(string), "--index") {
		t.Fatalf("%d %v, want 501 naming --index", status, out)
	}
}
