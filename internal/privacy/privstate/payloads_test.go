package privstate

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/bench/token"
)

// Payloads live in the group's payload store: they read back after the
// store is closed and opened again, one kept twice is stored once, a
// PutPayload after a KeepPayload of the same bytes syncs it, and a
// payload an older build kept in the group's database still reads.
func TestPayloadStore(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 4)
	dir := t.TempDir()
	s := openStore(t, dir, c, Options{})
	var hashes [][32]byte
	var payloads [][]byte
	for i := range 50 {
		p := []byte(fmt.Sprintf("envelope %d", i))
		h := crypto.Keccak256Hash(p)
		if err := s.KeepPayload(groupA, h, p); err != nil {
			t.Fatal(err)
		}
		hashes, payloads = append(hashes, h), append(payloads, p)
	}
	if err := s.PutPayload(groupA, hashes[0], payloads[0]); err != nil {
		t.Fatal(err)
	}
	h, err := s.acquire(groupA, false)
	if err != nil {
		t.Fatal(err)
	}
	entries := 0
	it := h.pay.kv.NewIterator(prefPayloadData, nil)
	for it.Next() {
		entries++
	}
	it.Release()
	if entries != len(payloads) {
		t.Fatalf("%d payload entries for %d payloads (one kept twice)", entries, len(payloads))
	}
	// A payload of a build before the payload store: in the group's database.
	legacy := []byte("envelope kept by an older build")
	lh := crypto.Keccak256Hash(legacy)
	if err := h.kv.Put(key(prefPayload, lh[:]), legacy); err != nil {
		t.Fatal(err)
	}
	s.release(h)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir, c, Options{})
	defer s.Close()
	for i, h := range hashes {
		if got, err := s.Payload(groupA, h); err != nil || !bytes.Equal(got, payloads[i]) {
			t.Fatalf("payload %d after reopening: %q (%v)", i, got, err)
		}
	}
	if got, err := s.Payload(groupA, lh); err != nil || !bytes.Equal(got, legacy) {
		t.Fatalf("payload of an older build: %q (%v)", got, err)
	}
	if _, err := s.Payload(groupA, crypto.Keccak256Hash([]byte("never sent"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a payload never kept: %v", err)
	}
}

// Payload positions increase in the order payloads are kept, so that the
// payload store's keys are written in order (what keeps its compactions
// from rewriting older payloads).
func TestPayloadPositionsIncrease(t *testing.T) {
	s := &Store{cache: pebble.NewCache(8 << 20), log: quietLog()}
	defer s.cache.Unref()
	ps, err := openPayloadStore(s, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ps.close()
	var last []byte
	for i := range 20 {
		p := []byte(fmt.Sprintf("p%d", i))
		h := crypto.Keccak256Hash(p)
		if err := ps.put(h, p); err != nil {
			t.Fatal(err)
		}
		pos, err := ps.kv.Get(key(prefPayloadIndex, h[:]))
		if err != nil {
			t.Fatal(err)
		}
		k := append(append([]byte{}, prefPayloadData...), pos...)
		if last != nil && bytes.Compare(k, last) <= 0 {
			t.Fatalf("payload %d at %x, not after %x", i, k, last)
		}
		last = k
	}
	if !ps.dirty.Load() {
		t.Fatal("payloads kept without a sync, and the store is not marked to sync")
	}
	if err := ps.sync(); err != nil || ps.dirty.Load() {
		t.Fatalf("sync: %v, still dirty %v", err, ps.dirty.Load())
	}
}

// Nonce follows every applied block although it keeps the nonces it read
// at the head: read before and after each block, from this store and
// from the same database opened again (which reads the trie).
func TestNonceFollowsTheHead(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 8)
	dir := t.TempDir()
	s := openStore(t, dir, c, Options{})
	alice, bob := newAccount(t, 1), newAccount(t, 2)
	tok := alice.created(0)
	mustSucceed(t, mustApply(t, s, groupA, c.at(1), alice.tx(t, nil, 3_000_000, token.DeployData(big.NewInt(1e18)))))
	for i := uint64(0); i < 5; i++ {
		if n, err := s.Nonce(groupA, alice.addr); err != nil || n != i+1 {
			t.Fatalf("before block %d: alice's nonce %d (%v), want %d", i+2, n, err, i+1)
		}
		if n, err := s.Nonce(groupA, bob.addr); err != nil || n != 0 {
			t.Fatalf("before block %d: bob's nonce %d (%v), want 0", i+2, n, err)
		}
		mustSucceed(t, mustApply(t, s, groupA, c.at(i+2), alice.tx(t, &tok, 100_000, token.TransferData(bob.addr, big.NewInt(1)))))
		if n, err := s.Nonce(groupA, alice.addr); err != nil || n != i+2 {
			t.Fatalf("after block %d: alice's nonce %d (%v), want %d", i+2, n, err, i+2)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, c, Options{})
	defer s.Close()
	if n, err := s.Nonce(groupA, alice.addr); err != nil || n != 6 {
		t.Fatalf("reopened: alice's nonce %d (%v), want 6", n, err)
	}
}
