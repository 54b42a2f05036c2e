package system

import (
	"bytes"
	"errors"
	"math/big"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/privacy"
)

// actionSeeds are proposal arguments of every action: the zero value of
// each (most fail Validate, which is the point too) and some that pass.
func actionSeeds() []struct {
	a    Action
	args []byte
} {
	var out []struct {
		a    Action
		args []byte
	}
	add := func(args Args) {
		b, err := Encode(args)
		if err != nil {
			panic(err)
		}
		out = append(out, struct {
			a    Action
			args []byte
		}{args.Action(), b})
	}
	for a := Action(1); a < numActions; a++ {
		d, _ := a.def()
		v := reflect.New(d.typ).Elem()
		for i := range d.fields {
			if v.Field(i).Type() == reflect.TypeFor[*big.Int]() {
				v.Field(i).Set(reflect.ValueOf(new(big.Int)))
			}
		}
		add(v.Interface().(Args))
	}
	add(Freeze{Target: writerOf(2)})
	add(Unfreeze{Target: writerOf(2)})
	add(GrantRoles{Account: testAddr("new", 1), Org: orgName(1), Roles: RoleRead | RoleWrite})
	add(RevokeRoles{Account: writerOf(3), Roles: RoleWrite})
	add(AddNode{Org: orgName(2), ID: testAddr("node", 9), Validator: true})
	add(RemoveNode{ID: nodeOf(4)})
	add(AddValidator{ID: nodeOf(4)})
	add(RemoveValidator{ID: nodeOf(3)})
	add(SetOrganization{Name: orgName(2), Tier: TierWrite, Weight: 3, Status: StatusSuspended})
	add(RemoveOrganization{Name: orgName(4)})
	add(AddOrganization{Name: "org5", RootsPEM: goldenRootsPEM, Tier: TierValidate, Weight: 1,
		Admins: []common.Address{adminOf(5)}, Nodes: []common.Address{nodeOf(5)}, Fingerprints: []common.Hash{fpOf(5)},
		Validators: []common.Address{nodeOf(5)}})
	add(RotateCA{Org: orgName(1), RootsPEM: goldenRootsPEM})
	add(RevokeCertificate{Fingerprint: fpOf(2)})
	add(SetParameter{Name: "blockGasLimit", Value: big.NewInt(40_000_000)})
	add(ScheduleUpgrade{Name: "next", Height: 100})
	add(SetRule{Class: ClassFreeze, Threshold: 5000, Quorum: 5000, ExpiryBlocks: 100, Timelock: 1, MinApprovals: 1})
	add(SetDefaultRoles{Roles: RoleRead})
	add(SetFactory{Target: testAddr("factory", 1), Factory: true})
	add(SetPrivacyKey{Org: orgName(1), Key: fuzzPrivacyKey()})
	add(PurgeGroup{Group: GroupID{1}})
	add(GrantAuditor{Group: GroupID{1}, Org: orgName(3), FromHeight: 7})
	add(RevokeAuditor{Group: GroupID{1}, Org: orgName(3)})
	return out
}

// fuzzPrivacyKey is a privacy public key of fixed bytes (a test key), so
// that the seeds do not change from run to run.
func fuzzPrivacyKey() PrivacyKey {
	raw := make([]byte, privacy.PrivateKeySize)
	for i := range raw {
		raw[i] = byte(i + 1)
	}
	k, err := privacy.NewPrivateKey(raw)
	if err != nil {
		panic(err)
	}
	return k.Public().Bytes()
}

