package privacy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

// fuzzKey is a fixed private key (test bytes, of no value), so that
// envelopes in the corpus stay sealed to the key the target opens with.
func fuzzKey(t testing.TB) *PrivateKey {
	t.Helper()
	raw := make([]byte, PrivateKeySize)
	for i := range raw {
		raw[i] = byte(i*7 + 3)
	}
	k, err := NewPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// openErrors are the errors Open may answer for bytes from outside.
var openErrors = []error{ErrEnvelope, ErrNotRecipient, ErrOpen}

// FuzzOpenEnvelope feeds arbitrary bytes to the envelope decoder and to
// Open: neither panics; what decodes is within the bounds and re-encodes
// to the same bytes; what opens decoded first and is at most
// MaxPayloadBytes; every refusal wraps a named error.
func FuzzOpenEnvelope(f *testing.F) {
	key := fuzzKey(f)
	other := mustKey(f)
	for _, c := range []struct {
		recipients []*PublicKey
		payload    []byte
	}{
		{[]*PublicKey{key.Public()}, []byte("private transaction")},
		{[]*PublicKey{key.Public(), other.Public()}, nil},
		{[]*PublicKey{other.Public()}, bytes.Repeat([]byte{0xab}, 300)},
	} {
		for _, s := range Schemes {
			env, err := SealWith(s, c.recipients, c.payload)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(env)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{EnvelopeVersion, 1})
	f.Add([]byte{EnvelopeVersion, 65})
	f.Add([]byte{2, 1})
	f.Add([]byte{3, 1})
	f.Add([]byte{4, 1})
	f.Add([]byte{5, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, perr := ParseEnvelope(data)
		if perr == nil {
			n := len(e.Entries)
			if n < 1 || n > MaxRecipients || e.PayloadSize() > MaxPayloadBytes || len(data) > MaxEnvelopeBytes {
				t.Fatalf("decoded out of bounds: %d entries, %d payload bytes, %d envelope bytes", n, e.PayloadSize(), len(data))
			}
			if !bytes.Equal(e.Marshal(), data) {
				t.Fatal("decoded envelope does not re-encode to its bytes")
			}
		} else if !errors.Is(perr, ErrEnvelope) {
			t.Fatalf("decode error %v does not wrap ErrEnvelope", perr)
		}
		// The checks that copy nothing agree with the decoder.
		hash, herr := ContentHash(data)
		sealedTo, serr := SealedTo(data, key.Public().KeyID())
		switch {
		case (herr == nil) != (perr == nil) || (serr == nil) != (perr == nil):
			t.Fatalf("ContentHash (%v) and SealedTo (%v) disagree with the decoder (%v)", herr, serr, perr)
		case perr == nil && sealedTo != slices.Contains(e.Recipients(), key.Public().KeyID()):
			t.Fatalf("SealedTo %v, recipients %x", sealedTo, e.Recipients())
		case perr == nil && hash != crypto.Keccak256Hash([]byte{e.Version}, e.Commitment[:], binary.BigEndian.AppendUint32(nil, uint32(len(e.Ciphertext))), e.Ciphertext):
			t.Fatal("ContentHash is not the hash of the decoded content")
		}
		// Detaching the ML-KEM ciphertexts and attaching them again gives
		// the envelope back; the detached form of anything else is refused.
		det, kems, derr := Detach(data)
		if (derr == nil) != (perr == nil) {
			t.Fatalf("Detach (%v) disagrees with the decoder (%v)", derr, perr)
		}
		kept := map[[32]byte][]byte{}
		for _, k := range kems {
			kept[k.Hash] = k.Ciphertext
		}
		lookup := func(h [32]byte) ([]byte, error) {
			if ct, ok := kept[h]; ok {
				return ct, nil
			}
			return nil, errors.New("not kept")
		}
		if derr == nil && len(kems) > 0 {
			back, err := Attach(det, lookup)
			if err != nil || !bytes.Equal(back, data) {
				t.Fatalf("Attach(Detach(envelope)) = %d bytes, %v; want the envelope", len(back), err)
			}
		}
		if back, err := Attach(data, lookup); err == nil {
			if _, perr := ParseEnvelope(back); perr != nil {
				t.Fatalf("Attach made what does not decode: %v", perr)
			}
		}
		plain, err := Open(key, data)
		switch {
		case err == nil && perr != nil:
			t.Fatalf("opened what does not decode (%v)", perr)
		case err == nil && len(plain) > MaxPayloadBytes:
			t.Fatalf("opened %d bytes", len(plain))
		case err != nil && !isOneOf(err, openErrors):
			t.Fatalf("Open error %v wraps no named error", err)
		}
	})
}

func isOneOf(err error, sentinels []error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
