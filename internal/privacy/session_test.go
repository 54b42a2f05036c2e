package privacy

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

// entriesOf parses env and returns its entries by recipient key id.
func entriesOf(t *testing.T, env []byte) map[KeyID]Entry {
	t.Helper()
	e, err := ParseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[KeyID]Entry, len(e.Entries))
	for _, en := range e.Entries {
		out[en.KeyID] = en
	}
	return out
}

// TestSealerSessions: within a session a Sealer gives every envelope to a
// recipient the same ephemeral key and encapsulation, with a fresh salt
// and so another wrapped key; a new session starts after maxUses
// envelopes, after maxAge, and for a recipient's new key; the other
// schemes never reuse an ephemeral key.
func TestSealerSessions(t *testing.T) {
	for _, s := range []Scheme{SchemeHybridSession, SchemeX25519Session} {
		t.Run(s.String(), func(t *testing.T) {
			priv, pub := keys(t, 2)
			z := NewSealer(s)
			z.maxUses = 3
			now := time.Unix(1_000_000, 0)
			z.now = func() time.Time { return now }
			seal := func() map[KeyID]Entry {
				env, err := z.Seal(pub, []byte("in session"))
				if err != nil {
					t.Fatal(err)
				}
				for i, k := range priv {
					if got, err := Open(k, env); err != nil || string(got) != "in session" {
						t.Fatalf("recipient %d: %q, %v", i, got, err)
					}
				}
				return entriesOf(t, env)
			}
			same := func(a, b Entry) bool { return a.Ephemeral == b.Ephemeral && a.KEMCiphertext == b.KEMCiphertext }
			first := seal()
			second := seal()
			third := seal()
			for _, p := range pub {
				id := p.KeyID()
				if !same(first[id], second[id]) || !same(first[id], third[id]) {
					t.Fatal("envelopes of one session do not share the recipient's encapsulation")
				}
				if first[id].Salt == second[id].Salt || first[id].WrappedKey == second[id].WrappedKey {
					t.Fatal("two entries of one session share a salt or a wrapped key")
				}
			}
			if first[pub[0].KeyID()].Ephemeral == first[pub[1].KeyID()].Ephemeral {
				t.Fatal("two recipients share an ephemeral key")
			}
			fourth := seal() // the session's maxUses is 3
			if same(first[pub[0].KeyID()], fourth[pub[0].KeyID()]) {
				t.Fatal("a session went on past its uses")
			}
			now = now.Add(SessionMaxAge)
			fifth := seal()
			if same(fourth[pub[0].KeyID()], fifth[pub[0].KeyID()]) {
				t.Fatal("a session went on past its age")
			}
			// The same key id with another key (not constructible from
			// outside; a session must never serve another key).
			z.mu.Lock()
			z.sessions[pub[1].KeyID()].key = pub[0]
			z.mu.Unlock()
			sixth := seal()
			if same(fifth[pub[1].KeyID()], sixth[pub[1].KeyID()]) {
				t.Fatal("a session served a key other than its own")
			}
		})
	}
	for _, s := range []Scheme{SchemeHybrid, SchemeX25519} {
		_, pub := keys(t, 1)
		z := NewSealer(s)
		a, _ := z.Seal(pub, []byte("a"))
		b, _ := z.Seal(pub, []byte("b"))
		if entriesOf(t, a)[pub[0].KeyID()].Ephemeral == entriesOf(t, b)[pub[0].KeyID()].Ephemeral {
			t.Fatalf("%s reuses an ephemeral key", s)
		}
	}
}

