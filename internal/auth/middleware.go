package auth

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/charter-ledger/charter/internal/system"
)

// MiddlewareConfig is what Middleware needs to know who calls.
type MiddlewareConfig struct {
	// Bearer verifies a bearer token (the raw text after "Bearer ") and
	// returns its caller, or an error: an *Error says the status (401 or
	// 403) and the OAuth2 code, any other error is a 401 invalid_token
	// with its text. Nil: bearer tokens are refused (401).
	Bearer func(ctx context.Context, raw string) (*Identity, error)
	// Certs identifies callers by their TLS client certificate
	// (a *CertAuthenticator). Nil: client certificates are ignored (the
	// caller is anonymous unless it sends a token).
	Certs Authenticator
	// Anonymous are the roles of a caller without credential (the
	// network's policy: none on an init network).
	Anonymous system.Role
	// Required refuses (401) a request without credential when Anonymous
	// grants nothing, rather than letting every method deny it.
	Required bool
	// OrgActive tells whether an organization is an active member (the
	// registry at the head); a credential of any other organization is
	// refused (403). Nil: every organization is.
	OrgActive func(org string) bool
	// Limits rate-limits callers (nil: no limit).
	Limits *Limiter
	// FailedCredentials bounds the refused credentials (bad, expired or
	// revoked tokens and certificates) per client address: once its
	// budget is spent, a request with a credential from that address is
	// refused (429) before the credential is verified, so a flood of
	// forged tokens costs no signature checks. Nil:
	// DefaultFailedCredentials.
	FailedCredentials *Limiter
	// Log receives one record per request (nil: none).
	Log *AccessLog
	// Metrics registers the client API's counters (nil: none).
	Metrics prometheus.Registerer
	// Open are path prefixes served without authentication (/oauth/,
	// /.well-known/, /healthz): their handlers see the anonymous identity,
	// no rate limit applies (the issuer has its own), and the access log
	// still names them. Browsers' CORS preflights (OPTIONS with
	// Access-Control-Request-Method) are served so on every path.
	Open []string
	// Now is the clock of the access log's times and durations (default
	// time.Now).
	Now func() time.Time
}

// JSON-RPC error codes the middleware answers with.
const (
	CodeUnauthenticated = -32001 // no valid credential, or one that may not be used
	CodeDenied          = -32003 // the caller lacks a role or is of another organization
	CodeLimited         = -32005 // rate limit or quota (EIP-1474 "limit exceeded")
)

// Middleware authenticates every request to next once: with a bearer token
// (Authorization: Bearer, or for a WebSocket upgrade alone, which browsers
// cannot give headers, an access_token query parameter), else with the TLS
// client certificate, else as anonymous. It refuses bad credentials (401,
// with a WWW-Authenticate challenge per RFC 6750), credentials of
// organizations that are not active members (403) and callers over their
// rate limit (429, Retry-After); it puts the Identity and a fresh Entry
// into the request's context for the handlers, and writes one access-log
// record when next returns.
//
// Refusals answer a JSON-RPC request (a POST outside /api/) with a JSON-RPC
// error object (id null: codes CodeUnauthenticated, CodeLimited), so that
// Ethereum libraries show the message; any other request with an RFC 9457
// problem (application/problem+json).
func Middleware(next http.Handler, cfg MiddlewareConfig) http.Handler {
	m := &middleware{next: next, cfg: cfg, metrics: newMetrics(cfg.Metrics), now: cfg.Now}
	if m.now == nil {
		m.now = time.Now
	}
	m.anonymous = &Identity{Kind: KindAnonymous, Roles: cfg.Anonymous}
	m.failed = cfg.FailedCredentials
	if m.failed == nil {
		m.failed, _ = NewLimiter(LimitConfig{Default: DefaultFailedCredentials, MaxKeys: 10_000, Now: cfg.Now})
	}
	return m
}

// DefaultFailedCredentials is the budget of refused credentials of one
// client address (IPv4 address or IPv6 /64): 50 at once, then 5 per
// second.
var DefaultFailedCredentials = Limit{Rate: 5, Burst: 50}

