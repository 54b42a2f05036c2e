//go:build !linux

package execution

import "time"

// processCPU is not measured outside Linux.
func processCPU() time.Duration { return 0 }

// threadCPU is not measured outside Linux.
func threadCPU() time.Duration { return 0 }
