package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"slices"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/holiman/uint256"
)

// Bounds of the path of a contract route.
const (
	maxContractName = 128
	maxMethodSpec   = 512
)

// callRequest is the body of POST /contracts/{contract}/call/{method}.
type callRequest struct {
	// Args are the function's arguments: an array in order, or an
	// object by input name.
	Args json.RawMessage `json:"args"`
	// ABI is the contract's JSON ABI; required when the contract is
	// named by address, else it overrides the registry's.
	ABI json.RawMessage `json:"abi"`
	// From is the address the call is made from (default zero).
	From *string `json:"from"`
	// Value is the wei the call carries, a decimal string.
	Value *string `json:"value"`
	// Gas is the most gas the call may use (default and at most GasCap).
	Gas *uint64 `json:"gas"`
}

// sendRequest is the body of POST /contracts/{contract}/send/{method}.
type sendRequest struct {
	Key   string          `json:"key"` // the node-held key to sign with
	Args  json.RawMessage `json:"args"`
	ABI   json.RawMessage `json:"abi"`
	Value *string         `json:"value"`
	Gas   *uint64         `json:"gas"` // 0 or absent: estimated
}

// CallResult is the answer of a call: its outputs decoded by the ABI.
type CallResult struct {
	Outputs    []Output `json:"outputs"`
	ReturnData string   `json:"returnData"` // 0x hex
	GasUsed    uint64   `json:"gasUsed"`
	Block      uint64   `json:"block"` // the head it ran on
}

// target is a contract function a request names.
type target struct {
	addr   common.Address
	method *abi.Method
	abi    *abi.ABI
}

// resolve finds the contract and function of a call or send: the
// contract by address or by registered name, the ABI from the body or
// the registry, the function by name or signature.
func (g *Gateway) resolve(c *call, bodyABI json.RawMessage) (*target, error) {
	name := c.r.PathValue("contract")
	var (
		t       target
		abiJSON []byte
		fromReg bool
	)
	switch {
	case name == "" || len(name) > maxContractName:
		return nil, badInput("contract", "want a 0x address or a registered name of at most %d bytes", maxContractName)
	case strings.HasPrefix(name, "0x") || strings.HasPrefix(name, "0X"):
		addr, err := parseAddress("contract", name)
		if err != nil {
			return nil, err
		}
		t.addr = addr
		if isNull(bodyABI) {
			return nil, badInput("abi", "required when the contract is named by its address (give the JSON ABI array)")
		}
	case g.cfg.Contracts == nil:
		return nil, notFound("contract", "%q is not an address and this node has no contract registry: name the contract by its 0x address and give its abi", name)
	default:
		addr, regABI, found := g.cfg.Contracts.Lookup(name)
		if !found {
			return nil, notFound("contract", "no contract named %q in the contract registry", name)
		}
		t.addr, abiJSON, fromReg = addr, regABI, true
	}
	if !isNull(bodyABI) {
		abiJSON, fromReg = bodyABI, false
	}
	parsed, err := parseABI(abiJSON)
	switch {
	case err != nil && fromReg:
		return nil, internal("the contract registry's ABI of %q: %v", name, err)
	case err != nil:
		return nil, badInput("abi", "%v", err)
	}
	t.abi = &parsed
	spec := c.r.PathValue("method")
	if spec == "" || len(spec) > maxMethodSpec {
		return nil, badInput("method", "want a function's name or signature of at most %d bytes", maxMethodSpec)
	}
	if t.method, err = selectMethod(&parsed, spec); err != nil {
		return nil, err
	}
	if err := checkTypes(t.method.Inputs); err != nil {
		return nil, badInput("abi", "%s: input %v", t.method.Sig, err)
	}
	if err := checkTypes(t.method.Outputs); err != nil {
		return nil, badInput("abi", "%s: output %v", t.method.Sig, err)
	}
	return &t, nil
}

func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

