package system

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/holiman/uint256"
)

// chainEVM is an EVM over the fixture's state at one height, with the
// system contracts installed.
type chainEVM struct {
	t   testing.TB
	f   *fixture
	evm *vm.EVM
	c   *Contracts
	// gas used by the last call
	used uint64
}

func (f *fixture) evm(h uint64) *chainEVM {
	ctx := vm.BlockContext{
		CanTransfer: core.CanTransfer,
		Transfer:    core.Transfer,
		GetHash:     func(uint64) common.Hash { return common.Hash{} },
		BlockNumber: new(big.Int).SetUint64(h),
		Time:        blockTime(h),
		Difficulty:  new(big.Int),
		BaseFee:     new(big.Int),
		GasLimit:    30_000_000,
		Random:      &common.Hash{},
	}
	evm := vm.NewEVM(ctx, f.st, testConfig, vm.Config{})
	return &chainEVM{t: f.t, f: f, evm: evm, c: Install(evm)}
}

// send runs the message from → to with data (and value) as a transaction
// would: the contracts are told the message, then the EVM calls.
func (e *chainEVM) send(from, to common.Address, data []byte, value uint64) ([]byte, error) {
	v := uint256.NewInt(value)
	e.c.SetCall(Call{From: from, To: &to, Data: data, Value: v})
	return e.raw(from, to, data, v)
}

// raw calls without telling the contracts anything new.
func (e *chainEVM) raw(from, to common.Address, data []byte, value *uint256.Int) ([]byte, error) {
	gas := vm.NewGasBudget(10_000_000, 0)
	ret, left, err := e.evm.Call(from, to, data, gas, value)
	e.used = left.Used(gas)
	return ret, err
}

func pack(t testing.TB, a *abi.ABI, method string, args ...any) []byte {
	t.Helper()
	data, err := a.Pack(method, args...)
	if err != nil {
		t.Fatalf("pack %s: %v", method, err)
	}
	return data
}

// view calls a view function and unpacks its results.
func (e *chainEVM) view(a *abi.ABI, method string, args ...any) []any {
	e.t.Helper()
	addr := RegistryAddress
	if a == &Governance {
		addr = GovernanceAddress
	}
	ret, err := e.send(testAddr("caller", 1), addr, pack(e.t, a, method, args...), 0)
	if err != nil {
		reason, _ := abi.UnpackRevert(ret)
		e.t.Fatalf("%s: %v %q", method, err, reason)
	}
	out, err := a.Unpack(method, ret)
	if err != nil {
		e.t.Fatalf("unpack %s: %v", method, err)
	}
	return out
}

// wantCallRevert checks that a call reverted with exactly reason, as
// ABI-encoded Error(string) data.
func wantCallRevert(t *testing.T, ret []byte, err error, reason string) {
	t.Helper()
	if !errors.Is(err, vm.ErrExecutionReverted) {
		t.Fatalf("error %v, want execution reverted (%q)", err, reason)
	}
	if !bytes.Equal(ret[:4], []byte{0x08, 0xc3, 0x79, 0xa0}) {
		t.Fatalf("revert data %x is not Error(string)", ret)
	}
	got, uerr := abi.UnpackRevert(ret)
	if uerr != nil {
		t.Fatalf("revert data %x: %v", ret, uerr)
	}
	if got != reason {
		t.Fatalf("revert reason\n got %q\nwant %q", got, reason)
	}
}

// bigToString replaces big integers by their decimal text, so that
// results compare with reflect.DeepEqual.
func bigToString(vals []any) []any {
	out := slices.Clone(vals)
	for i, v := range out {
		if b, ok := v.(*big.Int); ok {
			out[i] = b.String()
		}
	}
	return out
}

func addrTopic(a common.Address) common.Hash { return common.BytesToHash(a[:]) }

// newLogs returns the logs added since n.
func (f *fixture) newLogs(n int) []*types.Log { return f.st.Logs()[n:] }

