package privstate

import (
	"context"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/privacy/privtx"
	"github.com/charter-ledger/charter/internal/system"
)

// tokenScenario is a private ERC-20 of group A: deployed by alice in
// block 2, alice pays bob 100 and 250 in block 5, bob pays carol 40 in
// block 9. Blocks 1, 3, 4, 6-8 carry nothing of the group.
type tokenScenario struct {
	alice, bob, carol *account
	token             common.Address
	blocks            map[uint64][]Tx
	order             []uint64
}

func newTokenScenario(t testing.TB) *tokenScenario {
	sc := &tokenScenario{alice: newAccount(t, 1), bob: newAccount(t, 2), carol: newAccount(t, 3), blocks: map[uint64][]Tx{}}
	sc.token = sc.alice.created(0)
	sc.add(2, sc.alice.tx(t, nil, 3_000_000, token.DeployData(big.NewInt(1_000_000))))
	sc.add(5, sc.alice.tx(t, &sc.token, 100_000, token.TransferData(sc.bob.addr, big.NewInt(100))),
		sc.alice.tx(t, &sc.token, 100_000, token.TransferData(sc.bob.addr, big.NewInt(250))))
	sc.add(9, sc.bob.tx(t, &sc.token, 100_000, token.TransferData(sc.carol.addr, big.NewInt(40))))
	return sc
}

func (sc *tokenScenario) add(n uint64, txs ...Tx) {
	sc.blocks[n] = txs
	sc.order = append(sc.order, n)
}

// run applies the scenario's blocks to group, checking each succeeded.
func (sc *tokenScenario) run(t testing.TB, s *Store, c *pubChain, group common.Hash) map[uint64]*BlockResult {
	t.Helper()
	out := map[uint64]*BlockResult{}
	for _, n := range sc.order {
		res := mustApply(t, s, group, c.at(n), sc.blocks[n]...)
		mustSucceed(t, res)
		out[n] = res
	}
	return out
}

func balanceOf(t testing.TB, s *Store, c *pubChain, group common.Hash, tok, owner common.Address, at uint64) *big.Int {
	t.Helper()
	res, err := s.Call(context.Background(), group, c.at(at), &core.Message{From: owner, To: &tok, Data: token.BalanceOfData(owner)}) // no Value: a call may leave it out
	if err != nil {
		t.Fatalf("balanceOf: %v", err)
	}
	if res.Failed() {
		t.Fatalf("balanceOf reverted: %v", res.Err)
	}
	return new(big.Int).SetBytes(res.ReturnData)
}

