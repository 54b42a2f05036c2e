package ledger

import (
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/holiman/uint256"
)

// A view of the head keeps its state readable, accounts and storage,
// after the head has moved beyond the kept window and the state on disk
// has been rewritten several times; released, it reads nothing.
func TestViewHeadOutlastsTheWindow(t *testing.T) {
	const window, accounts = 2, 40
	l, err := Open(t.TempDir(), devSpec(t, 5), Options{StateHistory: window, StateFlushHeights: 3}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	slot := common.HexToHash("0x07")
	mutate := func(v uint64) func(*state.StateDB) {
		return func(st *state.StateDB) {
			for i := 0; i < accounts; i++ {
				st.SetBalance(account(i), uint256.NewInt(v*1000+uint64(i)), 0)
			}
			st.SetState(account(0), slot, common.BigToHash(new(uint256.Int).SetUint64(v).ToBig()))
		}
	}
	for v := uint64(1); v <= 5; v++ {
		commitNext(t, l, mutate(v))
	}
	view, err := l.ViewHead()
	if err != nil {
		t.Fatal(err)
	}
	defer view.Release()
	pinned := l.Head()
	if view.Height() != pinned.Number.Uint64() {
		t.Fatalf("view of height %d, head %d", view.Height(), pinned.Number)
	}
	for v := uint64(6); v <= 30; v++ {
		commitNext(t, l, mutate(v))
	}
	if _, err := l.StateAt(pinned.Root); !errors.Is(err, ErrStateNotKept) {
		t.Fatalf("live state of block %d at head %d: err %v, want ErrStateNotKept", pinned.Number, l.Head().Number, err)
	}

	acc, err := trie.New(trie.StateTrieID(pinned.Root), view.NodeDatabase())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < accounts; i++ {
		body, err := acc.Get(crypto.Keccak256(account(i).Bytes()))
		if err != nil {
			t.Fatalf("account %d: %v", i, err)
		}
		a, err := types.FullAccount(body)
		if err != nil {
			t.Fatalf("account %d: %v", i, err)
		}
		if want := uint64(5000 + i); a.Balance.Uint64() != want {
			t.Fatalf("account %d: balance %d in the view, want %d", i, a.Balance.Uint64(), want)
		}
		if i != 0 {
			continue
		}
		owner := crypto.Keccak256Hash(account(0).Bytes())
		st, err := trie.New(trie.StorageTrieID(pinned.Root, owner, a.Root), view.NodeDatabase())
		if err != nil {
			t.Fatal(err)
		}
		enc, err := st.Get(crypto.Keccak256(slot[:]))
		if err != nil {
			t.Fatal(err)
		}
		if _, content, _, err := rlp.Split(enc); err != nil || new(uint256.Int).SetBytes(content).Uint64() != 5 {
			t.Fatalf("slot in the view: %x (%v), want 5", enc, err)
		}
	}
	if _, err := view.NodeDatabase().NodeReader(l.Head().Root); err == nil {
		t.Fatal("the view opened a state other than its own")
	}

	view.Release()
	fresh, err := trie.New(trie.StateTrieID(pinned.Root), view.NodeDatabase())
	if err == nil {
		_, err = fresh.Get(crypto.Keccak256(account(1).Bytes()))
	}
	if err == nil {
		t.Fatal("a released view still reads")
	}
}

// A view left open does not keep the ledger from closing.
func TestCloseWithAViewOpen(t *testing.T) {
	l, err := Open(t.TempDir(), devSpec(t, 5), Options{StateHistory: 4}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	commitNext(t, l, setBalances(9, 1, 2))
	view, err := l.ViewHead()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("close with a view open: %v", err)
	}
	if _, err := view.NodeDatabase().NodeReader(view.Head().Root); err != nil {
		t.Fatal(err)
	}
	r, _ := view.NodeDatabase().NodeReader(view.Head().Root)
	if _, err := r.Node(common.Hash{}, nil, view.Head().Root); err == nil {
		t.Fatal("a view of a closed ledger still reads")
	}
}
