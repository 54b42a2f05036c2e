package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/charter-ledger/charter/internal/system"
)

// Bearer tokens: a Verifier checks a JWT of the node's built-in issuer
// (internal/auth/issuer, verified in-process with its keys and its
// current client registrations) or of an organization's OpenID Connect
// provider (discovered, its keys fetched and refetched as it rotates
// them), and gives the caller's Identity.

// Defaults and bounds of VerifierConfig.
const (
	DefaultSkew          = 60 * time.Second
	MaxSkew              = 5 * time.Minute
	DefaultMaxTokenBytes = 8 << 10
	DefaultRolesClaim    = "roles"
	DefaultSubjectClaim  = "sub"
	// DefaultKeysMinRefresh: an OpenID provider's key set is fetched again
	// for a token whose kid it lacks at most this often, so that bad
	// tokens cannot make the node hammer the provider.
	DefaultKeysMinRefresh = 10 * time.Second
	// DefaultKeysMaxAge: a key set older than this is fetched again on
	// use, so that keys the provider withdrew stop verifying.
	DefaultKeysMaxAge = time.Hour
	// DefaultFetchTimeout bounds one discovery or key set request.
	DefaultFetchTimeout = 5 * time.Second
	// Discovery of an unreachable provider is tried again on use after
	// DiscoveryRetryMin, doubling up to DiscoveryRetryMax.
	DiscoveryRetryMin = time.Second
	DiscoveryRetryMax = 5 * time.Minute

	maxFetchBytes    = 1 << 20 // a discovery document or a key set
	maxRemoteKeys    = 100
	maxSubjectBytes  = 256
	maxRoleNames     = 64
	minRSAKeyBits    = 2048
	maxClaimInErrors = 64
)

// AllowedAlgorithms are the signature algorithms a token may use; never
// "none" nor HMAC (HS*), whose key a verifier would have to share.
var AllowedAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.PS256, jose.EdDSA}

// ErrUnknownClient is wrapped by LocalIssuer.Registration when no client
// has the id.
var ErrUnknownClient = errors.New("no such client")

// ClientRegistration is a built-in issuer's client as registered now.
type ClientRegistration struct {
	Org   string
	Roles system.Role
	// Keys are the node-held signing keys the client may use.
	Keys []string
	// Revoked is when the client was revoked; zero while it is active.
	Revoked time.Time
}

// LocalIssuer is the node's built-in issuer as the Verifier needs it
// (*issuer.Issuer implements it). Its methods are safe for concurrent
// use and cheap: they are called for every token.
type LocalIssuer interface {
	// IssuerURL is the iss claim of its tokens.
	IssuerURL() string
	// Audience is the aud claim of its tokens.
	Audience() string
	// VerificationKeys are the public keys that verify its tokens now.
	VerificationKeys() []jose.JSONWebKey
	// Registration returns a client's current registration; the error
	// wraps ErrUnknownClient when there is no such client.
	Registration(clientID string) (ClientRegistration, error)
}

// OIDCConfig trusts an organization's OpenID Connect provider: its
// tokens authenticate callers of that organization.
type OIDCConfig struct {
	// Org is the organization the provider's callers act for.
	Org string
	// Issuer is the provider's issuer URL (the iss claim; discovery at
	// Issuer/.well-known/openid-configuration). https, or http on a
	// loopback address.
	Issuer string
	// Audience must be in a token's aud claim.
	Audience string
	// RolesClaim names the claim that lists role names (default "roles"):
	// an array of names, or one string of names separated by spaces or
	// commas; a dotted path ("realm_access.roles") reaches into objects
	// when no claim has the name itself. Role names in a space-separated
	// "scope" claim (or "scp") count too. Names that are no role are
	// ignored.
	RolesClaim string
	// MaxRoles caps the roles its tokens may grant (default read).
	MaxRoles system.Role
	// SubjectClaim names the claim that names the caller (default "sub").
	SubjectClaim string
}

