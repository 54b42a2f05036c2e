package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/privacy/privtx"
	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
)

// Private transactions from the command line: Besu's eea_/priv_ API, as
// web3js-quorum uses it, without JavaScript.

// Bounds of the private transaction commands.
const (
	// maxBinFileBytes bounds a --deploy file: twice the hex of the largest
	// private transaction, plus whitespace.
	maxBinFileBytes = 2*privtx.MaxTxBytes + 1024
	// defaultPrivateGas is the gas limit of a private transaction, as
	// web3js-quorum's generateAndSendRawTransaction sets it.
	defaultPrivateGas = 3_000_000
	// maxCallArgs bounds the arguments of --call.
	maxCallArgs = 64
)

// privReceipt is the answer of priv_getTransactionReceipt (the fields the
// commands read; --json prints the node's answer as it is).
type privReceipt struct {
	ContractAddress *common.Address  `json:"contractAddress"`
	From            common.Address   `json:"from"`
	To              *common.Address  `json:"to"`
	Output          string           `json:"output"`
	CommitmentHash  common.Hash      `json:"commitmentHash"`
	TransactionHash common.Hash      `json:"transactionHash"`
	PrivateFrom     string           `json:"privateFrom"`
	PrivacyGroupID  string           `json:"privacyGroupId"`
	Status          hexutil.Uint64   `json:"status"`
	BlockNumber     *hexutil.Big     `json:"blockNumber"`
	RevertReason    string           `json:"revertReason"`
	Logs            []map[string]any `json:"logs"`
}

func privacySend(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter privacy send --group ID --key FILE (--deploy FILE.bin | --to ADDR) [--call SIGNATURE ARG... | --data HEX] [--gas N] [--rpc URL] [--json] [--no-wait]"
	fs := newFlagSet("privacy send", stderr)
	group := fs.String("group", "", "the privacy group: 0x and 64 hex digits, or the base64 privacyGroupId")
	deploy := fs.String("deploy", "", "deploy the contract whose creation bytecode (hex) is in this file; constructor arguments with --call 'constructor(TYPES)' ARG...")
	to := fs.String("to", "", "call the private contract at this address")
	callSig := fs.String("call", "", "the function to call, e.g. 'transfer(address,uint256)', its arguments after the flags")
	data := fs.String("data", "", "call data or constructor arguments as hex, instead of --call")
	gas := fs.Uint64("gas", defaultPrivateGas, "gas limit of the private transaction")
	sf := addSendFlags(fs)
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *group == "" {
		return errors.New("--group is required: the privacy group's id (charter privacy group list)")
	}
	gid, err := system.ParseGroupID(*group)
	if err != nil {
		return fmt.Errorf("--group: %v", err)
	}
	if (*deploy == "") == (*to == "") {
		return fmt.Errorf("give one of --deploy FILE.bin and --to ADDR; usage: %s", syntax)
	}
	var target *common.Address
	var payload []byte
	if *deploy != "" {
		if payload, err = readBinFile(*deploy); err != nil {
			return err
		}
	} else {
		a, err := parseAddr("--to", *to)
		if err != nil {
			return err
		}
		target = &a
	}
	input, err := callInput(*callSig, *data, pos, *deploy != "", syntax)
	if err != nil {
		return err
	}
	payload = append(payload, input...)
	if *gas == 0 {
		return errors.New("--gas must be positive")
	}
	if err := sf.check(); err != nil {
		return err
	}
	key, err := sf.loadKey()
	if err != nil {
		return err
	}
	from := crypto.PubkeyToAddress(key.PublicKey)
	c, err := sf.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	privateFrom, err := orgIdentity(c, from, *sf.key)
	if err != nil {
		return err
	}
	var chainID hexutil.Big
	if _, err := c.callInto(&chainID, "eth_chainId"); err != nil {
		return err
	}
	var nonce hexutil.Uint64
	if _, err := c.callInto(&nonce, "priv_getTransactionCount", from, system.GroupIDBase64(gid)); err != nil {
		return err
	}
	tx := &privtx.Tx{Nonce: uint64(nonce), GasPrice: new(big.Int), Gas: *gas, To: target, Value: new(big.Int),
		Data: payload, PrivateFrom: privateFrom, PrivacyGroupID: gid.Bytes(), Restriction: privtx.Restricted}
	if len(tx.Data) == 0 {
		tx.Data = nil
	}
	if err := privtx.SignTx(tx, chainID.ToInt(), key); err != nil {
		return err
	}
	raw, err := tx.Encode()
	if err != nil {
		return err
	}
	var marker common.Hash
	if _, err := c.callInto(&marker, "eea_sendRawTransaction", hexutil.Encode(raw)); err != nil {
		return fmt.Errorf("eea_sendRawTransaction: %w (account %s; nothing was sent)", err, from.Hex())
	}
	if *sf.noWait {
		if *sf.json {
			return printValue(stdout, map[string]any{"marker": marker, "transactionHash": tx.Hash()})
		}
		_, err := fmt.Fprintf(stdout, "sent private transaction %s with marker %s (not waiting for it)\n", tx.Hash().Hex(), marker.Hex())
		return err
	}
	if _, err := c.waitReceipt(marker, *sf.timeout); err != nil {
		return err
	}
	r, rawReceipt, err := c.waitPrivateReceipt(marker, *sf.timeout)
	if err != nil {
		return err
	}
	if err := printPrivateReceipt(stdout, *sf.json, r, rawReceipt); err != nil {
		return err
	}
	if r.Status != 1 {
		return privateFailure(r)
	}
	return nil
}

