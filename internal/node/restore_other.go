//go:build !linux

package node

import (
	"errors"
	"os"
)

// exchange puts stage in target's place, leaving the old content at
// stage. Without an atomic exchange it takes three renames: a restore cut
// off between them leaves the old content at stage+".old", and is run
// again.
func exchange(stage, target string) error {
	if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
		return os.Rename(stage, target)
	}
	old := stage + ".old"
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if err := os.Rename(target, old); err != nil {
		return err
	}
	if err := os.Rename(stage, target); err != nil {
		os.Rename(old, target)
		return err
	}
	return os.Rename(old, stage)
}
