package node

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
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
// snapshot while one of the three peers serves corrupted chunks (they
// must be refused and taken from the others). After each join the node
// must agree with the others on every block from where it started to
// some heights past the one it joined at. Run it with
//
//	CHARTER_SOAK=1 [CHARTER_SOAK_ACCOUNTS=N] [CHARTER_SOAK_HEIGHT=H] [CHARTER_SOAK_BLOCKMS=MS] [CHARTER_SOAK_RUNS=R] go test ./internal/node -run TestStateSyncVersusReplay -v -timeout 2h
//
// N accounts are created by transfers (default 20000) and the chain,
// with a bft block time of MS milliseconds (default 50), is driven to at
// least height H (default 10000) before the measurements, which run R
// times each (default 1), alternating.
func TestStateSyncVersusReplay(t *testing.T) {
	if os.Getenv("CHARTER_SOAK") == "" {
		t.Skip("set CHARTER_SOAK=1 to run the long state sync measurement")
	}
	accounts := envInt("CHARTER_SOAK_ACCOUNTS", 20000)
	minHeight := uint64(envInt("CHARTER_SOAK_HEIGHT", 10000))
	every := uint64(envInt("CHARTER_SOAK_EVERY", 500))
	blockMs := uint64(envInt("CHARTER_SOAK_BLOCKMS", 50))
	runs := envInt("CHARTER_SOAK_RUNS", 1)
	nodes := startSnapshotNetworkWith(t, "bft", 4, every, json.RawMessage(fmt.Sprintf(`{"blockTime":"%dms"}`, blockMs)))
	corrupt := nodes[2].Self()
	served := corruptChunksFrom(t, corrupt)
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
	// Then the empty blocks of every block time, up to the height.
	next := uint64(0)
	waitUntil(t, 2*time.Hour, "height "+strconv.FormatUint(minHeight, 10), func() bool {
		h := nodes[0].Ledger().Head().Number.Uint64()
		if h >= next {
			t.Logf("head %d, %s", h, time.Since(t0).Round(time.Second))
			next = h + 1000
		}
		return h >= minHeight
	})
	head := nodes[0].Ledger().Head().Number.Uint64()
	snap := waitSnapshots(t, nodes[:3], head-head%every)
	t.Logf("chain at %d after %s; snapshot at %d", head, time.Since(t0).Round(time.Second), snap)

	home := nodes[3].home
	nodes[3].Stop()
	dataDir := homeDataDir(t, home)
	var synced SyncStats
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
			checkCorruptRefused(t, st, corrupt, served.Load())
			from, synced = st.Height, *st
		} else if mode == SyncSnapshot {
			t.Fatal("the node did not state sync")
		}
		// Every later block: the joined node follows the network for a
		// while and must hold the same block at every height.
		fillState(t, nodes[1], 1, 20)
		later := nodes[1].Ledger().Head().Number.Uint64() + 20
		waitUntil(t, 5*time.Minute, mode+" node follows to "+strconv.FormatUint(later, 10), func() bool {
			return nd.Ledger().Head().Number.Uint64() >= later
		})
		agreeFrom(t, []*netNode{nodes[0], nodes[1], nodes[2], nd}, from)
		t.Logf("%s: joined at %d in %s, agrees on heights %d..%d", mode, target, took.Round(time.Millisecond), from, later)
		nd.Stop()
		return took
	}
	// Runs alternate, so that the machine's load weighs on both alike.
	var replays, syncs []time.Duration
	for i := 0; i < runs; i++ {
		replays = append(replays, measure(SyncGenesis))
		syncs = append(syncs, measure(SyncSnapshot))
		t.Logf("run %d: replay %s, state sync %s (chunks %d, refused %d from %v)", i+1, replays[i].Round(time.Millisecond),
			syncs[i].Round(time.Millisecond), synced.Chunks, synced.Refused, synced.BadPeers)
	}
	median := func(d []time.Duration) time.Duration {
		d = slices.Clone(d)
		slices.Sort(d)
		return d[len(d)/2]
	}
	t.Logf("MEASURE accounts=%d height=%d blockms=%d runs=%d replay=%s (median of %v) statesync=%s (median of %v) chunks=%d refused=%d badpeers=%v (corrupt peer %s served %d)",
		accounts, head, blockMs, runs, median(replays).Round(time.Millisecond), replays, median(syncs).Round(time.Millisecond), syncs,
		synced.Chunks, synced.Refused, synced.BadPeers, corrupt, served.Load())
}
