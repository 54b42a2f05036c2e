package node

import (
	"context"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/rlp"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/charter-ledger/charter/internal/bench/token"
)

func TestGetProofVerifiesAgainstTheStateRoot(t *testing.T) {
	tn := startNode(t, t.TempDir())
	ctx := context.Background()
	owner := tn.accts[0]
	deploy := tn.sign(t, owner.Key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Gas: 2_000_000, GasFeeCap: big.NewInt(1), GasTipCap: new(big.Int), Data: token.DeployData(big.NewInt(77))})
	if err := tn.client.SendTransaction(ctx, deploy); err != nil {
		t.Fatal(err)
	}
	r := tn.waitReceipt(t, deploy.Hash())
	head, _ := tn.client.HeaderByNumber(ctx, r.BlockNumber)
	// Slot 1 is balanceOf: the owner's balance lives at keccak(owner, 1).
	slot := crypto.Keccak256Hash(common.LeftPadBytes(owner.Address.Bytes(), 32), common.LeftPadBytes([]byte{1}, 32))
	var res struct {
		AccountProof []hexutil.Bytes `json:"accountProof"`
		Balance      *hexutil.Big    `json:"balance"`
		Nonce        hexutil.Uint64  `json:"nonce"`
		StorageHash  common.Hash     `json:"storageHash"`
		CodeHash     common.Hash     `json:"codeHash"`
		StorageProof []struct {
			Value *hexutil.Big    `json:"value"`
			Proof []hexutil.Bytes `json:"proof"`
		} `json:"storageProof"`
	}
	if err := tn.rpc.Call(&res, "eth_getProof", r.ContractAddress, []string{slot.Hex()}, hexutil.EncodeBig(r.BlockNumber)); err != nil {
		t.Fatal(err)
	}
	verify := func(root common.Hash, key []byte, proof []hexutil.Bytes) []byte {
		db := memorydb.New()
		for _, node := range proof {
			db.Put(crypto.Keccak256(node), node)
		}
		val, err := trie.VerifyProof(root, crypto.Keccak256(key), db)
		if err != nil {
			t.Fatalf("proof does not verify: %v", err)
		}
		return val
	}
	acct := verify(head.Root, r.ContractAddress.Bytes(), res.AccountProof)
	var stored types.StateAccount
	if err := rlp.DecodeBytes(acct, &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Root != res.StorageHash || common.BytesToHash(stored.CodeHash) != res.CodeHash || stored.Nonce != uint64(res.Nonce) {
		t.Fatal("proven account differs from the answer")
	}
	val := verify(res.StorageHash, slot.Bytes(), res.StorageProof[0].Proof)
	var content []byte
	rlp.DecodeBytes(val, &content)
	if new(big.Int).SetBytes(content).Int64() != 77 || res.StorageProof[0].Value.ToInt().Int64() != 77 {
		t.Fatalf("proven balance %x, answer %v; want 77", content, res.StorageProof[0].Value)
	}
}

func TestMiscMethods(t *testing.T) {
	tn := startNode(t, t.TempDir())
	var s string
	if err := tn.rpc.Call(&s, "web3_clientVersion"); err != nil || !strings.HasPrefix(s, "Charter/") {
		t.Fatalf("web3_clientVersion = %q, %v", s, err)
	}
	if err := tn.rpc.Call(&s, "net_version"); err != nil || s != "1337" {
		t.Fatalf("net_version = %q, %v", s, err)
	}
	var b bool
	if err := tn.rpc.Call(&b, "eth_syncing"); err != nil || b {
		t.Fatalf("eth_syncing = %v, %v", b, err)
	}
	if err := tn.rpc.Call(&b, "net_listening"); err != nil || !b {
		t.Fatalf("net_listening = %v, %v", b, err)
	}
	if err := tn.rpc.Call(&s, "eth_gasPrice"); err != nil || s != "0x1" {
		t.Fatalf("eth_gasPrice = %q, %v", s, err)
	}
	tx := tn.sign(t, tn.accts[0].Key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Gas: 21000, GasFeeCap: big.NewInt(10), GasTipCap: big.NewInt(3), To: &common.Address{9}})
	if err := tn.client.SendTransaction(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	tn.waitReceipt(t, tx.Hash())
	var fh struct {
		Oldest  *hexutil.Big     `json:"oldestBlock"`
		BaseFee []*hexutil.Big   `json:"baseFeePerGas"`
		Ratio   []float64        `json:"gasUsedRatio"`
		Reward  [][]*hexutil.Big `json:"reward"`
	}
	if err := tn.rpc.Call(&fh, "eth_feeHistory", "0x2", "latest", []float64{50}); err != nil {
		t.Fatal(err)
	}
	if fh.Oldest.ToInt().Int64() != 0 || len(fh.BaseFee) != 3 || len(fh.Ratio) != 2 || fh.Reward[1][0].ToInt().Int64() != 3 {
		t.Fatalf("eth_feeHistory = %+v", fh)
	}
	// A bad parameter names its position.
	err := tn.rpc.Call(&s, "eth_getBalance", "0xnotanaddress", "latest")
	if rpcErr, ok := err.(gethrpc.Error); !ok || rpcErr.ErrorCode() != -32602 || !strings.Contains(err.Error(), "argument 0") {
		t.Fatalf("bad address: %v", err)
	}
}

