package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// Bounds of the fuzzed server: small, so that the fuzzer reaches them.
var fuzzConfig = Config{
	BatchItems:    8,
	ResponseBytes: 4 << 10,
	BodyBytes:     16 << 10,
	GasCap:        2_000_000,
	EVMTimeout:    time.Second,
	BatchTimeout:  2 * time.Second,
	BatchGas:      4_000_000,
}

// fuzzSeeds are request bodies: every namespace, good and bad parameters,
// batches below, at and above the bound, notifications, malformed JSON.
var fuzzSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`,
	`{"jsonrpc":"2.0","id":"a","method":"eth_blockNumber","params":[]}`,
	`{"jsonrpc":"2.0","id":2,"method":"eth_getBlockByNumber","params":["latest",true]}`,
	`{"jsonrpc":"2.0","id":3,"method":"eth_getBlockByNumber","params":["0x1",false]}`,
	`{"jsonrpc":"2.0","id":4,"method":"eth_getBalance","params":["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","pending"]}`,
	`{"jsonrpc":"2.0","id":5,"method":"eth_call","params":[{"to":"0x00000000000000000000000000000000000c0de1","data":"0x"},"latest"]}`,
	`{"jsonrpc":"2.0","id":6,"method":"eth_call","params":[{"to":"0x00000000000000000000000000000000000c0de3","gas":"0x1e8480"},"latest"]}`,
	`{"jsonrpc":"2.0","id":7,"method":"eth_estimateGas","params":[{"from":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","to":"0x00000000000000000000000000000000000c0de2"}]}`,
	`{"jsonrpc":"2.0","id":8,"method":"eth_getLogs","params":[{"fromBlock":"0x0","toBlock":"latest","topics":[null,["0x01"]]}]}`,
	`{"jsonrpc":"2.0","id":9,"method":"eth_newFilter","params":[{"address":"0x00000000000000000000000000000000000000aa"}]}`,
	`{"jsonrpc":"2.0","id":10,"method":"eth_getFilterChanges","params":["0x1"]}`,
	`{"jsonrpc":"2.0","id":11,"method":"eth_sendRawTransaction","params":["0x02f8"]}`,
	`{"jsonrpc":"2.0","id":12,"method":"eth_sendTransaction","params":[{"from":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","value":"0x1"}]}`,
	`{"jsonrpc":"2.0","id":13,"method":"personal_sign","params":["0x68656c6c6f","0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"]}`,
	`{"jsonrpc":"2.0","id":14,"method":"eth_feeHistory","params":["0x4","latest",[25,75]]}`,
	`{"jsonrpc":"2.0","id":15,"method":"eth_getProof","params":["0x00000000000000000000000000000000000c0de1",["0x0"],"latest"]}`,
	`{"jsonrpc":"2.0","id":16,"method":"txpool_content"}`,
	`{"jsonrpc":"2.0","id":17,"method":"charter_organizations"}`,
	`{"jsonrpc":"2.0","id":18,"method":"charter_proposal","params":[1]}`,
	`{"jsonrpc":"2.0","id":24,"method":"charter_group","params":["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]}`,
	`{"jsonrpc":"2.0","id":25,"method":"charter_groups","params":["dev","latest"]}`,
	`{"jsonrpc":"2.0","id":19,"method":"net_version"}`,
	`{"jsonrpc":"2.0","id":20,"method":"web3_sha3","params":["0x00"]}`,
	`{"jsonrpc":"2.0","id":21,"method":"eth_getTransactionReceipt","params":["0x0000000000000000000000000000000000000000000000000000000000000000"]}`,
	`{"jsonrpc":"2.0","id":22,"method":"eth_getBlockReceipts","params":["latest"]}`,
	`{"jsonrpc":"2.0","id":23,"method":"eth_subscribe","params":["newHeads"]}`,
	`{"jsonrpc":"2.0","method":"eth_chainId"}`,
	`{"jsonrpc":"2.0","id":null,"method":"nope_nope"}`,
	`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","method":"net_version"},{"jsonrpc":"2.0","id":3,"method":"eth_gasPrice"}]`,
	`[{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["latest",true]},{"jsonrpc":"2.0","id":2,"method":"eth_getBlockByNumber","params":["0x1",true]},{"jsonrpc":"2.0","id":3,"method":"eth_getBlockByNumber","params":["0x0",true]},{"jsonrpc":"2.0","id":4,"method":"eth_getBlockByNumber","params":["0x2",true]},{"jsonrpc":"2.0","id":5,"method":"eth_getBlockByNumber","params":["0x1",true]}]`,
	`[1,2,3,4,5,6,7,8,9]`,
	`[]`,
	`[{}]`,
	`{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0xzz"]}`,
	`{"jsonrpc":"2.0","id":{"a":1},"method":"eth_chainId"}`,
	`{"jsonrpc":"1.0","id":1,"method":"eth_chainId"}`,
	`{"id":1,"method":"eth_chainId"`,
	`[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]`,
	"\x00\xff",
	``,
}

// Request shapes: the method, the Content-Type and an Origin header are
// chosen by the fuzzer's second argument.
var (
	fuzzMethods      = []string{http.MethodPost, http.MethodGet, http.MethodOptions, http.MethodPut}
	fuzzContentTypes = []string{"application/json", "application/json; charset=utf-8", "text/plain", ""}
)

// FuzzHTTP posts arbitrary bodies to the JSON-RPC handler over a fake
// chain (two blocks, dev accounts, a contract that loops): the server never
// panics, answers an HTTP error or valid JSON-RPC (one answer per call,
// the ids echoed, each answer a result or an error with a code), stays
// within its batch and response bounds, and answers promptly.
func FuzzHTTP(f *testing.F) {
	fake := newFake(f)
	fake.dev = testAccounts(f)
	fake.addBlock([]*types.Transaction{signedTransfer(f, 1, 0)},
		[][]*types.Log{{{Address: common.Address{0xaa}, Topics: []common.Hash{{1}}}}})
	fake.addBlock(nil, nil)
	srv, err := NewServer(fake, fuzzConfig, func() int { return 3 }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(srv.Stop)
	h := srv.Handler()

	raw, _ := signedTransfer(f, 2, 0).MarshalBinary()
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["`+hexutil.Encode(raw)+`"]}`), uint8(0))
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), uint8(0))
	}
	f.Add([]byte(fuzzSeeds[0]), uint8(1))  // GET with a body
	f.Add([]byte(fuzzSeeds[0]), uint8(2))  // OPTIONS
	f.Add([]byte(fuzzSeeds[0]), uint8(8))  // text/plain
	f.Add([]byte(fuzzSeeds[0]), uint8(16)) // an Origin header
	f.Add(bytes.Repeat([]byte(" "), fuzzConfig.BodyBytes+1), uint8(0))

	f.Fuzz(func(t *testing.T, body []byte, shape uint8) {
		method := fuzzMethods[shape%4]
		req := httptest.NewRequest(method, "/", bytes.NewReader(body))
		req.RemoteAddr = "192.0.2.1:4000"
		if ct := fuzzContentTypes[shape/4%4]; ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if shape&16 != 0 {
			req.Header.Set("Origin", "https://evil.example")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req = req.WithContext(ctx)
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		if d := time.Since(start); d > 15*time.Second {
			t.Fatalf("answered after %s", d)
		}
		// The pool of the fake keeps what gets in: empty it, so that runs
		// stay independent and small.
		fake.mu.Lock()
		fake.pool = nil
		fake.mu.Unlock()

		checkAnswer(t, req, body, rec)
	})
}

// checkAnswer checks one HTTP answer of the handler to body.
func checkAnswer(t *testing.T, req *http.Request, body []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	out := rec.Body.Bytes()
	switch {
	case req.Header.Get("Origin") != "":
		if rec.Code != http.StatusForbidden {
			t.Fatalf("request from a foreign origin answered %d", rec.Code)
		}
		return
	case req.Method == http.MethodOptions:
		if rec.Code != http.StatusNoContent {
			t.Fatalf("OPTIONS answered %d", rec.Code)
		}
		return
	case req.Method == http.MethodPut:
		if rec.Code != http.StatusMethodNotAllowed {
			t.Fatalf("PUT answered %d", rec.Code)
		}
		return
	case len(body) > fuzzConfig.BodyBytes:
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("body of %d bytes (limit %d) answered %d", len(body), fuzzConfig.BodyBytes, rec.Code)
		}
		return
	case rec.Code != http.StatusOK:
		if rec.Code < 400 || rec.Code > 499 {
			t.Fatalf("answered %d: %s", rec.Code, out)
		}
		return
	case req.Method == http.MethodGet && len(body) == 0:
		return // a health check
	}
	if len(bytes.TrimSpace(out)) == 0 {
		// No answer: to notifications, and (go-ethereum's choice) to a
		// body without any JSON value.
		if len(bytes.TrimSpace(body)) > 0 && !allNotifications(body) {
			t.Fatalf("empty answer to a request with calls: %q", body)
		}
		return
	}
	// One response carries at most the bound of the batch plus one answer
	// (the one that crossed it) and echoes of the request's ids and
	// parameters in error messages.
	if max := fuzzConfig.ResponseBytes + 64<<10 + 4*len(body); len(out) > max {
		t.Fatalf("answer of %d bytes, bound %d", len(out), max)
	}
	ids := requestIDs(body)
	out = bytes.TrimSpace(out)
	if out[0] == '[' {
		var answers []json.RawMessage
		if err := json.Unmarshal(out, &answers); err != nil {
			t.Fatalf("answer is not a JSON array: %v: %s", err, out)
		}
		if len(answers) == 0 || len(answers) > fuzzConfig.BatchItems {
			t.Fatalf("batch answer of %d responses (limit %d): %s", len(answers), fuzzConfig.BatchItems, out)
		}
		for _, a := range answers {
			checkResponse(t, a, ids)
		}
		return
	}
	checkResponse(t, out, ids)
}

// checkResponse checks one JSON-RPC response object: version 2.0, an id
// that the request carried (or null), exactly one of result and error, and
// an error with an integer code and a message.
func checkResponse(t *testing.T, raw json.RawMessage, ids map[string]bool) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, raw)
	}
	if string(m["jsonrpc"]) != `"2.0"` {
		t.Fatalf("response without jsonrpc 2.0: %s", raw)
	}
	id, ok := m["id"]
	if !ok {
		// go-ethereum (rpc/handler.go, batchCallBuffer.respondWithError)
		// answers -32003 to the calls left when a batch's responses pass
		// the size bound, copying each one's id: a member without one (an
		// invalid request) gets an answer without "id" rather than
		// "id": null. Only that answer may lack it.
		if !ids[noID] || !bytes.Contains(m["error"], []byte(`"code":-32003`)) {
			t.Fatalf("response without id: %s", raw)
		}
		return
	}
	if string(id) != "null" && !ids[compactJSON(id)] {
		t.Fatalf("response id %s not among the request's: %s", id, raw)
	}
	res, hasResult := m["result"]
	e, hasError := m["error"]
	if hasResult == hasError {
		t.Fatalf("response with result %v and error %v: %s", hasResult, hasError, raw)
	}
	_ = res
	if hasError {
		var rpcErr struct {
			Code    *int    `json:"code"`
			Message *string `json:"message"`
		}
		if err := json.Unmarshal(e, &rpcErr); err != nil || rpcErr.Code == nil || rpcErr.Message == nil {
			t.Fatalf("error without an integer code and a message: %s", raw)
		}
	}
}

// noID is the key of requestIDs that says a request lacks an id.
const noID = ""

// requestIDs lists the ids of a request body (one object or a batch), in
// compact form, and noID if one of its requests has none.
func requestIDs(body []byte) map[string]bool {
	ids := map[string]bool{}
	var batch []json.RawMessage
	if err := json.Unmarshal(body, &batch); err != nil {
		batch = []json.RawMessage{body}
	}
	for _, msg := range batch {
		var m struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(msg, &m) == nil && m.ID != nil {
			ids[compactJSON(m.ID)] = true
		} else {
			ids[noID] = true
		}
	}
	return ids
}

// allNotifications reports whether body is a notification or a non-empty
// batch of them: calls without an id, which get no answer.
func allNotifications(body []byte) bool {
	var batch []json.RawMessage
	if err := json.Unmarshal(body, &batch); err != nil {
		batch = []json.RawMessage{body}
	}
	if len(batch) == 0 {
		return false
	}
	for _, msg := range batch {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(msg, &m); err != nil {
			return false
		}
		if _, hasID := m["id"]; hasID {
			return false
		}
	}
	return true
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}