// VerifierConfig sets up a Verifier. Zero fields take the defaults above.
type VerifierConfig struct {
	// Local is the node's built-in issuer; nil: none.
	Local LocalIssuer
	// OIDC are the organizations' OpenID Connect providers.
	OIDC []OIDCConfig
	// Skew is the clock difference allowed for exp, nbf and iat (default
	// 60 s, at most 5 min).
	Skew time.Duration
	// MaxTokenBytes bounds a token (default 8 KiB).
	MaxTokenBytes int
	// KeysMinRefresh, KeysMaxAge and FetchTimeout govern the key sets of
	// OpenID providers (defaults above).
	KeysMinRefresh time.Duration
	KeysMaxAge     time.Duration
	FetchTimeout   time.Duration
	// HTTPClient fetches discovery documents and key sets (default: one
	// with FetchTimeout and the system's roots). Responses are bounded to
	// 1 MiB whatever the client.
	HTTPClient *http.Client
	// Clock is the time (default time.Now).
	Clock  func() time.Time
	Logger *slog.Logger
}

// Verifier checks bearer tokens. It routes a token by its (unverified)
// iss claim to the built-in issuer or to the organization's provider
// configured for that issuer; any other issuer is refused. Safe for
// concurrent use.
type Verifier struct {
	cfg      VerifierConfig
	client   *http.Client
	byIssuer map[string]*oidcIssuer
}

// NewVerifier checks cfg and returns its Verifier. It does not contact the
// providers: discovery happens on first use (or Warm), so that a provider
// that is down does not stop the node from starting.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Skew == 0 {
		cfg.Skew = DefaultSkew
	}
	if cfg.Skew < 0 || cfg.Skew > MaxSkew {
		return nil, fmt.Errorf("token clock skew %s: want 0 to %s", cfg.Skew, MaxSkew)
	}
	if cfg.MaxTokenBytes == 0 {
		cfg.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if cfg.MaxTokenBytes < 256 || cfg.MaxTokenBytes > 64<<10 {
		return nil, fmt.Errorf("max token bytes %d: want 256 to %d", cfg.MaxTokenBytes, 64<<10)
	}
	if cfg.KeysMinRefresh == 0 {
		cfg.KeysMinRefresh = DefaultKeysMinRefresh
	}
	if cfg.KeysMaxAge == 0 {
		cfg.KeysMaxAge = DefaultKeysMaxAge
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	if cfg.KeysMinRefresh < 0 || cfg.KeysMaxAge < cfg.KeysMinRefresh || cfg.FetchTimeout < 0 {
		return nil, fmt.Errorf("key set refresh: want 0 ≤ KeysMinRefresh (%s) ≤ KeysMaxAge (%s) and FetchTimeout (%s) > 0",
			cfg.KeysMinRefresh, cfg.KeysMaxAge, cfg.FetchTimeout)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{cfg: cfg, byIssuer: make(map[string]*oidcIssuer, len(cfg.OIDC))}
	base := cfg.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: cfg.FetchTimeout}
	}
	client := *base
	client.Transport = limitTransport{base: base.Transport, max: maxFetchBytes}
	v.client = &client
	for i, oc := range cfg.OIDC {
		if err := oc.ensureDefaults(); err != nil {
			return nil, fmt.Errorf("oidc[%d]: %w", i, err)
		}
		if cfg.Local != nil && oc.Issuer == cfg.Local.IssuerURL() {
			return nil, fmt.Errorf("oidc[%d].issuer %q is the node's own issuer", i, oc.Issuer)
		}
		if _, dup := v.byIssuer[oc.Issuer]; dup {
			return nil, fmt.Errorf("oidc[%d].issuer %q is configured twice; one issuer serves one organization", i, oc.Issuer)
		}
		v.byIssuer[oc.Issuer] = &oidcIssuer{cfg: oc, v: v, fetching: make(chan struct{}, 1)}
	}
	return v, nil
}

