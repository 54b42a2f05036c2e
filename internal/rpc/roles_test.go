package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/gorilla/websocket"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/system"
)

// registeredMethods lists the methods go-ethereum's server serves from
// s's receivers, by the rules it registers them with (rpc/service.go):
// every exported method with at most one non-error result and an error,
// if any, last, named namespace_lowerCamel; a method taking a context
// first and returning a *Subscription and an error is a subscription,
// served by namespace_subscribe.
func registeredMethods(s *Server) []string {
	ctxType := reflect.TypeFor[context.Context]()
	errType := reflect.TypeFor[error]()
	subType := reflect.TypeFor[*gethrpc.Subscription]()
	var out []string
	for ns, api := range s.apis {
		typ := reflect.TypeOf(api)
		for i := range typ.NumMethod() {
			m := typ.Method(i)
			if !m.IsExported() {
				continue
			}
			ft := m.Type
			if ft.NumIn() >= 2 && ft.In(1) == ctxType && ft.NumOut() == 2 && ft.Out(0) == subType && ft.Out(1).Implements(errType) {
				out = append(out, ns+"_subscribe", ns+"_unsubscribe")
				continue
			}
			switch {
			case ft.NumOut() > 2:
				continue
			case ft.NumOut() == 2 && (ft.Out(0).Implements(errType) || !ft.Out(1).Implements(errType)):
				continue
			}
			out = append(out, ns+"_"+strings.ToLower(m.Name[:1])+m.Name[1:])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// A method cannot be served without a role: every method registered is
// in the table, and the table names nothing that is not served.
func TestRoleTableCoversEveryMethod(t *testing.T) {
	f := newFake(t)
	n := &privNet{f: f, reg: newPrivRegistry()}
	n.a = newFakePrivacy(t, f, n.reg, orgA)
	srv, err := NewServer(&privBackend{fakeBackend: f, p: n.a}, Config{}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	methods := registeredMethods(srv)
	if len(methods) < 70 {
		t.Fatalf("only %d methods found: %v", len(methods), methods)
	}
	for _, m := range methods {
		if _, ok := methodTable[m]; !ok {
			t.Errorf("%s is served but has no role in methodTable (roles.go)", m)
		}
	}
	served := append(slices.Clone(methods), "rpc_modules")
	for m := range methodTable {
		if !slices.Contains(served, m) {
			t.Errorf("methodTable lists %s, which is not served", m)
		}
	}

	// The listing is go-ethereum's: every method found answers something
	// other than "method not found" in process, where no role applies.
	c := gethrpc.DialInProc(srv.rpc)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out json.RawMessage
	rpcError(t, c.CallContext(ctx, &out, "eth_noSuchMethod"), -32601, "does not exist")
	for _, m := range methods {
		if strings.HasSuffix(m, "_subscribe") || strings.HasSuffix(m, "_unsubscribe") {
			continue // need a connection that keeps subscriptions
		}
		err := c.CallContext(ctx, &out, m)
		var e gethrpc.Error
		if errorsAs(err, &e) && e.ErrorCode() == -32601 {
			t.Errorf("%s: %v; the listing does not match what go-ethereum registers", m, err)
		}
	}
}

func errorsAs(err error, target *gethrpc.Error) bool {
	if err == nil {
		return false
	}
	e, ok := err.(gethrpc.Error)
	if ok {
		*target = e
	}
	return ok
}

// ---- a server behind the auth middleware ----

// Tokens of the fake verifier.
var testTokens = map[string]*auth.Identity{
	"reader": {Kind: auth.KindToken, Org: "org1", Subject: "reader", Roles: system.RoleRead},
	"writer": {Kind: auth.KindToken, Org: "org1", Subject: "writer", Roles: system.RoleRead | system.RoleWrite},
	"other":  {Kind: auth.KindToken, Org: "org2", Subject: "reader", Roles: system.RoleRead | system.RoleWrite},
	"none":   {Kind: auth.KindToken, Org: "org1", Subject: "none"},
}

func testBearer(_ context.Context, raw string) (*auth.Identity, error) {
	if id, ok := testTokens[raw]; ok {
		return id, nil
	}
	return nil, &auth.Error{Status: 401, Code: "invalid_token", Msg: "unknown token"}
}

type authServer struct {
	srv  *Server
	fake *fakeBackend
	url  string // http://127.0.0.1:port

	logMu sync.Mutex
	log   bytes.Buffer
}

func (a *authServer) Write(p []byte) (int, error) {
	a.logMu.Lock()
	defer a.logMu.Unlock()
	return a.log.Write(p)
}

// logLines are the access log's records so far.
func (a *authServer) logLines(t *testing.T) []map[string]any {
	t.Helper()
	a.logMu.Lock()
	defer a.logMu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(a.log.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// serveAuth serves b behind auth.Middleware (fake tokens, anonymous
// callers without roles) on 127.0.0.1.
func serveAuth(t *testing.T, b Backend, f *fakeBackend, cfg Config, edit func(*auth.MiddlewareConfig)) *authServer {
	t.Helper()
	srv, err := NewServer(b, cfg, func() int { return 3 }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a := &authServer{srv: srv, fake: f}
	alog, err := auth.OpenAccessLog(auth.AccessLogConfig{Writer: a})
	if err != nil {
		t.Fatal(err)
	}
	mc := auth.MiddlewareConfig{Bearer: testBearer, Log: alog}
	if edit != nil {
		edit(&mc)
	}
	hs := httptest.NewServer(auth.Middleware(srv.Handler(), mc))
	a.url = hs.URL
	t.Cleanup(func() {
		srv.Stop() // ends the WebSocket connections
		hs.Close()
	})
	return a
}

// post sends body with token ("": none) and returns the answer's body.
func (a *authServer) post(t *testing.T, token, body string) []byte {
	t.Helper()
	req, err := http.NewRequest("POST", a.url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, out)
	}
	return out
}

type answer struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeAnswer(t *testing.T, b []byte) answer {
	t.Helper()
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("answer %s: %v", b, err)
	}
	return a
}

func decodeBatch(t *testing.T, b []byte) []answer {
	t.Helper()
	var a []answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("batch answer %s: %v", b, err)
	}
	return a
}

// wantError checks an answer is error code with a message holding msg.
func wantError(t *testing.T, what string, a answer, id string, code int, msg string) {
	t.Helper()
	if a.Error == nil || a.Error.Code != code || !strings.Contains(a.Error.Message, msg) || string(a.ID) != id {
		t.Fatalf("%s: answer id %s %+v (result %s), want id %s error %d %q", what, a.ID, a.Error, a.Result, id, code, msg)
	}
}

func wantResult(t *testing.T, what string, a answer, id string) {
	t.Helper()
	if a.Error != nil || a.Result == nil || string(a.ID) != id {
		t.Fatalf("%s: answer id %s error %+v, want a result with id %s", what, a.ID, a.Error, id)
	}
}

func rawTx(t *testing.T, acct int, nonce uint64) string {
	t.Helper()
	b, err := signedTransfer(t, acct, nonce).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return hexutil.Encode(b)
}

func (f *fakeBackend) poolLen() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pool)
}

func TestRolesOverHTTP(t *testing.T) {
	f := newFake(t)
	a := serveAuth(t, f, f, Config{}, nil)
	send := func(id, raw string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"method":"eth_sendRawTransaction","params":["` + raw + `"]}`
	}
	const denied = "not permitted: eth_sendRawTransaction needs role write (caller org1/reader holds read)"

	wantResult(t, "reader, eth_blockNumber", decodeAnswer(t, a.post(t, "reader", `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}`)), "1")
	ans := decodeAnswer(t, a.post(t, "reader", send("2", rawTx(t, 1, 0))))
	wantError(t, "reader, eth_sendRawTransaction", ans, "2", -32003, denied)
	if ans.Error.Message != denied {
		t.Fatalf("message %q, want %q", ans.Error.Message, denied)
	}
	if f.poolLen() != 0 {
		t.Fatal("a denied transaction reached the pool")
	}
	wantError(t, "no roles", decodeAnswer(t, a.post(t, "none", `{"jsonrpc":"2.0","id":3,"method":"eth_chainId"}`)), "3", -32003,
		"not permitted: eth_chainId needs role read (caller org1/none holds none)")
	wantError(t, "anonymous", decodeAnswer(t, a.post(t, "", `{"jsonrpc":"2.0","id":3,"method":"eth_chainId"}`)), "3", -32003,
		"(caller anonymous holds none)")
	wantError(t, "unknown method", decodeAnswer(t, a.post(t, "reader", `{"jsonrpc":"2.0","id":4,"method":"eth_noSuch"}`)), "4", -32601, "does not exist")
	wantResult(t, "writer, eth_sendRawTransaction", decodeAnswer(t, a.post(t, "writer", send(`"w"`, rawTx(t, 1, 0)))), `"w"`)
	if f.poolLen() != 1 {
		t.Fatalf("pool holds %d transactions, want the writer's", f.poolLen())
	}

	// The server runs what was checked, however the request spells it.
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":5,"\u006dethod":"eth_sendRawTransaction","params":["` + rawTx(t, 2, 0) + `"]}`,
		`{"jsonrpc":"2.0","id":5,"method":"eth_blockNumber","method":"eth_sendRawTransaction","params":["` + rawTx(t, 2, 0) + `"]}`,
		`  {"jsonrpc":"2.0","id":5,"method":"eth_sendRawTransaction","params":["` + rawTx(t, 2, 0) + `"]}  `,
	} {
		wantError(t, body, decodeAnswer(t, a.post(t, "reader", body)), "5", -32003, "eth_sendRawTransaction needs role write")
	}
	for _, body := range []string{
		// A key in another case is not the method, for the check and the server alike.
		`{"jsonrpc":"2.0","id":6,"method":"eth_blockNumber","Method":"eth_sendRawTransaction","params":["` + rawTx(t, 2, 0) + `"]}`,
		// A method that is not a string is none.
		`{"jsonrpc":"2.0","id":6,"method":"eth_sendRawTransaction","method":7,"params":["` + rawTx(t, 2, 0) + `"]}`,
	} {
		a.post(t, "reader", body)
	}
	if f.poolLen() != 1 {
		t.Fatalf("pool holds %d transactions: a reader's got in", f.poolLen())
	}

	lines := a.logLines(t)
	last := lines[len(lines)-3]
	if last["what"] != "eth_sendRawTransaction" || last["result"] != "denied" || last["who"] != "org1/reader" {
		t.Fatalf("access log of a denied call: %v", last)
	}
	if lines[0]["what"] != "eth_blockNumber" || lines[0]["result"] != "ok" {
		t.Fatalf("access log of an allowed call: %v", lines[0])
	}
}