func wantLog(t *testing.T, l *types.Log, addr common.Address, a *abi.ABI, event string, topics []common.Hash, data ...any) {
	t.Helper()
	ev := a.Events[event]
	if l.Address != addr {
		t.Fatalf("%s log from %s, want %s", event, l.Address.Hex(), addr.Hex())
	}
	if want := append([]common.Hash{ev.ID}, topics...); !slices.Equal(l.Topics, want) {
		t.Fatalf("%s topics\n got %x\nwant %x", event, l.Topics, want)
	}
	got, err := ev.Inputs.NonIndexed().Unpack(l.Data)
	if err != nil {
		t.Fatalf("%s data: %v", event, err)
	}
	if len(data) == 0 {
		data = []any{}
	}
	if !reflect.DeepEqual(got, data) {
		t.Fatalf("%s data %#v, want %#v", event, got, data)
	}
}

func TestPrecompileGovernance(t *testing.T) {
	f := newFixture(t)
	const h = 20
	e := f.evm(h)
	args := f.args(ActAddNode, addNodeArgs(1)...)

	// propose
	logs := len(f.st.Logs())
	input := pack(t, &Governance, "propose", uint8(ActAddNode), args, "a node for org1")
	ret, err := e.send(adminOf(1), GovernanceAddress, input, 0)
	if err != nil {
		reason, _ := abi.UnpackRevert(ret)
		t.Fatalf("propose: %v %q", err, reason)
	}
	// The base, the input by the word, the arguments and memo stored by the byte.
	if want := gasWrite + gasWord*(uint64(len(input)+31)/32) + gasStoredByte*uint64(len(args)+len("a node for org1")); e.used != want {
		t.Fatalf("propose used %d gas, want %d", e.used, want)
	}
	out, err := Governance.Unpack("propose", ret)
	if err != nil || out[0].(uint64) != 1 {
		t.Fatalf("propose returned %v, %v", out, err)
	}
	nl := f.newLogs(logs)
	if len(nl) != 1 {
		t.Fatalf("%d logs, want 1", len(nl))
	}
	wantLog(t, nl[0], GovernanceAddress, &Governance, "ProposalCreated", []common.Hash{idTopic(1), addrTopic(adminOf(1))},
		uint8(ActAddNode), "org1", uint64(h+10_000), "a node for org1")
	if p := f.proposal(1); p.Proposer != adminOf(1) || p.Memo != "a node for org1" || !bytes.Equal(p.Args, args) || p.Created != h {
		t.Fatalf("stored proposal %+v", p)
	}

	// vote: two leave it open, the third passes it.
	for i := 1; i <= 3; i++ {
		logs = len(f.st.Logs())
		if ret, err := e.send(adminOf(i), GovernanceAddress, pack(t, &Governance, "vote", uint64(1), true), 0); err != nil {
			reason, _ := abi.UnpackRevert(ret)
			t.Fatalf("vote %d: %v %q", i, err, reason)
		}
		nl := f.newLogs(logs)
		wantLog(t, nl[0], GovernanceAddress, &Governance, "VoteCast", []common.Hash{idTopic(1), addrTopic(adminOf(i))}, orgName(i), true, uint64(1))
		if i < 3 && len(nl) != 1 {
			t.Fatalf("vote %d: %d logs, want 1", i, len(nl))
		}
		if i == 3 {
			if len(nl) != 2 {
				t.Fatalf("passing vote: %d logs, want 2", len(nl))
			}
			wantLog(t, nl[1], GovernanceAddress, &Governance, "ProposalPassed", []common.Hash{idTopic(1)}, uint64(h+1))
		}
	}

	// A second vote of an organization reverts with its reason, and
	// changes nothing.
	root, logs := f.root(), len(f.st.Logs())
	input = pack(t, &Governance, "vote", uint64(1), false)
	ret, err = e.send(adminOf(1), GovernanceAddress, input, 0)
	wantCallRevert(t, ret, err, "proposal 1 is passed")
	if words := uint64(len(input)+31) / 32; e.used != gasWrite+gasWord*words {
		t.Fatalf("a reverted write used %d gas, want %d", e.used, gasWrite+gasWord*words)
	}
	if f.root() != root || len(f.st.Logs()) != logs {
		t.Fatal("a reverted vote changed the state or logged")
	}

	// views
	got := e.view(&Governance, "proposal", uint64(1))
	want := []any{uint8(ActAddNode), uint8(ProposalPassed), "org1", adminOf(1), uint64(h), uint64(h + 10_000), uint64(h + 1), uint64(3), uint64(0), uint64(4)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("proposal(1) = %v\nwant %v", got, want)
	}
	got = e.view(&Governance, "proposal", uint64(2))
	want = []any{uint8(0), uint8(0), "", common.Address{}, uint64(0), uint64(0), uint64(0), uint64(0), uint64(0), uint64(0)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("proposal(2) = %v", got)
	}
	if got := e.view(&Governance, "proposalCount"); got[0].(uint64) != 1 {
		t.Fatalf("proposalCount = %v", got)
	}

	// Executed at the next block, visible through the views.
	f.begin(h + 1)
	e = f.evm(h + 1)
	got = e.view(&Governance, "proposal", uint64(1))
	if got[1].(uint8) != uint8(ProposalExecuted) {
		t.Fatalf("status %v after activation", got[1])
	}
	if got := e.view(&Registry, "node", testAddr("extra", 1)); !reflect.DeepEqual(got, []any{true, "org1", false, false}) {
		t.Fatalf("node = %v", got)
	}
}

