package node

import (
	"crypto/ecdsa"
	"encoding/json"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/bft"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/system"
)

// bftTiming reads the height in progress and the timing in force at it
// from a node's running bft engine.
func bftTiming(n *Node) (h uint64, tm bft.Timing) {
	n.engine.(*consensus.Driver).WithCore(func(c consensus.Core) {
		if c != nil {
			h, tm = c.(*bft.Core).TimingInForce()
		}
	})
	return h, tm
}

// TestGovernedBFTTimeouts: a 4-organization bft network votes new
// timeouts; every node takes each at the epoch boundary its change names,
// not a height before or after.
func TestGovernedBFTTimeouts(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	nodes := startNetwork(t, "bft", 4)
	dir := filepath.Dir(nodes[0].home)
	admin := make([]*ecdsa.PrivateKey, 4)
	for k := range admin {
		key, err := identity.LoadNodeKey(filepath.Join(dir, "orgs", "org"+itoa(k), AdminAccountFile), nil)
		if err != nil {
			t.Fatal(err)
		}
		admin[k] = key
	}
	_, tm0 := bftTiming(nodes[0].Node)
	if tm0 != bft.DefaultTiming() {
		t.Fatalf("timing before any change %+v, want the defaults %+v", tm0, bft.DefaultTiming())
	}
	c0 := nodes[0].client
	ids := []uint64{
		propose(t, c0, admin[0], system.ActSetParameter, "bft.timeoutPropose", big.NewInt(3000)),
		propose(t, c0, admin[0], system.ActSetParameter, "bft.timeoutVote", big.NewInt(1000)),
	}
	for _, id := range ids {
		for k := 0; k < 4 && proposalStatus(t, nodes[0].Node, id) == system.ProposalOpen; k++ {
			sendOK(t, "vote", nodes[k].client, admin[k], system.GovernanceAddress, govCall(t, "vote", id, true))
		}
	}
	waitUntil(t, 30*time.Second, "both changes executed", func() bool {
		return proposalStatus(t, nodes[0].Node, ids[0]) == system.ProposalExecuted && proposalStatus(t, nodes[0].Node, ids[1]) == system.ProposalExecuted
	})
	reg, _, err := nodes[0].registry()
	if err != nil {
		t.Fatal(err)
	}
	changes := reg.ParamChanges()
	if len(changes) == 0 {
		t.Fatal("no engine parameter change scheduled")
	}
	epoch := reg.Policy().EpochLength
	want := func(h uint64) bft.Timing {
		tm := bft.DefaultTiming()
		if c, ok := consensus.ParamChangeAt(toConsensus(changes), h); ok {
			tm = tm.With(c.Values)
		}
		return tm
	}
	last := changes[len(changes)-1]
	for _, c := range changes {
		if c.From%epoch != 0 {
			t.Fatalf("change %+v not at an epoch boundary (epoch %d)", c, epoch)
		}
	}
	if final := want(last.From); final.TimeoutPropose != 3*time.Second || final.TimeoutVote != time.Second {
		t.Fatalf("timing from %d would be %+v", last.From, final)
	}
	// Every node, at every height it is seen at, runs the timing in force
	// there; before the first change the defaults.
	seenBefore, seenAfter := 0, 0
	waitUntil(t, 60*time.Second, "every node past the last boundary", func() bool {
		done := true
		for i, n := range nodes {
			h, tm := bftTiming(n.Node)
			if tm != want(h) {
				t.Fatalf("node %d at height %d runs %+v, want %+v (changes %+v)", i, h, tm, want(h), changes)
			}
			if h < changes[0].From {
				seenBefore++
			} else if h >= last.From {
				seenAfter++
			}
			done = done && h > last.From
		}
		return done
	})
	if seenBefore == 0 || seenAfter == 0 {
		t.Fatalf("saw %d samples before the change and %d after", seenBefore, seenAfter)
	}
	// The chain goes on with the new timing.
	h := nodes[0].ledger.Head().Number.Uint64()
	waitUntil(t, 30*time.Second, "blocks after the change", func() bool { return nodes[3].ledger.Head().Number.Uint64() >= h+3 })
}

func toConsensus(changes []system.ParamChange) []consensus.ParamChange {
	out := make([]consensus.ParamChange, len(changes))
	for i, c := range changes {
		out[i] = consensus.ParamChange{From: c.From, Values: c.Map()}
	}
	return out
}

// TestBFTEmptyBlockPeriod: an idle bft network whose genesis sets an empty
// block period makes an empty block only every period (not every block
// time), and a transaction does not wait for the period.
func TestBFTEmptyBlockPeriod(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	const period = 4 * time.Second
	nodes := startNetworkParams(t, "bft", 4, json.RawMessage(`{"blockTime":"100ms","emptyBlockPeriod":"4s"}`))
	if _, tm := bftTiming(nodes[0].Node); tm.EmptyBlockPeriod != period || tm.BlockTime != 100*time.Millisecond {
		t.Fatalf("timing %+v", tm)
	}
	head := func() uint64 { return nodes[0].ledger.Head().Number.Uint64() }
	waitUntil(t, 30*time.Second, "a first block", func() bool { return head() >= 1 })
	// Two idle blocks after one just made take two periods; at the block
	// time they would take a fraction of a second.
	h := head()
	waitUntil(t, 30*time.Second, "the next idle block", func() bool { return head() > h })
	h, start := head(), time.Now()
	waitUntil(t, 30*time.Second, "two more idle blocks", func() bool { return head() >= h+2 })
	if elapsed := time.Since(start); elapsed < 2*period-500*time.Millisecond {
		t.Fatalf("two idle blocks in %v; the empty block period is %v", elapsed, period)
	}
	for i := uint64(1); i <= 2; i++ {
		if b := nodes[0].ledger.BlockByNumber(h + i); b == nil || len(b.Transactions()) != 0 {
			t.Fatalf("idle block %d: %v", h+i, b)
		}
	}
	// Right after an idle block, a transaction is sealed in the next one,
	// well before the period is over.
	h = head()
	waitUntil(t, 30*time.Second, "the next idle block", func() bool { return head() > h })
	h, start = head(), time.Now()
	devs, err := chain.DevAccounts(1)
	if err != nil {
		t.Fatal(err)
	}
	r := sendOK(t, "transfer", nodes[1].client, devs[0].Key, common.Address{9}, nil)
	if elapsed := time.Since(start); r.BlockNumber.Uint64() != h+1 || elapsed >= period-time.Second {
		t.Fatalf("a transfer sent after block %d was sealed in block %d after %v (period %v)", h, r.BlockNumber, elapsed, period)
	}
}
