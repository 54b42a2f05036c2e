package node

import (
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/console"
	"github.com/charter-ledger/charter/internal/system"
)

func httpDo(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp, string(body)
}

func get(t *testing.T, url string) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	return httpDo(t, req)
}

// The console's page is served under /console/ with a strict content
// security policy, and its script stays within the budget.
func TestConsolePageIsServed(t *testing.T) {
	tn := startNode(t, t.TempDir())
	base := "http://" + tn.RPCAddr()
	if r, _ := get(t, base+"/console"); r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != console.Path {
		t.Fatalf("/console: %d, Location %q", r.StatusCode, r.Header.Get("Location"))
	}
	r, body := get(t, base+"/console/")
	if r.StatusCode != 200 || !strings.Contains(body, "<html") || !strings.Contains(r.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("/console/: %d %q, CSP %q", r.StatusCode, body[:min(len(body), 200)], r.Header.Get("Content-Security-Policy"))
	}
	if r, _ := get(t, base+"/console/blocks"); r.StatusCode != 200 {
		t.Fatalf("a route of the page: %d", r.StatusCode)
	}
	if r, body := get(t, base+"/console/config.json"); r.StatusCode != 200 || strings.TrimSpace(body) != `{"authRequired":false}` {
		t.Fatalf("config.json: %d %s", r.StatusCode, body)
	}
	if r, _ := get(t, base+"/console/nothing.js"); r.StatusCode != 404 {
		t.Fatalf("a missing file: %d", r.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/console/", strings.NewReader("x"))
	if r, _ := httpDo(t, req); r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /console/: %d", r.StatusCode)
	}
}

// The node's own page may call it from the browser (its Origin is the
// address the request went to, an IP address); a page of another site
// that rebinds its name to the node's address may not.
func TestConsoleSameOrigin(t *testing.T) {
	tn := startNode(t, t.TempDir())
	addr := tn.RPCAddr()
	post := func(host, origin string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Host = host
		req.Header.Set("Origin", origin)
		r, _ := httpDo(t, req)
		return r.StatusCode
	}
	if got := post(addr, "http://"+addr); got != 200 {
		t.Fatalf("the node's own origin: %d", got)
	}
	_, port, _ := strings.Cut(addr, ":")
	if got := post("rebound.example:"+port, "http://rebound.example:"+port); got != http.StatusForbidden {
		t.Fatalf("a rebound host name: %d, want 403", got)
	}
	if got := post(addr, "https://"+addr); got != http.StatusForbidden {
		t.Fatalf("another scheme: %d, want 403", got)
	}
	ctx := t.Context()
	c, err := gethrpc.DialWebsocket(ctx, "ws://"+addr, "http://"+addr)
	if err != nil {
		t.Fatalf("WebSocket from the node's own origin: %v", err)
	}
	c.Close()
}

// GET /api/console/tx/HASH decodes a call and its events by the ABI the
// contract registry holds, and a failed call's custom error.
func TestConsoleDecodesTransactions(t *testing.T) {
	tn := startNode(t, t.TempDir())
	key := tn.accts[0].Key
	from := crypto.PubkeyToAddress(key.PublicKey)
	send := func(nonce uint64, to *common.Address, gas uint64, data []byte) *types.Receipt {
		t.Helper()
		tx := tn.sign(t, key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce, Gas: gas,
			GasFeeCap: big.NewInt(2e9), GasTipCap: big.NewInt(1), To: to, Data: data})
		if err := tn.client.SendTransaction(t.Context(), tx); err != nil {
			t.Fatal(err)
		}
		return tn.waitReceipt(t, tx.Hash())
	}
	send(0, nil, 2_000_000, token.DeployData(big.NewInt(1000)))
	tokenAddr := crypto.CreateAddress(from, 0)
	doc := []byte(token.ABI)
	reg, err := system.ContractRegistry.Pack("registerContract", "gold", tokenAddr, doc, [32]byte(crypto.Keccak256Hash(doc)))
	if err != nil {
		t.Fatal(err)
	}
	if rc := send(1, &system.ContractsAddress, 2_000_000, reg); rc.Status != types.ReceiptStatusSuccessful {
		t.Fatal("registerContract failed")
	}
	waitUntil(t, 10*time.Second, "the registry knows gold", func() bool {
		c, ok := tn.contracts.ByName("gold")
		return ok && c.ABI != nil
	})
	to := common.HexToAddress("0x00000000000000000000000000000000000000b0")
	ok := send(2, &tokenAddr, 200_000, token.TransferData(to, big.NewInt(7)))
	bad := send(3, &tokenAddr, 200_000, token.TransferData(to, big.NewInt(1_000_000)))
	if bad.Status == types.ReceiptStatusSuccessful {
		t.Fatal("a transfer of more than the balance succeeded")
	}

	var tx console.DecodedTx
	base := "http://" + tn.RPCAddr() + console.APIPath
	r, body := get(t, base+"tx/"+ok.TxHash.Hex())
	if r.StatusCode != 200 || json.Unmarshal([]byte(body), &tx) != nil {
		t.Fatalf("decoded transfer: %d %s", r.StatusCode, body)
	}
	if tx.Contract == nil || tx.Contract.Name != "gold" || tx.Method != "transfer(address,uint256)" || len(tx.Args) != 2 || tx.Args[1].Value != "7" {
		t.Fatalf("decoded call: %s", body)
	}
	if len(tx.Events) != 1 || tx.Events[0].Event != "Transfer(address,address,uint256)" || len(tx.Events[0].Args) != 3 ||
		tx.Events[0].Args[0].Value != from.Hex() || tx.Events[0].Args[2].Value != "7" {
		t.Fatalf("decoded events: %s", body)
	}
	r, body = get(t, base+"tx/"+bad.TxHash.Hex())
	if r.StatusCode != 200 || json.Unmarshal([]byte(body), &tx) != nil || tx.Status != "failed" || !strings.HasPrefix(tx.Revert, "InsufficientBalance(") {
		t.Fatalf("failed transfer: %d %s", r.StatusCode, body)
	}
	for path, want := range map[string]int{
		"tx/0x" + strings.Repeat("0", 64): 404,
		"tx/0x12":                         400,
		"tx/" + ok.TxHash.Hex() + "?x=1":  400,
		"nothing":                         404,
	} {
		if r, body := get(t, base+path); r.StatusCode != want || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d and a problem", path, r.StatusCode, body, want)
		}
	}
	var list []console.ContractEntry
	if r, body := get(t, base+"contracts"); r.StatusCode != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 1 || list[0].Name != "gold" || !list[0].HasABI {
		t.Fatalf("contracts: %d %s", r.StatusCode, body)
	}
	var cdoc console.ContractDoc
	if r, body := get(t, base+"contracts/gold"); r.StatusCode != 200 || json.Unmarshal([]byte(body), &cdoc) != nil || cdoc.Address != tokenAddr.Hex() || !strings.Contains(string(cdoc.ABI), "Transfer") {
		t.Fatalf("contract gold: %d %s", r.StatusCode, body)
	}
	if r, _ := get(t, base+"contracts/nothing"); r.StatusCode != 404 {
		t.Fatalf("an unknown contract: %d", r.StatusCode)
	}
	var certs []console.Certificate
	if r, body := get(t, base+"certificates"); r.StatusCode != 200 || json.Unmarshal([]byte(body), &certs) != nil {
		t.Fatalf("certificates: %d %s", r.StatusCode, body)
	}
	var seal console.Seal
	if r, body := get(t, base+"block/1/seal"); r.StatusCode != 200 || json.Unmarshal([]byte(body), &seal) != nil || seal.Engine != "solo" || len(seal.Signers) != 0 {
		t.Fatalf("seal: %d %s", r.StatusCode, body)
	}
	if r, _ := get(t, base+"block/99999/seal"); r.StatusCode != 404 {
		t.Fatalf("seal of a missing block: %d", r.StatusCode)
	}
	var h console.Health
	if r, body := get(t, base+"health"); r.StatusCode != 200 || json.Unmarshal([]byte(body), &h) != nil || !h.Ready || h.Head < 4 || h.Node.Consensus != "solo" ||
		h.Metrics == nil || h.Metrics.TxCommitted < 4 || h.Metrics.FinalityCount == 0 {
		t.Fatalf("health: %d %s", r.StatusCode, body)
	}
}