// selectMethod finds a function by its signature ("transfer(address,uint256)")
// or by its name when only one function has it.
func selectMethod(a *abi.ABI, spec string) (*abi.Method, error) {
	var sigs []string
	for _, m := range a.Methods {
		sigs = append(sigs, m.Sig)
	}
	slices.Sort(sigs)
	list := strings.Join(sigs, ", ")
	if len(list) > 300 {
		list = list[:300] + "..."
	}
	if list == "" {
		list = "none"
	}
	if strings.Contains(spec, "(") {
		want := strings.ReplaceAll(spec, " ", "")
		for _, m := range a.Methods {
			if m.Sig == want {
				return &m, nil
			}
		}
		return nil, notFound("method", "method: the ABI has no function %s (it has %s)", want, list)
	}
	var found []abi.Method
	for _, m := range a.Methods {
		if m.RawName == spec {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return nil, notFound("method", "method: the ABI has no function %s (it has %s)", spec, list)
	case 1:
		return &found[0], nil
	}
	var names []string
	for _, m := range found {
		names = append(names, m.Sig)
	}
	slices.Sort(names)
	return nil, badInput("method", "%s is overloaded: name one of %s", spec, strings.Join(names, ", "))
}

// pack encodes a call of t's function with the JSON arguments.
func pack(t *target, args json.RawMessage) ([]byte, error) {
	vals, err := packArgs(t.method.Inputs, args)
	if err != nil {
		return nil, err
	}
	data, err := t.method.Inputs.Pack(vals...)
	if err != nil {
		return nil, badInput("args", "%v", err)
	}
	return append(slices.Clone(t.method.ID), data...), nil
}

// callContract is POST /contracts/{contract}/call/{method}: the function
// runs on the state at the head and nothing is kept.
func (g *Gateway) callContract(c *call) (*reply, error) {
	var req callRequest
	if err := decodeBody(c.body, &req); err != nil {
		return nil, err
	}
	t, err := g.resolve(c, req.ABI)
	if err != nil {
		return nil, err
	}
	data, err := pack(t, req.Args)
	if err != nil {
		return nil, err
	}
	var from common.Address
	if req.From != nil {
		if from, err = parseAddress("from", *req.From); err != nil {
			return nil, err
		}
	}
	value, err := optionalWei("value", req.Value)
	if err != nil {
		return nil, err
	}
	gas := g.cfg.GasCap
	if req.Gas != nil {
		if *req.Gas == 0 || *req.Gas > g.cfg.GasCap {
			return nil, badInput("gas", "want 1 to %d", g.cfg.GasCap)
		}
		gas = *req.Gas
	}
	h, st, err := g.headState()
	if err != nil {
		return nil, err
	}
	v, _ := uint256.FromBig(value)
	msg := &core.Message{From: from, To: &t.addr, GasLimit: gas, Data: data, Value: v,
		GasPrice: new(uint256.Int), GasFeeCap: new(uint256.Int), GasTipCap: new(uint256.Int)}
	ctx, cancel := context.WithTimeout(c.ctx, g.cfg.CallTimeout)
	defer cancel()
	res, err := g.b.Call(ctx, h, st, msg)
	switch {
	case err != nil && ctx.Err() != nil && c.ctx.Err() == nil:
		return nil, rejected("call of %s aborted after %s, the gateway's limit", t.method.Sig, g.cfg.CallTimeout)
	case err != nil:
		return nil, rejected("call of %s failed: %v", t.method.Sig, err)
	case res.Failed():
		return nil, callFailure(t, res)
	}
	ret := res.Return()
	if err := measureOutputs(t.method.Outputs, ret, g.cfg.ResultBytes); err != nil {
		if errors.Is(err, errTooMuch) {
			return nil, rejected("outputs of %s: decoded, the return data would take more than %d bytes", t.method.Sig, g.cfg.ResultBytes)
		}
		return nil, rejected("outputs of %s: the return data (%d bytes) is not their encoding: %v", t.method.Sig, len(ret), err)
	}
	vals, err := t.method.Outputs.Unpack(ret)
	if err != nil {
		return nil, rejected("outputs of %s: the return data (%d bytes) is not their encoding: %v", t.method.Sig, len(ret), err)
	}
	return okReply(CallResult{Outputs: outputsJSON(t.method.Outputs, vals), ReturnData: hexutil.Encode(ret),
		GasUsed: res.UsedGas, Block: h.Number.Uint64()}), nil
}

// callFailure answers a reverted or failed call: 422 with the revert's
// reason (Error(string), or a custom error of the ABI by name) and data.
func callFailure(t *target, res *core.ExecutionResult) error {
	data := res.Revert()
	if len(data) == 0 && !errors.Is(res.Err, vm.ErrExecutionReverted) {
		return rejected("call of %s failed: %v", t.method.Sig, res.Err)
	}
	reason := ""
	if s, err := abi.UnpackRevert(data); err == nil {
		reason = s
	} else if len(data) >= 4 {
		if e, err := t.abi.ErrorByID([4]byte(data[:4])); err == nil {
			reason = e.Sig
		}
	}
	p := rejected("call of %s reverted", t.method.Sig)
	if reason != "" {
		p.Detail += ": " + reason
	}
	p.Reason, p.RevertData = reason, hexutil.Encode(data)
	return p
}

func optionalWei(field string, s *string) (*big.Int, error) {
	if s == nil {
		return new(big.Int), nil
	}
	return parseWei(field, *s)
}

// maxKeyID bounds a key id.
const maxKeyID = 128

// sendContract is POST /contracts/{contract}/send/{method}: a transaction
// signed with a node-held key.
func (g *Gateway) sendContract(c *call) (*reply, error) {
	if g.cfg.Sender == nil {
		return nil, problemf(http.StatusNotImplemented, "", "this node holds no signing keys for clients: sign the transaction yourself and POST it to %stransactions", Prefix)
	}
	var req sendRequest
	if err := decodeBody(c.body, &req); err != nil {
		return nil, err
	}
	if req.Key == "" || len(req.Key) > maxKeyID {
		return nil, badInput("key", "want the id of a node-held key (1 to %d bytes)", maxKeyID)
	}
	if c.who != nil && !slices.Contains(c.who.Keys, req.Key) {
		return nil, problemf(http.StatusForbidden, "key", "key: %s may not use the node-held key %q", c.who.Name(), req.Key)
	}
	t, err := g.resolve(c, req.ABI)
	if err != nil {
		return nil, err
	}
	if t.method.IsConstant() {
		return nil, badInput("method", "%s is %s: it changes nothing, call it instead (%scontracts/{contract}/call/{method})", t.method.Sig, t.method.StateMutability, Prefix)
	}
	data, err := pack(t, req.Args)
	if err != nil {
		return nil, err
	}
	value, err := optionalWei("value", req.Value)
	if err != nil {
		return nil, err
	}
	if value.Sign() > 0 && !t.method.IsPayable() {
		return nil, badInput("value", "%s is not payable", t.method.Sig)
	}
	var gas uint64
	if req.Gas != nil {
		if limit := uint64(g.b.ChainSpec().TxGasLimit); *req.Gas > limit {
			return nil, badInput("gas", "at most %d, the chain's transaction gas limit", limit)
		}
		gas = *req.Gas
	}
	hash, err := g.cfg.Sender.Send(c.ctx, req.Key, c.who, TxRequest{To: t.addr, Data: data, Value: value, Gas: gas})
	switch {
	case errors.Is(err, ErrUnknownKey):
		return nil, notFound("key", "key: %v", err)
	case errors.Is(err, ErrKeyDenied):
		return nil, problemf(http.StatusForbidden, "key", "key: %v", err)
	case err != nil && c.ctx.Err() != nil:
		return nil, problemf(http.StatusServiceUnavailable, "", "send cancelled: %v", err)
	case err != nil:
		return nil, refused(err)
	}
	return submitted(hash), nil
}
