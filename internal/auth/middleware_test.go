package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/charter-ledger/charter/internal/system"
)

// secretToken is a token text no log line may hold.
const secretToken = "tok-s3cr3t-org1-app"

// fakeBearer accepts secretToken (org1/app, read+write), "tok-org3" (an
// organization that has exited) and "tok-org2"; anything else is expired.
func fakeBearer(_ context.Context, raw string) (*Identity, error) {
	switch raw {
	case secretToken:
		return &Identity{Kind: KindToken, Org: "org1", Subject: "app", Roles: system.RoleRead | system.RoleWrite, Issuer: "https://node1"}, nil
	case "tok-org2":
		return &Identity{Kind: KindToken, Org: "org2", Subject: "svc", Roles: system.RoleRead, Issuer: "https://node1"}, nil
	case "tok-org3":
		return &Identity{Kind: KindToken, Org: "org3", Subject: "old", Roles: system.RoleRead, Issuer: "https://node1"}, nil
	}
	return nil, &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Msg: "token expired at 2026-01-01T00:00:00Z"}
}

// fakeClock is a clock tests move.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// seen is what the handler behind the middleware saw.
type seen struct {
	mu    sync.Mutex
	id    *Identity
	calls int
}

func (s *seen) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.id = FromContext(r.Context())
		s.calls++
		s.mu.Unlock()
		io.Copy(io.Discard, r.Body)
		e := EntryOf(r.Context())
		e.What = "eth_blockNumber"
		if r.URL.Path == "/private" {
			e.Private = true
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":"0x1"}`))
	})
}

func (s *seen) identity() (*Identity, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id, s.calls
}

type harness struct {
	h       http.Handler
	seen    *seen
	log     *bytes.Buffer
	logMu   *sync.Mutex
	private *[]AccessRecord
	reg     *prometheus.Registry
	clock   *fakeClock
}

