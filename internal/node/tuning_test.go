package node

import (
	"crypto/ecdsa"
	"encoding/json"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/bft"
	"github.com/charter-ledger/charter/internal/consensus/poa"
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
	admin := adminKeys(t, nodes)
	_, tm0 := bftTiming(nodes[0].Node)
	if tm0 != bft.DefaultTiming() {
		t.Fatalf("timing before any change %+v, want the defaults %+v", tm0, bft.DefaultTiming())
	}
	enactAll(t, nodes, admin, map[string]int64{"bft.timeoutPropose": 3000, "bft.timeoutVote": 1000})
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

// adminKeys loads the admin account key of each node's organization.
func adminKeys(t *testing.T, nodes []*netNode) []*ecdsa.PrivateKey {
	t.Helper()
	dir := filepath.Dir(nodes[0].home)
	admin := make([]*ecdsa.PrivateKey, len(nodes))
	for k := range admin {
		key, err := identity.LoadNodeKey(filepath.Join(dir, "orgs", "org"+itoa(k), AdminAccountFile), nil)
		if err != nil {
			t.Fatal(err)
		}
		admin[k] = key
	}
	return admin
}

// enactAll proposes each parameter value by org 0 and has the
// organizations vote until each executes.
func enactAll(t *testing.T, nodes []*netNode, admin []*ecdsa.PrivateKey, values map[string]int64) {
	t.Helper()
	var ids []uint64
	for name, v := range values {
		ids = append(ids, propose(t, nodes[0].client, admin[0], system.ActSetParameter, name, big.NewInt(v)))
	}
	for _, id := range ids {
		for k := 0; k < len(nodes) && proposalStatus(t, nodes[0].Node, id) == system.ProposalOpen; k++ {
			r := sendOK(t, "vote", nodes[k].client, admin[k], system.GovernanceAddress, govCall(t, "vote", id, true))
			// The next look at the proposal sees this vote's block.
			waitUntil(t, 30*time.Second, "the vote's block on node 0", func() bool {
				return nodes[0].ledger.Head().Number.Cmp(r.BlockNumber) >= 0
			})
		}
	}
	waitUntil(t, 30*time.Second, "the changes executed", func() bool {
		for _, id := range ids {
			if proposalStatus(t, nodes[0].Node, id) != system.ProposalExecuted {
				return false
			}
		}
		return true
	})
}

// TestGovernedPOATiming: a poa network votes a new period and turn
// timeout; every node's core runs each from the boundary its change
// names, and the chain goes on.
func TestGovernedPOATiming(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	nodes := startNetworkParams(t, "poa", 3, json.RawMessage(`{"period":"300ms","turnTimeout":"1s","confirmations":1}`))
	admin := adminKeys(t, nodes)
	read := func(n *Node) (final uint64, period, turn time.Duration) {
		n.engine.(*consensus.Driver).WithCore(func(c consensus.Core) {
			pc := c.(*poa.Core)
			final = pc.Status().Final
			period, turn = pc.TimingAt(final + 1)
		})
		return final, period, turn
	}
	if _, p, tt := read(nodes[0].Node); p != 300*time.Millisecond || tt != time.Second {
		t.Fatalf("genesis timing: period %v, turn timeout %v", p, tt)
	}
	enactAll(t, nodes, admin, map[string]int64{"poa.period": 200, "poa.turnTimeout": 1500})
	reg, _, err := nodes[0].registry()
	if err != nil {
		t.Fatal(err)
	}
	changes := toConsensus(reg.ParamChanges())
	want := func(h uint64) (time.Duration, time.Duration) {
		p, tt := 300*time.Millisecond, time.Second
		if c, ok := consensus.ParamChangeAt(changes, h); ok {
			if v, ok := c.Values["poa.period"]; ok {
				p = time.Duration(v) * time.Millisecond
			}
			if v, ok := c.Values["poa.turnTimeout"]; ok {
				tt = time.Duration(v) * time.Millisecond
			}
		}
		return p, tt
	}
	last := changes[len(changes)-1].From
	if p, tt := want(last); p != 200*time.Millisecond || tt != 1500*time.Millisecond {
		t.Fatalf("changes %+v", changes)
	}
	after := 0
	waitUntil(t, 60*time.Second, "every node final past the last boundary", func() bool {
		done := true
		for i, n := range nodes {
			f, p, tt := read(n.Node)
			if wp, wt := want(f + 1); p != wp || tt != wt {
				t.Fatalf("node %d, final %d: period %v and turn timeout %v at %d, want %v and %v (changes %+v)", i, f, p, tt, f+1, wp, wt, changes)
			}
			if f+1 >= last {
				after++
			}
			done = done && f > last+2
		}
		return done
	})
	if after == 0 {
		t.Fatal("no sample after the change")
	}
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

// A node whose genesis holds a bad engine parameter does not start; the
// error names the field.
func TestNodeRefusesBadEngineParams(t *testing.T) {
	for _, tc := range []struct{ engine, params, want string }{
		{"bft", `{"timeoutVote":"5ms"}`, "consensus.params.timeoutVote: must be between 100ms and 30s, got 5ms"},
		{"poa", `{"turnTimeout":"2s","quorum":3}`, `consensus.params: unknown field "quorum"`},
	} {
		dir := t.TempDir()
		_, inits, err := InitNetwork(InitOptions{Dir: dir, Validators: 4, Engine: tc.engine, RPCPort: freePortBase(t, 4), P2PPort: freePortBase(t, 4), MetricsPort: freePortBase(t, 4)})
		if err != nil {
			t.Fatal(err)
		}
		// The genesis is edited after init, by hand.
		path := filepath.Join(inits[0].Home, GenesisFile)
		spec, err := chain.LoadSpec(path)
		if err != nil {
			t.Fatal(err)
		}
		spec.Consensus.Params = json.RawMessage(tc.params)
		raw, err := spec.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		hc, err := LoadHomeConfig(inits[0].Home)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := hc.NodeConfig(inits[0].Home, slog.New(slog.DiscardHandler))
		if err == nil {
			var n *Node
			if n, err = New(cfg); err == nil {
				if err = n.Start(); err == nil {
					n.Stop()
				}
			}
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s %s: err = %v, want one naming the field (%q)", tc.engine, tc.params, err, tc.want)
		}
		t.Logf("%s: %v", tc.engine, err)
	}
}
