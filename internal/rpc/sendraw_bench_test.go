package rpc

import (
	"bytes"
	"encoding/hex"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/privacy/privtx"
)

// BenchmarkSendRawTransaction is the server's own cost of one
// eth_sendRawTransaction request over HTTP (handler only, no socket), with
// a pool that takes every transaction without checking it: what JSON-RPC
// adds to each submitted transaction.
func BenchmarkSendRawTransaction(b *testing.B) {
	f := newFake(b)
	f.sendNoop = true
	ts := serve(b, f, Config{})
	acct := testAccounts(b)[0]
	signer := types.LatestSignerForChainID(big.NewInt(1337))
	const n = 256
	bodies := make([][]byte, n)
	for i := range bodies {
		tx, err := types.SignNewTx(acct.Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: uint64(i),
			GasTipCap: big.NewInt(0), GasFeeCap: big.NewInt(1e9), Gas: 21000, To: &common.Address{1}, Value: big.NewInt(1)})
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := tx.MarshalBinary()
		bodies[i] = []byte(`{"jsonrpc":"2.0","id":7,"method":"eth_sendRawTransaction","params":["` + hexutil.Encode(raw) + `"]}`)
	}
	benchSendRawWays(b, ts, bodies)
}

// BenchmarkSendRawEea is BenchmarkSendRawTransaction for
// eea_sendRawTransaction, with a node that answers every private
// transaction with its hash at once: what JSON-RPC adds to each private
// transaction submitted (sealing and the marker are the node's, not
// measured here).
func BenchmarkSendRawEea(b *testing.B) {
	f := newFake(b)
	p := &sendRawPrivacy{Privacy: newFakePrivacy(b, f, newPrivRegistry(), orgA)}
	ts := serveBackend(b, &privBackend{fakeBackend: f, p: p}, f, Config{})
	const n = 256
	bodies := make([][]byte, n)
	for i := range bodies {
		tx := &privtx.Tx{Nonce: uint64(i), GasPrice: new(big.Int), Gas: 60_000, To: &common.Address{1}, Value: new(big.Int),
			Data: make([]byte, 68), PrivateFrom: orgA, PrivacyGroupID: bytes.Repeat([]byte{7}, 32), Restriction: privtx.Restricted}
		if err := privtx.SignTx(tx, big.NewInt(1337), testAccounts(b)[0].Key); err != nil {
			b.Fatal(err)
		}
		raw, err := tx.Encode()
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = []byte(`{"jsonrpc":"2.0","id":7,"method":"eea_sendRawTransaction","params":["` + hex.EncodeToString(raw) + `"]}`)
	}
	benchSendRawWays(b, ts, bodies)
}

// benchSendRawWays submits bodies (one call each) to the server's handler
// and to go-ethereum's server alone (generic, as every request went
// before), one a request and in batches of 100 calls, as the bench and
// ethers send them. ns/op is a call's in every way: a batch's time over
// its 100 calls.
func benchSendRawWays(b *testing.B, ts *testServer, bodies [][]byte) {
	batches := make([][]byte, len(bodies)/100)
	for i := range batches {
		batches[i] = append(append([]byte("["), bytes.Join(bodies[100*i:100*i+100], []byte(","))...), ']')
	}
	for _, way := range []struct {
		name   string
		h      http.Handler
		bodies [][]byte
		calls  int
	}{{"charter", ts.Handler(), bodies, 1}, {"generic", ts.rpc, bodies, 1},
		{"batch100/charter", ts.Handler(), batches, 100}, {"batch100/generic", ts.rpc, batches, 100}} {
		b.Run(way.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i += way.calls {
				req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(way.bodies[(i/way.calls)%len(way.bodies)]))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				way.h.ServeHTTP(rec, req)
				if rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte(`"result":"0x`)) {
					b.Fatalf("%d %s", rec.Code, rec.Body.String())
				}
			}
		})
	}
}
