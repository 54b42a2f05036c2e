package rpc

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/privacy/privtx"
)

// The direct answer to eth_sendRawTransaction is byte for byte what
// go-ethereum's server answers, for every request it takes; every other
// request goes on to go-ethereum's server with its body intact.
func TestSendRawAnswersAsGoEthereum(t *testing.T) {
	f := newFake(t)
	// Batches of up to 30 calls, answers of up to 1,024 bytes (20 hashes pass it).
	ts := serve(t, f, Config{BatchItems: 30, ResponseBytes: 1024})
	acct := testAccounts(t)[0]
	signer := types.LatestSignerForChainID(big.NewInt(1337))
	tx, err := types.SignNewTx(acct.Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 3,
		GasTipCap: big.NewInt(0), GasFeeCap: big.NewInt(1e9), Gas: 21000, To: &common.Address{1}, Value: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tx.MarshalBinary()
	hexTx := hexutil.Encode(raw)
	call := func(id, params string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"method":"eth_sendRawTransaction","params":` + params + `}`
	}
	cases := []struct {
		name, body, ctype string
		sendErr           error
		direct            bool // answered without go-ethereum's server
	}{
		{"number id", call("7", `["`+hexTx+`"]`), "application/json", nil, true},
		{"string id", call(`"abc"`, `["`+hexTx+`"]`), "application/json", nil, true},
		{"null id", call("null", `["`+hexTx+`"]`), "application/json", nil, true},
		{"large id", call("123456789012345678901234567890", `["`+hexTx+`"]`), "application/json", nil, true},
		{"spaces", " {\"jsonrpc\" : \"2.0\",\n \"method\":\"eth_sendRawTransaction\", \"params\": [ \"" + hexTx + "\" ] , \"id\" : 1 }\n", "application/json; charset=utf-8", nil, true},
		{"uppercase hex", call("1", `["0x`+strings.ToUpper(hexTx[2:])+`"]`), "application/json", nil, true},
		{"other content type", call("1", `["`+hexTx+`"]`), "application/json-rpc", nil, true},
		{"pool refuses", call("2", `["`+hexTx+`"]`), "application/json", errors.New("nonce too low: next nonce 9, tx nonce 3"), true},
		{"does not decode", call("3", `["0x02f8"]`), "application/json", nil, true},
		{"not a transaction", call("4", `["0x"]`), "application/json", nil, true},
		{"odd hex", call("5", `["0x0"]`), "application/json", nil, false},
		{"no prefix", call("5", `["`+hexTx[2:]+`"]`), "application/json", nil, false},
		{"escaped string", call("5", `["\u0030x00"]`), "application/json", nil, false},
		{"number param", call("5", `[5]`), "application/json", nil, false},
		{"two params", call("6", `["`+hexTx+`", 1]`), "application/json", nil, false},
		{"no params", call("6", `[]`), "application/json", nil, false},
		{"params object", call("6", `{"a":1}`), "application/json", nil, false},
		{"notification", `{"jsonrpc":"2.0","method":"eth_sendRawTransaction","params":["` + hexTx + `"]}`, "application/json", nil, false},
		{"object id", call(`{"a":1}`, `["`+hexTx+`"]`), "application/json", nil, false},
		{"version 1", `{"jsonrpc":"1.0","id":1,"method":"eth_sendRawTransaction","params":["` + hexTx + `"]}`, "application/json", nil, false},
		{"batch of one", `[` + call("1", `["`+hexTx+`"]`) + `]`, "application/json", nil, true},
		{"batch", ` [` + call("1", `["`+hexTx+`"]`) + `,` + call(`"b"`, `["0x02f8"]`) + `,` + call("3", `["`+hexTx+`"]`) + "]\n", "application/json", nil, true},
		{"batch refused", `[` + call("1", `["`+hexTx+`"]`) + `,` + call("2", `["`+hexTx+`"]`) + `]`, "application/json", errors.New("pool is full"), true},
		{"batch answer too large", `[` + strings.Repeat(call("1", `["`+hexTx+`"]`)+`,`, 19) + call("20", `["`+hexTx+`"]`) + `]`, "application/json", nil, true},
		{"batch over the limit", `[` + strings.Repeat(call("1", `["`+hexTx+`"]`)+`,`, 30) + call("31", `["`+hexTx+`"]`) + `]`, "application/json", nil, false},
		{"batch with another method", `[` + call("1", `["`+hexTx+`"]`) + `,{"jsonrpc":"2.0","id":2,"method":"eth_chainId","params":[]}]`, "application/json", nil, false},
		{"batch with a notification", `[` + call("1", `["`+hexTx+`"]`) + `,{"jsonrpc":"2.0","method":"eth_sendRawTransaction","params":["` + hexTx + `"]}]`, "application/json", nil, false},
		{"batch with a bad item", `[` + call("1", `["`+hexTx+`"]`) + `,` + call("2", `["0x0"]`) + `]`, "application/json", nil, false},
		{"empty batch", `[]`, "application/json", nil, false},
		{"other method", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[],"x":"eth_sendRawTransaction"}`, "application/json", nil, false},
		{"a result too", `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["` + hexTx + `"],"result":1}`, "application/json", nil, false},
		{"bad json", call("1", `["`+hexTx+`"`), "application/json", nil, false},
		{"text content", call("1", `["`+hexTx+`"]`), "text/plain", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.mu.Lock()
			f.sendErr = c.sendErr
			f.pool = nil
			f.mu.Unlock()
			took, direct, generic := answerTwice(t, ts, []byte(c.body), c.ctype, func() {
				f.mu.Lock()
				f.pool = nil
				f.mu.Unlock()
			})
			if !answeredAlike(t, took, c.direct, direct, generic) {
				return
			}
			if c.sendErr == nil && bytes.Contains(direct.Body.Bytes(), []byte(`"result"`)) && len(f.pool) == 0 {
				t.Fatal("pool holds nothing after go-ethereum's answer")
			}
			if c.name == "batch answer too large" && !strings.Contains(direct.Body.String(), "response too large") {
				t.Fatalf("answer %s", direct.Body)
			}
		})
	}
	// Through the whole handler, over a socket, as a client sends it.
	var h common.Hash
	f.mu.Lock()
	f.sendErr, f.pool = nil, nil
	f.mu.Unlock()
	if err := ts.http.Call(&h, "eth_sendRawTransaction", hexutil.Bytes(raw)); err != nil || h != tx.Hash() {
		t.Fatalf("over HTTP: %v %v", h, err)
	}
	if len(f.pool) != 1 {
		t.Fatalf("pool holds %d", len(f.pool))
	}
}

