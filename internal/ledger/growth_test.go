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
	defer l.Close()
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
			// The size of the running node's directory (the window
			// is in memory).
			run.sizes = append(run.sizes, dirSize(t, dir))
			if testing.Verbose() {
				t.Logf("%d updates, %d heights: %d bytes on disk, commit %v per height", done, run.blocks, run.sizes[len(run.sizes)-1], run.commit/time.Duration(run.blocks))
			}
		}
	}
	run.commit /= time.Duration(run.blocks)
	return run
}

func reportGrowth(t testing.TB, name string, run growthRun, accounts int) (perUpdate float64) {
	// Growth over the second half of the run (see TestDiskGrowthBounded).
	half := len(run.sizes) / 2
	first := run.sizes[half]
	last := run.sizes[len(run.sizes)-1]
	updatesAfter := accounts * (len(run.sizes) - 1 - half)
	perUpdate = float64(int64(last)-int64(first)) / float64(updatesAfter)
	curve := ""
	for i, s := range run.sizes {
		curve += fmt.Sprintf(" %d:%.1fMB", (i+1)*accounts, float64(s)/1e6)
	}
	t.Logf("%s: %d accounts; size after updates:%s; growth over the second half %.0f B per account update (%.0f B per transfer of 2 accounts); commit %v per height",
		name, accounts, curve, perUpdate, 2*perUpdate, run.commit.Round(10*time.Microsecond))
	return perUpdate
}

func growthSizes() (accounts, updates, perBlock int) {
	if os.Getenv("CHARTER_SOAK") == "1" {
		return 100_000, 1_000_000, 1000
	}
	return 10_000, 100_000, 500
}

// Under the path scheme the store does not grow with updates of existing
// accounts: after the first pass has created them, nine more passes of
// updates leave it within 1.5 times its size. CHARTER_SOAK=1: 100,000
// accounts, 1,000,000 updates, 1,000 a height (CHARTER_SOAK_HASH=1: the
// same run under the hash scheme follows, for comparison); else 2,000
// accounts, 100,000 updates, 500 a height, the state written to disk
// every 20 heights, measured from the middle of the run (the curve is
// logged with -v).
func TestDiskGrowthBounded(t *testing.T) {
	accounts, updates, perBlock := growthSizes()
	window := uint64(DefaultStateHistory)
	opts := Options{StateHistory: window, CacheMB: 32, TrieCacheMB: 32}
	if os.Getenv("CHARTER_SOAK") != "1" {
		// The small run's state would stay in memory: it is written out
		// as often as a large one's is.
		opts.StateBufferMB, opts.StateFlushHeights = 1, 20
	}
	run := runGrowth(t, opts, accounts, updates, perBlock)
	reportGrowth(t, "path", run, accounts)
	// The first passes are not on disk yet (the window and the write
	// buffer hold them), and a small store is mostly pebble's fixed
	// overhead (two memtables of write-ahead log, level files filling
	// up), which the first half of the run reaches: the second half must
	// not grow.
	first, last := run.sizes[len(run.sizes)/2], run.sizes[len(run.sizes)-1]
	if float64(last) > 1.5*float64(first) {
		t.Errorf("store grew from %d to %d bytes (more than 1.5x) over %d updates of %d accounts", first, last, updates, accounts)
	}
	if os.Getenv("CHARTER_SOAK_HASH") == "1" {
		runHash := runGrowth(t, Options{StateHistory: StateArchive, CacheMB: 32, TrieCacheMB: 32}, accounts, updates, perBlock)
		reportGrowth(t, "hash (archive)", runHash, accounts)
	}
}

// BenchmarkCommitHeight: one op is the commit of a height of 200 balance
// updates scattered over 10,000 existing accounts, under the path scheme
// (window of 128 heights) and the hash scheme (archive).
func BenchmarkCommitHeight(b *testing.B) {
	const accounts, perBlock = 10_000, 200
	for _, c := range []struct {
		name string
		opts Options
	}{{"path", Options{CacheMB: 64, TrieCacheMB: 64}}, {"hash", Options{StateHistory: StateArchive, CacheMB: 64, TrieCacheMB: 64}}} {
		b.Run(c.name, func(b *testing.B) {
			spec, err := chain.DevSpec(5, 1000)
			if err != nil {
				b.Fatal(err)
			}
			l, err := Open(b.TempDir(), spec, c.opts, quiet)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			next := func(k0 int, n int) {
				st, err := l.StateAt(l.Head().Root)
				if err != nil {
					b.Fatal(err)
				}
				for k := k0; k < k0+n; k++ {
					st.SetBalance(account((k*7919)%accounts), uint256.NewInt(uint64(k+1)), 0)
				}
				block := buildNext(l, st)
				b.StartTimer()
				err = l.Commit(block, nil, st, nil)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			for k := 0; k < accounts; k += 1000 {
				next(k, 1000)
			}
			b.ResetTimer()
			for i := range b.N {
				next(accounts+i*perBlock, perBlock)
			}
		})
	}
}
