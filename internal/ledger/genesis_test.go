package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/triedb"
	"github.com/ethereum/go-ethereum/triedb/pathdb"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
	"github.com/charter-ledger/charter/internal/system"
)

// randomAlloc funds n random accounts of every kind the streamed genesis
// tells apart: plain ones, empty ones (not in the state), nonce only,
// with code, with storage (some with storage alone and nothing else,
// which EIP-161 drops), and system accounts the seed also writes.
func randomAlloc(rng *rand.Rand, spec *chain.Spec, n int) {
	for i := 0; i < n; i++ {
		var addr common.Address
		for j := range addr {
			addr[j] = byte(rng.UintN(256))
		}
		acct := types.Account{}
		switch rng.IntN(8) {
		case 0:
			acct.Balance = new(big.Int)
		case 1:
			acct.Nonce = rng.Uint64N(5) + 1
		case 2:
			acct.Balance = big.NewInt(rng.Int64N(1e18))
			acct.Code = []byte{0x60, byte(rng.UintN(256)), 0x00}
		case 3:
			acct.Storage = map[common.Hash]common.Hash{}
			for k := rng.IntN(40); k >= 0; k-- {
				acct.Storage[common.Hash{byte(rng.UintN(256)), byte(k)}] = common.Hash{31: byte(rng.UintN(255)) + 1}
			}
			if rng.IntN(2) == 0 {
				acct.Balance = big.NewInt(7)
				acct.Code = []byte{0xfe, byte(i)}
			}
		default:
			acct.Balance = new(big.Int).Lsh(big.NewInt(rng.Int64N(1e9)+1), uint(rng.IntN(100)))
			acct.Nonce = rng.Uint64N(3)
		}
		spec.Alloc[addr] = acct
	}
	if rng.IntN(2) == 0 {
		spec.Alloc[system.RegistryAddress] = types.Account{Balance: big.NewInt(5)}
	}
	if rng.IntN(2) == 0 {
		spec.Alloc[system.GovernanceAddress] = types.Account{Balance: big.NewInt(9), Storage: map[common.Hash]common.Hash{{1}: {2}}}
	}
}