// sendRawPrivacy answers SendRaw with the hash of the transaction, or
// with err when set, and counts the calls; the rest is a fake node's.
type sendRawPrivacy struct {
	Privacy
	mu    sync.Mutex
	err   error
	calls int
}

func (p *sendRawPrivacy) SendRaw(ctx context.Context, raw []byte) (common.Hash, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.err != nil {
		return common.Hash{}, p.err
	}
	return crypto.Keccak256Hash(raw), nil
}

// The direct answer to eea_sendRawTransaction, alone, in a batch, or
// beside eth_sendRawTransaction, is byte for byte go-ethereum's; a call it
// does not take as it is goes on to go-ethereum's server, as does every
// eea_ call of a node that does not serve the namespace.
func TestSendRawEeaAnswersAsGoEthereum(t *testing.T) {
	f := newFake(t)
	p := &sendRawPrivacy{Privacy: newFakePrivacy(t, f, newPrivRegistry(), orgA)}
	ts := serveBackend(t, &privBackend{fakeBackend: f, p: p}, f, Config{BatchItems: 30, ResponseBytes: 1024})
	plain := serve(t, newFake(t), Config{})

	_, hexPriv := signPriv(t, 0, 0, &common.Address{1}, nil, nil, [][]byte{orgB})
	signer := types.LatestSignerForChainID(big.NewInt(1337))
	tx, err := types.SignNewTx(testAccounts(t)[0].Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 3,
		GasTipCap: big.NewInt(0), GasFeeCap: big.NewInt(1e9), Gas: 21000, To: &common.Address{1}, Value: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tx.MarshalBinary()
	hexTx := hexutil.Encode(raw)
	call := func(id, params string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"method":"eea_sendRawTransaction","params":` + params + `}`
	}
	ethCall := func(id string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"method":"eth_sendRawTransaction","params":["` + hexTx + `"]}`
	}
	priv := `["` + hexPriv + `"]`
	cases := []struct {
		name, body string
		sendErr    error
		direct     bool
	}{
		{"number id", call("7", priv), nil, true},
		{"string id", call(`"abc"`, priv), nil, true},
		{"null id", call("null", priv), nil, true},
		{"0x prefix", call("1", `["0x`+hexPriv+`"]`), nil, true},
		{"0X prefix, upper case", call("1", `["0X`+strings.ToUpper(hexPriv)+`"]`), nil, true},
		{"escaped string", call("1", `["\u0030x`+hexPriv+`"]`), nil, false},
		{"spaces", " {\"jsonrpc\" : \"2.0\",\n \"method\":\"eea_sendRawTransaction\", \"params\": [ \"" + hexPriv + "\" ] , \"id\" : 1 }\n", nil, true},
		{"node refuses", call("2", priv), errors.New("payload not delivered to B's nodes"), true},
		{"no such group", call("2", priv), fmt.Errorf("send: %w", ErrNoPrivacyGroup), true},
		{"refused with data", call("2", priv), &Error{Code: 3, Msg: "execution reverted", Data: "0x08c379a0"}, true},
		{"malformed transaction", call("3", `["c0"]`), nil, true},
		{"empty transaction", call("3", `[""]`), nil, true},
		{"not hex", call("4", `["zz"]`), nil, false},
		{"odd hex", call("4", `["0x0"]`), nil, false},
		{"over the bound", call("4", `["`+strings.Repeat("00", privtx.MaxTxBytes+1)+`"]`), nil, false},
		{"null param", call("5", `[null]`), nil, false},
		{"number param", call("5", `[5]`), nil, false},
		{"two params", call("6", `["`+hexPriv+`", 1]`), nil, false},
		{"no params", call("6", `[]`), nil, false},
		{"notification", `{"jsonrpc":"2.0","method":"eea_sendRawTransaction","params":` + priv + `}`, nil, false},
		{"a key in another case", `{"jsonrpc":"2.0","id":1,"method":"eea_sendRawTransaction","Params":` + priv + `}`, nil, false},
		{"an escaped key", `{"jsonrpc":"2.0","id":1,"method":"eea_sendRawTransaction","\u0070arams":` + priv + `}`, nil, false},
		{"a key folded in Unicode", `{"jſonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"eea_sendRawTransaction","params":` + priv + `}`, nil, false},
		{"a key in another case in a batch", `[` + call("1", priv) + `,{"jsonrpc":"2.0","ID":2,"id":3,"method":"eea_sendRawTransaction","params":` + priv + `}]`, nil, false},
		{"a repeated key, the last counts", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","method":"eea_sendRawTransaction","params":` + priv + `}`, nil, true},
		{"a repeated key, the last not a string", `{"jsonrpc":"2.0","id":1,"method":"eea_sendRawTransaction","method":1,"params":` + priv + `}`, nil, false},
		{"batch", `[` + call("1", priv) + `,` + call(`"b"`, `["c0"]`) + `,` + call("3", priv) + `]`, nil, true},
		{"batch with eth", `[` + call("1", priv) + `,` + ethCall("2") + `,` + call("3", priv) + `]`, nil, true},
		{"batch refused", `[` + call("1", priv) + `,` + call("2", priv) + `]`, errors.New("pool is full"), true},
		{"batch answer too large", `[` + strings.Repeat(call("1", priv)+`,`, 19) + call("20", priv) + `]`, nil, true},
		{"batch over the limit", `[` + strings.Repeat(call("1", priv)+`,`, 30) + call("31", priv) + `]`, nil, false},
		{"batch with another method", `[` + call("1", priv) + `,{"jsonrpc":"2.0","id":2,"method":"eth_chainId","params":[]}]`, nil, false},
		{"batch with a bad item", `[` + call("1", priv) + `,` + call("2", `["zz"]`) + `]`, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p.mu.Lock()
			p.err, p.calls = c.sendErr, 0
			p.mu.Unlock()
			var directCalls int
			took, direct, generic := answerTwice(t, ts, []byte(c.body), "application/json", func() {
				p.mu.Lock()
				directCalls = p.calls
				p.mu.Unlock()
				f.mu.Lock()
				f.pool = nil
				f.mu.Unlock()
			})
			if !answeredAlike(t, took, c.direct, direct, generic) {
				return
			}
			p.mu.Lock()
			genericCalls := p.calls - directCalls
			p.mu.Unlock()
			if directCalls != genericCalls {
				t.Fatalf("the node was asked %d times directly, %d times by go-ethereum's server", directCalls, genericCalls)
			}
			if c.name == "batch answer too large" && !strings.Contains(direct.Body.String(), "response too large") {
				t.Fatalf("answer %s", direct.Body)
			}
		})
	}
	// A node without the eea namespace: go-ethereum's server answers.
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(call("1", priv)))
	r.Header.Set("Content-Type", "application/json")
	if plain.serveSendRaw(httptest.NewRecorder(), r) {
		t.Fatal("a node without privacy answered eea_sendRawTransaction directly")
	}
	// Through the whole handler, over a socket, as a client sends it.
	p.mu.Lock()
	p.err = nil
	p.mu.Unlock()
	var h common.Hash
	if err := ts.http.Call(&h, "eea_sendRawTransaction", hexPriv); err != nil || h != crypto.Keccak256Hash(common.FromHex(hexPriv)) {
		t.Fatalf("over HTTP: %v %v", h, err)
	}
}

