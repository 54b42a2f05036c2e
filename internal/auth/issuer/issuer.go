// Package issuer is a node's built-in OAuth2 issuer, for organizations
// without an identity provider of their own: registered clients (an
// application of an organization, with an id and a secret) get bearer
// tokens with the client-credentials grant (RFC 6749 §4.4) at
// POST /oauth/token, signed ES256 with a key that rotates. The public
// keys are at GET /oauth/jwks and the OpenID discovery document at
// GET /.well-known/openid-configuration, so that another node, or any
// OpenID Connect library, can verify the tokens as those of an OpenID
// provider. The node itself verifies them in-process (auth.Verifier,
// through the auth.LocalIssuer methods of Issuer).
//
// Files, in DATA/access (0600): clients.json, written by `charter client
// add|list|revoke` (AddClient, ListClients, RevokeClient) and reread by a
// running node within a second of a change (Store); issuer-keys.json, the
// signing keys, written by the node as it rotates them.
//
// Failed client authentications are slowed: per client id and per remote
// address, the MaxFailures-th failure locks the key out (429 with
// Retry-After) for LockBase, each further one twice as long, up to
// LockMax. Each
// failure is logged once, at warn, with the client id and the remote
// address, never the secret.
package issuer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/system"
)

// The endpoints an Issuer's Handler serves.
const (
	TokenPath     = "/oauth/token"
	JWKSPath      = "/oauth/jwks"
	DiscoveryPath = "/.well-known/openid-configuration"
)

// Defaults and bounds of Config.
const (
	DefaultAudience = "charter"
	DefaultLifetime = 10 * time.Minute
	MinLifetime     = time.Minute
	MaxLifetime     = 24 * time.Hour
	DefaultRotate   = 24 * time.Hour
	MaxRotate       = 365 * 24 * time.Hour

	DefaultMaxFailures = 5
	DefaultLockBase    = time.Second
	DefaultLockMax     = 5 * time.Minute
	DefaultMaxTracked  = 10000

	// MaxRequestBytes bounds a token request's body.
	MaxRequestBytes = 16 << 10
)

// Config sets up an Issuer. Zero fields take the defaults above.
type Config struct {
	// URL is the issuer's URL, https://HOST:PORT of the node's API: the
	// iss claim of its tokens and the base of its endpoints. Required.
	URL string
	// DataDir is the node's data directory; the files are in DataDir/access.
	// Required.
	DataDir string
	// Audience is the aud claim of the tokens (default "charter"; a
	// chain-specific one where several chains share clients).
	Audience string
	// Lifetime is how long a token is valid: 1 min to 24 h (default 10 min).
	Lifetime time.Duration
	// Rotate is how often a new signing key takes over (default 24 h; at
	// least Lifetime). A replaced key stays in the JWKS for 2×Lifetime, so
	// that the tokens it signed verify until they expire.
	Rotate time.Duration
	// The MaxFailures-th failed authentication of a client id, or from a
	// remote address, locks it out for LockBase, each further one for
	// twice as long, up to LockMax. MaxTracked bounds the ids and the addresses
	// tracked (each).
	MaxFailures int
	LockBase    time.Duration
	LockMax     time.Duration
	MaxTracked  int
	// Clock is the time (default time.Now).
	Clock  func() time.Time
	Logger *slog.Logger
}

