package privacy

import (
	"bytes"
	"errors"
	"testing"
)

// TestSchemeRoundTrip: every scheme's envelopes, sealed by SealWith and
// by a Sealer, open for every recipient, have the size SealedSize says
// (88 bytes an X25519 entry, 104 with a salt, 1,192 a hybrid one with a
// salt), say their scheme, and keep it when a recipient is added.
func TestSchemeRoundTrip(t *testing.T) {
	entry := map[Scheme]int{SchemeHybrid: 1176, SchemeX25519: 88, SchemeHybridSession: 1192, SchemeX25519Session: 104}
	for _, s := range Schemes {
		z := NewSealer(s)
		for _, c := range []struct{ recipients, size int }{{1, 0}, {2, 1000}, {5, 100}, {MaxRecipients, 64}} {
			priv, pub := keys(t, c.recipients)
			payload := randomBytes(t, c.size)
			for _, sealWith := range []func() ([]byte, error){
				func() ([]byte, error) { return SealWith(s, pub, payload) },
				func() ([]byte, error) { return z.Seal(pub, payload) },
			} {
				env, err := sealWith()
				if err != nil {
					t.Fatal(err)
				}
				if len(env) != s.SealedSize(c.recipients, c.size) || s.entrySize() != entry[s] {
					t.Fatalf("%s: envelope of %d bytes, SealedSize says %d (entry %d)", s, len(env), s.SealedSize(c.recipients, c.size), s.entrySize())
				}
				e, err := ParseEnvelope(env)
				if err != nil {
					t.Fatal(err)
				}
				if e.Scheme() != s || !bytes.Equal(e.Marshal(), env) {
					t.Fatalf("%s: scheme %s, or does not re-encode", s, e.Scheme())
				}
				for i, k := range priv {
					got, err := Open(k, env)
					if err != nil || !bytes.Equal(got, payload) {
						t.Fatalf("%s: recipient %d: %v", s, i, err)
					}
				}
			}
		}
		priv, pub := keys(t, 3)
		env, err := z.Seal(pub[:2], []byte("pay"))
		if err != nil {
			t.Fatal(err)
		}
		more, err := AddRecipient(priv[0], env, pub[2])
		if err != nil {
			t.Fatal(err)
		}
		if e, _ := ParseEnvelope(more); e == nil || e.Scheme() != s {
			t.Fatalf("%s: AddRecipient changed the scheme", s)
		}
		if got, err := Open(priv[2], more); err != nil || string(got) != "pay" {
			t.Fatalf("%s: added recipient reads %q, %v", s, got, err)
		}
		h1, _ := ContentHash(env)
		h2, _ := ContentHash(more)
		if h1 != h2 {
			t.Fatalf("%s: adding a recipient changed the content hash", s)
		}
	}
}

// TestSchemeNoDowngrade: relabelling an envelope of one scheme as
// another (its entries re-encoded in the other's layout) gives bytes that
// open for nobody, and another content hash: a member cannot strip the
// ML-KEM half, or the salt, of an envelope that others committed to.
func TestSchemeNoDowngrade(t *testing.T) {
	priv, pub := keys(t, 1)
	for _, s := range Schemes {
		env, err := NewSealer(s).Seal(pub, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Open(priv[0], env); err != nil {
			t.Fatal(err)
		}
		h, _ := ContentHash(env)
		for _, other := range Schemes {
			if other == s {
				continue
			}
			e, _ := ParseEnvelope(env)
			e.Version = byte(other)
			relabelled := e.Marshal()
			if _, err := Open(priv[0], relabelled); !errors.Is(err, ErrOpen) {
				t.Fatalf("%s relabelled %s: Open err %v, want ErrOpen", s, other, err)
			}
			if h2, _ := ContentHash(relabelled); h2 == h {
				t.Fatalf("%s relabelled %s keeps its content hash", s, other)
			}
		}
	}
}

func TestParseScheme(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Scheme
		ok   bool
	}{{"", SchemeHybrid, true}, {"hybrid", SchemeHybrid, true}, {"x25519", SchemeX25519, true},
		{"hybrid-session", SchemeHybridSession, true}, {"x25519-session", SchemeX25519Session, true},
		{"X25519", 0, false}, {"mlkem", 0, false}, {"session", 0, false}} {
		got, err := ParseScheme(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseScheme(%q) = %v, %v", c.in, got, err)
		}
		if c.ok && c.in != "" && got.String() != c.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), c.in)
		}
	}
	if _, err := SealWith(Scheme(5), nil, nil); !errors.Is(err, ErrEnvelopeVersion) {
		t.Fatalf("SealWith(5): %v", err)
	}
}

// BenchmarkSealOpen: sealing a 200-byte payload to two recipients with a
// node's Sealer, and opening it: in the session schemes within one
// session (what a node does between two sessions), in the others as
// SealWith.
func BenchmarkSealOpen(b *testing.B) {
	priv, pub := keys(b, 2)
	payload := randomBytes(b, 200)
	for _, s := range Schemes {
		z := NewSealer(s)
		b.Run("seal-"+s.String(), func(b *testing.B) {
			for range b.N {
				if _, err := z.Seal(pub, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
		env, _ := z.Seal(pub, payload)
		b.Run("open-"+s.String(), func(b *testing.B) {
			for range b.N {
				if _, err := Open(priv[0], env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