func privacyCall(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter privacy call --group ID --to ADDR (--call SIGNATURE ARG... | --data HEX) [--returns TYPE] [--from ADDR] [--block N] [--rpc URL] [--json]"
	fs := newFlagSet("privacy call", stderr)
	group := fs.String("group", "", "the privacy group: 0x and 64 hex digits, or the base64 privacyGroupId")
	to := fs.String("to", "", "the private contract's address")
	callSig := fs.String("call", "", "the function to call, e.g. 'balanceOf(address)', its arguments after the flags")
	data := fs.String("data", "", "call data as hex, instead of --call")
	returns := fs.String("returns", "", "decode the result as one value of this ABI type (e.g. uint256, bool, address, string); default: hex")
	fromArg := fs.String("from", "", "the caller's address (default: none)")
	block := fs.String("block", "latest", "call on the private state after this block height")
	nf := addNodeFlags(fs)
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *group == "" || *to == "" {
		return fmt.Errorf("--group and --to are required; usage: %s", syntax)
	}
	gid, err := system.ParseGroupID(*group)
	if err != nil {
		return fmt.Errorf("--group: %v", err)
	}
	addr, err := parseAddr("--to", *to)
	if err != nil {
		return err
	}
	if *callSig == "" && *data == "" {
		return fmt.Errorf("give --call SIGNATURE ARG... or --data HEX; usage: %s", syntax)
	}
	input, err := callInput(*callSig, *data, pos, false, syntax)
	if err != nil {
		return err
	}
	var out abi.Arguments
	if *returns != "" {
		t, err := abi.NewType(*returns, "", nil)
		if err != nil {
			return fmt.Errorf("--returns %q: %v", *returns, err)
		}
		out = abi.Arguments{{Type: t}}
	}
	msg := map[string]any{"to": addr, "data": hexutil.Bytes(input)}
	if *fromArg != "" {
		f, err := parseAddr("--from", *fromArg)
		if err != nil {
			return err
		}
		msg["from"] = f
	}
	blk := "latest"
	if bargs, err := blockArg(*block); err != nil {
		return err
	} else if len(bargs) > 0 {
		blk = bargs[0].(string)
	}
	var result hexutil.Bytes
	if _, err := nf.query(&result, "priv_call", system.GroupIDBase64(gid), msg, blk); err != nil {
		return err
	}
	if out == nil {
		if *jsonOut {
			return printValue(stdout, map[string]any{"result": result})
		}
		_, err := fmt.Fprintln(stdout, result.String())
		return err
	}
	vals, err := out.Unpack(result)
	if err != nil {
		return fmt.Errorf("--returns %s: the result %s does not decode: %v", *returns, result, err)
	}
	text := abiText(vals[0])
	if *jsonOut {
		return printValue(stdout, map[string]any{"result": result, "value": text, "type": out[0].Type.String()})
	}
	_, err = fmt.Fprintln(stdout, text)
	return err
}

