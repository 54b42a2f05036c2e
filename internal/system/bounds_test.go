package system

import (
	"bytes"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
)

// The bounds of governance work: per block, per organization, per
// argument, and the gas of what a proposal stores.

// countingState counts the storage slots read and written through it.
type countingState struct {
	st           *state.StateDB
	reads, write int
}

func (c *countingState) GetState(addr common.Address, key common.Hash) common.Hash {
	c.reads++
	return c.st.GetState(addr, key)
}

func (c *countingState) SetState(addr common.Address, key, value common.Hash) common.Hash {
	c.write++
	return c.st.SetState(addr, key, value)
}

func (c *countingState) Snapshot() int          { return c.st.Snapshot() }
func (c *countingState) RevertToSnapshot(i int) { c.st.RevertToSnapshot(i) }

// bigRoots is PEM text of the golden root certificate repeated to nearly
// the bound of a rootsPem argument: valid roots of about 8 KB.
func bigRoots() string {
	n := maxRootsForTest / len(goldenRootsPEM)
	return strings.Repeat(goldenRootsPEM, n)
}

const maxRootsForTest = 8192

// largeAddOrg is the arguments of an AddOrganization of about 8 KB, for
// organization "new<i>".
func largeAddOrg(t testing.TB, roots string, i int) []any {
	t.Helper()
	a := addOrgArgs{name: fmt.Sprintf("new%d", i), roots: roots, tier: uint8(TierWrite), weight: 1,
		admins: []common.Address{testAddr("newadmin", i)}}
	return a.vals()
}

// With 200 open proposals of about 8 KB each, the start of a block and
// DueAt read a handful of slots where nothing is due, and where one
// proposal expires, the slots of that one: never those of every open
// proposal.
func TestBlockWorkIndependentOfOpenProposals(t *testing.T) {
	const open = 200
	f := newFixture(t, withMaxOpen(64))
	roots := bigRoots()
	if len(roots) < 7000 {
		t.Fatalf("roots of %d bytes; want large arguments", len(roots))
	}
	// Proposal i is made at height 10+i, so that each expires at its own height.
	for i := 0; i < open; i++ {
		f.propose(uint64(10+i), 1+i%4, ActAddOrganization, largeAddOrg(t, roots, i)...)
	}
	f.root()
	expiry := DefaultPolicy().Rules[ClassMembership].ExpiryBlocks
	firstExpiry := 10 + expiry + 1 // proposal 1 was made at 10

	measure := func(h uint64) (due bool, dueReads, beginReads, beginWrites int) {
		c := &countingState{st: f.st}
		due = Open(c, h, blockTime(h)).DueAt(h)
		dueReads = c.reads
		c.reads = 0
		Open(c, h, blockTime(h)).BeginBlock(c)
		return due, dueReads, c.reads, c.write
	}
	// Nothing due: a block in between.
	due, dueReads, beginReads, beginWrites := measure(5000)
	t.Logf("nothing due with %d open: DueAt read %d slots, BeginBlock read %d, wrote %d", open, dueReads, beginReads, beginWrites)
	if due || dueReads > 4 || beginReads > 4 || beginWrites != 0 {
		t.Fatalf("with %d open proposals and nothing due: DueAt %v read %d slots, BeginBlock read %d and wrote %d; want at most 4 reads, no writes",
			open, due, dueReads, beginReads, beginWrites)
	}
	// One proposal expires: the work of one, small record.
	due, dueReads, beginReads, beginWrites = measure(firstExpiry)
	t.Logf("one due with %d open: DueAt read %d slots, BeginBlock read %d, wrote %d", open, dueReads, beginReads, beginWrites)
	if !due || dueReads > 4 || beginReads > 200 || beginWrites > 100 {
		t.Fatalf("with %d open proposals and one expiring: DueAt %v read %d slots, BeginBlock read %d and wrote %d; want at most 4, 200, 100",
			open, due, dueReads, beginReads, beginWrites)
	}
	if p := f.proposal(1); p.Status != ProposalExpired || p.Decided != firstExpiry {
		t.Fatalf("proposal 1 is %s decided at %d, want expired at %d", p.Status, p.Decided, firstExpiry)
	}
	if p := f.proposal(2); p.Status != ProposalOpen {
		t.Fatalf("proposal 2 is %s, want open", p.Status)
	}
	if n := len(Read(f.st).OpenProposals("org1")); n != open/4-1 {
		t.Fatalf("org1 has %d open proposals, want %d", n, open/4-1)
	}
	// Each proposal expires at its own height, and none is left.
	for h := firstExpiry + 1; h < firstExpiry+open; h++ {
		f.begin(h)
	}
	for o := 1; o <= 4; o++ {
		if ids := Read(f.st).OpenProposals(orgName(o)); len(ids) != 0 {
			t.Fatalf("%s still has open proposals %v", orgName(o), ids)
		}
	}
	if p := f.proposal(open); p.Status != ProposalExpired || !bytes.Equal(p.Args, f.args(ActAddOrganization, largeAddOrg(t, roots, open-1)...)) {
		t.Fatalf("proposal %d: %s, arguments kept %v", open, p.Status, len(p.Args))
	}
}

