package index

import (
	"fmt"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
)

// basedSource holds the genesis and the blocks from base on, as a node
// started from a snapshot of block base does.
type basedSource struct {
	*fakeSource
	base uint64
}

func (s *basedSource) Base() uint64 { return s.base }

func (s *basedSource) BlockByNumber(n uint64) *types.Block {
	if n > 0 && n < s.base {
		return nil
	}
	return s.fakeSource.BlockByNumber(n)
}

func (s *basedSource) Receipts(n uint64) (types.Receipts, error) {
	if n > 0 && n < s.base {
		return nil, fmt.Errorf("no block %d", n)
	}
	return s.fakeSource.Receipts(n)
}

// On a node started from a snapshot the index goes on from the snapshot's
// block instead of waiting for blocks the node will never hold.
func TestIndexFromTheSnapshotBase(t *testing.T) {
	c := genChain(t, 40, 4, 0)
	backends(t, func(t *testing.T, db func(string) Config) {
		src := &basedSource{fakeSource: newSource(c, 40), base: 20}
		ix := open(t, db("based"), src)
		defer ix.Close()
		runUntil(t, ix, 40)
		var blocks, low int64
		if err := ix.db.QueryRow(`SELECT COUNT(*) FROM blocks`).Scan(&blocks); err != nil {
			t.Fatal(err)
		}
		if err := ix.db.QueryRow(`SELECT COUNT(*) FROM blocks WHERE number > 0 AND number < 20`).Scan(&low); err != nil {
			t.Fatal(err)
		}
		if blocks != 22 || low != 0 {
			t.Fatalf("%d blocks indexed (%d below the base), want the genesis and 20 to 40", blocks, low)
		}
		want := 0
		for _, b := range c.blocks[20:41] {
			want += len(b.Transactions())
		}
		var txs int64
		if err := ix.db.QueryRow(`SELECT COUNT(*) FROM transactions`).Scan(&txs); err != nil {
			t.Fatal(err)
		}
		if txs != int64(want+len(c.blocks[0].Transactions())) {
			t.Fatalf("%d transactions indexed, want %d", txs, want)
		}
	})
}