func privacyReceipt(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter privacy receipt MARKER [--rpc URL] [--json]"
	fs := newFlagSet("privacy receipt", stderr)
	nf := addNodeFlags(fs)
	jsonOut := fs.Bool("json", false, "print the node's priv_getTransactionReceipt answer as JSON")
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, syntax); err != nil {
		return err
	}
	h, err := hexutil.Decode(pos[0])
	if err != nil || len(h) != common.HashLength {
		return fmt.Errorf("marker %q: want the marker transaction's hash, 0x and 64 hex digits", pos[0])
	}
	marker := common.BytesToHash(h)
	var r *privReceipt
	raw, err := nf.query(&r, "priv_getTransactionReceipt", marker)
	if err != nil {
		return err
	}
	if r == nil {
		return noPrivateReceipt(marker)
	}
	return printPrivateReceipt(stdout, *jsonOut, r, raw)
}

func noPrivateReceipt(marker common.Hash) error {
	return fmt.Errorf("no private receipt for marker %s on this node: its organization is not in the group, the block is not applied yet, or the group was purged", marker.Hex())
}

// waitPrivateReceipt polls priv_getTransactionReceipt until the node
// applied the marker's block to the group's private state, or timeout.
func (c *client) waitPrivateReceipt(marker common.Hash, timeout time.Duration) (*privReceipt, json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		var r *privReceipt
		raw, err := c.callInto(&r, "priv_getTransactionReceipt", marker)
		if err != nil {
			return nil, nil, err
		}
		if r != nil {
			return r, raw, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("marker %s is in a block but has no private receipt after %s; check later with 'charter privacy receipt %s'",
				marker.Hex(), timeout, marker.Hex())
		case <-tick.C:
		}
	}
}

func printPrivateReceipt(w io.Writer, jsonOut bool, r *privReceipt, raw json.RawMessage) error {
	if jsonOut {
		return printJSON(w, raw)
	}
	tw := newTable(w)
	fmt.Fprintf(tw, "Marker\t%s\n", r.CommitmentHash.Hex())
	fmt.Fprintf(tw, "Private transaction\t%s\n", r.TransactionHash.Hex())
	if r.BlockNumber != nil {
		fmt.Fprintf(tw, "Block\t%s\n", r.BlockNumber.ToInt())
	}
	fmt.Fprintf(tw, "Privacy group\t%s\n", r.PrivacyGroupID)
	fmt.Fprintf(tw, "From\t%s\n", r.From.Hex())
	status := "success"
	if r.Status != 1 {
		status = "failed"
	}
	fmt.Fprintf(tw, "Status\t%s (%d)\n", status, r.Status)
	if r.ContractAddress != nil {
		fmt.Fprintf(tw, "Contract address\t%s\n", r.ContractAddress.Hex())
	} else if r.To != nil {
		fmt.Fprintf(tw, "To\t%s\n", r.To.Hex())
	}
	fmt.Fprintf(tw, "Logs\t%d\n", len(r.Logs))
	return tw.Flush()
}

func privateFailure(r *privReceipt) error {
	why := ""
	if r.RevertReason != "" {
		why = ": " + r.RevertReason
		if b, err := hexutil.Decode(r.RevertReason); err == nil {
			if reason, err := abi.UnpackRevert(b); err == nil {
				why = ": " + reason
			}
		}
	}
	return fmt.Errorf("private transaction %s (marker %s) failed%s", r.TransactionHash.Hex(), r.CommitmentHash.Hex(), why)
}

// orgIdentity is the privacy identity (privateFrom) of the organization
// of account from, as the node's registry has it.
func orgIdentity(c *client, from common.Address, keyFile string) ([]byte, error) {
	var acct rpc.AccountInfo
	if _, err := c.callInto(&acct, "charter_account", from); err != nil {
		return nil, err
	}
	if acct.Org == "" {
		return nil, fmt.Errorf("--key %s: account %s belongs to no organization; a private transaction is sent for an organization", keyFile, from.Hex())
	}
	var m rpc.Members
	if _, err := c.callInto(&m, "charter_members"); err != nil {
		return nil, err
	}
	for _, o := range m.Organizations {
		if o.Name != acct.Org {
			continue
		}
		if o.PrivacyKey == "" {
			return nil, fmt.Errorf("organization %s has no privacy key in the registry; its admin sets one first", o.Name)
		}
		id, err := base64.StdEncoding.DecodeString(o.PrivacyKey)
		if err != nil || len(id) != privtx.KeySize {
			return nil, fmt.Errorf("organization %s: privacy key %q in charter_members is not base64 of %d bytes", o.Name, o.PrivacyKey, privtx.KeySize)
		}
		return id, nil
	}
	return nil, fmt.Errorf("organization %s of account %s is not in charter_members", acct.Org, from.Hex())
}