func TestPrecompileRejectAndCancel(t *testing.T) {
	f := newFixture(t)
	e := f.evm(10)
	propose := func(org int, a Action, vals ...any) uint64 {
		ret, err := e.send(adminOf(org), GovernanceAddress, pack(t, &Governance, "propose", uint8(a), f.args(a, vals...), ""), 0)
		if err != nil {
			t.Fatalf("propose: %v", err)
		}
		out, _ := Governance.Unpack("propose", ret)
		return out[0].(uint64)
	}
	id := propose(1, ActAddNode, addNodeArgs(1)...)
	for i := 1; i <= 2; i++ {
		logs := len(f.st.Logs())
		if _, err := e.send(adminOf(i), GovernanceAddress, pack(t, &Governance, "vote", id, false), 0); err != nil {
			t.Fatal(err)
		}
		nl := f.newLogs(logs)
		if i == 2 {
			if len(nl) != 2 {
				t.Fatalf("rejecting vote: %d logs", len(nl))
			}
			wantLog(t, nl[1], GovernanceAddress, &Governance, "ProposalRejected", []common.Hash{idTopic(id)})
		}
	}
	if p := f.proposal(id); p.Status != ProposalRejected {
		t.Fatalf("status %s", p.Status)
	}

	id = propose(2, ActAddNode, addNodeArgs(2)...)
	ret, err := e.send(adminOf(1), GovernanceAddress, pack(t, &Governance, "cancel", id), 0)
	wantCallRevert(t, ret, err, "proposal 2 is organization org2's; only its admins may cancel it")
	logs := len(f.st.Logs())
	if _, err := e.send(adminOf(2), GovernanceAddress, pack(t, &Governance, "cancel", id), 0); err != nil {
		t.Fatal(err)
	}
	nl := f.newLogs(logs)
	if len(nl) != 1 {
		t.Fatalf("%d logs", len(nl))
	}
	wantLog(t, nl[0], GovernanceAddress, &Governance, "ProposalCancelled", []common.Hash{idTopic(id)})
	if p := f.proposal(id); p.Status != ProposalCancelled {
		t.Fatalf("status %s", p.Status)
	}

	// A bad proposal reverts with the reason Propose gives.
	ret, err = e.send(adminOf(1), GovernanceAddress, pack(t, &Governance, "propose", uint8(99), []byte{}, ""), 0)
	wantCallRevert(t, ret, err, "unknown action 99 (want 1 to 24)")
	ret, err = e.send(writerOf(1), GovernanceAddress, pack(t, &Governance, "propose", uint8(ActAddNode), f.args(ActAddNode, addNodeArgs(3)...), ""), 0)
	wantCallRevert(t, ret, err, writerOf(1).Hex()+" is not an organization admin")
}

