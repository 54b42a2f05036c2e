package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/consensus/simnet"
	"github.com/charter-ledger/charter/internal/privacy"
	"github.com/charter-ledger/charter/internal/system"
)

// slotRef is a slot of a system account, by its raw key.
type slotRef struct {
	addr common.Address
	key  common.Hash
}

// sysTracker remembers what the random system changes touched, to
// compare every one of them afterwards.
type sysTracker struct {
	slots  map[slotRef]bool
	groups map[common.Hash]bool
	ids    map[privacy.Identity]bool
	usage  map[common.Hash]bool // hashed usage slots written
	// successful group actions, so that a run that creates none fails
	groupActs int
}

func newSysTracker() *sysTracker {
	return &sysTracker{slots: map[slotRef]bool{}, groups: map[common.Hash]bool{}, ids: map[privacy.Identity]bool{}, usage: map[common.Hash]bool{}}
}

// slotRecorder is a StateDB that records the system slots written.
type slotRecorder struct {
	*state.StateDB
	tr *sysTracker
}

func (r *slotRecorder) SetState(addr common.Address, key, value common.Hash) common.Hash {
	if r.tr != nil && system.IsSystem(addr) {
		r.tr.slots[slotRef{addr, key}] = true
	}
	return r.StateDB.SetState(addr, key, value)
}

// The pools the random changes draw from.
var (
	histOrgs = []string{"o1", "o2", "o3", chainDevOrg}
	histAccs = func() (a []common.Address) {
		for i := range 8 {
			a = append(a, common.BigToAddress(big.NewInt(int64(0x5000+i))))
		}
		return a
	}()
	histNodes = func() (a []common.Address) {
		for i := range 4 {
			a = append(a, common.BigToAddress(big.NewInt(int64(0x6000+i))))
		}
		return a
	}()
)

const chainDevOrg = "dev"

