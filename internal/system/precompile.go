package system

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/privacy"
)

// Parsed ABIs of the system contracts, and of ICharterActions: the
// encodings of the actions' arguments.
var (
	Registry         = mustABI(RegistryABI)
	Governance       = mustABI(GovernanceABI)
	ActionsInterface = mustABI(ActionsABI)
	ContractRegistry = mustABI(ContractsABI)
)

func mustABI(j string) abi.ABI {
	a, err := abi.JSON(strings.NewReader(j))
	if err != nil {
		panic(err)
	}
	return a
}

// Gas of system contract calls: a base by kind, the input by the word,
// and for a write, the bytes it stores (the strings and bytes among its
// arguments, and the strings of its string lists with 32 bytes each: a
// proposal's arguments and memo, a privacy group's texts, member names
// and the group id each member's list keeps) by the byte, at the price
// the EVM asks for a contract's code (200 a byte): a proposal's cost grows
// with what every node keeps.
const (
	gasView       = 5_000
	gasWrite      = 60_000
	gasWord       = 16  // per 32 bytes of input
	gasStoredByte = 200 // per byte of the strings and bytes a write stores
)

// Call is the message being executed, as the executor tells it to the
// system contracts: a state-changing function runs only when the message
// itself calls it (not a contract in between), with From as the caller.
type Call struct {
	From  common.Address
	To    *common.Address
	Data  []byte
	Value *uint256.Int
}

// Contracts are the system contracts installed in one EVM.
type Contracts struct {
	evm *vm.EVM
	cur Call
}

// Install adds the system contracts to evm's precompiles.
func Install(evm *vm.EVM) *Contracts {
	c := &Contracts{evm: evm}
	evm.SetPrecompiles(c.Precompiles())
	return c
}

// SetCall tells the contracts which message runs next.
func (c *Contracts) SetCall(call Call) { c.cur = call }

type precompile struct {
	c    *Contracts
	addr common.Address
	abi  *abi.ABI
}

func (p *precompile) Name() string {
	switch p.addr {
	case RegistryAddress:
		return "CHARTER_REGISTRY"
	case ContractsAddress:
		return "CHARTER_CONTRACTS"
	}
	return "CHARTER_GOVERNANCE"
}

func (p *precompile) RequiredGas(input []byte) uint64 {
	words := uint64(len(input)+31) / 32
	if len(input) >= 4 {
		if m, err := p.abi.MethodById(input[:4]); err == nil && !m.IsConstant() {
			if g, ok := privacyGas(m, input[4:]); ok && p.addr == RegistryAddress {
				return g
			}
			return gasWrite + gasWord*words + gasStoredByte*storedBytes(m, input[4:])
		}
	}
	return gasView + gasWord*words
}

// storedBytes is the length of the strings and bytes among a write's
// arguments; 0 when they do not decode (the call reverts).
func storedBytes(m *abi.Method, data []byte) uint64 {
	if checkGroupInput(m.Name, data) != nil {
		return 0
	}
	vals, err := m.Inputs.Unpack(data)
	if err != nil {
		return 0
	}
	var n uint64
	for _, v := range vals {
		switch x := v.(type) {
		case string:
			n += uint64(len(x))
		case []byte:
			n += uint64(len(x))
		case []string:
			// A listed organization name, and the 32-byte group id its
			// organization's list of groups keeps.
			for _, e := range x {
				n += uint64(len(e)) + 32
			}
		}
	}
	return n
}

// revertData is the ABI encoding of Error(reason), as Solidity reverts.
func revertData(reason string) []byte {
	t, _ := abi.NewType("string", "", nil)
	packed, _ := abi.Arguments{{Type: t}}.Pack(reason)
	return append(crypto.Keccak256([]byte("Error(string)"))[:4], packed...)
}

