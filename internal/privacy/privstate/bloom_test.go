package privstate

import (
	"math/rand/v2"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// The memo's blooms are types.CreateBloom's, for receipts whose logs
// repeat addresses and topics and for more distinct values than the memo
// keeps.
func TestBloomMemoMatchesCreateBloom(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	value := func(distinct int) (h common.Hash) {
		h[0], h[1] = byte(rng.IntN(distinct)), byte(rng.IntN(2))
		if rng.IntN(8) == 0 {
			for i := range h {
				h[i] = byte(rng.Uint32())
			}
		}
		return h
	}
	for _, distinct := range []int{1, 4, 256} {
		m := bloomMemo{}
		var block, want types.Bloom
		for range 3000 {
			r := &types.Receipt{}
			for range rng.IntN(4) {
				l := &types.Log{Address: common.BytesToAddress(value(distinct).Bytes())}
				for range rng.IntN(5) {
					l.Topics = append(l.Topics, value(distinct))
				}
				r.Logs = append(r.Logs, l)
			}
			var got types.Bloom
			m.addLogs(&got, r.Logs)
			exp := types.CreateBloom(r)
			if got != exp {
				t.Fatalf("distinct %d: the memo's bloom of %d logs differs from CreateBloom's", distinct, len(r.Logs))
			}
			m.addLogs(&block, r.Logs)
			for i := range want {
				want[i] |= exp[i]
			}
		}
		if block != want {
			t.Fatalf("distinct %d: the block's bloom differs from the union of its receipts'", distinct)
		}
		if len(m) > maxBloomMemo {
			t.Fatalf("memo of %d entries, above %d", len(m), maxBloomMemo)
		}
	}
}