// EnsureDefaults fills the zero fields.
func (c *Config) EnsureDefaults() {
	c.URL = strings.TrimRight(c.URL, "/")
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.Lifetime == 0 {
		c.Lifetime = DefaultLifetime
	}
	if c.Rotate == 0 {
		c.Rotate = max(DefaultRotate, c.Lifetime)
	}
	if c.MaxFailures == 0 {
		c.MaxFailures = DefaultMaxFailures
	}
	if c.LockBase == 0 {
		c.LockBase = DefaultLockBase
	}
	if c.LockMax == 0 {
		c.LockMax = DefaultLockMax
	}
	if c.MaxTracked == 0 {
		c.MaxTracked = DefaultMaxTracked
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first field that is wrong, and how to fix it.
func (c *Config) Validate() error {
	u, err := url.Parse(c.URL)
	if c.URL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("issuer URL %q: want https://HOST:PORT of the node's API", c.URL)
	}
	if c.DataDir == "" {
		return errors.New("issuer data directory: required")
	}
	if c.Lifetime < MinLifetime || c.Lifetime > MaxLifetime {
		return fmt.Errorf("token lifetime %s: want %s to %s", c.Lifetime, MinLifetime, MaxLifetime)
	}
	if c.Rotate < c.Lifetime || c.Rotate > MaxRotate {
		return fmt.Errorf("key rotation %s: want the token lifetime (%s) to %s", c.Rotate, c.Lifetime, MaxRotate)
	}
	if c.MaxFailures < 1 || c.LockBase <= 0 || c.LockMax < c.LockBase || c.MaxTracked < 1 {
		return fmt.Errorf("brute-force limits: want MaxFailures ≥ 1, 0 < LockBase ≤ LockMax, MaxTracked ≥ 1 (have %d, %s, %s, %d)",
			c.MaxFailures, c.LockBase, c.LockMax, c.MaxTracked)
	}
	return nil
}

// Issuer is the built-in issuer. Safe for concurrent use.
type Issuer struct {
	cfg      Config
	store    *Store
	ring     *keyRing
	byClient *failures
	byRemote *failures
	// hashing bounds the secret checks running at once: each takes 19 MiB
	// and a core for some 30 ms.
	hashing chan struct{}

	dummyOnce sync.Once
	dummy     string // a hash checked for unknown ids, so that they take as long
}

// New opens the issuer of the node whose data directory cfg names: its
// clients file and its signing keys (made on first start). A clients or
// key file that cannot be read is an error naming it.
func New(cfg Config) (*Issuer, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	store, err := OpenStore(ClientsPath(cfg.DataDir), cfg.Clock, cfg.Logger)
	if err != nil {
		return nil, err
	}
	ring, err := openKeyRing(KeysPath(cfg.DataDir), cfg.Rotate, 2*cfg.Lifetime, cfg.Clock())
	if err != nil {
		return nil, err
	}
	return &Issuer{
		cfg:      cfg,
		store:    store,
		ring:     ring,
		byClient: newFailures(cfg.MaxFailures, cfg.LockBase, cfg.LockMax, cfg.MaxTracked),
		byRemote: newFailures(cfg.MaxFailures, cfg.LockBase, cfg.LockMax, cfg.MaxTracked),
		hashing:  make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
	}, nil
}

// IssuerURL is the iss claim of the issuer's tokens.
func (i *Issuer) IssuerURL() string { return i.cfg.URL }

// Audience is the aud claim of the issuer's tokens.
func (i *Issuer) Audience() string { return i.cfg.Audience }

// Lifetime is how long its tokens are valid.
func (i *Issuer) Lifetime() time.Duration { return i.cfg.Lifetime }

// VerificationKeys returns the public keys that verify the issuer's
// tokens now (what GET /oauth/jwks serves).
func (i *Issuer) VerificationKeys() []jose.JSONWebKey {
	return i.ring.public(i.cfg.Clock())
}

// Registration returns client id's current registration, for the
// verifier of its tokens: errors.Is(err, auth.ErrUnknownClient) when
// there is no such client.
func (i *Issuer) Registration(id string) (auth.ClientRegistration, error) {
	c, err := i.store.Lookup(id)
	if err != nil {
		return auth.ClientRegistration{}, err
	}
	return auth.ClientRegistration{Org: c.Org, Roles: c.Roles, Keys: c.Keys, Revoked: c.Revoked}, nil
}

// Token is an issued access token.
type Token struct {
	Raw     string
	ID      string // jti
	Roles   system.Role
	Expires time.Time
}

// ErrScope is wrapped by Issue when the roles asked for exceed the
// client's.
var ErrScope = errors.New("scope exceeds the client's roles")

// accessClaims are the claims of the issuer's tokens (RFC 9068 and the
// roles of Charter).
type accessClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  string   `json:"aud"`
	ClientID  string   `json:"client_id"`
	Org       string   `json:"org"`
	Roles     []string `json:"roles"`
	Scope     string   `json:"scope"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	Expiry    int64    `json:"exp"`
	ID        string   `json:"jti"`
}

// Issue makes a token for client id (which must be active) with the roles
// want, a subset of the client's (0: all of them). The caller has
// authenticated the client.
func (i *Issuer) Issue(id string, want system.Role) (*Token, error) {
	c, err := i.store.Lookup(id)
	if err != nil {
		return nil, err
	}
	if !c.Active() {
		return nil, fmt.Errorf("client %s was revoked at %s", c.ID, c.Revoked.UTC().Format(time.RFC3339))
	}
	roles := c.Roles
	if want != 0 {
		if want&^c.Roles != 0 {
			return nil, fmt.Errorf("%w: asked for %s, client %s holds %s", ErrScope, want, c.ID, c.Roles)
		}
		roles = want
	}
	now := i.cfg.Clock()
	key, err := i.ring.current(now)
	if err != nil {
		return nil, err
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return nil, err
	}
	exp := now.Add(i.cfg.Lifetime)
	claims := accessClaims{Issuer: i.cfg.URL, Subject: c.ID, Audience: i.cfg.Audience, ClientID: c.ID, Org: c.Org,
		Roles: roles.Names(), Scope: strings.Join(roles.Names(), " "),
		IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: exp.Unix(), ID: hex.EncodeToString(jti[:])}
	payload, err := json.Marshal(claims)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return nil, err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return nil, err
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		return nil, err
	}
	return &Token{Raw: raw, ID: claims.ID, Roles: roles, Expires: time.Unix(claims.Expiry, 0)}, nil
}

// Handler serves TokenPath, JWKSPath and DiscoveryPath (404 for any other
// path). None of them needs authentication; the token endpoint has its
// own limits.
func (i *Issuer) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case TokenPath:
			i.serveToken(w, r)
		case JWKSPath:
			i.serveJWKS(w, r)
		case DiscoveryPath:
			i.serveDiscovery(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// oauthError is an error answer of the token endpoint (RFC 6749 §5.2).
type oauthError struct {
	status     int
	code       string
	desc       string
	retryAfter time.Duration
}

func (e *oauthError) Error() string { return e.code + ": " + e.desc }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="charter"`)
	}
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((e.retryAfter+time.Second-1)/time.Second), 10))
	}
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

