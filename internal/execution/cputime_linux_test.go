package execution

import (
	"syscall"
	"time"
)

// processCPU is the CPU time of the whole process (user and system, all
// threads, the garbage collector's too): unlike wall time it does not count
// the time spent waiting for a core, most of a shared machine's noise.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// threadCPU is the CPU time of the calling OS thread (the caller locks its
// goroutine to it): in BenchmarkParallelApply, the committer's alone.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