func TestRolesOverHTTPBatch(t *testing.T) {
	f := newFake(t)
	a := serveAuth(t, f, f, Config{}, nil)
	batch := `[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"},` +
		`{"jsonrpc":"2.0","id":2,"method":"eth_sendRawTransaction","params":["` + rawTx(t, 1, 0) + `"]},` +
		`{"jsonrpc":"2.0","method":"eth_sendRawTransaction","params":["` + rawTx(t, 2, 0) + `"]},` +
		`{"jsonrpc":"2.0","id":"x","method":"eth_chainId"},` +
		`{"jsonrpc":"2.0","id":4}]`

	got := decodeBatch(t, a.post(t, "reader", batch))
	if len(got) != 4 {
		t.Fatalf("%d answers, want 4 (the notification gets none): %+v", len(got), got)
	}
	const denied = "not permitted: eth_sendRawTransaction needs role write (caller org1/reader holds read)"
	wantError(t, "allowed call of a denied batch", got[0], "1", -32003, "not run: "+denied)
	wantError(t, "denied call", got[1], "2", -32003, denied)
	wantError(t, "allowed call of a denied batch", got[2], `"x"`, -32003, "not run: ")
	wantError(t, "invalid member", got[3], "4", -32600, "invalid request")
	if f.poolLen() != 0 {
		t.Fatal("a call of a denied batch ran")
	}
	if l := a.logLines(t)[0]; l["what"] != "eth_blockNumber,eth_sendRawTransaction,eth_chainId,(none)" || l["result"] != "denied" {
		t.Fatalf("access log %v", l)
	}

	// The same batch of a writer runs.
	got = decodeBatch(t, a.post(t, "writer", batch))
	if len(got) != 4 {
		t.Fatalf("writer: %d answers", len(got))
	}
	wantResult(t, "writer 1", got[0], "1")
	wantResult(t, "writer 2", got[1], "2")
	wantResult(t, "writer x", got[2], `"x"`)
	if f.poolLen() != 2 {
		t.Fatalf("pool holds %d, want both transactions", f.poolLen())
	}

	// A batch of denied notifications only: nothing to answer.
	if out := a.post(t, "reader", `[{"jsonrpc":"2.0","method":"eth_sendRawTransaction","params":["0x00"]}]`); len(out) != 0 {
		t.Fatalf("answer to denied notifications: %s", out)
	}
	// Over the bound: go-ethereum's answer, without looking further.
	big := "[" + strings.Repeat(`{"jsonrpc":"2.0","id":9,"method":"eth_chainId"},`, DefaultConfig().BatchItems) + `{"jsonrpc":"2.0","id":9,"method":"eth_chainId"}]`
	got = decodeBatch(t, a.post(t, "reader", big))
	if len(got) != 1 {
		t.Fatalf("too large a batch: %d answers", len(got))
	}
	wantError(t, "too large", got[0], "9", -32600, "batch too large")
}