func TestPrecompileRegistry(t *testing.T) {
	f := newFixture(t)
	day := blockTime(10) / 86400
	f.at(10).AddUsage("org2", Usage{Txs: 4, Gas: 84_000, StateBytes: 128})
	f.enact(10, ActFreeze, writerOf(3))
	e := f.evm(20)
	views := []struct {
		method string
		args   []any
		want   []any
	}{
		{"accountOf", []any{adminOf(1)}, []any{"org1", uint32(RoleAdmin), false}},
		{"accountOf", []any{writerOf(3)}, []any{"org3", uint32(RoleRead | RoleWrite), true}},
		{"accountOf", []any{testAddr("stranger", 1)}, []any{"", uint32(0), false}},
		{"hasRole", []any{writerOf(1), uint32(RoleWrite)}, []any{true}},
		{"hasRole", []any{writerOf(1), uint32(RoleWrite | RoleDeploy)}, []any{false}},
		{"hasRole", []any{writerOf(3), uint32(RoleWrite)}, []any{false}}, // frozen
		{"hasRole", []any{adminOf(2), uint32(RoleAdmin)}, []any{true}},
		{"isFrozen", []any{writerOf(3)}, []any{true}},
		{"isFrozen", []any{writerOf(1)}, []any{false}},
		{"organization", []any{"org2"}, []any{true, uint8(TierValidate), uint64(1), uint8(StatusActive)}},
		{"organization", []any{"nope"}, []any{false, uint8(0), uint64(0), uint8(0)}},
		{"organizations", nil, []any{[]string{"org1", "org2", "org3", "org4"}}},
		{"validators", nil, []any{[]common.Address{nodeOf(1), nodeOf(2), nodeOf(3), nodeOf(4)}}},
		{"node", []any{nodeOf(2)}, []any{true, "org2", true, false}},
		{"node", []any{testAddr("node", 99)}, []any{false, "", false, false}},
		{"parameter", []any{ParamEpochLength}, []any{big.NewInt(10)}},
		{"parameter", []any{"nope"}, []any{big.NewInt(0)}},
		{"usage", []any{"org2", day}, []any{uint64(4), uint64(84_000), uint64(128)}},
		{"usage", []any{"org2", day + 1}, []any{uint64(0), uint64(0), uint64(0)}},
	}
	for _, v := range views {
		got := e.view(&Registry, v.method, v.args...)
		if !reflect.DeepEqual(bigToString(got), bigToString(v.want)) {
			t.Errorf("%s(%v) = %#v, want %#v", v.method, v.args, got, v.want)
		}
	}
	in := pack(t, &Registry, "usage", "org2", day)
	if _, err := e.send(adminOf(1), RegistryAddress, in, 0); err != nil {
		t.Fatal(err)
	}
	if want := gasView + gasWord*uint64((len(in)+31)/32); e.used != want {
		t.Fatalf("a view used %d gas, want %d", e.used, want)
	}

	// setAccountRoles, with its log.
	fresh := testAddr("fresh", 1)
	logs := len(f.st.Logs())
	if ret, err := e.send(adminOf(2), RegistryAddress, pack(t, &Registry, "setAccountRoles", fresh, uint32(RoleRead|RoleWrite)), 0); err != nil {
		reason, _ := abi.UnpackRevert(ret)
		t.Fatalf("setAccountRoles: %v %q", err, reason)
	}
	nl := f.newLogs(logs)
	if len(nl) != 1 {
		t.Fatalf("%d logs", len(nl))
	}
	wantLog(t, nl[0], RegistryAddress, &Registry, "RolesChanged", []common.Hash{addrTopic(fresh), addrTopic(adminOf(2))}, "org2", uint32(RoleRead|RoleWrite))
	if got := e.view(&Registry, "accountOf", fresh); !reflect.DeepEqual(got, []any{"org2", uint32(RoleRead | RoleWrite), false}) {
		t.Fatalf("accountOf(fresh) = %v", got)
	}
	ret, err := e.send(adminOf(1), RegistryAddress, pack(t, &Registry, "setAccountRoles", fresh, uint32(RoleRead)), 0)
	wantCallRevert(t, ret, err, "account "+fresh.Hex()+" belongs to organization org2")
}

// forwarder is a contract that calls the governance contract with its own
// call data and returns (or reverts with) what it returned.
var forwarder = []byte{
	0x36, 0x60, 0x00, 0x60, 0x00, 0x37, // calldatacopy(0, 0, calldatasize)
	0x60, 0x00, 0x60, 0x00, 0x36, 0x60, 0x00, 0x60, 0x00, // retSize, retOffset, argsSize, argsOffset, value
	0x61, 0x04, 0x01, 0x5a, 0xf1, // call(gas, 0x0401, ...)
	0x3d, 0x60, 0x00, 0x60, 0x00, 0x3e, // returndatacopy(0, 0, returndatasize)
	0x60, 0x21, 0x57, // jumpi(ok, success)
	0x3d, 0x60, 0x00, 0xfd, // revert(0, returndatasize)
	0x5b, 0x3d, 0x60, 0x00, 0xf3, // ok: return(0, returndatasize)
}

