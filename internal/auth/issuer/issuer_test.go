package issuer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/system"
)

// The tests hash with cheap parameters; TestSecretHashParams checks the
// real ones.
var productionHashParams = defaultHashParams

func TestMain(m *testing.M) {
	defaultHashParams = hashParams{memoryKiB: 64, time: 1, threads: 1}
	os.Exit(m.Run())
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

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

// logs records what a logger wrote.
type logs struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}
func (l *logs) WithAttrs(as []slog.Attr) slog.Handler { return &withAttrs{l, as} }
func (l *logs) WithGroup(string) slog.Handler         { return l }

type withAttrs struct {
	*logs
	as []slog.Attr
}

func (w *withAttrs) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(w.as...)
	return w.logs.Handle(ctx, r)
}
func (w *withAttrs) WithAttrs(as []slog.Attr) slog.Handler {
	return &withAttrs{w.logs, append(slices.Clone(w.as), as...)}
}

// at lists the records of level, each as "message k=v k=v".
func (l *logs) at(level slog.Level) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		if r.Level != level {
			continue
		}
		s := r.Message
		r.Attrs(func(a slog.Attr) bool {
			s += " " + a.Key + "=" + a.Value.String()
			return true
		})
		out = append(out, s)
	}
	return out
}

const testURL = "https://node0.example:8545"

type fixture struct {
	iss   *Issuer
	dir   string
	clock *clock
	logs  *logs
}

func newFixture(t *testing.T, edit func(*Config)) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), clock: newClock(), logs: &logs{}}
	cfg := Config{URL: testURL, DataDir: f.dir, Clock: f.clock.Now, Logger: slog.New(f.logs)}
	if edit != nil {
		edit(&cfg)
	}
	iss, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.iss = iss
	return f
}