// An organization has at most maxOpenProposals open at once: proposal
// N+1 is refused with the reason, until one of them closes; other
// organizations are not held back.
func TestOpenProposalsPerOrganization(t *testing.T) {
	f := newFixture(t)
	limit := Read(f.st).Policy().MaxOpenProposals
	if limit != DefaultMaxOpenProposals {
		t.Fatalf("default bound %d, want %d", limit, DefaultMaxOpenProposals)
	}
	var ids []uint64
	for i := 0; i < int(limit); i++ {
		ids = append(ids, f.propose(10, 1, ActFreeze, testAddr("frozen", i)))
	}
	root := f.root()
	_, err := f.at(10).Propose(adminOf(1), ActFreeze, f.args(ActFreeze, testAddr("frozen", 99)), "one more")
	wantRevert(t, err, "organization org1 has 16 open proposals, at most 16: cancel one or wait until one is decided")
	if f.root() != root {
		t.Fatal("a refused proposal changed the state")
	}
	f.propose(10, 2, ActFreeze, testAddr("frozen", 99)) // org2 may
	if err := f.at(11).Cancel(adminOf(1), ids[3]); err != nil {
		t.Fatal(err)
	}
	f.propose(11, 1, ActFreeze, testAddr("frozen", 100))
	// A passed proposal is no longer open either.
	f.passVotes(12, ids[0])
	f.propose(12, 1, ActFreeze, testAddr("frozen", 101))
	_, err = f.at(12).Propose(adminOf(1), ActFreeze, f.args(ActFreeze, testAddr("frozen", 102)), "")
	wantRevertPrefix(t, err, "organization org1 has 16 open proposals")

	// Governance may change the bound, within [1, 256].
	id := f.propose(20, 2, ActSetParameter, ParamMaxOpenProposals, big.NewInt(17))
	f.begin(f.passVotes(20, id).ActivatesAt)
	if got := Read(f.st).MaxOpenProposals(); got != 17 {
		t.Fatalf("bound %d after the parameter changed, want 17", got)
	}
	f.propose(30, 1, ActFreeze, testAddr("frozen", 102))
	_, err = f.at(30).Propose(adminOf(1), ActSetParameter, f.args(ActSetParameter, ParamMaxOpenProposals, big.NewInt(0)), "")
	wantRevertPrefix(t, err, "organization org1 has 17 open proposals")
	_, err = f.at(30).Propose(adminOf(2), ActSetParameter, f.args(ActSetParameter, ParamMaxOpenProposals, big.NewInt(257)), "")
	wantRevert(t, err, "maxOpenProposals 257 outside [1, 256]")
}

// Arguments beyond their action's bounds are refused with the argument
// named, before anything is stored.
func TestOversizeArgumentsRefused(t *testing.T) {
	f := newFixture(t)
	over := strings.Repeat(goldenRootsPEM, maxRootsForTest/len(goldenRootsPEM)+1) // valid roots, over 8192 bytes
	if len(over) <= maxRootsForTest {
		t.Fatal("roots not over the bound")
	}
	a := org5(over)
	many := addOrgArgs{name: "org6", roots: goldenRootsPEM, tier: uint8(TierWrite), weight: 1}
	for i := 0; i < 17; i++ {
		many.admins = append(many.admins, testAddr("many", i))
	}
	rotate := f.args(ActRotateCA, "org1", over)
	cases := []struct {
		name   string
		action Action
		args   []byte
		memo   string
		want   string
	}{
		{"roots", ActAddOrganization, f.args(ActAddOrganization, a.vals()...), "", fmt.Sprintf("AddOrganization: rootsPem of %d bytes, at most 8192", len(over))},
		{"admins", ActAddOrganization, f.args(ActAddOrganization, many.vals()...), "", "AddOrganization: admins lists 17, at most 16"},
		{"rotated roots", ActRotateCA, rotate, "", fmt.Sprintf("RotateCA: arguments of %d bytes, at most %d", len(rotate), ActRotateCA.MaxArgBytes())},
		{"parameter name", ActSetParameter, f.args(ActSetParameter, strings.Repeat("p", 65), big.NewInt(1)), "", "SetParameter: arguments of 192 bytes, at most 160"},
		{"memo", ActFreeze, f.args(ActFreeze, testAddr("x", 1)), strings.Repeat("m", MaxMemoBytes+1), "memo of 1025 bytes, at most 1024"},
		{"raw bytes", ActFreeze, make([]byte, 64<<10), "", fmt.Sprintf("Freeze: arguments of 65536 bytes, at most %d", ActFreeze.MaxArgBytes())},
	}
	root := f.root()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.at(10).Propose(adminOf(1), c.action, c.args, c.memo)
			wantRevert(t, err, c.want)
			if f.root() != root {
				t.Fatal("a refused proposal changed the state")
			}
		})
	}
	// At the bound exactly, it is accepted.
	exact := addOrgArgs{name: "org6", roots: goldenRootsPEM, tier: uint8(TierWrite), weight: 1, admins: many.admins[:16]}
	f.propose(10, 1, ActAddOrganization, exact.vals()...)
	if n := ActAddOrganization.MaxArgBytes(); n < len(f.args(ActAddOrganization, exact.vals()...)) || n > 20_000 {
		t.Fatalf("AddOrganization's largest encoding %d bytes", n)
	}
}

