package rpc

import (
	"bytes"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/ledger"
)

func TestChainAndNodeInfo(t *testing.T) {
	f := newFake(t)
	f.addBlock(nil, nil)
	ts := serve(t, f, Config{})
	for _, c := range []struct {
		method string
		want   string
	}{
		{"eth_chainId", `"0x539"`},
		{"eth_blockNumber", `"0x1"`},
		{"net_version", `"1337"`},
		{"net_listening", `true`},
		{"net_peerCount", `"0x3"`},
		{"eth_syncing", `false`},
		{"eth_mining", `false`},
		{"eth_gasPrice", `"0x1"`},
		{"eth_maxPriorityFeePerGas", `"0x0"`},
		{"eth_blobBaseFee", `"0x1"`},
		{"eth_coinbase", `"0xc000000000000000000000000000000000000000"`},
		{"eth_accounts", `[]`},
		{"txpool_status", `{"pending":"0x0","queued":"0x0"}`},
	} {
		var got json.RawMessage
		if err := ts.http.Call(&got, c.method); err != nil {
			t.Fatalf("%s: %v", c.method, err)
		}
		if string(got) != c.want {
			t.Errorf("%s = %s, want %s", c.method, got, c.want)
		}
	}
	var v string
	if err := ts.http.Call(&v, "web3_clientVersion"); err != nil || !strings.HasPrefix(v, "Charter/v") {
		t.Errorf("web3_clientVersion = %q, %v", v, err)
	}
	var h hexutil.Bytes
	if err := ts.http.Call(&h, "web3_sha3", "0x68656c6c6f"); err != nil || common.BytesToHash(h) != crypto.Keccak256Hash([]byte("hello")) {
		t.Errorf("web3_sha3 = %x, %v", h, err)
	}
}

// post sends a raw JSON-RPC body over HTTP and decodes the answer.
func post(t *testing.T, addr, body string) []map[string]any {
	t.Helper()
	resp, err := http.Post("http://"+addr, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatalf("answer to %s: %v", body, err)
	}
	var out []map[string]any
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	var one map[string]any
	if err := json.Unmarshal(raw, &one); err != nil {
		t.Fatal(err)
	}
	return []map[string]any{one}
}

func errorOf(t *testing.T, m map[string]any) (int, string) {
	t.Helper()
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error in %v", m)
	}
	return int(e["code"].(float64)), e["message"].(string)
}

func TestBadRequestsAnswerPreciseErrors(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{})
	var out any
	rpcError(t, ts.http.Call(&out, "eth_getBalance", "0xnotanaddress", "latest"), -32602, "argument 0")
	rpcError(t, ts.http.Call(&out, "eth_getStorageAt", returnAddr, "0x"+strings.Repeat("1", 66), "latest"), -32602, "invalid argument 1: storage key longer than 32 bytes")
	rpcError(t, ts.http.Call(&out, "eth_getStorageAt", returnAddr, "0xzz", "latest"), -32602, "invalid argument 1: storage key is not hex")
	rpcError(t, ts.http.Call(&out, "eth_nosuchmethod"), -32601, "eth_nosuchmethod")
	rpcError(t, ts.http.Call(&out, "eth_call", map[string]any{"to": returnAddr, "data": "0x01", "input": "0x02"}, "latest"), -32602, `both "data" and "input"`)
	rpcError(t, ts.http.Call(&out, "eth_call", map[string]any{"to": returnAddr, "gasPrice": "0x1", "maxFeePerGas": "0x1"}, "latest"), -32602, "both gasPrice and")
	rpcError(t, ts.http.Call(&out, "eth_estimateGas", map[string]any{"to": returnAddr, "value": "-0x1"}), -32602, "argument 0")
	rpcError(t, ts.http.Call(&out, "eth_feeHistory", "0x2", "latest", []float64{50, 10}), -32602, "invalid argument 2: reward percentiles")
	rpcError(t, ts.http.Call(&out, "eth_feeHistory", "zz", "latest", nil), -32602, "argument 0")
	keys := make([]string, maxProofKeys+1)
	for i := range keys {
		keys[i] = "0x1"
	}
	rpcError(t, ts.http.Call(&out, "eth_getProof", returnAddr, keys, "latest"), -32602, "invalid argument 1: at most 1024 storage keys")
	rpcError(t, ts.http.Call(&out, "eth_getProof", returnAddr, []string{"0xzz"}, "latest"), -32602, "invalid argument 1: key 0")
	rpcError(t, ts.http.Call(&out, "eth_sendRawTransaction", "0x02c0"), -32602, "invalid argument 0: transaction does not decode")
	// Malformed JSON: -32700.
	code, msg := errorOf(t, post(t, ts.addr, `{"jsonrpc":"2.0","id":1,"method":`)[0])
	if code != -32700 {
		t.Errorf("malformed JSON: %d %s", code, msg)
	}
}