// FuzzSendRawAsGoEthereum: whatever body Charter's handler answers for
// eth_sendRawTransaction and eea_sendRawTransaction, go-ethereum's server
// answers byte for byte the same, and the node is asked as many times; a
// body it does not answer goes on intact.
func FuzzSendRawAsGoEthereum(f *testing.F) {
	fake := newFake(f)
	p := &sendRawPrivacy{Privacy: newFakePrivacy(f, fake, newPrivRegistry(), orgA)}
	ts := serveBackend(f, &privBackend{fakeBackend: fake, p: p}, fake, Config{BatchItems: 30, ResponseBytes: 1024})
	ptx := &privtx.Tx{Nonce: 0, GasPrice: new(big.Int), Gas: 60_000, To: &common.Address{1}, Value: new(big.Int),
		PrivateFrom: orgA, PrivateFor: [][]byte{orgB}, Restriction: privtx.Restricted}
	if err := privtx.SignTx(ptx, big.NewInt(1337), testAccounts(f)[0].Key); err != nil {
		f.Fatal(err)
	}
	praw, err := ptx.Encode()
	if err != nil {
		f.Fatal(err)
	}
	hexPriv := hex.EncodeToString(praw)
	raw, _ := signedTransfer(f, 2, 0).MarshalBinary()
	eth := `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["` + hexutil.Encode(raw) + `"]}`
	eea := `{"jsonrpc":"2.0","id":"x","method":"eea_sendRawTransaction","params":["` + hexPriv + `"]}`
	for _, s := range []string{eth, eea, `[` + eea + `,` + eth + `]`, `[` + eea + `]`,
		`{"jsonrpc":"2.0","id":2,"method":"eea_sendRawTransaction","params":["c0"]}`,
		`{"jsonrpc":"2.0","id":2,"method":"eea_sendRawTransaction","params":["0x"]}`,
		`{"jsonrpc":"2.0","id":2,"method":"eea_sendRawTransaction","params":["\u0030\u0078c0"]}`,
		`[{"jsonrpc":"2.0","id":2,"method":"eea_sendRawTransaction","params":["zz"]}]`} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, refuse bool) {
		p.mu.Lock()
		p.err, p.calls = nil, 0
		if refuse {
			p.err = &Error{Code: -32000, Msg: "refused", Data: "0x01"}
		}
		p.mu.Unlock()
		fake.mu.Lock()
		fake.pool = nil
		fake.mu.Unlock()
		var directCalls int
		took, direct, generic := answerTwice(t, ts, body, "application/json", func() {
			p.mu.Lock()
			directCalls = p.calls
			p.calls = 0
			p.mu.Unlock()
			fake.mu.Lock()
			fake.pool = nil
			fake.mu.Unlock()
		})
		if !took {
			return
		}
		p.mu.Lock()
		genericCalls := p.calls
		p.mu.Unlock()
		if !sameAnswer(direct, generic) || directCalls != genericCalls {
			t.Fatalf("direct answer %s (%d calls)\ngo-ethereum's %s (%d calls)", describeAnswer(direct), directCalls, describeAnswer(generic), genericCalls)
		}
	})
}

