package privacy

import (
	"bytes"
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Sizes of keys and their text forms.
const (
	// X25519KeySize is the size of an X25519 public key, an Identity.
	X25519KeySize = 32
	// KEMKeySize is the size of an ML-KEM-768 encapsulation key.
	KEMKeySize = mlkem.EncapsulationKeySize768
	// PublicKeySize is the size of a PublicKey: X25519 key, then ML-KEM key.
	PublicKeySize = X25519KeySize + KEMKeySize
	// PrivateKeySize is the size of a PrivateKey: X25519 scalar, then the
	// 64-byte ML-KEM-768 seed.
	PrivateKeySize = 32 + mlkem.SeedSize
	// IdentityLength is the length of an Identity's text: standard base64
	// of 32 bytes, padded.
	IdentityLength = 44
	// KeyIDSize is the size of a KeyID.
	KeyIDSize = 8
)

// PEMPublicKey is the PEM block type of a public key file (the 1216 bytes
// of PublicKey.Bytes).
const PEMPublicKey = "CHARTER PRIVACY PUBLIC KEY"

// Errors of keys; each is wrapped with the detail.
var (
	// ErrPublicKey: bytes or text that are not a privacy public key.
	ErrPublicKey = errors.New("invalid privacy public key")
	// ErrIdentity: text that is not a privacy identity (44 characters of
	// base64 of a 32-byte X25519 key).
	ErrIdentity = errors.New("invalid privacy identity")
	// ErrPrivateKey: bytes that are not a privacy private key.
	ErrPrivateKey = errors.New("invalid privacy private key")
)

// Identity is an organization's X25519 public key: its name in the
// Besu-style privacy API (privateFrom, privateFor), where it is written
// as standard base64 (String).
type Identity [X25519KeySize]byte

// String is the identity as the API writes it: 44 characters of
// standard base64.
func (id Identity) String() string { return base64.StdEncoding.EncodeToString(id[:]) }

// MarshalText writes the identity as String does.
func (id Identity) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText reads an identity as ParseIdentity does.
func (id *Identity) UnmarshalText(b []byte) error {
	v, err := ParseIdentity(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// KeyID is the short id by which an envelope names a recipient.
func (id Identity) KeyID() KeyID {
	h := sha256.New()
	h.Write([]byte("charter/privacy/v1 key id"))
	h.Write(id[:])
	var k KeyID
	copy(k[:], h.Sum(nil))
	return k
}

// ParseIdentity reads an identity: 44 characters of standard base64
// (padded, as Besu and web3js-quorum write it) of 32 bytes. It checks the
// form only; ParsePublicKey checks the key.
func ParseIdentity(s string) (Identity, error) {
	var id Identity
	if len(s) != IdentityLength {
		return id, fmt.Errorf("%w: %q is %d characters, want %d (standard base64 of a 32-byte X25519 key)", ErrIdentity, shorten(s), len(s), IdentityLength)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(raw) != X25519KeySize {
		return id, fmt.Errorf("%w: %q is not standard base64 of 32 bytes", ErrIdentity, shorten(s))
	}
	copy(id[:], raw)
	return id, nil
}

// KeyID names a recipient in an envelope: the first 8 bytes of a hash of
// its Identity.
type KeyID [KeyIDSize]byte

func (k KeyID) String() string { return fmt.Sprintf("%x", k[:]) }

// PublicKey is an organization's privacy public key. It is immutable.
type PublicKey struct {
	x   *ecdh.PublicKey
	kem *mlkem.EncapsulationKey768
	raw []byte // PublicKeySize bytes
}

// lowOrderProbe is a fixed scalar; X25519 with it gives zero, and
// crypto/ecdh an error, exactly for the points of small order.
var lowOrderProbe = func() *ecdh.PrivateKey {
	k, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{0x5a}, 32))
	if err != nil {
		panic(err)
	}
	return k
}()

// ParsePublicKey reads the PublicKeySize bytes of a public key (X25519
// key, then ML-KEM-768 key), refusing another length, an ML-KEM key that
// is not well formed and an X25519 key of small order. It is
// deterministic.
func ParsePublicKey(b []byte) (*PublicKey, error) {
	if len(b) != PublicKeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d (X25519 %d and ML-KEM-768 %d)", ErrPublicKey, len(b), PublicKeySize, X25519KeySize, KEMKeySize)
	}
	x, err := ecdh.X25519().NewPublicKey(b[:X25519KeySize])
	if err != nil {
		return nil, fmt.Errorf("%w: X25519 part: %v", ErrPublicKey, err)
	}
	if _, err := lowOrderProbe.ECDH(x); err != nil {
		return nil, fmt.Errorf("%w: X25519 part is a point of small order", ErrPublicKey)
	}
	kem, err := mlkem.NewEncapsulationKey768(b[X25519KeySize:])
	if err != nil {
		return nil, fmt.Errorf("%w: ML-KEM-768 part: %v", ErrPublicKey, err)
	}
	return &PublicKey{x: x, kem: kem, raw: bytes.Clone(b)}, nil
}

// ParsePublicKeyParts reads a public key from its two text parts as the
// genesis and the JSON-RPC views write them: the identity (base64 of the
// X25519 key) and base64 of the ML-KEM-768 key.
func ParsePublicKeyParts(identity, kem string) (*PublicKey, error) {
	id, err := ParseIdentity(identity)
	if err != nil {
		return nil, err
	}
	k, err := base64.StdEncoding.Strict().DecodeString(kem)
	if err != nil {
		return nil, fmt.Errorf("%w: ML-KEM-768 key is not standard base64: %v", ErrPublicKey, err)
	}
	if len(k) != KEMKeySize {
		return nil, fmt.Errorf("%w: ML-KEM-768 key of %d bytes, want %d", ErrPublicKey, len(k), KEMKeySize)
	}
	return ParsePublicKey(append(id[:], k...))
}

// ParsePublicKeyText reads a public key file's content: a PEMPublicKey
// block, or standard base64 of the PublicKeySize bytes.
func ParsePublicKeyText(text []byte) (*PublicKey, error) {
	trimmed := bytes.TrimSpace(text)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		block, rest := pem.Decode(trimmed)
		switch {
		case block == nil:
			return nil, fmt.Errorf("%w: malformed PEM", ErrPublicKey)
		case block.Type != PEMPublicKey:
			return nil, fmt.Errorf("%w: PEM block %q, want %q", ErrPublicKey, block.Type, PEMPublicKey)
		case len(block.Headers) != 0 || len(bytes.TrimSpace(rest)) != 0:
			return nil, fmt.Errorf("%w: PEM headers or data after the block", ErrPublicKey)
		}
		return ParsePublicKey(block.Bytes)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(string(trimmed))
	if err != nil {
		return nil, fmt.Errorf("%w: want a %q PEM block or standard base64 of %d bytes", ErrPublicKey, PEMPublicKey, PublicKeySize)
	}
	return ParsePublicKey(raw)
}

// Bytes is the key's PublicKeySize bytes (a copy).
func (k *PublicKey) Bytes() []byte { return bytes.Clone(k.raw) }

// Identity is the X25519 part: the organization's privacy identity.
func (k *PublicKey) Identity() Identity {
	var id Identity
	copy(id[:], k.raw[:X25519KeySize])
	return id
}

// KEMBytes is the ML-KEM-768 encapsulation key (a copy).
func (k *PublicKey) KEMBytes() []byte { return bytes.Clone(k.raw[X25519KeySize:]) }

// KEMString is the ML-KEM-768 key in standard base64, as the genesis and
// the JSON-RPC views write it beside the identity.
func (k *PublicKey) KEMString() string {
	return base64.StdEncoding.EncodeToString(k.raw[X25519KeySize:])
}

// KeyID is the id by which envelopes name this key.
func (k *PublicKey) KeyID() KeyID { return k.Identity().KeyID() }

// Equal reports whether k and o are the same key.
func (k *PublicKey) Equal(o *PublicKey) bool {
	return k != nil && o != nil && bytes.Equal(k.raw, o.raw)
}

// EncodePEM is the key as a public key file: one PEMPublicKey block.
func (k *PublicKey) EncodePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: PEMPublicKey, Bytes: k.raw})
}