func TestRolesPrivateNeedTheNodesOrganization(t *testing.T) {
	f := newFake(t)
	reg := newPrivRegistry()
	p := newFakePrivacy(t, f, reg, orgA)
	b := &privBackend{fakeBackend: f, p: p}
	var private []auth.AccessRecord
	var mu sync.Mutex
	a := serveAuth(t, b, f, Config{Org: "org1"}, func(mc *auth.MiddlewareConfig) {
		alog, err := auth.OpenAccessLog(auth.AccessLogConfig{Writer: io.Discard, Private: func(r auth.AccessRecord) {
			mu.Lock()
			defer mu.Unlock()
			private = append(private, r)
		}})
		if err != nil {
			t.Fatal(err)
		}
		mc.Log = alog
	})
	addr := `{"jsonrpc":"2.0","id":1,"method":"priv_getPrivacyPrecompileAddress"}`
	find := `{"jsonrpc":"2.0","id":2,"method":"priv_findPrivacyGroup","params":[["` + b64s(orgA) + `"]]}`

	wantResult(t, "org1 reader, address", decodeAnswer(t, a.post(t, "reader", addr)), "1")
	wantResult(t, "org1 reader, find", decodeAnswer(t, a.post(t, "reader", find)), "2")
	wantError(t, "org2, address", decodeAnswer(t, a.post(t, "other", addr)), "1", -32003,
		"not permitted: priv_getPrivacyPrecompileAddress is served to organization org1 only, the node's (caller org2/reader)")
	wantError(t, "org1 reader, eea_sendRawTransaction", decodeAnswer(t, a.post(t, "reader", `{"jsonrpc":"2.0","id":3,"method":"eea_sendRawTransaction","params":["00"]}`)),
		"3", -32003, "eea_sendRawTransaction needs role write")
	wantError(t, "anonymous", decodeAnswer(t, a.post(t, "", addr)), "1", -32003, "needs role read")

	mu.Lock()
	if len(private) != 1 || private[0].What != "priv_findPrivacyGroup" || private[0].Who != "org1/reader" {
		t.Fatalf("disclosure records %+v, want the one of priv_findPrivacyGroup", private)
	}
	mu.Unlock()

	// A node that does not know its organization serves private methods to no one.
	b2 := serveAuth(t, b, f, Config{}, nil)
	wantError(t, "no node organization", decodeAnswer(t, b2.post(t, "reader", addr)), "1", -32003, "which is not configured")
}