// A proposal's gas grows with the bytes it stores, at gasStoredByte a
// byte of arguments and memo.
func TestProposeGasGrowsWithBytes(t *testing.T) {
	f := newFixture(t)
	e := f.evm(20)
	var words uint64 // of the last input
	gasOf := func(a Action, args []byte, memo string) uint64 {
		t.Helper()
		input := pack(t, &Governance, "propose", uint8(a), args, memo)
		if ret, err := e.send(adminOf(1), GovernanceAddress, input, 0); err != nil {
			t.Fatalf("propose: %v %x", err, ret)
		}
		words = uint64(len(input)+31) / 32
		return e.used
	}
	small := gasOf(ActFreeze, f.args(ActFreeze, testAddr("g", 1)), "m")
	smallWords := words
	long := gasOf(ActFreeze, f.args(ActFreeze, testAddr("g", 2)), "m"+strings.Repeat("x", 991))
	// 991 more bytes stored, and the longer input by the word.
	if want := small + 991*gasStoredByte + (words-smallWords)*gasWord; long != want {
		t.Fatalf("a memo 991 bytes longer: gas %d, want %d (was %d)", long, want, small)
	}
	org := gasOf(ActAddOrganization, f.args(ActAddOrganization, largeAddOrg(t, bigRoots(), 1)...), "m")
	if org < gasWrite+7000*gasStoredByte {
		t.Fatalf("an AddOrganization of about 8 KB costs %d gas: not by the byte", org)
	}
	t.Logf("propose gas: freeze %d, with a 992-byte memo %d, AddOrganization of 8 KB %d", small, long, org)
}

// A contract factory is marked and unmarked by a proposal of class
// contracts, through the state machine and the precompile.
func TestSetFactory(t *testing.T) {
	f := newFixture(t)
	factory := testAddr("factory", 1)
	if ActSetFactory.Class() != ClassContracts || DefaultPolicy().Rules[ClassContracts].Threshold != 5001 {
		t.Fatal("SetFactory is not decided by the contracts class's majority")
	}
	for _, c := range []struct {
		target common.Address
		want   string
	}{{common.Address{}, (common.Address{}).Hex() + " cannot be a factory"}, {RegistryAddress, RegistryAddress.Hex() + " cannot be a factory"}} {
		_, err := f.at(5).Propose(adminOf(1), ActSetFactory, f.args(ActSetFactory, c.target, true), "")
		wantRevert(t, err, c.want)
	}
	_, err := f.at(5).Propose(adminOf(1), ActSetFactory, f.args(ActSetFactory, factory, false), "")
	wantRevert(t, err, factory.Hex()+" is not a factory")

	// Through the precompile: propose, three of four vote (a majority of
	// the weight needs three), it executes at the next block.
	e := f.evm(10)
	ret, err := e.send(adminOf(1), GovernanceAddress, pack(t, &Governance, "propose", uint8(ActSetFactory), f.args(ActSetFactory, factory, true), "factory"), 0)
	if err != nil {
		t.Fatalf("propose: %v %x", err, ret)
	}
	for i := 1; i <= 3; i++ {
		if ret, err := e.send(adminOf(i), GovernanceAddress, pack(t, &Governance, "vote", uint64(1), true), 0); err != nil {
			t.Fatalf("vote %d: %v %x", i, err, ret)
		}
	}
	if p := f.proposal(1); p.Status != ProposalPassed {
		t.Fatalf("proposal is %s after 3 of 4 yes", p.Status)
	}
	if Read(f.st).IsFactory(factory) {
		t.Fatal("a factory before the proposal executed")
	}
	f.begin(11)
	s := Read(f.st)
	if !s.IsFactory(factory) || len(s.Factories()) != 1 || s.Factories()[0] != factory {
		t.Fatalf("after execution: IsFactory %v, factories %v", s.IsFactory(factory), s.Factories())
	}
	_, err = f.at(12).Propose(adminOf(1), ActSetFactory, f.args(ActSetFactory, factory, true), "")
	wantRevert(t, err, factory.Hex()+" is a factory already")

	// The state machine unmarks it.
	f.enact(20, ActSetFactory, factory, false)
	if s := Read(f.st); s.IsFactory(factory) || len(s.Factories()) != 0 {
		t.Fatalf("after unmarking: IsFactory %v, factories %v", s.IsFactory(factory), s.Factories())
	}
}

