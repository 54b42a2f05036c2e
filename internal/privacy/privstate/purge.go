package privstate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/durable"
)

// maxTombstoneBytes bounds a tombstone file read back.
const maxTombstoneBytes = 64

// Purge deletes everything this node holds of group: its private state,
// receipts, logs, transactions and payloads, by closing its database and
// removing its folder (then syncing the parent folder). height is the
// public block that decided the purge; a tombstone outside the group's
// folder keeps it, so that every later read of the group answers
// ErrPurged and every later write is refused. A purge of a group this
// node never held leaves the tombstone alone. Purging again is a no-op.
//
// Order, so that a crash at any instant ends purged: the tombstone is
// made durable first, then the folder goes; Open removes the folder of a
// group with a tombstone. Purge waits for the calls using the group to
// finish; new ones fail at once.
func (s *Store) Purge(group common.Hash, height uint64) error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if _, done := s.mu.purged[group]; done || s.mu.purging[group] {
		s.mu.Unlock()
		return nil
	}
	s.mu.purging[group] = true
	s.mu.Unlock()

	err := durable.WriteFile(s.fs, s.tombstonePath(group), []byte(strconv.FormatUint(height, 10)+"\n"), 0o600)

	s.mu.Lock()
	if err != nil {
		delete(s.mu.purging, group)
		s.mu.Unlock()
		s.mu.cond.Broadcast()
		return fmt.Errorf("private state: purge group %s: tombstone: %w", group.Hex(), err)
	}
	s.mu.purged[group] = height
	for s.mu.open[group] != nil && s.mu.open[group].refs > 0 {
		s.mu.cond.Wait()
	}
	var closeErr error
	if h := s.mu.open[group]; h != nil {
		delete(s.mu.open, group)
		closeErr = h.close()
	}
	s.mu.Unlock()
	s.mu.cond.Broadcast()
	if closeErr != nil {
		s.log.Warn("Close of a purged privacy group's database failed; removing it anyway", "group", group.Hex(), "err", closeErr)
	}
	err = s.removeGroupDir(group)

	s.mu.Lock()
	delete(s.mu.purging, group)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("private state: purge group %s: %w (the next start finishes it)", group.Hex(), err)
	}
	s.log.Info("Privacy group purged", "group", group.Hex(), "height", height)
	return nil
}

// removeGroupDir removes a group's folder and makes the removal durable.
func (s *Store) removeGroupDir(group common.Hash) error {
	dir := s.GroupDir(group)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	if err := s.fs.SyncDir(s.groupsDir()); err != nil {
		return fmt.Errorf("sync %s: %w", s.groupsDir(), err)
	}
	return nil
}

// Purged tells whether group was purged, and at which public height.
func (s *Store) Purged(group common.Hash) (height uint64, purged bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	height, purged = s.mu.purged[group]
	return height, purged
}

// purgedErrLocked is the error of every call on a purged group (or one
// being purged), nil for the others.
func (s *Store) purgedErrLocked(group common.Hash) error {
	if h, ok := s.mu.purged[group]; ok {
		return fmt.Errorf("%w: group %s at height %d", ErrPurged, group.Hex(), h)
	}
	if s.mu.purging[group] {
		return fmt.Errorf("%w: group %s (purge under way)", ErrPurged, group.Hex())
	}
	return nil
}

func (s *Store) tombstonePath(group common.Hash) string {
	return filepath.Join(s.purgedDir(), strings.TrimPrefix(group.Hex(), "0x"))
}

// loadTombstones reads the tombstones and finishes the purges a crash cut
// off (a group folder beside its tombstone). Temporary files of a
// tombstone write that did not finish are removed: that purge never
// happened, as its Purge did not return.
func (s *Store) loadTombstones() error {
	names, err := s.fs.List(s.purgedDir())
	if err != nil {
		return fmt.Errorf("private state: list %s: %w", s.purgedDir(), err)
	}
	for _, name := range names {
		path := filepath.Join(s.purgedDir(), name)
		if strings.HasSuffix(name, ".tmp") {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("private state: remove %s: %w", path, err)
			}
			continue
		}
		group, ok := parseGroupName(name)
		if !ok {
			s.log.Warn("Unknown file among the purged groups' tombstones; ignored", "file", path)
			continue
		}
		height, err := readTombstone(path)
		if err != nil {
			return err
		}
		s.mu.purged[group] = height
		if _, err := os.Stat(s.GroupDir(group)); err == nil {
			s.log.Warn("Finishing the purge of a privacy group that a stop cut off", "group", group.Hex(), "height", height)
			if err := s.removeGroupDir(group); err != nil {
				return fmt.Errorf("private state: finish purge of group %s: %w", group.Hex(), err)
			}
		}
	}
	return nil
}

func readTombstone(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("private state: read tombstone %s: %w", path, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxTombstoneBytes+1))
	if err != nil {
		return 0, fmt.Errorf("private state: read tombstone %s: %w", path, err)
	}
	height, err := strconv.ParseUint(strings.TrimSuffix(string(raw), "\n"), 10, 64)
	if len(raw) > maxTombstoneBytes || err != nil {
		return 0, fmt.Errorf("%w: tombstone %s does not hold a height (%d bytes): write the purge's height in decimal into it", ErrCorrupt, path, len(raw))
	}
	return height, nil
}