func (c *OIDCConfig) ensureDefaults() error {
	if c.Org == "" {
		return errors.New("org: required, the organization whose callers the provider authenticates")
	}
	if err := checkIssuerURL(c.Issuer); err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	if c.Audience == "" {
		return errors.New("audience: required, the aud claim the provider puts in tokens for this chain")
	}
	if c.RolesClaim == "" {
		c.RolesClaim = DefaultRolesClaim
	}
	if c.SubjectClaim == "" {
		c.SubjectClaim = DefaultSubjectClaim
	}
	if c.MaxRoles == 0 {
		c.MaxRoles = system.RoleRead
	}
	if known, _ := system.ParseRoles(c.MaxRoles.Names()); known != c.MaxRoles {
		return fmt.Errorf("maxRoles: %#x holds bits that are no role", uint32(c.MaxRoles))
	}
	return nil
}

// checkIssuerURL accepts https URLs, and http ones on a loopback address
// (a test's provider): keys fetched over plain HTTP from elsewhere could
// be anybody's.
func checkIssuerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q: want https://HOST[:PORT][/PATH]", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if h := u.Hostname(); h == "localhost" || net.ParseIP(h).IsLoopback() {
			return nil
		}
		return fmt.Errorf("%q: http only on a loopback address; use https", s)
	}
	return fmt.Errorf("%q: want an https URL", s)
}

// tokenError is a refused token: 401 invalid_token.
func tokenError(format string, a ...any) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Msg: oneLine(fmt.Sprintf(format, a...))}
}

// oneLine keeps a message on one line, cut at 300 bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// quoted shows a value taken from a token in a message: quoted and cut.
func quoted(s string) string {
	if len(s) > maxClaimInErrors {
		s = s[:maxClaimInErrors] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// Verify checks the bearer token raw and returns the caller it
// authenticates, or an *Error saying in one line which check failed
// (never holding the token).
func (v *Verifier) Verify(ctx context.Context, raw string) (*Identity, error) {
	if len(raw) > v.cfg.MaxTokenBytes {
		return nil, tokenError("token is %d bytes, more than %d", len(raw), v.cfg.MaxTokenBytes)
	}
	if !isCompactJWS(raw) {
		return nil, tokenError("token is not a signed JWT (three base64url parts separated by dots)")
	}
	jws, err := jose.ParseSignedCompact(raw, AllowedAlgorithms)
	if err != nil {
		var alg *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &alg) {
			return nil, tokenError("token algorithm %s is not allowed (want ES256, RS256, PS256 or EdDSA)", quoted(string(alg.Got)))
		}
		return nil, tokenError("token header or encoding is malformed")
	}
	if len(jws.Signatures) != 1 {
		return nil, tokenError("token has %d signatures, want 1", len(jws.Signatures))
	}
	hdr := jws.Signatures[0].Header
	unverified, err := parseClaims(jws.UnsafePayloadWithoutVerification())
	if err != nil {
		return nil, err
	}
	iss, ok, err := unverified.str("iss")
	if err != nil {
		return nil, err
	}
	if !ok || iss == "" {
		return nil, tokenError("token has no iss claim")
	}
	if l := v.cfg.Local; l != nil && iss == l.IssuerURL() {
		return v.verifyLocal(jws, hdr, iss)
	}
	if o, ok := v.byIssuer[iss]; ok {
		return o.verify(ctx, jws, hdr)
	}
	return nil, tokenError("token issuer %s is not trusted by this node", quoted(iss))
}

// isCompactJWS reports whether s is header.payload.signature of base64url
// characters, header and payload non-empty.
func isCompactJWS(s string) bool {
	parts := 0
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if run == 0 {
				return false
			}
			parts++
			run = 0
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			run++
		default:
			return false
		}
	}
	// The signature may be empty: alg "none" then gets its own refusal.
	return parts == 2
}