// The setCode parameter is set by the parameters action within [0, 1]
// and read through the registry's parameter view.
func TestSetCodeParameter(t *testing.T) {
	f := newFixture(t)
	if v, ok := Read(f.st).ParamValue(ParamSetCode); !ok || v != 0 {
		t.Fatalf("setCode of a governed genesis without allowSetCode: %d, %v; want 0", v, ok)
	}
	_, err := f.at(5).Propose(adminOf(1), ActSetParameter, f.args(ActSetParameter, ParamSetCode, big.NewInt(2)), "")
	wantRevert(t, err, "setCode 2 outside [0, 1]")
	f.enact(10, ActSetParameter, ParamSetCode, big.NewInt(1))
	if got := Read(f.st).Param(ParamSetCode); got != 1 {
		t.Fatalf("setCode %d after the proposal, want 1", got)
	}
	e := f.evm(30)
	if got := e.view(&Registry, "parameter", ParamSetCode)[0].(*big.Int); got.Uint64() != 1 {
		t.Fatalf("parameter(setCode) = %s", got)
	}
	// Through the precompile, back to 0.
	ret, err := e.send(adminOf(2), GovernanceAddress, pack(t, &Governance, "propose", uint8(ActSetParameter), f.args(ActSetParameter, ParamSetCode, big.NewInt(0)), "no 7702"), 0)
	if err != nil {
		t.Fatalf("propose: %v %x", err, ret)
	}
	id := Read(f.st).ProposalCount()
	for i := 1; i <= 3; i++ {
		if ret, err := e.send(adminOf(i), GovernanceAddress, pack(t, &Governance, "vote", id, true), 0); err != nil {
			t.Fatalf("vote %d: %v %x", i, err, ret)
		}
	}
	f.begin(31)
	if v, ok := Read(f.st).ParamValue(ParamSetCode); !ok || v != 0 {
		t.Fatalf("setCode %d, %v after the second proposal, want 0 (set)", v, ok)
	}
	if got := f.evm(32).view(&Registry, "parameter", ParamMaxOpenProposals)[0].(*big.Int); got.Uint64() != DefaultMaxOpenProposals {
		t.Fatalf("parameter(maxOpenProposals) = %s, want the default", got)
	}
}

// A proposal stored before arguments were kept apart (its record holds
// them) still reads, takes votes and executes.
func TestProposalWithInlineArgumentsStillReads(t *testing.T) {
	f := newFixture(t)
	args := f.args(ActFreeze, writerOf(2))
	s := f.at(10)
	p := Proposal{ID: 1, Action: ActFreeze, Args: args, Memo: "old", Proposer: adminOf(1), Org: "org1", Created: 10, Expires: 10_010, Status: ProposalOpen}
	putRLP(s.gov, propKey(1), p)
	s.gov.putUint("count", 1)
	putRLP(s.gov, openKey("org1"), []uint64{1})
	s.addID(expKey(p.Expires+1), 1)
	if got := f.proposal(1); !bytes.Equal(got.Args, args) || got.Memo != "old" {
		t.Fatalf("an old record reads %+v", got)
	}
	f.passVotes(11, 1)
	if got := f.proposal(1); !bytes.Equal(got.Args, args) {
		t.Fatal("the old record lost its arguments when voted")
	}
	f.begin(12)
	if got := f.proposal(1); got.Status != ProposalExecuted || !Read(f.st).Account(writerOf(2)).Frozen {
		t.Fatalf("the old proposal is %s (%s)", got.Status, got.Result)
	}
}

// BeginBlock's cost with no proposal open and with 200 open proposals of
// about 8 KB, none due.
func BenchmarkBeginBlock(b *testing.B) {
	for _, open := range []int{0, 200} {
		b.Run(fmt.Sprintf("open=%d", open), func(b *testing.B) {
			t := b
			f := newFixture(t, withMaxOpen(64))
			roots := bigRoots()
			for i := 0; i < open; i++ {
				f.propose(uint64(10+i), 1+i%4, ActAddOrganization, largeAddOrg(t, roots, i)...)
			}
			f.root()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h := uint64(5000 + i%1000)
				s := Open(f.st, h, blockTime(h))
				s.DueAt(h)
				s.BeginBlock(f.st)
			}
		})
	}
}
