package privstate

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// checkRejected checks that r is a rejected receipt: failed, no gas, no
// logs, the reason containing want.
func checkRejected(t *testing.T, what string, r *Receipt, want string) {
	t.Helper()
	if !strings.Contains(r.Rejected, want) || r.Status != types.ReceiptStatusFailed || r.GasUsed != 0 || len(r.Logs) != 0 {
		t.Fatalf("%s: rejected %q status %d gas %d logs %d, want rejected for %q", what, r.Rejected, r.Status, r.GasUsed, len(r.Logs), want)
	}
}

// slot0 is slot 0 of the recorder at rec in group A's newest state.
func slot0(t *testing.T, s *Store, rec common.Address) common.Hash {
	t.Helper()
	var v common.Hash
	if err := s.View(groupA, Latest, func(st *state.StateDB) error {
		v = st.GetState(rec, common.Hash{})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// A transaction the caller refuses gets a rejected receipt with the
// caller's reason and changes nothing, not even its sender's nonce; it is
// found by its hash and its marker like any other.
func TestRejectedByTheCaller(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 3)
	s := openStore(t, t.TempDir(), c, Options{})
	defer s.Close()
	alice := newAccount(t, 1)
	rec := alice.created(0)
	mustSucceed(t, mustApply(t, s, groupA, c.at(1), alice.tx(t, nil, 200_000, creation(recorderRuntime))))

	const why = "sender 0x… is not an account of organization org2, which sent the marker"
	refused := alice.tx(t, &rec, 100_000, common.LeftPadBytes([]byte{1}, 32))
	refused.Reject = why
	alice.nonce--
	undecodable := carried([]byte("payload that did not open"))
	undecodable.Reject = "payload not sealed to this organization"
	runs := alice.tx(t, &rec, 100_000, common.LeftPadBytes([]byte{2}, 32))
	res := mustApply(t, s, groupA, c.at(2), refused, undecodable, runs)

	checkRejected(t, "refused", res.Receipts[0], why)
	if r := res.Receipts[0]; r.Rejected != why || r.From != alice.addr || r.To == nil || *r.To != rec || r.Marker != refused.Marker || r.TxHash != txHash(refused) {
		t.Fatalf("refused: reason %q from %s to %v marker %s hash %s", r.Rejected, r.From, r.To, r.Marker, r.TxHash)
	}
	checkRejected(t, "refused undecodable", res.Receipts[1], "payload not sealed")
	if r := res.Receipts[2]; r.Rejected != "" || r.Status != types.ReceiptStatusSuccessful || r.Logs[0].TxHash != txHash(runs) {
		t.Fatalf("the transaction after the refused one: rejected %q status %d", r.Rejected, r.Status)
	}
	if got := slot0(t, s, rec); got != common.BigToHash(big.NewInt(2)) {
		t.Fatalf("slot 0 holds %s: the refused transaction ran", got)
	}
	if n, err := s.Nonce(groupA, alice.addr); err != nil || n != 2 {
		t.Fatalf("alice's nonce %d (%v), want 2", n, err)
	}

	if r, err := s.ReceiptByMarker(groupA, refused.Marker); err != nil || receiptText(t, r) != receiptText(t, res.Receipts[0]) {
		t.Fatalf("receipt of the refused transaction by marker: %v", err)
	}
	if r, err := s.Receipt(groupA, txHash(refused)); err != nil || r.Rejected != why {
		t.Fatalf("receipt of the refused transaction by hash: %v", err)
	}
	// Its bytes decode: the transaction is there to read.
	tx, number, blockHash, index, err := s.TransactionByMarker(groupA, refused.Marker)
	if err != nil || tx.Hash() != txHash(refused) || number != 2 || blockHash != c.at(2).Hash() || index != 0 {
		t.Fatalf("refused transaction by marker: %v at %d %s/%d, %v", tx, number, blockHash, index, err)
	}
	if _, _, _, _, err := s.TransactionByMarker(groupA, undecodable.Marker); !errors.Is(err, ErrNotFound) {
		t.Fatalf("undecodable refused transaction by marker: %v, want ErrNotFound", err)
	}
}

// Bytes that are not a private transaction are rejected with privtx's
// reason; their hash is keccak256 of the bytes, their receipt is found by
// hash and by marker, and there is no transaction to read.
func TestUndecodableBytes(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 3)
	dir := t.TempDir()
	s := openStore(t, dir, c, Options{})
	alice := newAccount(t, 1)
	rec := alice.created(0)
	mustSucceed(t, mustApply(t, s, groupA, c.at(1), alice.tx(t, nil, 200_000, creation(recorderRuntime))))

	valid := alice.tx(t, &rec, 100_000, common.LeftPadBytes([]byte{7}, 32))
	alice.nonce--
	// A signed public legacy transaction: nine items, not twelve.
	public, err := types.MustSignNewTx(alice.key, types.LatestSignerForChainID(testChainID), &types.LegacyTx{Nonce: alice.nonce, To: &rec, Gas: 100_000, GasPrice: new(big.Int)}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		tx   Tx
		want string
	}{
		{"empty", carried(nil), "not an RLP list"},
		{"not RLP", carried([]byte("hello, group")), "not an RLP list"},
		{"trailing byte", carried(append(append([]byte{}, valid.Raw...), 0)), "trailing bytes"},
		{"public transaction", carried(public), "9 items, want 12"},
	}
	var txs []Tx
	for _, b := range bad {
		txs = append(txs, b.tx)
	}
	res := mustApply(t, s, groupA, c.at(2), append(txs, valid)...)
	for i, b := range bad {
		r := res.Receipts[i]
		checkRejected(t, b.name, r, b.want)
		if !strings.Contains(r.Rejected, "malformed private transaction") || r.TxHash != crypto.Keccak256Hash(b.tx.Raw) || r.From != (common.Address{}) || r.To != nil || r.Marker != b.tx.Marker {
			t.Fatalf("%s: reason %q hash %s from %s to %v", b.name, r.Rejected, r.TxHash, r.From, r.To)
		}
	}
	if r := res.Receipts[len(bad)]; r.Rejected != "" || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("the valid transaction after them: rejected %q status %d", r.Rejected, r.Status)
	}

	// After a restart: the same receipts, by hash and by marker, and no
	// transaction.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, c, Options{})
	defer s.Close()
	for i, b := range bad {
		want := receiptText(t, res.Receipts[i])
		if r, err := s.ReceiptByMarker(groupA, b.tx.Marker); err != nil || receiptText(t, r) != want {
			t.Fatalf("%s: receipt by marker: %v", b.name, err)
		}
		if r, err := s.Receipt(groupA, txHash(b.tx)); err != nil || receiptText(t, r) != want {
			t.Fatalf("%s: receipt by hash: %v", b.name, err)
		}
		if _, _, _, err := s.Transaction(groupA, txHash(b.tx)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: transaction by hash: %v, want ErrNotFound", b.name, err)
		}
		if _, _, _, _, err := s.TransactionByMarker(groupA, b.tx.Marker); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: transaction by marker: %v, want ErrNotFound", b.name, err)
		}
	}
	again := mustApply(t, s, groupA, c.at(2), append(txs, valid)...)
	for i := range again.Receipts {
		if !again.Replayed || receiptText(t, again.Receipts[i]) != receiptText(t, res.Receipts[i]) {
			t.Fatalf("replay: receipt %d differs (replayed %v)", i, again.Replayed)
		}
	}
}

