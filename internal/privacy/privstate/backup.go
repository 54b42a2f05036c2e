package privstate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethdb"
)

// backupBatchBytes bounds the writes one batch of a backup holds before
// it is written.
const backupBatchBytes = 4 << 20

// Backup copies the private state into dir (which must not exist) while
// the store is in use: every group's database as one point-in-time view
// (a pebble iterator reads at the sequence number it started at, so a
// block applied during the copy is in it whole or not at all, as after a
// crash), and the tombstones of purged groups. dir then opens with Open
// as the store did at that instant, group by group.
//
// A group purged during the backup is left out; one a block creates
// during it may be missing, as after a crash before that block: the
// node's applier applies the blocks after its cursor again.
func (s *Store) Backup(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("private state backup: %s exists already", dir)
	}
	for _, d := range []string{dir, filepath.Join(dir, "groups"), filepath.Join(dir, "purged")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("private state backup: %w", err)
		}
	}
	// Tombstones first: a group purged after this point is copied as it
	// was (its tombstone is not in the backup either).
	names, err := s.fs.List(s.purgedDir())
	if err != nil {
		return fmt.Errorf("private state backup: list %s: %w", s.purgedDir(), err)
	}
	for _, name := range names {
		if _, ok := parseGroupName(name); !ok {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.purgedDir(), name))
		if err != nil {
			return fmt.Errorf("private state backup: tombstone %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "purged", name), data, 0o600); err != nil {
			return fmt.Errorf("private state backup: %w", err)
		}
	}
	groups, err := os.ReadDir(s.groupsDir())
	if err != nil {
		return fmt.Errorf("private state backup: list %s: %w", s.groupsDir(), err)
	}
	for _, e := range groups {
		name := e.Name()
		group, ok := parseGroupName(name)
		if !ok || !e.IsDir() {
			continue
		}
		err := s.backupGroup(group, filepath.Join(dir, "groups", name))
		if errors.Is(err, ErrPurged) || errors.Is(err, ErrUnknownGroup) {
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// backupGroup writes one group's database, as one view, into a new
// database at dst, and its payload store likewise into dst/payloads (a
// view of its own: payloads are content-addressed, one kept after the
// group's view is harmless, one missing is fetched again).
func (s *Store) backupGroup(group common.Hash, dst string) error {
	h, err := s.acquire(group, false)
	if err != nil {
		return err
	}
	defer s.release(h)
	err = s.copyDatabase(h.kv, dst, groupHandles)
	if err == nil {
		err = s.copyDatabase(h.pay.kv, filepath.Join(dst, payloadDirName), payloadHandles)
	}
	if err != nil {
		return fmt.Errorf("private state backup: group %s: %w", group.Hex(), err)
	}
	return nil
}

// copyDatabase copies src, as one view, into a new database at dst.
func (s *Store) copyDatabase(src ethdb.KeyValueStore, dst string, handles int) error {
	out, err := s.openKV(dst, handles)
	if err != nil {
		return err
	}
	it := src.NewIterator(nil, nil)
	batch := out.NewBatch()
	for it.Next() && err == nil {
		if err = batch.Put(it.Key(), it.Value()); err == nil && batch.ValueSize() >= backupBatchBytes {
			if err = batch.Write(); err == nil {
				batch.Reset()
			}
		}
	}
	if err == nil {
		err = it.Error()
	}
	it.Release()
	if err == nil {
		err = batch.Write()
	}
	if err == nil {
		err = out.SyncKeyValue()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
