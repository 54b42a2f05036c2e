package node

import (
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestStateSyncVersusReplay measures how long a validator whose data
// directory is lost takes to rejoin a 4-node bft network: replaying
// every block from the genesis, then by state sync from the peers'
// snapshot. Run it with
//
//	CHARTER_SOAK=1 [CHARTER_SOAK_ACCOUNTS=N] [CHARTER_SOAK_HEIGHT=H] go test ./internal/node -run TestStateSyncVersusReplay -v -timeout 2h
//
// N accounts are created by transfers (default 20000) and the chain is
// driven to at least height H (default 10000) before the measurements.
func TestStateSyncVersusReplay(t *testing.T) {
	if os.Getenv("CHARTER_SOAK") == "" {
		t.Skip("set CHARTER_SOAK=1 to run the long state sync measurement")
	}
	accounts := envInt("CHARTER_SOAK_ACCOUNTS", 20000)
	minHeight := uint64(envInt("CHARTER_SOAK_HEIGHT", 10000))
	every := uint64(envInt("CHARTER_SOAK_EVERY", 500))
	nodes := startSnapshotNetwork(t, "bft", 4, every)
	t0 := time.Now()
	// Three senders, each through its own node, 2000 transfers a round.
	for done := 0; done < accounts; {
		var wg sync.WaitGroup
		for s := 0; s < 3; s++ {
			n := min(2000, (accounts-done+2)/3)
			wg.Add(1)
			go func(s, n int) {
				defer wg.Done()
				fillState(t, nodes[s], s, n)
			}(s, n)
		}
		wg.Wait()
		done += 3 * min(2000, (accounts-done+2)/3)
		t.Logf("%d accounts created, head %d, %s", done, nodes[0].Ledger().Head().Number.Uint64(), time.Since(t0).Round(time.Second))
	}
	for nodes[0].Ledger().Head().Number.Uint64() < minHeight {
		fillState(t, nodes[0], 3, 50)
	}
	head := nodes[0].Ledger().Head().Number.Uint64()
	snap := waitSnapshots(t, nodes[:3], head-head%every)
	t.Logf("chain at %d after %s; snapshot at %d", head, time.Since(t0).Round(time.Second), snap)

	home := nodes[3].home
	nodes[3].Stop()
	dataDir := homeDataDir(t, home)
	measure := func(mode string) time.Duration {
		if err := os.RemoveAll(dataDir); err != nil {
			t.Fatal(err)
		}
		target := nodes[0].Ledger().Head().Number.Uint64()
		start := time.Now()
		nd := startHomeNode(t, home, mode, func(c *Config) {
			c.Snapshots = SnapshotConfig{Sync: mode, SyncWait: time.Minute}
		})
		waitUntil(t, 2*time.Hour, mode+" join reaches height "+strconv.FormatUint(target, 10), func() bool {
			return nd.Ledger().Head().Number.Uint64() >= target
		})
		took := time.Since(start)
		from := uint64(1)
		if st := nd.StateSync(); st != nil {
			t.Logf("%s: state sync %+v", mode, *st)
			from = st.Height
		}
		agreeFrom(t, []*netNode{nodes[0], nodes[1], nodes[2], nd}, from)
		nd.Stop()
		return took
	}
	replay := measure(SyncGenesis)
	ss := measure(SyncSnapshot)
	t.Logf("MEASURE accounts=%d height=%d replay=%s statesync=%s", accounts, head, replay.Round(time.Millisecond), ss.Round(time.Millisecond))
}