// errAuthFailed is what every failed client authentication answers, so
// that the answer does not tell an unknown id from a wrong secret.
var errAuthFailed = &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication failed"}

func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "use POST"})
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	req, err := parseTokenRequest(r.Header.Get("Content-Type"), r.Header.Values("Authorization"), body)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	tok, err := i.grant(r.Context(), req, r.RemoteAddr)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok.Raw,
		"token_type":   "Bearer",
		"expires_in":   int64(i.cfg.Lifetime / time.Second),
		"scope":        strings.Join(tok.Roles.Names(), " "),
	})
}

// readBody reads a token request's body, at most MaxRequestBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *oauthError) {
	tooBig := &oauthError{status: http.StatusRequestEntityTooLarge, code: "invalid_request",
		desc: fmt.Sprintf("request body of more than %d bytes", MaxRequestBytes)}
	if r.ContentLength > MaxRequestBytes {
		return nil, tooBig
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooBig
	case err != nil:
		return nil, &oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: "reading the request body failed"}
	}
	return body, nil
}

// grant authenticates the client of req, within the brute-force limits,
// and issues its token.
func (i *Issuer) grant(ctx context.Context, req *tokenRequest, remoteAddr string) (*Token, *oauthError) {
	now := i.cfg.Clock()
	remote := remoteKey(remoteAddr)
	log := i.cfg.Logger.With("client", truncate(req.clientID), "remote", remoteAddr)
	if wait := max(i.byClient.locked(req.clientID, now), i.byRemote.locked(remote, now)); wait > 0 {
		log.Debug("Token request refused: locked out after failed authentications", "retry_in", wait)
		return nil, &oauthError{status: http.StatusTooManyRequests, code: "slow_down", retryAfter: wait,
			desc: fmt.Sprintf("too many failed authentications of this client or from this address; retry in %s", wait.Round(time.Second))}
	}
	select {
	case i.hashing <- struct{}{}:
	case <-ctx.Done():
		return nil, &oauthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", desc: "the request ended while queued"}
	}
	c, err := i.store.Lookup(req.clientID)
	var ok bool
	switch {
	case err == nil:
		ok = checkSecret(c.SecretHash, req.secret)
	case errors.Is(err, auth.ErrUnknownClient):
		checkSecret(i.dummyHash(), req.secret)
	default:
		<-i.hashing
		log.Error("Token request refused: the clients file is unreadable", "err", err)
		return nil, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: "the node cannot read its clients"}
	}
	<-i.hashing
	reason := ""
	switch {
	case err != nil:
		reason = "unknown client id"
	case !ok:
		reason = "wrong client secret"
	case !c.Active():
		reason = "revoked client"
	}
	if reason != "" {
		n, lock := i.byClient.fail(req.clientID, now)
		m, rlock := i.byRemote.fail(remote, now)
		log.Warn("Token request refused: "+reason, "client_failures", n, "remote_failures", m, "locked_for", max(lock, rlock))
		if reason == "revoked client" {
			return nil, &oauthError{status: http.StatusUnauthorized, code: "invalid_client",
				desc: fmt.Sprintf("client %s was revoked at %s", c.ID, c.Revoked.UTC().Format(time.RFC3339))}
		}
		return nil, errAuthFailed
	}
	i.byClient.reset(req.clientID)
	tok, err := i.Issue(c.ID, req.scope)
	if errors.Is(err, ErrScope) {
		return nil, &oauthError{status: http.StatusBadRequest, code: "invalid_scope",
			desc: fmt.Sprintf("scope %q exceeds the client's roles (%s)", strings.Join(req.scope.Names(), " "), strings.Join(c.Roles.Names(), " "))}
	}
	if err != nil {
		log.Error("Token request failed", "err", err)
		return nil, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: "the node could not sign a token"}
	}
	log.Info("Token issued", "roles", tok.Roles.String(), "jti", tok.ID, "expires", tok.Expires.UTC().Format(time.RFC3339))
	return tok, nil
}