// dialWSAuth opens a raw WebSocket with token in the Authorization
// header, or in the query when query is set.
func dialWSAuth(t *testing.T, a *authServer, token string, query bool) *websocket.Conn {
	t.Helper()
	url := "ws" + strings.TrimPrefix(a.url, "http") + "/"
	h := http.Header{}
	if query {
		url += "?access_token=" + token
	} else {
		h.Set("Authorization", "Bearer "+token)
	}
	c, resp, err := websocket.DefaultDialer.Dial(url, h)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readWS(t *testing.T, c *websocket.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestRolesOverWebSocket(t *testing.T) {
	f := newFake(t)
	a := serveAuth(t, f, f, Config{}, nil)
	c := dialWSAuth(t, a, "reader", true)
	send := func(s string) {
		t.Helper()
		if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"jsonrpc":"2.0","id":5,"method":"eth_sendRawTransaction","params":["` + rawTx(t, 1, 0) + `"]}`)
	wantError(t, "denied over WebSocket", decodeAnswer(t, readWS(t, c)), "5", -32003,
		"not permitted: eth_sendRawTransaction needs role write (caller org1/reader holds read)")
	send(`{"jsonrpc":"2.0","id":6,"method":"eth_blockNumber"}`)
	wantResult(t, "allowed over WebSocket", decodeAnswer(t, readWS(t, c)), "6")
	send(`[{"jsonrpc":"2.0","id":7,"method":"eth_chainId"},{"jsonrpc":"2.0","id":8,"method":"eth_sendTransaction","params":[{}]}]`)
	got := decodeBatch(t, readWS(t, c))
	if len(got) != 2 {
		t.Fatalf("batch answer %+v", got)
	}
	wantError(t, "batch over WebSocket", got[0], "7", -32003, "not run: not permitted: eth_sendTransaction")
	wantError(t, "batch over WebSocket", got[1], "8", -32003, "not permitted: eth_sendTransaction needs role write")
	if f.poolLen() != 0 {
		t.Fatal("a denied transaction reached the pool")
	}

	// Denials written from the read side while the codec writes
	// notifications: every message arrives whole (run with -race).
	send(`{"jsonrpc":"2.0","id":9,"method":"eth_subscribe","params":["newHeads"]}`)
	sub := decodeAnswer(t, readWS(t, c))
	wantResult(t, "eth_subscribe", sub, "9")
	const rounds = 50
	go func() {
		for range rounds {
			f.addBlock(nil, nil)
		}
	}()
	for i := range rounds {
		send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"eth_sign","params":[]}`, 100+i))
	}
	heads, denials := 0, 0
	for heads < rounds || denials < rounds {
		var m struct {
			Method string          `json:"method"`
			ID     json.RawMessage `json:"id"`
			Error  *struct {
				Code int `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(readWS(t, c), &m); err != nil {
			t.Fatal(err)
		}
		switch {
		case m.Method == "eth_subscription":
			heads++
		case m.Error != nil && m.Error.Code == -32003:
			denials++
		default:
			t.Fatalf("unexpected message %+v", m)
		}
	}
	c.Close()
	// The upgrade's access-log line is written when the connection ends.
	waitFor(t, "the WebSocket's access-log line", 10*time.Second, func() bool { return len(a.logLines(t)) == 1 })
	l := a.logLines(t)[0]
	if l["who"] != "org1/reader" || l["status"] != float64(101) || l["path"] != "/" ||
		l["what"] != "eth_sendRawTransaction,eth_blockNumber,eth_chainId,eth_sendTransaction,eth_subscribe,eth_sign" ||
		l["result"] != fmt.Sprintf("denied (%d messages)", rounds+2) {
		t.Fatalf("access log %v", l)
	}
}

func TestWebSocketMessagesAreRateLimited(t *testing.T) {
	f := newFake(t)
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	lim, err := auth.NewLimiter(auth.LimitConfig{Default: auth.Limit{Rate: 1, Burst: 2}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	a := serveAuth(t, f, f, Config{}, func(mc *auth.MiddlewareConfig) { mc.Limits = lim })
	c := dialWSAuth(t, a, "reader", false) // the upgrade takes one token
	for i, want := range []int{0, -32005} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"eth_chainId"}`, i))); err != nil {
			t.Fatal(err)
		}
		ans := decodeAnswer(t, readWS(t, c))
		if want == 0 {
			wantResult(t, "first message", ans, "0")
			continue
		}
		wantError(t, "second message", ans, "1", want, "rate limit exceeded: org1/reader may make 1 requests per second (burst 2)")
	}
}

