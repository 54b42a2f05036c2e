package durable

import (
	"os"
	"syscall"
)

// dataSync makes f's data durable without its times (fdatasync): for a
// file written in place within its size, no journal commit.
func dataSync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
