package issuer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/charter-ledger/charter/internal/durable"
)

// Bounds of the key file: with Rotate ≥ Lifetime the ring holds at most
// four keys; the bounds only guard against a file edited by hand.
const (
	maxKeys         = 64
	maxKeysFileSize = 1 << 20
	keysVersion     = 1
)

// signingKey is one of the issuer's ES256 keys.
type signingKey struct {
	kid     string // RFC 7638 thumbprint (SHA-256, base64url)
	created time.Time
	priv    *ecdsa.PrivateKey
}

// keyRing holds the issuer's signing keys, oldest first: the newest
// signs, the older ones stay for verification until keep after the key
// that followed them was made. It rotates and drops on use, as the clock
// says, and writes every change to its file before using it.
type keyRing struct {
	path   string
	rotate time.Duration // a new key signs once the newest is this old
	keep   time.Duration // a replaced key verifies this long after

	mu struct {
		sync.Mutex
		keys []signingKey
	}
}

type keyRecord struct {
	Created time.Time       `json:"created"`
	JWK     jose.JSONWebKey `json:"jwk"`
}

type keysDoc struct {
	Version int         `json:"version"`
	Keys    []keyRecord `json:"keys"`
}

// openKeyRing reads the key file at path, or makes the first key and the
// file (0600) when there is none.
func openKeyRing(path string, rotate, keep time.Duration, now time.Time) (*keyRing, error) {
	r := &keyRing{path: path, rotate: rotate, keep: keep}
	keys, err := readKeys(path)
	if err != nil {
		return nil, err
	}
	r.mu.keys = keys
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.currentLocked(now); err != nil {
		return nil, err
	}
	return r, nil
}

// current returns the key that signs now, rotating first when the newest
// key is Rotate old.
func (r *keyRing) current(now time.Time) (signingKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.currentLocked(now)
}

func (r *keyRing) currentLocked(now time.Time) (signingKey, error) {
	keys := r.mu.keys
	if n := len(keys); n > 0 && now.Sub(keys[n-1].created) < r.rotate {
		return keys[n-1], nil
	}
	k, err := newSigningKey(now)
	if err != nil {
		return signingKey{}, err
	}
	next := append(liveKeys(keys, now, r.keep), k)
	if err := writeKeys(r.path, next); err != nil {
		return signingKey{}, fmt.Errorf("store a new signing key: %w", err)
	}
	r.mu.keys = next
	return k, nil
}

// public returns the public keys that verify tokens now (the JWKS): the
// newest and those replaced less than keep ago.
func (r *keyRing) public(now time.Time) []jose.JSONWebKey {
	r.mu.Lock()
	keys := liveKeys(r.mu.keys, now, r.keep)
	r.mu.Unlock()
	out := make([]jose.JSONWebKey, len(keys))
	for i, k := range keys {
		out[i] = jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"}
	}
	return out
}

// liveKeys drops the keys replaced at least keep before now. A key is
// replaced when the next one is made; the newest is always live.
func liveKeys(keys []signingKey, now time.Time, keep time.Duration) []signingKey {
	out := make([]signingKey, 0, len(keys)+1)
	for i, k := range keys {
		if i == len(keys)-1 || now.Sub(keys[i+1].created) < keep {
			out = append(out, k)
		}
	}
	return out
}

func newSigningKey(now time.Time) (signingKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return signingKey{}, err
	}
	kid, err := thumbprint(&priv.PublicKey)
	if err != nil {
		return signingKey{}, err
	}
	return signingKey{kid: kid, created: now.UTC(), priv: priv}, nil
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of a public key, base64url.
func thumbprint(pub *ecdsa.PublicKey) (string, error) {
	sum, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

func writeKeys(path string, keys []signingKey) error {
	doc := keysDoc{Version: keysVersion}
	for _, k := range keys {
		doc.Keys = append(doc.Keys, keyRecord{Created: k.created,
			JWK: jose.JSONWebKey{Key: k.priv, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"}})
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return durable.WriteFile(durable.OSFS{}, path, append(data, '\n'), 0o600)
}

// readKeys reads the key file; none when it does not exist. Each key must
// be a P-256 private key whose kid is its thumbprint.
func readKeys(path string) ([]signingKey, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %#o lets others read the issuer's keys; chmod 600 it", path, info.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeysFileSize+1))
	if err != nil {
		return nil, err
	}
	keys, err := decodeKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (remove it to start with a new key: tokens signed before stop verifying)", path, err)
	}
	return keys, nil
}

func decodeKeys(data []byte) ([]signingKey, error) {
	if len(data) > maxKeysFileSize {
		return nil, fmt.Errorf("more than %d bytes", maxKeysFileSize)
	}
	var doc keysDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if doc.Version != keysVersion {
		return nil, fmt.Errorf("version: %d, want %d", doc.Version, keysVersion)
	}
	if len(doc.Keys) > maxKeys {
		return nil, fmt.Errorf("%d keys, more than %d", len(doc.Keys), maxKeys)
	}
	out := make([]signingKey, 0, len(doc.Keys))
	for i, r := range doc.Keys {
		priv, ok := r.JWK.Key.(*ecdsa.PrivateKey)
		if !ok || priv.Curve != elliptic.P256() {
			return nil, fmt.Errorf("keys[%d]: not a P-256 private key", i)
		}
		kid, err := thumbprint(&priv.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		if r.JWK.KeyID != kid {
			return nil, fmt.Errorf("keys[%d]: kid %q is not the key's thumbprint %s", i, r.JWK.KeyID, kid)
		}
		if i > 0 && r.Created.Before(out[i-1].created) {
			return nil, fmt.Errorf("keys[%d]: created before the key above it", i)
		}
		out = append(out, signingKey{kid: kid, created: r.Created, priv: priv})
	}
	return out, nil
}