// PrivateKey is an organization's privacy private key. Its keys never
// change; it remembers the session secrets of the entries it opened (a
// bounded memo, see Sealer). Safe for concurrent use.
type PrivateKey struct {
	x        *ecdh.PrivateKey
	kem      *mlkem.DecapsulationKey768
	pub      *PublicKey
	sessions *sessionMemo
}

// GenerateKey makes a new privacy key pair from the system's secure
// random source.
func GenerateKey() (*PrivateKey, error) {
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate privacy key: %w", err)
	}
	kem, err := mlkem.GenerateKey768()
	if err != nil {
		return nil, fmt.Errorf("generate privacy key: %w", err)
	}
	return newPrivateKey(x, kem)
}

// NewPrivateKey reads the PrivateKeySize bytes of a private key (X25519
// scalar, then the ML-KEM-768 seed), as Bytes writes them.
func NewPrivateKey(b []byte) (*PrivateKey, error) {
	if len(b) != PrivateKeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrPrivateKey, len(b), PrivateKeySize)
	}
	x, err := ecdh.X25519().NewPrivateKey(b[:32])
	if err != nil {
		return nil, fmt.Errorf("%w: X25519 part: %v", ErrPrivateKey, err)
	}
	kem, err := mlkem.NewDecapsulationKey768(b[32:])
	if err != nil {
		return nil, fmt.Errorf("%w: ML-KEM-768 part: %v", ErrPrivateKey, err)
	}
	return newPrivateKey(x, kem)
}

func newPrivateKey(x *ecdh.PrivateKey, kem *mlkem.DecapsulationKey768) (*PrivateKey, error) {
	raw := append(x.PublicKey().Bytes(), kem.EncapsulationKey().Bytes()...)
	pub, err := ParsePublicKey(raw)
	if err != nil {
		// A generated or decoded private key whose public key does not
		// parse: the scalar clamps to a multiple of the cofactor, so this
		// cannot happen.
		return nil, fmt.Errorf("%w: its public key: %v", ErrPrivateKey, err)
	}
	return &PrivateKey{x: x, kem: kem, pub: pub, sessions: &sessionMemo{}}, nil
}

// Bytes is the key's PrivateKeySize secret bytes; the caller should clear
// them when done.
func (k *PrivateKey) Bytes() []byte {
	return append(k.x.Bytes(), k.kem.Bytes()...)
}

// Public is the key's public key.
func (k *PrivateKey) Public() *PublicKey { return k.pub }

// Equal reports whether k and o are the same key, in constant time.
func (k *PrivateKey) Equal(o *PrivateKey) bool {
	if k == nil || o == nil {
		return false
	}
	a, b := k.Bytes(), o.Bytes()
	defer clear(a)
	defer clear(b)
	return subtle.ConstantTimeCompare(a, b) == 1
}

// shorten keeps an echoed input short in an error.
func shorten(s string) string {
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