func TestPrecompileWritesOnlyDirectly(t *testing.T) {
	f := newFixture(t)
	fwd := testAddr("forwarder", 1)
	f.st.SetCode(fwd, forwarder, tracing.CodeChangeUnspecified)
	e := f.evm(10)
	input := pack(t, &Governance, "propose", uint8(ActAddNode), f.args(ActAddNode, addNodeArgs(1)...), "")
	root, logs := f.root(), len(f.st.Logs())
	const reason = "propose: call the system contract directly from an account, not through a contract"

	// Through a contract: the message is to the contract.
	ret, err := e.send(adminOf(1), fwd, input, 0)
	wantCallRevert(t, ret, err, reason)

	// Called directly, but the contracts were told another message.
	for _, other := range []Call{
		{From: adminOf(1), To: &fwd, Data: input},
		{From: adminOf(1), To: &GovernanceAddress, Data: append(slices.Clone(input), 0)},
		{From: adminOf(1), To: &RegistryAddress, Data: input},
		{From: adminOf(1), To: nil, Data: input},
		{},
	} {
		e.c.SetCall(other)
		ret, err := e.raw(adminOf(1), GovernanceAddress, input, new(uint256.Int))
		wantCallRevert(t, ret, err, reason)
	}
	if f.root() != root || len(f.st.Logs()) != logs || Read(f.st).ProposalCount() != 0 {
		t.Fatal("a refused write changed the state")
	}

	// Views work through a contract.
	view := pack(t, &Governance, "proposalCount")
	ret, err = e.send(adminOf(1), fwd, view, 0)
	if err != nil {
		t.Fatalf("view through a contract: %v", err)
	}
	if out, err := Governance.Unpack("proposalCount", ret); err != nil || out[0].(uint64) != 0 {
		t.Fatalf("proposalCount through a contract = %v %v", out, err)
	}

	// The same message sent directly works.
	if ret, err := e.send(adminOf(1), GovernanceAddress, input, 0); err != nil {
		reason, _ := abi.UnpackRevert(ret)
		t.Fatalf("direct propose: %v %q", err, reason)
	}
}

func TestPrecompileRefusesValue(t *testing.T) {
	f := newFixture(t)
	f.st.AddBalance(adminOf(1), uint256.NewInt(1e18), tracing.BalanceChangeUnspecified)
	e := f.evm(10)
	input := pack(t, &Governance, "propose", uint8(ActAddNode), f.args(ActAddNode, addNodeArgs(1)...), "")
	ret, err := e.send(adminOf(1), GovernanceAddress, input, 1)
	wantCallRevert(t, ret, err, "propose: the system contracts take no value")
	if b := f.st.GetBalance(GovernanceAddress); !b.IsZero() {
		t.Fatalf("governance holds %s wei after a refused call", b)
	}
	// A view called with value should not keep it either.
	if _, err := e.send(adminOf(1), RegistryAddress, pack(t, &Registry, "validators"), 1); err == nil {
		t.Fatalf("a view called with value succeeds and the registry keeps %s wei", f.st.GetBalance(RegistryAddress))
	}
}

func TestPrecompileBadInput(t *testing.T) {
	f := newFixture(t)
	e := f.evm(10)
	root := f.root()
	cases := []struct {
		name   string
		to     common.Address
		input  []byte
		reason string
		prefix bool
	}{
		{"empty", GovernanceAddress, nil, "no function selector", false},
		{"short", RegistryAddress, []byte{1, 2, 3}, "no function selector", false},
		{"unknown selector", GovernanceAddress, []byte{0xde, 0xad, 0xbe, 0xef}, "unknown function selector deadbeef", false},
		{"registry function at governance", GovernanceAddress, pack(t, &Registry, "validators"), "unknown function selector " + common.Bytes2Hex(Registry.Methods["validators"].ID), false},
		{"malformed arguments", GovernanceAddress, append(slices.Clone(Governance.Methods["propose"].ID), 1, 2, 3), "propose: malformed arguments: ", true},
		{"malformed view arguments", RegistryAddress, Registry.Methods["organization"].ID, "organization: malformed arguments: ", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ret, err := e.send(adminOf(1), c.to, c.input, 0)
			if !c.prefix {
				wantCallRevert(t, ret, err, c.reason)
				return
			}
			if !errors.Is(err, vm.ErrExecutionReverted) {
				t.Fatalf("error %v", err)
			}
			if reason, _ := abi.UnpackRevert(ret); !strings.HasPrefix(reason, c.reason) {
				t.Fatalf("reason %q, want prefix %q", reason, c.reason)
			}
		})
	}
	if f.root() != root {
		t.Fatal("bad input changed the state")
	}
}

