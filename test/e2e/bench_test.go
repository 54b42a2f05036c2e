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

// TestBenchPrivateERC20 runs `charter bench --kind private-erc20
// --with-public` against a 4-organization bft testnet as a user would: the
// token in a privacy group of the first two organizations, its senders
// added to them by their admins, private transfers through both
// organizations' nodes, then public ERC-20 transfers through the same
// nodes, and checks the JSON both write.
func TestBenchPrivateERC20(t *testing.T) {
	dir := initNetwork(t, "bft", 4, "--orgs", "4")
	runTestnet(t, dir)
	out := filepath.Join(t.TempDir(), "private.json")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, charterBin, "bench", "--kind", "private-erc20", "--net", dir, "--with-public",
		"--txs", "300", "--senders", "10", "--json", out)
	stdout, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("charter bench --kind private-erc20: %v\n%s", err, stdout)
	}
	if !strings.Contains(string(stdout), "submission to private receipt") || !strings.Contains(string(stdout), "private/public: throughput") {
		t.Fatalf("no summary printed: %s", stdout)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		Kind      string             `json:"kind"`
		Endpoints int                `json:"endpoints"`
		Sent      int                `json:"sent"`
		Confirmed int                `json:"confirmed"`
		Failed    int                `json:"failed"`
		TPS       float64            `json:"tps"`
		Latency   map[string]float64 `json:"latency_ms"`
	}
	var res struct {
		Private  result  `json:"private"`
		Public   result  `json:"public"`
		TPSRatio float64 `json:"tps_ratio"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("bench JSON: %v\n%s", err, raw)
	}
	for kind, r := range map[string]result{"private-erc20": res.Private, "erc20": res.Public} {
		// Both runs went through the two organizations' nodes only.
		if r.Kind != kind || r.Endpoints != 2 || r.Sent != 300 || r.Confirmed != 300 || r.Failed != 0 || r.TPS <= 0 {
			t.Fatalf("%s result %+v", kind, r)
		}
		l := r.Latency
		if !(l["p50"] > 0 && l["p50"] <= l["p95"] && l["p95"] <= l["p99"] && l["p99"] <= l["max"]) {
			t.Fatalf("%s latency percentiles out of order: %v", kind, l)
		}
	}
	if res.TPSRatio <= 0 {
		t.Fatalf("tps_ratio %v", res.TPSRatio)
	}
	// A second run finds the group, the senders' roles and their private
	// nonces where the first left them.
	stdout, err = exec.CommandContext(ctx, charterBin, "bench", "--kind", "private-erc20", "--net", dir, "--txs", "100", "--senders", "10").CombinedOutput()
	if err != nil || !strings.Contains(string(stdout), "confirmed 100, failed 0") {
		t.Fatalf("second private run: %v\n%s", err, stdout)
	}
	// Without the group's nodes: one line, non-zero exit.
	o, err := exec.Command(charterBin, "bench", "--kind", "private-erc20", "--rpc", "http://127.0.0.1:1").CombinedOutput()
	if err == nil || !strings.Contains(string(o), "--net DIR") || strings.Count(strings.TrimSpace(string(o)), "\n") > 0 {
		t.Fatalf("private-erc20 without --net: %v %q", err, o)
	}
}
