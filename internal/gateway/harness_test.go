package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/system"
)

var (
	docOnce   sync.Once
	docLoaded *openapi3.T
	docRouter routers.Router
	docErr    error
)

// openAPIDoc loads and validates the embedded document once.
func openAPIDoc(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	docOnce.Do(func() {
		loader := openapi3.NewLoader()
		docLoaded, docErr = loader.LoadFromData(OpenAPI)
		if docErr != nil {
			return
		}
		if docErr = docLoaded.Validate(context.Background()); docErr != nil {
			return
		}
		docRouter, docErr = gorillamux.NewRouter(docLoaded)
	})
	if docErr != nil {
		t.Fatalf("openapi.json: %v", docErr)
	}
	return docLoaded, docRouter
}

// harness is a gateway over a fake chain whose every answer is checked
// against the OpenAPI document.
type harness struct {
	t      testing.TB
	f      *fakeChain
	g      *Gateway
	sender *fakeSender
}

func newHarness(t testing.TB, edit func(*Config)) *harness {
	t.Helper()
	f := newFake(t)
	h := &harness{t: t, f: f, sender: &fakeSender{}}
	cfg := Config{Backend: f, Sender: h.sender, SQL: fakeSQL{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if edit != nil {
		edit(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.g = g
	return h
}

// resp is an answer as a test sees it.
type resp struct {
	status int
	header http.Header
	body   []byte
	entry  *auth.Entry
}

func (r *resp) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer %s does not decode into %T: %v", r.body, v, err)
	}
}

func (r *resp) problem(t testing.TB) Problem {
	t.Helper()
	var p Problem
	r.decode(t, &p)
	return p
}

// want fails unless the answer has the status.
func (r *resp) want(t testing.TB, status int) *resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// wantProblem fails unless the answer is a problem of status whose
// detail contains detail (and whose field is field, when given).
func (r *resp) wantProblem(t testing.TB, status int, detail string, field ...string) Problem {
	t.Helper()
	r.want(t, status)
	p := r.problem(t)
	if !strings.Contains(p.Detail, detail) {
		t.Fatalf("problem detail %q, want it to contain %q", p.Detail, detail)
	}
	if len(field) > 0 && p.Field != field[0] {
		t.Fatalf("problem field %q, want %q (detail %q)", p.Field, field[0], p.Detail)
	}
	return p
}

// request is one request of a test.
type request struct {
	method, path string
	body         any // marshalled to JSON; a string or []byte is sent as it is
	who          *auth.Identity
	header       map[string]string
}

func (h *harness) get(path string) *resp {
	h.t.Helper()
	return h.do(request{method: "GET", path: path})
}

func (h *harness) post(path string, body any) *resp {
	h.t.Helper()
	return h.do(request{method: "POST", path: path, body: body})
}

// do serves req and checks the answer against the OpenAPI document: a
// route's answer must be one the document describes for it (status,
// headers, body schema), and a request the gateway accepted must be one
// the document allows; an answer outside the routes must be a problem
// document.
func (h *harness) do(req request) *resp {
	h.t.Helper()
	t := h.t
	var body []byte
	switch b := req.body.(type) {
	case nil:
	case string:
		body = []byte(b)
	case []byte:
		body = b
	default:
		var err error
		if body, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	mk := func() *http.Request {
		r := httptest.NewRequest(req.method, req.path, bytes.NewReader(body))
		if req.body != nil {
			r.Header.Set("Content-Type", "application/json")
		}
		for k, v := range req.header {
			if v == "" {
				r.Header.Del(k)
			} else {
				r.Header.Set(k, v)
			}
		}
		return r
	}
	r := mk()
	entry := &auth.Entry{}
	ctx := auth.WithEntry(r.Context(), entry)
	if req.who != nil {
		ctx = auth.NewContext(ctx, req.who)
	}
	rec := httptest.NewRecorder()
	h.g.ServeHTTP(rec, r.WithContext(ctx))
	out := &resp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes(), entry: entry}

	doc, router := openAPIDoc(t)
	wantCT := "application/json"
	if out.status >= 400 {
		wantCT = ProblemContentType
		var p Problem
		if err := json.Unmarshal(out.body, &p); err != nil {
			t.Fatalf("%s %s: problem %s does not decode: %v", req.method, req.path, out.body, err)
		}
		if p.Status != out.status || p.Type != ProblemType(out.status) || p.Title == "" || p.Detail == "" || p.Instance != r.URL.Path {
			t.Fatalf("%s %s: problem %+v of a %d answer", req.method, req.path, p, out.status)
		}
		if out.entry.Result != p.Detail && !strings.HasPrefix(p.Detail, out.entry.Result) && !strings.HasSuffix(out.entry.Result, "(replayed)") {
			t.Fatalf("%s %s: access-log result %q, want the problem's detail %q", req.method, req.path, out.entry.Result, p.Detail)
		}
	} else if out.entry.Result != "ok" && out.entry.Result != "ok (replayed)" {
		t.Fatalf("%s %s: access-log result %q of a %d answer", req.method, req.path, out.entry.Result, out.status)
	}
	if ct := out.header.Get("Content-Type"); ct != wantCT {
		t.Fatalf("%s %s: Content-Type %q, want %q", req.method, req.path, ct, wantCT)
	}

	vr := mk()
	route, params, err := router.FindRoute(vr)
	if err != nil {
		// Not a route of the document: only a problem may answer.
		if out.status != http.StatusNotFound && out.status != http.StatusMethodNotAllowed {
			t.Fatalf("%s %s is no route of the document (%v) but answered %d", req.method, req.path, err, out.status)
		}
		var v any
		if err := json.Unmarshal(out.body, &v); err != nil {
			t.Fatal(err)
		}
		if err := doc.Components.Schemas["Problem"].Value.VisitJSON(v); err != nil {
			t.Fatalf("%s %s: problem does not match the schema: %v", req.method, req.path, err)
		}
		return out
	}
	if want := route.Method + " " + route.Path; out.entry.What != want {
		t.Fatalf("%s %s: access-log entry names %q, want %q", req.method, req.path, out.entry.What, want)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: opts}
	if out.status < 400 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Fatalf("%s %s: the gateway accepted a request the document does not allow: %v", req.method, req.path, err)
		}
	}
	rv := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: out.status, Header: out.header,
		Body: io.NopCloser(bytes.NewReader(out.body)), Options: opts}
	if err := openapi3filter.ValidateResponse(context.Background(), rv); err != nil {
		t.Fatalf("%s %s: the answer (%d %s) is not one the document describes: %v", req.method, req.path, out.status, out.body, err)
	}
	return out
}

// caller is an identity of org1 with roles.
func caller(roles system.Role, keys ...string) *auth.Identity {
	return &auth.Identity{Kind: auth.KindToken, Subject: "app", Org: "org1", Roles: roles, Issuer: "https://issuer", Keys: keys}
}
