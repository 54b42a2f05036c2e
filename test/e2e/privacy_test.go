package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/privacy/privtx"
	"github.com/charter-ledger/charter/internal/system"
)

// This file checks private transactions end to end on a 4-organization
// bft network of processes (one node per organization, org0..org3): a
// client signs Besu private transactions (privtx) and sends them with
// eea_sendRawTransaction to a node of its organization; the tests read
// the priv_ namespace of every node, the public chain, and every byte the
// nodes wrote to disk.
//
// bft: with 200 ms blocks a 4-node bft network commits about four blocks a
// second on two cores, and it keeps committing with one node killed (3 of
// 4), which the catch-up test needs.
//
// One network serves every subtest of TestPrivate (starting one costs
// seconds of the two cores); each subtest works in its own privacy groups
// and its own accounts, so that any one of them runs alone as well
// (go test -run 'TestPrivate/Purge').

// privNet is the shared network and what the tests know about it.
type privNet struct {
	tn      *testnet
	dir     string
	chainID *big.Int
	ident   [4][]byte                   // each organization's privacy identity (32 bytes)
	admin   [4]*ecdsa.PrivateKey        // each organization's admin account (read, write, admin)
	dev     []chain.DevAccount          // org0's accounts with read, write and deploy
	nonces  map[nonceKey]uint64         // next private nonce by group and sender
	hashes  map[common.Hash]common.Hash // private transaction hash by marker
}

type nonceKey struct {
	group common.Hash
	from  common.Address
}

func (pn *privNet) adminKeyFile(org int) string {
	return filepath.Join(pn.dir, "orgs", "org"+strconv.Itoa(org), "admin-account.key")
}

func (pn *privNet) home(node int) string { return pn.tn.ep.Nodes[node].Home }

