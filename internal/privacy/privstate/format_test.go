package privstate

import (
	"bytes"
	"testing"

	gethpebble "github.com/ethereum/go-ethereum/ethdb/pebble"

	"github.com/charter-ledger/charter/internal/ledger"
)

// A group database written by earlier builds, which opened it with
// go-ethereum's pebble wrapper (its own format version), opens with the
// ledger's store this build uses, and reads back what was written.
func TestEarlierDatabaseFormatOpens(t *testing.T) {
	dir := t.TempDir()
	old, err := gethpebble.New(dir, 16, 16, "test/", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Put([]byte("k"), []byte("written by an earlier build")); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	kv, err := ledger.OpenKeyValueStore(dir, ledger.KVOptions{CacheMB: 8, MemTableMB: groupMemTableMB}, quietLog())
	if err != nil {
		t.Fatalf("open a database of an earlier build: %v", err)
	}
	defer kv.Close()
	if got, err := kv.Get([]byte("k")); err != nil || !bytes.Equal(got, []byte("written by an earlier build")) {
		t.Fatalf("read %q, %v", got, err)
	}
}