func TestBlockTagsAndLookups(t *testing.T) {
	f := newFake(t)
	tx1, tx2 := signedTransfer(t, 0, 0), signedTransfer(t, 1, 0)
	b1 := f.addBlock([]*types.Transaction{tx1, tx2}, nil)
	f.addBlock(nil, nil)
	f.addBlock(nil, nil)
	f.setFinalized(1)
	ts := serve(t, f, Config{})
	number := func(tag any) any {
		var blk map[string]any
		if err := ts.http.Call(&blk, "eth_getBlockByNumber", tag, false); err != nil {
			t.Fatalf("eth_getBlockByNumber(%v): %v", tag, err)
		}
		if blk == nil {
			return nil
		}
		return blk["number"]
	}
	for tag, want := range map[string]any{"latest": "0x3", "pending": "0x3", "earliest": "0x0", "finalized": "0x1", "safe": "0x1", "0x2": "0x2", "0x9": nil} {
		if got := number(tag); got != want {
			t.Errorf("block %s: number %v, want %v", tag, got, want)
		}
	}
	// By hash, with full transactions.
	var blk map[string]any
	if err := ts.http.Call(&blk, "eth_getBlockByHash", b1.Hash(), true); err != nil {
		t.Fatal(err)
	}
	txs := blk["transactions"].([]any)
	if blk["hash"] != b1.Hash().Hex() || len(txs) != 2 || txs[1].(map[string]any)["hash"] != tx2.Hash().Hex() ||
		txs[1].(map[string]any)["from"] != strings.ToLower(testAccounts(t)[1].Address.Hex()) {
		t.Fatalf("block by hash: %v", blk)
	}
	if err := ts.http.Call(&blk, "eth_getBlockByHash", common.Hash{1}, false); err != nil || blk != nil {
		t.Fatalf("unknown hash: %v, %v", blk, err)
	}
	var n *hexutil.Uint
	if err := ts.http.Call(&n, "eth_getBlockTransactionCountByNumber", "0x1"); err != nil || n == nil || *n != 2 {
		t.Fatalf("count by number: %v, %v", n, err)
	}
	if err := ts.http.Call(&n, "eth_getBlockTransactionCountByHash", b1.Hash()); err != nil || n == nil || *n != 2 {
		t.Fatalf("count by hash: %v, %v", n, err)
	}
	if err := ts.http.Call(&n, "eth_getBlockTransactionCountByNumber", "0x7"); err != nil || n != nil {
		t.Fatalf("count of unknown block: %v, %v", n, err)
	}
	var tx map[string]any
	if err := ts.http.Call(&tx, "eth_getTransactionByBlockNumberAndIndex", "0x1", "0x1"); err != nil || tx["hash"] != tx2.Hash().Hex() {
		t.Fatalf("by number and index: %v, %v", tx, err)
	}
	if err := ts.http.Call(&tx, "eth_getTransactionByBlockHashAndIndex", b1.Hash(), "0x0"); err != nil || tx["hash"] != tx1.Hash().Hex() {
		t.Fatalf("by hash and index: %v, %v", tx, err)
	}
	if err := ts.http.Call(&tx, "eth_getTransactionByBlockNumberAndIndex", "0x1", "0x5"); err != nil || tx != nil {
		t.Fatalf("index out of range: %v, %v", tx, err)
	}
	if err := ts.http.Call(&tx, "eth_getTransactionByHash", tx2.Hash()); err != nil || tx["blockNumber"] != "0x1" || tx["transactionIndex"] != "0x1" {
		t.Fatalf("by hash: %v, %v", tx, err)
	}
	var r map[string]any
	if err := ts.http.Call(&r, "eth_getTransactionReceipt", tx2.Hash()); err != nil || r["blockHash"] != b1.Hash().Hex() || r["status"] != "0x1" ||
		r["from"] != strings.ToLower(testAccounts(t)[1].Address.Hex()) {
		t.Fatalf("receipt: %v, %v", r, err)
	}
	var rs []map[string]any
	if err := ts.http.Call(&rs, "eth_getBlockReceipts", "0x1"); err != nil || len(rs) != 2 || rs[1]["transactionHash"] != tx2.Hash().Hex() {
		t.Fatalf("block receipts: %v, %v", rs, err)
	}
	if err := ts.http.Call(&rs, "eth_getBlockReceipts", "0x8"); err != nil || rs != nil {
		t.Fatalf("receipts of unknown block: %v, %v", rs, err)
	}
	// State at a tag and at an unknown block.
	var bal hexutil.Big
	if err := ts.http.Call(&bal, "eth_getBalance", testAccounts(t)[0].Address, "earliest"); err != nil || bal.ToInt().Cmp(chain.DevBalance) != 0 {
		t.Fatalf("balance: %v, %v", bal.ToInt(), err)
	}
	var out any
	rpcError(t, ts.http.Call(&out, "eth_getBalance", testAccounts(t)[0].Address, "0x63"), -32000, "header not found")
	rpcError(t, ts.http.Call(&out, "eth_getBalance", testAccounts(t)[0].Address, map[string]any{"blockHash": common.Hash{2}}), -32000, "header not found")
	var code hexutil.Bytes
	if err := ts.http.Call(&code, "eth_getCode", loopAddr, map[string]any{"blockHash": b1.Hash()}); err != nil || !bytes.Equal(code, []byte{0x5b, 0x60, 0x00, 0x56}) {
		t.Fatalf("code: %x, %v", code, err)
	}
	var word hexutil.Bytes
	if err := ts.http.Call(&word, "eth_getStorageAt", loopAddr, "0x0", "latest"); err != nil || len(word) != 32 {
		t.Fatalf("storage: %x, %v", word, err)
	}
	var fh struct {
		Oldest  *hexutil.Big   `json:"oldestBlock"`
		BaseFee []*hexutil.Big `json:"baseFeePerGas"`
		Ratio   []float64      `json:"gasUsedRatio"`
	}
	if err := ts.http.Call(&fh, "eth_feeHistory", 2, "0x1", []float64{}); err != nil || fh.Oldest.ToInt().Int64() != 0 || len(fh.BaseFee) != 3 || len(fh.Ratio) != 2 {
		t.Fatalf("fee history: %+v, %v", fh, err)
	}
}

