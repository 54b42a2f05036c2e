package node

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/chain"
)

type testNode struct {
	*Node
	client *ethclient.Client
	rpc    *gethrpc.Client
	accts  []chain.DevAccount
	signer types.Signer
}

func startNode(t *testing.T, dir string) *testNode {
	t.Helper()
	return startNodeWith(t, dir, nil)
}

// startNodeWith starts a development node whose Config edit may change
// before New.
func startNodeWith(t *testing.T, dir string, edit func(*Config)) *testNode {
	t.Helper()
	spec, err := chain.DevSpec(1337, 1000)
	if err != nil {
		t.Fatal(err)
	}
	accts, err := chain.DevAccounts(chain.DevAccountCount)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := crypto.HexToECDSA("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
	cfg := Config{DataDir: dir, Spec: spec, NodeKey: key, HTTPAddr: "127.0.0.1:0", DevAccounts: accts,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if edit != nil {
		edit(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	rc, err := gethrpc.Dial("http://" + n.RPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNode{Node: n, client: ethclient.NewClient(rc), rpc: rc, accts: accts, signer: types.LatestSignerForChainID(big.NewInt(1337))}
	t.Cleanup(func() { rc.Close(); n.Stop() })
	return tn
}

func (tn *testNode) sign(t *testing.T, key *ecdsa.PrivateKey, inner types.TxData) *types.Transaction {
	t.Helper()
	tx, err := types.SignNewTx(key, tn.signer, inner)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// waitReceipt polls for a receipt with a deadline.
func (tn *testNode) waitReceipt(t *testing.T, hash common.Hash) *types.Receipt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		r, err := tn.client.TransactionReceipt(ctx, hash)
		if err == nil {
			return r
		}
		if !errors.Is(err, ethereum.NotFound) {
			t.Fatalf("receipt %s: %v", hash, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no receipt for %s within the deadline", hash)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func transfer(nonce uint64, to common.Address, wei int64) *types.DynamicFeeTx {
	return &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce, Gas: 21000, GasFeeCap: big.NewInt(1), GasTipCap: new(big.Int), To: &to, Value: big.NewInt(wei)}
}

func TestTransfersSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	tn := startNode(t, dir)
	ctx := context.Background()
	to := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	var hashes []common.Hash
	for i := 0; i < 5; i++ {
		for n := uint64(0); n < 10; n++ {
			tx := tn.sign(t, tn.accts[i].Key, transfer(n, to, 1000))
			if err := tn.client.SendTransaction(ctx, tx); err != nil {
				t.Fatalf("send: %v", err)
			}
			hashes = append(hashes, tx.Hash())
		}
	}
	receipts := map[common.Hash]*types.Receipt{}
	for _, h := range hashes {
		r := tn.waitReceipt(t, h)
		if r.Status != types.ReceiptStatusSuccessful || r.GasUsed != 21000 {
			t.Fatalf("receipt %s: status %d gas %d", h, r.Status, r.GasUsed)
		}
		receipts[h] = r
	}
	bal, err := tn.client.BalanceAt(ctx, to, nil)
	if err != nil || bal.Int64() != 50*1000 {
		t.Fatalf("balance = %v, %v; want 50000", bal, err)
	}
	head, err := tn.client.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tn.rpc.Close()
	tn.Stop()

	again := startNode(t, dir)
	head2, err := again.client.HeaderByNumber(ctx, nil)
	if err != nil || head2.Hash() != head.Hash() {
		t.Fatalf("head after restart = %v (%v), want %v", head2.Hash(), err, head.Hash())
	}
	for h, r := range receipts {
		r2 := again.waitReceipt(t, h)
		if r2.BlockHash != r.BlockHash || r2.TransactionIndex != r.TransactionIndex {
			t.Fatalf("receipt %s moved after restart", h)
		}
	}
	if bal, _ := again.client.BalanceAt(ctx, to, nil); bal.Int64() != 50*1000 {
		t.Fatalf("balance after restart = %v", bal)
	}
	// The chain goes on from where it was.
	tx := again.sign(t, again.accts[0].Key, transfer(10, to, 1))
	if err := again.client.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if r := again.waitReceipt(t, tx.Hash()); r.BlockNumber.Uint64() != head.Number.Uint64()+1 {
		t.Fatalf("next block %d, want %d", r.BlockNumber, head.Number.Uint64()+1)
	}
}

func TestRejectedTransactionsNameTheReason(t *testing.T) {
	tn := startNode(t, t.TempDir())
	ctx := context.Background()
	key := tn.accts[0].Key
	to := common.HexToAddress("0x00000000000000000000000000000000000000bb")
	first := tn.sign(t, key, transfer(0, to, 1))
	if err := tn.client.SendTransaction(ctx, first); err != nil {
		t.Fatal(err)
	}
	tn.waitReceipt(t, first.Hash())
	stranger, _ := crypto.GenerateKey()
	otherChain := types.MustSignNewTx(key, types.LatestSignerForChainID(big.NewInt(1)), &types.DynamicFeeTx{ChainID: big.NewInt(1), Nonce: 1, Gas: 21000, GasFeeCap: big.NewInt(1), GasTipCap: new(big.Int), To: &to})
	otherChain2 := types.MustSignNewTx(key, types.LatestSignerForChainID(big.NewInt(5)), &types.LegacyTx{Nonce: 1, Gas: 21000, GasPrice: new(big.Int), To: &to})
	unprotected := types.MustSignNewTx(key, types.HomesteadSigner{}, &types.LegacyTx{Nonce: 1, Gas: 21000, GasPrice: new(big.Int), To: &to})
	cases := []struct {
		name string
		tx   *types.Transaction
		want string
	}{
		{"nonce too low", tn.sign(t, key, transfer(0, to, 2)), "nonce too low"}, // not first again: that is already included
		{"unfunded sender", tn.sign(t, stranger, transfer(0, to, 1)), "insufficient funds"},
		{"other chain (typed)", otherChain, "invalid chain id"},
		{"other chain (EIP-155)", otherChain2, "invalid chain id"},
		{"no chain id", unprotected, "replay-protected"},
		{"intrinsic gas", tn.sign(t, key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 1, Gas: 20000, GasFeeCap: big.NewInt(1), GasTipCap: new(big.Int), To: &to}), "intrinsic gas too low"},
		{"tip above cap", tn.sign(t, key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 1, Gas: 21000, GasFeeCap: big.NewInt(1), GasTipCap: big.NewInt(2), To: &to}), "higher than max fee"},
		{"too large", tn.sign(t, key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 1, Gas: 10_000_000, GasFeeCap: big.NewInt(1), GasTipCap: new(big.Int), To: &to, Data: make([]byte, 130*1024)}), "oversized"},
		{"gas above the per-transaction limit", tn.sign(t, key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 1, Gas: 30_000_000, GasFeeCap: big.NewInt(1), GasTipCap: new(big.Int), To: &to}), "exceeds transaction gas limit"},
		{"nonce too far ahead", tn.sign(t, key, transfer(5000, to, 1)), "nonce too far"},
		{"fee cap below the base fee", tn.sign(t, key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 1, Gas: 21000, GasFeeCap: new(big.Int), GasTipCap: new(big.Int), To: &to}), "less than block base fee"},
	}
	for _, c := range cases {
		err := tn.client.SendTransaction(ctx, c.tx)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", c.name, err, c.want)
		}
	}
	// Garbage bytes are a parameter error, not a crash.
	var out any
	err := tn.rpc.Call(&out, "eth_sendRawTransaction", "0xdeadbeef")
	var rpcErr gethrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.ErrorCode() != -32602 {
		t.Errorf("garbage raw transaction: err = %v, want code -32602", err)
	}
	// The node still serves and seals.
	tx := tn.sign(t, key, transfer(1, to, 1))
	if err := tn.client.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	tn.waitReceipt(t, tx.Hash())
}

