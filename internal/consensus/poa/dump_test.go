package poa

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"testing"

	"github.com/charter-ledger/charter/internal/consensus"
)

// TestDumpSeed runs one simulation seed and prints every node's state at
// the end (tip, final, committed, promise, counters, block tree, last votes
// seen): CHARTER_DUMP_SEED=123 go test -run TestDumpSeed -v ./internal/consensus/poa/
// It is for reading a failure that CHARTER_SEED replays; skipped otherwise.
func TestDumpSeed(t *testing.T) {
	env := os.Getenv("CHARTER_DUMP_SEED")
	if env == "" {
		t.Skip("set CHARTER_DUMP_SEED")
	}
	seed, err := strconv.ParseInt(env, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	p := randomParams(rand.New(rand.NewSource(seed)))
	s, err := newSimulation(seed, p)
	if err != nil {
		t.Fatal(err)
	}
	err = s.run()
	fmt.Printf("seed %d: %v\nparams: %s\n", seed, err, p)
	index := map[consensus.NodeID]int{}
	for _, n := range s.nodes {
		index[n.ID] = n.Index
	}
	for _, n := range s.nodes {
		if n.Core == nil {
			fmt.Printf("node %d role %d: down\n", n.Index, s.roles[n])
			continue
		}
		c := n.Core.(*Core)
		fmt.Printf("node %d role %d: %+v\n  stats %+v idle %d/%d\n", n.Index, s.roles[n], c.Status(), c.Counters(), c.idle, c.timeout())
		for _, b := range c.sortedNodes() {
			fmt.Printf("  block %d at %v %x parent %x verified=%v connected=%v\n", b.height, b.bal, b.hash[:4], b.parent[:4], b.verified, c.connected(b))
		}
		for _, id := range sortedIDs(c.lastVote) {
			fmt.Printf("  last vote of %d: %+v\n", index[id], c.lastVote[id])
		}
	}
	for _, l := range s.s.Events() {
		fmt.Println(l)
	}
}