// Without the middleware nothing is checked, as on charter dev.
func TestRolesWithoutIdentity(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{})
	var h string
	if err := ts.http.Call(&h, "eth_sendRawTransaction", rawTx(t, 1, 0)); err != nil {
		t.Fatal(err)
	}
	var n hexutil.Uint64
	if err := ts.ws(t).Call(&n, "eth_blockNumber"); err != nil {
		t.Fatal(err)
	}
}

// ---- the request parser ----

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		in      string
		methods []string
		batch   bool
		err     bool
		out     string
	}{
		{in: `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[],"extra":1}`, methods: []string{"eth_chainId"},
			out: `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`},
		{in: `{"\u006dethod":"a_b","id":1}`, methods: []string{"a_b"}, out: `{"id":1,"method":"a_b"}`},
		{in: `{"method":"a_b","method":"c_d"}`, methods: []string{"c_d"}, out: `{"method":"c_d"}`},
		{in: `{"method":"a_<b>"}`, methods: []string{"a_<b>"}, out: `{"method":"a_<b>"}`},
		{in: `{"method":5,"id":null}`, methods: []string{""}, out: `{"id":null}`},
		{in: `null`, methods: []string{""}, out: `{}`},
		{in: ` [1, {"method":"x_y"}, null, []] `, methods: []string{"", "x_y", "", ""}, batch: true, out: `[{},{"method":"x_y"},{},{}]`},
		{in: `[]`, batch: true, out: `[]`},
		{in: `{"method":"x_y"} {}`, err: true},
		{in: ``, err: true},
		{in: `[{"method":"x_y"}`, err: true},
	} {
		calls, batch, err := parseRequest([]byte(tc.in), 8)
		if (err != nil) != tc.err {
			t.Errorf("%s: error %v", tc.in, err)
			continue
		}
		if err != nil {
			continue
		}
		var methods []string
		for _, c := range calls {
			methods = append(methods, c.method)
		}
		if batch != tc.batch || !slices.Equal(methods, tc.methods) {
			t.Errorf("%s: batch %v methods %q, want %v %q", tc.in, batch, methods, tc.batch, tc.methods)
		}
		if out := encodeRequest(calls, batch); string(out) != tc.out {
			t.Errorf("%s: canonical %s, want %s", tc.in, out, tc.out)
		}
	}
	calls, _, err := parseRequest([]byte(`[{},{},{},{}]`), 3)
	if err != errBatchTooLarge || len(calls) != 3 {
		t.Fatalf("over the bound: %d calls, %v", len(calls), err)
	}
}

