package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/node"
)

// TestInitObserversAndReadTierJoin: `charter init --observers` on bft and
// poa makes the observers the nodes of a read-tier organization, outside
// the validator set; `charter join --tier read` prepares an organization
// whose node is an observer, and prints a proposal without --validator.
func TestInitObserversAndReadTierJoin(t *testing.T) {
	dir := t.TempDir()
	for _, engine := range []string{"bft", "poa"} {
		out := mustRun(t, "init", "--validators", "4", "--observers", "2", "--consensus", engine, "--out", filepath.Join(dir, engine))
		if !strings.Contains(out, "4 validators and 2 observer(s) in 5 organizations") {
			t.Fatalf("%s: init does not count the observers:\n%s", engine, out)
		}
		if n := len(regexp.MustCompile(`(?m)^  node[45] +observers observer `).FindAllString(out, -1)); n != 2 {
			t.Fatalf("%s: %d observer lines of the read-tier organization:\n%s", engine, n, out)
		}
		spec, err := chain.LoadSpec(filepath.Join(dir, engine, node.GenesisFile))
		if err != nil {
			t.Fatal(err)
		}
		if o := spec.Org(node.ObserverOrg); o == nil || o.Tier != chain.TierRead {
			t.Fatalf("%s: organization %s: %+v", engine, node.ObserverOrg, o)
		}
		if len(spec.Consensus.Validators) != 4 || len(spec.Consensus.Params) != 0 {
			t.Fatalf("%s: validators %d, params %s", engine, len(spec.Consensus.Validators), spec.Consensus.Params)
		}
	}
	// Raft keeps its learners in the validators' organizations.
	out := mustRun(t, "init", "--validators", "3", "--observers", "1", "--consensus", "raft", "--out", filepath.Join(dir, "raft"))
	if !strings.Contains(out, "3 validators and 1 observer(s) in 3 organizations") {
		t.Fatalf("raft observers:\n%s", out)
	}

	net := filepath.Join(dir, "bft")
	out = mustRun(t, "join", "--genesis", filepath.Join(net, node.GenesisFile), "--peers", filepath.Join(net, node.PeersFile),
		"--org", "auditor", "--tier", "read", "--out", filepath.Join(dir, "auditor"))
	if !strings.Contains(out, "--tier read") || strings.Contains(out, "--validator") || !strings.Contains(out, "follows the chain as an observer") {
		t.Fatalf("join --tier read:\n%s", out)
	}
	out = mustRun(t, "join", "--genesis", filepath.Join(net, node.GenesisFile), "--peers", filepath.Join(net, node.PeersFile),
		"--org", "member", "--out", filepath.Join(dir, "member"))
	if !strings.Contains(out, "--tier validate") || !strings.Contains(out, "--validator 0x") {
		t.Fatalf("join:\n%s", out)
	}
	mustFail(t, `--tier "audit": want validate, write or read`, "join", "--genesis", filepath.Join(net, node.GenesisFile),
		"--peers", filepath.Join(net, node.PeersFile), "--org", "x", "--tier", "audit", "--out", filepath.Join(dir, "x"))
}
