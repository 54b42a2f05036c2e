package poa

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"testing"
)

func TestDebugSeed(t *testing.T) {
	s0 := os.Getenv("DEBUG_SEED")
	if s0 == "" {
		t.Skip()
	}
	seed, _ := strconv.ParseInt(s0, 10, 64)
	p := randomParams(rand.New(rand.NewSource(seed)))
	if os.Getenv("CHURN1") != "" {
		p.churn = 1
	}
	s := newSimulation(seed, p)
	err := s.run()
	fmt.Println("err:", err)
	fmt.Println(p)
	fmt.Printf("gov %d change %+v\n", s.govHeight, s.govChange.From)
	for _, n := range s.nodes {
		if n.core != nil {
			fmt.Printf("node %d role %d up %v status %+v stats %+v sched %d\n", n.idx, n.role, n.up, n.core.Status(), n.core.Stats(), len(n.core.sched.epochs))
			dumpTree(n.core)
			fmt.Printf("    idle=%d timeout=%d myVote=%+v\n", n.core.idle, n.core.timeout(), n.core.myVote)
			fmt.Printf("   lastVote: ")
			for _, id := range sortedIDs(n.core.lastVote) {
				fmt.Printf("%d:%+v ", s.byID[id].idx, n.core.lastVote[id])
			}
			fmt.Println()
		}
	}
}

func dumpTree(c *Core) {
	for _, n := range c.sortedNodes() {
		fmt.Printf("    h=%d bal=%v hash=%x parent=%x verified=%v verifying=%v connected=%v\n", n.height, n.bal, n.hash[:4], n.parent[:4], n.verified, n.verifying, c.connected(n))
	}
	fmt.Printf("    base=%d %x acked=%d limit=%d authFinal=%+v lastFetch=%v now=%d\n", c.base.height, c.base.hash[:4], c.ackedFinal, c.limit(), c.authFinal, c.lastFetch, c.now)
}
