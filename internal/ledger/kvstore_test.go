package ledger

import (
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/dbtest"
)

// The store meets go-ethereum's conformance suite for key-value stores,
// which the state code relies on (iteration order and bounds, batches,
// replay, range deletion).
func TestKVStoreConformance(t *testing.T) {
	dbtest.TestDatabaseSuite(t, func() ethdb.KeyValueStore {
		s, err := openKVStore(t.TempDir(), KVOptions{CacheMB: 8}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestKVStoreClosed(t *testing.T) {
	s, err := openKVStore(filepath.Join(t.TempDir(), "db"), KVOptions{CacheMB: 8}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get([]byte("k")); err != errStoreClosed {
		t.Fatalf("get after close: %v, want errStoreClosed", err)
	}
	it := s.NewIterator(nil, nil)
	if it.Next() || it.Error() != errStoreClosed {
		t.Fatalf("iterator after close: error %v", it.Error())
	}
	it.Release()
}
