package simnet

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// Environment variables read by Seeds, RunSeeds and Seed.
const (
	// EnvSeed replays one seed: CHARTER_SEED=123 go test -run TestX ./pkg
	EnvSeed = "CHARTER_SEED"
	// EnvSoak selects the long run: CHARTER_SOAK=1.
	EnvSoak = "CHARTER_SOAK"
	// EnvSeeds overrides the number of seeds: CHARTER_SEEDS=5000.
	EnvSeeds = "CHARTER_SEEDS"
	// EnvSeedStart fixes the first seed of every seed range in the run
	// (to repeat a run, or to split a long one): CHARTER_SEED_START=100001.
	// Unset, each test process draws it at random (see Start).
	EnvSeedStart = "CHARTER_SEED_START"
)

// maxRandomStart bounds the random first seed: far more ranges than will
// ever run, and numbers short enough to type.
const maxRandomStart = 1_000_000_000_000

var (
	drawn struct {
		once sync.Once
		seed int64
	}
	announced sync.Once
)

// Start returns the first seed of this run's seed ranges: CHARTER_SEED_START
// if set, else a number drawn at random once per process, so that every run
// explores schedules no earlier run tried. The first call prints it on
// stderr with how to repeat the run. (go test shows that line with -v or
// -json, or when the package fails; ./test.sh draws the start itself and
// prints it, so that it shows on success too.)
func Start() (int64, error) {
	if s := os.Getenv(EnvSeedStart); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s=%q: want a seed (an integer)", EnvSeedStart, s)
		}
		announced.Do(func() { fmt.Fprintf(os.Stderr, "simnet: seeds start at %d (%s)\n", v, EnvSeedStart) })
		return v, nil
	}
	drawn.once.Do(func() { drawn.seed = 1 + rand.Int64N(maxRandomStart) })
	announced.Do(func() {
		fmt.Fprintf(os.Stderr, "simnet: seeds start at %d, drawn at random: %s=%d repeats this run, %s=n replays one seed\n",
			drawn.seed, EnvSeedStart, drawn.seed, EnvSeed)
	})
	return drawn.seed, nil
}

// Seeds returns the seeds a simulation test runs: only CHARTER_SEED if set;
// otherwise CHARTER_SEEDS of them if set, soak of them under
// CHARTER_SOAK=1, else normal of them; consecutive from Start.
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
	first, err := Start()
	if err != nil {
		return nil, err
	}
	out := make([]int64, count)
	for i := range out {
		out[i] = first + int64(i)
	}
	return out, nil
}

// Seed returns the one seed of a randomized test that runs a single
// schedule (the multi-process kill -9 test): CHARTER_SEED if set, else
// Start. It logs the seed, and if t fails, the command that runs the same
// schedule again.
func Seed(t testing.TB) int64 {
	t.Helper()
	seeds, err := Seeds(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	seed := seeds[0]
	t.Logf("seed %d", seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d failed\nreplay: %s", seed, replay(seed, t.Name()))
		}
	})
	return seed
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
		t.Fatalf("seed %d failed: %v\nreplay: %s", badSeed, badErr, replay(badSeed, t.Name()))
	}
	t.Logf("seeds %d..%d passed", seeds[0], seeds[len(seeds)-1])
}

// replay is the command that runs one seed of test name again, from the
// module root.
func replay(seed int64, name string) string {
	return fmt.Sprintf("%s=%d go test -count=1 -run '^%s$' %s", EnvSeed, seed, name, packageDir())
}

// packageDir names the package under test relative to the module root
// (go test runs a test binary in its package's folder); "<package>" if the
// module root is not found.
func packageDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "<package>"
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			rel, err := filepath.Rel(dir, wd)
			if err != nil {
				return "<package>"
			}
			return "./" + filepath.ToSlash(rel)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "<package>"
		}
		dir = parent
	}
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
