//go:build !linux

package durable

import "os"

// dataSync makes f's data durable (fsync where there is no fdatasync).
func dataSync(f *os.File) error { return f.Sync() }
