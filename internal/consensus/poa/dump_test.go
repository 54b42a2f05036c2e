package poa

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"testing"
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
	s := newSimulation(seed, p)
	err = s.run()
	fmt.Printf("seed %d: %v\nparams: %s\n", seed, err, p)
	for _, n := range s.nodes {
		if n.core == nil {
			fmt.Printf("node %d role %d: down\n", n.idx, n.role)
			continue
		}
		c := n.core
		fmt.Printf("node %d role %d: %+v\n  stats %+v idle %d/%d\n", n.idx, n.role, c.Status(), c.Counters(), c.idle, c.timeout())
		for _, b := range c.sortedNodes() {
			fmt.Printf("  block %d at %v %x parent %x verified=%v connected=%v\n", b.height, b.bal, b.hash[:4], b.parent[:4], b.verified, c.connected(b))
		}
		for _, id := range sortedIDs(c.lastVote) {
			fmt.Printf("  last vote of %d: %+v\n", s.byID[id].idx, c.lastVote[id])
		}
	}
	for _, l := range s.log {
		fmt.Println(l)
	}
}