func TestSendRawTransaction(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{})
	tx := signedTransfer(t, 0, 0)
	raw, _ := tx.MarshalBinary()
	var hash common.Hash
	if err := ts.http.Call(&hash, "eth_sendRawTransaction", hexutil.Bytes(raw)); err != nil || hash != tx.Hash() {
		t.Fatalf("send: %v, %v", hash, err)
	}
	// Pending: found by hash, no receipt, counted by the pool.
	var got map[string]any
	if err := ts.http.Call(&got, "eth_getTransactionByHash", tx.Hash()); err != nil || got["blockHash"] != nil || got["hash"] != tx.Hash().Hex() {
		t.Fatalf("pending transaction: %v, %v", got, err)
	}
	if err := ts.http.Call(&got, "eth_getTransactionReceipt", tx.Hash()); err != nil || got != nil {
		t.Fatalf("receipt of a pending transaction: %v, %v", got, err)
	}
	var nonce hexutil.Uint64
	if err := ts.http.Call(&nonce, "eth_getTransactionCount", testAccounts(t)[0].Address, "pending"); err != nil || nonce != 1 {
		t.Fatalf("pending nonce: %v, %v", nonce, err)
	}
	var content map[string]map[string]map[string]map[string]any
	if err := ts.http.Call(&content, "txpool_content"); err != nil || content["pending"][testAccounts(t)[0].Address.Hex()]["0"]["hash"] != tx.Hash().Hex() {
		t.Fatalf("txpool_content: %v, %v", content, err)
	}
	// The pool's refusal is -32000 with its reason.
	f.mu.Lock()
	f.sendErr = errorString("nonce too low: next nonce 5, tx nonce 3")
	f.mu.Unlock()
	var out any
	other, _ := signedTransfer(t, 1, 0).MarshalBinary()
	rpcError(t, ts.http.Call(&out, "eth_sendRawTransaction", hexutil.Bytes(other)), -32000, "nonce too low: next nonce 5, tx nonce 3")
	// Oversized: refused before decoding.
	big := make([]byte, f.spec.MaxTxBytes+1)
	rpcError(t, ts.http.Call(&out, "eth_sendRawTransaction", hexutil.Bytes(big)), -32000, "oversized data")
}

