package ledger

import (
	"encoding/binary"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/charter-ledger/charter/internal/chain"
)

// FuzzStoredRecords: the block and receipts records of a height as a
// damaged disk gives them back (pebble checks its blocks, not what this
// package wrote into them). Reading the block, its header, its hash and
// its receipts never panics; receipts of a block that reads either match
// its transactions or are an error wrapping ErrCorrupt.
func FuzzStoredRecords(f *testing.F) {
	spec, err := chain.DevSpec(1337, 1000)
	if err != nil {
		f.Fatal(err)
	}
	l, err := Open(f.TempDir(), spec, Options{CacheMB: 8, TrieCacheMB: 8, BlockCacheN: 4}, quiet)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })

	// A block with two transactions and their receipts, as Commit stores
	// them, and the genesis records.
	sender, _ := crypto.GenerateKey()
	signer := types.LatestSignerForChainID(big.NewInt(1337))
	var txs []*types.Transaction
	var stored []*types.ReceiptForStorage
	for i := range 2 {
		tx, _ := types.SignNewTx(sender, signer, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: uint64(i), Gas: 21_000,
			GasFeeCap: big.NewInt(2), To: &common.Address{1}, Value: big.NewInt(1)})
		txs = append(txs, tx)
		stored = append(stored, (*types.ReceiptForStorage)(&types.Receipt{Status: 1, CumulativeGasUsed: uint64(21_000 * (i + 1)),
			Logs: []*types.Log{{Address: common.Address{2}, Topics: []common.Hash{{3}}, Data: []byte{4}}}}))
	}
	header := &types.Header{Number: big.NewInt(0), Difficulty: new(big.Int), GasLimit: 30_000_000, BaseFee: big.NewInt(1), Time: 1}
	blk := types.NewBlock(header, &types.Body{Transactions: txs, Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
	blkRLP, _ := rlp.EncodeToBytes(blk)
	recRLP, _ := rlp.EncodeToBytes(stored)
	genRLP, _ := rlp.EncodeToBytes(l.Genesis())
	f.Add(blkRLP, recRLP)
	f.Add(genRLP, []byte{0xc0})
	f.Add(blkRLP, []byte{0xc0})
	f.Add(genRLP, recRLP)
	f.Add([]byte{}, []byte{})

	number := binary.BigEndian.AppendUint64(nil, 0)
	f.Fuzz(func(t *testing.T, block, receipts []byte) {
		if err := l.kv.Put(key(prefBlock, number), block); err != nil {
			t.Fatal(err)
		}
		if err := l.kv.Put(key(prefReceipt, number), receipts); err != nil {
			t.Fatal(err)
		}
		l.blocks.Remove(0)
		l.receipts.Remove(0)
		b := l.BlockByNumber(0)
		_ = l.HeaderByNumber(0)
		_ = l.BlockByHash(l.Genesis().Hash())
		rs, err := l.Receipts(0)
		switch {
		case b == nil && err == nil:
			t.Fatal("receipts of a block that does not read")
		case b != nil && err != nil && !errors.Is(err, ErrCorrupt):
			t.Fatalf("receipts error %v does not wrap ErrCorrupt", err)
		case err == nil && len(rs) != len(b.Transactions()):
			t.Fatalf("%d receipts for %d transactions", len(rs), len(b.Transactions()))
		}
	})
}
