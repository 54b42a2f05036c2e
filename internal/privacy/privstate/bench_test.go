package privstate

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/bench/token"
)

// BenchmarkApplyBlock100Transfers applies public blocks that each carry
// 100 private ERC-20 transfers of one group: execution, commit of the
// state, receipts and records, and the fsync. Signing is not timed.
func BenchmarkApplyBlock100Transfers(b *testing.B) {
	const perBlock = 100
	spec := testSpec(b)
	c := newPubChain(spec, b.N+1)
	s := openStore(b, b.TempDir(), c, Options{})
	defer s.Close()
	alice := newAccount(b, 1)
	tok := alice.created(0)
	mustSucceed(b, mustApply(b, s, groupA, c.at(1), alice.tx(b, nil, 3_000_000, token.DeployData(big.NewInt(1e18)))))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		txs := make([]Tx, perBlock)
		for j := range txs {
			to := common.BigToAddress(big.NewInt(int64(1_000_000 + i*perBlock + j)))
			txs[j] = alice.tx(b, &tok, 100_000, token.TransferData(to, big.NewInt(1)))
		}
		b.StartTimer()
		res, err := s.ApplyBlock(groupA, c.at(uint64(i+2)), txs)
		if err != nil {
			b.Fatal(err)
		}
		if r := res.Receipts[perBlock-1]; r.Status != types.ReceiptStatusSuccessful {
			b.Fatalf("transfer failed: %q", r.Rejected)
		}
	}
	b.ReportMetric(float64(b.N*perBlock)/b.Elapsed().Seconds(), "transfers/s")
}
