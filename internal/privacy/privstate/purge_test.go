package privstate

import (
	"context"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/durable"
)

// markedGroup puts the secret into group A of s: a payload holding it, a
// private transaction carrying it in calldata, the recorder contract
// keeping it in storage and in a log.
func markedGroup(t *testing.T, s *Store, c *pubChain) (rec common.Address, hash common.Hash) {
	t.Helper()
	alice := newAccount(t, 1)
	rec = alice.created(0)
	mustSucceed(t, mustApply(t, s, groupA, c.at(1), alice.tx(t, nil, 200_000, creation(recorderRuntime))))
	tx := alice.tx(t, &rec, 100_000, secret)
	payload := append([]byte("envelope:"), secret...)
	if err := s.PutPayload(groupA, crypto.Keccak256Hash(payload), payload); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, mustApply(t, s, groupA, c.at(2), tx))
	if err := s.View(groupA, Latest, func(st *state.StateDB) error {
		if got := st.GetState(rec, common.Hash{}); got != common.BytesToHash(secret) {
			t.Fatalf("the recorder keeps %x, not the secret", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return rec, txHash(tx)
}

func TestPurgeRemovesEverythingOfTheGroupAlone(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 12)
	dir := t.TempDir()
	s := openStore(t, dir, c, Options{})
	rec, markedTx := markedGroup(t, s, c)

	// Group B on the same store: a private token, untouched by the purge.
	sc := newTokenScenario(t)
	resB := sc.run(t, s, c, groupB)
	rootB := resB[9].Root

	if hits := filesContaining(t, dir, secret); len(hits) == 0 {
		t.Fatal("control: no file holds the secret before the purge, so the grep proves nothing")
	} else {
		for _, h := range hits {
			// Group A's database, or its payload store inside its folder.
			if !strings.HasPrefix(h, s.GroupDir(groupA)+string(filepath.Separator)) {
				t.Fatalf("the secret is outside group A's folder: %s", h)
			}
		}
	}

	if err := s.Purge(groupA, 10); err != nil {
		t.Fatal(err)
	}
	if hits := filesContaining(t, dir, secret); len(hits) != 0 {
		t.Fatalf("after the purge the secret is still in %v", hits)
	}
	if _, err := os.Stat(s.GroupDir(groupA)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("group A's folder after the purge: %v", err)
	}
	if h, ok := s.Purged(groupA); !ok || h != 10 {
		t.Fatalf("Purged: %d %v", h, ok)
	}
	if _, ok := s.Purged(groupB); ok {
		t.Fatal("group B reads as purged")
	}
	checkPurgedReads(t, s, c, rec, markedTx)
	if err := s.Purge(groupA, 11); err != nil {
		t.Fatalf("purge again: %v", err)
	}
	if h, _ := s.Purged(groupA); h != 10 {
		t.Fatalf("a second purge moved the height to %d", h)
	}

	// Group B goes on, before and after a restart; A stays purged.
	checkGroupB := func(s *Store, carol int64) {
		t.Helper()
		if root, err := s.PrivateRoot(groupB, 9); err != nil || root != rootB {
			t.Fatalf("group B's root %s (%v), before the purge %s", root, err, rootB)
		}
		if got := balanceOf(t, s, c, groupB, sc.token, sc.carol.addr, 12); got.Int64() != carol {
			t.Fatalf("carol's balance in group B: %v", got)
		}
	}
	checkGroupB(s, 40)
	mustSucceed(t, mustApply(t, s, groupB, c.at(11), sc.alice.tx(t, &sc.token, 100_000, token.TransferData(sc.carol.addr, big.NewInt(1)))))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, c, Options{})
	defer s.Close()
	checkGroupB(s, 41)
	if h, ok := s.Purged(groupA); !ok || h != 10 {
		t.Fatalf("after a restart Purged: %d %v", h, ok)
	}
	checkPurgedReads(t, s, c, rec, markedTx)
	if hits := filesContaining(t, dir, secret); len(hits) != 0 {
		t.Fatalf("after a restart the secret is in %v", hits)
	}
}

// checkPurgedReads: every call on group A answers ErrPurged, and none
// brings back its folder.
func checkPurgedReads(t *testing.T, s *Store, c *pubChain, rec common.Address, txHash common.Hash) {
	t.Helper()
	alice := newAccount(t, 1)
	alice.nonce = 2
	for name, call := range map[string]func() error{
		"Head":        func() error { _, _, err := s.Head(groupA); return err },
		"PrivateRoot": func() error { _, err := s.PrivateRoot(groupA, 2); return err },
		"Receipt":     func() error { _, err := s.Receipt(groupA, txHash); return err },
		"Transaction": func() error { _, _, _, err := s.Transaction(groupA, txHash); return err },
		"Logs":        func() error { _, err := s.Logs(groupA, LogQuery{To: Latest}); return err },
		"Nonce":       func() error { _, err := s.Nonce(groupA, alice.addr); return err },
		"Code":        func() error { _, err := s.Code(groupA, Latest, rec); return err },
		"Payload":     func() error { _, err := s.Payload(groupA, common.Hash{}); return err },
		"PutPayload":  func() error { return s.PutPayload(groupA, common.Hash{1}, []byte("late")) },
		"ApplyBlock":  func() error { _, err := s.ApplyBlock(groupA, c.at(12), nil); return err },
		"Call": func() error {
			_, err := s.Call(context.Background(), groupA, c.at(2), &core.Message{From: alice.addr, To: &rec, Value: new(uint256.Int)})
			return err
		},
	} {
		if err := call(); !errors.Is(err, ErrPurged) {
			t.Errorf("%s of a purged group: %v, want ErrPurged", name, err)
		}
	}
	if _, err := os.Stat(s.GroupDir(groupA)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a call brought back the purged group's folder: %v", err)
	}
}

// A purge waits for a read under way, refuses new ones at once, and then
// removes the folder.
func TestPurgeWaitsForReaders(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 4)
	s := openStore(t, t.TempDir(), c, Options{})
	defer s.Close()
	markedGroup(t, s, c)

	entered, release, viewDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		viewDone <- s.View(groupA, Latest, func(*state.StateDB) error {
			close(entered)
			<-release
			return nil
		})
	}()
	<-entered
	purged := make(chan error, 1)
	go func() { purged <- s.Purge(groupA, 3) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.Nonce(groupA, common.Address{}); errors.Is(err, ErrPurged) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("reads do not answer ErrPurged while the purge waits")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-purged:
		t.Fatalf("the purge returned (%v) while a reader held the group", err)
	default:
	}
	if _, err := os.Stat(s.GroupDir(groupA)); err != nil {
		t.Fatalf("the folder went while a reader held the group: %v", err)
	}
	close(release)
	select {
	case err := <-purged:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the purge did not finish after the reader left")
	}
	if err := <-viewDone; err != nil {
		t.Fatalf("the reader under way: %v", err)
	}
	if _, err := os.Stat(s.GroupDir(groupA)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("folder after the purge: %v", err)
	}
}

