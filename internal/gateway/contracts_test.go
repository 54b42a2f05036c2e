package gateway

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/charter-ledger/charter/internal/system"
	"github.com/charter-ledger/charter/internal/txpool"
)

// testABI is the ABI the tests call the fake chain's contracts by. echo
// and over return their arguments when called on echoAddr.
const testABI = `[
 {"type":"function","name":"echo","stateMutability":"view",
  "inputs":[{"name":"a","type":"uint256"},{"name":"b","type":"int8"},{"name":"c","type":"address"},{"name":"d","type":"bool"},
   {"name":"e","type":"string"},{"name":"f","type":"bytes"},{"name":"g","type":"bytes32"},{"name":"h","type":"uint64[]"},
   {"name":"t","type":"tuple[2]","components":[{"name":"x","type":"uint64"},{"name":"y","type":"string"}]}],
  "outputs":[{"name":"a","type":"uint256"},{"name":"b","type":"int8"},{"name":"c","type":"address"},{"name":"d","type":"bool"},
   {"name":"e","type":"string"},{"name":"f","type":"bytes"},{"name":"g","type":"bytes32"},{"name":"h","type":"uint64[]"},
   {"name":"t","type":"tuple[2]","components":[{"name":"x","type":"uint64"},{"name":"y","type":"string"}]}]},
 {"type":"function","name":"over","stateMutability":"view","inputs":[{"name":"a","type":"uint256"}],"outputs":[{"name":"","type":"uint256"}]},
 {"type":"function","name":"over","stateMutability":"view","inputs":[{"name":"a","type":"address"}],"outputs":[{"name":"","type":"address"}]},
 {"type":"function","name":"list","stateMutability":"view","inputs":[],"outputs":[{"name":"items","type":"uint256[]"}]},
 {"type":"function","name":"nested","stateMutability":"view","inputs":[],"outputs":[{"name":"items","type":"uint256[][]"}]},
 {"type":"function","name":"set","stateMutability":"nonpayable","inputs":[{"name":"v","type":"uint256"}],"outputs":[]},
 {"type":"function","name":"pay","stateMutability":"payable","inputs":[],"outputs":[]},
 {"type":"error","name":"Short","inputs":[{"name":"have","type":"uint256"},{"name":"want","type":"uint256"}]}
]`

func abiJSON() json.RawMessage { return json.RawMessage(testABI) }

func callPath(contract any, method string) string {
	return fmt.Sprintf("/api/v1/contracts/%v/call/%s", contract, method)
}

func sendPath(contract any, method string) string {
	return fmt.Sprintf("/api/v1/contracts/%v/send/%s", contract, method)
}

// echoArgs are arguments of echo by name, in the JSON the API takes.
func echoArgs() map[string]any {
	return map[string]any{
		"a": "115792089237316195423570985008687907853269984665640564039457584007913129639935", // 2^256-1
		"b": -128,
		"c": strings.ToLower(bankWriter.Hex()),
		"d": true,
		"e": "hello, \u00e9",
		"f": "0xdeadbeef",
		"g": "0x" + strings.Repeat("11", 32),
		"h": []any{"1", 2, "0x03"},
		"t": []any{map[string]any{"x": "18446744073709551615", "y": "first"}, []any{7, "second"}},
	}
}

