package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/node"
)

// charter init takes the engine's parameters inline or from a file, and
// refuses bad ones in one line naming the field, before writing anything.
func TestInitConsensusParams(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ engine, params, want string }{
		{"bft", `{"timeoutVote":"5ms"}`, "consensus.params.timeoutVote: must be between 100ms and 30s, got 5ms"},
		{"bft", `{"timeoutVotes":"1s"}`, `consensus.params: unknown field "timeoutVotes"`},
		{"poa", `{"confirmations":9}`, "consensus.params.confirmations: must be an integer between 0 and 5, got 9"},
		{"poa", `{"timeoutPropose":"1s"}`, `consensus.params: unknown field "timeoutPropose": the poa engine takes period, turnTimeout, confirmations`},
		{"bft", `not json`, "--consensus-params"},
	} {
		out := filepath.Join(dir, "bad")
		mustFail(t, tc.want, "init", "--validators", "4", "--consensus", tc.engine, "--consensus-params", tc.params, "--out", out)
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%s: init wrote %s though it refused the parameters", tc.params, out)
		}
	}

	file := filepath.Join(dir, "params.json")
	if err := os.WriteFile(file, []byte(`{"timeoutPropose":"3s","emptyBlockPeriod":"10s"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "init", "--validators", "4", "--consensus", "bft", "--consensus-params", file, "--out", filepath.Join(dir, "bft"))
	spec, err := chain.LoadSpec(filepath.Join(dir, "bft", node.GenesisFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strings.Fields(string(spec.Consensus.Params)), ""); got != `{"timeoutPropose":"3s","emptyBlockPeriod":"10s"}` {
		t.Fatalf("genesis consensus.params %s", got)
	}
	mustRun(t, "init", "--validators", "3", "--consensus", "poa", "--consensus-params", `{"confirmations":0}`, "--out", filepath.Join(dir, "poa"))
}
