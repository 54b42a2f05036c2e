package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/streams"
	"github.com/charter-ledger/charter/internal/system"
	"github.com/charter-ledger/charter/internal/txpool"
)

func TestOpenAPIDocumentDescribesEveryRoute(t *testing.T) {
	doc, _ := openAPIDoc(t)
	params := regexp.MustCompile(`\{([^}]+)\}`)
	ops := 0
	for _, pi := range doc.Paths.Map() {
		ops += len(pi.Operations())
	}
	if ops != len(Routes())+len(streams.Routes()) {
		t.Fatalf("the document has %d operations, the gateway %d routes and the node's event streams %d", ops, len(Routes()), len(streams.Routes()))
	}
	// The streams' routes, served by the node beside the gateway: read
	// for the ones that change nothing, admin for the others.
	for _, rt := range streams.Routes() {
		pi := doc.Paths.Value(rt.Path)
		if pi == nil || pi.GetOperation(rt.Method) == nil {
			t.Fatalf("%s %s: no operation in the document", rt.Method, rt.Path)
		}
		want := "admin"
		if rt.Reads {
			want = "read"
		}
		if got := pi.GetOperation(rt.Method).Extensions["x-charter-role"]; got != want {
			t.Errorf("%s %s: x-charter-role %v, want %s", rt.Method, rt.Path, got, want)
		}
	}
	for _, rt := range Routes() {
		pi := doc.Paths.Value(rt.Path)
		if pi == nil {
			t.Fatalf("%s %s: no path in the document", rt.Method, rt.Path)
		}
		op := pi.GetOperation(rt.Method)
		if op == nil {
			t.Fatalf("%s %s: no operation in the document", rt.Method, rt.Path)
		}
		role := "none"
		if rt.Role != 0 {
			role = rt.Role.String()
		}
		if got := op.Extensions["x-charter-role"]; got != role {
			t.Errorf("%s %s: x-charter-role %v, the route needs %s", rt.Method, rt.Path, got, role)
		}
		for _, m := range params.FindAllStringSubmatch(rt.Path, -1) {
			if p := op.Parameters.GetByInAndName(openapi3.ParameterInPath, m[1]); p == nil || !p.Required {
				t.Errorf("%s %s: path parameter %s not declared", rt.Method, rt.Path, m[1])
			}
		}
		want := []int{400, 500}
		if rt.Role != 0 {
			want = append(want, 401, 403, 429)
		}
		if rt.Method == http.MethodPost {
			want = append(want, 409, 413, 415)
			if op.Parameters.GetByInAndName(openapi3.ParameterInHeader, "Idempotency-Key") == nil {
				t.Errorf("%s %s: Idempotency-Key not declared", rt.Method, rt.Path)
			}
		}
		for _, code := range want {
			if op.Responses.Status(code) == nil {
				t.Errorf("%s %s: no %d response", rt.Method, rt.Path, code)
			}
		}
		for code, r := range op.Responses.Map() {
			if code[0] < '4' {
				continue
			}
			mt := r.Value.Content.Get(ProblemContentType)
			if mt == nil || mt.Schema.Ref != "#/components/schemas/Problem" || len(r.Value.Content) != 1 {
				t.Errorf("%s %s: response %s is not a problem document", rt.Method, rt.Path, code)
			}
		}
	}
}

// sampleRequests are requests of every route that succeed on the fake
// chain of newHarness after setupSamples.
func sampleRequests(h *harness, tx *types.Transaction) map[string]request {
	raw, _ := h.f.transfer(h.t, 2, 0).MarshalBinary()
	hash := tx.Hash().Hex()
	return map[string]request{
		"GET /api/v1/blocks":                              {method: "GET", path: "/api/v1/blocks?limit=2"},
		"GET /api/v1/blocks/{block}":                      {method: "GET", path: "/api/v1/blocks/latest"},
		"GET /api/v1/transactions/{hash}":                 {method: "GET", path: "/api/v1/transactions/" + hash},
		"GET /api/v1/transactions/{hash}/receipt":         {method: "GET", path: "/api/v1/transactions/" + hash + "/receipt"},
		"POST /api/v1/transactions":                       {method: "POST", path: "/api/v1/transactions", body: map[string]string{"raw": hexutil.Encode(raw)}},
		"GET /api/v1/accounts/{address}":                  {method: "GET", path: "/api/v1/accounts/" + h.f.dev[0].Address.Hex()},
		"GET /api/v1/accounts/{address}/balance":          {method: "GET", path: "/api/v1/accounts/" + h.f.dev[0].Address.Hex() + "/balance"},
		"POST /api/v1/contracts/{contract}/call/{method}": {method: "POST", path: callPath(echoAddr.Hex(), "over(uint256)"), body: map[string]any{"abi": abiJSON(), "args": []string{"1"}}},
		"POST /api/v1/contracts/{contract}/send/{method}": {method: "POST", path: sendPath(echoAddr.Hex(), "set"), body: map[string]any{"abi": abiJSON(), "args": []string{"1"}, "key": "k1"}},
		"GET /api/v1/members":                             {method: "GET", path: "/api/v1/members"},
		"GET /api/v1/members/{org}":                       {method: "GET", path: "/api/v1/members/" + bankOrg},
		"GET /api/v1/governance/proposals":                {method: "GET", path: "/api/v1/governance/proposals"},
		"GET /api/v1/governance/proposals/{id}":           {method: "GET", path: "/api/v1/governance/proposals/1"},
		"POST /api/v1/sql":                                {method: "POST", path: "/api/v1/sql", body: map[string]any{"query": "SELECT 1"}},
		"GET /api/v1/openapi.json":                        {method: "GET", path: "/api/v1/openapi.json"},
		"GET /api/v1/healthz":                             {method: "GET", path: "/api/v1/healthz"},
	}
}