// verifyLocal checks a token of the built-in issuer with its keys and its
// client's current registration.
func (v *Verifier) verifyLocal(jws *jose.JSONWebSignature, hdr jose.Header, iss string) (*Identity, error) {
	l := v.cfg.Local
	c, err := verifySignature(jws, hdr, l.VerificationKeys(), "the node's issuer")
	if err != nil {
		return nil, err
	}
	if err := v.checkCommon(c, l.Audience()); err != nil {
		return nil, err
	}
	sub, ok, err := c.str("sub")
	if err != nil {
		return nil, err
	}
	if !ok || sub == "" {
		return nil, tokenError("token has no sub claim (the client id)")
	}
	reg, err := l.Registration(sub)
	switch {
	case errors.Is(err, ErrUnknownClient):
		return nil, tokenError("client %s is not registered with this node's issuer", quoted(sub))
	case err != nil:
		v.cfg.Logger.Error("Token refused: the client registry is unreadable", "client", sub, "err", err)
		return nil, tokenError("the node cannot read its client registry; try again later")
	case !reg.Revoked.IsZero():
		return nil, &Error{Status: http.StatusForbidden, Code: "invalid_token",
			Msg: fmt.Sprintf("client %s was revoked at %s", quoted(sub), reg.Revoked.UTC().Format(time.RFC3339))}
	}
	org, _, err := c.str("org")
	if err != nil {
		return nil, err
	}
	if org != reg.Org {
		return nil, tokenError("token org %s is not client %s's organization", quoted(org), quoted(sub))
	}
	roles, err := c.roleNames("roles")
	if err != nil {
		return nil, err
	}
	return &Identity{Kind: KindToken, Subject: sub, Org: reg.Org, Roles: roles & reg.Roles, Issuer: iss,
		Keys: slices.Clone(reg.Keys)}, nil
}

// checkCommon checks the claims every token must satisfy: exp, nbf and
// iat within the skew, and aud.
func (v *Verifier) checkCommon(c claims, audience string) error {
	now := v.cfg.Clock()
	skew := v.cfg.Skew
	exp, ok, err := c.date("exp")
	if err != nil {
		return err
	}
	if !ok {
		return tokenError("token has no exp claim")
	}
	if now.After(exp.Add(skew)) {
		return tokenError("token expired at %s (now %s, skew allowed %s)", rfc3339(exp), rfc3339(now), skew)
	}
	if nbf, ok, err := c.date("nbf"); err != nil {
		return err
	} else if ok && now.Add(skew).Before(nbf) {
		return tokenError("token is not valid before %s (now %s, skew allowed %s)", rfc3339(nbf), rfc3339(now), skew)
	}
	if iat, ok, err := c.date("iat"); err != nil {
		return err
	} else if ok && now.Add(skew).Before(iat) {
		return tokenError("token was issued in the future, at %s (now %s, skew allowed %s)", rfc3339(iat), rfc3339(now), skew)
	}
	aud, err := c.audience()
	if err != nil {
		return err
	}
	if !slices.Contains(aud, audience) {
		shown := make([]string, 0, 3)
		for _, a := range aud[:min(len(aud), 3)] {
			shown = append(shown, quoted(a))
		}
		return tokenError("token audience [%s] does not include %q", strings.Join(shown, " "), audience)
	}
	return nil
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// verifySignature checks jws with the keys of its kid (all fitting keys
// when it names none) and returns its claims.
func verifySignature(jws *jose.JSONWebSignature, hdr jose.Header, keys []jose.JSONWebKey, who string) (claims, error) {
	cand, err := candidates(keys, hdr.KeyID, hdr.Algorithm, who)
	if err != nil {
		return claims{}, err
	}
	for i := range cand {
		if payload, err := jws.Verify(&cand[i]); err == nil {
			return parseClaims(payload)
		}
	}
	if hdr.KeyID == "" {
		return claims{}, tokenError("token signature does not verify with any key of %s (no kid; altered or foreign token)", who)
	}
	return claims{}, tokenError("token signature does not verify with key %s of %s (altered token)", quoted(hdr.KeyID), who)
}

// candidates are the keys that may have signed a token of kid and alg.
func candidates(keys []jose.JSONWebKey, kid, alg, who string) ([]jose.JSONWebKey, error) {
	var out []jose.JSONWebKey
	named := false
	for _, k := range keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		named = true
		if (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != alg) || !fits(k.Key, alg) {
			continue
		}
		out = append(out, k)
	}
	switch {
	case len(out) > 0:
		return out, nil
	case kid != "" && !named:
		return nil, tokenError("token key id %s is not among the keys of %s (unknown or retired key)", quoted(kid), who)
	case kid != "":
		return nil, tokenError("token key %s of %s is not a signing key for %s", quoted(kid), who, alg)
	}
	return nil, tokenError("%s has no %s key for a token without kid", who, alg)
}