func TestPrivateERC20DeployAndTransfer(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 12)
	s := openStore(t, t.TempDir(), c, Options{})
	defer s.Close()
	sc := newTokenScenario(t)
	results := sc.run(t, s, c, groupA)

	deploy := results[2].Receipts[0]
	if deploy.ContractAddress != sc.token || deploy.From != sc.alice.addr || deploy.To != nil {
		t.Fatalf("deploy receipt: contract %s from %s, want %s from %s", deploy.ContractAddress, deploy.From, sc.token, sc.alice.addr)
	}
	if deploy.GasUsed == 0 || deploy.BlockNumber.Uint64() != 2 || deploy.BlockHash != c.at(2).Hash() {
		t.Fatalf("deploy receipt: gas %d, block %v %s", deploy.GasUsed, deploy.BlockNumber, deploy.BlockHash)
	}
	for _, tc := range []struct {
		who  common.Address
		at   uint64
		want int64
	}{
		{sc.alice.addr, 2, 1_000_000}, {sc.bob.addr, 2, 0}, {sc.bob.addr, 4, 0},
		{sc.alice.addr, 5, 999_650}, {sc.bob.addr, 7, 350},
		{sc.bob.addr, 9, 310}, {sc.carol.addr, 9, 40}, {sc.carol.addr, 12, 40},
	} {
		if got := balanceOf(t, s, c, groupA, sc.token, tc.who, tc.at); got.Int64() != tc.want {
			t.Errorf("balanceOf(%s) after block %d = %v, want %d", tc.who.Hex(), tc.at, got, tc.want)
		}
	}

	// Private logs: the three Transfer events after the mint, in order,
	// with their derived fields.
	logs, err := s.Logs(groupA, LogQuery{From: 3, To: Latest, Addresses: []common.Address{sc.token}, Topics: [][]common.Hash{{token.TransferEvent}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 3 {
		t.Fatalf("%d Transfer logs from block 3, want 3", len(logs))
	}
	second := results[5].Receipts[1]
	if l := logs[1]; l.TxHash != second.TxHash || l.BlockNumber != 5 || l.TxIndex != 1 || l.Index != 1 || l.BlockHash != c.at(5).Hash() {
		t.Fatalf("log 1: tx %s block %d index %d/%d", l.TxHash.TerminalString(), l.BlockNumber, l.TxIndex, l.Index)
	}
	if got := new(big.Int).SetBytes(logs[2].Data); got.Int64() != 40 || common.BytesToAddress(logs[2].Topics[2][:]) != sc.carol.addr {
		t.Fatalf("log 2: value %v to %s", got, common.BytesToAddress(logs[2].Topics[2][:]))
	}
	// By marker: the same logs, each naming the marker of its transaction;
	// the logs answered before are the caller's (changing them changes
	// nothing the store answers next).
	logs[1].TxHash = common.Hash{0xee}
	byMarker, err := s.Logs(groupA, LogQuery{From: 3, To: Latest, Addresses: []common.Address{sc.token}, Topics: [][]common.Hash{{token.TransferEvent}}, ByMarker: true})
	if err != nil || len(byMarker) != 3 {
		t.Fatalf("by marker: %d logs, %v", len(byMarker), err)
	}
	if l := byMarker[1]; l.TxHash != second.Marker || l.TxHash == (common.Hash{}) || l.Index != 1 || l.BlockNumber != 5 {
		t.Fatalf("by marker, log 1: tx %s (marker %s) index %d block %d", l.TxHash.TerminalString(), second.Marker.TerminalString(), l.Index, l.BlockNumber)
	}
	again, err := s.Logs(groupA, LogQuery{From: 5, To: 5, Addresses: []common.Address{sc.token}})
	if err != nil || len(again) == 0 || again[len(again)-1].TxHash != second.TxHash {
		t.Fatalf("logs of block 5 after the caller changed an answer: %v", err)
	}
	if none, err := s.Logs(groupA, LogQuery{From: 6, To: 8}); err != nil || len(none) != 0 {
		t.Fatalf("logs of blocks 6-8: %d, %v", len(none), err)
	}

	// Receipts and transactions by hash; nonces; code.
	r, err := s.Receipt(groupA, second.TxHash)
	if err != nil || receiptText(t, r) != receiptText(t, second) {
		t.Fatalf("Receipt by hash differs from ApplyBlock's (%v)", err)
	}
	tx, number, index, err := s.Transaction(groupA, second.TxHash)
	if err != nil || tx.Hash() != second.TxHash || number != 5 || index != 1 {
		t.Fatalf("Transaction: %v at %d/%d, %v", tx, number, index, err)
	}
	if _, err := s.Receipt(groupA, common.Hash{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("receipt of an unknown transaction: %v", err)
	}
	if n, err := s.Nonce(groupA, sc.alice.addr); err != nil || n != 3 {
		t.Fatalf("alice's private nonce %d (%v), want 3", n, err)
	}
	if code, err := s.Code(groupA, 1, sc.token); err != nil || len(code) != 0 {
		t.Fatalf("code before the deployment: %d bytes, %v", len(code), err)
	}
	if code, err := s.Code(groupA, Latest, sc.token); err != nil || len(code) == 0 {
		t.Fatalf("code after the deployment: %d bytes, %v", len(code), err)
	}

	// Roots: empty before the first block, each block's after it, held
	// over the blocks in between.
	roots := map[uint64]common.Hash{}
	for n := uint64(0); n <= 12; n++ {
		if roots[n], err = s.PrivateRoot(groupA, n); err != nil {
			t.Fatal(err)
		}
	}
	switch {
	case roots[0] != types.EmptyRootHash || roots[1] != types.EmptyRootHash:
		t.Fatalf("roots before the group's first block: %s %s", roots[0], roots[1])
	case roots[2] != results[2].Root || roots[3] != roots[2] || roots[4] != roots[2]:
		t.Fatal("root of block 2 not held until block 5")
	case roots[5] != results[5].Root || roots[8] != roots[5] || roots[5] == roots[2]:
		t.Fatal("root of block 5 wrong or not held")
	case roots[9] != results[9].Root || roots[12] != roots[9] || results[9].ParentRoot != roots[8]:
		t.Fatal("root of block 9 wrong or its parent root not block 8's")
	}
	if n, root, err := s.Head(groupA); err != nil || n != 9 || root != roots[9] {
		t.Fatalf("head %d %s, %v", n, root, err)
	}
}

// Two member nodes apply the same blocks and must agree on every root and
// every receipt, byte for byte; a node that applied the same transactions
// in another order must not (the comparison can fail).
func TestMembersReachTheSameRootAndReceipts(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 12)
	node1 := openStore(t, t.TempDir(), c, Options{})
	defer node1.Close()
	node2 := openStore(t, t.TempDir(), c, Options{MaxOpenGroups: 1})
	defer node2.Close()
	sc := newTokenScenario(t)
	r1 := sc.run(t, node1, c, groupA)
	// node2 also keeps another group, so that its group A is closed and
	// opened again between blocks (MaxOpenGroups 1).
	other := newAccount(t, 9)
	for _, n := range sc.order {
		mustApply(t, node2, groupB, c.at(n), other.tx(t, nil, 200_000, creation(recorderRuntime)))
		mustApply(t, node2, groupA, c.at(n), sc.blocks[n]...)
	}
	for _, n := range sc.order {
		r2, err := node2.ApplyBlock(groupA, c.at(n), sc.blocks[n])
		if err != nil || !r2.Replayed {
			t.Fatalf("block %d again: %v (replayed %v)", n, err, r2 != nil && r2.Replayed)
		}
		if r1[n].Root != r2.Root || r1[n].Root == types.EmptyRootHash {
			t.Fatalf("block %d: roots %s and %s", n, r1[n].Root, r2.Root)
		}
		for i := range r1[n].Receipts {
			if a, b := receiptText(t, r1[n].Receipts[i]), receiptText(t, r2.Receipts[i]); a != b {
				t.Fatalf("block %d receipt %d differs:\n%s\n%s", n, i, a, b)
			}
		}
	}
	for n := uint64(0); n <= 12; n++ {
		a, _ := node1.PrivateRoot(groupA, n)
		b, _ := node2.PrivateRoot(groupA, n)
		if a != b {
			t.Fatalf("private root after block %d: %s and %s", n, a, b)
		}
	}

	// Control: block 5's transfers in the other order give another root.
	node3 := openStore(t, t.TempDir(), c, Options{})
	defer node3.Close()
	mustApply(t, node3, groupA, c.at(2), sc.blocks[2]...)
	swapped := mustApply(t, node3, groupA, c.at(5), sc.blocks[5][1], sc.blocks[5][0])
	if swapped.Root == r1[5].Root {
		t.Fatal("transactions in another order gave the same root: roots do not cover execution")
	}
	if swapped.Receipts[0].Rejected == "" {
		t.Fatal("the second nonce first was not rejected")
	}
}

// A node of an organization outside the group holds nothing of it: no
// folder, no byte of its content, and every read answers ErrUnknownGroup
// without creating anything.
func TestNonMemberHoldsNothing(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 4)
	member := openStore(t, t.TempDir(), c, Options{})
	defer member.Close()
	outsiderDir := t.TempDir()
	outsider := openStore(t, outsiderDir, c, Options{})
	defer outsider.Close()
	alice := newAccount(t, 1)
	rec := alice.created(0)
	mustApply(t, member, groupA, c.at(1), alice.tx(t, nil, 200_000, creation(recorderRuntime)))
	mustSucceed(t, mustApply(t, member, groupA, c.at(2), alice.tx(t, &rec, 100_000, secret)))
	if len(filesContaining(t, member.root, secret)) == 0 {
		t.Fatal("control: the member's files do not hold the secret, so the grep proves nothing")
	}

	for name, read := range map[string]func() error{
		"Head":        func() error { _, _, err := outsider.Head(groupA); return err },
		"PrivateRoot": func() error { _, err := outsider.PrivateRoot(groupA, Latest); return err },
		"Nonce":       func() error { _, err := outsider.Nonce(groupA, alice.addr); return err },
		"Code":        func() error { _, err := outsider.Code(groupA, Latest, rec); return err },
		"Receipt":     func() error { _, err := outsider.Receipt(groupA, common.Hash{}); return err },
		"Logs":        func() error { _, err := outsider.Logs(groupA, LogQuery{To: Latest}); return err },
		"Payload":     func() error { _, err := outsider.Payload(groupA, common.Hash{}); return err },
		"Call": func() error {
			_, err := outsider.Call(context.Background(), groupA, c.at(2), &core.Message{From: alice.addr, To: &rec})
			return err
		},
	} {
		if err := read(); !errors.Is(err, ErrUnknownGroup) {
			t.Errorf("%s on a non-member: %v, want ErrUnknownGroup", name, err)
		}
	}
	if _, err := os.Stat(outsider.GroupDir(groupA)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the non-member has a folder for the group: %v", err)
	}
	entries, err := os.ReadDir(outsider.groupsDir())
	if err != nil || len(entries) != 0 {
		t.Fatalf("the non-member's groups folder holds %d entries (%v)", len(entries), err)
	}
	if hits := filesContaining(t, outsiderDir, secret); len(hits) != 0 {
		t.Fatalf("the non-member's files hold the secret: %v", hits)
	}
}

// Rules of private execution: fees ignored, no ether, no system
// contracts, invalid transactions rejected without effect while the
// others of the block run.
func TestPrivateExecutionRules(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 6)
	s := openStore(t, t.TempDir(), c, Options{})
	defer s.Close()
	alice, bob := newAccount(t, 1), newAccount(t, 2)
	registry := system.RegistryAddress

	// alice holds no private ether, and pays a gas price of 1 gwei: the
	// deployment runs all the same.
	res := mustApply(t, s, groupA, c.at(1), alice.tx(t, nil, 200_000, creation(recorderRuntime)))
	mustSucceed(t, res)
	rec := alice.created(0)

	// Each of these is rejected; bob's nonce 0 is free for the next.
	value := bob.body(&rec, 100_000, nil)
	value.Value = big.NewInt(1)
	valueTx := signed(t, value, bob.key, testChainID)
	wrongChain := signed(t, bob.body(&rec, 100_000, nil), bob.key, big.NewInt(99))
	unrestricted := bob.body(&rec, 100_000, nil)
	unrestricted.Restriction = privtx.Unrestricted
	unrestrictedTx := signed(t, unrestricted, bob.key, testChainID)
	highS := bob.body(&rec, 100_000, nil) // the malleable twin of a valid signature: s above n/2
	if err := privtx.SignTx(highS, testChainID, bob.key); err != nil {
		t.Fatal(err)
	}
	highS.S = new(big.Int).Sub(crypto.S256().Params().N, highS.S)
	base := big.NewInt(2*1337 + 35)                                // recovery id 0
	highS.V = new(big.Int).Sub(new(big.Int).Lsh(base, 1), highS.V) // the other recovery id
	highS.V.Add(highS.V, big.NewInt(1))
	highSRaw, err := highS.Encode()
	if err != nil {
		t.Fatal(err)
	}
	noChainID := bob.body(&rec, 100_000, nil) // pre-EIP-155: v 27
	if err := privtx.SignTx(noChainID, testChainID, bob.key); err != nil {
		t.Fatal(err)
	}
	noChainID.V = big.NewInt(27)
	noChainIDRaw, err := noChainID.Encode()
	if err != nil {
		t.Fatal(err)
	}
	tooMuchGas := signed(t, bob.body(&rec, uint64(spec.TxGasLimit)+1, nil), bob.key, testChainID)
	callRegistry := bob.tx(t, &registry, 100_000, common.FromHex("0x12345678"))
	far := bob.body(&rec, 100_000, nil)
	far.Nonce = 7
	farNonce := signed(t, far, bob.key, testChainID)
	store := bob.tx(t, &rec, 100_000, common.LeftPadBytes([]byte{0x42}, 32))

	res = mustApply(t, s, groupA, c.at(2), valueTx, wrongChain, unrestrictedTx, carried(highSRaw), carried(noChainIDRaw), tooMuchGas, callRegistry, farNonce, store)
	want := []struct {
		rejected string // a part of the reason, "" when it ran
		status   uint64
	}{
		{"private accounts hold no ether", 0},
		{"signed for chain 99, this chain is 1337", 0},
		{`restriction "unrestricted"`, 0},
		{"above secp256k1n/2", 0},
		{"carries no chain id", 0},
		{"per-transaction limit", 0},
		{"", types.ReceiptStatusFailed}, // ran, and the system contract reverted it
		{"nonce too high", 0},
		{"", types.ReceiptStatusSuccessful},
	}
	for i, w := range want {
		r := res.Receipts[i]
		if w.rejected == "" {
			if r.Rejected != "" || r.Status != w.status || r.GasUsed == 0 {
				t.Errorf("transaction %d: rejected %q status %d gas %d, want it run with status %d", i, r.Rejected, r.Status, r.GasUsed, w.status)
			}
			continue
		}
		if !strings.Contains(r.Rejected, w.rejected) || r.Status != types.ReceiptStatusFailed || r.GasUsed != 0 || len(r.Logs) != 0 {
			t.Errorf("transaction %d: rejected %q status %d gas %d, want rejected for %q", i, r.Rejected, r.Status, r.GasUsed, w.rejected)
		}
	}
	// A sender is named where the signature gives one for this chain.
	for i, want := range []common.Address{bob.addr, {}, bob.addr, {}, {}} {
		if got := res.Receipts[i].From; got != want {
			t.Errorf("transaction %d: From %s, want %s", i, got, want)
		}
	}
	if n, _ := s.Nonce(groupA, bob.addr); n != 2 {
		t.Fatalf("bob's nonce %d after two transactions that ran, want 2", n)
	}
	if err := s.View(groupA, Latest, func(st *state.StateDB) error {
		if got := st.GetState(rec, common.Hash{}); got != common.BigToHash(big.NewInt(0x42)) {
			t.Errorf("slot 0 of the recorder: %s", got)
		}
		if st.Exist(c.at(2).Coinbase) {
			t.Error("the block's coinbase exists in private state")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// A private call of the registry reverts too.
	out, err := s.Call(context.Background(), groupA, c.at(2), &core.Message{From: bob.addr, To: &registry, Value: new(uint256.Int), Data: common.FromHex("0x12345678")})
	if err != nil || !out.Failed() {
		t.Fatalf("private call of the registry: %v, failed %v", err, out != nil && out.Failed())
	}

	// Gas beyond the block gas limit: the transaction that does not fit
	// what the group's earlier ones left is rejected.
	small := *c.at(3)
	small.GasLimit = 120_000
	a := bob.tx(t, &rec, 100_000, common.LeftPadBytes([]byte{1}, 32))
	b := bob.tx(t, &rec, 100_000, common.LeftPadBytes([]byte{2}, 32))
	res = mustApply(t, s, groupA, &small, a, b)
	if res.Receipts[0].Rejected != "" || !strings.Contains(res.Receipts[1].Rejected, "gas limit reached") {
		t.Fatalf("gas pool: %q, %q", res.Receipts[0].Rejected, res.Receipts[1].Rejected)
	}
}