func TestCallDecodesArgumentsAndOutputs(t *testing.T) {
	h := newHarness(t, nil)
	var res CallResult
	h.post(callPath(echoAddr.Hex(), "echo"), map[string]any{"abi": abiJSON(), "args": echoArgs()}).want(t, http.StatusOK).decode(t, &res)
	got, _ := json.Marshal(res.Outputs)
	want := `[{"name":"a","type":"uint256","value":"115792089237316195423570985008687907853269984665640564039457584007913129639935"},` +
		`{"name":"b","type":"int8","value":"-128"},{"name":"c","type":"address","value":"` + bankWriter.Hex() + `"},` +
		`{"name":"d","type":"bool","value":true},{"name":"e","type":"string","value":"hello, é"},` +
		`{"name":"f","type":"bytes","value":"0xdeadbeef"},{"name":"g","type":"bytes32","value":"0x` + strings.Repeat("11", 32) + `"},` +
		`{"name":"h","type":"uint64[]","value":["1","2","3"]},` +
		`{"name":"t","type":"(uint64,string)[2]","value":[{"x":"18446744073709551615","y":"first"},{"x":"7","y":"second"}]}]`
	if string(got) != want {
		t.Fatalf("outputs\n%s\nwant\n%s", got, want)
	}
	if res.GasUsed == 0 || res.Block != 0 || !strings.HasPrefix(res.ReturnData, "0x") {
		t.Fatalf("result: %+v", res)
	}

	// The same call with the arguments in order.
	a := echoArgs()
	ordered := []any{a["a"], a["b"], a["c"], a["d"], a["e"], a["f"], a["g"], a["h"], a["t"]}
	var again CallResult
	h.post(callPath(echoAddr.Hex(), "echo"), map[string]any{"abi": abiJSON(), "args": ordered}).want(t, http.StatusOK).decode(t, &again)
	if again.ReturnData != res.ReturnData {
		t.Fatal("arguments in order encode otherwise than by name")
	}

	// An overloaded function by signature; from, value and gas.
	var over CallResult
	h.post(callPath(echoAddr.Hex(), "over(address)"), map[string]any{"abi": abiJSON(), "args": []string{echoAddr.Hex()},
		"from": h.f.dev[0].Address.Hex(), "value": "5", "gas": 100000}).want(t, http.StatusOK).decode(t, &over)
	if len(over.Outputs) != 1 || over.Outputs[0].Value != echoAddr.Hex() || over.Outputs[0].Name != "" {
		t.Fatalf("over(address): %+v", over.Outputs)
	}
	var list CallResult
	h.post(callPath(returnAddr.Hex(), "list"), map[string]any{"abi": abiJSON()}).want(t, http.StatusOK).decode(t, &list)
	if v, _ := json.Marshal(list.Outputs[0].Value); string(v) != `["1","2"]` {
		t.Fatalf("list: %s", v)
	}
}

func TestCallRefusesBadArgumentsNamingThem(t *testing.T) {
	h := newHarness(t, nil)
	echo := callPath(echoAddr.Hex(), "echo")
	with := func(name string, v any) map[string]any {
		a := echoArgs()
		if v == nil {
			delete(a, name)
		} else {
			a[name] = v
		}
		return map[string]any{"abi": abiJSON(), "args": a}
	}
	for _, c := range []struct {
		body  map[string]any
		field string
		want  string
	}{
		{with("a", "-1"), "args.a", "out of range of uint256"},
		{with("a", "1.5"), "args.a", "want an integer"},
		{with("a", 1e300), "args.a", "want an integer"},
		{with("b", 128), "args.b", "out of range of int8"},
		{with("c", "0x1234"), "args.c", "not a 20-byte hex address"},
		{with("c", wrongChecksum(h.f.dev[0].Address)), "args.c", "EIP-55"},
		{with("d", "true"), "args.d", "want true or false"},
		{with("e", 5), "args.e", "want a JSON string"},
		{with("f", "deadbeef"), "args.f", "want 0x and an even number of hex digits"},
		{with("g", "0x11"), "args.g", "want 32 bytes in hex"},
		{with("h", "1,2"), "args.h", "want a JSON array"},
		{with("h", []any{"1", "x"}), "args.h[1]", "want an integer"},
		{with("t", []any{map[string]any{"x": 1, "y": "a"}}), "args.t", "1 items, want 2"},
		{with("t", []any{map[string]any{"x": 1, "y": "a"}, map[string]any{"x": 1}}), "args.t[1].y", "missing"},
		{with("t", []any{map[string]any{"x": 1, "y": "a"}, map[string]any{"x": 1, "y": "b", "z": 0}}), "args.t[1].z", "no such component"},
		{with("a", nil), "args.a", "missing (uint256)"},
		{with("zz", 1), "args.zz", "no such input"},
		{map[string]any{"abi": abiJSON(), "args": []any{1, 2}}, "args", "2 given, the function takes 9"},
		{map[string]any{"abi": abiJSON(), "args": "x"}, "args", "want an array"},
		{map[string]any{"abi": abiJSON()}, "args", "the function takes 9 arguments"},
		{map[string]any{"abi": abiJSON(), "args": echoArgs(), "from": "me"}, "from", "not a 20-byte hex address"},
		{map[string]any{"abi": abiJSON(), "args": echoArgs(), "value": "-1"}, "value", "decimal string of wei"},
		{map[string]any{"abi": abiJSON(), "args": echoArgs(), "value": 1}, "value", "want a string"},
		{map[string]any{"abi": abiJSON(), "args": echoArgs(), "gas": 0}, "gas", "want 1 to"},
		{map[string]any{"abi": abiJSON(), "args": echoArgs(), "gas": "1"}, "gas", "want a number"},
		{map[string]any{"abi": abiJSON(), "args": echoArgs(), "gass": 1}, "gass", "unknown member"},
		{map[string]any{"args": echoArgs()}, "abi", "required when the contract is named by its address"},
		{map[string]any{"abi": "[]x", "args": echoArgs()}, "abi", "want the JSON array"},
		{map[string]any{"abi": json.RawMessage(`[{"type":"function","name":"echo","inputs":[{"name":"a","type":"uint256[65537]"}]}]`)}, "abi", "fixed-size array of more than"},
		{map[string]any{"abi": json.RawMessage(`[{"type":"function","name":"echo","inputs":[{"name":"a","type":"fixed128x18"}]}]`)}, "abi", ""},
	} {
		t.Run(c.field+"/"+c.want, func(t *testing.T) {
			h.t = t
			h.post(echo, c.body).wantProblem(t, http.StatusBadRequest, c.want, c.field)
		})
	}
	h.t = t
	h.post(callPath(echoAddr.Hex(), "over"), map[string]any{"abi": abiJSON(), "args": []int{1}}).
		wantProblem(t, http.StatusBadRequest, "over is overloaded: name one of over(address), over(uint256)", "method")
	h.post(callPath(echoAddr.Hex(), "nothere"), map[string]any{"abi": abiJSON()}).
		wantProblem(t, http.StatusNotFound, "the ABI has no function nothere (it has echo(", "method")
	h.post(callPath(echoAddr.Hex(), "over(bool)"), map[string]any{"abi": abiJSON()}).
		wantProblem(t, http.StatusNotFound, "no function over(bool)", "method")
	h.post(callPath("0x12", "echo"), map[string]any{"abi": abiJSON()}).
		wantProblem(t, http.StatusBadRequest, "contract: not a 20-byte hex address", "contract")
}