// fits reports whether key is a public key of alg's type (no symmetric
// or private keys; RSA of at least 2048 bits).
func fits(key any, alg string) bool {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		return alg == string(jose.ES256) && k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return (alg == string(jose.RS256) || alg == string(jose.PS256)) && k.N.BitLen() >= minRSAKeyBits
	case ed25519.PublicKey:
		return alg == string(jose.EdDSA)
	}
	return false
}

// claims are a token's claims, decoded lazily per name.
type claims map[string]json.RawMessage

func parseClaims(payload []byte) (claims, error) {
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil || c == nil {
		return nil, tokenError("token claims are not a JSON object")
	}
	return c, nil
}

// str returns a string claim; ok is false when it is absent.
func (c claims) str(name string) (string, bool, error) {
	raw, ok := c[name]
	if !ok || string(raw) == "null" {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, tokenError("token %s claim is not a string", name)
	}
	return s, true, nil
}

// date returns a NumericDate claim (seconds since 1970, maybe fractional).
func (c claims) date(name string) (time.Time, bool, error) {
	raw, ok := c[name]
	if !ok || string(raw) == "null" {
		return time.Time{}, false, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, false, tokenError("token %s claim is not a time (seconds since 1970)", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// audience returns the aud claim: one string or an array of strings.
func (c claims) audience() ([]string, error) {
	raw, ok := c["aud"]
	if !ok {
		return nil, tokenError("token has no aud claim")
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, tokenError("token aud claim is not a string or an array of strings")
	}
	return many, nil
}

// lookup finds a claim by name, or else by a dotted path into objects.
func (c claims) lookup(name string) (json.RawMessage, bool) {
	if raw, ok := c[name]; ok {
		return raw, true
	}
	parts := strings.Split(name, ".")
	if len(parts) < 2 || len(parts) > 8 {
		return nil, false
	}
	cur := c
	for i, p := range parts {
		raw, ok := cur[p]
		if !ok {
			return nil, false
		}
		if i == len(parts)-1 {
			return raw, true
		}
		cur = nil
		if json.Unmarshal(raw, &cur) != nil || cur == nil {
			return nil, false
		}
	}
	return nil, false
}

// roleNames reads a claim of role names (an array of strings, or one
// string separated by spaces or commas) and returns the roles it names;
// other names are ignored. An absent claim names none.
func (c claims) roleNames(name string) (system.Role, error) {
	raw, ok := c.lookup(name)
	if !ok || string(raw) == "null" {
		return 0, nil
	}
	var names []string
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		names = strings.FieldsFunc(one, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	} else if err := json.Unmarshal(raw, &names); err != nil {
		return 0, tokenError("token %s claim is not a string or an array of strings", quoted(name))
	}
	var roles system.Role
	for _, n := range names[:min(len(names), maxRoleNames)] {
		if r, err := system.ParseRoles([]string{n}); err == nil {
			roles |= r
		}
	}
	return roles, nil
}

// oidcIssuer is one organization's OpenID provider: discovered on first
// use (retried with backoff while it fails), its key set cached and
// fetched again for an unknown kid (at most once per KeysMinRefresh) and
// when older than KeysMaxAge.
type oidcIssuer struct {
	cfg OIDCConfig
	v   *Verifier
	// fetching admits one discovery or key set request at a time.
	fetching chan struct{}

	mu struct {
		sync.Mutex
		jwksURL string // "" until discovered
		// while undiscovered: when to try again, the backoff, why it failed
		nextTry  time.Time
		backoff  time.Duration
		lastErr  error
		keys     []jose.JSONWebKey
		fetched  time.Time // last successful key set fetch
		tried    time.Time // last key set fetch attempt
		fetchErr error
	}
}

func (o *oidcIssuer) who() string { return "issuer " + quoted(o.cfg.Issuer) }

func (o *oidcIssuer) verify(ctx context.Context, jws *jose.JSONWebSignature, hdr jose.Header) (*Identity, error) {
	keys, err := o.keys(ctx, hdr.KeyID)
	if err != nil {
		return nil, err
	}
	c, err := verifySignature(jws, hdr, keys, o.who())
	if err != nil {
		return nil, err
	}
	if err := o.v.checkCommon(c, o.cfg.Audience); err != nil {
		return nil, err
	}
	sub, ok, err := c.str(o.cfg.SubjectClaim)
	if err != nil {
		return nil, err
	}
	if !ok || sub == "" {
		return nil, tokenError("token has no %s claim (the subject)", quoted(o.cfg.SubjectClaim))
	}
	if !printable(sub) {
		return nil, tokenError("token %s claim is not a printable name of at most %d bytes", quoted(o.cfg.SubjectClaim), maxSubjectBytes)
	}
	var roles system.Role
	for _, name := range []string{o.cfg.RolesClaim, "scope", "scp"} {
		r, err := c.roleNames(name)
		if err != nil {
			return nil, err
		}
		roles |= r
	}
	return &Identity{Kind: KindToken, Subject: sub, Org: o.cfg.Org, Roles: roles & o.cfg.MaxRoles, Issuer: o.cfg.Issuer}, nil
}

func printable(s string) bool {
	if len(s) > maxSubjectBytes || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// keys returns the provider's key set, fetching it when it has none yet,
// lacks kid, or is older than KeysMaxAge, within KeysMinRefresh.
func (o *oidcIssuer) keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	jwksURL, err := o.discover(ctx)
	if err != nil {
		return nil, err
	}
	cfg := &o.v.cfg
	now := cfg.Clock()
	o.mu.Lock()
	keys, fetched, tried, fetchErr := o.mu.keys, o.mu.fetched, o.mu.tried, o.mu.fetchErr
	o.mu.Unlock()
	has := kid == "" || slices.ContainsFunc(keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid })
	fresh := !fetched.IsZero() && now.Sub(fetched) < cfg.KeysMaxAge
	if has && fresh {
		return keys, nil
	}
	if !tried.IsZero() && now.Sub(tried) < cfg.KeysMinRefresh {
		if fetched.IsZero() {
			return nil, tokenError("the keys of %s could not be fetched (%v); next try in %s", o.who(), fetchErr,
				(cfg.KeysMinRefresh - now.Sub(tried)).Round(time.Second))
		}
		return keys, nil // stale or without kid: the signature check says which
	}
	select {
	case o.fetching <- struct{}{}:
	case <-ctx.Done():
		return nil, tokenError("the keys of %s: %v", o.who(), ctx.Err())
	}
	defer func() { <-o.fetching }()
	o.mu.Lock()
	again := !o.mu.tried.Equal(tried) // fetched meanwhile by another request
	o.mu.Unlock()
	if !again {
		got, err := o.fetchKeys(ctx, jwksURL)
		o.mu.Lock()
		o.mu.tried = now
		if err != nil {
			o.mu.fetchErr = err
		} else {
			o.mu.keys, o.mu.fetched, o.mu.fetchErr = got, now, nil
		}
		o.mu.Unlock()
		if err != nil {
			cfg.Logger.Warn("Fetching an OpenID provider's keys failed", "issuer", o.cfg.Issuer, "url", jwksURL, "err", err)
		} else {
			cfg.Logger.Info("Fetched an OpenID provider's keys", "issuer", o.cfg.Issuer, "keys", len(got))
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mu.fetched.IsZero() {
		return nil, tokenError("the keys of %s could not be fetched (%v)", o.who(), o.mu.fetchErr)
	}
	return o.mu.keys, nil
}

// discover returns the provider's key set URL, from its discovery
// document. While the provider is unreachable, a new attempt is made on
// use after a backoff (DiscoveryRetryMin doubling to DiscoveryRetryMax)
// and the error says so.
func (o *oidcIssuer) discover(ctx context.Context) (string, error) {
	clock := o.v.cfg.Clock
	unreachable := func(err error, wait time.Duration) error {
		return tokenError("token issuer %q is unreachable (%v); next try in %s", o.cfg.Issuer, err, wait.Round(time.Second))
	}
	o.mu.Lock()
	u, next, lastErr := o.mu.jwksURL, o.mu.nextTry, o.mu.lastErr
	o.mu.Unlock()
	if u != "" {
		return u, nil
	}
	if now := clock(); now.Before(next) {
		return "", unreachable(lastErr, next.Sub(now))
	}
	select {
	case o.fetching <- struct{}{}:
	case <-ctx.Done():
		return "", tokenError("token issuer %q: discovery: %v", o.cfg.Issuer, ctx.Err())
	}
	defer func() { <-o.fetching }()
	o.mu.Lock()
	u, next, lastErr = o.mu.jwksURL, o.mu.nextTry, o.mu.lastErr
	o.mu.Unlock()
	if u != "" {
		return u, nil
	}
	if now := clock(); now.Before(next) {
		return "", unreachable(lastErr, next.Sub(now))
	}
	u, err := o.fetchDiscovery(ctx)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.mu.backoff = min(max(2*o.mu.backoff, DiscoveryRetryMin), DiscoveryRetryMax)
		o.mu.nextTry = clock().Add(o.mu.backoff)
		o.mu.lastErr = err
		o.v.cfg.Logger.Warn("OpenID provider unreachable: its tokens are refused until discovery succeeds",
			"issuer", o.cfg.Issuer, "org", o.cfg.Org, "err", err, "next_try_in", o.mu.backoff)
		return "", unreachable(err, o.mu.backoff)
	}
	o.mu.jwksURL, o.mu.backoff, o.mu.lastErr = u, 0, nil
	o.v.cfg.Logger.Info("OpenID provider discovered", "issuer", o.cfg.Issuer, "org", o.cfg.Org, "jwks_uri", u)
	return u, nil
}

// fetchDiscovery reads the discovery document with go-oidc (which checks
// that it names the configured issuer) and returns its jwks_uri.
func (o *oidcIssuer) fetchDiscovery(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.v.cfg.FetchTimeout)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, o.v.client), o.cfg.Issuer)
	if err != nil {
		return "", errors.New(oneLine(err.Error()))
	}
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&doc); err != nil {
		return "", fmt.Errorf("discovery document: %v", err)
	}
	if err := checkIssuerURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("discovery document: jwks_uri %w", err)
	}
	return doc.JWKSURI, nil
}

