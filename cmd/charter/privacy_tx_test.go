package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/node"
	"github.com/charter-ledger/charter/internal/privacy/privtx"
	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
)

// The encoding of --call is go-ethereum's: the same bytes as the ERC-20's
// ABI packs.
func TestPackCallMatchesABI(t *testing.T) {
	to := common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
	got, err := packCall("transfer(address,uint256)", []string{to.Hex(), "1000"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := token.TransferData(to, big.NewInt(1000)); !bytes.Equal(got, want) {
		t.Fatalf("transfer: got %x, want %x", got, want)
	}
	got, err = packCall("balanceOf(address)", []string{strings.ToLower(to.Hex())}, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := token.BalanceOfData(to); !bytes.Equal(got, want) {
		t.Fatalf("balanceOf: got %x, want %x", got, want)
	}
	// A constructor: the arguments only, which follow the bytecode.
	got, err = packCall("constructor(uint256)", []string{"0x10"}, true)
	if err != nil {
		t.Fatal(err)
	}
	deploy := token.DeployData(big.NewInt(16))
	if !bytes.Equal(got, deploy[len(deploy)-32:]) || len(got) != 32 {
		t.Fatalf("constructor: got %x, want the last word of %x", got, deploy)
	}
	// Other types, checked against Pack of the parsed ABI.
	got, err = packCall("f(uint8,int16,bool,string,bytes,bytes4,address[],uint256[2])",
		[]string{"255", "-32768", "true", "hi there", "0xabcd", "0x01020304", "[" + to.Hex() + "," + to.Hex() + "]", "[1,2]"}, false)
	if err != nil {
		t.Fatal(err)
	}
	sigHash := crypto.Keccak256([]byte("f(uint8,int16,bool,string,bytes,bytes4,address[],uint256[2])"))[:4]
	if !bytes.Equal(got[:4], sigHash) {
		t.Fatalf("selector %x, want %x", got[:4], sigHash)
	}
	if w := big.NewInt(-32768); new(big.Int).SetBytes(got[4+32:4+64]).Cmp(new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 256), w)) != 0 {
		t.Fatalf("int16 -32768 encoded as %x", got[4+32:4+64])
	}
}

func TestPackCallRefusesBadArguments(t *testing.T) {
	addr := "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
	for _, c := range []struct {
		sig  string
		args []string
		ctor bool
		want string
	}{
		{"transfer(address,uint256)", []string{addr}, false, "takes 2 arguments, 1 given"},
		{"transfer(address,uint256)", []string{"0x1234", "1"}, false, "argument 1 (address) \"0x1234\": not an address"},
		{"transfer(address,uint256)", []string{addr, "-1"}, false, "negative for an unsigned type"},
		{"transfer(address,uint256)", []string{addr, "ten"}, false, "not a whole number"},
		{"f(uint8)", []string{"256"}, false, "out of range of uint8"},
		{"f(int8)", []string{"-129"}, false, "out of range of int8"},
		{"f(uint256)", []string{"0x1" + strings.Repeat("0", 64)}, false, "out of range of uint256"},
		{"f(bool)", []string{"yes"}, false, "want true or false"},
		{"f(bytes4)", []string{"0x0102"}, false, "want 4 bytes in hex"},
		{"f(bytes)", []string{"0x123"}, false, "want hex bytes"},
		{"f(uint256[2])", []string{"[1]"}, false, "want 2 items, got 1"},
		{"f(uint256[])", []string{"1,2"}, false, "want a list"},
		{"f(uint256[][])", []string{"[[1]]"}, false, "nested lists"},
		{"f(foo)", []string{"1"}, false, "argument 1"},
		{"transfer(address", []string{addr}, false, "want NAME(TYPE,...)"},
		{"constructor(uint256)", []string{"1"}, false, "a constructor is called only with --deploy"},
		{"transfer(address,uint256)", []string{addr, "1"}, true, "with --deploy give the constructor's types"},
	} {
		_, err := packCall(c.sig, c.args, c.ctor)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("packCall(%q, %q, %v) = %v, want an error saying %q", c.sig, c.args, c.ctor, err, c.want)
		}
	}
}