func (p *precompile) Run(input []byte) (out []byte, err error) {
	defer func() {
		if err != nil {
			out, err = revertData(err.Error()), vm.ErrExecutionReverted
		}
	}()
	if len(input) < 4 {
		return nil, errors.New("no function selector")
	}
	m, err := p.abi.MethodById(input[:4])
	if err != nil {
		return nil, fmt.Errorf("unknown function selector %x", input[:4])
	}
	if err := checkGroupInput(m.Name, input[4:]); err != nil {
		return nil, err
	}
	vals, err := m.Inputs.Unpack(input[4:])
	if err != nil {
		return nil, fmt.Errorf("%s: malformed arguments: %v", m.Name, err)
	}
	args := in{m: m, vals: vals}
	sdb := p.c.evm.StateDB
	ctx := p.c.evm.Context
	st := Open(sdb, ctx.BlockNumber.Uint64(), ctx.Time)
	cur := p.c.cur
	direct := cur.To != nil && *cur.To == p.addr && bytes.Equal(cur.Data, input)
	if direct && cur.Value != nil && cur.Value.Sign() != 0 {
		return nil, fmt.Errorf("%s: the system contracts take no value", m.Name)
	}
	if m.IsConstant() {
		res, err := p.view(st, m.Name, args)
		if err != nil {
			return nil, err
		}
		return m.Outputs.Pack(res...)
	}
	if !direct {
		return nil, fmt.Errorf("%s: call the system contract directly from an account, not through a contract", m.Name)
	}
	res, logs, err := p.write(st, cur.From, m.Name, args)
	if err != nil {
		return nil, err
	}
	for _, l := range logs {
		l.Address = p.addr
		sdb.AddLog(l)
	}
	return m.Outputs.Pack(res...)
}

// in holds a call's decoded arguments, for each function to copy into a
// struct of its own (checked, field by field, by the ABI's names).
type in struct {
	m    *abi.Method
	vals []any
}

// into copies the arguments into the fields of the struct dst points to
// whose names are the ABI's, ignoring case ("id" goes to ID).
func (a in) into(dst any) error {
	v := reflect.ValueOf(dst).Elem()
	for i, arg := range a.m.Inputs {
		f := v.FieldByNameFunc(func(n string) bool { return strings.EqualFold(n, arg.Name) })
		if !f.IsValid() {
			return fmt.Errorf("%s: argument %s is not implemented", a.m.Name, arg.Name)
		}
		if err := assign(f, a.vals[i]); err != nil {
			return fmt.Errorf("%s: %s: %v", a.m.Name, arg.Name, err)
		}
	}
	return nil
}

func (p *precompile) view(st *State, name string, args in) ([]any, error) {
	if p.addr == ContractsAddress {
		return contractsView(st, name, args)
	}
	if isGroupCall(name) {
		return p.groupView(st, name, args)
	}
	// The views' arguments, by name.
	var a struct {
		Account common.Address
		Roles   uint32
		Name    string
		ID      common.Address
		Org     string
		Day     uint64
		X25519  common.Hash
	}
	var prop struct{ ID uint64 }
	switch name {
	case "proposal":
		if err := args.into(&prop); err != nil {
			return nil, err
		}
	case "organizations", "validators", "proposalCount":
	default:
		if err := args.into(&a); err != nil {
			return nil, err
		}
	}
	switch name {
	// registry
	case "accountOf":
		acct := st.Account(a.Account)
		return []any{acct.Org, uint32(st.EffectiveRoles(acct)), acct.Frozen}, nil
	case "hasRole":
		acct := st.Account(a.Account)
		want := Role(a.Roles)
		return []any{!acct.Frozen && st.EffectiveRoles(acct)&want == want}, nil
	case "isFrozen":
		return []any{st.rawAccount(a.Account).Frozen}, nil
	case "organization":
		o, ok := st.Org(a.Name)
		return []any{ok, uint8(o.Tier), o.Weight, uint8(o.Status)}, nil
	case "organizations":
		names := st.OrgNames()
		if names == nil {
			names = []string{}
		}
		return []any{names}, nil
	case "validators":
		v := st.Validators()
		if v == nil {
			v = []common.Address{}
		}
		return []any{v}, nil
	case "node":
		n, ok := st.Node(a.ID)
		return []any{ok, n.Org, n.Validator, n.Revoked}, nil
	case "parameter":
		v, _ := st.ParamValue(a.Name)
		return []any{new(big.Int).SetUint64(v)}, nil
	case "usage":
		u := st.Usage(a.Org, a.Day)
		return []any{u.Txs, u.Gas, u.StateBytes}, nil
	case "privacyKey":
		k := st.PrivacyKey(a.Org)
		return []any{k != nil, [32]byte(k.Identity()), nonNilBytes(k.KEM())}, nil
	case "privacyKeyOrg":
		org, ok := st.PrivacyKeyOrg(privacy.Identity(a.X25519))
		return []any{ok, org}, nil
	// governance
	case "proposal":
		pr, ok := st.proposalRecord(prop.ID)
		if !ok {
			return []any{uint8(0), uint8(0), "", common.Address{}, uint64(0), uint64(0), uint64(0), uint64(0), uint64(0), uint64(0)}, nil
		}
		t := st.Tally(&pr)
		return []any{uint8(pr.Action), uint8(pr.Status), pr.Org, pr.Proposer, pr.Created, pr.Expires, pr.ActivatesAt, t.Yes, t.No, t.Total}, nil
	case "proposalCount":
		return []any{st.ProposalCount()}, nil
	}
	return nil, fmt.Errorf("%s is not implemented", name)
}