// fetchKeys reads a key set: its public signing keys of the allowed
// types (at most maxRemoteKeys); others are skipped.
func (o *oidcIssuer) fetchKeys(ctx context.Context, jwksURL string) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.v.cfg.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := o.v.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v", jwksURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", jwksURL, resp.Status)
	}
	return parseKeySet(body)
}

// parseKeySet decodes a JWKS, keeping the public keys that may verify
// tokens (ECDSA P-256, RSA ≥ 2048 bits, Ed25519) and skipping the rest.
func parseKeySet(body []byte) ([]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("key set is not JSON: %v", err)
	}
	if len(doc.Keys) > maxRemoteKeys {
		return nil, fmt.Errorf("key set of %d keys, more than %d", len(doc.Keys), maxRemoteKeys)
	}
	var out []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if json.Unmarshal(raw, &k) != nil || !k.IsPublic() {
			continue
		}
		if fits(k.Key, string(jose.ES256)) || fits(k.Key, string(jose.RS256)) || fits(k.Key, string(jose.EdDSA)) {
			out = append(out, k)
		}
	}
	return out, nil
}

// Warm discovers the providers not yet discovered and fetches their
// keys, logging those that fail (they are tried again on use). A node may
// call it once at start, in the background; it never fails.
func (v *Verifier) Warm(ctx context.Context) {
	for _, o := range v.byIssuer {
		if _, err := o.keys(ctx, ""); err != nil {
			v.cfg.Logger.Warn("OpenID provider not ready", "issuer", o.cfg.Issuer, "err", err)
		}
	}
}

// limitTransport bounds the bodies of the responses it carries.
type limitTransport struct {
	base http.RoundTripper
	max  int64
}

func (t limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.max}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body at the limit from one past it.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("response larger than %d bytes", maxFetchBytes)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