func setupSamples(t *testing.T, h *harness) *types.Transaction {
	tx := h.f.transfer(t, 0, 0)
	h.f.addBlock(t, []*types.Transaction{tx}, nil, nil)
	h.f.propose(t, "maxOpenProposals", 20)
	return tx
}

func TestEveryRouteChecksItsRole(t *testing.T) {
	h := newHarness(t, nil)
	samples := sampleRequests(h, setupSamples(t, h))
	for _, rt := range Routes() {
		pattern := rt.Method + " " + rt.Path
		req, found := samples[pattern]
		if !found {
			t.Fatalf("no sample request of %s", pattern)
		}
		t.Run(pattern, func(t *testing.T) {
			h.t = t
			defer func() { h.t = t }()
			// Every role but the one needed.
			all := system.RoleRead | system.RoleWrite | system.RoleDeploy | system.RoleAdmin | system.RoleAuditor
			lacking := caller(all&^rt.Role, "k1")
			req.who = lacking
			r := h.do(req)
			if rt.Role == 0 {
				r.want(t, http.StatusOK)
				return
			}
			want := fmt.Sprintf("not permitted: %s needs role %s (caller org1/app holds %s)", pattern, rt.Role, lacking.Roles)
			if p := r.wantProblem(t, http.StatusForbidden, want); p.Detail != want || r.entry.Result != want {
				t.Fatalf("detail %q, access log %q, want %q", p.Detail, r.entry.Result, want)
			}
			// The role alone is enough; no identity at all (charter dev) too.
			req.who = caller(rt.Role, "k1")
			if r := h.do(req); r.status >= 300 {
				t.Fatalf("with role %s: %d %s", rt.Role, r.status, r.body)
			}
			req.who = nil
			if rt.Method == http.MethodPost && strings.HasSuffix(rt.Path, "/transactions") {
				return // the same transaction again is answered as already known; done above
			}
			if r := h.do(req); r.status >= 300 {
				t.Fatalf("without identity: %d %s", r.status, r.body)
			}
		})
	}
}

func TestUnknownPathsAndMethodsAreProblems(t *testing.T) {
	h := newHarness(t, nil)
	h.get("/api/v1/nothing").wantProblem(t, http.StatusNotFound, "no route GET /api/v1/nothing")
	h.get("/api/v1/blocks/1/extra").want(t, http.StatusNotFound)
	r := h.do(request{method: "DELETE", path: "/api/v1/blocks"})
	r.wantProblem(t, http.StatusMethodNotAllowed, "method DELETE: /api/v1/blocks serves GET, HEAD")
	if r.header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}
	r = h.get("/api/v1/transactions")
	r.wantProblem(t, http.StatusMethodNotAllowed, "serves POST")
	if r.header.Get("Allow") != "POST" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}
	h.do(request{method: "PUT", path: callPath(echoAddr.Hex(), "echo")}).want(t, http.StatusMethodNotAllowed)
	h.get("/api/v1/members?verbose=1").wantProblem(t, http.StatusBadRequest, "verbose: /api/v1/members takes no query parameters", "verbose")
}

