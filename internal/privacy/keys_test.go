package privacy

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

func mustKey(t testing.TB) *PrivateKey {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKeyRoundTrips: a key pair survives each of its encodings: the
// private key's bytes, the public key's bytes, its two text parts, its
// PEM file and bare base64.
func TestKeyRoundTrips(t *testing.T) {
	k := mustKey(t)
	pub := k.Public()
	if n := len(pub.Bytes()); n != PublicKeySize || PublicKeySize != 1216 {
		t.Fatalf("public key of %d bytes, PublicKeySize %d, want 1216", n, PublicKeySize)
	}
	raw := k.Bytes()
	if len(raw) != PrivateKeySize || PrivateKeySize != 96 {
		t.Fatalf("private key of %d bytes, want 96", len(raw))
	}
	k2, err := NewPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !k2.Equal(k) || !k2.Public().Equal(pub) {
		t.Fatal("private key bytes do not round-trip")
	}
	if other := mustKey(t); other.Equal(k) || other.Public().Equal(pub) {
		t.Fatal("two generated keys are equal")
	}
	p2, err := ParsePublicKey(pub.Bytes())
	if err != nil || !p2.Equal(pub) {
		t.Fatalf("public key bytes do not round-trip: %v", err)
	}
	id := pub.Identity().String()
	if len(id) != IdentityLength || !bytes.Equal(mustB64(t, id), pub.Bytes()[:32]) {
		t.Fatalf("identity %q is not base64 of the X25519 key", id)
	}
	p3, err := ParsePublicKeyParts(id, pub.KEMString())
	if err != nil || !p3.Equal(pub) {
		t.Fatalf("text parts do not round-trip: %v", err)
	}
	for name, text := range map[string][]byte{
		"pem":    pub.EncodePEM(),
		"base64": []byte(" " + base64.StdEncoding.EncodeToString(pub.Bytes()) + "\n"),
	} {
		p, err := ParsePublicKeyText(text)
		if err != nil || !p.Equal(pub) {
			t.Fatalf("%s: does not round-trip: %v", name, err)
		}
	}
	var got Identity
	if err := got.UnmarshalText([]byte(id)); err != nil || got != pub.Identity() {
		t.Fatalf("identity text does not round-trip: %v", err)
	}
	if pub.KeyID() != pub.Identity().KeyID() || pub.KeyID() == mustKey(t).Public().KeyID() {
		t.Fatal("key ids: not derived from the identity, or equal for two keys")
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParsePublicKeyRefuses: every malformed key is refused with
// ErrPublicKey and words that say what is wrong.
func TestParsePublicKeyRefuses(t *testing.T) {
	good := mustKey(t).Public().Bytes()
	with := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name string
		key  []byte
		want string
	}{
		{"empty", nil, "0 bytes, want 1216"},
		{"short", good[:PublicKeySize-1], "1215 bytes, want 1216"},
		{"long", append(bytes.Clone(good), 0), "1217 bytes, want 1216"},
		{"x25519 zero point", with(func(b []byte) []byte { clear(b[:32]); return b }), "small order"},
		{"x25519 point of order 1", with(func(b []byte) []byte { clear(b[:32]); b[0] = 1; return b }), "small order"},
		{"x25519 point of order 8", with(func(b []byte) []byte {
			// A point of order 8 (from the X25519 small-order list).
			copy(b, []byte{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
				0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00})
			return b
		}), "small order"},
		{"ml-kem coefficient not reduced", with(func(b []byte) []byte { b[32], b[33] = 0xff, 0xff; return b }), "ML-KEM-768 part"},
	}
	for _, c := range cases {
		_, err := ParsePublicKey(c.key)
		if !errors.Is(err, ErrPublicKey) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want ErrPublicKey saying %q", c.name, err, c.want)
		}
	}
}

// TestParseTextRefuses: identities, text parts and key files that are
// not what they should be are refused, naming what is wrong.
func TestParseTextRefuses(t *testing.T) {
	pub := mustKey(t).Public()
	id := pub.Identity().String()
	for _, s := range []string{"", id[:43], id + "=", strings.Repeat("A", 44),
		strings.NewReplacer("+", "-", "/", "_").Replace(strings.Repeat("+/", 21) + "A="),
		base64.RawStdEncoding.EncodeToString(make([]byte, 33))} {
		if _, err := ParseIdentity(s); !errors.Is(err, ErrIdentity) {
			t.Errorf("identity %q: err %v, want ErrIdentity", s, err)
		}
	}
	kem := pub.KEMString()
	for _, c := range []struct{ id, kem, want string }{
		{"bad", kem, "44"},
		{id, kem[:len(kem)-4], "1182 bytes, want 1184"},
		{id, "!" + kem[1:], "not standard base64"},
	} {
		_, err := ParsePublicKeyParts(c.id, c.kem)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parts (%.10s, %.10s): err %v, want %q", c.id, c.kem, err, c.want)
		}
	}
	for _, text := range [][]byte{
		nil,
		[]byte("not base64"),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub.Bytes()}),
		pem.EncodeToMemory(&pem.Block{Type: PEMPublicKey, Bytes: pub.Bytes()[:100]}),
		append(pub.EncodePEM(), "trailing"...),
		pem.EncodeToMemory(&pem.Block{Type: PEMPublicKey, Headers: map[string]string{"A": "b"}, Bytes: pub.Bytes()}),
	} {
		if _, err := ParsePublicKeyText(text); !errors.Is(err, ErrPublicKey) {
			t.Errorf("text %.30q: err %v, want ErrPublicKey", text, err)
		}
	}
	for _, n := range []int{0, 95, 97} {
		if _, err := NewPrivateKey(make([]byte, n)); !errors.Is(err, ErrPrivateKey) {
			t.Errorf("private key of %d bytes: err %v, want ErrPrivateKey", n, err)
		}
	}
}