// sysMutate applies block number's random changes to st: transfers,
// usage of the day, registry records rewritten (organizations, accounts'
// roles and freezes, nodes, privacy keys, validators) through
// system.Seed, privacy groups created, changed and deleted, and raw
// writes to a few slots of each system account (set, overwritten,
// cleared). Both ledgers of a test apply it with equal generators.
func sysMutate(rng *rand.Rand, st *state.StateDB, number, time uint64, tr *sysTracker, transfersOnly bool) {
	rec := &slotRecorder{StateDB: st, tr: tr}
	for range rng.IntN(4) {
		st.SetBalance(account(rng.IntN(50)), uint256.NewInt(rng.Uint64N(1e9)), 0)
	}
	if rng.IntN(10) < 8 {
		// Usage goes around the recorder: it is not compared.
		// Of an organization of the registry, as every account's is,
		// or of none.
		sys := system.Open(st, number, time)
		orgs := append(sys.OrgNames(), "")
		org := orgs[rng.IntN(len(orgs))]
		sys.AddUsage(org, system.Usage{Txs: 1 + rng.Uint64N(100), Gas: rng.Uint64N(1e7), StateBytes: rng.Uint64N(1e4)})
		if tr != nil {
			for _, s := range system.UsageSlots(org, time/86400) {
				tr.usage[crypto.Keccak256Hash(s[:])] = true
			}
		}
	}
	if transfersOnly {
		return
	}
	if number == 1 {
		// Every organization in, each account an admin and writer of one.
		g := &system.Genesis{Policy: system.DefaultPolicy(), Validators: histNodes[:1]}
		for i, o := range histOrgs {
			g.Orgs = append(g.Orgs, system.Org{Name: o, Tier: system.TierValidate, Weight: 1, Status: system.StatusActive})
			g.Nodes = append(g.Nodes, system.Node{ID: histNodes[i], Org: o})
		}
		for i, a := range histAccs {
			g.Accounts = append(g.Accounts, system.Account{Address: a, Org: histOrgs[i%len(histOrgs)], Roles: system.RoleRead | system.RoleWrite | system.RoleAdmin})
		}
		system.Seed(rec, g)
	} else if rng.IntN(3) == 0 {
		g := &system.Genesis{Policy: system.DefaultPolicy(), Roots: map[string]string{}, PrivacyKeys: map[string]system.PrivacyKey{}}
		for _, o := range histOrgs[:1+rng.IntN(len(histOrgs))] {
			status := system.StatusActive
			if rng.IntN(6) == 0 {
				status = system.StatusSuspended
			}
			g.Orgs = append(g.Orgs, system.Org{Name: o, Tier: system.TierValidate, Weight: 1 + rng.Uint64N(3), Status: status})
			if rng.IntN(3) == 0 {
				k := make(system.PrivacyKey, privacy.PublicKeySize)
				for i := range k {
					k[i] = byte(rng.Uint32())
				}
				g.PrivacyKeys[o] = k
				if tr != nil {
					tr.ids[k.Identity()] = true
				}
			}
		}
		for range rng.IntN(4) {
			a := histAccs[rng.IntN(len(histAccs))]
			g.Accounts = append(g.Accounts, system.Account{Address: a, Org: histOrgs[rng.IntN(len(histOrgs))],
				Roles: system.Role(rng.Uint32N(32)), Frozen: rng.IntN(5) == 0})
		}
		for range rng.IntN(3) {
			id := histNodes[rng.IntN(len(histNodes))]
			g.Nodes = append(g.Nodes, system.Node{ID: id, Org: histOrgs[rng.IntN(len(histOrgs))], Revoked: rng.IntN(4) == 0})
		}
		g.Validators = histNodes[:1+rng.IntN(len(histNodes))]
		system.Seed(rec, g)
	}
	sys := system.Open(rec, number, time)
	for range rng.IntN(4) {
		caller := histAccs[rng.IntN(len(histAccs))]
		members := []string{sys.Account(caller).Org, histOrgs[rng.IntN(len(histOrgs))]}
		if members[0] == "" {
			members[0] = histOrgs[0]
		}
		var gid common.Hash
		if len(tr.groups) > 0 {
			// Go over the known groups in a fixed order.
			ids := make([]common.Hash, 0, len(tr.groups))
			for id := range tr.groups {
				ids = append(ids, id)
			}
			sortHashes(ids)
			gid = ids[rng.IntN(len(ids))]
		}
		var err error
		switch rng.IntN(4) {
		case 0:
			var g system.Group
			g, err = sys.CreateGroup(caller, common.Hash{}, fmt.Sprintf("g%d", number), "", members)
			if err == nil {
				tr.groups[g.ID] = true
			}
		case 1:
			_, _, err = sys.AddGroupMembers(caller, gid, members[:1])
		case 2:
			_, _, err = sys.RemoveGroupMember(caller, gid, members[0])
		case 3:
			_, err = sys.DeleteGroup(caller, gid)
		}
		if err == nil {
			tr.groupActs++
		}
	}
	for _, addr := range sysHistAccounts {
		for range rng.IntN(3) {
			key := common.BigToHash(big.NewInt(int64(rng.IntN(12))))
			var v common.Hash
			if rng.IntN(3) > 0 {
				v = common.BigToHash(new(big.Int).SetUint64(rng.Uint64()))
			}
			rec.SetState(addr, key, v)
		}
	}
}

func sortHashes(h []common.Hash) {
	for i := 1; i < len(h); i++ {
		for j := i; j > 0 && strings.Compare(string(h[j][:]), string(h[j-1][:])) < 0; j-- {
			h[j], h[j-1] = h[j-1], h[j]
		}
	}
}

