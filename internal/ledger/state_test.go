package ledger

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/ethereum/go-ethereum/trie/trienode"
	"github.com/holiman/uint256"
)

// account is the i-th test account.
func account(i int) common.Address {
	return common.BigToAddress(big.NewInt(int64(0x10000 + i)))
}

// commitNext commits the child of the head, whose state is the head's
// changed by mutate (nil: unchanged).
func commitNext(t testing.TB, l *Ledger, mutate func(st *state.StateDB)) *types.Block {
	t.Helper()
	head := l.Head()
	st, err := l.StateAt(head.Root)
	if err != nil {
		t.Fatalf("state of head %d: %v", head.Number, err)
	}
	if mutate != nil {
		mutate(st)
	}
	block := buildNext(l, st)
	if err := l.Commit(block, nil, st, nil); err != nil {
		t.Fatalf("commit %d: %v", block.NumberU64(), err)
	}
	return block
}

// buildNext is the child of the head with the root of st.
func buildNext(l *Ledger, st *state.StateDB) *types.Block {
	head := l.Head()
	number := new(big.Int).Add(head.Number, common.Big1)
	time := head.Time + 1
	root := st.IntermediateRoot(l.spec.Config.Rules(number, true, time))
	header := &types.Header{ParentHash: head.Hash(), Number: number, Root: root, GasLimit: head.GasLimit,
		Time: time, Difficulty: new(big.Int), BaseFee: head.BaseFee}
	return types.NewBlock(header, &types.Body{Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
}

// setBalances gives account(i) balance value for every i in ids.
func setBalances(value uint64, ids ...int) func(*state.StateDB) {
	return func(st *state.StateDB) {
		for _, i := range ids {
			st.SetBalance(account(i), uint256.NewInt(value), 0)
		}
	}
}

func balance(t testing.TB, l *Ledger, root common.Hash, i int) uint64 {
	t.Helper()
	st, err := l.StateAt(root)
	if err != nil {
		t.Fatalf("state %s: %v", root.TerminalString(), err)
	}
	return st.GetBalance(account(i)).Uint64()
}

// Under the path scheme the head and the last StateHistory heights read
// and prove as they were; older heights give the error naming the window.
func TestStateHistoryWindow(t *testing.T) {
	const window = 4
	l, err := Open(t.TempDir(), devSpec(t, 5), Options{StateHistory: window}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.StateHistory() != window {
		t.Fatalf("StateHistory() = %d, want %d", l.StateHistory(), window)
	}
	var blocks []*types.Block
	for i := 1; i <= 12; i++ {
		blocks = append(blocks, commitNext(t, l, setBalances(uint64(i), 1)))
		if i%3 == 0 { // a height that changes no state
			blocks = append(blocks, commitNext(t, l, nil))
		}
	}
	head := len(blocks) - 1
	for back := 0; back <= head; back++ {
		b := blocks[head-back]
		st, err := l.StateAt(b.Root())
		if back > window+1 { // beyond the window (and the heights that share its oldest root)
			if err == nil {
				t.Logf("block %d (%d back) still readable", b.NumberU64(), back)
				continue
			}
			if !errors.Is(err, ErrStateNotKept) || !strings.Contains(err.Error(), "keeps the last 4 blocks") {
				t.Fatalf("state of block %d: error %q, want ErrStateNotKept naming the window", b.NumberU64(), err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("state of block %d (%d back, window %d): %v", b.NumberU64(), back, window, err)
		}
		got := st.GetBalance(account(1)).Uint64()
		// Block n of the loop above set balance i where i counts the
		// state-changing blocks; rebuild it from the block list.
		exp := uint64(0)
		for j := 0; j <= head-back; j++ {
			if j == 0 || blocks[j].Root() != blocks[j-1].Root() {
				exp++
			}
		}
		if got != exp {
			t.Fatalf("block %d: balance %d, want %d", b.NumberU64(), got, exp)
		}
		// A proof of the account against the block's root.
		tr, err := st.Database().OpenTrie(b.Root())
		if err != nil {
			t.Fatalf("block %d: open trie: %v", b.NumberU64(), err)
		}
		proof := trienode.NewProofSet()
		if err := tr.Prove(crypto.Keccak256(account(1).Bytes()), proof); err != nil {
			t.Fatalf("block %d: prove: %v", b.NumberU64(), err)
		}
		if _, err := trie.VerifyProof(b.Root(), crypto.Keccak256(account(1).Bytes()), proof); err != nil {
			t.Fatalf("block %d: proof does not verify: %v", b.NumberU64(), err)
		}
	}
	if _, err := l.StateAt(blocks[0].Root()); !errors.Is(err, ErrStateNotKept) {
		t.Fatalf("state of block 1 with window %d at head %d: err %v, want ErrStateNotKept", window, head+1, err)
	}
}