// On a node that requires credentials the page is served to anyone (it is
// code, the same for every caller), and every datum it reads is not:
// the console's endpoints, JSON-RPC and REST answer 401 without a token.
func TestConsoleBehindAuthentication(t *testing.T) {
	tn := startNodeWith(t, t.TempDir(), func(c *Config) { c.API = &HomeAPI{Auth: APIRequired, AccessLog: "off"} })
	base := "http://" + tn.RPCAddr()
	if r, _ := get(t, base+"/console/"); r.StatusCode != 200 {
		t.Fatalf("the page: %d", r.StatusCode)
	}
	if r, _ := get(t, base+"/console"); r.StatusCode != http.StatusMovedPermanently {
		t.Fatalf("/console: %d", r.StatusCode)
	}
	if r, body := get(t, base+"/console/config.json"); r.StatusCode != 200 || strings.TrimSpace(body) != `{"authRequired":true}` {
		t.Fatalf("config.json: %d %s", r.StatusCode, body)
	}
	for _, p := range []string{console.APIPath + "health", console.APIPath + "contracts", "/api/v1/blocks", "/consolex"} {
		if r, body := get(t, base+p); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d %s", p, r.StatusCode, body)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, base, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	if r, body := httpDo(t, req); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("JSON-RPC from the page without a token: %d %s", r.StatusCode, body)
	}
}

