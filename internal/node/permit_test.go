package node

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/execution/evmtest"
	"github.com/charter-ledger/charter/internal/system"
)

// deployContract sends a creation of code from key and returns the new
// contract's address.
func deployContract(t *testing.T, tn *testNode, key *ecdsa.PrivateKey, code []byte) common.Address {
	t.Helper()
	ctx := context.Background()
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := tn.client.PendingNonceAt(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	tx := tn.sign(t, key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce, Gas: 2_000_000, GasFeeCap: big.NewInt(1_000_000_000), GasTipCap: big.NewInt(1), Data: code})
	if err := tn.client.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if r := tn.waitReceipt(t, tx.Hash()); r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("deployment %s failed", tx.Hash())
	}
	return crypto.CreateAddress(from, nonce)
}

// TestPermissionsAtEveryFrameOverRPC drives the rules at every EVM frame
// through JSON-RPC, as a client sees them: a factory's CREATE by an account
// without deploy fails (and eth_call says why), a forwarder's call to a
// frozen contract fails in its frame and leaves the contract's storage as
// it was, and the pool refuses a set-code transaction that carries a
// frozen account's authorization.
func TestPermissionsAtEveryFrameOverRPC(t *testing.T) {
	tn := startNode(t, t.TempDir())
	ctx := context.Background()
	admin, writer, victim := tn.accts[0], tn.accts[5], tn.accts[6]
	counter := deployContract(t, tn, admin.Key, evmtest.Counter.Code)
	forwarder := deployContract(t, tn, admin.Key, evmtest.Forwarder.Code)
	factory := deployContract(t, tn, admin.Key, evmtest.Factory.Code)
	sweeper := deployContract(t, tn, admin.Key, evmtest.Sweeper.Code)
	roles, err := system.Registry.Pack("setAccountRoles", writer.Address, uint32(system.RoleRead|system.RoleWrite))
	if err != nil {
		t.Fatal(err)
	}
	sendOK(t, "take deploy from the writer", tn.client, admin.Key, system.RegistryAddress, roles)

	// CREATE through a contract that is no factory, by a sender without deploy.
	create := evmtest.Factory.Pack("make")
	r, err := sendTx(t, tn.client, writer.Key, factory, nil, create)
	if err != nil {
		t.Fatalf("factory CREATE without deploy: %v; want a failed transaction, not a refusal", err)
	}
	if r.Status != types.ReceiptStatusFailed || r.GasUsed != 2_000_000 {
		t.Fatalf("factory CREATE without deploy: status %d, gas used %d; want a failed transaction that used all its 2,000,000 gas", r.Status, r.GasUsed)
	}
	if code, _ := tn.client.CodeAt(ctx, crypto.CreateAddress(factory, 1), nil); len(code) != 0 {
		t.Fatal("the factory created a contract for a sender without deploy")
	}
	_, err = tn.client.CallContract(ctx, ethereum.CallMsg{From: writer.Address, To: &factory, Data: create}, nil)
	if err == nil || !strings.Contains(err.Error(), "lacks role deploy and "+factory.Hex()+" is not a factory") {
		t.Fatalf("eth_call of the creation: err = %v, want the reason", err)
	}
	// The admin holds deploy: the same call creates.
	sendOK(t, "factory CREATE with deploy", tn.client, admin.Key, factory, create)
	if code, _ := tn.client.CodeAt(ctx, crypto.CreateAddress(factory, 1), nil); len(code) == 0 {
		t.Fatal("the factory created nothing for a sender with deploy")
	}

	// Freeze the counter and the victim by governance.
	bump := evmtest.Counter.Pack("bump")
	sendOK(t, "bump before the freeze", tn.client, writer.Key, forwarder, evmtest.Forwarder.Pack("callTo", counter, bump))
	var ids []uint64
	for _, a := range []common.Address{counter, victim.Address} {
		id := propose(t, tn.client, admin.Key, system.ActFreeze, a)
		sendOK(t, "vote", tn.client, admin.Key, system.GovernanceAddress, govCall(t, "vote", id, true))
		ids = append(ids, id)
	}
	waitUntil(t, 10*time.Second, "the freezes executed", func() bool {
		return proposalStatus(t, tn.Node, ids[0]) == system.ProposalExecuted && proposalStatus(t, tn.Node, ids[1]) == system.ProposalExecuted
	})

	// The forwarder's call of the frozen counter fails in its frame.
	sendOK(t, "forward to the frozen counter", tn.client, writer.Key, forwarder, evmtest.Forwarder.Pack("callTo", counter, bump))
	if v, err := tn.client.StorageAt(ctx, counter, common.Hash{}, nil); err != nil || new(big.Int).SetBytes(v).Int64() != 1 {
		t.Fatalf("the frozen counter's slot 0 = %x, %v; want 1 (its value before the freeze)", v, err)
	}
	if v, err := tn.client.StorageAt(ctx, forwarder, common.BigToHash(big.NewInt(1)), nil); err != nil || new(big.Int).SetBytes(v).Sign() != 0 {
		t.Fatalf("the forwarder's record of the inner call = %x, %v; want false", v, err)
	}
	_, err = tn.client.CallContract(ctx, ethereum.CallMsg{From: writer.Address, To: &counter, Data: bump}, nil)
	if err == nil || !strings.Contains(err.Error(), "execution reverted") {
		t.Fatalf("eth_call of the frozen counter: err = %v, want a revert", err)
	}

	// A set-code transaction with the frozen victim's authorization.
	nonce, err := tn.client.PendingNonceAt(ctx, writer.Address)
	if err != nil {
		t.Fatal(err)
	}
	vnonce, err := tn.client.NonceAt(ctx, victim.Address, nil)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := types.SignSetCode(victim.Key, types.SetCodeAuthorization{ChainID: *uint256.NewInt(1337), Address: sweeper, Nonce: vnonce})
	if err != nil {
		t.Fatal(err)
	}
	sweep := tn.sign(t, writer.Key, &types.SetCodeTx{ChainID: uint256.NewInt(1337), Nonce: nonce, To: forwarder, Gas: 500_000,
		GasFeeCap: uint256.NewInt(1_000_000_000), GasTipCap: uint256.NewInt(1), AuthList: []types.SetCodeAuthorization{auth},
		Data: evmtest.Forwarder.Pack("callTo", victim.Address, evmtest.Sweeper.Pack("sweep", writer.Address))})
	err = tn.client.SendTransaction(ctx, sweep)
	if err == nil || !strings.Contains(err.Error(), "authority "+victim.Address.Hex()+" is frozen") {
		t.Fatalf("set-code transaction with a frozen authority: err = %v, want a refusal naming it", err)
	}
}