func TestPrivate(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process network test")
	}
	dir := initNetwork(t, "bft", 4, "--orgs", "4", "--block-time", "200ms")
	pn := &privNet{dir: dir, chainID: big.NewInt(chain.DefaultChainID), nonces: map[nonceKey]uint64{}, hashes: map[common.Hash]common.Hash{}}
	var gen struct {
		Organizations []struct {
			Name       string `json:"name"`
			PrivacyKey string `json:"privacyKey"`
		} `json:"organizations"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "genesis.json"))
	if err != nil || json.Unmarshal(raw, &gen) != nil || len(gen.Organizations) != 4 {
		t.Fatalf("genesis.json: %v, want 4 organizations", err)
	}
	for k, o := range gen.Organizations {
		id, err := base64.StdEncoding.DecodeString(o.PrivacyKey)
		if o.Name != "org"+strconv.Itoa(k) || err != nil || len(id) != 32 {
			t.Fatalf("genesis organization %d: %s with privacy key %q, want org%d with 32 bytes of base64", k, o.Name, o.PrivacyKey, k)
		}
		pn.ident[k] = id
		pn.admin[k] = mustKey(t, pn.adminKeyFile(k))
	}
	if pn.dev, err = chain.DevAccounts(chain.DevAccountCount); err != nil {
		t.Fatal(err)
	}
	pn.tn = runTestnet(t, dir)
	pn.tn.waitAllReach(2, 30*time.Second)

	t.Run("ContractOfTwoOrgs", pn.testContractOfTwoOrgs)
	t.Run("CatchUpAfterKill9", pn.testCatchUpAfterKill9)
	t.Run("Purge", pn.testPurge)
	t.Run("Auditor", pn.testAuditor)
	t.Run("Refusals", pn.testRefusals)
}

// --- helpers ---

// eventually polls check until it returns nil, and fails t with its last
// error when timeout passes first.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// plaintext is a byte string that appears in no file unless a test put it
// in a private transaction.
func plaintext(t *testing.T) []byte {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return []byte("CHARTER-PRIVATE-" + hex.EncodeToString(b[:]))
}

type privGroup struct {
	ID     common.Hash
	Base64 string
	Block  uint64 // where it was created
}

// createGroup creates a group of org's organization and the others with
// the CLI, as org's admin.
func (pn *privNet) createGroup(t *testing.T, org int, name string, others ...int) privGroup {
	t.Helper()
	args := []string{"privacy", "group", "create", "--name", name, "--key", pn.adminKeyFile(org), "--rpc", pn.tn.url(org), "--json"}
	for _, o := range others {
		args = append(args, "--member", "org"+strconv.Itoa(o))
	}
	var res struct {
		ID     common.Hash `json:"id"`
		Base64 string      `json:"privacyGroupId"`
		Block  uint64      `json:"block"`
	}
	out := charter(t, false, args...)
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.ID == (common.Hash{}) {
		t.Fatalf("privacy group create --json printed %q: %v", out, err)
	}
	if res.Base64 != base64.StdEncoding.EncodeToString(res.ID[:]) {
		t.Fatalf("group %s: privacyGroupId %s is not its base64", res.ID, res.Base64)
	}
	return privGroup{ID: res.ID, Base64: res.Base64, Block: res.Block}
}

// signPriv signs a private transaction of org's identity to group.
func (pn *privNet) signPriv(t *testing.T, key *ecdsa.PrivateKey, org int, group common.Hash, nonce uint64, to *common.Address, data []byte) []byte {
	t.Helper()
	tx := &privtx.Tx{Nonce: nonce, GasPrice: new(big.Int), Gas: 3_000_000, To: to, Value: new(big.Int), Data: data,
		PrivateFrom: pn.ident[org], PrivacyGroupID: bytes.Clone(group[:]), Restriction: privtx.Restricted}
	if err := privtx.SignTx(tx, pn.chainID, key); err != nil {
		t.Fatal(err)
	}
	raw, err := tx.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// nextNonce is key's next private nonce in group as this test counts it,
// starting from priv_getTransactionCount on node.
func (pn *privNet) nextNonce(t *testing.T, node int, group privGroup, from common.Address) uint64 {
	t.Helper()
	k := nonceKey{group.ID, from}
	if n, ok := pn.nonces[k]; ok {
		return n
	}
	var n hexutil.Uint64
	if err := rpcCall(pn.tn.url(node), &n, "priv_getTransactionCount", from, group.Base64); err != nil {
		t.Fatalf("priv_getTransactionCount(%s, %s) on node%d: %v", from, group.Base64, node, err)
	}
	return uint64(n)
}

// sendPriv sends a private transaction of org (signed by key) through
// node and returns its marker's hash.
func (pn *privNet) sendPriv(t *testing.T, node int, key *ecdsa.PrivateKey, org int, group privGroup, to *common.Address, data []byte) common.Hash {
	t.Helper()
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce := pn.nextNonce(t, node, group, from)
	var marker common.Hash
	raw := pn.signPriv(t, key, org, group.ID, nonce, to, data)
	if err := rpcCall(pn.tn.url(node), &marker, "eea_sendRawTransaction", hexutil.Encode(raw)); err != nil {
		t.Fatalf("eea_sendRawTransaction on node%d (nonce %d): %v", node, nonce, err)
	}
	pn.hashes[marker] = crypto.Keccak256Hash(raw)
	pn.nonces[nonceKey{group.ID, from}] = nonce + 1
	return marker
}

// privReceipt is the part of Besu's private receipt the tests compare.
type privReceipt struct {
	ContractAddress *common.Address `json:"contractAddress"`
	From            common.Address  `json:"from"`
	To              *common.Address `json:"to"`
	Output          hexutil.Bytes   `json:"output"`
	CommitmentHash  common.Hash     `json:"commitmentHash"`
	TransactionHash common.Hash     `json:"transactionHash"`
	PrivacyGroupID  string          `json:"privacyGroupId"`
	Status          hexutil.Uint64  `json:"status"`
	BlockNumber     hexutil.Uint64  `json:"blockNumber"`
	Logs            json.RawMessage `json:"logs"`
}

// getPrivReceipt is node's private receipt of marker, nil when it has none.
// The node holds the request up to its private receipt wait (5 s) while
// the marker's group is not applied yet, so the call waits longer than
// rpcCall's 3 s.
func (pn *privNet) getPrivReceipt(t *testing.T, node int, marker common.Hash) *privReceipt {
	t.Helper()
	var r *privReceipt
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := gethrpc.DialContext(ctx, pn.tn.url(node))
	if err == nil {
		defer c.Close()
		err = c.CallContext(ctx, &r, "priv_getTransactionReceipt", marker)
	}
	if err != nil {
		t.Fatalf("priv_getTransactionReceipt(%s) on node%d: %v", marker, node, err)
	}
	return r
}

// waitPrivReceipt waits for node's private receipt of marker.
func (pn *privNet) waitPrivReceipt(t *testing.T, node int, marker common.Hash, timeout time.Duration) *privReceipt {
	t.Helper()
	var r *privReceipt
	waitFor(t, timeout, fmt.Sprintf("node%d's private receipt of marker %s", node, marker), func() bool {
		r = pn.getPrivReceipt(t, node, marker)
		return r != nil
	})
	if r.CommitmentHash != marker {
		t.Fatalf("node%d: private receipt of marker %s has commitmentHash %s", node, marker, r.CommitmentHash)
	}
	return r
}

// sameReceipt fails t unless both receipts say the same.
func sameReceipt(t *testing.T, a, b *privReceipt, what string) {
	t.Helper()
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("%s: private receipts differ:\n%s\n%s", what, ja, jb)
	}
}

// stateRoot is node's priv_debugGetStateRoot of group at block (a number
// or a tag).
func (pn *privNet) stateRoot(node int, group privGroup, block any) (common.Hash, error) {
	var root common.Hash
	if n, ok := block.(uint64); ok {
		block = hexutil.Uint64(n)
	}
	err := rpcCall(pn.tn.url(node), &root, "priv_debugGetStateRoot", group.Base64, block)
	return root, err
}

// balanceOf is priv_call of token.balanceOf(owner) on node.
func (pn *privNet) balanceOf(node int, group privGroup, tok, owner common.Address) (*big.Int, error) {
	var out hexutil.Bytes
	err := rpcCall(pn.tn.url(node), &out, "priv_call", group.Base64,
		map[string]any{"to": tok, "data": hexutil.Bytes(token.BalanceOfData(owner))}, "latest")
	if err != nil {
		return nil, err
	}
	if len(out) != 32 {
		return nil, fmt.Errorf("balanceOf answered %d bytes %x, want 32", len(out), out)
	}
	return new(big.Int).SetBytes(out), nil
}

// wantBalance fails t unless every node of nodes answers want.
func (pn *privNet) wantBalance(t *testing.T, nodes []int, group privGroup, tok, owner common.Address, want int64) {
	t.Helper()
	for _, n := range nodes {
		got, err := pn.balanceOf(n, group, tok, owner)
		if err != nil || got.Cmp(big.NewInt(want)) != 0 {
			t.Fatalf("node%d: priv_call balanceOf(%s) on token %s = %v, %v; want %d", n, owner, tok, got, err, want)
		}
	}
}

// wantRefused fails t unless err is a JSON-RPC error containing every one
// of want (case-insensitive).
func wantRefused(t *testing.T, err error, what string, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want a refusal naming %q", what, want)
	}
	for _, w := range want {
		if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(w)) {
			t.Fatalf("%s: %v; want a refusal naming %q", what, err, want)
		}
	}
}

// wantRefusedAny fails t unless err is an error containing one of want.
func wantRefusedAny(t *testing.T, err error, what string, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want a refusal naming one of %q", what, want)
	}
	for _, w := range want {
		if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(w)) {
			return
		}
	}
	t.Fatalf("%s: %v; want a refusal naming one of %q", what, err, want)
}

// deployToken deploys the ERC-20 privately from org0's dev account k and
// returns its private address and the marker.
func (pn *privNet) deployToken(t *testing.T, node int, group privGroup, k int, supply int64) (common.Address, common.Hash) {
	t.Helper()
	m := pn.sendPriv(t, node, pn.dev[k].Key, 0, group, nil, token.DeployData(big.NewInt(supply)))
	r := pn.waitPrivReceipt(t, node, m, 30*time.Second)
	if r.Status != 1 || r.ContractAddress == nil {
		t.Fatalf("private deployment %s on node%d: status %d, contract %v", m, node, r.Status, r.ContractAddress)
	}
	return *r.ContractAddress, m
}

// transferData is token.transfer(to, value) with extra appended after the
// arguments (the token's ABI decoder ignores trailing calldata).
func transferData(to common.Address, value int64, extra []byte) []byte {
	return append(token.TransferData(to, big.NewInt(value)), extra...)
}

// filesHolding walks root and returns the files whose bytes contain needle.
func filesHolding(t *testing.T, root string, needle []byte) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // pebble removed it while we walked
			}
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if bytes.Contains(b, needle) {
			rel, _ := filepath.Rel(root, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

// receiptOf waits for node's public receipt of hash.
func receiptOf(t *testing.T, url string, hash common.Hash, timeout time.Duration) *types.Receipt {
	t.Helper()
	var r *types.Receipt
	waitFor(t, timeout, "public receipt of "+hash.Hex(), func() bool {
		err := rpcCall(url, &r, "eth_getTransactionReceipt", hash)
		return err == nil && r != nil
	})
	return r
}

// sendPublic signs and sends a public transaction of key to `to` through
// url and waits for its receipt.
func (pn *privNet) sendPublic(t *testing.T, url string, key *ecdsa.PrivateKey, to common.Address, data []byte) *types.Receipt {
	t.Helper()
	from := crypto.PubkeyToAddress(key.PublicKey)
	var nonce hexutil.Uint64
	if err := rpcCall(url, &nonce, "eth_getTransactionCount", from, "pending"); err != nil {
		t.Fatal(err)
	}
	tx := types.MustSignNewTx(key, types.LatestSignerForChainID(pn.chainID), &types.DynamicFeeTx{ChainID: pn.chainID,
		Nonce: uint64(nonce), To: &to, Gas: 2_000_000, GasFeeCap: big.NewInt(1_000_000_000), GasTipCap: big.NewInt(1), Data: data})
	raw, _ := tx.MarshalBinary()
	var h common.Hash
	if err := rpcCall(url, &h, "eth_sendRawTransaction", hexutil.Encode(raw)); err != nil {
		t.Fatalf("eth_sendRawTransaction: %v", err)
	}
	return receiptOf(t, url, tx.Hash(), 30*time.Second)
}

// --- 1 ---

// testContractOfTwoOrgs: org0 and org1 share a private ERC-20; org2 sees
// the markers only; the plaintext is on org0's and org1's disks only.
func (pn *privNet) testContractOfTwoOrgs(t *testing.T) {
	g := pn.createGroup(t, 0, "two-orgs", 1)
	dev := pn.dev[0]
	org1 := crypto.PubkeyToAddress(pn.admin[1].PublicKey)
	secret := plaintext(t)

	tok, _ := pn.deployToken(t, 0, g, 0, 1_000_000)
	m := pn.sendPriv(t, 0, dev.Key, 0, g, &tok, transferData(org1, 1234, secret))
	r0 := pn.waitPrivReceipt(t, 0, m, 30*time.Second)
	r1 := pn.waitPrivReceipt(t, 1, m, 30*time.Second)
	if r0.Status != 1 || r0.From != dev.Address || r0.To == nil || *r0.To != tok || r0.PrivacyGroupID != g.Base64 {
		t.Fatalf("node0's private receipt of the transfer: %+v", r0)
	}
	var logs []struct {
		Address common.Address `json:"address"`
		Topics  []common.Hash  `json:"topics"`
	}
	if err := json.Unmarshal(r0.Logs, &logs); err != nil || len(logs) != 1 || logs[0].Address != tok ||
		logs[0].Topics[0] != token.Parsed().Events["Transfer"].ID {
		t.Fatalf("node0's private receipt of the transfer: logs %s (%v), want one Transfer of %s", r0.Logs, err, tok)
	}
	sameReceipt(t, r0, r1, "transfer on node0 and node1")
	if r0.TransactionHash != pn.hashes[m] {
		t.Errorf("private receipt of marker %s: transactionHash %s, want the private transaction's hash %s", m, r0.TransactionHash, pn.hashes[m])
	}

	// The same private state on both members, at the marker's block and
	// at the head.
	for _, at := range []any{uint64(r0.BlockNumber), "latest"} {
		a, err0 := pn.stateRoot(0, g, at)
		b, err1 := pn.stateRoot(1, g, at)
		if err0 != nil || err1 != nil || a != b || a == (common.Hash{}) || a == types.EmptyRootHash {
			t.Fatalf("priv_debugGetStateRoot at %v: node0 %s (%v), node1 %s (%v); want one non-empty root", at, a, err0, b, err1)
		}
	}
	pn.wantBalance(t, []int{0, 1}, g, tok, org1, 1234)
	pn.wantBalance(t, []int{0, 1}, g, tok, dev.Address, 1_000_000-1234)

	// org2's node holds nothing of the group.
	if r := pn.getPrivReceipt(t, 2, m); r != nil {
		t.Fatalf("node2 (org2, not a member) answers a private receipt: %+v", r)
	}
	_, err := pn.balanceOf(2, g, tok, org1)
	wantRefused(t, err, "priv_call on node2", "not found")
	var code hexutil.Bytes
	err = rpcCall(pn.tn.url(2), &code, "priv_getCode", g.Base64, tok, "latest")
	wantRefused(t, err, "priv_getCode on node2", "not found")
	var plogs []json.RawMessage
	err = rpcCall(pn.tn.url(2), &plogs, "priv_getLogs", g.Base64, map[string]any{"fromBlock": "earliest", "toBlock": "latest"})
	wantRefused(t, err, "priv_getLogs on node2", "not found")
	if err := rpcCall(pn.tn.url(0), &plogs, "priv_getLogs", g.Base64, map[string]any{"fromBlock": "earliest", "toBlock": "latest", "address": tok}); err != nil || len(plogs) != 2 {
		t.Fatalf("priv_getLogs on node0: %d logs, %v; want the mint and the transfer", len(plogs), err)
	}

	// The public chain shows the marker, and nothing of the plaintext.
	pub := receiptOf(t, pn.tn.url(2), m, 10*time.Second)
	markerEvent := system.Registry.Events["PrivateMarker"]
	if pub.Status != 1 || len(pub.Logs) != 1 || pub.Logs[0].Address != system.RegistryAddress ||
		pub.Logs[0].Topics[0] != markerEvent.ID || pub.Logs[0].Topics[1] != g.ID {
		t.Fatalf("node2's public receipt of marker %s: status %d, logs %+v; want one PrivateMarker of the group", m, pub.Status, pub.Logs)
	}
	if bytes.Contains(pub.Logs[0].Data, secret) {
		t.Fatal("the PrivateMarker event holds the plaintext")
	}
	var tx struct {
		From  common.Address  `json:"from"`
		To    *common.Address `json:"to"`
		Input hexutil.Bytes   `json:"input"`
	}
	if err := rpcCall(pn.tn.url(2), &tx, "eth_getTransactionByHash", m); err != nil {
		t.Fatal(err)
	}
	method := system.Registry.Methods["privateMarker"]
	if tx.To == nil || *tx.To != system.RegistryAddress || tx.From != pn.tn.ids[0] || len(tx.Input) < 4 || !bytes.Equal(tx.Input[:4], method.ID) {
		t.Fatalf("marker %s: from %s to %v input %x; want node0's id calling the registry's privateMarker", m, tx.From, tx.To, tx.Input)
	}
	args, err := method.Inputs.Unpack(tx.Input[4:])
	if err != nil || len(args) != 3 || args[0].([32]byte) != g.ID || len(args[2].([]string)) != 0 {
		t.Fatalf("marker %s: privateMarker arguments %v (%v); want the group, a payload hash, no members", m, args, err)
	}
	if bytes.Contains(tx.Input, secret) {
		t.Fatalf("marker %s: its input holds the plaintext", m)
	}

	// Every byte on disk: the plaintext is only on the members' nodes.
	for k := range pn.tn.ep.Nodes {
		files := filesHolding(t, pn.home(k), secret)
		t.Logf("node%d: plaintext in %v", k, files)
		switch {
		case k <= 1 && len(files) == 0:
			t.Errorf("node%d (org%d, member): the plaintext is in none of its files; where does it keep the group's transactions?", k, k)
		case k <= 1:
			for _, f := range files {
				if !strings.HasPrefix(f, filepath.Join("data", "private", "groups", hex.EncodeToString(g.ID[:]))) {
					t.Errorf("node%d: the plaintext is in %s, outside the group's folder", k, f)
				}
			}
		case len(files) > 0:
			t.Errorf("node%d (org%d, not a member): the plaintext is in %v", k, k, files)
		}
	}
	if _, err := os.Stat(filepath.Join(pn.home(2), "data", "private", "groups", hex.EncodeToString(g.ID[:]))); err == nil {
		t.Error("node2 (not a member) has a folder for the group")
	}
}

// --- 2 ---

// testCatchUpAfterKill9: an org1 node killed while private transfers flow
// catches up to the same private state; an organization added to the
// group later reads from its joining on.
func (pn *privNet) testCatchUpAfterKill9(t *testing.T) {
	g := pn.createGroup(t, 0, "catch-up", 1)
	dev := pn.dev[1]
	org1 := crypto.PubkeyToAddress(pn.admin[1].PublicKey)
	tok, _ := pn.deployToken(t, 0, g, 1, 1_000_000)
	pn.waitPrivReceipt(t, 1, pn.sendPriv(t, 0, dev.Key, 0, g, &tok, transferData(org1, 1, nil)), 30*time.Second)

	// Transfers every 50 ms: a few before the kill, during the outage,
	// after the restart.
	var markers []common.Hash
	send := func(n int) {
		for i := 0; i < n; i++ {
			markers = append(markers, pn.sendPriv(t, 0, dev.Key, 0, g, &tok, transferData(org1, 1, nil)))
			time.Sleep(50 * time.Millisecond) // the flow's pace, not a wait for a condition
		}
	}
	send(5)
	pn.tn.kill9(1)
	send(20)
	pn.tn.restart(1)
	send(5)
	const total = 1 + 30
	last := pn.waitPrivReceipt(t, 0, markers[len(markers)-1], 30*time.Second)
	want, err := pn.stateRoot(0, g, uint64(last.BlockNumber))
	if err != nil {
		t.Fatal(err)
	}
	var got common.Hash
	waitFor(t, 60*time.Second, "the restarted node1 reaches node0's private state root", func() bool {
		got, err = pn.stateRoot(1, g, uint64(last.BlockNumber))
		return err == nil && got == want
	})
	for _, m := range markers {
		sameReceipt(t, pn.waitPrivReceipt(t, 0, m, 10*time.Second), pn.waitPrivReceipt(t, 1, m, 10*time.Second), "transfer "+m.Hex())
	}
	pn.wantBalance(t, []int{0, 1}, g, tok, org1, total)

	// org2 joins the group. A member is entitled to the group's whole
	// history: its node replays the group from its start, fetching the
	// payloads of earlier markers from the members, who give them to
	// org2's key, and reaches the same private state as the others.
	before := markers[len(markers)-1]
	out := charter(t, false, "privacy", "group", "add", g.ID.Hex(), "org2", "--key", pn.adminKeyFile(0), "--rpc", pn.tn.url(0), "--json")
	t.Logf("group add: %s", strings.TrimSpace(out))
	org2 := crypto.PubkeyToAddress(pn.admin[2].PublicKey)
	fresh := pn.dev[8] // no private transaction in the group before the join
	tok2, m2 := pn.deployToken(t, 0, g, 8, 500)
	after := pn.sendPriv(t, 0, fresh.Key, 0, g, &tok2, transferData(org2, 7, nil))
	ra := pn.waitPrivReceipt(t, 0, after, 30*time.Second)
	for _, n := range []int{1, 2} {
		sameReceipt(t, ra, pn.waitPrivReceipt(t, n, after, 30*time.Second), fmt.Sprintf("after the join, node0 and node%d", n))
		sameReceipt(t, pn.getPrivReceipt(t, 0, m2), pn.getPrivReceipt(t, n, m2), fmt.Sprintf("deployment after the join, node0 and node%d", n))
	}
	pn.wantBalance(t, []int{0, 1, 2}, g, tok2, org2, 7)
	// The history: a marker before the join has the same receipt on the
	// new member's node, the earlier token is there with its balances, and
	// a sender that transacted before the join is decided alike.
	sameReceipt(t, pn.waitPrivReceipt(t, 0, before, 10*time.Second), pn.waitPrivReceipt(t, 2, before, 60*time.Second), "a transfer before the join, node0 and node2")
	pn.wantBalance(t, []int{0, 1, 2}, g, tok, org1, total)
	old := pn.sendPriv(t, 0, dev.Key, 0, g, &tok2, transferData(org2, 0, nil))
	ro := pn.waitPrivReceipt(t, 0, old, 30*time.Second)
	if ro2 := pn.waitPrivReceipt(t, 2, old, 30*time.Second); ro.Status != ro2.Status || ro.Status != 1 {
		t.Errorf("a transfer by %s, who sent before org2 joined: status %d on node0, %d on the new member's node2, want 0x1 on both", dev.Address, ro.Status, ro2.Status)
	}
	var r0, r2 common.Hash
	waitFor(t, 30*time.Second, "node2 reaches node0's private state root", func() bool {
		r0, _ = pn.stateRoot(0, g, uint64(ro.BlockNumber))
		r2, _ = pn.stateRoot(2, g, uint64(ro.BlockNumber))
		return r0 == r2 && r0 != (common.Hash{})
	})
}

// --- 3 ---

// testPurge: a group every member purges leaves no plaintext on any disk;
// its markers stay; the public chain and another group go on.
func (pn *privNet) testPurge(t *testing.T) {
	g := pn.createGroup(t, 0, "to-purge", 1)
	other := pn.createGroup(t, 0, "stays", 1)
	dev := pn.dev[2]
	org1 := crypto.PubkeyToAddress(pn.admin[1].PublicKey)
	secret := plaintext(t)
	tok, deploy := pn.deployToken(t, 0, g, 2, 1000)
	m := pn.sendPriv(t, 0, dev.Key, 0, g, &tok, transferData(org1, 10, secret))
	pn.waitPrivReceipt(t, 0, m, 30*time.Second)
	pn.waitPrivReceipt(t, 1, m, 30*time.Second)
	otherTok, _ := pn.deployToken(t, 0, other, 2, 1000)
	for k := 0; k < 2; k++ {
		if files := filesHolding(t, pn.home(k), secret); len(files) == 0 {
			t.Fatalf("node%d: the plaintext is in none of its files before the purge; the purge test cannot tell anything", k)
		}
	}

	for k := 0; k < 2; k++ {
		out := charter(t, false, "privacy", "purge", g.ID.Hex(), "--key", pn.adminKeyFile(k), "--rpc", pn.tn.url(k), "--json")
		t.Logf("purge by org%d: %s", k, strings.TrimSpace(out))
	}
	for k := 0; k < 2; k++ {
		eventually(t, 30*time.Second, fmt.Sprintf("node%d's priv_call to answer that the group was purged", k), func() error {
			b, err := pn.balanceOf(k, g, tok, org1)
			if err != nil && (strings.Contains(err.Error(), "purged") || strings.Contains(err.Error(), "not found")) {
				return nil
			}
			return fmt.Errorf("balanceOf answers %v, %v", b, err)
		})
		for _, mk := range []common.Hash{deploy, m} {
			if r := pn.getPrivReceipt(t, k, mk); r != nil {
				t.Fatalf("node%d: a private receipt of marker %s after the purge: %+v", k, mk, r)
			}
		}
		_, err := pn.stateRoot(k, g, "latest")
		wantRefusedAny(t, err, fmt.Sprintf("priv_debugGetStateRoot on node%d after the purge", k), "purged", "not found")
	}
	for k := range pn.tn.ep.Nodes {
		if files := filesHolding(t, pn.home(k), secret); len(files) > 0 {
			t.Errorf("node%d: the plaintext is still in %v after the purge", k, files)
		}
		var tx map[string]any
		if err := rpcCall(pn.tn.url(k), &tx, "eth_getTransactionByHash", m); err != nil || tx == nil {
			t.Errorf("node%d: the marker %s is gone from the public chain after the purge: %v", k, m, err)
		}
	}
	// The purged group takes no more transactions; the other group and
	// the public chain go on.
	var h common.Hash
	err := rpcCall(pn.tn.url(0), &h, "eea_sendRawTransaction", hexutil.Encode(pn.signPriv(t, dev.Key, 0, g.ID, pn.nextNonce(t, 0, g, dev.Address), &tok, transferData(org1, 1, nil))))
	wantRefusedAny(t, err, "eea_sendRawTransaction to the purged group", "purged", "not found")
	om := pn.sendPriv(t, 0, dev.Key, 0, other, &otherTok, transferData(org1, 3, nil))
	sameReceipt(t, pn.waitPrivReceipt(t, 0, om, 30*time.Second), pn.waitPrivReceipt(t, 1, om, 30*time.Second), "the other group after the purge")
	pn.wantBalance(t, []int{0, 1}, other, otherTok, org1, 3)
	if err := transfer(t, pn.tn.url(2), pn.dev[3].Key, common.Address{0xbe, 0xef}, big.NewInt(1)); err != nil {
		t.Fatalf("public transfer after the purge: %v", err)
	}
}

// --- 4 ---

// testAuditor: org3, holding the auditor role and granted from height H by
// both members, reads the group's private transactions from H on only,
// the grant and the disclosures are on the log, and it cannot send.
func (pn *privNet) testAuditor(t *testing.T) {
	url := pn.tn.url(0)
	auditor := crypto.PubkeyToAddress(pn.admin[3].PublicKey)
	// The auditor role is governance's to give (grant-roles, 3 of 4).
	id := proposeJSON(t, "grant-roles", "--account", auditor.Hex(), "--org", "org3", "--roles", "read,write,admin,auditor",
		"--memo", "org3 audits", "--key", pn.adminKeyFile(0), "--rpc", url)
	for k := 0; k < 3; k++ {
		charter(t, false, "gov", "vote", strconv.FormatUint(id, 10), "yes", "--key", pn.adminKeyFile(k), "--rpc", pn.tn.url(k))
	}
	waitFor(t, 30*time.Second, "grant-roles executed", func() bool { return showProposal(t, url, id).Status == "executed" })

	g := pn.createGroup(t, 0, "audited", 1)
	dev := pn.dev[4]
	org1 := crypto.PubkeyToAddress(pn.admin[1].PublicKey)
	early, _ := pn.deployToken(t, 0, g, 4, 100)
	earlyTransfer := pn.sendPriv(t, 0, dev.Key, 0, g, &early, transferData(org1, 1, nil))
	pn.waitPrivReceipt(t, 1, earlyTransfer, 30*time.Second)

	head, err := height(url)
	if err != nil {
		t.Fatal(err)
	}
	from := head + 10
	for k := 0; k < 2; k++ {
		charter(t, false, "privacy", "disclose", g.ID.Hex(), "--org", "org3", "--from", strconv.FormatUint(from, 10),
			"--key", pn.adminKeyFile(k), "--rpc", pn.tn.url(k), "--json")
	}
	waitFor(t, 30*time.Second, fmt.Sprintf("height %d", from), func() bool { h, err := height(url); return err == nil && h >= from })

	// An account with no private transaction in the group before the
	// grant (see the member that joins later in CatchUpAfterKill9).
	late, lateDeploy := pn.deployToken(t, 0, g, 9, 200)
	lateTransfer := pn.sendPriv(t, 0, pn.dev[9].Key, 0, g, &late, transferData(org1, 2, nil))
	r0 := pn.waitPrivReceipt(t, 0, lateTransfer, 30*time.Second)
	sameReceipt(t, r0, pn.waitPrivReceipt(t, 3, lateTransfer, 30*time.Second), "after the grant, node0 and the auditor's node3")
	sameReceipt(t, pn.getPrivReceipt(t, 0, lateDeploy), pn.getPrivReceipt(t, 3, lateDeploy), "deployment after the grant")
	pn.wantBalance(t, []int{0, 1, 3}, g, late, org1, 2)
	if r := pn.getPrivReceipt(t, 3, earlyTransfer); r != nil {
		t.Fatalf("the auditor's node3 answers a private receipt from before its grant: %+v", r)
	}
	var code hexutil.Bytes
	if err := rpcCall(pn.tn.url(3), &code, "priv_getCode", g.Base64, early, "latest"); err != nil || len(code) != 0 {
		t.Fatalf("node3: priv_getCode of the token deployed before the grant: %d bytes, %v; want none", len(code), err)
	}
	// org2, neither member nor auditor, still reads nothing.
	if r := pn.getPrivReceipt(t, 2, lateTransfer); r != nil {
		t.Fatalf("node2 answers a private receipt of the audited group: %+v", r)
	}

	// The auditor cannot send to the group, not even through its own node.
	var h common.Hash
	err = rpcCall(pn.tn.url(3), &h, "eea_sendRawTransaction",
		hexutil.Encode(pn.signPriv(t, pn.admin[3], 3, g.ID, 0, &late, transferData(org1, 1, nil))))
	wantRefusedAny(t, err, "eea_sendRawTransaction by the auditor", "member", "not found")
	t.Logf("eea_sendRawTransaction by the auditor: %v", err)

	// The log: the grant from H, and the payloads of the markers from H
	// on (and only those) served to the auditor's node.
	want := map[common.Hash]bool{pn.payloadHash(t, lateDeploy): true, pn.payloadHash(t, lateTransfer): true}
	before := pn.payloadHash(t, earlyTransfer)
	var out string
	eventually(t, 30*time.Second, "the grant and the disclosures in charter privacy log", func() error {
		out = charter(t, false, "privacy", "log", g.ID.Hex(), "--rpc", url, "--json")
		var entries []struct {
			Event       string      `json:"event"`
			Auditor     string      `json:"auditor"`
			From        uint64      `json:"from"`
			PayloadHash common.Hash `json:"payloadHash"`
		}
		if err := json.Unmarshal([]byte(out), &entries); err != nil {
			return fmt.Errorf("privacy log --json: %v", err)
		}
		granted, disclosed := false, 0
		for _, e := range entries {
			switch {
			case e.Event == "AuditorGranted" && e.Auditor == "org3" && e.From == from:
				granted = true
			case e.Event == "Disclosed" && e.PayloadHash == before:
				t.Fatalf("payload %s, from before the grant, disclosed to %s", before, e.Auditor)
			case e.Event == "Disclosed" && e.Auditor == "org3" && want[e.PayloadHash]:
				disclosed++
			}
		}
		if !granted || disclosed < len(want) {
			return fmt.Errorf("grant to org3 from %d listed: %v; %d of the %d payloads from then on disclosed", from, granted, disclosed, len(want))
		}
		return nil
	})
	t.Logf("privacy log: %s", out)
}

// payloadHash is the payload hash a marker commits to.
func (pn *privNet) payloadHash(t *testing.T, marker common.Hash) common.Hash {
	t.Helper()
	var tx struct {
		Input hexutil.Bytes `json:"input"`
	}
	if err := rpcCall(pn.tn.url(0), &tx, "eth_getTransactionByHash", marker); err != nil || len(tx.Input) < 4 {
		t.Fatalf("marker %s: %v", marker, err)
	}
	args, err := system.Registry.Methods["privateMarker"].Inputs.Unpack(tx.Input[4:])
	if err != nil || len(args) != 3 {
		t.Fatalf("marker %s: privateMarker arguments: %v", marker, err)
	}
	return args[1].([32]byte)
}

// --- 5 ---

// testRefusals: a marker whose payload no one holds makes its group wait,
// then halt, on the members' nodes, and nothing else; eea_sendRawTransaction refuses what a
// node must not send, with the reason.
func (pn *privNet) testRefusals(t *testing.T) {
	g := pn.createGroup(t, 0, "halts", 1)
	other := pn.createGroup(t, 0, "goes-on", 1)
	dev := pn.dev[5]
	org1 := crypto.PubkeyToAddress(pn.admin[1].PublicKey)
	pn.deployToken(t, 0, g, 5, 100)
	otherTok, _ := pn.deployToken(t, 0, other, 5, 100)

	// An org0 account with write orders a marker of a payload no one has.
	var bogus common.Hash
	rand.Read(bogus[:])
	data, err := system.Registry.Pack("privateMarker", [32]byte(g.ID), [32]byte(bogus), []string{})
	if err != nil {
		t.Fatal(err)
	}
	mr := pn.sendPublic(t, pn.tn.url(0), pn.dev[6].Key, system.RegistryAddress, data)
	if mr.Status != 1 {
		t.Fatalf("privateMarker by an org0 account with write: status %d", mr.Status)
	}

	// While the members look for it the group waits, and only it: the
	// other group's transfer of a later block applies promptly on both
	// members' nodes (well within the fetch rounds' thirty seconds, during
	// which an applier that fetched inline applied nothing).
	start := time.Now()
	early := pn.sendPriv(t, 0, dev.Key, 0, other, &otherTok, transferData(org1, 2, nil))
	sameReceipt(t, pn.waitPrivReceipt(t, 0, early, 10*time.Second), pn.waitPrivReceipt(t, 1, early, 10*time.Second), "the other group beside the waiting one")
	t.Logf("the other group's transfer applied on both members' nodes %s after it was sent", time.Since(start).Round(time.Millisecond))
	_, err = pn.stateRoot(1, g, mr.BlockNumber.Uint64())
	wantRefused(t, err, "priv_debugGetStateRoot of the waiting group on node1", "waiting", "fetching payload", bogus.Hex()[2:10])

	// What nodes must refuse.
	var h common.Hash
	send := func(node int, key *ecdsa.PrivateKey, org int, group common.Hash, to *common.Address, data []byte) error {
		return rpcCall(pn.tn.url(node), &h, "eea_sendRawTransaction", hexutil.Encode(pn.signPriv(t, key, org, group, 0, to, data)))
	}
	err = send(0, dev.Key, 1, other.ID, &otherTok, transferData(org1, 1, nil))
	wantRefused(t, err, "privateFrom of org1 sent to org0's node", "privateFrom")
	g23 := pn.createGroup(t, 2, "others", 3)
	err = send(0, dev.Key, 0, g23.ID, &otherTok, transferData(org1, 1, nil))
	// A non-member's node answers as for a group that does not exist.
	wantRefusedAny(t, err, "to a group of org2 and org3 through org0's node", "not a member", "not found")
	stranger, _ := crypto.GenerateKey()
	err = send(0, stranger, 0, other.ID, &otherTok, transferData(org1, 1, nil))
	wantRefused(t, err, "from an account the registry does not list", "not an account of organization org0")
	// An org0 account with read only.
	reader, _ := crypto.GenerateKey()
	setRoles, _ := system.Registry.Pack("setAccountRoles", crypto.PubkeyToAddress(reader.PublicKey), uint32(system.RoleRead))
	if r := pn.sendPublic(t, pn.tn.url(0), pn.admin[0], system.RegistryAddress, setRoles); r.Status != 1 {
		t.Fatalf("setAccountRoles(read) by org0's admin: status %d", r.Status)
	}
	err = send(0, reader, 0, other.ID, &otherTok, transferData(org1, 1, nil))
	wantRefused(t, err, "from an org0 account with read only", "write")

	// The group halts on both members, saying why; the public chain and the
	// other group go on.
	for k := 0; k < 2; k++ {
		waitFor(t, 60*time.Second, fmt.Sprintf("node%d halts the group at block %d", k, mr.BlockNumber), func() bool {
			_, err := pn.stateRoot(k, g, mr.BlockNumber.Uint64())
			return err != nil && strings.Contains(err.Error(), "halted")
		})
		_, err := pn.stateRoot(k, g, mr.BlockNumber.Uint64())
		wantRefused(t, err, fmt.Sprintf("priv_debugGetStateRoot on node%d", k), "halted", bogus.Hex()[2:10])
		t.Logf("node%d: %v", k, err)
	}
	om := pn.sendPriv(t, 0, dev.Key, 0, other, &otherTok, transferData(org1, 5, nil))
	sameReceipt(t, pn.waitPrivReceipt(t, 0, om, 30*time.Second), pn.waitPrivReceipt(t, 1, om, 30*time.Second), "the other group beside the halted one")
	pn.wantBalance(t, []int{0, 1}, other, otherTok, org1, 7)
	if err := transfer(t, pn.tn.url(1), pn.dev[7].Key, common.Address{0xbe, 0xef}, big.NewInt(1)); err != nil {
		t.Fatalf("public transfer beside the halted group: %v", err)
	}
}
