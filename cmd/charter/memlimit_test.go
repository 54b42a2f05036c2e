package main

import (
	"slices"
	"strconv"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	const gib = 1 << 30
	for _, c := range []struct {
		total uint64
		want  int64
	}{
		{0, gib},               // unknown: the least
		{1 * gib, 3 * gib / 4}, // a small container: three quarters
		{2 * gib, gib},         // a quarter is below the least
		{24 * gib, 6 * gib},    // a quarter
		{64 * gib, 8 * gib},    // at most 8 GiB
	} {
		if got := memoryLimit(c.total); got != c.want {
			t.Errorf("memoryLimit(%d GiB) = %d MiB, want %d MiB", c.total/gib, got>>20, c.want>>20)
		}
	}
}

func TestNodeMemoryLimit(t *testing.T) {
	const gib = 1 << 30
	for _, c := range []struct {
		total uint64
		n     int
		want  int64
	}{
		{24 * gib, 1, 6 * gib}, // one node: what one process takes
		{24 * gib, 4, 3 * gib}, // half the machine shared by four
		{24 * gib, 7, 24 * gib / 2 / 7},
		{64 * gib, 2, 8 * gib},    // at most memoryLimit's 8 GiB
		{8 * gib, 4, gib},         // at least 1 GiB
		{1 * gib, 4, 3 * gib / 4}, // never above three quarters of a small machine
		{0, 4, gib},               // unknown: the least
	} {
		if got := nodeMemoryLimit(c.total, c.n); got != c.want {
			t.Errorf("nodeMemoryLimit(%d GiB, %d) = %d MiB, want %d MiB", c.total/gib, c.n, got>>20, c.want>>20)
		}
	}
}

func TestMachineMemory(t *testing.T) {
	m := machineMemory()
	if physicalMemory() > 0 && m == 0 {
		t.Fatal("machineMemory is 0 though the machine's memory is known")
	}
	if p := physicalMemory(); p > 0 && m > p {
		t.Fatalf("machineMemory %d above the machine's %d", m, p)
	}
}

// A testnet node gets its share of the memory and the testnet's GOGC,
// unless the environment chose them.
func TestNodeEnv(t *testing.T) {
	has := func(env []string, kv string) bool { return slices.Contains(env, kv) }
	env := nodeEnv([]string{"PATH=/bin"}, 1<<30)
	if !has(env, "PATH=/bin") || !has(env, "GOMEMLIMIT=1073741824") || !has(env, "GOGC="+strconv.Itoa(testnetGCPercent)) {
		t.Fatalf("env %q", env)
	}
	env = nodeEnv([]string{"GOGC=400", "GOMEMLIMIT=2GiB"}, 0)
	if len(env) != 2 || !has(env, "GOGC=400") || !has(env, "GOMEMLIMIT=2GiB") {
		t.Fatalf("an environment that sets GOGC and GOMEMLIMIT: %q", env)
	}
}
