package main

import (
	"os"
	"strconv"
	"strings"
)

// Bounds of the soft memory limit a charter process sets for itself when
// GOMEMLIMIT is not given (see memoryLimit).
const (
	minMemoryLimit = 1 << 30
	maxMemoryLimit = 8 << 30
)

// memoryLimit is the Go runtime's soft memory limit for a charter process
// on a machine (or in a container) with total bytes of memory, 0 when
// unknown: a quarter of it, at least 1 GiB and at most 8 GiB, and never
// above three quarters of it. The limit makes the collector work harder
// before the heap outgrows the machine, which GOGC=400 alone would let it
// do; but a limit near the live heap makes the collector run without a
// pause: a node under sustained load keeps a few hundred MiB live (the
// recent heights' state layers, the pool, the gossip index), and a limit
// of 384 MiB once spent 45% of its CPU in the collector and cut a
// 4-validator network from 970 to 330 transfers/s (BENCHMARKS.md).
func memoryLimit(total uint64) int64 {
	limit := uint64(minMemoryLimit)
	if total > 0 {
		limit = min(max(total/4, minMemoryLimit), maxMemoryLimit, total/4*3)
	}
	return int64(limit)
}

// nodeMemoryLimit is the soft memory limit of each of n nodes that
// `charter testnet` runs as processes of one machine with total bytes of
// memory: what one process would take (memoryLimit), but no more than an
// n-th of half the machine, and at least minMemoryLimit (never above
// memoryLimit's three quarters of a small machine). A node sizes its
// ledger's caches from its limit (internal/node), so four nodes that each
// took a quarter of the machine would together aim at all of it, plus the
// caches outside the Go heap.
func nodeMemoryLimit(total uint64, n int) int64 {
	limit := memoryLimit(total)
	if total == 0 || n <= 1 {
		return limit
	}
	share := max(total/2/uint64(n), minMemoryLimit)
	return min(limit, int64(share))
}

// cgroupMemoryMax is the memory limit of the process's cgroup (v2), 0 when
// there is none or it cannot be read: in a container it, not the host's
// memory, is what the process has.
func cgroupMemoryMax() uint64 {
	b, err := os.ReadFile("/sys/fs/cgroup/memory.max")
	if err != nil {
		return 0
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// machineMemory is the memory this process can have: the machine's, or
// its cgroup's limit when that is lower; 0 when neither is known.
func machineMemory() uint64 {
	total := physicalMemory()
	if c := cgroupMemoryMax(); c > 0 && (total == 0 || c < total) {
		total = c
	}
	return total
}