// stateDBGenesis writes the genesis of spec the way a StateDB does into
// a pathdb over a memory store, as the ledger did before it streamed it,
// and returns the store.
func stateDBGenesis(t *testing.T, spec *chain.Spec) (common.Hash, ethdb.Database) {
	db := rawdb.NewMemoryDatabase()
	tdb := triedb.NewDatabase(db, &triedb.Config{PathDB: &pathdb.Config{TrienodeHistory: -1, NoAsyncGeneration: true}})
	l := &Ledger{spec: spec}
	_, st, err := l.buildGenesis(state.NewDatabase(tdb, state.NewCodeDB(db)))
	if err != nil {
		t.Fatal(err)
	}
	root, err := st.Commit(spec.Config.Rules(common.Big0, true, uint64(spec.Timestamp)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := tdb.Commit(root, false); err != nil {
		t.Fatal(err)
	}
	if err := tdb.Close(); err != nil {
		t.Fatal(err)
	}
	return root, db
}

// The streamed genesis has the root, trie nodes and flat state that
// building it through a StateDB gives, on random allocations.
func TestGenesisStreamedMatchesStateDB(t *testing.T) {
	simnet.RunSeeds(t, 6, 200, func(seed int64) error {
		rng := rand.New(rand.NewPCG(uint64(seed), 0))
		spec, err := chain.DevSpec(5, 1000)
		if err != nil {
			return err
		}
		randomAlloc(rng, spec, rng.IntN(300))
		want, ref := stateDBGenesis(t, spec)
		got, err := genesisState(spec, nil)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("streamed root %s, StateDB root %s", got.TerminalString(), want.TerminalString())
		}
		// The store a new ledger writes holds the same state entries.
		dir := t.TempDir()
		l, err := Open(dir, spec, Options{}, quiet)
		if err != nil {
			return err
		}
		defer l.Close()
		if l.Genesis().Root() != want {
			return fmt.Errorf("ledger genesis root %s, want %s", l.Genesis().Root().TerminalString(), want.TerminalString())
		}
		for _, p := range [][]byte{rawdb.TrieNodeAccountPrefix, rawdb.TrieNodeStoragePrefix, rawdb.SnapshotAccountPrefix, rawdb.SnapshotStoragePrefix, rawdb.CodePrefix} {
			a, b := collect(ref.NewIterator(p, nil), p), collect(l.kv.NewIterator(p, nil), p)
			if err := sameEntries(a, b); err != nil {
				return fmt.Errorf("prefix %q: %v", p, err)
			}
		}
		return nil
	})
}

// collect reads the state entries under prefix (code: 33-byte keys only,
// Charter's own records share its prefix).
func collect(it interface {
	Next() bool
	Key() []byte
	Value() []byte
	Release()
}, prefix []byte) map[string][]byte {
	defer it.Release()
	out := make(map[string][]byte)
	for it.Next() {
		if bytes.Equal(prefix, rawdb.CodePrefix) && len(it.Key()) != 1+common.HashLength {
			continue
		}
		out[string(it.Key())] = common.CopyBytes(it.Value())
	}
	return out
}

func sameEntries(want, got map[string][]byte) error {
	for k, v := range want {
		if g, ok := got[k]; !ok {
			return fmt.Errorf("streamed store lacks %x", k)
		} else if !bytes.Equal(g, v) {
			return fmt.Errorf("%x: streamed %x, StateDB %x", k, g, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			return fmt.Errorf("streamed store has %x, the StateDB's not", k)
		}
	}
	return nil
}

// Open of an existing ledger compares the spec's fingerprint and does
// not compute the genesis; a ledger without the record (an earlier
// release's) or with a genesis file changed outside the genesis computes
// it once and records the fingerprint; another genesis is refused in one
// line.
func TestOpenChecksGenesisByFingerprint(t *testing.T) {
	dir := t.TempDir()
	spec := devSpec(t, 5)
	for i := 0; i < 50; i++ {
		spec.Alloc[account(i)] = types.Account{Balance: big.NewInt(int64(i + 1))}
	}
	computed := 0
	testGenesisComputed = func() { computed++ }
	defer func() { testGenesisComputed = nil }()
	reopen := func(spec *chain.Spec) error {
		l, err := Open(dir, spec, Options{}, quiet)
		if err != nil {
			return err
		}
		return l.Close()
	}
	if err := reopen(spec); err != nil {
		t.Fatal(err)
	}
	computed = 0
	if err := reopen(spec); err != nil {
		t.Fatal(err)
	}
	if computed != 0 {
		t.Fatalf("reopening computed the genesis %d times", computed)
	}

	// A ledger of an earlier release has no fingerprint.
	l, err := Open(dir, spec, Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.kv.Delete(keySpec); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := reopen(spec); err != nil || computed != 1 {
		t.Fatalf("open without fingerprint: %v, genesis computed %d times", err, computed)
	}
	if err := reopen(spec); err != nil || computed != 1 {
		t.Fatalf("open after the fingerprint was recorded: %v, genesis computed %d times", err, computed)
	}

	// A field that does not enter the genesis.
	changed := *spec
	changed.BlockTimeMs = spec.BlockTimeMs + 500
	if err := reopen(&changed); err != nil || computed != 2 {
		t.Fatalf("open with the block time changed: %v, genesis computed %d times", err, computed)
	}

	// Another allocation, another chain id.
	other := devSpec(t, 5)
	for a, acct := range spec.Alloc {
		other.Alloc[a] = acct
	}
	other.Alloc[account(0)] = types.Account{Balance: big.NewInt(2)}
	for _, s := range []*chain.Spec{other, devSpec(t, 6)} {
		err := reopen(s)
		if !errors.Is(err, ErrGenesisMismatch) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("open with another genesis: %v", err)
		}
	}
	// The refused genesis files left the record alone.
	computed = 0
	if err := reopen(&changed); err != nil || computed != 0 {
		t.Fatalf("reopen: %v, genesis computed %d times", err, computed)
	}
}

// A first start interrupted after writing the state of one genesis and
// before the genesis record, followed by a start with another genesis,
// leaves the other genesis's state only (flat state included).
func TestInterruptedFirstStartWithAnotherGenesis(t *testing.T) {
	dir := t.TempDir()
	first := devSpec(t, 5)
	for i := 0; i < 300; i++ {
		first.Alloc[account(i)] = types.Account{Balance: big.NewInt(int64(i + 1))}
	}
	l, err := Open(dir, first, Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range [][]byte{keyGenesis, keyHead, keySpec} {
		if err := l.kv.Delete(k); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()

	second := devSpec(t, 5)
	second.Alloc[account(1000)] = types.Account{Balance: big.NewInt(3)}
	l, err = Open(dir, second, Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	want, ref := stateDBGenesis(t, second)
	if l.Genesis().Root() != want {
		t.Fatalf("genesis root %s, want %s", l.Genesis().Root().TerminalString(), want.TerminalString())
	}
	for _, p := range [][]byte{rawdb.TrieNodeAccountPrefix, rawdb.SnapshotAccountPrefix} {
		if err := sameEntries(collect(ref.NewIterator(p, nil), p), collect(l.kv.NewIterator(p, nil), p)); err != nil {
			t.Fatalf("prefix %q: %v", p, err)
		}
	}
	st, err := l.StateAt(want)
	if err != nil {
		t.Fatal(err)
	}
	if st.Exist(account(5)) || st.GetBalance(account(1000)).Uint64() != 3 {
		t.Fatal("state of the interrupted genesis remains")
	}
	var gen flatStateDone
	if err := rlp.DecodeBytes(rawdb.ReadSnapshotGenerator(l.kv), &gen); err != nil || !gen.Done {
		t.Fatalf("flat state generator record %+v, %v", gen, err)
	}
}

// largeGenesis is the data directory BenchmarkReopenLargeGenesis opens,
// written once per process (go test calls a benchmark twice).
var largeGenesis struct {
	once    sync.Once
	dir     string
	spec    *chain.Spec
	created time.Duration
	err     error
}

// BenchmarkReopenLargeGenesis measures the restart of a ledger whose
// genesis funds CHARTER_BENCH_ACCOUNTS accounts (default 100,000): Open
// and Close of the existing data directory. genesis-s is the first
// Open's, which writes the genesis.
func BenchmarkReopenLargeGenesis(b *testing.B) {
	n := 100_000
	if v := os.Getenv("CHARTER_BENCH_ACCOUNTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			b.Fatalf("CHARTER_BENCH_ACCOUNTS=%q: want a count of accounts", v)
		}
	}
	g := &largeGenesis
	g.once.Do(func() {
		g.dir, g.err = os.MkdirTemp("", "charter-genesis-")
		if g.err != nil {
			return
		}
		g.spec, g.err = chain.DevSpec(1337, 1000)
		if g.err != nil {
			return
		}
		for i := 0; i < n; i++ {
			g.spec.Alloc[common.BigToAddress(new(big.Int).Add(big.NewInt(int64(i)), new(big.Int).Lsh(big.NewInt(1), 64)))] = types.Account{Balance: big.NewInt(1)}
		}
		start := time.Now()
		l, err := Open(g.dir, g.spec, Options{}, quiet)
		if err != nil {
			g.err = err
			return
		}
		g.created = time.Since(start)
		g.err = l.Close()
	})
	if g.err != nil {
		b.Fatal(g.err)
	}
	b.Cleanup(func() {
		if b.N > 1 {
			os.RemoveAll(g.dir)
		}
	})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, err := Open(g.dir, g.spec, Options{}, quiet)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "open-s")
	b.ReportMetric(g.created.Seconds(), "genesis-s")
}

// The fingerprint covers every account field and the rest of the spec.
func TestSpecFingerprint(t *testing.T) {
	base := func() *chain.Spec {
		s := devSpec(t, 5)
		s.Alloc[account(1)] = types.Account{Balance: big.NewInt(10), Nonce: 2, Code: []byte{1},
			Storage: map[common.Hash]common.Hash{{1}: {2}, {3}: {4}}}
		s.Alloc[account(2)] = types.Account{Balance: big.NewInt(20)}
		return s
	}
	fp := func(s *chain.Spec) common.Hash {
		h, err := specFingerprint(s)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	want := fp(base())
	if fp(base()) != want {
		t.Fatal("fingerprint of the same spec differs")
	}
	for name, change := range map[string]func(s *chain.Spec){
		"balance":  func(s *chain.Spec) { s.Alloc[account(2)] = types.Account{Balance: big.NewInt(21)} },
		"nonce":    func(s *chain.Spec) { s.Alloc[account(2)] = types.Account{Balance: big.NewInt(20), Nonce: 1} },
		"code":     func(s *chain.Spec) { a := s.Alloc[account(1)]; a.Code = []byte{2}; s.Alloc[account(1)] = a },
		"slot":     func(s *chain.Spec) { s.Alloc[account(1)].Storage[common.Hash{3}] = common.Hash{5} },
		"account":  func(s *chain.Spec) { s.Alloc[account(3)] = types.Account{} },
		"moved":    func(s *chain.Spec) { s.Alloc[account(4)] = s.Alloc[account(2)]; delete(s.Alloc, account(2)) },
		"chain id": func(s *chain.Spec) { s.Config.ChainID = big.NewInt(6) },
		"time":     func(s *chain.Spec) { s.Timestamp++ },
	} {
		s := base()
		change(s)
		if fp(s) == want {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
}

// An archive ledger (hash scheme) gets the streamed genesis by hash, with
// its contracts' code and storage readable.
func TestGenesisStreamedArchive(t *testing.T) {
	spec := devSpec(t, 5)
	rng := rand.New(rand.NewPCG(1, 2))
	randomAlloc(rng, spec, 200)
	want, _ := stateDBGenesis(t, spec)
	l, err := Open(t.TempDir(), spec, Options{StateHistory: StateArchive}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.StateHistory() != StateArchive || l.Genesis().Root() != want {
		t.Fatalf("archive genesis root %s, want %s", l.Genesis().Root().TerminalString(), want.TerminalString())
	}
	st, err := l.StateAt(want)
	if err != nil {
		t.Fatal(err)
	}
	for addr, acct := range spec.Alloc {
		if len(acct.Code) == 0 && acct.Nonce == 0 && (acct.Balance == nil || acct.Balance.Sign() == 0) {
			continue // empty, not in the state (EIP-161), storage or not
		}
		if !bytes.Equal(st.GetCode(addr), acct.Code) && addr != system.RegistryAddress && addr != system.GovernanceAddress {
			t.Fatalf("code of %s: %x, want %x", addr, st.GetCode(addr), acct.Code)
		}
		for k, v := range acct.Storage {
			if got := st.GetState(addr, k); got != v {
				t.Fatalf("slot %s of %s: %s, want %s", k, addr, got, v)
			}
		}
	}
	commitNext(t, l, setBalances(5, 1))
}
