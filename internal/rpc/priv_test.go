package rpc

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/gorilla/websocket"

	"github.com/charter-ledger/charter/internal/privacy/privtx"
)

// serveBackend is serve over any Backend (f is the chain under it).
func serveBackend(t testing.TB, b Backend, f *fakeBackend, cfg Config) *testServer {
	t.Helper()
	srv, err := NewServer(b, cfg, func() int { return 3 }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	c, err := gethrpc.Dial("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		srv.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testServer{Server: srv, fake: f, addr: ln.Addr().String(), http: c}
}

// privNet is one chain with two nodes: a of organization A (a member of
// the test groups) and c of organization C (a member of none).
type privNet struct {
	f      *fakeBackend
	reg    *privRegistry
	a, c   *fakePrivacy
	sa, sc *testServer
}

func newPrivNet(t *testing.T, cfg Config) *privNet {
	t.Helper()
	f := newFake(t)
	n := &privNet{f: f, reg: newPrivRegistry()}
	n.a = newFakePrivacy(t, f, n.reg, orgA)
	n.c = newFakePrivacy(t, f, n.reg, orgC)
	n.sa = serveBackend(t, &privBackend{fakeBackend: f, p: n.a}, f, cfg)
	n.sc = serveBackend(t, &privBackend{fakeBackend: f, p: n.c}, f, cfg)
	return n
}

func b64s(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// call answers method's raw result, failing the test on an error.
func call(t *testing.T, c *gethrpc.Client, method string, args ...any) json.RawMessage {
	t.Helper()
	var out json.RawMessage
	if err := c.Call(&out, method, args...); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return out
}

// jsonEq compares a JSON answer with want (any value that encodes to the
// expected JSON), field by field.
func jsonEq(t *testing.T, what string, got json.RawMessage, want any) {
	t.Helper()
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var g, e any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v in %s", what, err, got)
	}
	if err := json.Unmarshal(w, &e); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, e) {
		t.Fatalf("%s:\n got  %s\n want %s", what, got, w)
	}
}

// deployCode deploys runtime (shorter than 256 bytes):
// PUSH1 len DUP1 PUSH1 11 PUSH1 0 CODECOPY PUSH1 0 RETURN, then runtime.
func deployCode(runtime []byte) []byte {
	return append([]byte{0x60, byte(len(runtime)), 0x80, 0x60, 0x0b, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3}, runtime...)
}

// recorderRuntime stores calldata word 0 in slot 0 and logs it as the
// topic of a LOG1 without data.
var recorderRuntime = common.FromHex("6000358060005560006000a100")

// signPriv signs a private transaction of test account acct for group
// (or, with privateFor, for the legacy group of A and privateFor) and
// returns it with its hex encoding without 0x, as web3js-quorum sends it.
func signPriv(t *testing.T, acct int, nonce uint64, to *common.Address, data []byte, group *common.Hash, privateFor [][]byte) (*privtx.Tx, string) {
	t.Helper()
	tx := &privtx.Tx{Nonce: nonce, GasPrice: new(big.Int), Gas: 1_000_000, To: to, Value: new(big.Int), Data: data,
		PrivateFrom: orgA, Restriction: privtx.Restricted}
	if group != nil {
		tx.PrivacyGroupID = group[:]
	} else {
		tx.PrivateFor = privateFor
	}
	if err := privtx.SignTx(tx, big.NewInt(1337), testAccounts(t)[acct].Key); err != nil {
		t.Fatal(err)
	}
	raw, err := tx.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return tx, hex.EncodeToString(raw)
}

func sendPriv(t *testing.T, c *gethrpc.Client, raw string) common.Hash {
	t.Helper()
	var h common.Hash
	if err := c.Call(&h, "eea_sendRawTransaction", raw); err != nil {
		t.Fatalf("eea_sendRawTransaction: %v", err)
	}
	return h
}

// createGroup creates the group of A and B on node a.
func (n *privNet) createGroup(t *testing.T) common.Hash {
	t.Helper()
	var id string
	if err := n.sa.http.Call(&id, "priv_createPrivacyGroup", map[string]any{
		"addresses": []string{b64s(orgA), b64s(orgB)}, "name": "AB", "description": "A and B"}); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(id)
	if err != nil || len(raw) != 32 {
		t.Fatalf("privacy group id %q", id)
	}
	return common.BytesToHash(raw)
}

func TestPrivNamespacesOnlyWithPrivacy(t *testing.T) {
	f := newFake(t)
	var out any
	plain := serve(t, f, Config{})
	rpcError(t, plain.http.Call(&out, "priv_getPrivacyPrecompileAddress"), -32601, "does not exist")
	rpcError(t, plain.http.Call(&out, "eea_sendRawTransaction", "00"), -32601, "does not exist")
	off := serveBackend(t, &privBackend{fakeBackend: f}, f, Config{}) // Privacy() nil
	rpcError(t, off.http.Call(&out, "priv_getPrivacyPrecompileAddress"), -32601, "does not exist")
	on := serveBackend(t, &privBackend{fakeBackend: f, p: newFakePrivacy(t, f, newPrivRegistry(), orgA)}, f, Config{})
	jsonEq(t, "priv_getPrivacyPrecompileAddress", call(t, on.http, "priv_getPrivacyPrecompileAddress"), markerAddr)
}

// Every method's answer, in Besu's shapes, for a member node.
func TestPrivShapes(t *testing.T) {
	n := newPrivNet(t, Config{})
	c := n.sa.http
	group := n.createGroup(t)
	accts := testAccounts(t)
	from := accts[1].Address

	// findPrivacyGroup before and after a legacy group exists.
	jsonEq(t, "priv_findPrivacyGroup", call(t, c, "priv_findPrivacyGroup", []string{b64s(orgB), b64s(orgA)}), []any{
		map[string]any{"privacyGroupId": b64s(group[:]), "name": "AB", "description": "A and B", "type": "PANTHEON",
			"members": []string{b64s(orgA), b64s(orgB)}}})
	jsonEq(t, "priv_getTransactionCount", call(t, c, "priv_getTransactionCount", from, b64s(group[:])), "0x0")

	// A deployment to the group.
	tx, raw := signPriv(t, 1, 0, nil, deployCode(recorderRuntime), &group, nil)
	marker := sendPriv(t, c, raw)
	blk := n.f.BlockByNumber(n.f.CurrentHeader().Number.Uint64())
	contract := crypto.CreateAddress(from, 0)
	jsonEq(t, "deployment receipt", call(t, c, "priv_getTransactionReceipt", marker), map[string]any{
		"contractAddress": contract, "from": from, "output": hexutil.Bytes(recorderRuntime), "commitmentHash": marker,
		"transactionHash": tx.Hash(),
		"privateFrom":     b64s(orgA), "privacyGroupId": b64s(group[:]), "status": "0x1", "logs": []any{},
		"logsBloom": types.Bloom{}, "blockHash": blk.Hash(), "blockNumber": hexutil.Uint64(blk.NumberU64()),
		"transactionIndex": "0x0"})
	jsonEq(t, "private transaction", call(t, c, "priv_getPrivateTransaction", marker), map[string]any{
		"from": from, "gas": "0xf4240", "gasPrice": "0x0", "input": hexutil.Bytes(tx.Data), "nonce": "0x0", "to": nil,
		"value": "0x0", "v": (*hexutil.Big)(tx.V), "r": (*hexutil.Big)(tx.R), "s": (*hexutil.Big)(tx.S),
		"privateFrom": b64s(orgA), "privacyGroupId": b64s(group[:]), "restriction": "restricted"})
	jsonEq(t, "priv_getTransactionCount", call(t, c, "priv_getTransactionCount", from, b64s(group[:])), "0x1")
	jsonEq(t, "priv_getCode", call(t, c, "priv_getCode", b64s(group[:]), contract, "latest"), hexutil.Bytes(recorderRuntime))
	jsonEq(t, "priv_getCode before", call(t, c, "priv_getCode", b64s(group[:]), contract, "0x0"), "0x")

	// A call that logs.
	word := common.Hash{31: 7}
	tx2, raw := signPriv(t, 1, 1, &contract, word[:], &group, nil)
	marker2 := sendPriv(t, c, raw)
	blk2 := n.f.BlockByNumber(n.f.CurrentHeader().Number.Uint64())
	wantLog := map[string]any{"logIndex": "0x0", "removed": false, "blockNumber": hexutil.Uint64(blk2.NumberU64()),
		"blockHash": blk2.Hash(), "transactionHash": marker2, "transactionIndex": "0x0", "address": contract,
		"data": "0x", "topics": []common.Hash{word}}
	bloom := types.CreateBloom(&types.Receipt{Logs: []*types.Log{{Address: contract, Topics: []common.Hash{word}}}})
	jsonEq(t, "call receipt", call(t, c, "priv_getTransactionReceipt", marker2), map[string]any{
		"from": from, "to": contract, "output": "0x", "commitmentHash": marker2, "transactionHash": tx2.Hash(), "privateFrom": b64s(orgA),
		"privacyGroupId": b64s(group[:]), "status": "0x1", "logs": []any{wantLog}, "logsBloom": bloom,
		"blockHash": blk2.Hash(), "blockNumber": hexutil.Uint64(blk2.NumberU64()), "transactionIndex": "0x0"})
	jsonEq(t, "priv_getLogs", call(t, c, "priv_getLogs", b64s(group[:]), map[string]any{"address": contract, "fromBlock": "earliest"}),
		[]any{wantLog})
	jsonEq(t, "priv_getLogs by blockHash", call(t, c, "priv_getLogs", b64s(group[:]), map[string]any{"blockHash": blk2.Hash()}),
		[]any{wantLog})
	jsonEq(t, "priv_getLogs other topic", call(t, c, "priv_getLogs", b64s(group[:]), map[string]any{"fromBlock": "0x0",
		"topics": []any{common.Hash{1}}}), []any{})
	root, err := n.a.store.PrivateRoot(group, blk2.NumberU64())
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, "priv_debugGetStateRoot", call(t, c, "priv_debugGetStateRoot", b64s(group[:]), "latest"), root)
	jsonEq(t, "priv_debugGetStateRoot by decimal number", call(t, c, "priv_debugGetStateRoot", b64s(group[:]), blk2.NumberU64()), root)

	// A legacy (privateFor) transaction: a group of A and B made implicitly.
	legacy := privtx.LegacyGroupID(orgA, [][]byte{orgB})
	jsonEq(t, "priv_getEeaTransactionCount before", call(t, c, "priv_getEeaTransactionCount", accts[2].Address, b64s(orgA), []string{b64s(orgB)}), "0x0")
	_, raw = signPriv(t, 2, 0, nil, deployCode(recorderRuntime), nil, [][]byte{orgB})
	marker3 := sendPriv(t, c, "0x"+raw)
	var rec map[string]any
	if err := json.Unmarshal(call(t, c, "priv_getTransactionReceipt", marker3), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["privacyGroupId"] != b64s(legacy[:]) || !reflect.DeepEqual(rec["privateFor"], []any{b64s(orgB)}) || rec["status"] != "0x1" {
		t.Fatalf("legacy receipt: %v", rec)
	}
	jsonEq(t, "priv_getEeaTransactionCount", call(t, c, "priv_getEeaTransactionCount", accts[2].Address, b64s(orgA), []string{b64s(orgB)}), "0x1")
	var found []map[string]any
	if err := json.Unmarshal(call(t, c, "priv_findPrivacyGroup", []string{b64s(orgA), b64s(orgB)}), &found); err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || found[0]["type"] == found[1]["type"] {
		t.Fatalf("two groups of A and B, one LEGACY and one PANTHEON: %v", found)
	}

	// priv_call: a return, a revert (code 3, as eth_call).
	_, raw = signPriv(t, 1, 2, nil, deployCode(codeReturning(common.LeftPadBytes([]byte{42}, 32), 0xf3)), &group, nil)
	sendPriv(t, c, raw)
	_, raw = signPriv(t, 1, 3, nil, deployCode(codeReturning(revertData(), 0xfd)), &group, nil)
	sendPriv(t, c, raw)
	returner, reverter := crypto.CreateAddress(from, 2), crypto.CreateAddress(from, 3)
	jsonEq(t, "priv_call", call(t, c, "priv_call", b64s(group[:]), map[string]any{"to": returner}, "latest"),
		hexutil.Bytes(common.LeftPadBytes([]byte{42}, 32)))
	var out any
	err = c.Call(&out, "priv_call", b64s(group[:]), map[string]any{"to": reverter}, "latest")
	rpcError(t, err, 3, "execution reverted: nope")
	if data, _ := err.(gethrpc.DataError); data == nil || data.ErrorData() != hexutil.Encode(revertData()) {
		t.Fatalf("revert data: %v", err)
	}
	// A reverted private transaction: status 0x0, the revert data as output and revertReason.
	_, raw = signPriv(t, 1, 4, &reverter, nil, &group, nil)
	marker4 := sendPriv(t, c, raw)
	if err := json.Unmarshal(call(t, c, "priv_getTransactionReceipt", marker4), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["status"] != "0x0" || rec["output"] != hexutil.Encode(revertData()) || rec["revertReason"] != hexutil.Encode(revertData()) {
		t.Fatalf("reverted receipt: %v", rec)
	}

	// distribute, delete.
	jsonEq(t, "priv_distributeRawTransaction", call(t, c, "priv_distributeRawTransaction", raw), crypto.Keccak256Hash(common.FromHex(raw)))
	jsonEq(t, "priv_deletePrivacyGroup", call(t, c, "priv_deletePrivacyGroup", b64s(group[:])), b64s(group[:]))
	jsonEq(t, "priv_getPrivateTransaction of a deleted group", call(t, c, "priv_getPrivateTransaction", marker), nil)
}

// A node of an organization outside a group answers as Besu without the
// payload: null, "privacy group not found", nonce 0; the same for a group
// that exists and for one that does not.
func TestPrivNonMember(t *testing.T) {
	n := newPrivNet(t, Config{})
	group := n.createGroup(t)
	_, raw := signPriv(t, 1, 0, nil, deployCode(recorderRuntime), &group, nil)
	marker := sendPriv(t, n.sa.http, raw)
	contract := crypto.CreateAddress(testAccounts(t)[1].Address, 0)
	c := n.sc.http
	jsonEq(t, "receipt", call(t, c, "priv_getTransactionReceipt", marker), nil)
	jsonEq(t, "transaction", call(t, c, "priv_getPrivateTransaction", marker), nil)
	jsonEq(t, "find", call(t, c, "priv_findPrivacyGroup", []string{b64s(orgA), b64s(orgB)}), []any{})
	unknown := common.Hash{0xee}
	for _, g := range []common.Hash{group, unknown} {
		gid := b64s(g[:])
		jsonEq(t, "nonce", call(t, c, "priv_getTransactionCount", testAccounts(t)[1].Address, gid), "0x0")
		var out any
		for _, req := range []struct {
			method string
			args   []any
		}{
			{"priv_getCode", []any{gid, contract, "latest"}},
			{"priv_call", []any{gid, map[string]any{"to": contract}, "latest"}},
			{"priv_getLogs", []any{gid, map[string]any{}}},
			{"priv_newFilter", []any{gid, map[string]any{}}},
			{"priv_debugGetStateRoot", []any{gid, "latest"}},
			{"priv_deletePrivacyGroup", []any{gid}},
		} {
			err := c.Call(&out, req.method, req.args...)
			rpcError(t, err, -32000, "privacy group not found")
			if err.Error() != "privacy group not found" {
				t.Fatalf("%s: %q says more than that the group is not found", req.method, err)
			}
		}
	}
	// Sending for a group it is not in: the backend's refusal, -32000.
	var h common.Hash
	_, raw = signPriv(t, 1, 1, nil, nil, &group, nil)
	rpcError(t, n.sc.http.Call(&h, "eea_sendRawTransaction", raw), -32000, "")
}

func TestPrivBadParams(t *testing.T) {
	n := newPrivNet(t, Config{})
	group := n.createGroup(t)
	gid := b64s(group[:])
	c := n.sa.http
	addr := testAccounts(t)[1].Address
	var out any
	for _, tc := range []struct {
		method string
		args   []any
		want   string
	}{
		{"priv_getTransactionCount", []any{addr, "not base64!"}, "invalid argument 1: privacyGroupId: not standard base64"},
		{"priv_getTransactionCount", []any{addr, b64s(orgA[:31])}, "invalid argument 1: privacyGroupId: 31 bytes, want 32"},
		{"priv_getTransactionCount", []any{addr, 7}, "privacyGroupId: want a base64 string"},
		{"priv_getEeaTransactionCount", []any{addr, b64s(orgA[:16]), []string{b64s(orgB)}}, "invalid argument 1: privateFrom: 16 bytes"},
		{"priv_getEeaTransactionCount", []any{addr, b64s(orgA), []string{b64s(orgB), "x"}}, "invalid argument 2: privateFor[1]"},
		{"priv_getEeaTransactionCount", []any{addr, b64s(orgA), []string{}}, "privateFor: empty"},
		{"priv_getEeaTransactionCount", []any{addr, b64s(orgA), make([]string, privtx.MaxPrivateFor+1)}, "privateFor: 65 keys, at most 64"},
		{"priv_findPrivacyGroup", []any{[]string{b64s(orgA), "AAAA"}}, "members[1]: 3 bytes, want 32"},
		{"priv_createPrivacyGroup", []any{map[string]any{"name": "x"}}, "addresses: missing"},
		{"priv_createPrivacyGroup", []any{map[string]any{"addresses": []string{b64s(orgA)}, "name": strings.Repeat("n", 65)}}, "name: 65 bytes, at most 64"},
		{"priv_getCode", []any{gid, addr, "0x99"}, "invalid argument 2: block 153 is not known"},
		{"priv_getCode", []any{gid, addr, "newest"}, "invalid argument 2: block: want a number"},
		{"priv_debugGetStateRoot", []any{gid, "0xzz"}, "invalid argument 1: block: want a number"},
		{"priv_call", []any{gid, map[string]any{"to": addr}, "1000"}, "invalid argument 2: block 1000 is not known"},
		{"priv_getLogs", []any{gid, map[string]any{"blockHash": common.Hash{1}, "fromBlock": "0x1"}}, "cannot specify both BlockHash and FromBlock/ToBlock"},
		{"priv_getLogs", []any{gid, map[string]any{"blockHash": common.Hash{1}}}, "unknown block"},
		{"eea_sendRawTransaction", []any{"zz"}, "invalid argument 0: transaction: not hex"},
		{"eea_sendRawTransaction", []any{"c0"}, "invalid argument 0: malformed private transaction"},
		{"eea_sendRawTransaction", []any{strings.Repeat("00", privtx.MaxTxBytes+1)}, "above the 131072-byte bound"},
		{"priv_distributeRawTransaction", []any{"0x01"}, "malformed private transaction"},
	} {
		rpcError(t, c.Call(&out, tc.method, tc.args...), -32602, tc.want)
	}
	// The backend's errors are -32000 with their text.
	n.a.mu.Lock()
	n.a.sendErr = errString("payload not delivered to B's nodes")
	n.a.mu.Unlock()
	_, raw := signPriv(t, 1, 0, nil, nil, &group, nil)
	rpcError(t, c.Call(&out, "eea_sendRawTransaction", raw), -32000, "payload not delivered to B's nodes")
	rpcError(t, c.Call(&out, "priv_createPrivacyGroup", map[string]any{"addresses": []string{b64s(orgB)}}), -32000,
		"the members do not include this node's organization")
}

type errString string

func (e errString) Error() string { return string(e) }

// Private filters live with the eth filters: they share their bounds and
// expiry, and each namespace sees only its own.
func TestPrivFilters(t *testing.T) {
	clock := newTestClock()
	n := newPrivNet(t, Config{FiltersPerClient: 3, query: smallQuery(), now: clock.Now})
	group := n.createGroup(t)
	gid := b64s(group[:])
	c := n.sa.http
	from := testAccounts(t)[1].Address
	_, raw := signPriv(t, 1, 0, nil, deployCode(recorderRuntime), &group, nil)
	sendPriv(t, c, raw)
	contract := crypto.CreateAddress(from, 0)

	var id gethrpc.ID
	if err := c.Call(&id, "priv_newFilter", gid, map[string]any{"address": contract}); err != nil {
		t.Fatal(err)
	}
	jsonEq(t, "no changes yet", call(t, c, "priv_getFilterChanges", gid, id), []any{})
	var topics []common.Hash
	for i := byte(1); i <= 2; i++ {
		word := common.Hash{31: i}
		topics = append(topics, word)
		_, raw = signPriv(t, 1, uint64(i), &contract, word[:], &group, nil)
		sendPriv(t, c, raw)
	}
	var logs []types.Log
	if err := c.Call(&logs, "priv_getFilterChanges", gid, id); err != nil {
		t.Fatal(err)
	}
	if len(logs) != 2 || logs[0].Topics[0] != topics[0] || logs[1].Topics[0] != topics[1] {
		t.Fatalf("changes: %+v", logs)
	}
	jsonEq(t, "changes consumed", call(t, c, "priv_getFilterChanges", gid, id), []any{})
	var all []types.Log
	if err := c.Call(&all, "priv_getFilterLogs", gid, id); err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Topics[0] != topics[1] { // the filter's range is latest..latest
		t.Fatalf("filter logs: %+v", all)
	}
	// More logs than one answer holds (smallQuery: 3), one a block: the
	// poll answers the first three blocks, the next one the fourth.
	for i := byte(3); i <= 6; i++ {
		word := common.Hash{31: i}
		_, raw = signPriv(t, 1, uint64(i), &contract, word[:], &group, nil)
		sendPriv(t, c, raw)
	}
	for _, want := range [][]byte{{3, 4, 5}, {6}, {}} {
		logs = nil
		if err := c.Call(&logs, "priv_getFilterChanges", gid, id); err != nil {
			t.Fatal(err)
		}
		if len(logs) != len(want) {
			t.Fatalf("changes past the log limit: %d logs, want %d", len(logs), len(want))
		}
		for k, l := range logs {
			if l.Topics[0] != (common.Hash{31: want[k]}) {
				t.Fatalf("changes past the log limit: log %d has topic %s", k, l.Topics[0])
			}
		}
	}
	var out any
	other := common.Hash{0xee}
	rpcError(t, c.Call(&out, "priv_getFilterChanges", b64s(other[:]), id), -32000, "filter not found")
	rpcError(t, c.Call(&out, "eth_getFilterChanges", id), -32000, "filter not found")
	var ok bool
	if err := c.Call(&ok, "eth_uninstallFilter", id); err != nil || ok {
		t.Fatalf("eth_uninstallFilter of a private filter: %v %v", ok, err)
	}

	// Shared bounds: two eth filters and this one fill the client's three.
	for i := 0; i < 2; i++ {
		if err := c.Call(&out, "eth_newBlockFilter"); err != nil {
			t.Fatal(err)
		}
	}
	rpcError(t, c.Call(&out, "priv_newFilter", gid, map[string]any{}), -32005, "too many filters for this client")
	if err := c.Call(&ok, "priv_uninstallFilter", gid, id); err != nil || !ok {
		t.Fatalf("priv_uninstallFilter: %v %v", ok, err)
	}
	if err := c.Call(&ok, "priv_uninstallFilter", gid, id); err != nil || ok {
		t.Fatalf("priv_uninstallFilter again: %v %v", ok, err)
	}
	// Expiry as for eth filters.
	if err := c.Call(&id, "priv_newFilter", gid, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	clock.advance(defaultQuery.filterTimeout + time.Second)
	n.sa.filters.expire()
	rpcError(t, c.Call(&out, "priv_getFilterChanges", gid, id), -32000, "filter not found")
	// The eth bound on blocks per query (smallQuery: 5).
	for n.f.CurrentHeader().Number.Uint64() < 8 {
		n.f.addBlock(nil, nil)
	}
	rpcError(t, c.Call(&out, "priv_getLogs", gid, map[string]any{"fromBlock": "0x0", "toBlock": "0x7"}), -32000, "query spans 8 blocks, at most 5 allowed")
}

// priv_getTransactionReceipt for a committed marker whose group the node
// has not applied yet waits for it.
func TestPrivReceiptWaitsForItsGroup(t *testing.T) {
	q := smallQuery()
	q.privReceiptWait = time.Minute
	n := newPrivNet(t, Config{FiltersPerClient: 2, SubscriptionsPerConn: 2, query: q})
	group := n.createGroup(t)
	n.a.mu.Lock()
	n.a.deferApply = true
	n.a.mu.Unlock()
	_, raw := signPriv(t, 1, 0, nil, deployCode(recorderRuntime), &group, nil)
	marker := sendPriv(t, n.sa.http, raw)
	got := make(chan map[string]any, 1)
	go func() {
		var r map[string]any
		if err := n.sa.http.Call(&r, "priv_getTransactionReceipt", marker); err != nil {
			t.Error(err)
		}
		got <- r
	}()
	waitFor(t, "the receipt call waiting", 10*time.Second, func() bool {
		h := &n.sa.priv.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.subs) == 1
	})
	if err := n.a.apply(n.reg.markers[marker]); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r == nil || r["status"] != "0x1" || r["commitmentHash"] != marker.Hex() {
			t.Fatalf("receipt: %v", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the receipt call did not return")
	}
	// A marker whose group is never applied: null after the wait.
	q.privReceiptWait = 50 * time.Millisecond
	n2 := newPrivNet(t, Config{FiltersPerClient: 2, SubscriptionsPerConn: 2, query: q})
	group2 := n2.createGroup(t)
	n2.a.deferApply = true
	_, raw = signPriv(t, 1, 0, nil, nil, &group2, nil)
	jsonEq(t, "receipt never applied", call(t, n2.sa.http, "priv_getTransactionReceipt", sendPriv(t, n2.sa.http, raw)), nil)
}

// wsConn is a raw WebSocket client that speaks as web3js-quorum does.
type wsConn struct {
	t *testing.T
	c *websocket.Conn
}

func dialWS(t *testing.T, addr string) *wsConn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &wsConn{t: t, c: c}
}

func (w *wsConn) send(msg string) {
	w.t.Helper()
	if err := w.c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wsConn) recv() map[string]any {
	w.t.Helper()
	w.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := w.c.ReadMessage()
	if err != nil {
		w.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(msg, &m); err != nil {
		w.t.Fatal(err)
	}
	return m
}

func TestPrivSubscriptionOverWebSocket(t *testing.T) {
	n := newPrivNet(t, Config{SubscriptionsPerConn: 2})
	group := n.createGroup(t)
	gid := b64s(group[:])
	c := n.sa.http
	from := testAccounts(t)[1].Address
	_, raw := signPriv(t, 1, 0, nil, deployCode(recorderRuntime), &group, nil)
	sendPriv(t, c, raw)
	contract := crypto.CreateAddress(from, 0)

	ws := dialWS(t, n.sa.addr)
	ws.send(`{"jsonrpc":"2.0","id":1,"method":"priv_subscribe","params":["` + gid + `","logs",{"address":"` + contract.Hex() + `"}]}`)
	resp := ws.recv()
	subID, _ := resp["result"].(string)
	if resp["id"] != 1.0 || !strings.HasPrefix(subID, "0x") {
		t.Fatalf("priv_subscribe: %v", resp)
	}
	word := common.Hash{31: 9}
	_, raw = signPriv(t, 1, 1, &contract, word[:], &group, nil)
	marker := sendPriv(t, c, raw)
	blk := n.f.BlockByNumber(n.f.CurrentHeader().Number.Uint64())
	note, _ := json.Marshal(ws.recv())
	jsonEq(t, "priv_subscription", note, map[string]any{"jsonrpc": "2.0", "method": "priv_subscription", "params": map[string]any{
		"subscription": subID, "privacyGroupId": gid, "result": map[string]any{"logIndex": "0x0", "removed": false,
			"blockNumber": hexutil.Uint64(blk.NumberU64()), "blockHash": blk.Hash(), "transactionHash": marker,
			"transactionIndex": "0x0", "address": contract, "data": "0x", "topics": []common.Hash{word}}}})

	// The same connection serves the eth namespace; its subscriptions and
	// the private ones share --ws.max-subscriptions.
	ws.send(`[{"jsonrpc":"2.0","id":2,"method":"eth_subscribe","params":["newHeads"]},` +
		`{"jsonrpc":"2.0","id":3,"method":"priv_subscribe","params":["` + gid + `","logs",{}]}]`)
	_, batch, err := ws.c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(batch), `"id":2,"result":"0x`) || !strings.Contains(string(batch), "too many subscriptions on this WebSocket connection") {
		t.Fatalf("batch: %s", batch)
	}
	// Non-members and unknown groups are refused; Besu's unsubscribe.
	other := common.Hash{0xee}
	ws.send(`{"jsonrpc":"2.0","id":4,"method":"priv_subscribe","params":["` + b64s(other[:]) + `","logs",{}]}`)
	if r := ws.recv(); r["error"] == nil || !strings.Contains(r["error"].(map[string]any)["message"].(string), "privacy group not found") {
		t.Fatalf("subscribe to an unknown group: %v", r)
	}
	ws.send(`{"jsonrpc":"2.0","id":5,"method":"priv_unsubscribe","params":["` + gid + `","` + subID + `"]}`)
	for {
		r := ws.recv()
		if r["id"] == 5.0 {
			if r["result"] != true {
				t.Fatalf("priv_unsubscribe: %v", r)
			}
			break
		}
		if r["method"] == nil { // only the newHeads notifications may come between
			t.Fatalf("unexpected message: %v", r)
		}
	}
	waitFor(t, "the subscription's slot freed", 5*time.Second, func() bool { return totalSubs(n.sa) == 1 })
	// Over HTTP there are no subscriptions.
	var out any
	rpcError(t, c.Call(&out, "priv_subscribe", gid, "logs", map[string]any{}), -32601, "notifications not supported")
}

func TestRewritePrivRequest(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"id":1,"method":"priv_subscribe","params":["g","logs",{}]}`, `{"id":1,"method":"priv_subscribe","params":["logs","g",{}]}`},
		{`{"id":1,"method":"priv_unsubscribe","params":["g","0x1"]}`, `{"id":1,"method":"priv_unsubscribe","params":["0x1"]}`},
		{`[{"id":1,"method":"eth_chainId"},{"id":2,"method":"priv_subscribe","params":["g","logs"]}]`,
			`[{"id":1,"method":"eth_chainId"},{"id":2,"method":"priv_subscribe","params":["logs","g"]}]`},
		{`{"id":1,"method":"priv_getCode","params":["g","0x1"]}`, `{"id":1,"method":"priv_getCode","params":["g","0x1"]}`},
		{`{"id":1,"method":"priv_subscribe","params":["g"]}`, `{"id":1,"method":"priv_subscribe","params":["g"]}`},
		{`{"id":1,"method":"priv_unsubscribe","params":["0x1"]}`, `{"id":1,"method":"priv_unsubscribe","params":["0x1"]}`},
		{`{"id":1,"method":"priv_subscribe","params":{"a":1}}`, `{"id":1,"method":"priv_subscribe","params":{"a":1}}`},
		{`not json priv_`, `not json priv_`},
	} {
		got := rewritePrivRequest([]byte(tc.in))
		var g, w any
		if json.Unmarshal(got, &g) != nil || json.Unmarshal([]byte(tc.want), &w) != nil {
			if string(got) != tc.want {
				t.Fatalf("%s: got %s, want %s", tc.in, got, tc.want)
			}
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("%s: got %s, want %s", tc.in, got, tc.want)
		}
	}
}

// FuzzRewritePrivRequest: any message in, no panic; valid JSON stays
// valid; a message without priv_ is untouched; the rewrite changes the
// order or the number of params only.
func FuzzRewritePrivRequest(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"priv_subscribe","params":["AAAA","logs",{"address":"0x01"}]}`,
		`[{"id":1,"method":"priv_unsubscribe","params":["g","0x1"]},{"id":2,"method":"priv_subscribe","params":[1,2,3]}]`,
		`{"method":"priv_subscribe","params":null}`, `[]`, `{}`, `"priv_"`, `[{"method":"priv_unsubscribe"}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		out := rewritePrivRequest(msg)
		if json.Valid(msg) && !json.Valid(out) {
			t.Fatalf("valid %q became invalid %q", msg, out)
		}
		if !strings.Contains(string(msg), "priv_") && string(out) != string(msg) {
			t.Fatalf("%q changed to %q", msg, out)
		}
		if len(out) > 2*len(msg)+16 {
			t.Fatalf("%d bytes grew to %d", len(msg), len(out))
		}
	})
}

// The notification rewrite moves the group beside the result and leaves
// every other message alone.
func TestRewritePrivNotification(t *testing.T) {
	in := `{"jsonrpc":"2.0","method":"priv_subscription","params":{"subscription":"0xab","result":{"address":"0x01","privacyGroupId":"Zw=="}}}`
	jsonEq(t, "notification", rewritePrivNotification([]byte(in)), map[string]any{"jsonrpc": "2.0", "method": "priv_subscription",
		"params": map[string]any{"subscription": "0xab", "privacyGroupId": "Zw==", "result": map[string]any{"address": "0x01"}}})
	for _, s := range []string{`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0xab","result":{"privacyGroupId":1}}}`,
		`{"jsonrpc":"2.0","id":1,"result":"0x1"}`} {
		if got := string(rewritePrivNotification([]byte(s))); got != s {
			t.Fatalf("%s changed to %s", s, got)
		}
	}
}