func TestCallRevertAndFailure(t *testing.T) {
	h := newHarness(t, nil)
	p := h.post(callPath(revertAddr.Hex(), "set"), map[string]any{"abi": abiJSON(), "args": []string{"1"}}).
		wantProblem(t, http.StatusUnprocessableEntity, "call of set(uint256) reverted: nope")
	if p.Reason != "nope" || p.RevertData != hexutil.Encode(errorData()) {
		t.Fatalf("revert: %+v", p)
	}
	p = h.post(callPath(customAddr.Hex(), "set"), map[string]any{"abi": abiJSON(), "args": []string{"1"}}).
		wantProblem(t, http.StatusUnprocessableEntity, "reverted: Short(uint256,uint256)")
	if p.RevertData != hexutil.Encode(shortData()) {
		t.Fatalf("custom error: %+v", p)
	}
	// Out of gas: a failure that is not a revert.
	h.post(callPath(echoAddr.Hex(), "set"), map[string]any{"abi": abiJSON(), "args": []string{"1"}, "gas": 21000}).
		wantProblem(t, http.StatusUnprocessableEntity, "call of set(uint256) failed")
	// Return data that is not the outputs' encoding.
	h.post(callPath(returnAddr.Hex(), "nested"), map[string]any{"abi": abiJSON()}).
		wantProblem(t, http.StatusUnprocessableEntity, "is not their encoding")
	// Value from an account without funds.
	h.post(callPath(echoAddr.Hex(), "pay"), map[string]any{"abi": abiJSON(), "value": "1"}).
		wantProblem(t, http.StatusUnprocessableEntity, "insufficient funds")
}

func TestCallByRegisteredName(t *testing.T) {
	reg := registry{"echo": {echoAddr, testABI}, "broken": {echoAddr, "{"}}
	h := newHarness(t, func(c *Config) { c.Contracts = reg })
	var res CallResult
	h.post(callPath("echo", "over(uint256)"), map[string]any{"args": []string{"42"}}).want(t, http.StatusOK).decode(t, &res)
	if res.Outputs[0].Value != "42" {
		t.Fatalf("over(42) by name: %+v", res.Outputs)
	}
	// An ABI in the body overrides the registry's.
	other := `[{"type":"function","name":"only","stateMutability":"view","inputs":[{"name":"a","type":"uint8"}],"outputs":[{"name":"b","type":"uint8"}]}]`
	h.post(callPath("echo", "only"), map[string]any{"abi": json.RawMessage(other), "args": []int{7}}).want(t, http.StatusOK).decode(t, &res)
	if res.Outputs[0].Value != "7" {
		t.Fatalf("only(7): %+v", res.Outputs)
	}
	h.post(callPath("nobody", "over"), map[string]any{}).wantProblem(t, http.StatusNotFound, `no contract named "nobody"`, "contract")
	h.post(callPath("broken", "over"), map[string]any{}).wantProblem(t, http.StatusInternalServerError, "the contract registry's ABI")

	// Without a registry, names are not found.
	plain := newHarness(t, nil)
	plain.post(callPath("echo", "over"), map[string]any{}).wantProblem(t, http.StatusNotFound, "this node has no contract registry", "contract")
}

