package node

import (
	"crypto/ecdsa"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/system"
)

// BenchmarkSystemHistoryGrowth measures what the ledger's history of the
// system contracts' state (ledger.SystemStateAt) costs on disk, with the
// node's own execution: bytes per 1,000 blocks of transfers (from
// accounts of no organization and of the dev organization, whose usage
// records every block writes; blocks 10 minutes apart, so that days
// change) and per privacy group created. Run it once:
//
//	go test ./internal/node -run X -bench SystemHistoryGrowth -benchtime 1x
func BenchmarkSystemHistoryGrowth(b *testing.B) {
	bn := newBenchNode(b, 4)
	devs, err := chain.DevAccounts(1)
	if err != nil {
		b.Fatal(err)
	}
	keys := append([]*ecdsa.PrivateKey{devs[0].Key}, bn.keys...)
	nonces := make([]uint64, len(keys))
	sign := func(k int, to common.Address, data []byte, gas uint64) *types.Transaction {
		tx := types.MustSignNewTx(keys[k], bn.signer, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonces[k], Gas: gas,
			GasFeeCap: big.NewInt(1), GasTipCap: new(big.Int), To: &to, Value: new(big.Int), Data: data})
		nonces[k]++
		return tx
	}
	seal := func(txs ...*types.Transaction) uint64 {
		bn.admit(b, txs)
		head := bn.chain.Head()
		blk, err := bn.chain.BuildBlock(head, head.Time+600, bn.self)
		if err != nil {
			b.Fatal(err)
		}
		if len(blk.Transactions()) != len(txs) {
			b.Fatalf("block of %d transactions, want %d", len(blk.Transactions()), len(txs))
		}
		if err := bn.chain.CommitBlock(blk, nil); err != nil {
			b.Fatal(err)
		}
		return blk.NumberU64()
	}
	historyBytes := func(from, to uint64) uint64 {
		_, n, err := bn.ledger.SystemHistoryBytes(from, to)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	if _, ok := bn.ledger.SystemHistoryStart(); !ok {
		b.Skip("an archive node keeps no history")
	}
	b.ResetTimer()
	const blocks = 1000
	first := bn.ledger.Head().Number.Uint64() + 1
	for i := range blocks {
		txs := make([]*types.Transaction, len(keys))
		for k := range keys {
			txs[k] = sign(k, common.BigToAddress(big.NewInt(int64(0x9000+i))), nil, 21000)
		}
		seal(txs...)
	}
	last := bn.ledger.Head().Number.Uint64()
	b.ReportMetric(float64(historyBytes(first, last))*1000/blocks, "history-B/1000-transfer-blocks")

	reg, err := abi.JSON(strings.NewReader(system.RegistryABI))
	if err != nil {
		b.Fatal(err)
	}
	const groups = 10
	var groupBytes uint64
	for i := range groups {
		data, err := reg.Pack("createGroup", common.Hash{}, "bench group", "", []string{chain.DevOrg})
		if err != nil {
			b.Fatal(err)
		}
		n := seal(sign(0, system.RegistryAddress, data, 2_000_000))
		receipts, err := bn.ledger.Receipts(n)
		if err != nil || receipts[0].Status != types.ReceiptStatusSuccessful {
			b.Fatalf("group %d not created: %v", i, err)
		}
		groupBytes += historyBytes(n, n)
	}
	b.ReportMetric(float64(groupBytes)/groups, "history-B/group-created")
	_, base, err := bn.ledger.SystemHistoryBytes(0, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(base), "history-B-base")
}