// Every receipt and transaction reads the same by marker as by private
// hash; the first appearance of a hash or a marker answers for it.
func TestReceiptAndTransactionByMarker(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 12)
	s := openStore(t, t.TempDir(), c, Options{})
	defer s.Close()
	sc := newTokenScenario(t)
	results := sc.run(t, s, c, groupA)

	for _, n := range sc.order {
		for i, want := range results[n].Receipts {
			m := sc.blocks[n][i].Marker
			if want.Marker != m || want.TxHash != txHash(sc.blocks[n][i]) {
				t.Fatalf("block %d receipt %d: marker %s hash %s", n, i, want.Marker, want.TxHash)
			}
			r, err := s.ReceiptByMarker(groupA, m)
			if err != nil || receiptText(t, r) != receiptText(t, want) {
				t.Fatalf("block %d receipt %d by marker differs (%v)", n, i, err)
			}
			tx, number, blockHash, index, err := s.TransactionByMarker(groupA, m)
			if err != nil || tx.Hash() != want.TxHash || number != n || blockHash != c.at(n).Hash() || index != i {
				t.Fatalf("block %d transaction %d by marker: %d %s/%d, %v", n, i, number, blockHash, index, err)
			}
			tx2, number2, index2, err := s.Transaction(groupA, want.TxHash)
			if err != nil || tx2.Hash() != tx.Hash() || number2 != n || index2 != i {
				t.Fatalf("block %d transaction %d by hash: %d/%d, %v", n, i, number2, index2, err)
			}
			if from, err := tx.Sender(testChainID); err != nil || from != want.From {
				t.Fatalf("block %d transaction %d: sender %s (%v), receipt from %s", n, i, from, err, want.From)
			}
		}
	}
	if _, err := s.ReceiptByMarker(groupA, common.Hash{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("receipt of an unknown marker: %v", err)
	}
	if _, _, _, _, err := s.TransactionByMarker(groupA, common.Hash{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("transaction of an unknown marker: %v", err)
	}
	if _, err := s.ReceiptByMarker(groupB, sc.blocks[2][0].Marker); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("receipt by marker in a group the node does not hold: %v", err)
	}

	// Block 10: bob's transfer of block 9 sent again under another marker
	// (rejected: its nonce is spent), and a transaction under block 5's
	// first marker again. The first appearances answer.
	copyOf := sc.blocks[9][0]
	copyOf.Marker = common.Hash{0xc0}
	reused := sc.carol.tx(t, &sc.token, 100_000, nil)
	reused.Marker = sc.blocks[5][0].Marker
	res := mustApply(t, s, groupA, c.at(10), copyOf, reused)
	checkRejected(t, "the copy", res.Receipts[0], "nonce too low")
	if r, err := s.Receipt(groupA, txHash(copyOf)); err != nil || r.Rejected != "" || r.BlockNumber.Uint64() != 9 {
		t.Fatalf("receipt of the copied transaction by hash: %v (block %v, rejected %q), want block 9's", err, r.BlockNumber, r.Rejected)
	}
	if r, err := s.ReceiptByMarker(groupA, copyOf.Marker); err != nil || r.BlockNumber.Uint64() != 10 || r.TxHash != txHash(copyOf) || !strings.Contains(r.Rejected, "nonce too low") {
		t.Fatalf("receipt of the copy by its own marker: %v", err)
	}
	if r, err := s.ReceiptByMarker(groupA, reused.Marker); err != nil || r.BlockNumber.Uint64() != 5 || r.TxHash != results[5].Receipts[0].TxHash {
		t.Fatalf("receipt by a marker used twice: %v, want block 5's", err)
	}
	if r, err := s.Receipt(groupA, txHash(reused)); err != nil || r.BlockNumber.Uint64() != 10 || r.Marker != reused.Marker {
		t.Fatalf("receipt of the transaction under the reused marker, by hash: %v", err)
	}
}