// answerTwice hands body to the direct path and tells whether it answered;
// when it did not, the body must have gone on unchanged. When it did,
// between resets what the answer changed and go-ethereum's server answers
// the same body: both answers are returned.
func answerTwice(t *testing.T, ts *testServer, body []byte, ctype string, between func()) (took bool, direct, generic *httptest.ResponseRecorder) {
	t.Helper()
	req := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		return r
	}
	direct = httptest.NewRecorder()
	r := req()
	if !ts.serveSendRaw(direct, r) {
		if rest, _ := io.ReadAll(r.Body); !bytes.Equal(rest, body) {
			t.Fatalf("the body went on as %q", rest)
		}
		return false, nil, nil
	}
	between()
	generic = httptest.NewRecorder()
	ts.rpc.ServeHTTP(generic, req())
	return true, direct, generic
}

// sameAnswer reports whether two answers are the same to a client.
// answeredAlike fails the test unless the direct handler took the body
// exactly when wantDirect says and, when it did, answered as go-ethereum's
// server did; it reports whether there is a direct answer to check further.
func answeredAlike(t *testing.T, took, wantDirect bool, direct, generic *httptest.ResponseRecorder) bool {
	t.Helper()
	if took != wantDirect {
		t.Fatalf("answered directly: %v, want %v", took, wantDirect)
	}
	if took && !sameAnswer(direct, generic) {
		t.Fatalf("direct answer %s\ngo-ethereum's %s", describeAnswer(direct), describeAnswer(generic))
	}
	return took
}

func sameAnswer(a, b *httptest.ResponseRecorder) bool {
	return a.Code == b.Code && a.Body.String() == b.Body.String() && a.Header().Get("Content-Type") == b.Header().Get("Content-Type")
}

func describeAnswer(a *httptest.ResponseRecorder) string {
	return fmt.Sprintf("%d %q %q", a.Code, a.Header().Get("Content-Type"), a.Body)
}