func TestBodyBoundsAndStrictDecoding(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.BodyBytes = 2048 })
	path := "/api/v1/transactions"
	big := `{"raw":"0x` + strings.Repeat("00", 1100) + `"}`
	h.post(path, big).wantProblem(t, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: %d bytes, at most 2048", len(big)), "body")
	// Without a Content-Length the reader stops at the bound.
	h.do(request{method: "POST", path: path, body: big, header: map[string]string{"Transfer-Encoding": "chunked"}}).
		wantProblem(t, http.StatusRequestEntityTooLarge, "body:", "body")
	h.post(path, `{"raw":"0x"} {}`).wantProblem(t, http.StatusBadRequest, "body: more than one JSON value", "body")
	h.post(path, ``).wantProblem(t, http.StatusBadRequest, "body: empty", "body")
	h.post(path, `{"raw":`).wantProblem(t, http.StatusBadRequest, "body: truncated JSON", "body")
	h.post(path, `{"raw" "0x"}`).wantProblem(t, http.StatusBadRequest, "body: not valid JSON at byte", "body")
	h.post(path, `[]`).wantProblem(t, http.StatusBadRequest, "body: want a JSON object", "body")
	h.do(request{method: "POST", path: path, body: `{"raw":"0x"}`, header: map[string]string{"Content-Type": "text/plain"}}).
		wantProblem(t, http.StatusUnsupportedMediaType, "the body must be application/json", "Content-Type")
	h.do(request{method: "POST", path: path, body: `{"raw":"0x"}`, header: map[string]string{"Content-Type": ""}}).
		wantProblem(t, http.StatusUnsupportedMediaType, "Content-Type: missing", "Content-Type")
	h.do(request{method: "POST", path: path, body: `{"raw":"0x02c0"}`, header: map[string]string{"Content-Type": "application/json; charset=utf-8"}}).
		wantProblem(t, http.StatusBadRequest, "raw: transaction does not decode")
}

func TestIdempotentSubmissionReplaysTheFirstAnswer(t *testing.T) {
	h := newHarness(t, nil)
	raw, _ := h.f.transfer(t, 0, 0).MarshalBinary()
	body := map[string]string{"raw": hexutil.Encode(raw)}
	app := caller(system.RoleWrite)
	submit := func(who *auth.Identity, key string, body any) *resp {
		t.Helper()
		return h.do(request{method: "POST", path: "/api/v1/transactions", body: body, who: who, header: map[string]string{"Idempotency-Key": key}})
	}
	first := submit(app, "order-1", body).want(t, http.StatusAccepted)
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Fatal("the first answer is marked replayed")
	}
	// The transaction is sealed: without the key, a resubmission is 409;
	// with it, the first answer again, and the pool is not asked.
	h.f.seal(t)
	again := submit(app, `"order-1"`, body).want(t, http.StatusAccepted)
	if again.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.body, first.body) ||
		again.header.Get("Location") != first.header.Get("Location") || again.entry.Result != "ok (replayed)" {
		t.Fatalf("replay: %s %v, first %s", again.body, again.header, first.body)
	}
	if h.f.sends() != 1 {
		t.Fatalf("the pool was asked %d times", h.f.sends())
	}
	// The same key with another body, or on another route: 409.
	other, _ := h.f.transfer(t, 0, 1).MarshalBinary()
	submit(app, "order-1", map[string]string{"raw": hexutil.Encode(other)}).
		wantProblem(t, http.StatusConflict, `Idempotency-Key: "order-1" was used for a different request`, "Idempotency-Key")
	h.do(request{method: "POST", path: callPath(echoAddr.Hex(), "over(uint256)"), who: caller(system.RoleRead | system.RoleWrite),
		body: body, header: map[string]string{"Idempotency-Key": "order-1"}}).want(t, http.StatusConflict)
	// Another caller's key of the same name is its own.
	submit(caller(system.RoleWrite), "order-1", map[string]string{"raw": hexutil.Encode(other)}).want(t, http.StatusConflict) // same identity name
	otherApp := caller(system.RoleWrite)
	otherApp.Subject = "other"
	submit(otherApp, "order-1", body).wantProblem(t, http.StatusConflict, "already in block 1", "raw")

	// A bad request's answer is kept too; the node's trouble (5xx) is not.
	submit(app, "bad-1", map[string]string{"raw": "0x02c0"}).want(t, http.StatusBadRequest)
	if r := submit(app, "bad-1", map[string]string{"raw": "0x02c0"}).want(t, http.StatusBadRequest); r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("a bad request's answer is not replayed")
	}
	h.f.setSendErr(fmt.Errorf("%w: full", txpool.ErrPoolFull))
	submit(app, "full-1", map[string]string{"raw": hexutil.Encode(other)}).want(t, http.StatusServiceUnavailable)
	h.f.setSendErr(nil)
	if r := submit(app, "full-1", map[string]string{"raw": hexutil.Encode(other)}).want(t, http.StatusAccepted); r.header.Get("Idempotent-Replayed") != "" {
		t.Fatal("a 503 was kept")
	}

	// Malformed keys.
	submit(app, strings.Repeat("k", 256), body).wantProblem(t, http.StatusBadRequest, "Idempotency-Key: want 1 to 255", "Idempotency-Key")
	submit(app, "a b", body).wantProblem(t, http.StatusBadRequest, "Idempotency-Key:", "Idempotency-Key")
}