func (i *Issuer) dummyHash() string {
	i.dummyOnce.Do(func() {
		i.dummy, _ = hashSecret("not a secret of any client", defaultHashParams)
	})
	return i.dummy
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: i.VerificationKeys()})
}

// Discovery is the issuer's OpenID provider metadata (OpenID Connect
// Discovery 1.0 §3, RFC 8414), what GET /.well-known/openid-configuration
// serves.
type Discovery struct {
	Issuer                   string   `json:"issuer"`
	TokenEndpoint            string   `json:"token_endpoint"`
	JWKSURI                  string   `json:"jwks_uri"`
	GrantTypes               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	IDTokenSigningAlgs       []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypes            []string `json:"response_types_supported"`
	SubjectTypes             []string `json:"subject_types_supported"`
	Scopes                   []string `json:"scopes_supported"`
	Claims                   []string `json:"claims_supported"`
}

// Discovery returns the issuer's metadata.
func (i *Issuer) Discovery() Discovery {
	all, _ := system.ParseRoles([]string{"read", "write", "deploy", "admin", "auditor"})
	return Discovery{
		Issuer:                   i.cfg.URL,
		TokenEndpoint:            i.cfg.URL + TokenPath,
		JWKSURI:                  i.cfg.URL + JWKSPath,
		GrantTypes:               []string{"client_credentials"},
		TokenEndpointAuthMethods: []string{"client_secret_basic", "client_secret_post"},
		IDTokenSigningAlgs:       []string{string(jose.ES256)},
		ResponseTypes:            []string{"token"},
		SubjectTypes:             []string{"public"},
		Scopes:                   all.Names(),
		Claims:                   []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "org", "roles", "scope"},
	}
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, http.StatusOK, i.Discovery())
}