// A purge cut off after its tombstone was written (the folder still
// there) is finished by the next Open; a tombstone write cut off before
// its rename leaves no purge.
func TestOpenFinishesACutOffPurge(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 12)
	dir := t.TempDir()
	s := openStore(t, dir, c, Options{})
	markedGroup(t, s, c)
	sc := newTokenScenario(t)
	sc.run(t, s, c, groupB)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := durable.WriteFile(durable.OSFS{}, s.tombstonePath(groupA), []byte("7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.tombstonePath(groupB)+".tmp", []byte("8\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, c, Options{})
	defer s.Close()
	if h, ok := s.Purged(groupA); !ok || h != 7 {
		t.Fatalf("Purged(A) after the restart: %d %v", h, ok)
	}
	if _, err := os.Stat(s.GroupDir(groupA)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("group A's folder after the restart: %v", err)
	}
	if hits := filesContaining(t, dir, secret); len(hits) != 0 {
		t.Fatalf("the secret is still in %v", hits)
	}
	if _, ok := s.Purged(groupB); ok {
		t.Fatal("a tombstone that was never renamed purged group B")
	}
	if _, err := os.Stat(s.tombstonePath(groupB) + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the temporary tombstone is still there: %v", err)
	}
	if _, err := s.PrivateRoot(groupB, Latest); err != nil {
		t.Fatal(err)
	}

	// A damaged tombstone stops Open with a line that names it.
	s.Close()
	if err := os.WriteFile(s.tombstonePath(groupA), []byte("seven"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, spec, c, Options{}, quietLog()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a damaged tombstone: %v", err)
	}
}
