package node

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// exchange puts stage in target's place in one step: with target present
// the two swap (renameat2 RENAME_EXCHANGE), so the old content is at
// stage afterwards; without target, stage is renamed.
func exchange(stage, target string) error {
	if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
		return os.Rename(stage, target)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, stage, unix.AT_FDCWD, target, unix.RENAME_EXCHANGE); err != nil {
		return &os.LinkError{Op: "exchange", Old: stage, New: target, Err: err}
	}
	return nil
}