func (p *precompile) write(st *State, from common.Address, name string, args in) ([]any, []*types.Log, error) {
	// A node sends the registry its privacy calls only (privacy.go).
	if p.addr == RegistryAddress && !privacyNodeCalls[name] && st.IsNode(from) {
		return nil, nil, nodeRefusal(from)
	}
	if isGroupCall(name) {
		return p.groupWrite(st, from, name, args)
	}
	if p.addr == ContractsAddress {
		return contractsWrite(st, from, name, args)
	}
	g, r := &Governance, &Registry
	switch name {
	case "setAccountRoles":
		var a struct {
			Account common.Address
			Roles   uint32
		}
		if err := args.into(&a); err != nil {
			return nil, nil, err
		}
		if err := st.SetAccountRoles(from, a.Account, Role(a.Roles)); err != nil {
			return nil, nil, err
		}
		acct := st.rawAccount(a.Account)
		l, err := event(r, "RolesChanged", []common.Hash{common.BytesToHash(a.Account[:]), common.BytesToHash(from[:])}, acct.Org, uint32(acct.Roles))
		return nil, []*types.Log{l}, err
	case "propose":
		var a struct {
			Action uint8
			Args   []byte
			Memo   string
		}
		if err := args.into(&a); err != nil {
			return nil, nil, err
		}
		id, err := st.Propose(from, Action(a.Action), a.Args, a.Memo)
		if err != nil {
			return nil, nil, err
		}
		pr, _ := st.proposalRecord(id)
		l, err := event(g, "ProposalCreated", []common.Hash{idTopic(id), common.BytesToHash(from[:])}, a.Action, pr.Org, pr.Expires, a.Memo)
		return []any{id}, []*types.Log{l}, err
	case "vote":
		var a struct {
			ID      uint64
			Support bool
		}
		if err := args.into(&a); err != nil {
			return nil, nil, err
		}
		status, err := st.Vote(from, a.ID, a.Support)
		if err != nil {
			return nil, nil, err
		}
		pr, _ := st.proposalRecord(a.ID)
		v := pr.Votes[len(pr.Votes)-1]
		l, err := event(g, "VoteCast", []common.Hash{idTopic(a.ID), common.BytesToHash(from[:])}, v.Org, a.Support, v.Weight)
		if err != nil {
			return nil, nil, err
		}
		logs := []*types.Log{l}
		switch status {
		case ProposalPassed:
			l, err = event(g, "ProposalPassed", []common.Hash{idTopic(a.ID)}, pr.ActivatesAt)
			logs = append(logs, l)
		case ProposalRejected:
			l, err = event(g, "ProposalRejected", []common.Hash{idTopic(a.ID)})
			logs = append(logs, l)
		}
		return nil, logs, err
	case "cancel":
		var a struct{ ID uint64 }
		if err := args.into(&a); err != nil {
			return nil, nil, err
		}
		if err := st.Cancel(from, a.ID); err != nil {
			return nil, nil, err
		}
		l, err := event(g, "ProposalCancelled", []common.Hash{idTopic(a.ID)})
		return nil, []*types.Log{l}, err
	}
	return nil, nil, fmt.Errorf("%s is not implemented", name)
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func idTopic(id uint64) common.Hash { return common.BigToHash(new(big.Int).SetUint64(id)) }

// event builds a log of the named ABI event: topics after the signature
// are given, data are the non-indexed values.
func event(a *abi.ABI, name string, topics []common.Hash, data ...any) (*types.Log, error) {
	ev := a.Events[name]
	packed, err := ev.Inputs.NonIndexed().Pack(data...)
	if err != nil {
		return nil, fmt.Errorf("event %s: %v", name, err)
	}
	return &types.Log{Topics: append([]common.Hash{ev.ID}, topics...), Data: packed}, nil
}
