package rpc

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/privacy/privtx"
	"github.com/charter-ledger/charter/internal/system"
)

// PrivAPI is the priv namespace: Besu's privacy API over a Privacy, in
// the JSON shapes Besu answers (and web3js-quorum's priv module reads).
// Group ids and organizations' privacy identities are standard base64 of
// 32 bytes; hashes, addresses and quantities are hex. A group this node
// may not read answers as one that does not exist: -32000 "privacy group
// not found" for group reads, null for a receipt or a transaction, 0x0 for
// a nonce (what a group with no private state yet answers).
type PrivAPI struct {
	b   Backend
	p   Privacy
	eth *EthAPI // batch budgets and call execution, shared with eth
	pf  *privFilters
}

// EeaAPI is the eea namespace: eea_sendRawTransaction.
type EeaAPI struct {
	p Privacy
}

// Types of privacy groups in priv_findPrivacyGroup, as Besu names them.
const (
	groupTypeLegacy = "LEGACY"   // made implicitly by a privateFor transaction
	groupTypeBesu   = "PANTHEON" // made by priv_createPrivacyGroup
)

var errNoGroup = &Error{Code: codeServer, Msg: ErrNoPrivacyGroup.Error()}

// privError maps a Privacy error to its JSON-RPC error: a group the node
// may not read is errNoGroup whatever the backend added to it, any other
// error -32000 with its text.
func privError(err error) error {
	var e *Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNoPrivacyGroup):
		return errNoGroup
	case errors.As(err, &e):
		return e
	}
	return serverError("%v", err)
}

// readable answers errNoGroup unless this node may read group.
func (api *PrivAPI) readable(group common.Hash) error {
	if _, ok := api.p.Group(group); !ok {
		return errNoGroup
	}
	return nil
}

// ---- parameters ----

// decodeKey decodes a 32-byte value in standard base64 (a privacy group
// id or a privacy identity); as Besu, the padding may be left out.
func decodeKey(s string) ([]byte, error) {
	const maxChars = 64 // 44 with padding; anything longer is not a key
	if len(s) > maxChars {
		return nil, fmt.Errorf("%d characters; a 32-byte value in base64 has 44", len(s))
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		var rawErr error
		if b, rawErr = base64.RawStdEncoding.DecodeString(s); rawErr != nil {
			return nil, fmt.Errorf("not standard base64: %v", err)
		}
	}
	if len(b) != privtx.KeySize {
		return nil, fmt.Errorf("%d bytes, want %d", len(b), privtx.KeySize)
	}
	return b, nil
}

func decodeKeyString(raw []byte, field string) ([]byte, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%s: want a base64 string", field)
	}
	k, err := decodeKey(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", field, err)
	}
	return k, nil
}

// decodeKeyList decodes a JSON list of 1 to max base64 keys.
func decodeKeyList(raw []byte, field string, max int) ([][]byte, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%s: want a list of base64 strings", field)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%s: empty", field)
	}
	if len(list) > max {
		return nil, fmt.Errorf("%s: %d keys, at most %d", field, len(list), max)
	}
	out := make([][]byte, len(list))
	for i, item := range list {
		k, err := decodeKeyString(item, fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		out[i] = k
	}
	return out, nil
}

// groupParam is a privacyGroupId parameter.
type groupParam common.Hash

func (g *groupParam) UnmarshalJSON(raw []byte) error {
	k, err := decodeKeyString(raw, "privacyGroupId")
	if err != nil {
		return err
	}
	*g = groupParam(common.BytesToHash(k))
	return nil
}

// privateFromParam is the privateFrom of priv_getEeaTransactionCount.
type privateFromParam []byte

func (p *privateFromParam) UnmarshalJSON(raw []byte) error {
	k, err := decodeKeyString(raw, "privateFrom")
	*p = k
	return err
}

// privateForParam is the privateFor of priv_getEeaTransactionCount.
type privateForParam [][]byte

func (p *privateForParam) UnmarshalJSON(raw []byte) error {
	keys, err := decodeKeyList(raw, "privateFor", privtx.MaxPrivateFor)
	*p = keys
	return err
}

// membersParam is the member list of priv_findPrivacyGroup.
type membersParam [][]byte

func (p *membersParam) UnmarshalJSON(raw []byte) error {
	keys, err := decodeKeyList(raw, "members", system.MaxGroupMembers)
	*p = keys
	return err
}

