package privacy

import (
	"bytes"
	"errors"
	"testing"
)

// TestX25519SchemeRoundTrip: the X25519 scheme's envelopes open for every
// recipient, have the size its SealedSize says (88 bytes an entry), say
// their scheme, and keep it when a recipient is added.
func TestX25519SchemeRoundTrip(t *testing.T) {
	for _, c := range []struct{ recipients, size int }{{1, 0}, {2, 1000}, {5, 100}, {MaxRecipients, 64}} {
		priv, pub := keys(t, c.recipients)
		payload := randomBytes(t, c.size)
		env, err := SealWith(SchemeX25519, pub, payload)
		if err != nil {
			t.Fatal(err)
		}
		if len(env) != SchemeX25519.SealedSize(c.recipients, c.size) || EntrySizeX25519 != 88 {
			t.Fatalf("envelope of %d bytes, SealedSize says %d (entry %d)", len(env), SchemeX25519.SealedSize(c.recipients, c.size), EntrySizeX25519)
		}
		e, err := ParseEnvelope(env)
		if err != nil {
			t.Fatal(err)
		}
		if e.Scheme() != SchemeX25519 || !bytes.Equal(e.Marshal(), env) {
			t.Fatalf("scheme %s, or does not re-encode", e.Scheme())
		}
		for i, k := range priv {
			got, err := Open(k, env)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("recipient %d: %v", i, err)
			}
		}
	}
	priv, pub := keys(t, 3)
	env, err := SealWith(SchemeX25519, pub[:2], []byte("pay"))
	if err != nil {
		t.Fatal(err)
	}
	more, err := AddRecipient(priv[0], env, pub[2])
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := ParseEnvelope(more); e == nil || e.Scheme() != SchemeX25519 {
		t.Fatal("AddRecipient changed the scheme")
	}
	if got, err := Open(priv[2], more); err != nil || string(got) != "pay" {
		t.Fatalf("added recipient reads %q, %v", got, err)
	}
	h1, _ := ContentHash(env)
	h2, _ := ContentHash(more)
	if h1 != h2 {
		t.Fatal("adding a recipient changed the content hash")
	}
}

// TestSchemeNoDowngrade: relabelling a hybrid envelope as X25519 (or the
// reverse) gives bytes that do not parse, or that open for nobody, and
// another content hash: a member cannot strip the ML-KEM half of an
// envelope that others committed to.
func TestSchemeNoDowngrade(t *testing.T) {
	priv, pub := keys(t, 1)
	for _, s := range []Scheme{SchemeHybrid, SchemeX25519} {
		env, err := SealWith(s, pub, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		h, _ := ContentHash(env)
		e, _ := ParseEnvelope(env)
		other := SchemeX25519
		if s == SchemeX25519 {
			other = SchemeHybrid
		}
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

func TestParseScheme(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Scheme
		ok   bool
	}{{"", SchemeHybrid, true}, {"hybrid", SchemeHybrid, true}, {"x25519", SchemeX25519, true}, {"X25519", 0, false}, {"mlkem", 0, false}} {
		got, err := ParseScheme(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseScheme(%q) = %v, %v", c.in, got, err)
		}
		if c.ok && c.in != "" && got.String() != c.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), c.in)
		}
	}
	if _, err := SealWith(Scheme(3), nil, nil); !errors.Is(err, ErrEnvelopeVersion) {
		t.Fatalf("SealWith(3): %v", err)
	}
}

func BenchmarkSealOpen(b *testing.B) {
	priv, pub := keys(b, 2)
	payload := randomBytes(b, 200)
	for _, s := range []Scheme{SchemeHybrid, SchemeX25519} {
		b.Run("seal-"+s.String(), func(b *testing.B) {
			for range b.N {
				if _, err := SealWith(s, pub, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
		env, _ := SealWith(s, pub, payload)
		b.Run("open-"+s.String(), func(b *testing.B) {
			for range b.N {
				if _, err := Open(priv[0], env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