type middleware struct {
	next      http.Handler
	cfg       MiddlewareConfig
	metrics   *metrics
	now       func() time.Time
	anonymous *Identity
	failed    *Limiter // refused credentials per client address
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := m.now()
	entry := &Entry{}
	rw := &responseWriter{ResponseWriter: w}
	body := &countingBody{ReadCloser: r.Body}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = body
	}
	var who caller
	defer func() {
		// Also when the handler panics (the server recovers it): the
		// line is written, then the panic goes on.
		p := recover()
		status := rw.status
		switch {
		case p != nil && status == 0:
			status = http.StatusInternalServerError
		case status == 0:
			status = http.StatusOK
		}
		m.finish(r, entry, who.id, who.kind, status, start, body.n, rw.n)
		if p != nil {
			panic(p)
		}
	}()
	m.serve(rw, r, entry, &who)
}

// caller is who sent a request, as far as it is known: the identity (nil
// when refused before it was known) and, when refused for its credential,
// the kind of credential presented.
type caller struct {
	id   *Identity
	kind Kind
}

// finish counts a request and writes its access-log line.
func (m *middleware) finish(r *http.Request, entry *Entry, id *Identity, kind Kind, status int, start time.Time, in, out int64) {
	if kind == "" && id != nil {
		kind = id.Kind
	}
	result := entry.Result
	if result == "" {
		result = resultOf(status)
	}
	m.metrics.request(id, kind, metricResult(result, status))
	if m.cfg.Log == nil {
		return
	}
	rec := AccessRecord{
		Time: start, Who: "anonymous", Kind: kind, Remote: r.RemoteAddr, Method: r.Method,
		Path: logPath(r.URL), What: entry.What, Result: result, Status: status,
		BytesIn: in, BytesOut: out, Duration: m.now().Sub(start), Private: entry.Private,
	}
	if id != nil {
		rec.Who, rec.Org = id.Name(), id.Org
	}
	m.cfg.Log.Write(rec)
}

// serve authenticates r and runs next, or refuses it. It notes the
// caller in who as soon as it is known.
func (m *middleware) serve(w http.ResponseWriter, r *http.Request, entry *Entry, who *caller) {
	if m.open(r.URL.Path) || isPreflight(r) {
		who.id = m.anonymous
		ctx := WithEntry(NewContext(r.Context(), m.anonymous), entry)
		m.next.ServeHTTP(w, r.WithContext(ctx))
		return
	}
	failKey := "refused credentials from " + clientNet(r.RemoteAddr)
	if presentsCredential(r) {
		if err := m.failed.Check(failKey, ""); err != nil {
			entry.Result = ResultLimited
			refuseLimit(w, r, err.(*LimitError))
			return
		}
	}
	id, kind, err := m.authenticate(r)
	who.id = id
	if err != nil {
		m.failed.Allow(failKey, "")
		who.kind = kind
		entry.Result = ResultUnauthenticated
		var ae *Error
		if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
			entry.Result = ResultDenied
		}
		m.refuseCredential(w, r, err, kind)
		return
	}
	if id.Kind == KindAnonymous && m.cfg.Required && id.Roles == 0 {
		entry.Result = ResultUnauthenticated
		m.refuseCredential(w, r, nil, KindAnonymous)
		return
	}
	if m.cfg.Limits != nil {
		if err := m.cfg.Limits.Allow(limitKey(id, r.RemoteAddr), id.Org); err != nil {
			entry.Result = ResultLimited
			le := err.(*LimitError)
			m.metrics.limit(id.Org, le)
			refuseLimit(w, r, le)
			return
		}
	}
	ctx := NewContext(r.Context(), id)
	ctx = WithEntry(ctx, entry)
	ctx = context.WithValue(ctx, admitKey{}, &admission{m: m, id: id, remote: r.RemoteAddr})
	m.next.ServeHTTP(w, r.WithContext(ctx))
}

// presentsCredential tells whether r carries a token or a client
// certificate for authenticate to verify.
func presentsCredential(r *http.Request) bool {
	return r.Header.Get("Authorization") != "" || r.URL.Query().Has("access_token") ||
		(r.TLS != nil && len(r.TLS.PeerCertificates) > 0)
}

// isPreflight tells whether r is a browser's CORS preflight, which never
// carries credentials: the handler answers it (with the origins it
// allows), as on an open path.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}

