package ledger

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/chain"
)

// growthRun commits `updates` balance updates, perBlock a height, to
// `accounts` accounts (the first pass creates them, the later ones
// update them), and returns the disk size after each pass and the mean
// time of Commit.
type growthRun struct {
	sizes  []uint64 // bytes on disk after each pass over the accounts
	commit time.Duration
	blocks int
}

func dirSize(t testing.TB, dir string) uint64 {
	var n uint64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += uint64(info.Size())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func runGrowth(t testing.TB, opts Options, accounts, updates, perBlock int) growthRun {
	t.Helper()
	dir := t.TempDir()
	spec, err := chain.DevSpec(5, 1000)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(dir, spec, opts, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()
	var run growthRun
	// A fixed permutation step spreads each block's updates over the trie.
	const step = 7919
	done := 0
	for done < updates {
		n := min(perBlock, updates-done)
		start := done
		head := l.Head()
		st, err := l.StateAt(head.Root)
		if err != nil {
			t.Fatal(err)
		}
		for k := start; k < start+n; k++ {
			i := k % accounts
			if k >= accounts { // later passes: scattered over existing accounts
				i = (k * step) % accounts
			}
			st.SetBalance(account(i), uint256.NewInt(uint64(k+1)), 0)
			st.SetNonce(account(i), uint64(k/accounts+1), 0)
		}
		block := buildNext(l, st)
		t0 := time.Now()
		if err := l.Commit(block, nil, st, nil); err != nil {
			t.Fatal(err)
		}
		run.commit += time.Since(t0)
		run.blocks++
		done += n
		if done%accounts == 0 {
			// The size of the stopped node's directory: what is in
			// memory (the window) is journaled to disk by Close.
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			run.sizes = append(run.sizes, dirSize(t, dir))
			if l, err = Open(dir, spec, opts, quiet); err != nil {
				t.Fatal(err)
			}
			if os.Getenv("XEXP") != "" {
				t.Logf("blocks %d chaindata %d statehistory %d commit %v", run.blocks, dirSize(t, filepath.Join(dir, "chaindata")), dirSize(t, filepath.Join(dir, "statehistory")), run.commit/time.Duration(run.blocks))
			}
		}
	}
	run.commit /= time.Duration(run.blocks)
	return run
}

func reportGrowth(t testing.TB, name string, run growthRun, accounts int) (perUpdate float64) {
	first := run.sizes[0]
	last := run.sizes[len(run.sizes)-1]
	updatesAfter := accounts * (len(run.sizes) - 1)
	perUpdate = float64(int64(last)-int64(first)) / float64(updatesAfter)
	curve := ""
	for i, s := range run.sizes {
		curve += fmt.Sprintf(" %d:%.1fMB", (i+1)*accounts, float64(s)/1e6)
	}
	t.Logf("%s: %d accounts; size after updates:%s; growth %.0f B per account update (%.0f B per transfer of 2 accounts); commit %v per height",
		name, accounts, curve, perUpdate, 2*perUpdate, run.commit.Round(10*time.Microsecond))
	return perUpdate
}

func growthSizes() (accounts, updates, perBlock int) {
	if os.Getenv("CHARTER_SOAK") == "1" {
		return 100_000, 1_000_000, 1000
	}
	if os.Getenv("XEXP_SMALL") == "1" {
		return 2_000, 10_000, 500
	}
	// The first pass (150 heights) fills the window of 128 heights the
	// path scheme holds in memory and journals at Close.
	return 3_000, 30_000, 20
}

// Under the path scheme the store does not grow with updates of existing
// accounts: after the first pass has created them, nine more passes of
// updates leave it within 1.5 times its size (CHARTER_SOAK=1: 100,000
// accounts and 1,000,000 updates, else 5,000 and 50,000).
func TestDiskGrowthBounded(t *testing.T) {
	accounts, updates, perBlock := growthSizes()
	window := uint64(DefaultStateHistory)
	if os.Getenv("XEXP_ARCHIVE") == "1" {
		window = StateArchive
	}
	if w := os.Getenv("XEXP_WINDOW"); w != "" {
		fmt.Sscan(w, &window)
	}
	buffer := 1 // MB: the small run's state is written out as a large one's
	if os.Getenv("CHARTER_SOAK") == "1" {
		buffer = 0
	}
	run := runGrowth(t, Options{StateHistory: window, CacheMB: 32, TrieCacheMB: 32, StateBufferMB: buffer}, accounts, updates, perBlock)
	reportGrowth(t, "path", run, accounts)
	// The small run measures from its second pass, when the window in
	// memory (journaled at Close) holds updates as it does from then on.
	first, last := run.sizes[0], run.sizes[len(run.sizes)-1]
	if os.Getenv("CHARTER_SOAK") != "1" {
		first = run.sizes[1]
	}
	if float64(last) > 1.5*float64(first) {
		t.Fatalf("store grew from %d to %d bytes (more than 1.5x) over %d updates of %d accounts", first, last, updates, accounts)
	}
	if os.Getenv("CHARTER_SOAK") == "1" {
		runHash := runGrowth(t, Options{StateHistory: StateArchive, CacheMB: 32, TrieCacheMB: 32}, accounts, updates, perBlock)
		reportGrowth(t, "hash (archive)", runHash, accounts)
	}
}
