package poa

import (
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

// An observer is a node whose key is in no validator set: it follows the
// chain by the authorities' seals and votes, and nothing it says counts.

// TestObserverFollowsAndNeverVotes: four authorities and one observer.
// The observer finalizes the very blocks the authorities finalize and
// sends nothing but catch-up requests: no vote, tip or block.
func TestObserverFollowsAndNeverVotes(t *testing.T) {
	const obs = 4
	cl := newCluster(t, 5, func(i int, c *Config) { c.Validators = ids(4) })
	sent := map[byte]int{}
	cl.drop = func(from, _ int, p []byte) bool {
		if from == obs && len(p) > 0 {
			sent[p[0]]++
		}
		return false
	}
	cl.settle()
	cl.tick(60)
	o := cl.cores[obs]
	if st := o.Status(); st.Final < 10 {
		t.Fatalf("observer final at %d after 60 ticks: %+v", st.Final, st)
	}
	for _, kind := range []byte{kindVote, kindTip, kindBlock} {
		if sent[kind] != 0 {
			t.Fatalf("observer sent %d messages of kind %d", sent[kind], kind)
		}
	}
	low := min(cl.leds[obs].Height(), cl.leds[0].Height())
	for h := uint64(1); h <= low; h++ {
		if a, b := blockAt(cl.leds[obs], h).Hash(), blockAt(cl.leds[0], h).Hash(); a != b {
			t.Fatalf("block %d: observer %s, authority %s", h, a, b)
		}
	}
	if o.myVote != nil {
		t.Fatalf("observer voted %+v", *o.myVote)
	}
}

// TestObserverVotesNeverCount: two of four authorities are cut off, so
// the two left lack a quorum (3 of 4). An observer injects votes for the
// very ballots they wait on, naming their tips: counted, they would make
// the quorum; they must not, and nothing is finalized.
func TestObserverVotesNeverCount(t *testing.T) {
	const obs = 4
	cl := newCluster(t, 5, func(i int, c *Config) { c.Validators = ids(4) })
	cl.settle()
	cl.tick(10)
	before := cl.cores[0].Status().Final
	live := func(i int) bool { return i < 2 || i == obs }
	cl.drop = func(from, to int, _ []byte) bool { return !live(from) || !live(to) }
	obsID := crypto.PubkeyToAddress(testKey(obs).PublicKey)
	for k := 0; k < 80; k++ {
		for i := 0; i < 2; i++ {
			v := cl.cores[i]
			forged := voteMsg{Height: v.promise.Height, Round: v.promise.Round, Tip: v.tip.tipMsg()}
			for j := 0; j < 2; j++ {
				cl.cores[j].Step(obsID, encode(kindVote, forged))
				cl.cores[j].Step(obsID, encode(kindTip, v.tip.tipMsg()))
			}
		}
		cl.tick(1)
	}
	for i := 0; i < 2; i++ {
		c := cl.cores[i]
		if st := c.Status(); st.Final > before+2 {
			t.Fatalf("authority %d finalized to %d (was %d) with an observer's votes", i, st.Final, before)
		}
		for b, tl := range c.tallies {
			if _, ok := tl.votes[obsID]; ok {
				t.Fatalf("authority %d counted the observer's vote for %v", i, b)
			}
		}
		for id, ev := range c.evidence {
			if _, ok := ev.voters[obsID]; ok {
				t.Fatalf("authority %d counted the observer's tip %s as commit evidence", i, id.hash)
			}
		}
		if _, ok := c.lastVote[obsID]; ok {
			t.Fatalf("authority %d keeps the observer's vote", i)
		}
	}
	// Healed, the four authorities move on, and the observer with them.
	cl.drop = nil
	cl.tick(80)
	if a, o := cl.cores[0].Status().Final, cl.cores[obs].Status().Final; a < before+5 || o+3 < a {
		t.Fatalf("after healing: authority final %d, observer %d (before %d)", a, o, before)
	}
}
