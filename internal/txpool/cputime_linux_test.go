package txpool

import (
	"syscall"
	"time"
)

// threadCPU is the CPU time of the calling thread: unlike wall time, it
// does not count the time the thread waits for a core, which on a shared
// machine is most of the noise of a benchmark.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
