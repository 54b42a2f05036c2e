//go:build !linux

package main

// physicalMemory is the machine's memory in bytes: unknown here (0), so
// the soft limit is memoryLimit's least.
func physicalMemory() uint64 { return 0 }