// readBinFile reads creation bytecode as hex (0x optional, whitespace
// ignored), as solc --bin writes it.
func readBinFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--deploy: %w", err)
	}
	defer f.Close()
	text, err := io.ReadAll(io.LimitReader(f, maxBinFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--deploy %s: %w", path, err)
	}
	if len(text) > maxBinFileBytes {
		return nil, fmt.Errorf("--deploy %s: larger than %d bytes; a private transaction holds at most %d", path, maxBinFileBytes, privtx.MaxTxBytes)
	}
	s := strings.Join(strings.Fields(string(text)), "")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if s == "" {
		return nil, fmt.Errorf("--deploy %s: empty; want the contract's creation bytecode in hex (solc --bin)", path)
	}
	b, err := hexutil.Decode("0x" + s)
	if err != nil {
		return nil, fmt.Errorf("--deploy %s: not hex bytecode: %v", path, err)
	}
	return b, nil
}

// callInput is the input of a call: --call's signature with the
// positional arguments, or --data. For a creation (ctor) the signature
// names the constructor, constructor(TYPES), and only the arguments are
// encoded (they follow the bytecode).
func callInput(sig, data string, pos []string, ctor bool, syntax string) ([]byte, error) {
	if sig != "" && data != "" {
		return nil, errors.New("--call and --data exclude each other; give one")
	}
	if data != "" {
		if len(pos) > 0 {
			return nil, fmt.Errorf("unexpected argument %q; arguments follow --call, not --data", pos[0])
		}
		b, err := hexutil.Decode(ensure0x(data))
		if err != nil {
			return nil, fmt.Errorf("--data %q: want hex, 0x and an even number of hex digits", data)
		}
		return b, nil
	}
	if sig == "" {
		if len(pos) > 0 {
			return nil, fmt.Errorf("unexpected argument %q; usage: %s", pos[0], syntax)
		}
		if ctor {
			return nil, nil
		}
		return nil, errors.New("give --call SIGNATURE ARG... or --data HEX: what to call")
	}
	return packCall(sig, pos, ctor)
}

func ensure0x(s string) string {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		return s
	}
	return "0x" + s
}

// packCall ABI-encodes a call of the function signature sig (e.g.
// "transfer(address,uint256)") with args, each parsed as its type: the
// 4-byte selector and the arguments; for a constructor the arguments only.
func packCall(sig string, args []string, ctor bool) ([]byte, error) {
	sel, err := abi.ParseSelector(sig)
	if err != nil {
		return nil, fmt.Errorf("--call %q: %v; want NAME(TYPE,...), e.g. 'transfer(address,uint256)'", sig, err)
	}
	if ctor != (sel.Name == "constructor") {
		if ctor {
			return nil, fmt.Errorf("--call %q: with --deploy give the constructor's types, constructor(TYPE,...)", sig)
		}
		return nil, fmt.Errorf("--call %q: a constructor is called only with --deploy", sig)
	}
	if len(sel.Inputs) > maxCallArgs {
		return nil, fmt.Errorf("--call %q: more than %d arguments", sig, maxCallArgs)
	}
	if len(args) != len(sel.Inputs) {
		return nil, fmt.Errorf("--call %s takes %d arguments, %d given", sig, len(sel.Inputs), len(args))
	}
	inputs := make(abi.Arguments, len(sel.Inputs))
	vals := make([]any, len(sel.Inputs))
	for i, in := range sel.Inputs {
		t, err := abi.NewType(in.Type, "", in.Components)
		if err != nil {
			return nil, fmt.Errorf("--call %q: argument %d: %v", sig, i+1, err)
		}
		inputs[i] = abi.Argument{Type: t}
		v, err := abiValue(t, args[i])
		if err != nil {
			return nil, fmt.Errorf("--call %s: argument %d (%s) %q: %v", sig, i+1, t, args[i], err)
		}
		vals[i] = v.Interface()
	}
	packed, err := inputs.Pack(vals...)
	if err != nil {
		return nil, fmt.Errorf("--call %s: %v", sig, err)
	}
	if ctor {
		return packed, nil
	}
	m := abi.NewMethod(sel.Name, sel.Name, abi.Function, "", false, false, inputs, nil)
	return append(m.ID, packed...), nil
}