func TestSendWithNodeHeldKey(t *testing.T) {
	h := newHarness(t, nil)
	writer := caller(system.RoleRead|system.RoleWrite, "k1")
	r := h.do(request{method: "POST", path: sendPath(echoAddr.Hex(), "set"), who: writer,
		body: map[string]any{"abi": abiJSON(), "key": "k1", "args": []string{"9"}, "gas": 50000}}).want(t, http.StatusAccepted)
	var s Submitted
	r.decode(t, &s)
	if r.header.Get("Location") != "/api/v1/transactions/"+s.Hash || h.sender.count() != 1 {
		t.Fatalf("send: %+v, Location %q, %d sends", s, r.header.Get("Location"), h.sender.count())
	}
	got := h.sender.reqs[0]
	if got.To != echoAddr || got.Gas != 50000 || got.Value.Sign() != 0 || hexutil.Encode(got.Data[:4]) != "0x60fe47b1" {
		t.Fatalf("TxRequest %+v", got)
	}
	// Payable with value; without authentication any key.
	h.do(request{method: "POST", path: sendPath(echoAddr.Hex(), "pay"), body: map[string]any{"abi": abiJSON(), "key": "k2", "value": "1000"}}).want(t, http.StatusAccepted)
	if v := h.sender.reqs[1].Value; v.Cmp(big.NewInt(1000)) != 0 || h.sender.keys[1] != "k2" {
		t.Fatalf("pay: value %s key %s", v, h.sender.keys[1])
	}

	for _, c := range []struct {
		who    any
		method string
		body   map[string]any
		status int
		want   string
		field  string
	}{
		{writer, "set", map[string]any{"key": "k2", "args": []int{1}}, http.StatusForbidden, `org1/app may not use the node-held key "k2"`, "key"},
		{nil, "set", map[string]any{"key": "missing", "args": []int{1}}, http.StatusNotFound, "no such node-held key", "key"},
		{nil, "set", map[string]any{"key": "foreign", "args": []int{1}}, http.StatusForbidden, "key not permitted", "key"},
		{nil, "set", map[string]any{"args": []int{1}}, http.StatusBadRequest, "key: want the id", "key"},
		{nil, "over(uint256)", map[string]any{"key": "k1", "args": []int{1}}, http.StatusBadRequest, "is view: it changes nothing", "method"},
		{nil, "set", map[string]any{"key": "k1", "args": []int{1}, "value": "1"}, http.StatusBadRequest, "set(uint256) is not payable", "value"},
		{nil, "set", map[string]any{"key": "k1", "args": []int{1}, "gas": uint64(1) << 40}, http.StatusBadRequest, "the chain's transaction gas limit", "gas"},
		{nil, "set", map[string]any{"key": "k1", "args": []int{1}, "from": "0x"}, http.StatusBadRequest, "from: unknown member", "from"},
	} {
		c.body["abi"] = abiJSON()
		req := request{method: "POST", path: sendPath(echoAddr.Hex(), c.method), body: c.body}
		if c.who != nil {
			req.who = writer
		}
		h.do(req).wantProblem(t, c.status, c.want, c.field)
	}

	h.sender.err = fmt.Errorf("%w: 100000 transactions", txpool.ErrPoolFull)
	h.do(request{method: "POST", path: sendPath(echoAddr.Hex(), "set"), body: map[string]any{"abi": abiJSON(), "key": "k1", "args": []int{1}}}).
		wantProblem(t, http.StatusServiceUnavailable, "txpool is full")
	h.sender.err = fmt.Errorf("%w: have 0 want 1", txpool.ErrInsufficientFunds)
	h.do(request{method: "POST", path: sendPath(echoAddr.Hex(), "set"), body: map[string]any{"abi": abiJSON(), "key": "k1", "args": []int{1}}}).
		wantProblem(t, http.StatusUnprocessableEntity, "transaction rejected: insufficient funds")
}

func TestSendWithoutSenderIsNotImplemented(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Sender = nil })
	h.post(sendPath(echoAddr.Hex(), "set"), map[string]any{"abi": abiJSON(), "key": "k1", "args": []int{1}}).
		wantProblem(t, http.StatusNotImplemented, "this node holds no signing keys")
}
