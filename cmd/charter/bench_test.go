package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad bench flags: one line on stderr that names the flag, before any
// connection (the endpoint does not exist).
func TestBenchFlagErrors(t *testing.T) {
	rpc := "--rpc=http://127.0.0.1:1"
	for _, tc := range []struct {
		want string
		args []string
	}{
		{"--txs and --duration both", []string{"--txs", "10", "--duration", "5s", "--rate", "10"}},
		{"--duration needs --rate", []string{"--duration", "5s"}},
		{"--mix goes with --kind mixed", []string{"--mix", "transfer=100"}},
		{"add up to 90, want 100", []string{"--kind", "mixed", "--mix", "transfer=60,hot=30"}},
		{`unknown kind "nft"`, []string{"--kind", "mixed", "--mix", "transfer=60,nft=40"}},
		{"--runs and --compare-key go with --compare", []string{"--runs", "5"}},
		{"--compare runs public loads", []string{"--kind", "private-erc20", "--compare", "http://127.0.0.1:2"}},
		{"--runs 0 is outside", []string{"--compare", "http://127.0.0.1:2", "--runs", "0"}},
		{"--metrics \"localhost:9545\" is not an http://", []string{"--metrics", "localhost:9545"}},
		{"--compare-key", []string{"--compare", "http://127.0.0.1:2", "--compare-key", "/nonexistent/key"}},
	} {
		mustFail(t, tc.want, append([]string{"bench", rpc}, tc.args...)...)
	}
}

// --compare against a second node: alternating runs of the same load,
// each printed, then the medians and the ratios; --json holds them all.
func TestBenchCompare(t *testing.T) {
	a, b := startDevNode(t), startDevNode(t)
	out := filepath.Join(t.TempDir(), "cmp.json")
	html := filepath.Join(t.TempDir(), "cmp.html")
	stdout := mustRun(t, "bench", "--rpc", a.url, "--compare", b.url, "--runs", "2", "--kind", "mixed", "--mix", "transfer=50,hot=50",
		"--txs", "80", "--senders", "4", "--batch", "10", "--json", out, "--html", html)
	order := []string{"run 1 of 2, charter (" + a.url, "run 1 of 2, other (" + b.url, "run 2 of 2, charter", "run 2 of 2, other", "mixed, medians of 2 runs each", "charter/other: throughput"}
	at := 0
	for _, want := range order {
		i := strings.Index(stdout[at:], want)
		if i < 0 {
			t.Fatalf("output lacks %q after offset %d:\n%s", want, at, stdout)
		}
		at += i
	}
	if strings.Count(stdout, "hot      sent 40, confirmed 40, failed 0") != 4 {
		t.Fatalf("per-kind lines:\n%s", stdout)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Charter []struct{ Confirmed int } `json:"charter"`
		Other   []struct{ Confirmed int } `json:"other"`
		Ratio   struct{ TPS float64 }     `json:"ratio"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Charter) != 2 || len(c.Other) != 2 || c.Other[1].Confirmed != 80 || c.Ratio.TPS <= 0 {
		t.Fatalf("comparison %s", raw)
	}
	if page, err := os.ReadFile(html); err != nil || !strings.Contains(string(page), "submitted/s") {
		t.Fatalf("chart: %v", err)
	}
}