// createGroupParam is the options object of priv_createPrivacyGroup.
type createGroupParam struct {
	Addresses   [][]byte
	Name        string
	Description string
}

func (p *createGroupParam) UnmarshalJSON(raw []byte) error {
	var in struct {
		Addresses   json.RawMessage `json:"addresses"`
		Name        *string         `json:"name"`
		Description *string         `json:"description"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return errors.New("want an object {addresses, name, description}")
	}
	if len(in.Addresses) == 0 || string(in.Addresses) == "null" {
		return errors.New("addresses: missing")
	}
	keys, err := decodeKeyList(in.Addresses, "addresses", system.MaxGroupMembers)
	if err != nil {
		return err
	}
	p.Addresses = keys
	if in.Name != nil {
		if len(*in.Name) > system.MaxGroupNameBytes {
			return fmt.Errorf("name: %d bytes, at most %d", len(*in.Name), system.MaxGroupNameBytes)
		}
		p.Name = *in.Name
	}
	if in.Description != nil {
		if len(*in.Description) > system.MaxGroupDescriptionBytes {
			return fmt.Errorf("description: %d bytes, at most %d", len(*in.Description), system.MaxGroupDescriptionBytes)
		}
		p.Description = *in.Description
	}
	return nil
}

// rawTxParam is a signed private transaction in hex: with or without 0x,
// as web3js-quorum sends it without.
type rawTxParam []byte

func (r *rawTxParam) UnmarshalJSON(raw []byte) error {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return errors.New("transaction: want a hex string")
	}
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
	}
	if len(s) > 2*privtx.MaxTxBytes {
		return fmt.Errorf("transaction: %d hex digits, above the %d-byte bound of a private transaction", len(s), privtx.MaxTxBytes)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("transaction: not hex: %v", err)
	}
	*r = b
	return nil
}

// decode checks the transaction before it reaches the backend: a
// malformed one is invalid params naming the item at fault.
func (r rawTxParam) decode() error {
	if _, err := privtx.Decode(r); err != nil {
		return invalidParams("invalid argument 0: %v", err)
	}
	return nil
}

// blockParam is a block number: a number (hex or decimal, string or JSON
// number) or one of earliest, latest, pending (the latest), safe and
// finalized.
type blockParam gethrpc.BlockNumber

func (p *blockParam) UnmarshalJSON(raw []byte) error {
	s := strings.TrimSpace(string(raw))
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return errors.New("block: want a number or a tag")
		}
	}
	switch s {
	case "earliest":
		*p = blockParam(gethrpc.EarliestBlockNumber)
		return nil
	case "latest":
		*p = blockParam(gethrpc.LatestBlockNumber)
		return nil
	case "pending":
		*p = blockParam(gethrpc.PendingBlockNumber)
		return nil
	case "safe":
		*p = blockParam(gethrpc.SafeBlockNumber)
		return nil
	case "finalized":
		*p = blockParam(gethrpc.FinalizedBlockNumber)
		return nil
	}
	var (
		n   uint64
		err error
	)
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		n, err = strconv.ParseUint(s[2:], 16, 63)
	} else {
		n, err = strconv.ParseUint(s, 10, 63)
	}
	if err != nil || len(s) > 32 {
		return errors.New("block: want a number (hex or decimal) or earliest, latest, pending, safe or finalized")
	}
	*p = blockParam(n)
	return nil
}

// blockNumber resolves the block argument at position arg (nil: latest)
// to a committed public block number.
func (api *PrivAPI) blockNumber(p *blockParam, arg int) (uint64, error) {
	num := gethrpc.LatestBlockNumber
	if p != nil {
		num = gethrpc.BlockNumber(*p)
	}
	head := api.b.CurrentHeader().Number.Uint64()
	if num >= 0 {
		if uint64(num) > head {
			return 0, invalidParams("invalid argument %d: block %d is not known (the newest is %d)", arg, num, head)
		}
		return uint64(num), nil
	}
	h, err := headerByNumber(api.b, num)
	if err != nil {
		return 0, err
	}
	return h.Number.Uint64(), nil
}

// ---- eea ----

// SendRawTransaction is eea_sendRawTransaction: the signed private
// transaction is sealed to its group and distributed, and its marker
// submitted; the answer is the marker's hash.
func (api *EeaAPI) SendRawTransaction(ctx context.Context, raw rawTxParam) (common.Hash, error) {
	if err := raw.decode(); err != nil {
		return common.Hash{}, err
	}
	h, err := api.p.SendRaw(ctx, raw)
	return h, privError(err)
}

// ---- priv: transactions and groups ----

// DistributeRawTransaction is priv_distributeRawTransaction: the payload
// is distributed without a marker; the answer is the payload's hash.
func (api *PrivAPI) DistributeRawTransaction(ctx context.Context, raw rawTxParam) (common.Hash, error) {
	if err := raw.decode(); err != nil {
		return common.Hash{}, err
	}
	h, err := api.p.Distribute(ctx, raw)
	return h, privError(err)
}

// GetPrivacyPrecompileAddress is priv_getPrivacyPrecompileAddress: the
// address markers are sent to.
func (api *PrivAPI) GetPrivacyPrecompileAddress() common.Address { return api.p.MarkerAddress() }

// CreatePrivacyGroup is priv_createPrivacyGroup: the new group's id.
func (api *PrivAPI) CreatePrivacyGroup(ctx context.Context, opts createGroupParam) (string, error) {
	id, err := api.p.CreateGroup(ctx, opts.Addresses, opts.Name, opts.Description)
	if err != nil {
		return "", privError(err)
	}
	return system.GroupIDBase64(id), nil
}

// DeletePrivacyGroup is priv_deletePrivacyGroup: the deleted group's id.
func (api *PrivAPI) DeletePrivacyGroup(ctx context.Context, group groupParam) (string, error) {
	id := common.Hash(group)
	if err := api.readable(id); err != nil {
		return "", err
	}
	if err := api.p.DeleteGroup(ctx, id); err != nil {
		return "", privError(err)
	}
	return system.GroupIDBase64(id), nil
}

// PrivacyGroupResult is a group as priv_findPrivacyGroup shows it.
type PrivacyGroupResult struct {
	PrivacyGroupID string   `json:"privacyGroupId"`
	Name           string   `json:"name"`
	Description    string   `json:"description"`
	Type           string   `json:"type"`
	Members        []string `json:"members"`
}

// FindPrivacyGroup is priv_findPrivacyGroup: the groups whose members
// are exactly these.
func (api *PrivAPI) FindPrivacyGroup(members membersParam) ([]PrivacyGroupResult, error) {
	groups, err := api.p.FindGroups(members)
	if err != nil {
		return nil, privError(err)
	}
	out := make([]PrivacyGroupResult, 0, len(groups))
	for _, g := range groups {
		r := PrivacyGroupResult{PrivacyGroupID: system.GroupIDBase64(g.ID), Name: g.Name, Description: g.Description,
			Type: groupTypeBesu, Members: make([]string, len(g.Members))}
		if g.Legacy {
			r.Type = groupTypeLegacy
		}
		for i, m := range g.Members {
			r.Members[i] = base64.StdEncoding.EncodeToString(m)
		}
		out = append(out, r)
	}
	return out, nil
}

// GetTransactionCount is priv_getTransactionCount: addr's next private
// nonce in the group; 0x0 for a group this node holds nothing of (as for
// a legacy group whose first transaction is being signed).
func (api *PrivAPI) GetTransactionCount(addr common.Address, group groupParam) (hexutil.Uint64, error) {
	return api.nonce(common.Hash(group), addr)
}

// GetEeaTransactionCount is priv_getEeaTransactionCount: the nonce in the
// legacy group of privateFrom and privateFor.
func (api *PrivAPI) GetEeaTransactionCount(addr common.Address, from privateFromParam, to privateForParam) (hexutil.Uint64, error) {
	return api.nonce(privtx.LegacyGroupID(from, to), addr)
}

func (api *PrivAPI) nonce(group common.Hash, addr common.Address) (hexutil.Uint64, error) {
	if _, ok := api.p.Group(group); !ok {
		return 0, nil
	}
	n, err := api.p.Nonce(group, addr)
	if errors.Is(err, ErrNoPrivacyGroup) {
		return 0, nil
	}
	return hexutil.Uint64(n), privError(err)
}

// GetTransactionReceipt is priv_getTransactionReceipt: the private
// receipt of the transaction a marker ordered, or null. A marker already
// in a block whose group this node has not applied yet is waited for, at
// most the private receipt wait and the batch's time: a client reads the
// public receipt, then this one at once.
func (api *PrivAPI) GetTransactionReceipt(ctx context.Context, marker common.Hash) (map[string]any, error) {
	r, err := api.p.Receipt(marker)
	if err != nil {
		return nil, privError(err)
	}
	if r == nil {
		ctx, done, err := api.eth.heavy(ctx)
		if err != nil {
			return nil, err
		}
		defer done()
		if !api.pf.waitApplied(ctx, marker) {
			return nil, nil
		}
		if r, err = api.p.Receipt(marker); err != nil || r == nil {
			return nil, privError(err)
		}
	}
	if r.Receipt == nil || r.Receipt.Receipt == nil || r.Tx == nil || api.readable(r.Group) != nil {
		return nil, nil
	}
	index := r.TransactionIndex
	if _, i, ok := api.b.GetTransaction(marker); ok {
		index = uint(i)
	}
	return marshalPrivReceipt(r, index), nil
}

// GetPrivateTransaction is priv_getPrivateTransaction: the private
// transaction a marker ordered, or null.
func (api *PrivAPI) GetPrivateTransaction(marker common.Hash) (map[string]any, error) {
	t, err := api.p.Transaction(marker)
	if err != nil {
		return nil, privError(err)
	}
	if t == nil || t.Tx == nil || api.readable(t.Group) != nil {
		return nil, nil
	}
	return marshalPrivTx(t.Tx, t.From), nil
}

// ---- priv: state ----

// Call is priv_call: msg run on the group's private state after block,
// nothing kept. A revert answers as eth_call's (code 3).
func (api *PrivAPI) Call(ctx context.Context, group groupParam, args TransactionArgs, block *blockParam) (hexutil.Bytes, error) {
	g := common.Hash(group)
	if err := args.check(); err != nil {
		return nil, err
	}
	number, err := api.blockNumber(block, 2)
	if err != nil {
		return nil, err
	}
	if err := api.readable(g); err != nil {
		return nil, err
	}
	want := api.eth.cfg.GasCap
	if args.Gas != nil && uint64(*args.Gas) < want {
		want = uint64(*args.Gas)
	}
	var res *core.ExecutionResult
	err = api.eth.execute(ctx, want, func(ctx context.Context, gas uint64) (uint64, error) {
		var err error
		if res, err = api.p.Call(ctx, g, number, args.message(new(big.Int), gas)); err != nil {
			if errors.Is(err, ErrNoPrivacyGroup) {
				err = ErrNoPrivacyGroup // its text alone (execute answers -32000 with it)
			}
			return 0, err
		}
		if res.Failed() && errors.Is(res.Err, vm.ErrOutOfGas) {
			return res.UsedGas, &outOfGas{res.Err}
		}
		return res.UsedGas, nil
	})
	if err != nil {
		return nil, err
	}
	return callResult(res)
}

// GetCode is priv_getCode: the code at addr in the group's private state
// after block.
func (api *PrivAPI) GetCode(group groupParam, addr common.Address, block *blockParam) (hexutil.Bytes, error) {
	g := common.Hash(group)
	number, err := api.blockNumber(block, 2)
	if err != nil {
		return nil, err
	}
	if err := api.readable(g); err != nil {
		return nil, err
	}
	code, err := api.p.Code(g, number, addr)
	if err != nil {
		return nil, privError(err)
	}
	return code, nil
}

// DebugGetStateRoot is priv_debugGetStateRoot: the group's private state
// root after block.
func (api *PrivAPI) DebugGetStateRoot(group groupParam, block *blockParam) (common.Hash, error) {
	g := common.Hash(group)
	number, err := api.blockNumber(block, 1)
	if err != nil {
		return common.Hash{}, err
	}
	if err := api.readable(g); err != nil {
		return common.Hash{}, err
	}
	root, err := api.p.StateRoot(g, number)
	return root, privError(err)
}

// ---- JSON shapes ----

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func b64List(keys [][]byte) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = b64(k)
	}
	return out
}

func bigOrZero(x *big.Int) *hexutil.Big {
	if x == nil {
		return (*hexutil.Big)(new(big.Int))
	}
	return (*hexutil.Big)(x)
}

// marshalPrivLog is a private log as Besu shows one (its log object,
// without go-ethereum's blockTimestamp).
func marshalPrivLog(l *types.Log) map[string]any {
	topics := l.Topics
	if topics == nil {
		topics = []common.Hash{}
	}
	return map[string]any{
		"logIndex":         hexutil.Uint(l.Index),
		"removed":          l.Removed,
		"blockNumber":      hexutil.Uint64(l.BlockNumber),
		"blockHash":        l.BlockHash,
		"transactionHash":  l.TxHash,
		"transactionIndex": hexutil.Uint(l.TxIndex),
		"address":          l.Address,
		"data":             hexutil.Bytes(l.Data),
		"topics":           topics,
	}
}

func marshalPrivLogs(logs []*types.Log) []map[string]any {
	out := make([]map[string]any, len(logs))
	for i, l := range logs {
		out[i] = marshalPrivLog(l)
	}
	return out
}

// marshalPrivReceipt is Besu's private receipt: fields without a value
// (contractAddress of a call, to of a creation, privateFor of a group
// transaction, revertReason of a success) are left out, as Besu does. Its
// logs name the marker as their transaction, at the marker's index in
// its public block (index), numbered from 0 within the receipt.
func marshalPrivReceipt(r *PrivateReceipt, index uint) map[string]any {
	rc := r.Receipt.Receipt
	tx := r.Tx
	if tx == nil {
		tx = &privtx.Tx{} // bytes that did not decode: a rejected receipt only
	}
	logs := make([]map[string]any, len(rc.Logs))
	for i, l := range rc.Logs {
		c := *l
		c.TxHash, c.TxIndex, c.Index = r.Marker, index, uint(i)
		logs[i] = marshalPrivLog(&c)
	}
	status := "0x0"
	switch {
	case r.Rejected != "":
		status = "0x2" // Besu's status of an invalid private transaction
	case rc.Status == types.ReceiptStatusSuccessful:
		status = "0x1"
	}
	m := map[string]any{
		"from":             r.From,
		"output":           hexutil.Bytes(r.Output),
		"commitmentHash":   r.Marker,
		"transactionHash":  rc.TxHash,
		"privateFrom":      b64(tx.PrivateFrom),
		"privacyGroupId":   system.GroupIDBase64(r.Group),
		"status":           status,
		"logs":             logs,
		"logsBloom":        rc.Bloom,
		"blockHash":        rc.BlockHash,
		"blockNumber":      (*hexutil.Big)(rc.BlockNumber),
		"transactionIndex": hexutil.Uint(index),
	}
	if rc.BlockNumber == nil {
		m["blockNumber"] = hexutil.Uint64(0)
	}
	if tx.To == nil {
		if rc.ContractAddress != (common.Address{}) {
			m["contractAddress"] = rc.ContractAddress
		}
	} else {
		m["to"] = *tx.To
	}
	if r.Rejected != "" {
		// Charter's addition: why the private transaction was not run.
		m["rejectedReason"] = r.Rejected
	}
	if tx.PrivacyGroupID == nil && tx.PrivateFor != nil {
		m["privateFor"] = b64List(tx.PrivateFor)
	}
	if status == "0x0" && len(r.Output) > 0 {
		m["revertReason"] = hexutil.Bytes(r.Output)
	}
	return m
}

// marshalPrivTx is Besu's private transaction object: privateFor or
// privacyGroupId as the transaction was sent.
func marshalPrivTx(tx *privtx.Tx, from common.Address) map[string]any {
	m := map[string]any{
		"from":        from,
		"gas":         hexutil.Uint64(tx.Gas),
		"gasPrice":    bigOrZero(tx.GasPrice),
		"input":       hexutil.Bytes(tx.Data),
		"nonce":       hexutil.Uint64(tx.Nonce),
		"to":          tx.To,
		"value":       bigOrZero(tx.Value),
		"v":           bigOrZero(tx.V),
		"r":           bigOrZero(tx.R),
		"s":           bigOrZero(tx.S),
		"privateFrom": b64(tx.PrivateFrom),
		"restriction": tx.Restriction,
	}
	if tx.PrivacyGroupID != nil {
		m["privacyGroupId"] = b64(tx.PrivacyGroupID)
	} else {
		m["privateFor"] = b64List(tx.PrivateFor)
	}
	return m
}
