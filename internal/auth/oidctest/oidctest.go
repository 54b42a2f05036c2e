// Package oidctest is a small OpenID Connect provider for tests: it
// stands in for Keycloak or Azure AD. It serves discovery and its key set
// over HTTP on 127.0.0.1, rotates its signing key on demand, and mints
// good tokens (Token) and bad ones (TokenWith: any algorithm, any key,
// "none"). It counts the requests it serves, so that a test can see what
// a verifier fetched.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Paths the provider serves.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/jwks"
)

// Options set up an Issuer. Zero fields take the defaults.
type Options struct {
	// Alg is the signing algorithm: RS256 (default), PS256, ES256 or EdDSA.
	Alg jose.SignatureAlgorithm
	// Audience is the aud of Token's tokens (default "charter").
	Audience string
	// Lifetime of Token's tokens (default 10 min).
	Lifetime time.Duration
	// Clock is the time of iat, nbf and exp (default time.Now).
	Clock func() time.Time
}

// Key is one of the provider's signing keys.
type Key struct {
	ID     string
	Signer crypto.Signer
}

// Public is the key's public half.
func (k Key) Public() crypto.PublicKey { return k.Signer.Public() }

// Issuer is a running provider. Its methods are safe for concurrent use.
type Issuer struct {
	// URL is the issuer URL (http://127.0.0.1:PORT), the iss of its tokens.
	URL  string
	opts Options
	srv  *httptest.Server

	mu struct {
		sync.Mutex
		keys      []Key // published; the last signs
		down      bool
		discovery int // requests served
		jwks      int
	}
}

// New starts a provider on 127.0.0.1 with one signing key.
func New(opts Options) (*Issuer, error) {
	if opts.Alg == "" {
		opts.Alg = jose.RS256
	}
	if opts.Audience == "" {
		opts.Audience = "charter"
	}
	if opts.Lifetime == 0 {
		opts.Lifetime = 10 * time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	i := &Issuer{opts: opts}
	if _, err := i.addKey(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	i.srv = httptest.NewUnstartedServer(http.HandlerFunc(i.serve))
	i.srv.Listener.Close()
	i.srv.Listener = ln
	i.srv.Start()
	i.URL = i.srv.URL
	return i, nil
}

// Start is New for a test: it fails tb on error and closes the provider
// when the test ends.
func Start(tb testing.TB, opts Options) *Issuer {
	tb.Helper()
	i, err := New(opts)
	if err != nil {
		tb.Fatalf("oidctest: %v", err)
	}
	tb.Cleanup(i.Close)
	return i
}

// Close stops the provider.
func (i *Issuer) Close() { i.srv.Close() }

// Client is an HTTP client for the provider.
func (i *Issuer) Client() *http.Client { return i.srv.Client() }

// SetDown makes the provider answer 503 to everything (down) or serve
// again.
func (i *Issuer) SetDown(down bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.mu.down = down
}

// Requests returns how many discovery and key set requests it served
// (503s included).
func (i *Issuer) Requests() (discovery, jwks int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.mu.discovery, i.mu.jwks
}

// Rotate makes a new signing key, which signs from now on; the old keys
// stay published (as providers keep them for a while). It returns the new
// key's id.
func (i *Issuer) Rotate() string {
	k, err := i.addKey()
	if err != nil {
		panic(fmt.Sprintf("oidctest: new key: %v", err))
	}
	return k.ID
}

// Unpublish removes key kid from the key set (it may still sign, through
// TokenWith).
func (i *Issuer) Unpublish(kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.mu.keys = slices.DeleteFunc(i.mu.keys, func(k Key) bool { return k.ID == kid })
}

// Key is the key that signs now.
func (i *Issuer) Key() Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.mu.keys[len(i.mu.keys)-1]
}

// NewKey makes a key of alg that the provider does not publish (for
// forged tokens).
func NewKey(alg jose.SignatureAlgorithm) (Key, error) {
	var s crypto.Signer
	var err error
	switch alg {
	case jose.RS256, jose.PS256:
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, s, err = ed25519.GenerateKey(rand.Reader)
	default:
		return Key{}, fmt.Errorf("oidctest: no keys for %s", alg)
	}
	if err != nil {
		return Key{}, err
	}
	var b [8]byte
	rand.Read(b[:])
	return Key{ID: base64.RawURLEncoding.EncodeToString(b[:]), Signer: s}, nil
}

func (i *Issuer) addKey() (Key, error) {
	k, err := NewKey(i.opts.Alg)
	if err != nil {
		return Key{}, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.mu.keys = append(i.mu.keys, k)
	return k, nil
}

// Claims returns the default claims of a token, overridden by over (a nil
// value removes a claim): iss, sub "user-1", aud, iat, nbf and exp from
// the clock and the lifetime.
func (i *Issuer) Claims(over map[string]any) map[string]any {
	now := i.opts.Clock()
	c := map[string]any{
		"iss": i.URL,
		"sub": "user-1",
		"aud": i.opts.Audience,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(i.opts.Lifetime).Unix(),
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// Token signs the default claims overridden by claims with the current
// key. It panics if signing fails (it cannot with the provider's keys).
func (i *Issuer) Token(claims map[string]any) string {
	k := i.Key()
	raw, err := Sign(i.opts.Alg, k.Signer, k.ID, i.Claims(claims))
	if err != nil {
		panic(fmt.Sprintf("oidctest: sign: %v", err))
	}
	return raw
}

// TokenWith signs the default claims overridden by claims with any
// algorithm and key: alg "none" makes an unsigned token (key unused), an
// HS* alg takes the key as []byte (a public key's bytes, for key
// confusion). kid "" leaves the kid out.
func (i *Issuer) TokenWith(alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) (string, error) {
	return Sign(alg, key, kid, i.Claims(claims))
}

// Sign makes a compact JWS of claims with alg and key (see TokenWith).
func Sign(alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	if alg == "none" {
		hdr := map[string]any{"alg": "none", "typ": "JWT"}
		if kid != "" {
			hdr["kid"] = kid
		}
		h, _ := json.Marshal(hdr)
		enc := base64.RawURLEncoding
		return enc.EncodeToString(h) + "." + enc.EncodeToString(payload) + ".", nil
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// PublicKeyBytes are the bytes of a public key as its PKIX DER, what an
// attacker would use as the HMAC secret in a key confusion attack.
func PublicKeyBytes(pub crypto.PublicKey) []byte {
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return b
}

func (i *Issuer) serve(w http.ResponseWriter, r *http.Request) {
	i.mu.Lock()
	down := i.mu.down
	switch r.URL.Path {
	case DiscoveryPath:
		i.mu.discovery++
	case JWKSPath:
		i.mu.jwks++
	}
	keys := slices.Clone(i.mu.keys)
	i.mu.Unlock()
	if down {
		http.Error(w, "down for the test", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case DiscoveryPath:
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                i.URL,
			"jwks_uri":                              i.URL + JWKSPath,
			"authorization_endpoint":                i.URL + "/authorize",
			"token_endpoint":                        i.URL + "/token",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{string(i.opts.Alg)},
		})
	case JWKSPath:
		set := jose.JSONWebKeySet{}
		for _, k := range keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: k.ID, Algorithm: string(i.opts.Alg), Use: "sig"})
		}
		json.NewEncoder(w).Encode(set)
	default:
		http.NotFound(w, r)
	}
}

// KeyIDs lists the published key ids, oldest first.
func (i *Issuer) KeyIDs() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	ids := make([]string, len(i.mu.keys))
	for n, k := range i.mu.keys {
		ids[n] = k.ID
	}
	return ids
}