// TestSessionMemo: a recipient opens the envelopes of one session with
// the secret it remembers, and reads what a key without the memo reads;
// an entry of the session whose wrapped key or salt was changed does not
// open; only secrets that opened an entry are remembered, and at most
// maxOpenSessions.
func TestSessionMemo(t *testing.T) {
	for _, s := range []Scheme{SchemeHybridSession, SchemeX25519Session} {
		priv, pub := keys(t, 1)
		z := NewSealer(s)
		var envs [][]byte
		for i := range 5 {
			env, err := z.Seal(pub, []byte{byte(i)})
			if err != nil {
				t.Fatal(err)
			}
			envs = append(envs, env)
		}
		fresh, err := NewPrivateKey(priv[0].Bytes())
		if err != nil {
			t.Fatal(err)
		}
		for i, env := range envs {
			got, err := Open(priv[0], env)
			if err != nil || !bytes.Equal(got, []byte{byte(i)}) {
				t.Fatalf("%s: envelope %d: %x, %v", s, i, got, err)
			}
			fresh.sessions = &sessionMemo{} // forgets: derives each time
			want, err := Open(fresh, env)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: envelope %d with and without the memo: %x, %x, %v", s, i, got, want, err)
			}
		}
		if n := len(priv[0].sessions.m); n != 1 {
			t.Fatalf("%s: the memo holds %d sessions after one session's envelopes, want 1", s, n)
		}
		for _, part := range []string{"wrapped key", "salt"} {
			e, _ := ParseEnvelope(envs[0])
			if part == "salt" {
				e.Entries[0].Salt[0] ^= 1
			} else {
				e.Entries[0].WrappedKey[0] ^= 1
			}
			if _, err := Open(priv[0], e.Marshal()); !errors.Is(err, ErrOpen) {
				t.Fatalf("%s: the session's entry with its %s changed: %v, want ErrOpen", s, part, err)
			}
		}
		// An entry that names the key but was sealed to another: its
		// secret opens nothing and is not remembered.
		_, others := keys(t, 1)
		forged, _ := SealWith(s, others, []byte("x"))
		e, _ := ParseEnvelope(forged)
		e.Entries[0].KeyID = pub[0].KeyID()
		if _, err := Open(priv[0], e.Marshal()); !errors.Is(err, ErrOpen) {
			t.Fatalf("%s: an entry sealed to another key: %v", s, err)
		}
		if n := len(priv[0].sessions.m); n != 1 {
			t.Fatalf("%s: the memo holds %d sessions after a failed entry, want 1", s, n)
		}
	}
	// Bounded: a key that opens more sessions than maxOpenSessions starts
	// its memo again.
	priv, pub := keys(t, 1)
	for i := range maxOpenSessions + 1 {
		env, err := SealWith(SchemeX25519Session, pub, []byte{1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Open(priv[0], env); err != nil {
			t.Fatal(err)
		}
		if n := len(priv[0].sessions.m); n > maxOpenSessions || n == 0 {
			t.Fatalf("after %d sessions the memo holds %d", i+1, n)
		}
	}
}

// TestSealerConcurrent: many goroutines seal with one Sealer and open
// with one key (go test -race).
func TestSealerConcurrent(t *testing.T) {
	priv, pub := keys(t, 2)
	z := NewSealer(SchemeHybridSession)
	z.maxUses = 7
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				payload := []byte{byte(g), byte(i)}
				env, err := z.Seal(pub, payload)
				if err != nil {
					errs <- err
					return
				}
				got, err := Open(priv[g%2], env)
				if err != nil || !bytes.Equal(got, payload) {
					errs <- errors.Join(err, errors.New("payload differs"))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(z.sessions); n != 2 {
		t.Fatalf("the sealer holds %d sessions for two recipients", n)
	}
}

// The envelopes of one session share their ML-KEM ciphertexts: detached,
// they name the same ones, which a store keeps once; attached again they
// are the envelopes, byte for byte, and open.
func TestDetachSessionCiphertexts(t *testing.T) {
	a, b := mustKey(t), mustKey(t)
	s := NewSealer(SchemeHybridSession)
	recipients := []*PublicKey{a.Public(), b.Public()}
	kept := map[[32]byte][]byte{}
	var envelopes, detached [][]byte
	for i := range 5 {
		env, err := s.Seal(recipients, []byte{byte(i), 'p'})
		if err != nil {
			t.Fatal(err)
		}
		d, kems, err := Detach(env)
		if err != nil || len(kems) != 2 {
			t.Fatalf("Detach: %d ciphertexts, %v", len(kems), err)
		}
		if len(d) != len(env)-2*(1088-32) {
			t.Fatalf("detached %d bytes of %d", len(d), len(env))
		}
		for _, k := range kems {
			kept[k.Hash] = k.Ciphertext
		}
		envelopes, detached = append(envelopes, env), append(detached, d)
	}
	if len(kept) != 2 {
		t.Fatalf("%d distinct ML-KEM ciphertexts in one session's envelopes to two keys; want 2", len(kept))
	}
	lookup := func(h [32]byte) ([]byte, error) { return kept[h], nil }
	for i, d := range detached {
		env, err := Attach(d, lookup)
		if err != nil || !bytes.Equal(env, envelopes[i]) {
			t.Fatalf("envelope %d attached: %v", i, err)
		}
		if p, err := Open(b, env); err != nil || p[0] != byte(i) {
			t.Fatalf("envelope %d does not open after Attach: %v", i, err)
		}
	}
	// A ciphertext that is not the one hashed is refused.
	wrong := func([32]byte) ([]byte, error) { return make([]byte, 1088), nil }
	if _, err := Attach(detached[0], wrong); err == nil {
		t.Fatal("Attach took a ciphertext that is not the one hashed")
	}
	// Schemes without ML-KEM: nothing to detach.
	env, err := SealWith(SchemeX25519, recipients, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if d, kems, err := Detach(env); err != nil || len(kems) != 0 || !bytes.Equal(d, env) {
		t.Fatalf("Detach of an x25519 envelope: %d ciphertexts, %v", len(kems), err)
	}
}