func TestPendingTransactionSubscription(t *testing.T) {
	tn := startNode(t, t.TempDir())
	ws, err := gethrpc.Dial("ws://" + tn.RPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hashes := make(chan common.Hash, 4)
	sub, err := ws.EthSubscribe(ctx, hashes, "newPendingTransactions")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	tx := tn.sign(t, tn.accts[3].Key, transfer(0, common.Address{7}, 1))
	if err := tn.client.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-hashes:
		if h != tx.Hash() {
			t.Fatalf("notified %s, want %s", h, tx.Hash())
		}
	case err := <-sub.Err():
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("no pending-transaction notification")
	}
}

// A signed transaction sent again once it is in a block (ethers' 250 ms
// nonce cache makes scripts do this) answers where it went.
func TestResentIncludedTransactionAnswersAlreadyIncluded(t *testing.T) {
	tn := startNode(t, t.TempDir())
	ctx := context.Background()
	tx := tn.sign(t, tn.accts[4].Key, transfer(0, common.Address{8}, 1))
	if err := tn.client.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	r := tn.waitReceipt(t, tx.Hash())
	err := tn.client.SendTransaction(ctx, tx)
	want := fmt.Sprintf("already included in block %d", r.BlockNumber.Uint64())
	if rpcErr, ok := err.(gethrpc.Error); !ok || rpcErr.ErrorCode() != -32000 || !strings.Contains(err.Error(), want) {
		t.Fatalf("re-sent transaction: %v; want -32000 %q", err, want)
	}
}

// A node allows no browser origin unless configured: a page elsewhere
// cannot read it through someone's browser.
func TestNodeRefusesForeignOrigins(t *testing.T) {
	tn := startNode(t, t.TempDir())
	req, _ := http.NewRequest(http.MethodPost, "http://"+tn.RPCAddr(), strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://intranet-page.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin: %d, Access-Control-Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := gethrpc.DialWebsocket(ctx, "ws://"+tn.RPCAddr(), "https://intranet-page.example"); err == nil {
		c.Close()
		t.Fatal("WebSocket from a foreign origin was accepted")
	}
}

// The REST gateway follows the same origin policy: a foreign page is
// refused, an allowed one gets its preflight answered with the gateway's
// headers.
func TestGatewayFollowsTheOriginPolicy(t *testing.T) {
	tn := startNodeWith(t, t.TempDir(), func(c *Config) { c.RPC.CORSDomains = []string{"https://app.example.org"} })
	do := func(method, origin string) *http.Response {
		req, _ := http.NewRequest(method, "http://"+tn.RPCAddr()+"/api/v1/blocks", nil)
		req.Header.Set("Origin", origin)
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "POST")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := do(http.MethodGet, "https://intranet-page.example"); r.StatusCode != http.StatusForbidden || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin on the gateway: %d, allow-origin %q", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
	}
	if r := do(http.MethodGet, "https://app.example.org"); r.StatusCode != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.org" {
		t.Fatalf("allowed origin on the gateway: %d, allow-origin %q", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
	}
	r := do(http.MethodOptions, "https://app.example.org")
	if r.StatusCode != http.StatusNoContent || !strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "Idempotency-Key") {
		t.Fatalf("preflight: %d, allow-headers %q", r.StatusCode, r.Header.Get("Access-Control-Allow-Headers"))
	}
	// A browser deletes an event stream with DELETE: the preflight admits it.
	req, _ := http.NewRequest(http.MethodOptions, "http://"+tn.RPCAddr()+StreamsPath+"/orders", nil)
	req.Header.Set("Origin", "https://app.example.org")
	req.Header.Set("Access-Control-Request-Method", "DELETE")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "DELETE") {
		t.Fatalf("streams preflight for DELETE: %d, allow-methods %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Methods"))
	}
}

// TestNodeRefusesOversizedHeaders: request headers past the listener's
// bound (64 KiB) get 431 before any handler runs; a large bearer token
// well within it is read.
func TestNodeRefusesOversizedHeaders(t *testing.T) {
	tn := startNode(t, t.TempDir())
	post := func(header int) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+tn.RPCAddr(), strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Padding", strings.Repeat("a", header))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post(16 << 10); st != http.StatusOK {
		t.Fatalf("16 KiB of headers: %d", st)
	}
	if st := post(80 << 10); st != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("80 KiB of headers: %d, want 431", st)
	}
}
