package privstate

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"math/big"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/privacy"
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
		if err := ps.put(h, p, i%2 == 0); err != nil {
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

// The ciphertext hashes a payload store remembers are answered only for
// the very bytes they were computed from.
func TestKEMHashMemo(t *testing.T) {
	ps := &payloadStore{seed: maphash.MakeSeed()}
	a, b := bytes.Repeat([]byte{1}, 1088), bytes.Repeat([]byte{2}, 1088)
	if got := ps.kemHash(a); got != crypto.Keccak256Hash(a) {
		t.Fatal("first hash of a ciphertext is not its keccak256")
	}
	if got := ps.kemHash(a); got != crypto.Keccak256Hash(a) {
		t.Fatal("remembered hash of a ciphertext is not its keccak256")
	}
	// Another ciphertext under the same memo key (as a maphash collision
	// would put it) is hashed, not answered with the other's hash.
	ps.recent[maphash.Bytes(ps.seed, b)] = recentKEM{ct: bytes.Clone(a), hash: crypto.Keccak256Hash(a)}
	if got := ps.kemHash(b); got != crypto.Keccak256Hash(b) {
		t.Fatal("a ciphertext was answered with another's hash")
	}
	for i := range 3 * maxRecentKEMs {
		ps.kemHash([]byte{byte(i), byte(i >> 8)})
		if len(ps.recent) > maxRecentKEMs {
			t.Fatalf("%d ciphertexts remembered, above %d", len(ps.recent), maxRecentKEMs)
		}
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

// Envelopes of the hybrid-session scheme are kept detached: each ML-KEM
// ciphertext of a session once, the envelopes a fifth of their size; they
// read back whole, after a reopening too, beside envelopes of another
// scheme kept as they are; a ciphertext gone from the store is an error,
// not another envelope.
func TestPayloadStoreDetachesSessionCiphertexts(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 4)
	dir := t.TempDir()
	s := openStore(t, dir, c, Options{})
	a, b := mustPrivacyKey(t), mustPrivacyKey(t)
	sealer := privacy.NewSealer(privacy.SchemeHybridSession)
	kept := map[common.Hash][]byte{}
	for i := range 40 {
		env, err := sealer.Seal([]*privacy.PublicKey{a.Public(), b.Public()}, []byte(fmt.Sprintf("private transaction %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		h, err := privacy.ContentHash(env)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.KeepPayload(groupA, h, env); err != nil {
			t.Fatal(err)
		}
		kept[h] = env
	}
	whole, err := privacy.SealWith(privacy.SchemeHybrid, []*privacy.PublicKey{a.Public(), b.Public()}, []byte("not a session's"))
	if err != nil {
		t.Fatal(err)
	}
	wh, _ := privacy.ContentHash(whole)
	if err := s.PutPayload(groupA, wh, whole); err != nil {
		t.Fatal(err)
	}
	kept[wh] = whole

	h, err := s.acquire(groupA, false)
	if err != nil {
		t.Fatal(err)
	}
	count := func(prefix []byte) (n, bytes int) {
		it := h.pay.kv.NewIterator(prefix, nil)
		defer it.Release()
		for it.Next() {
			n, bytes = n+1, bytes+len(it.Value())
		}
		return n, bytes
	}
	if n, _ := count(prefPayloadKEM); n != 2 {
		t.Fatalf("%d ML-KEM ciphertexts kept for one session to two keys; want 2", n)
	}
	if n, size := count(prefPayloadData); n != 41 || size > 40*600+len(whole) {
		t.Fatalf("%d payload entries of %d bytes in all; want 41, at most %d", n, size, 40*600+len(whole))
	}
	s.release(h)
	check := func(s *Store) {
		t.Helper()
		for hash, env := range kept {
			got, err := s.Payload(groupA, hash)
			if err != nil || !bytes.Equal(got, env) {
				t.Fatalf("payload %s: %d bytes, %v; want the envelope kept", hash.TerminalString(), len(got), err)
			}
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, c, Options{})
	check(s)
	// Keeping more of the session after the reopening writes no ciphertext again.
	env, err := sealer.Seal([]*privacy.PublicKey{a.Public(), b.Public()}, []byte("after the reopening"))
	if err != nil {
		t.Fatal(err)
	}
	eh, _ := privacy.ContentHash(env)
	if err := s.KeepPayload(groupA, eh, env); err != nil {
		t.Fatal(err)
	}
	h, err = s.acquire(groupA, false)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := count(prefPayloadKEM); n != 2 {
		t.Fatalf("%d ML-KEM ciphertexts after the reopening; want 2", n)
	}
	// A ciphertext gone: the envelopes that name it no longer read.
	it := h.pay.kv.NewIterator(prefPayloadKEM, nil)
	it.Next()
	gone := bytes.Clone(it.Key())
	it.Release()
	if err := h.pay.kv.Delete(gone); err != nil {
		t.Fatal(err)
	}
	s.release(h)
	if _, err := s.Payload(groupA, eh); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("an envelope whose ciphertext is gone: %v; want ErrCorrupt", err)
	}
	if got, err := s.Payload(groupA, wh); err != nil || !bytes.Equal(got, whole) {
		t.Fatalf("the hybrid envelope kept whole: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func mustPrivacyKey(t testing.TB) *privacy.PrivateKey {
	t.Helper()
	k, err := privacy.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
