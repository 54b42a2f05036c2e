package ledger

import (
	"encoding/binary"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/trie"
)

// commitWithTx commits the child of the head holding one signed
// transfer (not executed: the ledger stores what it is given) and its
// receipt, with a seal.
func commitWithTx(t *testing.T, l *Ledger, nonce uint64) (*types.Block, *types.Transaction) {
	t.Helper()
	key, _ := crypto.HexToECDSA("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
	to := account(1)
	tx := types.MustSignNewTx(key, types.LatestSignerForChainID(l.spec.Config.ChainID), &types.DynamicFeeTx{
		ChainID: l.spec.Config.ChainID, Nonce: nonce, Gas: 21000, GasFeeCap: big.NewInt(1), To: &to, Value: big.NewInt(1)})
	head := l.Head()
	st, err := l.StateAt(head.Root)
	if err != nil {
		t.Fatal(err)
	}
	number := new(big.Int).Add(head.Number, common.Big1)
	root := st.IntermediateRoot(l.spec.Config.Rules(number, true, head.Time+1))
	header := &types.Header{ParentHash: head.Hash(), Number: number, Root: root, GasLimit: head.GasLimit,
		Time: head.Time + 1, Difficulty: new(big.Int), BaseFee: head.BaseFee}
	receipt := &types.Receipt{Type: tx.Type(), Status: types.ReceiptStatusSuccessful, CumulativeGasUsed: 21000, Logs: []*types.Log{}}
	receipt.Bloom = types.CreateBloom(receipt)
	block := types.NewBlock(header, &types.Body{Transactions: []*types.Transaction{tx}, Withdrawals: []*types.Withdrawal{}},
		[]*types.Receipt{receipt}, trie.NewStackTrie(nil))
	if err := l.Commit(block, types.Receipts{receipt}, st, []byte("seal")); err != nil {
		t.Fatalf("commit %d: %v", number, err)
	}
	return block, tx
}

// TestPruneBodiesKeepsHeaders: with a body retention of 10, PruneBodies
// deletes (in batches) the block and receipt records and transaction
// index entries of the heights below head-10 from the store, keeps
// their headers (by number and by hash) and seals, keeps the recent
// heights whole, answers a pruned height's receipts with an error naming
// the retention, and the floor survives a reopen.
func TestPruneBodiesKeepsHeaders(t *testing.T) {
	dir := t.TempDir()
	spec := devSpec(t, 5)
	l, err := Open(dir, spec, Options{BodyHistory: 10}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []*types.Block
	var txs []*types.Transaction
	for i := 0; i < 30; i++ {
		b, tx := commitWithTx(t, l, uint64(i))
		blocks, txs = append(blocks, b), append(txs, tx)
	}
	for l.BodiesFrom() < 20 {
		n, _, err := l.PruneBodies(7, ^uint64(0))
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 || n > 7 {
			t.Fatalf("pruned %d heights in a batch of 7, floor %d", n, l.BodiesFrom())
		}
	}
	if n, _, err := l.PruneBodies(7, ^uint64(0)); n != 0 || err != nil || l.BodiesFrom() != 20 {
		t.Fatalf("pruned %d more (%v), floor %d; want the bodies of 20..30 kept", n, err, l.BodiesFrom())
	}
	check := func(l *Ledger) {
		t.Helper()
		for i, b := range blocks {
			n := b.NumberU64()
			num := binary.BigEndian.AppendUint64(nil, n)
			_, berr := l.kv.Get(key(prefBlock, num))
			_, rerr := l.kv.Get(key(prefReceipt, num))
			_, _, found := l.TxLookup(txs[i].Hash())
			if h := l.HeaderByNumber(n); h == nil || h.Hash() != b.Hash() {
				t.Fatalf("header %d: %v, want %s", n, h, b.Hash())
			}
			if h := l.HeaderByHash(b.Hash()); h == nil || h.Number.Uint64() != n {
				t.Fatalf("header by hash of %d: %v", n, h)
			}
			if string(l.Seal(n)) != "seal" {
				t.Fatalf("seal of %d: %q", n, l.Seal(n))
			}
			_, rcptErr := l.Receipts(n)
			if n < 20 {
				if berr == nil || rerr == nil || found || l.BlockByNumber(n) != nil || l.BlockByHash(b.Hash()) != nil {
					t.Fatalf("block %d is below the retention but its records are there (block %v, receipts %v, tx index %v)", n, berr, rerr, found)
				}
				if !errors.Is(rcptErr, ErrBodyPruned) || !strings.Contains(rcptErr.Error(), "last 10 blocks (--history.bodies), from block 20") {
					t.Fatalf("receipts of pruned %d: %v", n, rcptErr)
				}
				continue
			}
			if berr != nil || rerr != nil || !found || rcptErr != nil {
				t.Fatalf("block %d is kept but: block %v, receipts %v, tx index %v, Receipts %v", n, berr, rerr, found, rcptErr)
			}
			if got := l.BlockByNumber(n); got == nil || got.Hash() != b.Hash() || len(got.Transactions()) != 1 {
				t.Fatalf("kept block %d: %v", n, got)
			}
		}
	}
	check(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, spec, Options{BodyHistory: 10}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.BodiesFrom() != 20 {
		t.Fatalf("floor %d after reopen, want 20", l.BodiesFrom())
	}
	check(l)
}
