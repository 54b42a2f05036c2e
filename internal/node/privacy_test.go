package node

import (
	"context"
	"crypto/ecdsa"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/privacy"
	"github.com/charter-ledger/charter/internal/privacy/privtx"
	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
)

// privNode is a one-node chain whose organization holds a privacy key and
// whose node is registered (as charter dev makes it).
type privNode struct {
	*testNode
	key *privacy.PrivateKey
}

func startPrivNode(t *testing.T, dir string, pkey *privacy.PrivateKey) *privNode {
	return startPrivNodeB(t, dir, pkey)
}

func startPrivNodeB(t testing.TB, dir string, pkey *privacy.PrivateKey) *privNode {
	return startPrivNodeSpec(t, dir, pkey, nil)
}

// startPrivNodeSpec is startPrivNode with edit applied to the spec first.
func startPrivNodeSpec(t testing.TB, dir string, pkey *privacy.PrivateKey, edit func(*chain.Spec)) *privNode {
	t.Helper()
	spec, err := chain.DevSpec(1337, 200)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(spec)
	}
	accts, err := chain.DevAccounts(chain.DevAccountCount)
	if err != nil {
		t.Fatal(err)
	}
	nodeKey, _ := crypto.HexToECDSA("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
	id := crypto.PubkeyToAddress(nodeKey.PublicKey)
	spec.Governance.Nodes = append(spec.Governance.Nodes, system.GenesisNode{ID: id, Org: chain.DevOrg})
	spec.Alloc[id] = types.Account{Balance: new(big.Int).Set(NodeBalance)}
	dev := spec.Org(chain.DevOrg)
	dev.PrivacyKey, dev.PrivacyKEM = pkey.Public().Identity().String(), pkey.Public().KEMString()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{DataDir: dir, Spec: spec, NodeKey: nodeKey, HTTPAddr: "127.0.0.1:0", DevAccounts: accts,
		PrivacyKey: pkey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return &privNode{testNode: &testNode{Node: n, accts: accts, signer: types.LatestSignerForChainID(big.NewInt(1337))}, key: pkey}
}

func (pn *privNode) sendPrivate(t *testing.T, key *ecdsa.PrivateKey, group common.Hash, nonce uint64, to *common.Address, data []byte) common.Hash {
	t.Helper()
	me := pn.key.Public().Identity()
	tx := &privtx.Tx{Nonce: nonce, GasPrice: new(big.Int), Gas: 3_000_000, To: to, Value: new(big.Int), Data: data,
		PrivateFrom: me[:], PrivacyGroupID: group[:], Restriction: privtx.Restricted}
	if err := privtx.SignTx(tx, big.NewInt(1337), key); err != nil {
		t.Fatal(err)
	}
	raw, err := tx.Encode()
	if err != nil {
		t.Fatal(err)
	}
	marker, err := pn.priv.SendRaw(context.Background(), raw)
	if err != nil {
		t.Fatalf("SendRaw: %v", err)
	}
	return marker
}

// privateReceipt waits for the private receipt of a marker.
func (pn *privNode) privateReceipt(t *testing.T, marker common.Hash) *rpc.PrivateReceipt {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := pn.priv.Receipt(marker)
		if err != nil {
			t.Fatal(err)
		}
		if r != nil {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no private receipt for marker %s", marker.Hex())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPrivateTransactionsOnOneNode(t *testing.T) {
	pkey, err := privacy.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pn := startPrivNode(t, dir, pkey)
	alice := pn.accts[0].Key
	bob := pn.accts[1].Address

	me := pkey.Public().Identity()
	group, err := pn.priv.CreateGroup(context.Background(), [][]byte{me[:]}, "ledger", "a group of one")
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	secret := []byte("CHARTER-PRIVATE-" + group.Hex()[2:18])
	deploy := append(token.DeployData(big.NewInt(1_000_000)), secret...)
	r := pn.privateReceipt(t, pn.sendPrivate(t, alice, group, 0, nil, deploy))
	if r.Status != types.ReceiptStatusSuccessful || r.Rejected != "" {
		t.Fatalf("private deployment: status %d, rejected %q", r.Status, r.Rejected)
	}
	tokenAddr := r.ContractAddress
	r = pn.privateReceipt(t, pn.sendPrivate(t, alice, group, 1, &tokenAddr, token.TransferData(bob, big.NewInt(250))))
	if r.Status != types.ReceiptStatusSuccessful || len(r.Logs) != 1 {
		t.Fatalf("private transfer: status %d, %d logs, rejected %q", r.Status, len(r.Logs), r.Rejected)
	}

	// The public chain holds the marker, which shows nothing of the payload.
	mtx, _, _ := pn.ledger.TxLookup(r.Marker)
	block := pn.ledger.BlockByNumber(mtx)
	for _, tx := range block.Transactions() {
		if strings.Contains(string(tx.Data()), string(secret)) {
			t.Fatal("a public transaction carries the private payload's plaintext")
		}
	}
	if code, err := pn.priv.Code(group, pn.ledger.Head().Number.Uint64(), tokenAddr); err != nil || len(code) == 0 {
		t.Fatalf("private code: %d bytes, %v", len(code), err)
	}
	if st, _ := pn.ledger.StateAt(pn.ledger.Head().Root); len(st.GetCode(tokenAddr)) != 0 {
		t.Fatal("the private contract's code is in the public state")
	}
	balance := func() *big.Int {
		t.Helper()
		parsed, _ := abi.JSON(strings.NewReader(token.ABI))
		data, _ := parsed.Pack("balanceOf", bob)
		res, err := pn.priv.Call(context.Background(), group, pn.ledger.Head().Number.Uint64(),
			&core.Message{From: bob, To: &tokenAddr, Data: data, GasLimit: 1_000_000, Value: new(uint256.Int)})
		if err != nil || res.Failed() {
			t.Fatalf("private balanceOf: %v %v", err, res)
		}
		return new(big.Int).SetBytes(res.ReturnData)
	}
	if b := balance(); b.Int64() != 250 {
		t.Fatalf("bob's private balance %s, want 250", b)
	}
	if n, err := pn.priv.Nonce(group, pn.accts[0].Address); err != nil || n != 2 {
		t.Fatalf("private nonce %d %v, want 2", n, err)
	}
	root, err := pn.priv.StateRoot(group, pn.ledger.Head().Number.Uint64())
	if err != nil || root == (common.Hash{}) || root == types.EmptyRootHash {
		t.Fatalf("private state root %s %v", root, err)
	}

	// A private transaction from an account without write of the node's
	// organization is refused before anything is sent.
	outsider, _ := crypto.GenerateKey()
	bad := &privtx.Tx{GasPrice: new(big.Int), Gas: 100_000, To: &tokenAddr, Value: new(big.Int), PrivateFrom: me[:], PrivacyGroupID: group[:], Restriction: privtx.Restricted}
	if err := privtx.SignTx(bad, big.NewInt(1337), outsider); err != nil {
		t.Fatal(err)
	}
	raw, _ := bad.Encode()
	if _, err := pn.priv.SendRaw(context.Background(), raw); err == nil || !strings.Contains(err.Error(), "not permitted") {
		t.Fatalf("an outsider's private transaction: %v, want not permitted", err)
	}

	// The plaintext is on disk only in the group's folder.
	found := grepDir(t, dir, secret)
	for _, f := range found {
		if !strings.HasPrefix(f, filepath.Join(dir, privacyDir, "groups")) {
			t.Fatalf("the private plaintext is in %s, outside the group's folder", f)
		}
	}
	if len(found) == 0 {
		t.Fatal("the private plaintext is nowhere on disk: the test cannot tell where it would be")
	}

	// Restart: the applier does not apply anything twice, reads answer the same.
	pn.Stop()
	pn2 := startPrivNode(t, dir, pkey)
	pn2.priv.worker.poke()
	if got, err := pn2.priv.StateRoot(group, pn.ledger.Head().Number.Uint64()); err != nil || got != root {
		t.Fatalf("after a restart the private root is %s (%v), was %s", got, err, root)
	}
}

// grepDir lists the files under dir that contain needle.
func grepDir(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), string(needle)) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// BenchmarkSendRawPrivate measures eea_sendRawTransaction's work on the
// sending node: checks, sealing, keeping and pushing the payload, the
// marker.
func BenchmarkSendRawPrivate(b *testing.B) {
	pkey, err := privacy.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	pn := startPrivNodeB(b, b.TempDir(), pkey)
	me := pkey.Public().Identity()
	group, err := pn.priv.CreateGroup(context.Background(), [][]byte{me[:]}, "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]*ecdsa.PrivateKey, 10)
	for i := range keys {
		keys[i] = pn.accts[i].Key
	}
	to := common.Address{1}
	raws := make([][]byte, b.N)
	for i := range raws {
		tx := &privtx.Tx{Nonce: uint64(i / len(keys)), GasPrice: new(big.Int), Gas: 60_000, To: &to, Value: new(big.Int),
			Data: token.TransferData(common.Address{2}, big.NewInt(1)), PrivateFrom: me[:], PrivacyGroupID: group[:], Restriction: privtx.Restricted}
		if err := privtx.SignTx(tx, big.NewInt(1337), keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
		raws[i], _ = tx.Encode()
	}
	b.ResetTimer()
	for i := range raws {
		if _, err := pn.priv.SendRaw(context.Background(), raws[i]); err != nil {
			b.Fatal(err)
		}
	}
}
