package ledger

import (
	"bytes"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// hashNodes counts the trie nodes kept by hash in the store.
func hashNodes(t *testing.T, l *Ledger) int {
	t.Helper()
	n := 0
	it := l.kv.NewIterator(nil, nil)
	defer it.Release()
	for it.Next() {
		if len(it.Key()) == common.HashLength && bytes.Equal(crypto.Keccak256(it.Value()), it.Key()) {
			n++
		}
	}
	return n
}

// Archive mode keeps every height's state, across reopening with the
// default options; a window asked for explicitly moves it to the path
// scheme, which then refuses to serve as an archive again.
func TestArchiveKeepsHistory(t *testing.T) {
	dir := t.TempDir()
	spec := devSpec(t, 5)
	l, err := Open(dir, spec, Options{StateHistory: StateArchive}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []*types.Block
	for i := 1; i <= 20; i++ {
		blocks = append(blocks, commitNext(t, l, setBalances(uint64(i), 1, i)))
	}
	l.Close()
	if l, err = Open(dir, spec, Options{}, quiet); err != nil {
		t.Fatal(err)
	}
	if l.StateHistory() != StateArchive {
		t.Fatalf("reopened with default options: StateHistory() = %d, want StateArchive", l.StateHistory())
	}
	for i, b := range blocks {
		if got := balance(t, l, b.Root(), 1); got != uint64(i+1) {
			t.Fatalf("block %d: balance %d, want %d", b.NumberU64(), got, i+1)
		}
	}
	l.Close()

	if l, err = Open(dir, spec, Options{StateHistory: 8}, quiet); err != nil {
		t.Fatal(err)
	}
	if l.StateHistory() != 8 || hashNodes(t, l) != 0 {
		t.Fatalf("after asking for 8 blocks: StateHistory() = %d, %d hash-keyed nodes left", l.StateHistory(), hashNodes(t, l))
	}
	if _, err := l.StateAt(blocks[0].Root()); !errors.Is(err, ErrStateNotKept) {
		t.Fatalf("state of block 1 after the move: %v, want ErrStateNotKept", err)
	}
	l.Close()
	_, err = Open(dir, spec, Options{StateHistory: StateArchive}, quiet)
	if err == nil || !strings.Contains(err.Error(), "cannot serve --state.history all") {
		t.Fatalf("open a path-scheme directory as archive: %v", err)
	}
}

// A data directory of an earlier release (hash scheme, no scheme record)
// opens; with the default options it moves to the path scheme keeping the
// head, its state root and every balance, says so in one log line, frees
// the older state and goes on committing.
func TestMigrateFromHashScheme(t *testing.T) {
	dir := t.TempDir()
	spec := devSpec(t, 5)
	l, err := Open(dir, spec, Options{StateHistory: StateArchive}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	const accounts = 300
	for round := 1; round <= 10; round++ {
		commitNext(t, l, func(st *state.StateDB) {
			for i := range accounts {
				setBalances(uint64(round*1000+i), i)(st)
				if i%50 == 0 {
					st.SetState(account(i), common.Hash{byte(round)}, common.Hash{1, byte(i)})
				}
			}
		})
	}
	head := l.Head()
	before := hashNodes(t, l)
	l.Close()
	// What an earlier release leaves: no scheme record.
	kv, err := openKVStore(filepath.Join(dir, "chaindata"), KVOptions{CacheMB: 8}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(keyScheme); err != nil {
		t.Fatal(err)
	}
	kv.Close()

	var logs bytes.Buffer
	l, err = Open(dir, spec, Options{}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("open the earlier release's directory: %v", err)
	}
	if got := strings.Count(logs.String(), "Moved the state to the path scheme"); got != 1 {
		t.Fatalf("%d migration lines in the log:\n%s", got, logs.String())
	}
	t.Log(strings.TrimSpace(logs.String()))
	if l.Head().Hash() != head.Hash() || l.Head().Root != head.Root {
		t.Fatalf("head after migration %d %s, want %d %s", l.Head().Number, l.Head().Root, head.Number, head.Root)
	}
	if l.StateHistory() != DefaultStateHistory {
		t.Fatalf("StateHistory() = %d, want %d", l.StateHistory(), DefaultStateHistory)
	}
	st, err := l.StateAt(head.Root)
	if err != nil {
		t.Fatal(err)
	}
	for i := range accounts {
		if got := st.GetBalance(account(i)).Uint64(); got != uint64(10_000+i) {
			t.Fatalf("account %d: balance %d, want %d", i, got, 10_000+i)
		}
		if i%50 == 0 {
			if got := st.GetState(account(i), common.Hash{10}); got != (common.Hash{1, byte(i)}) {
				t.Fatalf("account %d: slot %x", i, got)
			}
		}
	}
	if after := hashNodes(t, l); before == 0 || after != 0 {
		t.Fatalf("hash-keyed nodes: %d before, %d after", before, after)
	}
	// It goes on, and the new heights are in its window.
	next := commitNext(t, l, setBalances(7, 1))
	commitNext(t, l, setBalances(8, 1))
	if got := balance(t, l, next.Root(), 1); got != 7 {
		t.Fatalf("balance at block %d: %d", next.NumberU64(), got)
	}
	l.Close()
	if l, err = Open(dir, spec, Options{}, quiet); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := balance(t, l, l.Head().Root, 1); got != 8 {
		t.Fatalf("after reopening: balance %d", got)
	}
}