// FuzzDecodeArgs: a proposal's arguments as they come in a transaction's
// calldata. Decoding never panics; what decodes is canonical (it encodes
// back to the same bytes and decodes again to the same value), renders as
// JSON, and validates with a revert or nil.
func FuzzDecodeArgs(f *testing.F) {
	for _, s := range actionSeeds() {
		f.Add(uint8(s.a), s.args)
	}
	f.Add(uint8(0), []byte{})
	f.Add(uint8(numActions), []byte{1})
	f.Fuzz(func(t *testing.T, action uint8, data []byte) {
		args, err := DecodeArgs(Action(action), data)
		if err != nil {
			if args != nil {
				t.Fatalf("arguments and an error: %v", err)
			}
			return
		}
		if args.Action() != Action(action) {
			t.Fatalf("decoded %s arguments for action %d", args.Action(), action)
		}
		again, err := Encode(args)
		if err != nil {
			t.Fatalf("decoded arguments do not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("decoded arguments encode differently:\n in %x\nout %x", data, again)
		}
		args2, err := DecodeArgs(Action(action), again)
		if err != nil || !reflect.DeepEqual(args, args2) {
			t.Fatalf("re-encoded arguments decode to %+v (%v), first %+v", args2, err, args)
		}
		if _, err := ArgsJSON(args); err != nil {
			t.Fatalf("ArgsJSON: %v", err)
		}
		if err := args.Validate(); err != nil {
			var r revert
			if !errors.As(err, &r) || r == "" {
				t.Fatalf("Validate fails with %v (%T), not a revert with a reason", err, err)
			}
		}
	})
}

// precompileMethod is one function of a system contract.
type precompileMethod struct {
	addr common.Address
	m    abi.Method
}

// precompileMethods lists every function of both contracts, in a fixed
// order: the fuzzer picks one by its index.
func precompileMethods() []precompileMethod {
	var out []precompileMethod
	for _, c := range []struct {
		addr common.Address
		a    *abi.ABI
	}{{RegistryAddress, &Registry}, {GovernanceAddress, &Governance}} {
		names := make([]string, 0, len(c.a.Methods))
		for n := range c.a.Methods {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			out = append(out, precompileMethod{c.addr, c.a.Methods[n]})
		}
	}
	return out
}

// zeroArgs packs a method's inputs with zero values (nil when a type has
// none that packs).
func zeroArgs(m abi.Method) []byte {
	vals := make([]any, len(m.Inputs))
	for i, in := range m.Inputs {
		typ := in.Type.GetType()
		if typ == reflect.TypeFor[*big.Int]() {
			vals[i] = new(big.Int)
			continue
		}
		vals[i] = reflect.New(typ).Elem().Interface()
	}
	b, err := m.Inputs.Pack(vals...)
	if err != nil {
		return nil
	}
	return b
}

// FuzzPrecompile calls the system contracts through a real EVM with
// arbitrary calldata, from an admin, a writer or a stranger, directly or
// not, with or without value. A call never panics; it returns data that
// unpacks as the function's outputs, or reverts with an Error(string) of a
// non-empty reason and leaves the state root as it was, or runs out of
// gas (input too large for its gas) with the state unchanged.
func FuzzPrecompile(f *testing.F) {
	methods := precompileMethods()
	for i, pm := range methods {
		f.Add(uint8(i), zeroArgs(pm.m), uint8(0), false)
	}
	var propose, vote, cancel uint8
	for i, pm := range methods {
		switch {
		case pm.addr == GovernanceAddress && pm.m.Name == "propose":
			propose = uint8(i)
		case pm.addr == GovernanceAddress && pm.m.Name == "vote":
			vote = uint8(i)
		case pm.addr == GovernanceAddress && pm.m.Name == "cancel":
			cancel = uint8(i)
		}
	}
	for _, s := range actionSeeds() {
		in, err := Governance.Methods["propose"].Inputs.Pack(uint8(s.a), s.args, "fuzz")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(propose, in, uint8(0), false)
	}
	one, _ := Governance.Methods["vote"].Inputs.Pack(uint64(1), true)
	f.Add(vote, one, uint8(1), false)
	f.Add(vote, one, uint8(0), false)
	one, _ = Governance.Methods["cancel"].Inputs.Pack(uint64(1))
	f.Add(cancel, one, uint8(0), false)
	f.Add(uint8(len(methods)), []byte{0xde, 0xad, 0xbe, 0xef}, uint8(0), false)
	f.Add(uint8(0), []byte{}, uint8(0x80), true)

	f.Fuzz(func(t *testing.T, sel uint8, input []byte, caller uint8, value bool) {
		fx := newFixture(t)
		// An open proposal (id 1) for votes and cancels to find.
		fx.propose(1, 1, ActFreeze, writerOf(2))
		fx.root()
		// The method by its index; past the list, input is the whole
		// calldata (selector included).
		to, data := GovernanceAddress, input
		var m *abi.Method
		if int(sel) < len(methods) {
			pm := methods[sel]
			to, m = pm.addr, &pm.m
			data = append(append([]byte{}, pm.m.ID...), input...)
		} else if sel%2 == 1 {
			to = RegistryAddress
		}
		var from common.Address
		switch org := int(caller%4) + 1; caller / 4 % 4 {
		case 0:
			from = adminOf(org)
		case 1:
			from = writerOf(org)
		case 2:
			from = testAddr("stranger", org)
		default:
			from = adminOf(org + 4) // an admin of no organization
		}
		e := fx.evm(2)
		var v uint64
		if value {
			v = 1
			fx.st.AddBalance(from, uint256.NewInt(1), 0)
		}
		before := fx.root()
		logs := len(fx.st.Logs())
		var ret []byte
		var err error
		if caller&0x80 != 0 {
			// Through something else: the message the contracts are told
			// about is not this call.
			e.c.SetCall(Call{From: from, To: &to, Data: append(bytes.Clone(data), 0), Value: uint256.NewInt(1)})
			ret, err = e.raw(from, to, data, new(uint256.Int))
		} else {
			ret, err = e.send(from, to, data, v)
		}
		switch {
		case err == nil:
			if m != nil {
				if _, uerr := m.Outputs.Unpack(ret); uerr != nil && len(m.Outputs) > 0 {
					t.Fatalf("%s returned %x, which does not unpack: %v", m.Name, ret, uerr)
				}
				if m.IsConstant() && fx.root() != before {
					t.Fatalf("view %s changed the state", m.Name)
				}
			}
			for _, l := range fx.st.Logs()[logs:] {
				checkSystemLog(t, l.Address, l.Topics, l.Data)
			}
		case errors.Is(err, vm.ErrExecutionReverted):
			reason, uerr := abi.UnpackRevert(ret)
			if uerr != nil || strings.TrimSpace(reason) == "" {
				t.Fatalf("revert without a reason: %x (%v)", ret, uerr)
			}
			if fx.root() != before || len(fx.st.Logs()) != logs {
				t.Fatalf("reverted call (%s) changed the state", reason)
			}
		case errors.Is(err, vm.ErrOutOfGas):
			if fx.root() != before {
				t.Fatal("call out of gas changed the state")
			}
		default:
			t.Fatalf("call failed with %v, neither a revert nor out of gas", err)
		}
	})
}

// checkSystemLog checks that a log of a system contract is one of its ABI
// events, with data that unpacks.
func checkSystemLog(t *testing.T, addr common.Address, topics []common.Hash, data []byte) {
	t.Helper()
	a := &Governance
	if addr == RegistryAddress {
		a = &Registry
	} else if addr != GovernanceAddress {
		t.Fatalf("log of %s", addr)
	}
	if len(topics) == 0 {
		t.Fatal("log without topics")
	}
	ev, err := a.EventByID(topics[0])
	if err != nil {
		t.Fatalf("log of an unknown event %s", topics[0])
	}
	if _, err := ev.Inputs.NonIndexed().Unpack(data); err != nil {
		t.Fatalf("event %s data does not unpack: %v", ev.Name, err)
	}
}

// FuzzEnact proposes arbitrary arguments of an action, and when the
// proposal is accepted, has every organization vote yes and runs the
// blocks to its activation. Nothing panics; an accepted proposal passes
// and then executes or fails with a reason, and doing it all again on a
// fresh state gives the same state root (governance is part of consensus).
func FuzzEnact(f *testing.F) {
	for _, s := range actionSeeds() {
		f.Add(uint8(s.a), s.args)
	}
	f.Fuzz(func(t *testing.T, action uint8, args []byte) {
		run := func() (common.Hash, bool) {
			fx := newFixture(t)
			const h = 2
			id, err := fx.at(h).Propose(adminOf(1), Action(action), args, "fuzz")
			if err != nil {
				var r revert
				if !errors.As(err, &r) || r == "" {
					t.Fatalf("Propose fails with %v (%T), not a revert with a reason", err, err)
				}
				return fx.root(), false
			}
			p := fx.passVotes(h, id)
			for b := uint64(h + 1); b <= p.ActivatesAt; b++ {
				fx.begin(b)
			}
			switch got := fx.proposal(id); got.Status {
			case ProposalExecuted:
			case ProposalFailed:
				if got.Result == "" {
					t.Fatal("failed proposal without a result")
				}
			default:
				t.Fatalf("proposal %d is %s after its activation height %d", id, got.Status, p.ActivatesAt)
			}
			return fx.root(), true
		}
		root, accepted := run()
		if !accepted {
			return
		}
		if again, _ := run(); again != root {
			t.Fatalf("the same proposal gives state root %s, then %s", root, again)
		}
	})
}
