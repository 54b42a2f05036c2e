package system

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"
)

// Parsed ABIs of the system contracts.
var (
	Registry   = mustABI(RegistryABI)
	Governance = mustABI(GovernanceABI)
)

func mustABI(j string) abi.ABI {
	a, err := abi.JSON(strings.NewReader(j))
	if err != nil {
		panic(err)
	}
	return a
}

// Gas of system contract calls: flat, by kind.
const (
	gasView  = 5_000
	gasWrite = 60_000
	gasWord  = 16 // per 32 bytes of input
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
	if p.addr == RegistryAddress {
		return "CHARTER_REGISTRY"
	}
	return "CHARTER_GOVERNANCE"
}

func (p *precompile) RequiredGas(input []byte) uint64 {
	words := uint64(len(input)+31) / 32
	if len(input) >= 4 {
		if m, err := p.abi.MethodById(input[:4]); err == nil && !m.IsConstant() {
			return gasWrite + gasWord*words
		}
	}
	return gasView + gasWord*words
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
	args, err := m.Inputs.Unpack(input[4:])
	if err != nil {
		return nil, fmt.Errorf("%s: malformed arguments: %v", m.Name, err)
	}
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

func (p *precompile) view(st *State, name string, args []any) ([]any, error) {
	switch name {
	// registry
	case "accountOf":
		a := st.Account(args[0].(common.Address))
		return []any{a.Org, uint32(st.EffectiveRoles(a)), a.Frozen}, nil
	case "hasRole":
		a := st.Account(args[0].(common.Address))
		want := Role(args[1].(uint32))
		return []any{!a.Frozen && st.EffectiveRoles(a)&want == want}, nil
	case "isFrozen":
		return []any{st.rawAccount(args[0].(common.Address)).Frozen}, nil
	case "organization":
		o, ok := st.Org(args[0].(string))
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
		n, ok := st.Node(args[0].(common.Address))
		return []any{ok, n.Org, n.Validator, n.Revoked}, nil
	case "parameter":
		return []any{new(big.Int).SetUint64(st.Param(args[0].(string)))}, nil
	case "usage":
		u := st.Usage(args[0].(string), args[1].(uint64))
		return []any{u.Txs, u.Gas, u.StateBytes}, nil
	// governance
	case "proposal":
		pr, ok := st.Proposal(args[0].(uint64))
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

func (p *precompile) write(st *State, from common.Address, name string, args []any) ([]any, []*types.Log, error) {
	g, r := &Governance, &Registry
	switch name {
	case "setAccountRoles":
		acct, roles := args[0].(common.Address), Role(args[1].(uint32))
		if err := st.SetAccountRoles(from, acct, roles); err != nil {
			return nil, nil, err
		}
		org := st.rawAccount(acct).Org
		l, err := event(r, "RolesChanged", []common.Hash{common.BytesToHash(acct[:]), common.BytesToHash(from[:])}, org, uint32(st.rawAccount(acct).Roles))
		return nil, []*types.Log{l}, err
	case "propose":
		a, data, memo := Action(args[0].(uint8)), args[1].([]byte), args[2].(string)
		id, err := st.Propose(from, a, data, memo)
		if err != nil {
			return nil, nil, err
		}
		pr, _ := st.Proposal(id)
		l, err := event(g, "ProposalCreated", []common.Hash{idTopic(id), common.BytesToHash(from[:])}, uint8(a), pr.Org, pr.Expires, memo)
		return []any{id}, []*types.Log{l}, err
	case "vote":
		id, support := args[0].(uint64), args[1].(bool)
		status, err := st.Vote(from, id, support)
		if err != nil {
			return nil, nil, err
		}
		pr, _ := st.Proposal(id)
		v := pr.Votes[len(pr.Votes)-1]
		l, err := event(g, "VoteCast", []common.Hash{idTopic(id), common.BytesToHash(from[:])}, v.Org, support, v.Weight)
		if err != nil {
			return nil, nil, err
		}
		logs := []*types.Log{l}
		switch status {
		case ProposalPassed:
			l, err = event(g, "ProposalPassed", []common.Hash{idTopic(id)}, pr.ActivatesAt)
			logs = append(logs, l)
		case ProposalRejected:
			l, err = event(g, "ProposalRejected", []common.Hash{idTopic(id)})
			logs = append(logs, l)
		}
		return nil, logs, err
	case "cancel":
		id := args[0].(uint64)
		if err := st.Cancel(from, id); err != nil {
			return nil, nil, err
		}
		l, err := event(g, "ProposalCancelled", []common.Hash{idTopic(id)})
		return nil, []*types.Log{l}, err
	}
	return nil, nil, fmt.Errorf("%s is not implemented", name)
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