// The health answer gives the head's age from its block's time, and none
// for the genesis (whose time is the chain's configuration, not a block's).
func TestConsoleHealthHeadAge(t *testing.T) {
	tn := startNode(t, t.TempDir())
	base := "http://" + tn.RPCAddr()
	health := func() map[string]any {
		r, body := get(t, base+"/api/console/health")
		if r.StatusCode != 200 {
			t.Fatalf("health: %d %s", r.StatusCode, body)
		}
		var h map[string]any
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	if h := health(); h["head"].(float64) == 0 {
		if _, ok := h["headAgeSeconds"]; ok {
			t.Fatalf("an age for the genesis: %v", h["headAgeSeconds"])
		}
	}
	tx := tn.sign(t, tn.accts[5].Key, transfer(0, common.Address{9}, 1))
	if err := tn.client.SendTransaction(t.Context(), tx); err != nil {
		t.Fatal(err)
	}
	tn.waitReceipt(t, tx.Hash())
	h := health()
	age, ok := h["headAgeSeconds"].(float64)
	if h["head"].(float64) < 1 || !ok || age < 0 || age > 3600 {
		t.Fatalf("after a block: head %v, age %v", h["head"], h["headAgeSeconds"])
	}
}

func getJSONInto(t *testing.T, url string, v any) {
	t.Helper()
	r, body := get(t, url)
	if r.StatusCode != 200 {
		t.Fatalf("%s: %d %s", url, r.StatusCode, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("%s: %v: %s", url, err, body)
	}
}

// On a bft network the console's health lists each peer by node,
// organization and address with the readiness it reported over the p2p
// link and its certificate's expiry; the validators' answer gives each
// validator's last signed block from the commit certificates. A stopped
// validator stops signing: its missed blocks and rounds grow, and it
// leaves the peers of the others.
func TestConsoleNetworkHealth(t *testing.T) {
	nodes := startNetworkParams(t, "bft", 4, json.RawMessage(`{"timeoutPropose":"300ms"}`))
	base := "http://" + nodes[0].RPCAddr()
	var h console.Health
	waitUntil(t, 30*time.Second, "three peers, each with its status reported", func() bool {
		getJSONInto(t, base+console.APIPath+"health", &h)
		if len(h.PeerList) != 3 {
			return false
		}
		for _, p := range h.PeerList {
			if p.Status == nil {
				return false
			}
		}
		return true
	})
	if h.Node.ID != nodes[0].Self().Hex() || h.Node.CertExpires == nil || time.Until(*h.Node.CertExpires) < 24*time.Hour {
		t.Fatalf("this node: %+v", h.Node)
	}
	orgs := map[string]bool{}
	for _, p := range h.PeerList {
		if p.Org == "" || p.Org == h.Node.Org || !strings.HasPrefix(p.Addr, "127.0.0.1:") || p.CertExpires == nil || !p.Status.Ready || p.Status.Head == 0 && h.Head > 5 {
			t.Fatalf("peer %+v (status %+v)", p, p.Status)
		}
		orgs[p.Org] = true
	}
	if len(orgs) != 3 {
		t.Fatalf("peers' organizations: %v", orgs)
	}

	head := func() uint64 { return nodes[0].Ledger().Head().Number.Uint64() }
	waitUntil(t, 30*time.Second, "a few blocks", func() bool { return head() >= 6 })
	var act console.Activity
	getJSONInto(t, base+console.APIPath+"validators", &act)
	if !act.Certificates || act.To < 6 || len(act.Validators) != 4 {
		t.Fatalf("activity: %+v", act)
	}
	signed := 0
	for _, v := range act.Validators {
		if !v.Current {
			t.Fatalf("validator %s not current: %+v", v.ID, act)
		}
		signed += v.Signed
	}
	if blocks := int(act.To - act.From + 1); signed < 3*blocks {
		t.Fatalf("%d signatures in %d blocks: fewer than a quorum each", signed, blocks)
	}

	stopped := nodes[3]
	id := stopped.Self().Hex()
	stopped.Stop()
	at := head()
	waitUntil(t, 60*time.Second, "the others to go on for 12 blocks", func() bool { return head() >= at+12 })
	getJSONInto(t, base+console.APIPath+"validators", &act)
	var gone *console.ValidatorStat
	for i, v := range act.Validators {
		if v.ID == id {
			gone = &act.Validators[i]
		} else if v.LastSigned == nil || *v.LastSigned+8 < act.To {
			// Each of the three others signs every certificate now (a
			// quorum of four is three).
			t.Fatalf("a running validator's last signature: %+v (head %d)", v, act.To)
		}
	}
	if gone == nil || gone.LastSigned != nil && *gone.LastSigned > at+1 || gone.MissedBlocks < 10 || gone.MissedRounds < 1 {
		t.Fatalf("the stopped validator (stopped at %d, head %d): %+v", at, act.To, gone)
	}
	waitUntil(t, 30*time.Second, "the stopped node to leave the peers", func() bool {
		getJSONInto(t, base+console.APIPath+"health", &h)
		return len(h.PeerList) == 2
	})
}

// The usage endpoint gives per day and organization what the chain
// metered, within a bounded range; the history endpoint the counters the
// node sampled since it started.
func TestConsoleUsagePerDayAndHistory(t *testing.T) {
	tn := startNode(t, t.TempDir())
	base := "http://" + tn.RPCAddr() + console.APIPath
	tx := tn.sign(t, tn.accts[5].Key, transfer(0, common.Address{9}, 1))
	if err := tn.client.SendTransaction(t.Context(), tx); err != nil {
		t.Fatal(err)
	}
	rc := tn.waitReceipt(t, tx.Hash())
	day := time.Unix(int64(tn.Ledger().HeaderByNumber(rc.BlockNumber.Uint64()).Time), 0).UTC()
	today, yesterday := day.Format(time.DateOnly), day.AddDate(0, 0, -1).Format(time.DateOnly)
	var u console.UsageDays
	getJSONInto(t, base+"usage/"+yesterday+"/"+today, &u)
	if len(u.Rows) == 0 {
		t.Fatalf("no usage: %+v", u)
	}
	var txs, gas uint64
	for _, r := range u.Rows {
		if r.Date != today {
			t.Fatalf("a row of another day than the block's: %+v", r)
		}
		txs += r.Txs
		gas += r.Gas
	}
	if txs < 1 || gas < 21000 {
		t.Fatalf("usage of %s: %d transactions, %d gas: %+v", today, txs, gas, u.Rows)
	}
	for _, bad := range []string{today + "/" + yesterday, "2020-01-01/2021-01-01", "yesterday/" + today, today + "/2026-13-01"} {
		if r, body := get(t, base+"usage/"+bad); r.StatusCode != http.StatusBadRequest {
			t.Errorf("usage/%s: %d %s", bad, r.StatusCode, body)
		}
	}
	var hist []console.Counters
	getJSONInto(t, base+"history", &hist)
	if len(hist) < 1 || hist[0].Time <= 0 {
		t.Fatalf("history: %+v", hist)
	}
}

// POST /api/console/draft answers the unsigned propose transaction of a
// complete draft, the chain's first objection to an incomplete one (200:
// the page asks as the user types), and 400 for a body that is no draft.
func TestConsoleDraft(t *testing.T) {
	tn := startNode(t, t.TempDir())
	url := "http://" + tn.RPCAddr() + console.APIPath + "draft"
	post := func(body string) (int, console.Draft) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		r, text := httpDo(t, req)
		var d console.Draft
		if r.StatusCode == 200 {
			if err := json.Unmarshal([]byte(text), &d); err != nil {
				t.Fatalf("%s: %v", text, err)
			}
		}
		return r.StatusCode, d
	}
	code, d := post(`{"action":"freeze","args":{"target":"0x00000000000000000000000000000000000000aa"},"memo":"lost key"}`)
	if code != 200 || d.Problem != "" || d.To != system.GovernanceAddress.Hex() || !strings.HasPrefix(d.Data, "0x") || d.ChainID != "0x539" {
		t.Fatalf("a complete draft: %d %+v", code, d)
	}
	if code, d := post(`{"action":"freeze","args":{},"memo":"lost key"}`); code != 200 || !strings.Contains(d.Problem, "--target") || d.Data != "" {
		t.Fatalf("an incomplete draft: %d %+v", code, d)
	}
	if code, _ := post(`{"action":"freeze","colour":1}`); code != http.StatusBadRequest {
		t.Fatalf("no draft: %d", code)
	}
}