// FuzzParseRequest: any bytes parse without panic; what parses has a
// canonical form that is valid JSON and parses to the same calls (so the
// server runs exactly the methods checked).
func FuzzParseRequest(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`{"\u006dethod":"eth_sendRawTransaction","id":1}`,
		`{"method":"eth_blockNumber","method":"eth_sendRawTransaction"}`,
		`{"method":"eth_sendRawTransaction","method":null}`,
		`{"Method":"eth_sendRawTransaction","method":"eth_chainId"}`,
		`[{"method":"a\u0000b"},{"method":"\ud800"},"x",{"id":{"a":1},"method":"m_n"}]`,
		"{\"method\":\"\xff\xfe\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		calls, batch, err := parseRequest(msg, 16)
		if err != nil {
			return
		}
		out := encodeRequest(calls, batch)
		if !json.Valid(out) {
			t.Fatalf("canonical form of %q is not JSON: %q", msg, out)
		}
		again, batch2, err := parseRequest(out, 16)
		if err != nil || batch2 != batch || len(again) != len(calls) {
			t.Fatalf("canonical %q parses to %d calls (batch %v), %v; want %d", out, len(again), batch2, err, len(calls))
		}
		for i := range calls {
			// A member that is not an object is handed on as {}: no method, no id, as go-ethereum reads it.
			if again[i].method != calls[i].method || !bytes.Equal(again[i].id, calls[i].id) ||
				(calls[i].object && !again[i].object) || (!calls[i].object && (again[i].id != nil || again[i].params != nil)) {
				t.Fatalf("call %d: %+v became %+v", i, calls[i], again[i])
			}
		}
		if out2 := encodeRequest(again, batch); !bytes.Equal(out2, out) {
			t.Fatalf("canonical form not stable: %q then %q", out, out2)
		}
	})
}