type errorString string

func (e errorString) Error() string { return string(e) }

// A transaction sent again once it is in a block answers where it went,
// not the pool's "nonce too low".
func TestResentIncludedTransactionAnswersAlreadyIncluded(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{})
	tx := signedTransfer(t, 2, 0)
	raw, _ := tx.MarshalBinary()
	var hash common.Hash
	if err := ts.http.Call(&hash, "eth_sendRawTransaction", hexutil.Bytes(raw)); err != nil {
		t.Fatal(err)
	}
	f.addBlock(nil, nil)
	blk := f.seal() // block 2
	if blk.NumberU64() != 2 || len(blk.Transactions()) != 1 {
		t.Fatalf("sealed %d with %d transactions", blk.NumberU64(), len(blk.Transactions()))
	}
	f.mu.Lock()
	f.sendErr = errorString("nonce too low: next nonce 1, tx nonce 0") // what the pool would say
	f.mu.Unlock()
	var out any
	rpcError(t, ts.http.Call(&out, "eth_sendRawTransaction", hexutil.Bytes(raw)), -32000, "already included in block 2")
}

func TestCallsAndReverts(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{})
	var ret hexutil.Bytes
	if err := ts.http.Call(&ret, "eth_call", map[string]any{"to": returnAddr}, "latest"); err != nil || new(big.Int).SetBytes(ret).Int64() != 42 {
		t.Fatalf("eth_call: %x, %v", ret, err)
	}
	// A revert: code 3, the reason in the message, the raw data in data.
	err := ts.http.Call(&ret, "eth_call", map[string]any{"to": revertAddr}, "latest")
	rpcError(t, err, 3, "execution reverted: nope")
	if de, ok := err.(interface{ ErrorData() any }); !ok || de.ErrorData() != hexutil.Encode(revertData()) {
		t.Fatalf("revert data: %v", err)
	}
	var gas hexutil.Uint64
	rpcError(t, ts.http.Call(&gas, "eth_estimateGas", map[string]any{"to": revertAddr}), 3, "execution reverted: nope")
	if err := ts.http.Call(&gas, "eth_estimateGas", map[string]any{"from": testAccounts(t)[0].Address, "to": common.Address{9}, "value": "0x1"}); err != nil || gas != 21_000 {
		t.Fatalf("estimate of a transfer: %d, %v", gas, err)
	}
	// Out of gas within the caller's own gas, and even at the cap.
	rpcError(t, ts.http.Call(&ret, "eth_call", map[string]any{"to": loopAddr, "gas": "0x10000"}, "latest"), -32000, "out of gas")
	rpcError(t, ts.http.Call(&gas, "eth_estimateGas", map[string]any{"to": loopAddr}), -32000, "gas required exceeds allowance")
	// A call at an unknown block.
	rpcError(t, ts.http.Call(&ret, "eth_call", map[string]any{"to": returnAddr}, "0x44"), -32000, "header not found")
}

func TestCallIsCutAtTheEVMTimeout(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{EVMTimeout: 50 * time.Millisecond, GasCap: 1 << 40, BatchGas: 1 << 41})
	start := time.Now()
	var ret hexutil.Bytes
	rpcError(t, ts.http.Call(&ret, "eth_call", map[string]any{"to": loopAddr}, "latest"), -32000, "execution aborted (timeout = 50ms")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the call ran %s", d)
	}
}