// commitAfter commits the child of the head, dt seconds later, with the
// state changed by mutate.
func commitAfter(t testing.TB, l *Ledger, dt uint64, mutate func(st *state.StateDB, number, time uint64)) *types.Block {
	t.Helper()
	head := l.Head()
	st, err := l.StateAt(head.Root)
	if err != nil {
		t.Fatalf("state of head %d: %v", head.Number, err)
	}
	number := new(big.Int).Add(head.Number, common.Big1)
	time := head.Time + dt
	mutate(st, number.Uint64(), time)
	root := st.IntermediateRoot(l.spec.Config.Rules(number, true, time))
	header := &types.Header{ParentHash: head.Hash(), Number: number, Root: root, GasLimit: head.GasLimit,
		Time: time, Difficulty: new(big.Int), BaseFee: head.BaseFee}
	block := types.NewBlock(header, &types.Body{Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
	if err := l.Commit(block, nil, st, nil); err != nil {
		t.Fatalf("commit %d: %v", number, err)
	}
	return block
}

// compareSystemState checks SystemStateAt(n) of l against the archive's
// state of block n, slot by slot and through system.Read, for n in
// [from, to]; it returns how many blocks were read from the history.
func compareSystemState(t *testing.T, l, archive *Ledger, tr *sysTracker, from, to uint64) int {
	t.Helper()
	fromHistory := 0
	for n := from; n <= to; n++ {
		got, err := l.SystemStateAt(n)
		if err != nil {
			t.Fatalf("SystemStateAt(%d): %v", n, err)
		}
		if _, ok := got.(*sysHistReader); ok {
			fromHistory++
		}
		want, err := archive.StateAt(archive.HeaderByNumber(n).Root)
		if err != nil {
			t.Fatalf("archive state %d: %v", n, err)
		}
		for s := range tr.slots {
			if g, w := got.GetState(s.addr, s.key), want.GetState(s.addr, s.key); g != w {
				t.Fatalf("block %d (head %d): slot %x of %s: history %x, archive %x", n, l.Head().Number, s.key, s.addr.Hex(), g, w)
			}
		}
		gr, wr := system.Read(onlySystem{t, got}), system.Read(want)
		check := func(what string, g, w any) {
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("block %d: %s: history %+v, archive %+v", n, what, g, w)
			}
		}
		check("organizations", gr.Orgs(), wr.Orgs())
		check("validators", gr.Validators(), wr.Validators())
		for id := range tr.groups {
			g, gok := gr.Group(id)
			w, wok := wr.Group(id)
			check("group "+id.Hex(), fmt.Sprint(gok, g), fmt.Sprint(wok, w))
		}
		for _, id := range histNodes {
			g, gok := gr.Node(id)
			w, wok := wr.Node(id)
			check("node "+id.Hex(), fmt.Sprint(gok, g), fmt.Sprint(wok, w))
		}
		for _, a := range histAccs {
			check("sender "+a.Hex(), gr.SenderOf(a), wr.SenderOf(a))
		}
		for id := range tr.ids {
			g, gok := gr.PrivacyKeyOrg(id)
			w, wok := wr.PrivacyKeyOrg(id)
			check("privacy key org", fmt.Sprint(gok, g), fmt.Sprint(wok, w))
		}
		for _, o := range histOrgs {
			check("privacy key of "+o, gr.PrivacyKey(o), wr.PrivacyKey(o))
		}
	}
	return fromHistory
}

// onlySystem fails a test that reads an account other than the system
// accounts: the history answers zero for those (SystemStateAt).
type onlySystem struct {
	t *testing.T
	r system.StateReader
}

func (o onlySystem) GetState(addr common.Address, key common.Hash) common.Hash {
	if !system.IsSystem(addr) {
		o.t.Fatalf("system.Read read account %s", addr.Hex())
	}
	return o.r.GetState(addr, key)
}

// TestSystemStateHistoryMatchesArchive feeds a path-scheme ledger that
// keeps 4 heights and an archive the same blocks of random system
// changes and transfers, and compares the registry as of every block.
func TestSystemStateHistoryMatchesArchive(t *testing.T) {
	seeds, err := simnet.Seeds(3, 200)
	if err != nil {
		t.Fatal(err)
	}
	const blocks = 40
	groupActs := 0
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			spec := devSpec(t, 5)
			dir := t.TempDir()
			l, err := Open(dir, spec, Options{StateHistory: 4, CacheMB: 8, TrieCacheMB: 8}, quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			archive, err := Open(t.TempDir(), spec, Options{StateHistory: StateArchive, CacheMB: 8, TrieCacheMB: 8}, quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer archive.Close()
			if start, ok := l.SystemHistoryStart(); !ok || start != 0 {
				t.Fatalf("history start %d, %v: want 0 for a new ledger", start, ok)
			}
			if _, ok := archive.SystemHistoryStart(); ok {
				t.Fatal("an archive keeps a history")
			}
			tr, tra := newSysTracker(), newSysTracker()
			rl, ra := rand.New(rand.NewPCG(uint64(seed), 1)), rand.New(rand.NewPCG(uint64(seed), 1))
			times := rand.New(rand.NewPCG(uint64(seed), 2))
			for range blocks {
				dt := uint64(1)
				if times.IntN(5) == 0 {
					dt = 86400/3 + times.Uint64N(100) // the day changes every few blocks
				}
				bl := commitAfter(t, l, dt, func(st *state.StateDB, n, tm uint64) { sysMutate(rl, st, n, tm, tr, false) })
				ba := commitAfter(t, archive, dt, func(st *state.StateDB, n, tm uint64) { sysMutate(ra, st, n, tm, tra, false) })
				if bl.Hash() != ba.Hash() {
					t.Fatalf("block %d differs between the ledgers", bl.NumberU64())
				}
			}
			if got := compareSystemState(t, l, archive, tr, 0, blocks); got < blocks-5 {
				t.Fatalf("%d blocks read from the history, want at least %d", got, blocks-5)
			}
			groupActs += tr.groupActs
			t.Logf("%d system slots, %d groups (%d group actions), %d privacy keys compared at %d blocks", len(tr.slots), len(tr.groups), tr.groupActs, len(tr.ids), blocks+1)
			// No usage slot is in the history beyond the base.
			checkNoUsage(t, l, tr)
			// The same after a reopen.
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if l, err = Open(dir, spec, Options{StateHistory: 4, CacheMB: 8, TrieCacheMB: 8}, quiet); err != nil {
				t.Fatal(err)
			}
			compareSystemState(t, l, archive, tr, 0, blocks)
		})
	}
	if groupActs == 0 {
		t.Fatal("no privacy-group action succeeded in any seed: the test does not exercise group records")
	}
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func checkNoUsage(t *testing.T, l *Ledger, tr *sysTracker) {
	t.Helper()
	it := l.kv.NewIterator(append(common.CopyBytes(prefSysHist), system.RegistryAddress[:]...), nil)
	defer it.Release()
	for it.Next() {
		k := it.Key()
		n := binary.BigEndian.Uint64(k[len(k)-8:])
		sh := common.BytesToHash(k[len(prefSysHist)+common.AddressLength : len(k)-8])
		if n > 0 && tr.usage[sh] {
			t.Fatalf("usage slot %x recorded at block %d", sh, n)
		}
	}
}

// TestSystemHistoryOfTransfersIsEmpty: blocks of transfers (with their
// usage records) add nothing to the history.
func TestSystemHistoryOfTransfersIsEmpty(t *testing.T) {
	l, err := Open(t.TempDir(), devSpec(t, 5), Options{StateHistory: 4, CacheMB: 8, TrieCacheMB: 8}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	tr := newSysTracker()
	const blocks = 300
	for i := range blocks {
		dt := uint64(1)
		if i%50 == 0 {
			dt = 86400 / 2 // across days
		}
		commitAfter(t, l, dt, func(st *state.StateDB, n, tm uint64) { sysMutate(rng, st, n, tm, tr, true) })
	}
	if len(tr.usage) == 0 {
		t.Fatal("no usage written")
	}
	baseN, baseB, err := l.SystemHistoryBytes(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, b, err := l.SystemHistoryBytes(1, blocks)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("base: %d entries, %d bytes; %d blocks of transfers: %d entries, %d bytes", baseN, baseB, blocks, n, b)
	if baseN == 0 {
		t.Fatal("no base")
	}
	if n != 0 {
		t.Fatalf("%d history entries (%d bytes) for %d blocks of transfers, want none", n, b, blocks)
	}
	// A system action is recorded: one record of the registry.
	commitAfter(t, l, 1, func(st *state.StateDB, n, tm uint64) {
		system.Seed(st, &system.Genesis{Policy: system.DefaultPolicy(), Orgs: []system.Org{{Name: "newcomer", Tier: system.TierWrite, Weight: 1, Status: system.StatusActive}}})
	})
	n, b, err = l.SystemHistoryBytes(blocks+1, blocks+1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("an organization admitted (with the genesis policy written again): %d entries, %d bytes", n, b)
	if n == 0 {
		t.Fatal("a system action left no history")
	}
}

// TestSystemHistoryBeforeStart: a ledger of an earlier release (no
// history) starts one at its head when opened, and says so for earlier
// blocks; later blocks are read from the history.
func TestSystemHistoryBeforeStart(t *testing.T) {
	dir := t.TempDir()
	spec := devSpec(t, 5)
	opts := Options{StateHistory: 4, CacheMB: 8, TrieCacheMB: 8}
	l, err := Open(dir, spec, opts, quiet)
	if err != nil {
		t.Fatal(err)
	}
	slot := common.HexToHash("0x77")
	for i := range 10 {
		commitAfter(t, l, 1, func(st *state.StateDB, n, tm uint64) {
			st.SetState(system.GovernanceAddress, slot, common.BigToHash(big.NewInt(int64(i+1))))
		})
	}
	// As an earlier release left it: no history.
	b := l.kv.NewBatch()
	if err := b.DeleteRange(prefSysHist, upperBound(prefSysHist)); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(keySysHistStart); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	l, err = Open(dir, spec, opts, slogTo(&logs))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if start, ok := l.SystemHistoryStart(); !ok || start != 10 {
		t.Fatalf("history starts at %d (%v), want the head 10", start, ok)
	}
	if !strings.Contains(logs.String(), "Started the history") {
		t.Fatalf("no log of the history's start: %s", logs.String())
	}
	for i := range 10 {
		commitAfter(t, l, 1, func(st *state.StateDB, n, tm uint64) {
			st.SetState(system.GovernanceAddress, slot, common.BigToHash(big.NewInt(int64(11+i))))
		})
	}
	for n := uint64(10); n <= 20; n++ {
		r, err := l.SystemStateAt(n)
		if err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		if got := r.GetState(system.GovernanceAddress, slot).Big().Uint64(); got != n {
			t.Fatalf("block %d: slot %d", n, got)
		}
		if got := r.GetState(account(1), slot); got != (common.Hash{}) && n < 16 {
			t.Fatalf("block %d: another account reads %x", n, got)
		}
	}
	_, err = l.SystemStateAt(9)
	var nk *SystemStateNotKeptError
	if !errors.As(err, &nk) || !errors.Is(err, ErrSystemStateNotKept) || nk.Start != 10 {
		t.Fatalf("block 9: %v, want the history's start", err)
	}
	for _, want := range []string{"starts at block 10", "--state.history all"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
}

// TestSystemHistoryAfterCrash: the heights a crash lost are replayed at
// Open and their history written again (here it was deleted first).
func TestSystemHistoryAfterCrash(t *testing.T) {
	dir := t.TempDir()
	spec := devSpec(t, 5)
	slot := common.HexToHash("0x78")
	set := func(st *state.StateDB, n uint64) {
		st.SetState(system.GovernanceAddress, slot, common.BigToHash(new(big.Int).SetUint64(n)))
		st.SetBalance(account(1), uint256.NewInt(n), 0)
	}
	opts := Options{StateHistory: 4, CacheMB: 8, TrieCacheMB: 8, Replay: func(_ *Ledger, _ *types.Header, block *types.Block, st *state.StateDB) error {
		set(st, block.NumberU64())
		return nil
	}}
	l, err := Open(dir, spec, opts, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		commitAfter(t, l, 1, func(st *state.StateDB, n, tm uint64) { set(st, n) })
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash: the layers journaled by Close are lost, so Open replays
	// the heights above the state on disk; their history is deleted too,
	// to see it written again.
	kv, err := openKVStore(dir+"/chaindata", KVOptions{CacheMB: 8}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	rawdb.WriteTrieJournal(kv, []byte{})
	for n := uint64(1); n <= 20; n++ {
		if err := kv.Delete(sysHistKey(system.GovernanceAddress, crypto.Keccak256Hash(slot[:]), n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Close(); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	l, err = Open(dir, spec, opts, slogTo(&logs))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, after, ok := strings.Cut(logs.String(), "rebuilding the state")
	var from uint64
	if ok {
		_, after, ok = strings.Cut(after, "from=")
	}
	if _, err := fmt.Sscan(after, &from); !ok || err != nil || from == 0 || from > 20 {
		t.Fatalf("Open replayed nothing: %s", logs.String())
	}
	for n := from; n <= 20; n++ {
		r, err := l.SystemStateAt(n)
		if err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		if got := r.GetState(system.GovernanceAddress, slot).Big().Uint64(); got != n {
			t.Fatalf("block %d after the crash: slot %d", n, got)
		}
	}
}

// BenchmarkCommitSystemHistory is the cost of the history in Commit: two
// ledgers, one keeping the history and one not (as before it), commit
// the same blocks of 200 transfers and their usage record in turn; the
// medians of their commit times and the ratio are reported (measured in
// one run, since the machine is noisy).
func BenchmarkCommitSystemHistory(b *testing.B) {
	var ls [2]*Ledger
	for i := range ls {
		l, err := Open(b.TempDir(), devSpec(&testing.T{}, 5), Options{StateHistory: 4, CacheMB: 64, TrieCacheMB: 64}, quiet)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		l.sysHist = i == 1
		ls[i] = l
	}
	var took [2][]time.Duration
	rng := rand.New(rand.NewPCG(1, 1))
	b.ResetTimer()
	for range b.N {
		var changes [200]struct {
			i int
			v uint64
		}
		for j := range changes {
			changes[j].i, changes[j].v = rng.IntN(5000), rng.Uint64N(1e9)
		}
		for i, l := range ls {
			head := l.Head()
			st, err := l.StateAt(head.Root)
			if err != nil {
				b.Fatal(err)
			}
			number, tm := new(big.Int).Add(head.Number, common.Big1), head.Time+1
			for _, c := range changes {
				st.SetBalance(account(c.i), uint256.NewInt(c.v), 0)
			}
			system.Open(st, number.Uint64(), tm).AddUsage(chainDevOrg, system.Usage{Txs: 200, Gas: 200 * 21000})
			root := st.IntermediateRoot(l.spec.Config.Rules(number, true, tm))
			block := types.NewBlock(&types.Header{ParentHash: head.Hash(), Number: number, Root: root, GasLimit: head.GasLimit,
				Time: tm, Difficulty: new(big.Int), BaseFee: head.BaseFee}, &types.Body{Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
			start := time.Now()
			if err := l.Commit(block, nil, st, nil); err != nil {
				b.Fatal(err)
			}
			took[i] = append(took[i], time.Since(start))
		}
	}
	b.StopTimer()
	med := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Microseconds())
	}
	without, with := med(took[0]), med(took[1])
	b.ReportMetric(without, "µs/commit-without")
	b.ReportMetric(with, "µs/commit-with")
	b.ReportMetric(with/without, "ratio")
}

// TestSystemHistoryAfterMoveAndCheckpoint: an archive (as a snapshot
// import writes too) moved to the path scheme starts its history at its
// head; a checkpoint of it carries the history, and the copy reads it.
func TestSystemHistoryAfterMoveAndCheckpoint(t *testing.T) {
	dir := t.TempDir()
	spec := devSpec(t, 5)
	slot := common.HexToHash("0x79")
	set := func(st *state.StateDB, n uint64) {
		st.SetState(system.RegistryAddress, slot, common.BigToHash(new(big.Int).SetUint64(n)))
	}
	l, err := Open(dir, spec, Options{StateHistory: StateArchive, CacheMB: 8, TrieCacheMB: 8}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		commitAfter(t, l, 1, func(st *state.StateDB, n, tm uint64) { set(st, n) })
	}
	// An archive reads every block's state, and keeps no history.
	for n := uint64(0); n <= 5; n++ {
		r, err := l.SystemStateAt(n)
		if err != nil {
			t.Fatalf("archive, block %d: %v", n, err)
		}
		if got := r.GetState(system.RegistryAddress, slot).Big().Uint64(); got != n {
			t.Fatalf("archive, block %d: slot %d", n, got)
		}
	}
	if _, ok := l.SystemHistoryStart(); ok {
		t.Fatal("an archive keeps a history")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	opts := Options{StateHistory: 2, CacheMB: 8, TrieCacheMB: 8, Replay: func(_ *Ledger, _ *types.Header, block *types.Block, st *state.StateDB) error {
		set(st, block.NumberU64())
		return nil
	}}
	if l, err = Open(dir, spec, opts, quiet); err != nil {
		t.Fatal(err)
	}
	if start, ok := l.SystemHistoryStart(); !ok || start != 5 {
		t.Fatalf("history after the move starts at %d (%v), want the head 5", start, ok)
	}
	for range 10 {
		commitAfter(t, l, 1, func(st *state.StateDB, n, tm uint64) { set(st, n) })
	}
	if _, err := l.SystemStateAt(4); !errors.Is(err, ErrSystemStateNotKept) {
		t.Fatalf("block 4, before the history: %v", err)
	}
	copyDir := t.TempDir() + "/copy"
	if _, err := l.Checkpoint(copyDir); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := Open(copyDir, spec, opts, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if start, ok := c.SystemHistoryStart(); !ok || start != 5 {
		t.Fatalf("copy's history starts at %d (%v), want 5", start, ok)
	}
	for n := uint64(5); n <= 15; n++ {
		r, err := c.SystemStateAt(n)
		if err != nil {
			t.Fatalf("copy, block %d: %v", n, err)
		}
		if got := r.GetState(system.RegistryAddress, slot).Big().Uint64(); got != n {
			t.Fatalf("copy, block %d: slot %d", n, got)
		}
	}
}

// BenchmarkSystemHistoryWork times only the work the history adds to a
// commit of a block of 200 transfers on a registry of 20 organizations:
// reading the organizations (for the usage slots) and picking the
// system slots out of the commit's update (on a state in memory). Compare
// with a commit's own time (BenchmarkCommitSystemHistory).
func BenchmarkSystemHistoryWork(b *testing.B) {
	sdb := state.NewDatabaseForTesting()
	st, err := state.New(types.EmptyRootHash, sdb)
	if err != nil {
		b.Fatal(err)
	}
	g := &system.Genesis{Policy: system.DefaultPolicy()}
	for i := range 20 {
		g.Orgs = append(g.Orgs, system.Org{Name: fmt.Sprintf("organization-%d", i), Tier: system.TierWrite, Weight: 1, Status: system.StatusActive})
	}
	system.Seed(st, g)
	spec := devSpec(&testing.T{}, 5)
	rules := spec.Config.Rules(common.Big0, true, 0)
	root, err := st.Commit(rules, 0)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	var work, orgsWork time.Duration
	var usage usageSkip
	b.ResetTimer()
	for n := uint64(1); n <= uint64(b.N); n++ {
		st, err := state.New(root, sdb)
		if err != nil {
			b.Fatal(err)
		}
		for range 200 {
			st.SetBalance(account(rng.IntN(5000)), uint256.NewInt(rng.Uint64N(1e9)), 0)
		}
		tm := 1_700_000_000 + n*600
		system.Open(st, n, tm).AddUsage(g.Orgs[n%20].Name, system.Usage{Txs: 200, Gas: 200 * 21000})
		start := time.Now()
		usage.prepare(st)
		work += time.Since(start)
		orgsWork += time.Since(start)
		var update *state.StateUpdate
		if root, update, err = st.CommitWithUpdate(rules, n); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		h := sysHistChanges(update, n, tm/86400, &usage)
		work += time.Since(start)
		if len(h) != 0 {
			b.Fatalf("%d entries for a block of transfers", len(h))
		}
	}
	b.ReportMetric(float64(work.Nanoseconds())/float64(b.N)/1000, "µs-history-work/block")
	b.ReportMetric(float64(orgsWork.Nanoseconds())/float64(b.N)/1000, "µs-orgs/block")
}

// TestSystemHistoryRestartsAfterOlderRelease: blocks committed without
// history (as a release before it would) make the history start again at
// the head rather than answer from a gap.
func TestSystemHistoryRestartsAfterOlderRelease(t *testing.T) {
	dir := t.TempDir()
	spec := devSpec(t, 5)
	opts := Options{StateHistory: 2, CacheMB: 8, TrieCacheMB: 8}
	slot := common.HexToHash("0x7a")
	set := func(st *state.StateDB, n, _ uint64) {
		st.SetState(system.GovernanceAddress, slot, common.BigToHash(new(big.Int).SetUint64(n)))
	}
	l, err := Open(dir, spec, opts, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		commitAfter(t, l, 1, set)
	}
	l.sysHist = false // an older release: no history, no history head
	for range 5 {
		commitAfter(t, l, 1, set)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	if l, err = Open(dir, spec, opts, slogTo(&logs)); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if start, ok := l.SystemHistoryStart(); !ok || start != 10 {
		t.Fatalf("history starts at %d (%v), want the head 10", start, ok)
	}
	if !strings.Contains(logs.String(), "starts again at the head") {
		t.Fatalf("no warning: %s", logs.String())
	}
	if _, err := l.SystemStateAt(6); !errors.Is(err, ErrSystemStateNotKept) {
		t.Fatalf("block 6, in the gap: %v", err)
	}
	if _, err := l.SystemStateAt(3); !errors.Is(err, ErrSystemStateNotKept) {
		t.Fatalf("block 3, before the gap: %v", err)
	}
	if n, _, err := l.SystemHistoryBytes(1, 9); err != nil || n != 0 {
		t.Fatalf("%d old entries kept (%v)", n, err)
	}
	for range 5 {
		commitAfter(t, l, 1, set)
	}
	for n := uint64(10); n <= 15; n++ {
		r, err := l.SystemStateAt(n)
		if err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		if got := r.GetState(system.GovernanceAddress, slot).Big().Uint64(); got != n {
			t.Fatalf("block %d: slot %d", n, got)
		}
	}
}
