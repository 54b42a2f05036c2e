package node

import (
	"math"
	"testing"
)

func TestLedgerCacheMB(t *testing.T) {
	for _, c := range []struct {
		limit         int64
		store, states int
	}{
		{math.MaxInt64, 256, 256}, // no limit: the ledger's defaults
		{0, 256, 256},
		{1 << 30, 256, 256}, // a small machine's 1 GiB: the floors
		{4 << 30, 512, 1024},
		{6 << 30, 768, 1536}, // a quarter of 24 GiB
		{8 << 30, 1024, 2048},
		{64 << 30, 1024, 2048}, // the ceilings
	} {
		store, states := ledgerCacheMB(c.limit)
		if store != c.store || states != c.states {
			t.Errorf("limit %d MiB: store %d MB, states %d MB; want %d, %d", c.limit>>20, store, states, c.store, c.states)
		}
	}
}
