package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchAgainstDev runs `charter bench` against `charter dev` as a user
// would and checks the JSON it writes (INTERFACE.md's fields).
func TestBenchAgainstDev(t *testing.T) {
	p := startDev(t)
	for _, kind := range []string{"transfer", "erc20"} {
		out := filepath.Join(t.TempDir(), kind+".json")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, charterBin, "bench", "--rpc", p.url, "--txs", "400", "--senders", "25", "--kind", kind, "--json", out)
		stdout, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("charter bench --kind %s: %v\n%s", kind, err, stdout)
		}
		if !strings.Contains(string(stdout), "throughput") {
			t.Fatalf("no summary printed: %s", stdout)
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Kind      string             `json:"kind"`
			Sent      int                `json:"sent"`
			Confirmed int                `json:"confirmed"`
			Failed    int                `json:"failed"`
			TPS       float64            `json:"tps"`
			Latency   map[string]float64 `json:"latency_ms"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			t.Fatalf("bench JSON: %v\n%s", err, raw)
		}
		if res.Kind != kind || res.Sent != 400 || res.Confirmed != 400 || res.Failed != 0 || res.TPS <= 0 {
			t.Fatalf("bench result %+v", res)
		}
		l := res.Latency
		if !(l["p50"] > 0 && l["p50"] <= l["p95"] && l["p95"] <= l["p99"] && l["p99"] <= l["max"]) {
			t.Fatalf("latency percentiles out of order: %v", l)
		}
	}
	// Bad input is one line and a non-zero exit.
	out, err := exec.Command(charterBin, "bench", "--rpc", p.url, "--kind", "nft").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--kind") || strings.Count(strings.TrimSpace(string(out)), "\n") > 0 {
		t.Fatalf("bad --kind: %v %q", err, out)
	}
}
