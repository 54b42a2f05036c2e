package privacy

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func keys(t testing.TB, n int) ([]*PrivateKey, []*PublicKey) {
	t.Helper()
	priv := make([]*PrivateKey, n)
	pub := make([]*PublicKey, n)
	for i := range priv {
		priv[i] = mustKey(t)
		pub[i] = priv[i].Public()
	}
	return priv, pub
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSealOpenRoundTrip: for 1 to 64 recipients and payloads from empty
// to the largest, every recipient reads the payload, the envelope has
// the size SealedSize says and lists exactly the recipients' key ids.
func TestSealOpenRoundTrip(t *testing.T) {
	for _, c := range []struct{ recipients, size int }{
		{1, 0}, {1, 1}, {2, 1000}, {3, 4096}, {5, 100}, {MaxRecipients, 64}, {2, MaxPayloadBytes},
	} {
		priv, pub := keys(t, c.recipients)
		payload := randomBytes(t, c.size)
		env, err := Seal(pub, payload)
		if err != nil {
			t.Fatalf("%d recipients, %d bytes: %v", c.recipients, c.size, err)
		}
		if len(env) != SealedSize(c.recipients, c.size) {
			t.Fatalf("envelope of %d bytes, SealedSize says %d", len(env), SealedSize(c.recipients, c.size))
		}
		e, err := ParseEnvelope(env)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[KeyID]bool{}
		for _, id := range e.Recipients() {
			ids[id] = true
		}
		for i, k := range priv {
			if !ids[k.Public().KeyID()] {
				t.Fatalf("recipient %d is not listed in the envelope", i)
			}
			got, err := Open(k, env)
			if err != nil {
				t.Fatalf("%d recipients, %d bytes: recipient %d: %v", c.recipients, c.size, i, err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("recipient %d reads another payload", i)
			}
		}
		if len(ids) != c.recipients || e.PayloadSize() != c.size {
			t.Fatalf("envelope lists %d recipients and %d payload bytes, want %d and %d", len(ids), e.PayloadSize(), c.recipients, c.size)
		}
	}
}

// TestSealIsRandomized: the same payload to the same recipients seals to
// different envelopes, and the payload does not appear in them.
func TestSealIsRandomized(t *testing.T) {
	_, pub := keys(t, 2)
	payload := []byte(strings.Repeat("CHARTER-PRIVATE-MARKER ", 20))
	a, err := Seal(pub, payload)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Seal(pub, payload)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one payload are equal")
	}
	if bytes.Contains(a, []byte("CHARTER-PRIVATE-MARKER")) {
		t.Fatal("the payload appears in the envelope")
	}
	// The order recipients are given in does not change the entries' order.
	c, err := Seal([]*PublicKey{pub[1], pub[0]}, payload)
	if err != nil {
		t.Fatal(err)
	}
	ea, _ := ParseEnvelope(a)
	ec, _ := ParseEnvelope(c)
	if ea.Entries[0].KeyID != ec.Entries[0].KeyID {
		t.Fatal("the entries' order follows the recipients' order")
	}
}

// TestNonRecipientCannotOpen: a key the envelope was not sealed to is
// told ErrNotRecipient.
func TestNonRecipientCannotOpen(t *testing.T) {
	_, pub := keys(t, 3)
	env, err := Seal(pub, []byte("for three"))
	if err != nil {
		t.Fatal(err)
	}
	outsider := mustKey(t)
	if _, err := Open(outsider, env); !errors.Is(err, ErrNotRecipient) {
		t.Fatalf("outsider: err %v, want ErrNotRecipient", err)
	}
	if _, err := Open(nil, env); !errors.Is(err, ErrPrivateKey) {
		t.Fatalf("nil key: err %v, want ErrPrivateKey", err)
	}
}

// TestEveryByteChangeRefused: flipping any bit of the envelope's
// content (version, count, commitment, length, ciphertext) makes Open
// fail for every recipient; flipping a bit of a recipient's entry makes it
// fail for that recipient, while the others still read the same payload
// and the content hash does not move; truncating or extending it fails.
// Both schemes.
func TestEveryByteChangeRefused(t *testing.T) {
	for _, s := range Schemes {
		t.Run(s.String(), func(t *testing.T) { everyByteChangeRefused(t, s) })
	}
}

func everyByteChangeRefused(t *testing.T, s Scheme) {
	priv, pub := keys(t, 2)
	payload := []byte("forty bytes of a private transaction....")
	env, err := SealWith(s, pub, payload)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := ParseEnvelope(env)
	want, _ := ContentHash(env)
	entryOf := func(i int) int { // which entry byte i is in; -1: the content
		if i < headerSize || i >= headerSize+len(e.Entries)*s.entrySize() {
			return -1
		}
		return (i - headerSize) / s.entrySize()
	}
	for i := range env {
		for _, flip := range []byte{0x01, 0x80} {
			bad := bytes.Clone(env)
			bad[i] ^= flip
			entry := entryOf(i)
			for r, k := range priv {
				got, err := Open(k, bad)
				mine := entry >= 0 && e.Entries[entry].KeyID == k.Public().KeyID()
				switch {
				case entry < 0 || mine:
					if err == nil {
						t.Fatalf("byte %d ^ %#x: recipient %d opened %q", i, flip, r, got)
					}
				case err == nil && !bytes.Equal(got, payload):
					t.Fatalf("byte %d ^ %#x of another's entry: recipient %d read %q", i, flip, r, got)
				}
			}
			if entry >= 0 {
				if h, err := ContentHash(bad); err == nil && h != want {
					t.Fatalf("byte %d ^ %#x of an entry moved the content hash", i, flip)
				}
			}
		}
	}
	for n := 0; n < len(env); n++ {
		if _, err := Open(priv[0], env[:n]); !errors.Is(err, ErrEnvelope) {
			t.Fatalf("truncated to %d bytes: err %v, want ErrEnvelope", n, err)
		}
	}
	if _, err := Open(priv[0], append(bytes.Clone(env), 0)); !errors.Is(err, ErrEnvelope) {
		t.Fatalf("one byte appended: err %v, want ErrEnvelope", err)
	}
}

// TestAddRecipient: a recipient gives the payload to another key; the
// content hash stays, the new key reads the same payload, the old ones
// still do; an outsider cannot add anyone; a key added twice is once.
func TestAddRecipient(t *testing.T) {
	priv, pub := keys(t, 2)
	env, err := Seal(pub[:1], []byte("history"))
	if err != nil {
		t.Fatal(err)
	}
	h0, _ := ContentHash(env)
	more, err := AddRecipient(priv[0], env, pub[1])
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := ContentHash(more)
	if h1 != h0 {
		t.Fatal("adding a recipient changed the content hash")
	}
	for r, k := range priv {
		if got, err := Open(k, more); err != nil || string(got) != "history" {
			t.Fatalf("recipient %d after the addition: %q %v", r, got, err)
		}
	}
	if _, err := Open(priv[1], env); !errors.Is(err, ErrNotRecipient) {
		t.Fatalf("the original envelope opened for the added key: %v", err)
	}
	if _, err := AddRecipient(priv[1], env, pub[1]); !errors.Is(err, ErrNotRecipient) {
		t.Fatalf("a non-recipient added a key: %v", err)
	}
	again, err := AddRecipient(priv[0], more, pub[1])
	if err != nil || !bytes.Equal(again, more) {
		t.Fatalf("adding a recipient twice: %v", err)
	}
}

// TestEntryFromAnotherEnvelopeRefused: an entry moved from another
// envelope to the same recipient unwraps, but to another content key:
// the commitment refuses it. Every scheme, the session ones with both
// envelopes in one session.
func TestEntryFromAnotherEnvelopeRefused(t *testing.T) {
	for _, s := range Schemes {
		priv, pub := keys(t, 1)
		z := NewSealer(s)
		a, _ := z.Seal(pub, []byte("a"))
		b, _ := z.Seal(pub, []byte("b"))
		ea, _ := ParseEnvelope(a)
		eb, _ := ParseEnvelope(b)
		ea.Entries[0] = eb.Entries[0]
		_, err := Open(priv[0], ea.Marshal())
		if !errors.Is(err, ErrOpen) || !strings.Contains(err.Error(), "commitment") {
			t.Fatalf("%s: err %v, want ErrOpen for the commitment", s, err)
		}
	}
}

// TestRecipientsReadOnePayload: a sender that wraps different content
// keys to different recipients around one ciphertext is caught by the
// commitment: no recipient reads another payload than the others.
func TestRecipientsReadOnePayload(t *testing.T) {
	priv, pub := keys(t, 2)
	env, err := Seal(pub, []byte("honest"))
	if err != nil {
		t.Fatal(err)
	}
	e, _ := ParseEnvelope(env)
	// Rewrap another content key for the second entry's recipient.
	other := randomBytes(t, contentKeySize)
	var target *PublicKey
	for _, p := range pub {
		if p.KeyID() == e.Entries[1].KeyID {
			target = p
		}
	}
	en, err := wrap(SchemeHybrid, target, other)
	if err != nil {
		t.Fatal(err)
	}
	e.Entries[1] = *en
	forged := e.Marshal()
	// The forged entry's recipient is refused by the commitment; the
	// other reads the honest payload: nobody reads another payload.
	refused := 0
	for _, k := range priv {
		got, err := Open(k, forged)
		switch {
		case err == nil && string(got) != "honest":
			t.Fatalf("a recipient read %q from a forged envelope", got)
		case err != nil && !errors.Is(err, ErrOpen):
			t.Fatalf("err %v, want ErrOpen", err)
		case err != nil:
			refused++
		}
	}
	if refused != 1 {
		t.Fatalf("%d recipients refused the forged envelope, want the forged entry's one", refused)
	}
}

// TestSealRefuses: no recipients, too many, a key twice, a nil key and
// an oversized payload are refused with their errors.
func TestSealRefuses(t *testing.T) {
	_, pub := keys(t, 2)
	many := make([]*PublicKey, MaxRecipients+1)
	for i := range many {
		many[i] = pub[0]
	}
	cases := []struct {
		name       string
		recipients []*PublicKey
		size       int
		want       error
	}{
		{"none", nil, 1, ErrNoRecipients},
		{"too many", many, 1, ErrTooManyRecipients},
		{"twice", []*PublicKey{pub[0], pub[1], pub[0]}, 1, ErrDuplicateRecipient},
		{"nil key", []*PublicKey{pub[0], nil}, 1, ErrPublicKey},
		{"zero key", []*PublicKey{{}}, 1, ErrPublicKey},
		{"payload too large", pub, MaxPayloadBytes + 1, ErrPayloadTooLarge},
	}
	for _, c := range cases {
		if _, err := Seal(c.recipients, make([]byte, c.size)); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
}

// TestParseEnvelopeBounds: each bound of the decoder refuses with its
// error, before allocating for what the input does not hold.
func TestParseEnvelopeBounds(t *testing.T) {
	_, pub := keys(t, 2)
	env, err := Seal(pub, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	lenAt := SealedSize(2, 0) - tagSize - lengthSize
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(env)) }
	cases := []struct {
		name string
		env  []byte
		want error
		text string
	}{
		{"version 0", edit(func(b []byte) []byte { b[0] = 0; return b }), ErrEnvelopeVersion, "version 0"},
		{"version 5", edit(func(b []byte) []byte { b[0] = 5; return b }), ErrEnvelopeVersion, "version 5"},
		{"no recipients", edit(func(b []byte) []byte { b[1] = 0; return b }), ErrNoRecipients, ""},
		{"65 recipients", edit(func(b []byte) []byte { b[1] = 65; return b }), ErrTooManyRecipients, "65 recipients"},
		{"255 recipients", edit(func(b []byte) []byte { b[1] = 255; return b }), ErrTooManyRecipients, ""},
		{"count above the entries", edit(func(b []byte) []byte { b[1] = 3; return b }), ErrEnvelope, "truncated"},
		{"entries swapped", edit(func(b []byte) []byte {
			e1 := bytes.Clone(b[2 : 2+EntrySize])
			copy(b[2:], b[2+EntrySize:2+2*EntrySize])
			copy(b[2+EntrySize:], e1)
			return b
		}), ErrEnvelope, "out of order"},
		{"entry repeated", edit(func(b []byte) []byte { copy(b[2+EntrySize:], b[2:2+EntrySize]); return b }), ErrEnvelope, "repeated"},
		{"ciphertext shorter than a tag", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[lenAt:], 15)
			return b[:lenAt+lengthSize+15]
		}), ErrEnvelope, "shorter than its tag"},
		{"ciphertext too large", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[lenAt:], MaxPayloadBytes+tagSize+1)
			return b
		}), ErrPayloadTooLarge, ""},
		{"length above what follows", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[lenAt:], 0xffffffff)
			return b
		}), ErrEnvelope, "ciphertext of 4294967295 bytes"},
		{"length below what follows", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[lenAt:], tagSize)
			return b
		}), ErrEnvelope, "but 23 bytes follow"},
		{"larger than any envelope", make([]byte, MaxEnvelopeBytes+1), ErrEnvelope, "at most"},
		{"empty", nil, ErrEnvelope, "truncated"},
	}
	for _, c := range cases {
		_, err := ParseEnvelope(c.env)
		if !errors.Is(err, c.want) || !errors.Is(err, ErrEnvelope) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: err %v, want %v (and ErrEnvelope) saying %q", c.name, err, c.want, c.text)
		}
	}
	// What decodes re-encodes to the same bytes.
	e, err := ParseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(e.Marshal(), env) {
		t.Fatal("a decoded envelope does not re-encode to its bytes")
	}
	if MaxEnvelopeBytes != SchemeHybridSession.SealedSize(MaxRecipients, MaxPayloadBytes) || EntrySize != 1176 ||
		SchemeHybridSession.entrySize() != 1192 || SchemeX25519Session.entrySize() != 104 {
		t.Fatalf("MaxEnvelopeBytes %d, EntrySize %d: the layout changed", MaxEnvelopeBytes, EntrySize)
	}
}

// BenchmarkSeal2x1KB seals a 1 KB payload to two recipients (a sender
// and one counterparty).
func BenchmarkSeal2x1KB(b *testing.B) {
	_, pub := keys(b, 2)
	payload := make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(pub, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen1KB opens a 1 KB payload sealed to two recipients.
func BenchmarkOpen1KB(b *testing.B) {
	priv, pub := keys(b, 2)
	env, err := Seal(pub, make([]byte, 1024))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(priv[0], env); err != nil {
			b.Fatal(err)
		}
	}
}