func TestIdempotentSendWhileTheFirstRuns(t *testing.T) {
	h := newHarness(t, nil)
	h.sender.block = make(chan struct{})
	h.sender.began = make(chan struct{}, 1)
	body, _ := json.Marshal(map[string]any{"abi": abiJSON(), "key": "k1", "args": []string{"5"}})
	mk := func() *http.Request {
		r := httptest.NewRequest("POST", sendPath(echoAddr.Hex(), "set"), bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Idempotency-Key", "send-1")
		return r
	}
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		h.g.ServeHTTP(rec, mk())
		done <- rec
	}()
	select {
	case <-h.sender.began:
	case <-time.After(10 * time.Second):
		t.Fatal("the first send did not begin")
	}
	h.do(request{method: "POST", path: sendPath(echoAddr.Hex(), "set"), body: body, header: map[string]string{"Idempotency-Key": "send-1"}}).
		wantProblem(t, http.StatusConflict, "is still being processed", "Idempotency-Key")
	close(h.sender.block)
	var first *httptest.ResponseRecorder
	select {
	case first = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the first send did not finish")
	}
	if first.Code != http.StatusAccepted {
		t.Fatalf("first send: %d %s", first.Code, first.Body)
	}
	r := h.do(request{method: "POST", path: sendPath(echoAddr.Hex(), "set"), body: body, header: map[string]string{"Idempotency-Key": "send-1"}})
	r.want(t, http.StatusAccepted)
	if !bytes.Equal(r.body, first.Body.Bytes()) || r.header.Get("Idempotent-Replayed") != "true" || h.sender.count() != 1 {
		t.Fatalf("replay %s (first %s), %d sends", r.body, first.Body, h.sender.count())
	}
}

func TestIdempotencyStoreExpiresAndStaysWithinBounds(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	s := newIdemStore(IdempotencyConfig{TTL: time.Hour, MaxEntries: 3, MaxBytes: 4 * (idemOverhead + 100)}, clock)
	answer := func(n int) *encoded {
		return &encoded{status: 202, contentType: "application/json", body: bytes.Repeat([]byte{'x'}, n)}
	}
	fp := func(i int) [32]byte { return [32]byte{byte(i)} }
	put := func(key string, i, n int) {
		t.Helper()
		ticket, replay, err := s.begin("org1/app", key, fp(i))
		if err != nil || replay != nil {
			t.Fatalf("begin %s: %v %v", key, replay, err)
		}
		s.finish(ticket, answer(n), true)
	}
	// replayed looks key up without making an entry (begin would, and
	// push out the oldest).
	replayed := func(key string, i int) bool {
		t.Helper()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.expireLocked(now)
		e, found := s.mu.byKey[idemKey{"org1/app", key}]
		return found && e.done && e.fp == fp(i)
	}
	put("a", 1, 10)
	now = now.Add(59 * time.Minute)
	if !replayed("a", 1) {
		t.Fatal("a is gone before its time")
	}
	now = now.Add(time.Minute)
	if replayed("a", 1) {
		t.Fatal("a outlived its time")
	}
	// Count: the fourth entry pushes out the oldest.
	put("b", 2, 10)
	put("c", 3, 10)
	put("d", 4, 10)
	put("e", 5, 10)
	if n, _ := s.stats(); n != 3 || replayed("b", 2) || !replayed("c", 3) || !replayed("e", 5) {
		t.Fatalf("%d entries; b, c, e replayed: %v %v %v", n, replayed("b", 2), replayed("c", 3), replayed("e", 5))
	}
	// Bytes: a large answer pushes out older ones, one larger than the
	// whole store is not kept.
	put("f", 6, 2*(idemOverhead+100))
	if _, b := s.stats(); b > 4*(idemOverhead+100) {
		t.Fatalf("%d bytes held, bound %d", b, 4*(idemOverhead+100))
	}
	if !replayed("f", 6) || replayed("c", 3) {
		t.Fatal("the large answer did not push out the oldest")
	}
	put("g", 7, 8*(idemOverhead+100))
	if replayed("g", 7) {
		t.Fatal("an answer larger than the store was kept")
	}
	if n, b := s.stats(); n > 3 || b > 4*(idemOverhead+100) {
		t.Fatalf("%d entries, %d bytes", n, b)
	}
}
