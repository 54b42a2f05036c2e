package simnet

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// Environment variables read by RunSeeds.
const (
	// EnvSeed replays one seed: CHARTER_SEED=123 go test -run TestX ./pkg
	EnvSeed = "CHARTER_SEED"
	// EnvSoak selects the long run: CHARTER_SOAK=1.
	EnvSoak = "CHARTER_SOAK"
	// EnvSeeds overrides the number of seeds: CHARTER_SEEDS=5000.
	EnvSeeds = "CHARTER_SEEDS"
	// EnvSeedStart makes the seeds start elsewhere than 1, to split a long
	// run or explore new seeds: CHARTER_SEED_START=100001.
	EnvSeedStart = "CHARTER_SEED_START"
)

// Seeds returns the seeds a simulation test runs: only CHARTER_SEED if set;
// otherwise CHARTER_SEEDS of them if set, soak of them under
// CHARTER_SOAK=1, else normal of them; consecutive, from CHARTER_SEED_START
// (default 1).
func Seeds(normal, soak int) ([]int64, error) {
	if s := os.Getenv(EnvSeed); s != "" {
		seed, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: %w", EnvSeed, s, err)
		}
		return []int64{seed}, nil
	}
	count := normal
	if os.Getenv(EnvSoak) == "1" {
		count = soak
	}
	if s := os.Getenv(EnvSeeds); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s=%q: want a positive count", EnvSeeds, s)
		}
		count = n
	}
	start := int64(1)
	if s := os.Getenv(EnvSeedStart); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: %w", EnvSeedStart, s, err)
		}
		start = v
	}
	out := make([]int64, count)
	for i := range out {
		out[i] = start + int64(i)
	}
	return out, nil
}

// RunSeeds runs one simulation per seed (see Seeds), spread over
// GOMAXPROCS workers; each simulation is single-threaded and depends only
// on its seed. On failure it reports the lowest failing seed found and the
// command that replays it, and fails t. run must not share mutable state
// between seeds.
func RunSeeds(t testing.TB, normal, soak int, run func(seed int64) error) {
	t.Helper()
	seeds, err := Seeds(normal, soak)
	if err != nil {
		t.Fatal(err)
	}
	workers := runtime.GOMAXPROCS(0)
	if workers > len(seeds) {
		workers = len(seeds)
	}
	var (
		mu      sync.Mutex
		failed  bool
		badSeed int64
		badErr  error
		next    int
		wg      sync.WaitGroup
	)
	take := func() (int64, bool) {
		mu.Lock()
		defer mu.Unlock()
		if failed || next >= len(seeds) {
			return 0, false
		}
		s := seeds[next]
		next++
		return s, true
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seed, ok := take()
				if !ok {
					return
				}
				err := runGuarded(run, seed)
				if err != nil {
					mu.Lock()
					if !failed || seed < badSeed {
						badSeed, badErr = seed, err
					}
					failed = true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if failed {
		t.Fatalf("seed %d failed: %v\nreplay: %s=%d go test -run '^%s$' <package>", badSeed, badErr, EnvSeed, badSeed, t.Name())
	}
	t.Logf("%d seeds passed", len(seeds))
}

// runGuarded turns a panic in one simulation into an error, so the seed is
// still reported.
func runGuarded(run func(int64) error, seed int64) (err error) {
	defer func() {
		if r := recover(); r != nil {
			buf := make([]byte, 8<<10)
			buf = buf[:runtime.Stack(buf, false)]
			err = fmt.Errorf("panic: %v\n%s", r, buf)
		}
	}()
	return run(seed)
}
