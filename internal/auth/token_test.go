package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/auth/issuer"
	"github.com/charter-ledger/charter/internal/auth/oidctest"
	"github.com/charter-ledger/charter/internal/system"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const localURL = "https://node0.example:8545"

// local is a node with its built-in issuer and one client.
type local struct {
	clk    *clock
	dir    string
	iss    *issuer.Issuer
	v      *auth.Verifier
	client issuer.Client
}

func newLocal(t *testing.T, roles system.Role, keys ...string) *local {
	t.Helper()
	l := &local{clk: &clock{now: t0}, dir: t.TempDir()}
	var err error
	l.iss, err = issuer.New(issuer.Config{URL: localURL, DataDir: l.dir, Clock: l.clk.Now, Rotate: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l.client, _, err = issuer.AddClient(issuer.ClientsPath(l.dir), issuer.NewClient{Org: "org1", Name: "app", Roles: roles, Keys: keys}, l.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	l.clk.Add(issuer.ReloadInterval)
	l.v, err = auth.NewVerifier(auth.VerifierConfig{Local: l.iss, Clock: l.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *local) token(t *testing.T, roles system.Role) string {
	t.Helper()
	tok, err := l.iss.Issue(l.client.ID, roles)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Raw
}

// editClients rewrites the clients file through edit, as an operator
// might by hand, and lets the node see it.
func (l *local) editClients(t *testing.T, edit func([]map[string]any) []map[string]any) {
	t.Helper()
	path := issuer.ClientsPath(l.dir)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	json.Unmarshal(data, &doc)
	var cs []map[string]any
	for _, c := range doc["clients"].([]any) {
		cs = append(cs, c.(map[string]any))
	}
	doc["clients"] = edit(cs)
	data, _ = json.Marshal(doc)
	if err := os.WriteFile(path+".new", data, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Rename(path+".new", path)
	l.clk.Add(issuer.ReloadInterval)
}

// provider is an organization's OpenID provider and a node trusting it.
type provider struct {
	clk *clock
	p   *oidctest.Issuer
	v   *auth.Verifier
}

func newProvider(t *testing.T, alg jose.SignatureAlgorithm, edit func(*auth.OIDCConfig)) *provider {
	t.Helper()
	clk := &clock{now: t0}
	p := oidctest.Start(t, oidctest.Options{Alg: alg, Clock: clk.Now})
	oc := auth.OIDCConfig{Org: "org2", Issuer: p.URL, Audience: "charter", MaxRoles: system.RoleRead | system.RoleWrite}
	if edit != nil {
		edit(&oc)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{OIDC: []auth.OIDCConfig{oc}, Clock: clk.Now, HTTPClient: p.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return &provider{clk: clk, p: p, v: v}
}

// refused wants v to refuse raw with status and a one-line message that
// contains want and not the token.
func refused(t *testing.T, v *auth.Verifier, raw string, status int, want string) {
	t.Helper()
	id, err := v.Verify(context.Background(), raw)
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("want refusal %q, got identity %+v, error %v", want, id, err)
	}
	if id != nil {
		t.Fatalf("an identity with the error %v", err)
	}
	if ae.Status != status || ae.Code != "invalid_token" || !strings.Contains(ae.Msg, want) {
		t.Fatalf("refused %d %s %q, want %d invalid_token %q", ae.Status, ae.Code, ae.Msg, status, want)
	}
	if strings.ContainsAny(ae.Msg, "\n\r") || (len(raw) > 20 && strings.Contains(ae.Msg, raw)) {
		t.Fatalf("message %q: several lines or the token", ae.Msg)
	}
	for _, part := range strings.Split(raw, ".") {
		if len(part) > 20 && strings.Contains(ae.Msg, part) {
			t.Fatalf("message %q holds a part of the token", ae.Msg)
		}
	}
}

func accepted(t *testing.T, v *auth.Verifier, raw string) *auth.Identity {
	t.Helper()
	id, err := v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	return id
}

// payloadOf decodes a token's claims without verifying it.
func payloadOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func kidOf(t *testing.T, raw string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(raw, auth.AllowedAlgorithms)
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

// withPayload keeps raw's header and signature around other claims.
func withPayload(raw string, claims map[string]any) string {
	parts := strings.Split(raw, ".")
	b, _ := json.Marshal(claims)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}

func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	raw, err := oidctest.Sign(alg, key, kid, claims)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// forgeries are the attacks on the signature and the encoding that any
// issuer's tokens must resist, given a good token, the public key that
// verifies it and the issuer's name in messages.
func forgeries(t *testing.T, v *auth.Verifier, good string, pub any, who string) {
	claims := payloadOf(t, good)
	kid := kidOf(t, good)
	escalated := payloadOf(t, good)
	escalated["roles"] = []string{"read", "write", "deploy", "admin", "auditor"}
	escalated["sub"] = "someone-else"
	es, _ := oidctest.NewKey(jose.ES256)
	rs, _ := oidctest.NewKey(jose.RS256)
	parts := strings.Split(good, ".")
	for _, tc := range []struct {
		name, raw, want string
	}{
		{"alg none", sign(t, "none", nil, kid, claims), `token algorithm "none" is not allowed`},
		{"alg none without signature part", strings.TrimSuffix(sign(t, "none", nil, kid, claims), "."), "not a signed JWT"},
		{"HS256 with the public key's bytes (key confusion)", sign(t, jose.HS256, oidctest.PublicKeyBytes(pub), kid, claims), `token algorithm "HS256" is not allowed`},
		{"HS512 with the public key's bytes", sign(t, jose.HS512, oidctest.PublicKeyBytes(pub), kid, claims), `token algorithm "HS512" is not allowed`},
		{"tampered payload", withPayload(good, escalated), "token signature does not verify with key"},
		{"tampered signature", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])), "token signature does not verify"},
		{"unknown kid", sign(t, jose.ES256, es.Signer, "no-such-key", claims), `token key id "no-such-key" is not among the keys of ` + who},
		{"own ES256 key under the issuer's kid", sign(t, jose.ES256, es.Signer, kid, claims), "token"},
		{"own RS256 key under the issuer's kid", sign(t, jose.RS256, rs.Signer, kid, claims), "token"},
		{"own key, no kid", sign(t, jose.ES256, es.Signer, "", claims), "token"},
		{"oversized", good + strings.Repeat("A", 9000), "bytes, more than 8192"},
		{"not a JWT", "hello", "not a signed JWT"},
		{"empty", "", "not a signed JWT"},
		{"JWE-like five parts", good + ".a.b", "not a signed JWT"},
		{"JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, "not a signed JWT"},
		{"whitespace", parts[0] + ". " + parts[1] + "." + parts[2], "not a signed JWT"},
		{"header not JSON", "bm90IGpzb24." + parts[1] + "." + parts[2], "malformed"},
		{"claims not an object", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`[1,2]`)) + "." + parts[2], "claims are not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) { refused(t, v, tc.raw, http.StatusUnauthorized, tc.want) })
	}
}

// TestLocalToken: a token of the built-in issuer gives the client's
// identity: its organization, the token's roles within its registration,
// its keys, the issuer.
func TestLocalToken(t *testing.T) {
	l := newLocal(t, system.RoleRead|system.RoleWrite, "k1", "k2")
	id := accepted(t, l.v, l.token(t, 0))
	want := auth.Identity{Kind: auth.KindToken, Subject: l.client.ID, Org: "org1", Roles: system.RoleRead | system.RoleWrite, Issuer: localURL}
	if id.Kind != want.Kind || id.Subject != want.Subject || id.Org != want.Org || id.Roles != want.Roles || id.Issuer != want.Issuer ||
		strings.Join(id.Keys, ",") != "k1,k2" {
		t.Fatalf("identity %+v", id)
	}
	if id := accepted(t, l.v, l.token(t, system.RoleRead)); id.Roles != system.RoleRead {
		t.Fatalf("a token narrowed by scope to read gives %s", id.Roles)
	}
}

// TestLocalTokenAttacks: the attack battery on the built-in issuer's
// tokens.
func TestLocalTokenAttacks(t *testing.T) {
	l := newLocal(t, system.RoleRead|system.RoleWrite)
	good := l.token(t, 0)
	pub := l.iss.VerificationKeys()[0].Key
	forgeries(t, l.v, good, pub, "the node's issuer")

	t.Run("expired", func(t *testing.T) {
		l.clk.Add(10*time.Minute + auth.DefaultSkew)
		accepted(t, l.v, good) // exactly at exp + skew
		l.clk.Add(time.Second)
		refused(t, l.v, good, 401, "token expired at 2026-03-01T12:10:01Z")
		l.clk.Add(-(10*time.Minute + auth.DefaultSkew + time.Second))
	})
	t.Run("not yet valid", func(t *testing.T) {
		l.clk.Add(-auth.DefaultSkew - time.Second)
		refused(t, l.v, good, 401, "token is not valid before 2026-03-01T12:00:01Z")
		l.clk.Add(auth.DefaultSkew + time.Second)
	})
	t.Run("wrong audience", func(t *testing.T) {
		other, err := issuer.New(issuer.Config{URL: localURL, DataDir: l.dir, Clock: l.clk.Now, Rotate: time.Hour, Audience: "other-chain"})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := other.Issue(l.client.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		refused(t, l.v, tok.Raw, 401, `token audience ["other-chain"] does not include "charter"`)
	})
	t.Run("wrong issuer", func(t *testing.T) {
		other, err := issuer.New(issuer.Config{URL: "https://node9.example:8545", DataDir: l.dir, Clock: l.clk.Now, Rotate: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := other.Issue(l.client.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		refused(t, l.v, tok.Raw, 401, `token issuer "https://node9.example:8545" is not trusted by this node`)
	})
	t.Run("revoked client", func(t *testing.T) {
		tok := l.token(t, 0)
		if _, _, err := issuer.RevokeClient(issuer.ClientsPath(l.dir), l.client.ID, l.clk.Now()); err != nil {
			t.Fatal(err)
		}
		accepted(t, l.v, tok) // the node looks at the file once a second
		l.clk.Add(issuer.ReloadInterval)
		refused(t, l.v, tok, http.StatusForbidden, "client \""+l.client.ID+"\" was revoked at")
	})
	t.Run("deleted client", func(t *testing.T) {
		l := newLocal(t, system.RoleRead)
		tok := l.token(t, 0)
		l.editClients(t, func([]map[string]any) []map[string]any { return []map[string]any{} })
		refused(t, l.v, tok, http.StatusUnauthorized, "is not registered with this node's issuer")
	})
}

// TestLocalRolesNarrowed: an identity's roles are the token's within the
// client's current registration: narrowing the registration narrows the
// tokens already issued.
func TestLocalRolesNarrowed(t *testing.T) {
	l := newLocal(t, system.RoleRead|system.RoleWrite|system.RoleDeploy)
	tok := l.token(t, system.RoleRead|system.RoleWrite)
	if id := accepted(t, l.v, tok); id.Roles != system.RoleRead|system.RoleWrite {
		t.Fatalf("roles %s", id.Roles)
	}
	l.editClients(t, func(cs []map[string]any) []map[string]any {
		cs[0]["roles"] = []string{"write", "deploy"}
		cs[0]["keys"] = []string{"k9"}
		return cs
	})
	id := accepted(t, l.v, tok)
	if id.Roles != system.RoleWrite || strings.Join(id.Keys, ",") != "k9" {
		t.Fatalf("after narrowing the registration: roles %s, keys %v", id.Roles, id.Keys)
	}
}

// TestLocalKeyRotation: after the issuer rotates its key, tokens of the
// old key verify until they expire; once the old key is dropped (2
// lifetimes after), they fail on the key, and new tokens verify.
func TestLocalKeyRotation(t *testing.T) {
	l := newLocal(t, system.RoleRead)
	l.clk.Add(time.Hour - 2*time.Minute)
	old := l.token(t, 0)
	l.clk.Add(2 * time.Minute)
	fresh := l.token(t, 0)
	if kidOf(t, old) == kidOf(t, fresh) {
		t.Fatal("no rotation")
	}
	accepted(t, l.v, old)
	accepted(t, l.v, fresh)
	l.clk.Add(9*time.Minute + auth.DefaultSkew)
	refused(t, l.v, old, 401, "token expired")
	l.clk.Add(20*time.Minute - 9*time.Minute - auth.DefaultSkew)
	refused(t, l.v, old, 401, `token key id "`+kidOf(t, old)+`" is not among the keys of the node's issuer`)
	accepted(t, l.v, l.token(t, 0))
}

// TestOIDCToken: a provider's token gives an identity of the configured
// organization with the roles of its roles and scope claims, capped.
func TestOIDCToken(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			pr := newProvider(t, alg, nil)
			id := accepted(t, pr.v, pr.p.Token(map[string]any{"roles": []string{"read", "write", "admin"}}))
			if id.Kind != auth.KindToken || id.Subject != "user-1" || id.Org != "org2" || id.Issuer != pr.p.URL ||
				id.Roles != system.RoleRead|system.RoleWrite || len(id.Keys) != 0 {
				t.Fatalf("identity %+v", id)
			}
		})
	}
}

// TestOIDCRoles: roles come from the roles claim (array or string), a
// nested claim, "scope" or "scp"; other names are ignored; MaxRoles caps
// them (default read); the subject claim may be another.
func TestOIDCRoles(t *testing.T) {
	pr := newProvider(t, jose.RS256, func(c *auth.OIDCConfig) { c.MaxRoles = system.RoleRead | system.RoleWrite | system.RoleDeploy })
	for _, tc := range []struct {
		claims map[string]any
		want   system.Role
	}{
		{map[string]any{"roles": []string{"deploy", "admin", "openid"}}, system.RoleDeploy},
		{map[string]any{"roles": "read,write"}, system.RoleRead | system.RoleWrite},
		{map[string]any{"scope": "openid profile write"}, system.RoleWrite},
		{map[string]any{"scp": []string{"read"}, "roles": []string{"deploy"}}, system.RoleRead | system.RoleDeploy},
		{map[string]any{"roles": []string{"auditor", "ADMIN"}}, 0},
		{map[string]any{}, 0},
	} {
		if id := accepted(t, pr.v, pr.p.Token(tc.claims)); id.Roles != tc.want {
			t.Errorf("%v: roles %s, want %s", tc.claims, id.Roles, tc.want)
		}
	}
	refused(t, pr.v, pr.p.Token(map[string]any{"roles": 7}), 401, `token "roles" claim is not a string or an array of strings`)

	kc := newProvider(t, jose.RS256, func(c *auth.OIDCConfig) {
		c.MaxRoles = 0 // the default: read
		c.RolesClaim = "realm_access.roles"
		c.SubjectClaim = "preferred_username"
	})
	id := accepted(t, kc.v, kc.p.Token(map[string]any{"realm_access": map[string]any{"roles": []string{"write", "read"}}, "preferred_username": "alice"}))
	if id.Roles != system.RoleRead || id.Subject != "alice" {
		t.Fatalf("nested roles under the default cap: %s, subject %q", id.Roles, id.Subject)
	}
	refused(t, kc.v, kc.p.Token(nil), 401, `token has no "preferred_username" claim`)
	refused(t, kc.v, kc.p.Token(map[string]any{"preferred_username": "a\nb"}), 401, "not a printable name")
}

// TestOIDCTokenAttacks: the attack battery on a provider's tokens.
func TestOIDCTokenAttacks(t *testing.T) {
	pr := newProvider(t, jose.RS256, nil)
	good := pr.p.Token(nil)
	accepted(t, pr.v, good)
	forgeries(t, pr.v, good, pr.p.Key().Public(), fmt.Sprintf("issuer %q", pr.p.URL))
	now := t0.Unix()
	skew := int64(auth.DefaultSkew / time.Second)
	other := oidctest.Start(t, oidctest.Options{})
	for _, tc := range []struct {
		name   string
		claims map[string]any
		want   string
	}{
		{"expired", map[string]any{"exp": now - skew - 1}, "token expired at 2026-03-01T11:58:59Z (now 2026-03-01T12:00:00Z, skew allowed 1m0s)"},
		{"not yet valid", map[string]any{"nbf": now + skew + 1}, "token is not valid before 2026-03-01T12:01:01Z"},
		{"issued in the future", map[string]any{"iat": now + skew + 1}, "token was issued in the future"},
		{"no exp", map[string]any{"exp": nil}, "token has no exp claim"},
		{"exp not a number", map[string]any{"exp": "tomorrow"}, "token exp claim is not a time"},
		{"wrong audience", map[string]any{"aud": []string{"other", "another"}}, `token audience ["other" "another"] does not include "charter"`},
		{"no audience", map[string]any{"aud": nil}, "token has no aud claim"},
		{"wrong issuer", map[string]any{"iss": other.URL}, fmt.Sprintf("token issuer %q is not trusted", other.URL)},
		{"no issuer", map[string]any{"iss": nil}, "token has no iss claim"},
		{"issuer not a string", map[string]any{"iss": 5}, "token iss claim is not a string"},
		{"no subject", map[string]any{"sub": nil}, `token has no "sub" claim`},
	} {
		t.Run(tc.name, func(t *testing.T) { refused(t, pr.v, pr.p.Token(tc.claims), 401, tc.want) })
	}
	t.Run("within the skew", func(t *testing.T) {
		accepted(t, pr.v, pr.p.Token(map[string]any{"exp": now - skew, "nbf": now + skew, "iat": now + skew}))
	})
	t.Run("another provider's token with its iss", func(t *testing.T) {
		refused(t, pr.v, other.Token(nil), 401, "is not trusted by this node")
	})
	t.Run("signed by another provider's key, this provider's iss", func(t *testing.T) {
		k := other.Key()
		refused(t, pr.v, sign(t, jose.RS256, k.Signer, k.ID, pr.p.Claims(nil)), 401, "is not among the keys of")
	})
}

// TestOIDCKeyRotation: when the provider rotates, the verifier fetches
// the key set again for the new kid (at most once per KeysMinRefresh),
// keeps verifying the old key while it is published, and drops it once
// withdrawn and the cached set is KeysMaxAge old.
func TestOIDCKeyRotation(t *testing.T) {
	pr := newProvider(t, jose.ES256, nil)
	exp := map[string]any{"exp": t0.Add(3 * time.Hour).Unix()}
	old := pr.p.Token(exp)
	accepted(t, pr.v, old)
	if d, j := pr.p.Requests(); d != 1 || j != 1 {
		t.Fatalf("first use: %d discovery, %d key set requests", d, j)
	}
	oldKid := kidOf(t, old)
	pr.p.Rotate()
	fresh := pr.p.Token(exp)
	refused(t, pr.v, fresh, 401, "is not among the keys of") // fetched less than KeysMinRefresh ago
	if _, j := pr.p.Requests(); j != 1 {
		t.Fatalf("%d key set requests within KeysMinRefresh", j)
	}
	pr.clk.Add(auth.DefaultKeysMinRefresh)
	accepted(t, pr.v, fresh)
	accepted(t, pr.v, old)
	if _, j := pr.p.Requests(); j != 2 {
		t.Fatalf("%d key set requests, want 2", j)
	}
	pr.p.Unpublish(oldKid)
	pr.clk.Add(auth.DefaultKeysMaxAge - time.Second)
	accepted(t, pr.v, old) // cached
	pr.clk.Add(time.Second)
	refused(t, pr.v, old, 401, `token key id "`+oldKid+`" is not among the keys`)
	accepted(t, pr.v, fresh)
	if _, j := pr.p.Requests(); j != 3 {
		t.Fatalf("%d key set requests, want 3", j)
	}
}

// TestOIDCUnknownKidsThrottled: a flood of tokens with unknown kids makes
// at most one key set request per KeysMinRefresh.
func TestOIDCUnknownKidsThrottled(t *testing.T) {
	pr := newProvider(t, jose.ES256, nil)
	accepted(t, pr.v, pr.p.Token(nil))
	k, _ := oidctest.NewKey(jose.ES256)
	for i := range 50 {
		raw := sign(t, jose.ES256, k.Signer, fmt.Sprintf("kid-%d", i), pr.p.Claims(nil))
		refused(t, pr.v, raw, 401, "is not among the keys of")
		if i%10 == 9 {
			pr.clk.Add(auth.DefaultKeysMinRefresh / 2)
		}
	}
	if _, j := pr.p.Requests(); j > 4 {
		t.Fatalf("%d key set requests for 50 forged tokens over 25 s", j)
	}
}

// TestOIDCProviderDown: a provider down when the node starts does not stop
// the verifier; its tokens are refused saying it is unreachable, with
// discovery tried again on use after a doubling backoff, and accepted once
// it is back.
func TestOIDCProviderDown(t *testing.T) {
	pr := newProvider(t, jose.RS256, nil)
	pr.p.SetDown(true)
	tok := pr.p.Token(map[string]any{"exp": t0.Add(time.Hour).Unix()})
	refused(t, pr.v, tok, 401, fmt.Sprintf("token issuer %q is unreachable (503 Service Unavailable", pr.p.URL))
	refused(t, pr.v, tok, 401, "next try in 1s")
	if d, _ := pr.p.Requests(); d != 1 {
		t.Fatalf("%d discovery requests within the backoff", d)
	}
	pr.clk.Add(time.Second)
	refused(t, pr.v, tok, 401, "next try in 2s")
	if d, _ := pr.p.Requests(); d != 2 {
		t.Fatalf("%d discovery requests after the backoff", d)
	}
	pr.p.SetDown(false)
	pr.clk.Add(time.Second)
	refused(t, pr.v, tok, 401, "is unreachable")
	pr.clk.Add(time.Second)
	accepted(t, pr.v, tok)
}

// TestOIDCConcurrentFirstUse: many requests at once on first use make one
// discovery and one key set request.
func TestOIDCConcurrentFirstUse(t *testing.T) {
	pr := newProvider(t, jose.ES256, nil)
	tok := pr.p.Token(nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := pr.v.Verify(context.Background(), tok); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if d, j := pr.p.Requests(); d != 1 || j != 1 {
		t.Fatalf("%d discovery and %d key set requests", d, j)
	}
}

// TestVerifierConfig: wrong settings are named.
func TestVerifierConfig(t *testing.T) {
	l := newLocal(t, system.RoleRead)
	good := auth.OIDCConfig{Org: "org2", Issuer: "https://idp.example/realms/org2", Audience: "charter"}
	for _, tc := range []struct {
		cfg  auth.VerifierConfig
		want string
	}{
		{auth.VerifierConfig{Skew: time.Hour}, "token clock skew 1h0m0s"},
		{auth.VerifierConfig{MaxTokenBytes: 10}, "max token bytes 10"},
		{auth.VerifierConfig{OIDC: []auth.OIDCConfig{{Issuer: good.Issuer, Audience: "a"}}}, "oidc[0]: org: required"},
		{auth.VerifierConfig{OIDC: []auth.OIDCConfig{{Org: "o", Issuer: "http://idp.example", Audience: "a"}}}, "http only on a loopback address"},
		{auth.VerifierConfig{OIDC: []auth.OIDCConfig{{Org: "o", Issuer: "idp.example", Audience: "a"}}}, "oidc[0]: issuer"},
		{auth.VerifierConfig{OIDC: []auth.OIDCConfig{{Org: "o", Issuer: good.Issuer}}}, "audience: required"},
		{auth.VerifierConfig{OIDC: []auth.OIDCConfig{good, good}}, "oidc[1].issuer \"https://idp.example/realms/org2\" is configured twice"},
		{auth.VerifierConfig{Local: l.iss, OIDC: []auth.OIDCConfig{{Org: "o", Issuer: localURL, Audience: "a"}}}, "is the node's own issuer"},
	} {
		if _, err := auth.NewVerifier(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{OIDC: []auth.OIDCConfig{good}})
	if err != nil {
		t.Fatal(err)
	}
	refused(t, v, l.token(t, 0), 401, `token issuer "`+localURL+`" is not trusted`)
}

// FuzzVerify: Verify takes any string without panicking, and refuses
// what it does not accept with a one-line *Error that does not hold the
// token.
func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	clk := &clock{now: t0}
	iss, err := issuer.New(issuer.Config{URL: localURL, DataDir: dir, Clock: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	c, _, err := issuer.AddClient(issuer.ClientsPath(dir), issuer.NewClient{Org: "org1", Name: "app", Roles: system.RoleRead}, t0)
	if err != nil {
		f.Fatal(err)
	}
	clk.Add(issuer.ReloadInterval)
	tok, err := iss.Issue(c.ID, 0)
	if err != nil {
		f.Fatal(err)
	}
	// The provider's address refuses connections: a token naming it makes
	// one quick failed discovery, then the backoff holds (the clock stands).
	v, err := auth.NewVerifier(auth.VerifierConfig{Local: iss, Clock: clk.Now,
		OIDC: []auth.OIDCConfig{{Org: "org2", Issuer: "http://127.0.0.1:1", Audience: "charter"}}})
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(tok.Raw, ".")
	f.Add(tok.Raw)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjEifQ.")
	f.Add("eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjEifQ.AAAA")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.Verify(context.Background(), raw)
		if err == nil {
			if id == nil || id.Subject != c.ID || id.Org != "org1" || id.Roles&^system.RoleRead != 0 {
				t.Fatalf("accepted %+v", id)
			}
			return
		}
		var ae *auth.Error
		if !errors.As(err, &ae) || id != nil {
			t.Fatalf("error %T %v with identity %v", err, err, id)
		}
		if (ae.Status != 401 && ae.Status != 403) || ae.Code != "invalid_token" || strings.ContainsAny(ae.Msg, "\n\r") {
			t.Fatalf("error %+v", ae)
		}
		if len(raw) >= 32 && strings.Contains(ae.Msg, raw) {
			t.Fatalf("the message holds the token: %q", ae.Msg)
		}
	})
}
