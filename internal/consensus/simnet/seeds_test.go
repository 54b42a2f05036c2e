package simnet

import (
	"strings"
	"testing"
)

// Without CHARTER_SEED_START the start is drawn at random, once per
// process: every range of one run starts at the same seed, which the
// printed line names.
func TestStartRandomOncePerProcess(t *testing.T) {
	t.Setenv(EnvSeed, "")
	t.Setenv(EnvSeeds, "")
	t.Setenv(EnvSoak, "")
	t.Setenv(EnvSeedStart, "")
	a, err := Start()
	if err != nil || a < 1 || a > maxRandomStart {
		t.Fatalf("random start %d, %v", a, err)
	}
	b, _ := Start()
	s, _ := Seeds(3, 3)
	if b != a || s[0] != a || s[2] != a+2 {
		t.Fatalf("start %d, then %d, then seeds %v: not one start per run", a, b, s)
	}
	t.Setenv(EnvSeedStart, "9001974")
	if s, err = Seeds(2, 2); err != nil || s[0] != 9001974 || s[1] != 9001975 {
		t.Fatalf("given start: %v %v", s, err)
	}
	t.Setenv(EnvSeedStart, "soon")
	if _, err = Seeds(2, 2); err == nil || !strings.Contains(err.Error(), EnvSeedStart) {
		t.Fatalf("bad start: %v", err)
	}
}

// Seed gives a single-schedule test CHARTER_SEED when set, else the
// run's start, and on failure names the command that replays it.
func TestSeedReplayLine(t *testing.T) {
	t.Setenv(EnvSeed, "77")
	if got := Seed(t); got != 77 {
		t.Fatalf("Seed = %d, want CHARTER_SEED 77", got)
	}
	t.Setenv(EnvSeed, "")
	t.Setenv(EnvSeedStart, "500")
	if got := Seed(t); got != 500 {
		t.Fatalf("Seed = %d, want the start 500", got)
	}
	if got, want := replay(5, "TestX"), "CHARTER_SEED=5 go test -count=1 -run '^TestX$' ./internal/consensus/simnet"; got != want {
		t.Fatalf("replay line %q, want %q", got, want)
	}
}
