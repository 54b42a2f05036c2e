package ledger

import (
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
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

// A checkpoint of a path-scheme ledger taken while it runs holds the
// head's state on disk only up to the last merged height: it opens at its
// height by replaying the rest, and refuses to open without a replay.
func TestCheckpointReplaysToItsHeight(t *testing.T) {
	spec := devSpec(t, 5)
	opts := Options{StateHistory: 8, Replay: crashReplay}
	l, err := Open(t.TempDir(), spec, opts, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for h := uint64(1); h <= 20; h++ {
		commitNext(t, l, setBalances(h, crashBlock(h)...))
	}
	dir := filepath.Join(t.TempDir(), "copy")
	height, err := l.Checkpoint(dir)
	if err != nil || height != 20 {
		t.Fatalf("checkpoint: height %d, %v", height, err)
	}
	commitNext(t, l, setBalances(21, crashBlock(21)...)) // the ledger goes on
	if _, err := Open(dir, spec, Options{StateHistory: 8}, quiet); err == nil || !strings.Contains(err.Error(), "stopped uncleanly") {
		t.Fatalf("open the checkpoint without a replay: %v", err)
	}
	c, err := Open(dir, spec, opts, quiet)
	if err != nil {
		t.Fatalf("open the checkpoint: %v", err)
	}
	defer c.Close()
	if c.Head().Number.Uint64() != 20 || c.Head().Root != l.HeaderByNumber(20).Root {
		t.Fatalf("checkpoint head %d %s", c.Head().Number, c.Head().Root)
	}
	if got := balance(t, c, c.Head().Root, crashMarker); got != 20 {
		t.Fatalf("checkpoint marker balance %d", got)
	}
}

// Reads of the window run while heights are committed: each state opened
// answers its own height's balance, or reports an error (its layer
// merged to disk meanwhile), never another height's.
func TestStateAtDuringCommits(t *testing.T) {
	l, err := Open(t.TempDir(), devSpec(t, 5), Options{StateHistory: 16, StateFlushHeights: 40, Replay: crashReplay}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case <-done:
				return
			default:
			}
			head := l.Head().Number.Uint64()
			for back := uint64(0); back <= 20 && back <= head; back++ {
				h := l.HeaderByNumber(head - back)
				st, err := l.StateAt(h.Root)
				if err != nil {
					if !errors.Is(err, ErrStateNotKept) {
						errs <- fmt.Errorf("state of block %d: %v", h.Number, err)
						return
					}
					continue
				}
				if got := st.GetBalance(account(crashMarker)).Uint64(); got != h.Number.Uint64() && st.Error() == nil {
					errs <- fmt.Errorf("block %d: marker balance %d", h.Number, got)
					return
				}
			}
		}
	}()
	for h := uint64(1); h <= 200; h++ {
		commitNext(t, l, setBalances(h, crashBlock(h)...))
	}
	close(done)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// A new ledger writes its genesis state to disk at once (path scheme),
// with the flat state pathdb serves account reads from; a first start
// interrupted after that write and before the genesis record opens again
// on the state it left.
func TestGenesisStateOnDisk(t *testing.T) {
	dir := t.TempDir()
	spec := devSpec(t, 5)
	const funded = 2000
	for i := 0; i < funded; i++ {
		spec.Alloc[account(i)] = types.Account{Balance: big.NewInt(int64(i + 1))}
	}
	l, err := Open(dir, spec, Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	root := l.Genesis().Root()
	if got := diskRoot(l.kv); got != root {
		t.Fatalf("state on disk after the first Open: %s, genesis %s", got.TerminalString(), root.TerminalString())
	}
	flat, err := l.triedb.StateReader(root)
	if err != nil {
		t.Fatalf("flat state of the genesis: %v", err)
	}
	if acct, err := flat.Account(crypto.Keccak256Hash(account(7).Bytes())); err != nil || acct == nil || acct.Balance.Uint64() != 8 {
		t.Fatalf("flat account 7 of the genesis: %+v, %v", acct, err)
	}
	commitNext(t, l, setBalances(99, 7))
	if got := balance(t, l, l.Head().Root, 7); got != 99 {
		t.Fatalf("balance after a height: %d", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// The genesis state on disk, no chain recorded yet.
	dir2 := t.TempDir()
	l, err = Open(dir2, spec, Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range [][]byte{keyGenesis, keyHead} {
		if err := l.kv.Delete(k); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir2, spec, Options{}, quiet)
	if err != nil {
		t.Fatalf("open after a first start interrupted past the genesis state: %v", err)
	}
	defer l.Close()
	if l.Genesis().Root() != root || l.Head().Number.Uint64() != 0 {
		t.Fatalf("genesis %s head %d", l.Genesis().Root().TerminalString(), l.Head().Number)
	}
	if got := balance(t, l, root, funded-1); got != funded {
		t.Fatalf("balance of the last funded account: %d", got)
	}
}
