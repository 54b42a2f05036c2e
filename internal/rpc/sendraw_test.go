package rpc

import (
	"bytes"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
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
			req := func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(c.body))
				r.Header.Set("Content-Type", c.ctype)
				return r
			}
			direct := httptest.NewRecorder()
			r := req()
			took := ts.serveSendRaw(direct, r)
			if took != c.direct {
				t.Fatalf("answered directly: %v, want %v", took, c.direct)
			}
			if !took {
				rest, _ := io.ReadAll(r.Body)
				if string(rest) != c.body {
					t.Fatalf("the body went on as %q", rest)
				}
				return
			}
			f.mu.Lock()
			f.pool = nil
			f.mu.Unlock()
			generic := httptest.NewRecorder()
			ts.rpc.ServeHTTP(generic, req())
			if direct.Code != generic.Code || direct.Body.String() != generic.Body.String() ||
				direct.Header().Get("Content-Type") != generic.Header().Get("Content-Type") {
				t.Fatalf("direct answer %d %q %q\ngo-ethereum's %d %q %q", direct.Code, direct.Header().Get("Content-Type"), direct.Body,
					generic.Code, generic.Header().Get("Content-Type"), generic.Body)
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