func TestPrivacyTxFlagErrors(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "t.bin")
	if err := os.WriteFile(bin, []byte("6080zz"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.bin")
	if err := os.WriteFile(empty, []byte(" \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	to := "--to=0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
	g := "--group=" + system.GroupIDBase64(common.Hash{1})
	for _, c := range []struct {
		want string
		args []string
	}{
		{"--group is required", []string{"privacy", "send", to, "--data", "0x"}},
		{"--group:", []string{"privacy", "send", "--group", "xyz", to, "--data", "0x"}},
		{"give one of --deploy FILE.bin and --to ADDR", []string{"privacy", "send", g, "--data", "0x"}},
		{"give one of --deploy FILE.bin and --to ADDR", []string{"privacy", "send", g, to, "--deploy", bin}},
		{"--deploy " + bin + ": not hex bytecode", []string{"privacy", "send", g, "--deploy", bin}},
		{"--deploy " + empty + ": empty", []string{"privacy", "send", g, "--deploy", empty}},
		{"--deploy: open", []string{"privacy", "send", g, "--deploy", filepath.Join(dir, "none.bin")}},
		{"--call and --data exclude each other", []string{"privacy", "send", g, to, "--call", "f()", "--data", "0x"}},
		{"--data \"0xz\": want hex", []string{"privacy", "send", g, to, "--data", "0xz"}},
		{"arguments follow --call, not --data", []string{"privacy", "send", g, to, "--data", "0x01", "7"}},
		{"give --call SIGNATURE ARG... or --data HEX", []string{"privacy", "send", g, to}},
		{"--call transfer(address,uint256) takes 2 arguments, 1 given", []string{"privacy", "send", g, to, "--call", "transfer(address,uint256)", "5"}},
		{"--key is required", []string{"privacy", "send", g, to, "--call", "f()"}},
		{"--gas must be positive", []string{"privacy", "send", g, to, "--call", "f()", "--gas", "0", "--key", "k"}},
		{"--to \"0x12\" is not an address", []string{"privacy", "send", g, "--to", "0x12", "--call", "f()"}},
		{"--group and --to are required", []string{"privacy", "call", g, "--call", "f()"}},
		{"give --call SIGNATURE ARG... or --data HEX", []string{"privacy", "call", g, to}},
		{"--returns \"foo\"", []string{"privacy", "call", g, to, "--call", "f()", "--returns", "foo"}},
		{"--block \"soon\"", []string{"privacy", "call", g, to, "--call", "f()", "--block", "soon"}},
		{"marker \"0x12\": want the marker transaction's hash", []string{"privacy", "receipt", "0x12"}},
		{"missing arguments", []string{"privacy", "receipt"}},
		{"unknown subcommand \"sned\"", []string{"privacy", "sned"}},
	} {
		mustFail(t, c.want, c.args...)
	}
}

// fakePrivacyNode answers the JSON-RPC calls of the privacy commands as a
// node of the dev organization would, and records the private
// transactions it was sent.
type fakePrivacyNode struct {
	t        *testing.T
	chainID  *big.Int
	org      string
	identity []byte
	group    common.Hash
	callOut  []byte

	mu        sync.Mutex
	sent      []*privtx.Tx
	polls     int // priv_getTransactionReceipt calls
	calls     []json.RawMessage
	receiptOK bool // priv_getTransactionReceipt of an unknown marker answers a receipt
}

var fakeMarker = common.HexToHash("0x" + strings.Repeat("ab", 32))

func (f *fakePrivacyNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     json.RawMessage   `json:"id"`
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	result, rpcErr := f.answer(req.Method, req.Params)
	resp := map[string]any{"jsonrpc": "2.0", "id": req.ID}
	if rpcErr != "" {
		resp["error"] = map[string]any{"code": -32000, "message": rpcErr}
	} else {
		resp["result"] = result
	}
	w.Header().Set("content-type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (f *fakePrivacyNode) answer(method string, params []json.RawMessage) (any, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	str := func(i int) string {
		var s string
		if i < len(params) {
			json.Unmarshal(params[i], &s)
		}
		return s
	}
	switch method {
	case "eth_chainId":
		return hexutil.Big(*f.chainID), ""
	case "charter_account":
		return rpc.AccountInfo{MemberAccount: rpc.MemberAccount{Org: f.org}}, ""
	case "charter_members":
		return rpc.Members{Organizations: []rpc.MemberOrg{{Name: "other", PrivacyKey: base64.StdEncoding.EncodeToString(make([]byte, 32))},
			{Name: chain.DevOrg, PrivacyKey: base64.StdEncoding.EncodeToString(f.identity)}}}, ""
	case "priv_getTransactionCount":
		if str(1) != system.GroupIDBase64(f.group) {
			return nil, "privacy group " + str(1) + " not found"
		}
		return hexutil.Uint64(len(f.sent) + 4), ""
	case "eea_sendRawTransaction":
		raw, err := hexutil.Decode(str(0))
		if err != nil {
			return nil, err.Error()
		}
		tx, err := privtx.Decode(raw)
		if err != nil {
			return nil, err.Error()
		}
		f.sent = append(f.sent, tx)
		return fakeMarker, ""
	case "eth_getTransactionReceipt":
		if str(0) != fakeMarker.Hex() {
			return nil, ""
		}
		return &types.Receipt{Status: 1, TxHash: fakeMarker, BlockNumber: big.NewInt(9), Logs: []*types.Log{}, GasUsed: 50_000}, ""
	case "priv_getTransactionReceipt":
		f.polls++
		if str(0) != fakeMarker.Hex() && !f.receiptOK {
			return nil, ""
		}
		if f.polls < 3 && len(f.sent) > 0 { // not applied yet: the command polls
			return nil, ""
		}
		out := map[string]any{"commitmentHash": str(0), "from": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
			"privateFrom": base64.StdEncoding.EncodeToString(f.identity), "privacyGroupId": system.GroupIDBase64(f.group),
			"status": "0x1", "blockNumber": "0x9", "logs": []any{map[string]any{"data": "0x"}}, "output": "0x"}
		if len(f.sent) > 0 {
			tx := f.sent[len(f.sent)-1]
			out["transactionHash"] = tx.Hash()
			if tx.To == nil {
				out["contractAddress"] = "0x1111111111111111111111111111111111111111"
				out["to"] = nil
			} else {
				out["to"] = tx.To
				out["contractAddress"] = nil
			}
		}
		return out, ""
	case "priv_call":
		parts := make([][]byte, len(params))
		for i, p := range params {
			parts[i] = p
		}
		f.calls = append(f.calls, json.RawMessage(bytes.Join(parts, []byte(","))))
		return hexutil.Bytes(f.callOut), ""
	}
	return nil, "method " + method + " not faked"
}

func startFakePrivacyNode(t *testing.T) (*fakePrivacyNode, string) {
	id := make([]byte, 32)
	for i := range id {
		id[i] = byte(i + 1)
	}
	f := &fakePrivacyNode{t: t, chainID: big.NewInt(1337), org: chain.DevOrg, identity: id, group: common.HexToHash("0x" + strings.Repeat("5a", 32))}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func TestPrivacySendCallReceiptAgainstFakeNode(t *testing.T) {
	f, url := startFakePrivacyNode(t)
	accts, err := chain.DevAccounts(1)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "acct.key")
	if err := identity.SaveNodeKey(keyFile, accts[0].Key, nil); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "Token.bin")
	if err := os.WriteFile(bin, []byte(strings.TrimPrefix(token.Bytecode, "0x")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gid := system.GroupIDBase64(f.group)

	// A deployment with a constructor argument, by the base64 group id.
	out := mustRun(t, "privacy", "send", "--group", gid, "--deploy", bin, "--call", "constructor(uint256)", "1000000",
		"--key", keyFile, "--rpc", url)
	if len(f.sent) != 1 {
		t.Fatalf("%d transactions sent", len(f.sent))
	}
	tx := f.sent[0]
	from, err := tx.Sender(f.chainID)
	if err != nil || from != accts[0].Address {
		t.Fatalf("sender %s (%v), want %s", from, err, accts[0].Address)
	}
	if tx.To != nil || !bytes.Equal(tx.Data, token.DeployData(big.NewInt(1_000_000))) || tx.Nonce != 4 || tx.Gas != defaultPrivateGas ||
		tx.GasPrice.Sign() != 0 || tx.Value.Sign() != 0 || !bytes.Equal(tx.PrivateFrom, f.identity) ||
		!bytes.Equal(tx.PrivacyGroupID, f.group[:]) || tx.PrivateFor != nil || tx.Restriction != privtx.Restricted {
		t.Fatalf("deployment sent as %+v", tx)
	}
	for _, want := range []string{`Marker\s+` + fakeMarker.Hex(), `Private transaction\s+` + tx.Hash().Hex(), `Status\s+success \(1\)`,
		`Contract address\s+0x1111111111111111111111111111111111111111`, `Logs\s+1\n`, `Block\s+9\n`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output does not match %q:\n%s", want, out)
		}
	}
	if f.polls < 3 {
		t.Errorf("priv_getTransactionReceipt polled %d times, want until it answers (3)", f.polls)
	}

	// A call by the hex group id, with --json.
	to := common.HexToAddress("0x1111111111111111111111111111111111111111")
	bob := common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
	f.polls = 0
	out = mustRun(t, "privacy", "send", "--group", f.group.Hex(), "--to", to.Hex(), "--call", "transfer(address,uint256)", bob.Hex(), "250",
		"--key", keyFile, "--rpc", url, "--json")
	tx = f.sent[1]
	if tx.To == nil || *tx.To != to || !bytes.Equal(tx.Data, token.TransferData(bob, big.NewInt(250))) || tx.Nonce != 5 {
		t.Fatalf("transfer sent as %+v", tx)
	}
	var rj map[string]any
	decodeJSON(t, out, &rj)
	if rj["transactionHash"] != tx.Hash().Hex() || rj["commitmentHash"] != fakeMarker.Hex() || rj["status"] != "0x1" {
		t.Fatalf("--json printed %v", rj)
	}

	// --no-wait prints both hashes and polls nothing.
	f.polls = 0
	out = mustRun(t, "privacy", "send", "--group", gid, "--to", to.Hex(), "--data", "0x01", "--key", keyFile, "--rpc", url, "--no-wait")
	if !strings.Contains(out, fakeMarker.Hex()) || !strings.Contains(out, f.sent[2].Hash().Hex()) || f.polls != 0 {
		t.Fatalf("--no-wait printed %q after %d polls", out, f.polls)
	}

	// A group the node does not know: the node's reason, nothing sent.
	mustFail(t, "not found", "privacy", "send", "--group", common.Hash{7}.Hex(), "--to", to.Hex(), "--data", "0x", "--key", keyFile, "--rpc", url)
	if len(f.sent) != 3 {
		t.Fatalf("%d transactions sent, want 3", len(f.sent))
	}
	// An account of no organization.
	f.org = ""
	mustFail(t, "belongs to no organization", "privacy", "send", "--group", gid, "--to", to.Hex(), "--data", "0x", "--key", keyFile, "--rpc", url)
	f.org = "nokey"
	mustFail(t, "organization nokey of account", "privacy", "send", "--group", gid, "--to", to.Hex(), "--data", "0x", "--key", keyFile, "--rpc", url)
	f.org = chain.DevOrg

	// call: the params the node gets, and the decoded result.
	f.callOut = common.LeftPadBytes(big.NewInt(999_750).Bytes(), 32)
	out = mustRun(t, "privacy", "call", "--group", gid, "--to", to.Hex(), "--call", "balanceOf(address)", bob.Hex(), "--returns", "uint256", "--block", "7", "--rpc", url)
	if strings.TrimSpace(out) != "999750" {
		t.Fatalf("call printed %q", out)
	}
	wantParams := `"` + gid + `",{"data":"` + hexutil.Encode(token.BalanceOfData(bob)) + `","to":"` + strings.ToLower(to.Hex()) + `"},"0x7"`
	if got := string(f.calls[0]); got != wantParams {
		t.Fatalf("priv_call params\n got %s\nwant %s", got, wantParams)
	}
	out = mustRun(t, "privacy", "call", "--group", gid, "--to", to.Hex(), "--call", "balanceOf(address)", bob.Hex(), "--rpc", url)
	if strings.TrimSpace(out) != hexutil.Encode(f.callOut) {
		t.Fatalf("call without --returns printed %q", out)
	}
	f.callOut = common.LeftPadBytes(bob.Bytes(), 32)
	out = mustRun(t, "privacy", "call", "--group", gid, "--to", to.Hex(), "--data", "0x12345678", "--returns", "address", "--rpc", url, "--json")
	var cj map[string]any
	decodeJSON(t, out, &cj)
	if cj["value"] != bob.Hex() || cj["type"] != "address" {
		t.Fatalf("call --json printed %v", cj)
	}
	f.callOut = []byte{1}
	mustFail(t, "--returns uint256: the result 0x01 does not decode", "privacy", "call", "--group", gid, "--to", to.Hex(), "--data", "0x", "--returns", "uint256", "--rpc", url)

	// receipt: found, and not held by this node.
	f.polls = 3 // applied
	out = mustRun(t, "privacy", "receipt", fakeMarker.Hex(), "--rpc", url)
	if !strings.Contains(out, fakeMarker.Hex()) || !strings.Contains(out, "success") {
		t.Fatalf("receipt printed %q", out)
	}
	mustFail(t, "no private receipt for marker 0x"+strings.Repeat("cd", 32), "privacy", "receipt", "0x"+strings.Repeat("cd", 32), "--rpc", url)
}

// startPrivateDevNode is startDevNode with the dev node in the registry and
// the development organization's privacy key, as charter dev runs it.
func startPrivateDevNode(t *testing.T, edit ...func(*node.Config)) *devNode {
	t.Helper()
	spec, err := chain.DevSpec(chain.DefaultChainID, 200)
	if err != nil {
		t.Fatal(err)
	}
	accts, err := chain.DevAccounts(chain.DevAccountCount)
	if err != nil {
		t.Fatal(err)
	}
	nodeKey, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	privKey, err := loadOrCreateDevPrivacyKey(dir, true, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	devNodeGenesis(spec, identity.NodeIDOf(nodeKey))
	dev := spec.Org(chain.DevOrg)
	dev.PrivacyKey, dev.PrivacyKEM = privKey.Public().Identity().String(), privKey.Public().KEMString()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg := node.Config{DataDir: dir, Spec: spec, NodeKey: nodeKey, HTTPAddr: "127.0.0.1:0", DevAccounts: accts,
		BlockTime: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		PrivacyKey: privKey, PrivacyKeyFile: filepath.Join(dir, node.PrivacyKeyFile)}
	for _, e := range edit {
		e(&cfg)
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	url := "http://" + n.RPCAddr()
	client, err := ethclient.Dial(url)
	if err != nil {
		n.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); n.Stop() })
	keyFile := filepath.Join(t.TempDir(), "admin.key")
	if err := identity.SaveNodeKey(keyFile, accts[0].Key, nil); err != nil {
		t.Fatal(err)
	}
	return &devNode{url: url, key: keyFile, accts: accts, client: client}
}

// The README's private ERC-20 walkthrough, against a charter dev node:
// examples/erc20/Token.bin deployed into a group of the dev organization,
// a transfer, calls and receipts.
func TestPrivacySendOnDev(t *testing.T) {
	bin := filepath.Join("..", "..", "examples", "erc20", "Token.bin")
	text, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(text)) != strings.TrimPrefix(token.Bytecode, "0x") {
		t.Fatalf("%s is not the creation bytecode of internal/bench/token (token_gen.go)", bin)
	}
	d := startPrivateDevNode(t)
	c, err := dial(d.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.call("priv_getPrivacyPrecompileAddress"); err != nil {
		t.Skipf("the node serves no priv_ namespace yet: %v", err)
	}
	bobKey := filepath.Join(t.TempDir(), "bob.key")
	if err := identity.SaveNodeKey(bobKey, d.accts[1].Key, nil); err != nil {
		t.Fatal(err)
	}
	bob := d.accts[1].Address
	var g groupOut
	decodeJSON(t, mustRun(t, "privacy", "group", "create", "--name", "erc20", "--json", "--rpc", d.url, "--key", d.key), &g)

	type receiptOut struct {
		CommitmentHash  common.Hash     `json:"commitmentHash"`
		TransactionHash common.Hash     `json:"transactionHash"`
		ContractAddress *common.Address `json:"contractAddress"`
		Status          string          `json:"status"`
		PrivacyGroupID  string          `json:"privacyGroupId"`
		From            common.Address  `json:"from"`
		Logs            []any           `json:"logs"`
	}
	var dep receiptOut
	decodeJSON(t, mustRun(t, "privacy", "send", "--group", g.PrivacyGroupID, "--deploy", bin, "--call", "constructor(uint256)", "1000",
		"--key", d.key, "--rpc", d.url, "--json"), &dep)
	want := crypto.CreateAddress(d.accts[0].Address, 0)
	if dep.Status != "0x1" || dep.ContractAddress == nil || *dep.ContractAddress != want || dep.PrivacyGroupID != g.PrivacyGroupID ||
		dep.From != d.accts[0].Address || len(dep.Logs) != 1 || dep.CommitmentHash == (common.Hash{}) {
		t.Fatalf("deployment receipt %+v, want contract %s", dep, want)
	}
	contract := want.Hex()
	out := mustRun(t, "privacy", "send", "--group", g.ID.Hex(), "--to", contract, "--call", "transfer(address,uint256)", bob.Hex(), "250",
		"--key", d.key, "--rpc", d.url)
	if !regexp.MustCompile(`Status\s+success`).MatchString(out) || !regexp.MustCompile(`Logs\s+1\n`).MatchString(out) {
		t.Fatalf("transfer printed:\n%s", out)
	}
	for who, bal := range map[common.Address]string{bob: "250", d.accts[0].Address: "750", d.accts[2].Address: "0"} {
		got := strings.TrimSpace(mustRun(t, "privacy", "call", "--group", g.PrivacyGroupID, "--to", contract, "--call", "balanceOf(address)",
			who.Hex(), "--returns", "uint256", "--rpc", d.url))
		if got != bal {
			t.Errorf("balanceOf(%s) = %s, want %s", who, got, bal)
		}
	}
	// The public chain has no code at the private contract.
	if code, err := d.client.CodeAt(t.Context(), want, nil); err != nil || len(code) != 0 {
		t.Fatalf("public code at the private contract: %x (%v)", code, err)
	}
	// A transfer above the balance: a failed private transaction.
	mustFail(t, "failed", "privacy", "send", "--group", g.PrivacyGroupID, "--to", contract, "--call", "transfer(address,uint256)",
		d.accts[0].Address.Hex(), "251", "--key", bobKey, "--rpc", d.url)
	var again receiptOut
	decodeJSON(t, mustRun(t, "privacy", "receipt", dep.CommitmentHash.Hex(), "--rpc", d.url, "--json"), &again)
	if again.TransactionHash != dep.TransactionHash || again.Status != "0x1" {
		t.Fatalf("receipt %+v, want %+v", again, dep)
	}
}