func TestGetProofAnswersTheAccount(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{})
	var res AccountResult
	if err := ts.http.Call(&res, "eth_getProof", testAccounts(t)[0].Address, []string{"0x0"}, "latest"); err != nil {
		t.Fatal(err)
	}
	if res.Balance.ToInt().Cmp(chain.DevBalance) != 0 || len(res.AccountProof) == 0 || len(res.StorageProof) != 1 || res.CodeHash != types.EmptyCodeHash {
		t.Fatalf("proof: %+v", res)
	}
}

func TestDevSigningMethods(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{})
	var out any
	from := testAccounts(t)[0].Address
	rpcError(t, ts.http.Call(&out, "eth_sendTransaction", map[string]any{"from": from, "to": common.Address{1}}), -32000, "no unlocked accounts")
	rpcError(t, ts.http.Call(&out, "personal_sign", "0x01", from), -32000, "no unlocked accounts")

	f.dev = testAccounts(t)[:2]
	var accts []common.Address
	if err := ts.http.Call(&accts, "eth_accounts"); err != nil || len(accts) != 2 || accts[1] != testAccounts(t)[1].Address {
		t.Fatalf("eth_accounts: %v, %v", accts, err)
	}
	var hash common.Hash
	if err := ts.http.Call(&hash, "eth_sendTransaction", map[string]any{"from": from, "to": common.Address{1}, "value": "0x5"}); err != nil {
		t.Fatal(err)
	}
	tx := f.PoolTransaction(hash)
	if tx == nil || tx.Value().Int64() != 5 || tx.Gas() != 21_000 {
		t.Fatalf("pool holds %v", tx)
	}
	if sender, _ := types.Sender(f.signer, tx); sender != from {
		t.Fatalf("signed by %s", sender)
	}
	rpcError(t, ts.http.Call(&out, "eth_sendTransaction", map[string]any{"from": common.Address{7}, "to": common.Address{1}}), -32000, "unknown account")
	rpcError(t, ts.http.Call(&out, "eth_sendTransaction", map[string]any{"to": common.Address{1}}), -32602, "from is required")
	rpcError(t, ts.http.Call(&out, "eth_signTransaction", map[string]any{"from": from, "to": common.Address{1}, "chainId": "0x1"}), -32602, "chainId 1, this chain is 1337")
	var sig hexutil.Bytes
	if err := ts.http.Call(&sig, "personal_sign", "0x68656c6c6f", from); err != nil || len(sig) != 65 || sig[64] < 27 {
		t.Fatalf("personal_sign: %x, %v", sig, err)
	}
}

func TestCharterNamespaceReadsTheRegistry(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{})
	var m Members
	if err := ts.http.Call(&m, "charter_members"); err != nil {
		t.Fatal(err)
	}
	if len(m.Organizations) != 1 || m.Organizations[0].Name != "dev" {
		t.Fatalf("charter_members: %+v", m)
	}
}

func TestBatchRequestLimit(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{BatchItems: 3})
	body := `[` + strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},`, 3) + `{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}]`
	out := post(t, ts.addr, body)
	if len(out) != 1 {
		t.Fatalf("answers %v", out)
	}
	if code, msg := errorOf(t, out[0]); code != -32600 || !strings.Contains(msg, "batch too large") {
		t.Fatalf("batch of 4 over a limit of 3: %d %s", code, msg)
	}
	if out := post(t, ts.addr, `[`+strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},`, 2)+`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}]`); len(out) != 3 || out[2]["result"] != "0x539" {
		t.Fatalf("batch of 3: %v", out)
	}
}

// A state the ledger no longer keeps is a JSON-RPC error naming the
// block and the window, for reads, calls and proofs alike.
func TestStateOutsideWindowNamesIt(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{})
	f.mu.Lock()
	f.stateErr = &ledger.StateNotKeptError{Window: 128}
	f.mu.Unlock()
	const want = "state of block 0 is not kept: this node keeps the last 128 blocks (--state.history)"
	addr := testAccounts(t)[0].Address
	var out any
	rpcError(t, ts.http.Call(&out, "eth_getBalance", addr, "0x0"), -32000, want)
	rpcError(t, ts.http.Call(&out, "eth_getProof", addr, []string{}, "0x0"), -32000, want)
	rpcError(t, ts.http.Call(&out, "eth_call", map[string]any{"from": addr, "to": addr}, "0x0"), -32000, want)
}