func (m *middleware) open(path string) bool {
	for _, p := range m.cfg.Open {
		if p != "" && strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// authenticate finds r's caller. On an error it also returns the kind of
// the credential refused, and the caller when it is known (a valid
// credential of an organization that is not an active member).
func (m *middleware) authenticate(r *http.Request) (*Identity, Kind, error) {
	raw, hasToken, err := bearerToken(r)
	if err != nil {
		return nil, KindToken, err
	}
	var id *Identity
	var kind Kind
	start := m.now()
	switch {
	case hasToken:
		kind = KindToken
		if m.cfg.Bearer == nil {
			return nil, kind, &Error{Status: http.StatusUnauthorized, Code: "invalid_token",
				Msg: "bearer tokens are not accepted by this node (no token issuer is configured); use a client certificate"}
		}
		id, err = m.cfg.Bearer(r.Context(), raw)
		if err == nil && (id == nil || id.Kind != KindToken) {
			err = errors.New("token verifier returned no token identity")
		}
	case m.cfg.Certs != nil && r.TLS != nil && len(r.TLS.PeerCertificates) > 0:
		kind = KindCertificate
		id, err = m.cfg.Certs.Authenticate(r)
		if err == nil && (id == nil || id.Kind != KindCertificate) {
			err = errors.New("certificate authenticator returned no certificate identity")
		}
	default:
		return m.anonymous, KindAnonymous, nil
	}
	m.metrics.authenticated(kind, m.now().Sub(start))
	if err != nil {
		return nil, kind, err
	}
	if m.cfg.OrgActive != nil && !m.cfg.OrgActive(id.Org) {
		// The caller is known: the access log names it.
		return id, kind, &Error{Status: http.StatusForbidden, Code: "invalid_token", Msg: inactiveOrg(id.Org)}
	}
	return id, kind, nil
}

// bearerToken finds a bearer token: the Authorization header, or for a
// WebSocket upgrade the access_token query parameter. hasToken is false
// when there is none; an Authorization header of another scheme, or a
// token given twice, is an error.
func bearerToken(r *http.Request) (raw string, hasToken bool, err error) {
	bad := func(msg string) (string, bool, error) {
		return "", true, &Error{Status: http.StatusUnauthorized, Code: "invalid_request", Msg: msg}
	}
	if vals := r.Header.Values("Authorization"); len(vals) > 0 {
		if len(vals) > 1 {
			return bad("more than one Authorization header")
		}
		scheme, tok, _ := strings.Cut(strings.TrimSpace(vals[0]), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return bad(fmt.Sprintf("Authorization scheme %q is not supported: send \"Authorization: Bearer TOKEN\"", scheme))
		}
		if tok = strings.TrimSpace(tok); tok == "" {
			return bad("empty bearer token")
		}
		if isWebSocket(r) && r.URL.Query().Has("access_token") {
			return bad("access token given both in the Authorization header and the query")
		}
		return tok, true, nil
	}
	if isWebSocket(r) {
		q := r.URL.Query()
		switch toks := q["access_token"]; {
		case len(toks) > 1:
			return bad("more than one access_token parameter")
		case len(toks) == 1 && toks[0] == "":
			return bad("empty access_token parameter")
		case len(toks) == 1:
			return toks[0], true, nil
		}
	}
	return "", false, nil
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// isJSONRPC tells whether r looks like a JSON-RPC call: a POST outside the
// REST gateway's /api/.
func isJSONRPC(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path != "/api" && !strings.HasPrefix(r.URL.Path, "/api/")
}

// refuseCredential answers 401 (or the *Error's 403) for err (nil: no
// credential where one is required).
func (m *middleware) refuseCredential(w http.ResponseWriter, r *http.Request, err error, kind Kind) {
	status, code := http.StatusUnauthorized, "invalid_token"
	var msg string
	var ae *Error
	switch {
	case err == nil:
		msg = "authentication required: send a bearer token (Authorization: Bearer TOKEN) or a client certificate"
		code = ""
	case errors.As(err, &ae):
		if ae.Status == http.StatusForbidden {
			status = http.StatusForbidden
		}
		if ae.Code != "" {
			code = ae.Code
		}
		msg = ae.Msg
	default:
		msg = err.Error()
	}
	msg = oneLine(msg)
	if status == http.StatusUnauthorized {
		// RFC 6750 §3: no error code when no credential was presented; the
		// Bearer challenge's codes are for tokens.
		challenge := `Bearer realm="charter"`
		if code != "" && kind == KindToken {
			challenge += `, error="` + code + `", error_description="` + quoteSafe(msg) + `"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	writeRefusal(w, r, status, CodeUnauthenticated, msg)
}

func refuseLimit(w http.ResponseWriter, r *http.Request, e *LimitError) {
	w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfterSeconds()))
	writeRefusal(w, r, http.StatusTooManyRequests, CodeLimited, e.Error())
}

// writeRefusal writes a JSON-RPC error object or a problem document.
func writeRefusal(w http.ResponseWriter, r *http.Request, status, rpcCode int, msg string) {
	var body []byte
	if isJSONRPC(r) {
		w.Header().Set("Content-Type", "application/json")
		body, _ = json.Marshal(struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Error   struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}{rpcCode, msg}})
	} else {
		w.Header().Set("Content-Type", "application/problem+json")
		body, _ = json.Marshal(struct {
			Type   string `json:"type"`
			Title  string `json:"title"`
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}{"about:blank", http.StatusText(status), status, msg})
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// quoteSafe makes s fit in a quoted-string of a header: RFC 6750 allows
// %x20-21 / %x23-5B / %x5D-7E in error_description.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '\''
		}
		return r
	}, s)
}

// resultOf is the result of a request whose handler noted none.
func resultOf(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return ResultUnauthenticated
	case status == http.StatusForbidden:
		return ResultDenied
	case status == http.StatusTooManyRequests:
		return ResultLimited
	case status >= 400:
		return "status " + strconv.Itoa(status)
	}
	return ResultOK
}

// metricResult sorts a result into the metrics' four (a result may add
// detail after its name: "denied (2 messages)").
func metricResult(result string, status int) string {
	for _, r := range []string{ResultDenied, ResultUnauthenticated, ResultLimited} {
		if strings.HasPrefix(result, r) {
			return r
		}
	}
	switch status {
	case http.StatusUnauthorized:
		return ResultUnauthenticated
	case http.StatusForbidden:
		return ResultDenied
	case http.StatusTooManyRequests:
		return ResultLimited
	}
	return ResultOK
}

// ---- what handlers behind the middleware use ----

type admitKey struct{}

// admission is what Admit needs of a request's middleware.
type admission struct {
	m      *middleware
	id     *Identity
	remote string
}

// Admit counts one more request of ctx's caller against its rate limit:
// a connection that carries many requests (a WebSocket, whose upgrade
// alone passed the middleware) calls it for each message. It returns nil,
// or the *LimitError to answer with. Without the middleware, or without
// limits, it always returns nil.
func Admit(ctx context.Context) error {
	a, ok := ctx.Value(admitKey{}).(*admission)
	if !ok || a.m.cfg.Limits == nil {
		return nil
	}
	err := a.m.cfg.Limits.Allow(limitKey(a.id, a.remote), a.id.Org)
	if err != nil {
		a.m.metrics.limit(a.id.Org, err.(*LimitError))
	}
	return err
}

// OrgDenied is the error of a caller of another organization than the
// node's asking for what only the node's own organization may have
// (private transactions, the node's keys). Its message names both:
// "not permitted: priv_call is served to organization org1 only, the
// node's (caller org2/app)".
type OrgDenied struct {
	What string // method or route
	Org  string // the node's organization ("" when not configured)
	Who  *Identity
}

func (e *OrgDenied) Error() string {
	if e.Org == "" {
		return fmt.Sprintf("not permitted: %s needs the node's organization, which is not configured (caller %s)", e.What, e.Who.Name())
	}
	return fmt.Sprintf("not permitted: %s is served to organization %s only, the node's (caller %s)", e.What, e.Org, e.Who.Name())
}

// AllowOrg returns nil when id acts for organization org (the node's),
// and an *OrgDenied naming what otherwise. An empty org allows no one.
func AllowOrg(id *Identity, what, org string) error {
	if id != nil && org != "" && id.Kind != KindAnonymous && id.Org == org {
		return nil
	}
	return &OrgDenied{What: what, Org: org, Who: id}
}

// ---- the response and body wrappers ----

// responseWriter notes the status and counts the bytes of a response. It
// passes on Flush and Hijack (a WebSocket upgrade).
type responseWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *responseWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the response writer cannot be hijacked")
	}
	c, rw, err := h.Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}