func TestRevertData(t *testing.T) {
	data := revertData("no proposal 7")
	if got, err := abi.UnpackRevert(data); err != nil || got != "no proposal 7" {
		t.Fatalf("UnpackRevert = %q, %v", got, err)
	}
}

func TestInstallKeepsStandardPrecompiles(t *testing.T) {
	f := newFixture(t)
	e := f.evm(1)
	ret, err := e.send(testAddr("caller", 1), common.BytesToAddress([]byte{2}), []byte("abc"), 0)
	if sum := sha256.Sum256([]byte("abc")); err != nil || !bytes.Equal(ret, sum[:]) {
		t.Fatalf("sha256 precompile: %x %v", ret, err)
	}
	for addr, name := range map[common.Address]string{RegistryAddress: "CHARTER_REGISTRY", GovernanceAddress: "CHARTER_GOVERNANCE"} {
		p := &precompile{addr: addr}
		if p.Name() != name {
			t.Fatalf("Name of %s = %s", addr.Hex(), p.Name())
		}
	}
}

// Every function of the ABIs is implemented: none answers "not
// implemented", whatever its arguments.
func TestEveryABIFunctionImplemented(t *testing.T) {
	f := newFixture(t)
	e := f.evm(10)
	for _, c := range []struct {
		addr common.Address
		abi  *abi.ABI
	}{{RegistryAddress, &Registry}, {GovernanceAddress, &Governance}} {
		if len(c.abi.Methods) == 0 {
			t.Fatal("empty ABI")
		}
		for name, m := range c.abi.Methods {
			args := make([]any, len(m.Inputs))
			for i, in := range m.Inputs {
				args[i] = reflect.New(in.Type.GetType()).Elem().Interface()
			}
			ret, err := e.send(adminOf(1), c.addr, pack(t, c.abi, name, args...), 0)
			if err != nil {
				reason, _ := abi.UnpackRevert(ret)
				if strings.Contains(reason, "not implemented") || !errors.Is(err, vm.ErrExecutionReverted) {
					t.Errorf("%s: %v %q", name, err, reason)
				}
				continue
			}
			if _, err := c.abi.Unpack(name, ret); err != nil && len(m.Outputs) > 0 {
				t.Errorf("%s: output does not unpack: %v", name, err)
			}
		}
	}
}

var update = flag.Bool("update", false, "rewrite the generated part of contracts/system/ICharter.sol")

const solPath = "../../contracts/system/ICharter.sol"

// solidityActions renders the interface ICharterActions from the actions'
// Go definitions: one function per action, its parameters the action's
// arguments, with their bounds.
func solidityActions() string {
	var b strings.Builder
	b.WriteString(`// BEGIN ICharterActions: generated from internal/system (the Args types) by
//   go test ./internal/system -run TestSolidityInterfaceMatches -update
// then node internal/system/gen.js; do not edit by hand.

/// The arguments of each governance action. propose(action, args, memo)
/// takes as args the ABI encoding of the parameters of the action's
/// function here, without a selector (abi.encode(target) for Freeze; in
/// ethers, the function's encodeFunctionData less its first 4 bytes). The
/// functions are never called: they name and type the encodings.
interface ICharterActions {
`)
	for i, a := range Actions() {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "    /// Action %d, decided by the rule of class %s (%d). %s\n", a, a.Class(), a.Class(), a.Doc())
		var params []string
		for _, f := range a.Fields() {
			loc := ""
			if f.Max > 0 {
				loc = " calldata"
				unit := "elements"
				if f.ABIType == "string" || f.ABIType == "bytes" {
					unit = "bytes"
				}
				fmt.Fprintf(&b, "    /// @param %s at most %d %s\n", f.Name, f.Max, unit)
			}
			params = append(params, f.ABIType+loc+" "+f.Name)
		}
		fmt.Fprintf(&b, "    function %s(%s) external;\n", a, strings.Join(params, ", "))
	}
	b.WriteString("}\n// END ICharterActions\n")
	return b.String()
}