// Two senders' transactions with the same fields (nonce, recipient, gas,
// data) are one unsigned legacy transaction to go-ethereum: each receipt
// must still hold its own logs alone.
func TestSameFieldsFromTwoSenders(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 2)
	s := openStore(t, t.TempDir(), c, Options{})
	defer s.Close()
	carol, alice, bob := newAccount(t, 3), newAccount(t, 1), newAccount(t, 2)
	rec := carol.created(0)
	mustSucceed(t, mustApply(t, s, groupA, c.at(1), carol.tx(t, nil, 200_000, creation(recorderRuntime))))
	a := alice.tx(t, &rec, 100_000, secret)
	b := bob.tx(t, &rec, 100_000, secret)
	if alice.body(&rec, 100_000, secret).Legacy().Nonce != bob.body(&rec, 100_000, secret).Legacy().Nonce || txHash(a) == txHash(b) {
		t.Fatal("control: the two transactions do not share their fields")
	}
	res := mustApply(t, s, groupA, c.at(2), a, b)
	mustSucceed(t, res)
	for i, want := range []Tx{a, b} {
		r := res.Receipts[i]
		if len(r.Logs) != 1 || r.Logs[0].TxHash != txHash(want) || r.Logs[0].Index != uint(i) {
			t.Fatalf("receipt %d: %d logs", i, len(r.Logs))
		}
	}
}