// add registers a client and waits (on the fake clock) until the issuer
// sees it.
func (f *fixture) add(t *testing.T, name string, roles system.Role, keys ...string) (Client, string) {
	t.Helper()
	c, secret, err := AddClient(ClientsPath(f.dir), NewClient{Org: "org1", Name: name, Roles: roles, Keys: keys}, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(ReloadInterval)
	return c, secret
}

// post sends a token request from remote with the form and, when id is
// not empty, HTTP Basic credentials.
func (f *fixture) post(remote string, form url.Values, id, secret string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = remote
	if id != "" {
		r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	w := httptest.NewRecorder()
	f.iss.Handler().ServeHTTP(w, r)
	return w
}

var grant = url.Values{"grant_type": {"client_credentials"}}

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func decodeAnswer(t *testing.T, w *httptest.ResponseRecorder) tokenAnswer {
	t.Helper()
	var a tokenAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatalf("answer %d is not JSON: %v: %s", w.Code, err, w.Body)
	}
	return a
}

// claimsOf verifies raw with the issuer's key set and returns its claims.
func claimsOf(t *testing.T, iss *Issuer, raw string) map[string]any {
	t.Helper()
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: iss.VerificationKeys()}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in the JWKS", jws.Signatures[0].Header.KeyID, len(keys))
	}
	payload, err := jws.Verify(&keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClientsAddListRevoke: add writes the client with its secret hashed
// (0600 file, 0700 folder), list reads it back, revoke marks it once and
// names an unknown id.
func TestClientsAddListRevoke(t *testing.T) {
	dir := t.TempDir()
	path := ClientsPath(dir)
	c, secret, err := AddClient(path, NewClient{Org: "org1", Name: "My/App", Roles: system.RoleRead | system.RoleWrite, Keys: []string{"k1"}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.ID, "org1-my-app-") || len(c.ID) != len("org1-my-app-")+16 || checkID(c.ID) != nil {
		t.Fatalf("client id %q", c.ID)
	}
	if len(secret) < 40 || !checkSecret(c.SecretHash, secret) || checkSecret(c.SecretHash, secret+"x") {
		t.Fatal("the stored hash does not check the secret")
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), secret) {
		t.Fatal("the clients file holds the secret")
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != want {
			t.Fatalf("%s: mode %v, want %#o (%v)", p, st.Mode().Perm(), want, err)
		}
	}
	c2, _, err := AddClient(path, NewClient{Org: "org1", Name: "other", Roles: system.RoleRead}, t0)
	if err != nil {
		t.Fatal(err)
	}
	list, err := ListClients(path)
	if err != nil || len(list) != 2 || list[0].ID != c.ID || list[1].ID != c2.ID {
		t.Fatalf("list: %v %+v", err, list)
	}
	if got := list[0]; got.Roles != c.Roles || !slices.Equal(got.Keys, []string{"k1"}) || !got.Created.Equal(t0) || !got.Active() {
		t.Fatalf("listed %+v, added %+v", got, c)
	}
	r, changed, err := RevokeClient(path, c.ID, t0.Add(time.Hour))
	if err != nil || !changed || !r.Revoked.Equal(t0.Add(time.Hour)) {
		t.Fatalf("revoke: %v %v %+v", err, changed, r)
	}
	if _, changed, err := RevokeClient(path, c.ID, t0.Add(2*time.Hour)); err != nil || changed {
		t.Fatalf("second revoke: changed %v, %v", changed, err)
	}
	if _, _, err := RevokeClient(path, "org1-nope-00", t0); err == nil || !strings.Contains(err.Error(), `no client "org1-nope-00"`) {
		t.Fatalf("revoke of an unknown id: %v", err)
	}
	list, _ = ListClients(path)
	if list[0].Active() || !list[1].Active() {
		t.Fatal("revocation not stored")
	}
	if empty, err := ListClients(filepath.Join(dir, "none.json")); err != nil || len(empty) != 0 {
		t.Fatalf("missing file: %v %v", empty, err)
	}
}

// TestAddClientValidates: names, roles and keys are checked before
// anything is written.
func TestAddClientValidates(t *testing.T) {
	path := ClientsPath(t.TempDir())
	for _, tc := range []struct {
		nc   NewClient
		want string
	}{
		{NewClient{Org: "org1", Name: "", Roles: system.RoleRead}, "name: 0 bytes"},
		{NewClient{Org: "", Name: "a", Roles: system.RoleRead}, "org: 0 bytes"},
		{NewClient{Org: "org1", Name: "a b", Roles: system.RoleRead}, "without spaces"},
		{NewClient{Org: "org1", Name: "a", Roles: 0}, "roles: give at least one"},
		{NewClient{Org: "org1", Name: "a", Roles: 1 << 20}, "no role"},
		{NewClient{Org: "org1", Name: "a", Roles: system.RoleRead, Keys: []string{"k", "k"}}, "appears twice"},
	} {
		if _, _, err := AddClient(path, tc.nc, t0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.nc, err, tc.want)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("a refused client wrote the file")
	}
}

// TestClientsFileBounds: the file is refused past MaxClients or
// MaxClientsFileBytes, or when an entry is invalid, naming the entry; and
// AddClient stops at MaxClients.
func TestClientsFileBounds(t *testing.T) {
	hash, _ := hashSecret("s", defaultHashParams)
	many := make([]Client, MaxClients)
	for i := range many {
		many[i] = Client{ID: fmt.Sprintf("org1-c-%05d", i), Org: "org1", Name: "c", Roles: system.RoleRead, SecretHash: hash, Created: t0}
	}
	data, err := encodeClients(many)
	if err != nil {
		t.Fatal(err)
	}
	path := ClientsPath(t.TempDir())
	os.MkdirAll(filepath.Dir(path), 0o700)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := AddClient(path, NewClient{Org: "org1", Name: "one-more", Roles: system.RoleRead}, t0); err == nil ||
		!strings.Contains(err.Error(), "holds 10000 clients, the most a node serves") {
		t.Fatalf("add past the bound: %v", err)
	}
	over, _ := encodeClients(append(many, Client{ID: "org1-x", Org: "org1", Name: "x", Roles: system.RoleRead, SecretHash: hash}))
	ok := `{"version":1,"clients":[{"id":"org1-a","org":"org1","name":"a","roles":["read"],"secretHash":"` + hash + `","created":"2026-01-01T00:00:00Z"}]}`
	for _, tc := range []struct {
		data string
		want string
	}{
		{string(over), "10001 clients, more than 10000"},
		{strings.Repeat(" ", MaxClientsFileBytes+1), "bytes, more than"},
		{`{"version":2,"clients":[]}`, "version: 2"},
		{`{"version":1,"clients":[],"extra":1}`, "unknown field"},
		{strings.Replace(ok, `["read"]`, `["reader"]`, 1), `clients[0].roles: unknown role "reader"`},
		{strings.Replace(ok, `"org1-a"`, `"Org1 A"`, 1), "clients[0].id"},
		{strings.Replace(ok, hash, "$argon2id$v=19$m=999999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", 1), "clients[0].secretHash: parameters"},
		{strings.Replace(ok, `}]}`, `},`+ok[strings.Index(ok, "[")+1:], 1), `clients[1].id: "org1-a" appears twice`},
		{ok + "{}", "trailing data"},
	} {
		if _, err := decodeClients([]byte(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60s: %v, want %q", tc.data, err, tc.want)
		}
	}
	if cs, err := decodeClients([]byte(ok)); err != nil || len(cs) != 1 {
		t.Fatalf("a good file: %v", err)
	}
}

// TestSecretHashParams: secrets are hashed with argon2id at OWASP's costs,
// salted (two hashes of one secret differ), and stored parameters beyond
// the bounds are refused.
func TestSecretHashParams(t *testing.T) {
	h1, err := hashSecret("secret", productionHashParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h1)
	}
	h2, _ := hashSecret("secret", productionHashParams)
	if h1 == h2 || !checkSecret(h1, "secret") || !checkSecret(h2, "secret") || checkSecret(h1, "Secret") {
		t.Fatal("salting or checking is wrong")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=99,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$argon2id$v=19$m=64,t=1,p=1$$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1,x=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"} {
		if _, err := parseHash(bad); err == nil {
			t.Errorf("parseHash(%q) accepted", bad)
		}
	}
}

// TestStoreRereadsAfterRevoke: a running node's store sees a client added
// or revoked by the CLI once a second has passed, and looks at the file
// at most once a second.
func TestStoreRereadsAfterRevoke(t *testing.T) {
	dir, clk, l := t.TempDir(), newClock(), &logs{}
	path := ClientsPath(dir)
	s, err := OpenStore(path, clk.Now, slog.New(l))
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := AddClient(path, NewClient{Org: "org1", Name: "app", Roles: system.RoleRead}, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(c.ID); !errors.Is(err, auth.ErrUnknownClient) {
		t.Fatalf("within the second of opening: %v, want unknown", err)
	}
	clk.Add(ReloadInterval)
	got, err := s.Lookup(c.ID)
	if err != nil || !got.Active() {
		t.Fatalf("after a second: %v %+v", err, got)
	}
	if _, _, err := RevokeClient(path, c.ID, clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.Add(ReloadInterval / 2)
	if got, _ := s.Lookup(c.ID); !got.Active() {
		t.Fatal("reread within the second")
	}
	clk.Add(ReloadInterval / 2)
	if got, err := s.Lookup(c.ID); err != nil || got.Active() {
		t.Fatalf("a second after the revocation: %v, active %v", err, got.Active())
	}
	if n := len(l.at(slog.LevelInfo)); n != 2 {
		t.Fatalf("%d rereads logged, want 2 (one per change)", n)
	}
}

// TestStoreRefusesAllOnBrokenFile: a clients file that turns unreadable
// refuses every client (a revocation is never lost), is logged once per
// change, and is read again once fixed.
func TestStoreRefusesAllOnBrokenFile(t *testing.T) {
	dir, clk, l := t.TempDir(), newClock(), &logs{}
	path := ClientsPath(dir)
	c, _, err := AddClient(path, NewClient{Org: "org1", Name: "app", Roles: system.RoleRead}, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	s, err := OpenStore(path, clk.Now, slog.New(l))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"version":1,"clients":[{"id":`), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		clk.Add(ReloadInterval)
		if _, err := s.Lookup(c.ID); err == nil || errors.Is(err, auth.ErrUnknownClient) || !strings.Contains(err.Error(), "clients file unreadable") {
			t.Fatalf("broken file: %v", err)
		}
	}
	if n := len(l.at(slog.LevelError)); n != 1 {
		t.Fatalf("%d errors logged for one broken file, want 1", n)
	}
	if err := os.WriteFile(path+".new", good, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Rename(path+".new", path)
	clk.Add(ReloadInterval)
	if _, err := s.Lookup(c.ID); err != nil {
		t.Fatalf("fixed file: %v", err)
	}
	if _, err := OpenStore(path+".x", clk.Now, nil); err != nil {
		t.Fatalf("a missing file is no clients: %v", err)
	}
	os.WriteFile(path, []byte("{"), 0o600)
	if _, err := OpenStore(path, clk.Now, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("open of a broken file: %v", err)
	}
}

// TestTokenEndpoint: a client gets a token with HTTP Basic and with the
// form; the answer follows RFC 6749 §5.1 (no-store) and the token holds
// the claims of the design, signed ES256 with a key of the JWKS.
func TestTokenEndpoint(t *testing.T) {
	f := newFixture(t, nil)
	c, secret := f.add(t, "app", system.RoleRead|system.RoleWrite, "key-1")
	for _, basic := range []bool{true, false} {
		var w *httptest.ResponseRecorder
		if basic {
			w = f.post("127.0.0.1:5000", grant, c.ID, secret)
		} else {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {secret}}
			w = f.post("127.0.0.1:5000", form, "", "")
		}
		if w.Code != http.StatusOK {
			t.Fatalf("basic %v: %d %s", basic, w.Code, w.Body)
		}
		if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("headers %v", w.Header())
		}
		a := decodeAnswer(t, w)
		if a.TokenType != "Bearer" || a.ExpiresIn != 600 || a.Scope != "read write" || a.AccessToken == "" {
			t.Fatalf("answer %+v", a)
		}
		cl := claimsOf(t, f.iss, a.AccessToken)
		now := float64(f.clock.Now().Unix())
		if cl["iss"] != testURL || cl["sub"] != c.ID || cl["aud"] != "charter" || cl["org"] != "org1" ||
			cl["iat"] != now || cl["nbf"] != now || cl["exp"] != now+600 || len(cl["jti"].(string)) != 32 {
			t.Fatalf("claims %v", cl)
		}
		if roles := fmt.Sprint(cl["roles"]); roles != "[read write]" {
			t.Fatalf("roles claim %s", roles)
		}
	}
	if n := len(f.logs.at(slog.LevelWarn)); n != 0 {
		t.Fatalf("%d warnings for good requests", n)
	}
}

// TestTokenEndpointRefuses: malformed requests and bad credentials get the
// RFC 6749 §5.2 errors, never a token.
func TestTokenEndpointRefuses(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxFailures = 100 })
	c, secret := f.add(t, "app", system.RoleRead)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ID+":"+secret))
	for _, tc := range []struct {
		name   string
		method string
		ctype  string
		auth   []string
		body   string
		status int
		code   string
	}{
		{"GET", http.MethodGet, "", nil, "", 405, "invalid_request"},
		{"JSON body", "", "application/json", []string{basic}, `{"grant_type":"client_credentials"}`, 400, "invalid_request"},
		{"no grant type", "", "", []string{basic}, "", 400, "invalid_request"},
		{"password grant", "", "", []string{basic}, "grant_type=password", 400, "unsupported_grant_type"},
		{"repeated parameter", "", "", []string{basic}, "grant_type=client_credentials&grant_type=client_credentials", 400, "invalid_request"},
		{"no credentials", "", "", nil, "grant_type=client_credentials", 401, "invalid_client"},
		{"id without secret", "", "", nil, "grant_type=client_credentials&client_id=" + c.ID, 401, "invalid_client"},
		{"two methods", "", "", []string{basic}, "grant_type=client_credentials&client_secret=" + secret, 400, "invalid_request"},
		{"two Authorization headers", "", "", []string{basic, basic}, "grant_type=client_credentials", 400, "invalid_request"},
		{"Bearer instead of Basic", "", "", []string{"Bearer abc"}, "grant_type=client_credentials", 401, "invalid_client"},
		{"malformed Basic", "", "", []string{"Basic !!!"}, "grant_type=client_credentials", 401, "invalid_client"},
		{"wrong secret", "", "", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(c.ID+":nope"))}, "grant_type=client_credentials", 401, "invalid_client"},
		{"unknown client", "", "", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("org1-x-1:"+secret))}, "grant_type=client_credentials", 401, "invalid_client"},
		{"unknown role in scope", "", "", []string{basic}, "grant_type=client_credentials&scope=read+root", 400, "invalid_scope"},
		{"scope beyond the client's roles", "", "", []string{basic}, "grant_type=client_credentials&scope=write", 400, "invalid_scope"},
		{"oversized body", "", "", []string{basic}, "grant_type=client_credentials&x=" + strings.Repeat("a", MaxRequestBytes), 413, "invalid_request"},
	} {
		method := tc.method
		if method == "" {
			method = http.MethodPost
		}
		r := httptest.NewRequest(method, TokenPath, strings.NewReader(tc.body))
		ct := tc.ctype
		if ct == "" {
			ct = "application/x-www-form-urlencoded"
		}
		r.Header.Set("Content-Type", ct)
		for _, a := range tc.auth {
			r.Header.Add("Authorization", a)
		}
		w := httptest.NewRecorder()
		f.iss.Handler().ServeHTTP(w, r)
		a := decodeAnswer(t, w)
		if w.Code != tc.status || a.Error != tc.code || a.AccessToken != "" || a.Description == "" {
			t.Errorf("%s: %d %+v, want %d %s", tc.name, w.Code, a, tc.status, tc.code)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: no Cache-Control: no-store", tc.name)
		}
		if tc.status == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
		if strings.Contains(w.Body.String(), secret) {
			t.Errorf("%s: the answer holds the secret", tc.name)
		}
	}
}

// TestScopeNarrowsRoles: a scope of role names narrows the token's roles
// to those; the answer's scope says what was granted.
func TestScopeNarrowsRoles(t *testing.T) {
	f := newFixture(t, nil)
	c, secret := f.add(t, "app", system.RoleRead|system.RoleWrite|system.RoleDeploy)
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"write  read"}}
	w := f.post("127.0.0.1:1", form, c.ID, secret)
	a := decodeAnswer(t, w)
	if w.Code != 200 || a.Scope != "read write" {
		t.Fatalf("%d %+v", w.Code, a)
	}
	if roles := fmt.Sprint(claimsOf(t, f.iss, a.AccessToken)["roles"]); roles != "[read write]" {
		t.Fatalf("roles claim %s", roles)
	}
	if _, err := f.iss.Issue(c.ID, system.RoleAdmin); !errors.Is(err, ErrScope) {
		t.Fatalf("Issue beyond the roles: %v", err)
	}
}

// TestBruteForceSlowed: the 5th failed authentication of a client id
// locks it for 1 s (429, Retry-After), the next failure for 2 s, even for
// the right secret; a success after the lock resets it. Each failure is
// logged once at warn with the client id and the remote address, never
// the secret; a locked request is no failure.
func TestBruteForceSlowed(t *testing.T) {
	f := newFixture(t, nil)
	c, secret := f.add(t, "app", system.RoleRead)
	remote := "192.0.2.7:40000"
	for i := 1; i <= 5; i++ {
		if w := f.post(remote, grant, c.ID, fmt.Sprintf("guess-%d", i)); w.Code != 401 {
			t.Fatalf("failure %d: %d", i, w.Code)
		}
		f.clock.Add(10 * time.Millisecond)
	}
	w := f.post("198.51.100.1:1", grant, c.ID, secret)
	if w.Code != 429 || w.Header().Get("Retry-After") != "1" || decodeAnswer(t, w).Error != "slow_down" {
		t.Fatalf("locked id with the right secret from another address: %d %s %v", w.Code, w.Body, w.Header())
	}
	f.clock.Add(time.Second)
	if w := f.post(remote, grant, c.ID, "guess-6"); w.Code != 401 {
		t.Fatalf("after the lock: %d", w.Code)
	}
	if w := f.post(remote, grant, c.ID, secret); w.Code != 429 || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("second lock: %d %v", w.Code, w.Header())
	}
	f.clock.Add(2 * time.Second)
	if w := f.post("198.51.100.1:1", grant, c.ID, secret); w.Code != 200 {
		t.Fatalf("after the second lock, the right secret: %d %s", w.Code, w.Body)
	}
	warns := f.logs.at(slog.LevelWarn)
	if len(warns) != 6 {
		t.Fatalf("%d warnings for 6 failures: %q", len(warns), warns)
	}
	for _, l := range warns {
		if !strings.Contains(l, "wrong client secret") || !strings.Contains(l, "client="+c.ID) || !strings.Contains(l, "remote="+remote) ||
			strings.Contains(l, "guess") || strings.Contains(l, secret) {
			t.Fatalf("warning %q", l)
		}
	}
	// A success resets the id: 4 more failures do not lock it.
	for i := range 4 {
		if w := f.post("198.51.100.2:1", grant, c.ID, "x"); w.Code != 401 {
			t.Fatalf("failure %d after a success: %d", i, w.Code)
		}
	}
}

// TestBruteForcePerAddress: failures with many client ids from one
// address lock the address, also for a good client's request; another
// address is served. An IPv6 address counts by its /64.
func TestBruteForcePerAddress(t *testing.T) {
	f := newFixture(t, nil)
	c, secret := f.add(t, "app", system.RoleRead)
	for i := range 5 {
		if w := f.post("[2001:db8:1:2::7]:1", grant, fmt.Sprintf("org1-guess-%d", i), "x"); w.Code != 401 {
			t.Fatalf("failure %d: %d", i, w.Code)
		}
	}
	if w := f.post("[2001:db8:1:2::99]:2", grant, c.ID, secret); w.Code != 429 || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("same /64: %d", w.Code)
	}
	if w := f.post("[2001:db8:1:3::7]:1", grant, c.ID, secret); w.Code != 200 {
		t.Fatalf("another /64: %d %s", w.Code, w.Body)
	}
	for _, l := range f.logs.at(slog.LevelWarn) {
		if !strings.Contains(l, "unknown client id") {
			t.Fatalf("warning %q", l)
		}
	}
}

// TestFailuresBounded: the failure table holds at most its capacity,
// dropping the least recent; locks double up to the maximum.
func TestFailuresBounded(t *testing.T) {
	fl := newFailures(2, time.Second, 5*time.Minute, 3)
	for i := range 10 {
		fl.fail(fmt.Sprintf("k%d", i), t0.Add(time.Duration(i)*time.Second))
	}
	if fl.size() != 3 {
		t.Fatalf("%d keys tracked, capacity 3", fl.size())
	}
	var locks []time.Duration
	for i := range 12 {
		_, d := fl.fail("k9", t0.Add(time.Duration(i)*time.Hour/10))
		locks = append(locks, d)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second,
		64 * time.Second, 128 * time.Second, 256 * time.Second, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	if !slices.Equal(locks, want) {
		t.Fatalf("locks %v, want %v", locks, want)
	}
	if _, ok := fl.mu.byKey["k0"]; ok {
		t.Fatal("the oldest key was kept")
	}
	if fl.size() != 3 {
		t.Fatalf("%d keys", fl.size())
	}
}

// TestRevokedClientRefused: a revoked client's token request answers
// invalid_client, saying so, and is logged; Issue refuses it too.
func TestRevokedClientRefused(t *testing.T) {
	f := newFixture(t, nil)
	c, secret := f.add(t, "app", system.RoleRead)
	if w := f.post("127.0.0.1:1", grant, c.ID, secret); w.Code != 200 {
		t.Fatalf("before: %d", w.Code)
	}
	if _, _, err := RevokeClient(ClientsPath(f.dir), c.ID, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(ReloadInterval)
	w := f.post("127.0.0.1:1", grant, c.ID, secret)
	a := decodeAnswer(t, w)
	if w.Code != 401 || a.Error != "invalid_client" || !strings.Contains(a.Description, "revoked") {
		t.Fatalf("revoked: %d %+v", w.Code, a)
	}
	if warns := f.logs.at(slog.LevelWarn); len(warns) != 1 || !strings.Contains(warns[0], "revoked client") {
		t.Fatalf("warnings %q", warns)
	}
	if _, err := f.iss.Issue(c.ID, 0); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("Issue for a revoked client: %v", err)
	}
}

// TestKeyRotation: a new key signs once the newest is Rotate old; the old
// one stays in the JWKS for 2×Lifetime and is dropped after; the keys
// survive a restart (0600 file).
func TestKeyRotation(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Rotate = time.Hour })
	c, _ := f.add(t, "app", system.RoleRead)
	kidOf := func(raw string) string {
		jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		return jws.Signatures[0].Header.KeyID
	}
	issue := func() string {
		tok, err := f.iss.Issue(c.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Raw
	}
	old := issue()
	kid1 := kidOf(old)
	f.clock.Add(time.Hour - 2*time.Second)
	if kidOf(issue()) != kid1 {
		t.Fatal("rotated early")
	}
	f.clock.Add(2 * time.Second)
	fresh := issue()
	kid2 := kidOf(fresh)
	if kid2 == kid1 {
		t.Fatal("no rotation after Rotate")
	}
	ids := func() []string {
		var out []string
		for _, k := range f.iss.VerificationKeys() {
			out = append(out, k.KeyID)
		}
		return out
	}
	if got := ids(); !slices.Equal(got, []string{kid1, kid2}) {
		t.Fatalf("JWKS %v after rotation", got)
	}
	claimsOf(t, f.iss, old)
	f.clock.Add(20*time.Minute - time.Second)
	if got := ids(); len(got) != 2 {
		t.Fatalf("old key dropped before 2×Lifetime: %v", got)
	}
	f.clock.Add(time.Second)
	if got := ids(); !slices.Equal(got, []string{kid2}) {
		t.Fatalf("JWKS %v 2×Lifetime after the rotation", got)
	}
	if st, err := os.Stat(KeysPath(f.dir)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st.Mode(), err)
	}
	again, err := New(Config{URL: testURL, DataDir: f.dir, Clock: f.clock.Now, Rotate: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := again.Issue(c.ID, 0)
	if err != nil || kidOf(tok.Raw) != kid2 {
		t.Fatalf("after a restart: %v, kid %s, want %s", err, kidOf(tok.Raw), kid2)
	}
	os.Chmod(KeysPath(f.dir), 0o644)
	if _, err := New(Config{URL: testURL, DataDir: f.dir}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a key file others may read: %v", err)
	}
}

// TestConfigValidate: each wrong field is named.
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.URL = "" }, "issuer URL"},
		{func(c *Config) { c.URL = "ftp://x" }, "issuer URL"},
		{func(c *Config) { c.DataDir = "" }, "data directory"},
		{func(c *Config) { c.Lifetime = time.Second }, "token lifetime 1s"},
		{func(c *Config) { c.Lifetime = 25 * time.Hour }, "token lifetime"},
		{func(c *Config) { c.Lifetime = time.Hour; c.Rotate = time.Minute }, "key rotation 1m0s"},
	} {
		cfg := Config{URL: testURL, DataDir: t.TempDir()}
		tc.edit(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
}

// TestDiscoveryServesOIDCLibraries: go-oidc discovers the issuer, fetches
// its JWKS over HTTP and verifies its tokens as those of any OpenID
// provider; the discovery document names the endpoints.
func TestDiscoveryServesOIDCLibraries(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	f := newFixture(t, func(c *Config) { c.URL = base })
	srv := httptest.NewUnstartedServer(f.iss.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	c, secret := f.add(t, "app", system.RoleRead)
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if p.Endpoint().TokenURL != base+TokenPath {
		t.Fatalf("token endpoint %q", p.Endpoint().TokenURL)
	}
	var d Discovery
	if err := p.Claims(&d); err != nil || d.JWKSURI != base+JWKSPath || !slices.Equal(d.GrantTypes, []string{"client_credentials"}) ||
		!slices.Equal(d.TokenEndpointAuthMethods, []string{"client_secret_basic", "client_secret_post"}) {
		t.Fatalf("discovery %+v %v", d, err)
	}
	w := f.post("127.0.0.1:1", grant, c.ID, secret)
	raw := decodeAnswer(t, w).AccessToken
	tok, err := p.Verifier(&oidc.Config{ClientID: "charter", Now: f.clock.Now}).Verify(ctx, raw)
	if err != nil || tok.Subject != c.ID {
		t.Fatalf("go-oidc: %v", err)
	}
	resp, err := http.Post(base+JWKSPath, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST to the JWKS: %d", resp.StatusCode)
	}
}

// FuzzTokenRequest: the token request decoder takes any body and headers
// without panicking; what it accepts is a client-credentials grant with
// an id and a secret within bounds, and what it refuses is an RFC 6749
// error.
func FuzzTokenRequest(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "", "grant_type=client_credentials&client_id=a&client_secret=b")
	f.Add("application/x-www-form-urlencoded", "Basic YTpi", "grant_type=client_credentials&scope=read+write")
	f.Add("application/x-www-form-urlencoded; charset=utf-8", "Basic YTpi", "grant_type=client_credentials&client_id=a")
	f.Add("application/x-www-form-urlencoded", "Basic JTI=", "grant_type=client_credentials")
	f.Add("text/plain", "", "%zz")
	f.Add("application/x-www-form-urlencoded", "bearer x", "grant_type=client_credentials&grant_type=x")
	f.Fuzz(func(t *testing.T, ctype, authz, body string) {
		var hdr []string
		if authz != "" {
			hdr = []string{authz}
		}
		req, e := parseTokenRequest(ctype, hdr, []byte(body))
		if (req == nil) == (e == nil) {
			t.Fatalf("request %v and error %v", req, e)
		}
		if e != nil {
			if e.code == "" || e.desc == "" || e.status < 400 || strings.Contains(e.desc, "\n") {
				t.Fatalf("error %+v", e)
			}
			return
		}
		if req.clientID == "" || req.secret == "" || len(req.clientID) > MaxIDBytes || len(req.secret) > MaxSecretBytes {
			t.Fatalf("accepted %+v", req)
		}
		if !strings.Contains(body, "client_credentials") {
			t.Fatalf("accepted a body without the grant: %q", body)
		}
	})
}

// TestTokenEndpointConcurrent: requests at once, good and bad, from
// several addresses, are each answered 200, 401 or 429 (run with -race).
func TestTokenEndpointConcurrent(t *testing.T) {
	f := newFixture(t, nil)
	c, secret := f.add(t, "app", system.RoleRead)
	var wg sync.WaitGroup
	codes := make(chan int, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				s := secret
				if (g+i)%3 == 0 {
					s = "wrong"
				}
				codes <- f.post(fmt.Sprintf("192.0.2.%d:1", g), grant, c.ID, s).Code
				if i%4 == 0 {
					f.iss.VerificationKeys()
				}
			}
		}()
	}
	wg.Wait()
	close(codes)
	seen := map[int]int{}
	for code := range codes {
		seen[code]++
	}
	if seen[200] == 0 || seen[401] == 0 || seen[200]+seen[401]+seen[429] != 64 {
		t.Fatalf("answers %v", seen)
	}
}

// TestReplayedTokenRequest: a client-credentials request captured and sent
// again is a new request for a new token (its own jti), never the first
// answer again, and once the client is revoked the same request gets
// invalid_client.
func TestReplayedTokenRequest(t *testing.T) {
	f := newFixture(t, nil)
	c, secret := f.add(t, "app", system.RoleRead)
	jtis := map[string]bool{}
	for i := 0; i < 3; i++ {
		w := f.post("127.0.0.1:1", grant, c.ID, secret)
		a := decodeAnswer(t, w)
		if w.Code != http.StatusOK || a.AccessToken == "" {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
		jti, _ := claimsOf(t, f.iss, a.AccessToken)["jti"].(string)
		if jti == "" || jtis[jti] {
			t.Fatalf("request %d: jti %q repeats an earlier token's (%v)", i, jti, jtis)
		}
		jtis[jti] = true
	}
	if _, _, err := RevokeClient(ClientsPath(f.dir), c.ID, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(ReloadInterval)
	w := f.post("127.0.0.1:1", grant, c.ID, secret)
	if a := decodeAnswer(t, w); w.Code != http.StatusUnauthorized || a.Error != "invalid_client" || a.AccessToken != "" {
		t.Fatalf("the request replayed after revocation: %d %+v", w.Code, a)
	}
}