// lockedBuffer is a goroutine-safe log sink.
type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func newHarness(t *testing.T, edit func(*MiddlewareConfig)) *harness {
	t.Helper()
	hs := &harness{seen: &seen{}, log: &bytes.Buffer{}, logMu: &sync.Mutex{}, private: &[]AccessRecord{},
		reg: prometheus.NewRegistry(), clock: newClock()}
	var privMu sync.Mutex
	alog, err := OpenAccessLog(AccessLogConfig{Writer: lockedBuffer{hs.logMu, hs.log}, Private: func(r AccessRecord) {
		privMu.Lock()
		defer privMu.Unlock()
		*hs.private = append(*hs.private, r)
	}})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := NewLimiter(LimitConfig{Default: Limit{Rate: 100, Burst: 200}, Now: hs.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	cfg := MiddlewareConfig{
		Bearer:    fakeBearer,
		OrgActive: func(org string) bool { return org != "org3" },
		Limits:    lim,
		Log:       alog,
		Metrics:   hs.reg,
		Open:      []string{"/oauth/", "/.well-known/", "/healthz"},
		Now:       hs.clock.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	hs.h = Middleware(hs.seen.handler(), cfg)
	return hs
}

func (hs *harness) lines(t *testing.T) []map[string]any {
	t.Helper()
	hs.logMu.Lock()
	defer hs.logMu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(hs.log.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("access log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func rpcBody() *strings.Reader {
	return strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"eth_blockNumber","params":[]}`)
}

type rpcErrorBody struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestMiddleware(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edit     func(*MiddlewareConfig)
		method   string
		path     string
		header   map[string]string
		status   int
		served   bool
		who      string // the identity the handler saw (Name)
		roles    system.Role
		rpcCode  int    // JSON-RPC error code in the body (0: not a JSON-RPC error)
		problem  bool   // an RFC 9457 problem body
		contains string // in the error message
		www      string // in WWW-Authenticate ("" : no header)
		result   string // the access log's result
	}{
		{name: "valid token", method: "POST", path: "/", header: map[string]string{"Authorization": "Bearer " + secretToken},
			status: 200, served: true, who: "org1/app", roles: system.RoleRead | system.RoleWrite, result: "ok"},
		{name: "scheme is case-insensitive", method: "POST", path: "/", header: map[string]string{"Authorization": "bearer " + secretToken},
			status: 200, served: true, who: "org1/app", roles: system.RoleRead | system.RoleWrite, result: "ok"},
		{name: "invalid token, JSON-RPC", method: "POST", path: "/", header: map[string]string{"Authorization": "Bearer nope"},
			status: 401, rpcCode: -32001, contains: "token expired",
			www: `Bearer realm="charter", error="invalid_token", error_description="token expired at 2026-01-01T00:00:00Z"`, result: "unauthenticated"},
		{name: "invalid token, REST", method: "GET", path: "/api/v1/blocks/latest", header: map[string]string{"Authorization": "Bearer nope"},
			status: 401, problem: true, contains: "token expired", www: `error="invalid_token"`, result: "unauthenticated"},
		{name: "POST under /api is REST", method: "POST", path: "/api/v1/tx", header: map[string]string{"Authorization": "Bearer nope"},
			status: 401, problem: true, contains: "token expired", www: `error="invalid_token"`, result: "unauthenticated"},
		{name: "other scheme", method: "POST", path: "/", header: map[string]string{"Authorization": "Basic dXNlcjpwdw=="},
			status: 401, rpcCode: -32001, contains: `scheme "Basic" is not supported`, www: `error="invalid_request"`, result: "unauthenticated"},
		{name: "no token verifier", edit: func(c *MiddlewareConfig) { c.Bearer = nil }, method: "POST", path: "/",
			header: map[string]string{"Authorization": "Bearer " + secretToken},
			status: 401, rpcCode: -32001, contains: "bearer tokens are not accepted by this node", www: `error="invalid_token"`, result: "unauthenticated"},
		{name: "no credential, required", edit: func(c *MiddlewareConfig) { c.Required = true }, method: "POST", path: "/",
			status: 401, rpcCode: -32001, contains: "authentication required", www: `Bearer realm="charter"`, result: "unauthenticated"},
		{name: "no credential, required, anonymous may read", edit: func(c *MiddlewareConfig) { c.Required, c.Anonymous = true, system.RoleRead },
			method: "POST", path: "/", status: 200, served: true, who: "anonymous", roles: system.RoleRead, result: "ok"},
		{name: "no credential, not required", method: "POST", path: "/", status: 200, served: true, who: "anonymous", result: "ok"},
		{name: "exited organization", method: "POST", path: "/", header: map[string]string{"Authorization": "Bearer tok-org3"},
			status: 403, rpcCode: -32001, contains: "organization org3 is not an active member", result: "denied"},
		{name: "open path ignores credentials", edit: func(c *MiddlewareConfig) { c.Required = true }, method: "POST", path: "/oauth/token",
			header: map[string]string{"Authorization": "Bearer nope"}, status: 200, served: true, who: "anonymous", result: "ok"},
		{name: "CORS preflight", edit: func(c *MiddlewareConfig) { c.Required = true }, method: "OPTIONS", path: "/",
			header: map[string]string{"Access-Control-Request-Method": "POST", "Origin": "https://console.example"},
			status: 200, served: true, who: "anonymous", result: "ok"},
		{name: "OPTIONS without preflight headers", edit: func(c *MiddlewareConfig) { c.Required = true }, method: "OPTIONS", path: "/",
			status: 401, problem: true, contains: "authentication required", www: `Bearer realm="charter"`, result: "unauthenticated"},
		{name: "access_token only on WebSocket upgrades", edit: func(c *MiddlewareConfig) { c.Required = true }, method: "POST",
			path: "/?access_token=" + secretToken, status: 401, rpcCode: -32001, contains: "authentication required", www: `Bearer realm="charter"`, result: "unauthenticated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, tc.edit)
			r := httptest.NewRequest(tc.method, tc.path, rpcBody())
			r.RemoteAddr = "127.0.0.1:5555"
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			hs.h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (body %s)", w.Code, tc.status, w.Body)
			}
			id, calls := hs.seen.identity()
			if served := calls > 0; served != tc.served {
				t.Fatalf("served %v, want %v", served, tc.served)
			}
			if tc.served {
				if id == nil || id.Name() != tc.who || id.Roles != tc.roles {
					t.Fatalf("handler saw %+v, want %s with %s", id, tc.who, tc.roles)
				}
			}
			if got := w.Header().Get("WWW-Authenticate"); (tc.www == "") != (got == "") || !strings.Contains(got, tc.www) {
				t.Fatalf("WWW-Authenticate %q, want it to hold %q", got, tc.www)
			}
			switch {
			case tc.rpcCode != 0:
				var e rpcErrorBody
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
					t.Fatalf("body %s: %v", w.Body, err)
				}
				if e.JSONRPC != "2.0" || string(e.ID) != "null" || e.Error.Code != tc.rpcCode || !strings.Contains(e.Error.Message, tc.contains) {
					t.Fatalf("JSON-RPC error %s, want code %d with %q", w.Body, tc.rpcCode, tc.contains)
				}
			case tc.problem:
				var p struct {
					Status int    `json:"status"`
					Detail string `json:"detail"`
				}
				if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
					t.Fatalf("Content-Type %q", ct)
				}
				if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != tc.status || !strings.Contains(p.Detail, tc.contains) {
					t.Fatalf("problem %s (%v), want status %d with %q", w.Body, err, tc.status, tc.contains)
				}
			}
			lines := hs.lines(t)
			if len(lines) != 1 {
				t.Fatalf("%d access-log lines, want 1", len(lines))
			}
			if lines[0]["result"] != tc.result {
				t.Fatalf("access log result %v, want %s", lines[0]["result"], tc.result)
			}
			hs.logMu.Lock()
			text := hs.log.String()
			hs.logMu.Unlock()
			if strings.Contains(text, secretToken) || strings.Contains(text, "access_token") {
				t.Fatalf("access log holds the token: %s", text)
			}
		})
	}
}

func TestMiddlewareRateLimit(t *testing.T) {
	hs := newHarness(t, func(c *MiddlewareConfig) {
		lim, err := NewLimiter(LimitConfig{Default: Limit{Rate: 100, Burst: 200}, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		c.Limits = lim
	})
	do := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/", rpcBody())
		r.Header.Set("Authorization", "Bearer "+secretToken)
		w := httptest.NewRecorder()
		hs.h.ServeHTTP(w, r)
		return w
	}
	for i := range 200 {
		if w := do(); w.Code != 200 {
			t.Fatalf("request %d of the burst: status %d", i, w.Code)
		}
	}
	w := do()
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("request 201: status %d, want 429", w.Code)
	}
	if ra := w.Header().Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After %q, want 1", ra)
	}
	var e rpcErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	const want = "rate limit exceeded: org1/app may make 100 requests per second (burst 200); retry in 1s"
	if e.Error.Code != -32005 || e.Error.Message != want || string(e.ID) != "null" {
		t.Fatalf("body %s, want -32005 %q", w.Body, want)
	}
	// Another caller is not held up by this one's bucket.
	r := httptest.NewRequest("POST", "/", rpcBody())
	r.Header.Set("Authorization", "Bearer tok-org2")
	w2 := httptest.NewRecorder()
	hs.h.ServeHTTP(w2, r)
	if w2.Code != 200 {
		t.Fatalf("another caller: status %d", w2.Code)
	}
	// 10 ms later one token is back.
	hs.clock.Add(10 * time.Millisecond)
	if w := do(); w.Code != 200 {
		t.Fatalf("after the refill: status %d", w.Code)
	}
	lines := hs.lines(t)
	if len(lines) != 203 {
		t.Fatalf("%d access-log lines, want 203", len(lines))
	}
	if lines[200]["result"] != "limited" || lines[200]["status"] != float64(429) {
		t.Fatalf("line of the refused request: %v", lines[200])
	}
	if got := counter(t, hs.reg, "charter_api_requests_total", map[string]string{"org": "org1", "kind": "token", "result": "limited"}); got != 1 {
		t.Fatalf("limited requests counted %v, want 1", got)
	}
	if got := counter(t, hs.reg, "charter_api_requests_total", map[string]string{"org": "org1", "kind": "token", "result": "ok"}); got != 201 {
		t.Fatalf("ok requests counted %v, want 201", got)
	}
	if got := counter(t, hs.reg, "charter_api_limited_total", map[string]string{"org": "org1", "limit": "rate"}); got != 1 {
		t.Fatalf("charter_api_limited_total %v, want 1", got)
	}
}

// counter reads one series of a counter vector from reg.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestMiddlewareAnonymousLimitedByAddress(t *testing.T) {
	hs := newHarness(t, func(c *MiddlewareConfig) {
		lim, err := NewLimiter(LimitConfig{Default: Limit{Rate: 1, Burst: 1}, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		c.Limits = lim
		c.Anonymous = system.RoleRead
	})
	do := func(remote string) int {
		r := httptest.NewRequest("GET", "/api/v1/blocks/latest", nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		hs.h.ServeHTTP(w, r)
		return w.Code
	}
	if do("10.0.0.1:1000") != 200 || do("10.0.0.2:1000") != 200 {
		t.Fatal("first requests of two addresses refused")
	}
	if got := do("10.0.0.1:2000"); got != 429 {
		t.Fatalf("second request of one address (another port): %d, want 429", got)
	}
	// One IPv6 client holds a /64.
	if do("[2001:db8::1]:1") != 200 {
		t.Fatal("IPv6 first request refused")
	}
	if got := do("[2001:db8::2]:1"); got != 429 {
		t.Fatalf("another address of the same /64: %d, want 429", got)
	}
	// Open paths are not limited.
	for range 3 {
		if got := do("10.0.0.1:3000"); got != 429 {
			t.Fatalf("limited address: %d", got)
		}
		r := httptest.NewRequest("GET", "/healthz", nil)
		r.RemoteAddr = "10.0.0.1:3000"
		w := httptest.NewRecorder()
		hs.h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("/healthz of a limited address: %d", w.Code)
		}
	}
}

func TestMiddlewareWebSocketAccessToken(t *testing.T) {
	var got struct {
		sync.Mutex
		id *Identity
	}
	done := make(chan struct{})
	ws := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Lock()
		got.id = FromContext(r.Context())
		got.Unlock()
		up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		defer c.Close()
		defer close(done)
		_, msg, err := c.ReadMessage()
		if err == nil {
			c.WriteMessage(websocket.TextMessage, msg)
		}
		EntryOf(r.Context()).What = "eth_subscribe"
	})
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	alog, err := OpenAccessLog(AccessLogConfig{Writer: lockedBuffer{&logMu, &logBuf}})
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan struct{}, 4)
	h := Middleware(ws, MiddlewareConfig{Bearer: fakeBearer, Required: true, Log: alog})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		written <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	// A bad token in the query: 401 at the upgrade.
	_, resp, err := websocket.DefaultDialer.Dial(url+"/?access_token=nope", nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("bad access_token: err %v, response %v; want 401", err, resp)
	}
	if www := resp.Header.Get("WWW-Authenticate"); !strings.Contains(www, `error="invalid_token"`) {
		t.Fatalf("WWW-Authenticate %q", www)
	}
	<-written

	c, _, err := websocket.DefaultDialer.Dial(url+"/?access_token="+secretToken+"&x=1", nil)
	if err != nil {
		t.Fatalf("upgrade with access_token: %v", err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"ping":1}`)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != `{"ping":1}` {
		t.Fatalf("echo: %q, %v", msg, err)
	}
	c.Close()
	<-done
	<-written
	got.Lock()
	id := got.id
	got.Unlock()
	if id.Name() != "org1/app" || id.Kind != KindToken {
		t.Fatalf("WebSocket caller %+v, want org1/app by token", id)
	}
	logMu.Lock()
	text := logBuf.String()
	logMu.Unlock()
	if strings.Contains(text, secretToken) || strings.Contains(text, "access_token") {
		t.Fatalf("access log holds the token: %s", text)
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d access-log lines, want 2:\n%s", len(lines), text)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["who"] != "org1/app" || rec["status"] != float64(101) || rec["path"] != "/?x=1" || rec["what"] != "eth_subscribe" {
		t.Fatalf("WebSocket access-log line %v", rec)
	}
}

func TestAccessLogRecord(t *testing.T) {
	hs := newHarness(t, nil)
	r := httptest.NewRequest("POST", "/private?fmt=1&client_secret=s3&Access_Token=zz", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"priv_call"}`))
	r.RemoteAddr = "127.0.0.1:4242"
	r.Header.Set("Authorization", "Bearer "+secretToken)
	w := httptest.NewRecorder()
	hs.h.ServeHTTP(w, r)
	lines := hs.lines(t)
	if len(lines) != 1 {
		t.Fatalf("%d lines", len(lines))
	}
	l := lines[0]
	want := map[string]any{"who": "org1/app", "org": "org1", "kind": "token", "remote": "127.0.0.1:4242", "method": "POST",
		"path": "/private?fmt=1", "what": "eth_blockNumber", "result": "ok", "status": float64(200),
		"bytes_in": float64(45), "bytes_out": float64(39), "private": true, "msg": "request"}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("%s = %v, want %v", k, l[k], v)
		}
	}
	if _, ok := l["level"]; ok {
		t.Errorf("a level in %v", l)
	}
	if len(*hs.private) != 1 || (*hs.private)[0].Who != "org1/app" || (*hs.private)[0].What != "eth_blockNumber" {
		t.Fatalf("private sink got %+v", *hs.private)
	}
	hs.logMu.Lock()
	defer hs.logMu.Unlock()
	for _, s := range []string{secretToken, "s3", "zz", "Authorization"} {
		if strings.Contains(hs.log.String(), s) {
			t.Errorf("access log holds %q: %s", s, hs.log)
		}
	}
}

func TestAccessLogOfAPanickingHandler(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	alog, err := OpenAccessLog(AccessLogConfig{Writer: lockedBuffer{&mu, &buf}})
	if err != nil {
		t.Fatal(err)
	}
	h := Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }),
		MiddlewareConfig{Bearer: fakeBearer, Log: alog})
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", "Bearer "+secretToken)
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Fatalf("recovered %v, want the handler's panic", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), r)
	}()
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("line %q: %v", buf.String(), err)
	}
	if rec["status"] != float64(500) || rec["who"] != "org1/app" || rec["result"] != "status 500" {
		t.Fatalf("line %v", rec)
	}
}

func TestAllowOrg(t *testing.T) {
	id := &Identity{Kind: KindToken, Org: "org1", Subject: "app", Roles: system.RoleRead}
	if err := AllowOrg(id, "priv_call", "org1"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   *Identity
		org  string
		want string
	}{
		{&Identity{Kind: KindToken, Org: "org2", Subject: "svc"}, "org1", "not permitted: priv_call is served to organization org1 only, the node's (caller org2/svc)"},
		{id, "", "not permitted: priv_call needs the node's organization, which is not configured (caller org1/app)"},
		{&Identity{Kind: KindAnonymous}, "org1", "(caller anonymous)"},
		{nil, "org1", "(caller anonymous)"},
	} {
		err := AllowOrg(tc.id, "priv_call", tc.org)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AllowOrg(%v, %q) = %v, want %q", tc.id, tc.org, err, tc.want)
		}
	}
}

func TestAdmitWithoutMiddleware(t *testing.T) {
	if err := Admit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAdmitCountsAgainstTheCallersBucket(t *testing.T) {
	clock := newClock()
	lim, err := NewLimiter(LimitConfig{Default: Limit{Rate: 1, Burst: 2}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var admits []error
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 2 {
			admits = append(admits, Admit(r.Context()))
		}
	}), MiddlewareConfig{Bearer: fakeBearer, Limits: lim, Now: clock.Now})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+secretToken)
	h.ServeHTTP(httptest.NewRecorder(), r)
	// The request took one token, the first message the second.
	if len(admits) != 2 || admits[0] != nil {
		t.Fatalf("admits %v", admits)
	}
	var le *LimitError
	if le, _ = admits[1].(*LimitError); le == nil || le.Who != "org1/app" {
		t.Fatalf("second message: %v, want a limit of org1/app", admits[1])
	}
}

// A flood of forged tokens from one address is refused before the tokens
// are verified once the address's budget of refused credentials is spent;
// other addresses and the address without a credential are not affected,
// and the budget comes back with time.
func TestFailedCredentialsAreBoundedPerAddress(t *testing.T) {
	var verified int
	var mu sync.Mutex
	hs := newHarness(t, func(c *MiddlewareConfig) {
		c.Bearer = func(ctx context.Context, raw string) (*Identity, error) {
			mu.Lock()
			verified++
			mu.Unlock()
			return fakeBearer(ctx, raw)
		}
		c.Anonymous = system.RoleRead
	})
	send := func(remote, token string) int {
		req := httptest.NewRequest(http.MethodPost, "/", rpcBody())
		req.RemoteAddr = remote
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		return rec.Code
	}
	burst := DefaultFailedCredentials.Burst
	for i := 0; i < burst; i++ {
		if code := send("198.51.100.7:4000", "forged"); code != http.StatusUnauthorized {
			t.Fatalf("forged token %d: %d, want 401", i, code)
		}
	}
	for i := 0; i < 20; i++ {
		if code := send("198.51.100.7:4001", "forged"); code != http.StatusTooManyRequests {
			t.Fatalf("forged token past the budget: %d, want 429", code)
		}
	}
	mu.Lock()
	if verified != burst {
		t.Fatalf("%d tokens verified, want %d: refused ones must not be checked", verified, burst)
	}
	mu.Unlock()
	if code := send("198.51.100.8:4000", secretToken); code != http.StatusOK {
		t.Fatalf("another address with a good token: %d", code)
	}
	if code := send("198.51.100.7:4002", ""); code != http.StatusOK {
		t.Fatalf("the flooding address without a credential (anonymous read): %d", code)
	}
	hs.clock.Add(2 * time.Second)
	if code := send("198.51.100.7:4003", secretToken); code != http.StatusOK {
		t.Fatalf("a good token from the address once its budget came back: %d", code)
	}
}
