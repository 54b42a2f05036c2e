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