func TestNonceGapFillsAndReplacement(t *testing.T) {
	tn := startNode(t, t.TempDir())
	ctx := context.Background()
	key := tn.accts[1].Key
	to := common.HexToAddress("0x00000000000000000000000000000000000000cc")
	later := tn.sign(t, key, transfer(1, to, 2))
	if err := tn.client.SendTransaction(ctx, later); err != nil {
		t.Fatal(err)
	}
	var status map[string]string
	if err := tn.rpc.Call(&status, "txpool_status"); err != nil || status["queued"] != "0x1" || status["pending"] != "0x0" {
		t.Fatalf("txpool_status = %v, %v; want one queued", status, err)
	}
	// Replacing the queued transaction needs a 10% higher fee.
	same := tn.sign(t, key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 1, Gas: 21000, GasFeeCap: big.NewInt(1), GasTipCap: new(big.Int), To: &to, Value: big.NewInt(3)})
	if err := tn.client.SendTransaction(ctx, same); err == nil || !strings.Contains(err.Error(), "replacement transaction underpriced") {
		t.Fatalf("replacement at the same price: %v", err)
	}
	first := tn.sign(t, key, transfer(0, to, 1))
	if err := tn.client.SendTransaction(ctx, first); err != nil {
		t.Fatal(err)
	}
	r0, r1 := tn.waitReceipt(t, first.Hash()), tn.waitReceipt(t, later.Hash())
	if r1.BlockNumber.Cmp(r0.BlockNumber) < 0 {
		t.Fatal("nonce 1 committed before nonce 0")
	}
	if bal, _ := tn.client.BalanceAt(ctx, to, nil); bal.Int64() != 3 {
		t.Fatalf("balance %v, want 3", bal)
	}
}