// abiValue parses s as a value of ABI type t, as the Go value
// go-ethereum's abi package packs for t. Arrays are written [a,b,c].
func abiValue(t abi.Type, s string) (reflect.Value, error) {
	s = strings.TrimSpace(s)
	switch t.T {
	case abi.UintTy, abi.IntTy:
		n, ok := new(big.Int).SetString(s, 0)
		if !ok {
			return reflect.Value{}, errors.New("not a whole number (decimal, or 0x hex)")
		}
		if t.T == abi.UintTy && n.Sign() < 0 {
			return reflect.Value{}, errors.New("negative for an unsigned type")
		}
		limit := new(big.Int).Lsh(big.NewInt(1), uint(t.Size))
		if t.T == abi.IntTy {
			limit.Rsh(limit, 1)
			if n.Cmp(new(big.Int).Neg(limit)) < 0 || n.Cmp(limit) >= 0 {
				return reflect.Value{}, fmt.Errorf("out of range of %s", t)
			}
		} else if n.Cmp(limit) >= 0 {
			return reflect.Value{}, fmt.Errorf("out of range of %s", t)
		}
		gt := t.GetType()
		switch gt.Kind() {
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			return reflect.ValueOf(n.Uint64()).Convert(gt), nil
		case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return reflect.ValueOf(n.Int64()).Convert(gt), nil
		}
		return reflect.ValueOf(n), nil
	case abi.BoolTy:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return reflect.Value{}, errors.New("want true or false")
		}
		return reflect.ValueOf(b), nil
	case abi.StringTy:
		return reflect.ValueOf(s), nil
	case abi.AddressTy:
		if !common.IsHexAddress(s) {
			return reflect.Value{}, errors.New("not an address: want 0x and 40 hex digits")
		}
		return reflect.ValueOf(common.HexToAddress(s)), nil
	case abi.BytesTy:
		b, err := hexutil.Decode(ensure0x(s))
		if err != nil {
			return reflect.Value{}, errors.New("want hex bytes, 0x and an even number of hex digits")
		}
		return reflect.ValueOf(b), nil
	case abi.FixedBytesTy:
		b, err := hexutil.Decode(ensure0x(s))
		if err != nil || len(b) != t.Size {
			return reflect.Value{}, fmt.Errorf("want %d bytes in hex (0x and %d hex digits)", t.Size, 2*t.Size)
		}
		v := reflect.New(t.GetType()).Elem()
		reflect.Copy(v, reflect.ValueOf(b))
		return v, nil
	case abi.SliceTy, abi.ArrayTy:
		items, err := splitList(s)
		if err != nil {
			return reflect.Value{}, err
		}
		if t.T == abi.ArrayTy && len(items) != t.Size {
			return reflect.Value{}, fmt.Errorf("want %d items, got %d", t.Size, len(items))
		}
		if len(items) > maxCallArgs {
			return reflect.Value{}, fmt.Errorf("more than %d items", maxCallArgs)
		}
		var v reflect.Value
		if t.T == abi.ArrayTy {
			v = reflect.New(t.GetType()).Elem()
		} else {
			v = reflect.MakeSlice(t.GetType(), len(items), len(items))
		}
		for i, item := range items {
			e, err := abiValue(*t.Elem, item)
			if err != nil {
				return reflect.Value{}, fmt.Errorf("item %d: %v", i+1, err)
			}
			v.Index(i).Set(e)
		}
		return v, nil
	}
	return reflect.Value{}, fmt.Errorf("type %s is not supported on the command line; give --data", t)
}

// splitList reads [a,b,c] (items without nested lists or commas).
func splitList(s string) ([]string, error) {
	inner, ok := strings.CutPrefix(s, "[")
	if ok {
		inner, ok = strings.CutSuffix(inner, "]")
	}
	if !ok {
		return nil, errors.New("want a list, [a,b,c]")
	}
	if strings.TrimSpace(inner) == "" {
		return nil, nil
	}
	if strings.ContainsAny(inner, "[]") {
		return nil, errors.New("nested lists are not supported on the command line; give --data")
	}
	return strings.Split(inner, ","), nil
}

// abiText prints a decoded ABI value: numbers in decimal, addresses
// checksummed, bytes in hex.
func abiText(v any) string {
	switch x := v.(type) {
	case *big.Int:
		return x.String()
	case common.Address:
		return x.Hex()
	case []byte:
		return hexutil.Encode(x)
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Array && rv.Type().Elem().Kind() == reflect.Uint8 {
		b := make([]byte, rv.Len())
		reflect.Copy(reflect.ValueOf(b), rv)
		return hexutil.Encode(b)
	}
	return fmt.Sprint(v)
}