// ICharter.sol documents the actions, classes, statuses and role bits:
// they must be the package's. Its interface ICharterActions is generated
// from the actions' definitions (-update rewrites it), and the ABI that
// gen.js compiled from it must be theirs.
func TestSolidityInterfaceMatches(t *testing.T) {
	src, err := os.ReadFile(solPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	i, j := strings.Index(text, "// BEGIN ICharterActions"), strings.Index(text, "// END ICharterActions\n")
	if i < 0 || j < i {
		t.Fatalf("%s has no generated part (// BEGIN ICharterActions ... // END ICharterActions)", solPath)
	}
	want := solidityActions()
	if got := text[i : j+len("// END ICharterActions\n")]; got != want {
		if !*update {
			t.Fatalf("the generated part of %s is not the actions' definitions: run\n  go test ./internal/system -run TestSolidityInterfaceMatches -update && node internal/system/gen.js", solPath)
		}
		text = text[:i] + want + text[j+len("// END ICharterActions\n"):]
		if err := os.WriteFile(solPath, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s; now run node internal/system/gen.js", solPath)
	}
	// The compiled ABI of ICharterActions is the definitions'.
	if len(ActionsInterface.Methods) != len(Actions()) {
		t.Errorf("the generated ABI has %d action functions, the package %d actions (run node internal/system/gen.js)", len(ActionsInterface.Methods), len(Actions()))
	}
	for _, a := range Actions() {
		m, ok := ActionsInterface.Methods[a.String()]
		if !ok {
			t.Errorf("the generated ABI lacks %s (run node internal/system/gen.js)", a)
			continue
		}
		d, _ := a.def()
		if len(m.Inputs) != len(d.args) {
			t.Errorf("%s: the generated ABI has %d arguments, the definition %d", a, len(m.Inputs), len(d.args))
			continue
		}
		for k, in := range m.Inputs {
			if in.Name != d.args[k].Name || in.Type.String() != d.args[k].Type.String() {
				t.Errorf("%s argument %d: the generated ABI has %s %s, the definition %s %s", a, k, in.Type, in.Name, d.args[k].Type, d.args[k].Name)
			}
		}
	}
	if want := "/// " + strings.Join(ParamNames(), ", ") + "."; !strings.Contains(text, want) {
		t.Errorf("ICharter.sol does not list the parameters %v", ParamNames())
	}
	var classes []string
	for c := Class(0); c < NumClasses; c++ {
		classes = append(classes, c.String()+" "+strconv.Itoa(int(c)))
	}
	if want := "/// Classes: " + strings.Join(classes, ", ") + "."; !strings.Contains(text, want) {
		t.Errorf("ICharter.sol does not say %q", want)
	}
	var statuses []string
	for s := ProposalOpen; s <= ProposalFailed; s++ {
		statuses = append(statuses, s.String()+" "+strconv.Itoa(int(s)))
	}
	if want := "/// Status: " + strings.Join(statuses, ", ") + "."; !strings.Contains(text, want) {
		t.Errorf("ICharter.sol does not say %q", want)
	}
	var roles []string
	for _, r := range roleNames {
		roles = append(roles, r.name+" = "+strconv.Itoa(int(r.r)))
	}
	if want := "/// Role bits: " + strings.Join(roles, ", ") + "."; !strings.Contains(text, want) {
		t.Errorf("ICharter.sol does not say %q", want)
	}
	// Every function the interfaces declare is in the generated ABIs.
	funcRe := regexp.MustCompile(`function (\w+)\(`)
	for _, part := range []struct {
		iface string
		abi   *abi.ABI
	}{{"interface ICharterRegistry", &Registry}, {"interface ICharterGovernance", &Governance}} {
		i := strings.Index(text, part.iface)
		if i < 0 {
			t.Fatalf("%s not found", part.iface)
		}
		body := text[i:]
		if j := strings.Index(body[1:], "\ninterface "); j >= 0 {
			body = body[:j+1]
		}
		names := funcRe.FindAllStringSubmatch(body, -1)
		if len(names) != len(part.abi.Methods) {
			t.Errorf("%s declares %d functions, the ABI has %d", part.iface, len(names), len(part.abi.Methods))
		}
		for _, n := range names {
			if _, ok := part.abi.Methods[n[1]]; !ok {
				t.Errorf("%s.%s is not in the generated ABI", part.iface, n[1])
			}
		}
	}
}