func TestContractDeployCallLogsAndRevert(t *testing.T) {
	tn := startNode(t, t.TempDir())
	ctx := context.Background()
	owner := tn.accts[0]
	supply := big.NewInt(1_000_000)
	deploy := tn.sign(t, owner.Key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 0, Gas: 2_000_000, GasFeeCap: big.NewInt(1), GasTipCap: new(big.Int), Data: token.DeployData(supply)})
	if err := tn.client.SendTransaction(ctx, deploy); err != nil {
		t.Fatal(err)
	}
	r := tn.waitReceipt(t, deploy.Hash())
	if r.Status != 1 || r.ContractAddress != crypto.CreateAddress(owner.Address, 0) {
		t.Fatalf("deploy receipt: status %d address %s", r.Status, r.ContractAddress)
	}
	addr := r.ContractAddress
	if code, _ := tn.client.CodeAt(ctx, addr, nil); len(code) == 0 {
		t.Fatal("no code at the contract address")
	}
	bob := tn.accts[2].Address
	data := token.TransferData(bob, big.NewInt(250))
	gas, err := tn.client.EstimateGas(ctx, ethereum.CallMsg{From: owner.Address, To: &addr, Data: data})
	if err != nil || gas < 30000 || gas > 100000 {
		t.Fatalf("estimate = %d, %v", gas, err)
	}
	tx := tn.sign(t, owner.Key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 1, Gas: gas, GasFeeCap: big.NewInt(1), GasTipCap: new(big.Int), To: &addr, Data: data})
	if err := tn.client.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	tr := tn.waitReceipt(t, tx.Hash())
	if tr.Status != 1 || len(tr.Logs) != 1 || tr.Logs[0].Topics[0] != token.TransferEvent {
		t.Fatalf("transfer receipt: status %d, logs %v", tr.Status, tr.Logs)
	}
	out, err := tn.client.CallContract(ctx, ethereum.CallMsg{To: &addr, Data: token.BalanceOfData(bob)}, nil)
	if err != nil || new(big.Int).SetBytes(out).Int64() != 250 {
		t.Fatalf("balanceOf(bob) = %x, %v", out, err)
	}
	// At the deploy block bob had nothing.
	out, err = tn.client.CallContract(ctx, ethereum.CallMsg{To: &addr, Data: token.BalanceOfData(bob)}, r.BlockNumber)
	if err != nil || new(big.Int).SetBytes(out).Sign() != 0 {
		t.Fatalf("balanceOf(bob) at deploy block = %x, %v", out, err)
	}
	logs, err := tn.client.FilterLogs(ctx, ethereum.FilterQuery{Addresses: []common.Address{addr}, Topics: [][]common.Hash{{token.TransferEvent}, nil, {common.BytesToHash(bob.Bytes())}}})
	if err != nil || len(logs) != 1 || logs[0].TxHash != tx.Hash() || logs[0].BlockNumber != tr.BlockNumber.Uint64() {
		t.Fatalf("getLogs = %v, %v", logs, err)
	}
	// Moving more than the balance reverts with the custom error's data.
	_, err = tn.client.CallContract(ctx, ethereum.CallMsg{From: bob, To: &addr, Data: token.TransferData(owner.Address, big.NewInt(251))}, nil)
	var de gethrpc.DataError
	if !errors.As(err, &de) || !strings.HasPrefix(de.ErrorData().(string), "0x") || len(de.ErrorData().(string)) != 2+8+3*64 {
		t.Fatalf("reverted call: err = %v, want revert data of InsufficientBalance", err)
	}
	if _, err := tn.client.EstimateGas(ctx, ethereum.CallMsg{From: bob, To: &addr, Data: token.TransferData(owner.Address, big.NewInt(251))}); err == nil || !strings.Contains(err.Error(), "execution reverted") {
		t.Fatalf("reverting estimate: %v", err)
	}
}

func TestAllThreeTransactionTypes(t *testing.T) {
	tn := startNode(t, t.TempDir())
	ctx := context.Background()
	key := tn.accts[4].Key
	to := common.HexToAddress("0x00000000000000000000000000000000000000dd")
	txs := []*types.Transaction{
		tn.sign(t, key, &types.LegacyTx{Nonce: 0, Gas: 21000, GasPrice: big.NewInt(1), To: &to, Value: big.NewInt(1)}),
		tn.sign(t, key, &types.AccessListTx{ChainID: big.NewInt(1337), Nonce: 1, Gas: 30000, GasPrice: big.NewInt(1), To: &to, Value: big.NewInt(1),
			AccessList: types.AccessList{{Address: to, StorageKeys: []common.Hash{{1}}}}}),
		tn.sign(t, key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 2, Gas: 21000, GasFeeCap: big.NewInt(2), GasTipCap: big.NewInt(1), To: &to, Value: big.NewInt(1)}),
	}
	for _, tx := range txs {
		if err := tn.client.SendTransaction(ctx, tx); err != nil {
			t.Fatalf("type %d: %v", tx.Type(), err)
		}
	}
	for _, tx := range txs {
		r := tn.waitReceipt(t, tx.Hash())
		if r.Status != 1 || r.Type != tx.Type() {
			t.Fatalf("type %d: receipt status %d type %d", tx.Type(), r.Status, r.Type)
		}
		got, _, err := tn.client.TransactionByHash(ctx, tx.Hash())
		if err != nil || got.Hash() != tx.Hash() || got.Type() != tx.Type() {
			t.Fatalf("type %d: eth_getTransactionByHash = %v, %v", tx.Type(), got, err)
		}
	}
	if bal, _ := tn.client.BalanceAt(ctx, to, nil); bal.Int64() != 3 {
		t.Fatalf("balance %v, want 3", bal)
	}
}
