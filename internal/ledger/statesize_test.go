package ledger

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
)

// StateDiskBytes follows the size of the state's trie nodes in the
// store's tables, under both schemes.
func TestStateDiskBytes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		history uint64
	}{{"path", 0}, {"hash", StateArchive}} {
		t.Run(tc.name, func(t *testing.T) {
			size := func(funded int) uint64 {
				spec := devSpec(t, 5)
				for i := 0; i < funded; i++ {
					spec.Alloc[account(i)] = types.Account{Balance: big.NewInt(int64(i + 1))}
				}
				l, err := Open(t.TempDir(), spec, Options{StateHistory: tc.history}, quiet)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				if err := l.kv.db.Flush(); err != nil { // into tables, which the estimate reads
					t.Fatal(err)
				}
				n, err := l.StateDiskBytes()
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			small, large := size(0), size(20_000)
			// 20,000 accounts take at least 1 MB of trie nodes (a leaf
			// alone is over 70 bytes); a genesis of a few accounts and
			// the system contracts far less.
			if large < 1<<20 || small >= large/4 {
				t.Fatalf("state on disk: %d bytes with a few accounts, %d with 20,000", small, large)
			}
			t.Logf("%d bytes with a few accounts, %d with 20,000", small, large)
		})
	}
}
