package streams

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"time"
)

func TestHandler(t *testing.T) {
	src := newFakeSource(4)
	m := newTestManager(t, testConfig(t, t.TempDir(), src))
	h := m.Handler()
	do := func(method, path, body string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	problem := func(w *httptest.ResponseRecorder, status int, typ string) {
		t.Helper()
		var p Problem
		if w.Code != status || w.Header().Get("Content-Type") != ProblemContentType || json.Unmarshal(w.Body.Bytes(), &p) != nil ||
			p.Status != status || p.Type != "urn:charter:problem:"+typ || p.Detail == "" {
			t.Fatalf("want a %d %s problem, got %d %s %s", status, typ, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
	}
	rcv := newReceiver(t, secret)
	create := `{"name":"hook","sink":{"kind":"webhook","config":{"url":"` + rcv.url() + `","secret":"` + secret + `"}},"filter":{"addresses":["` + addrA.Hex() + `"]}}`
	w := do("POST", "/api/v1/streams", create)
	if w.Code != http.StatusCreated || w.Header().Get("Location") != "/api/v1/streams/hook" {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), secret) || !strings.Contains(w.Body.String(), "REDACTED") {
		t.Fatalf("secret shown: %s", w.Body)
	}
	problem(do("POST", "/api/v1/streams", create), http.StatusConflict, "conflict")
	problem(do("POST", "/api/v1/streams", strings.Replace(create, `"hook"`, `"h2"`, 1)[:40]), http.StatusBadRequest, "bad-input")
	problem(do("POST", "/api/v1/streams", strings.Replace(strings.Replace(create, `"hook"`, `"h2"`, 1), "http://", "ftp://", 1)), http.StatusBadRequest, "bad-input")
	problem(do("POST", "/api/v1/streams", `{"name":"h3","sink":{"kind":"mem"},"filter":{"contracts":["Token"]}}`), http.StatusBadRequest, "bad-input")
	problem(do("POST", "/api/v1/streams", `{"name":"h3","bogus":1}`), http.StatusBadRequest, "bad-input")
	problem(do("GET", "/api/v1/streams/nope", ""), http.StatusNotFound, "not-found")
	problem(do("DELETE", "/api/v1/streams/nope", ""), http.StatusNotFound, "not-found")
	problem(do("POST", "/api/v1/streams/hook/replay", `{}`), http.StatusBadRequest, "bad-input")

	want := src.ids(0, 4, func(a common.Address) bool { return a == addrA })
	waitFor(t, 5*time.Second, "delivery", func() bool { return len(rcv.ids()) == len(want) })
	w = do("GET", "/api/v1/streams", "")
	var list struct{ Streams []View }
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list.Streams) != 1 || list.Streams[0].Name != "hook" {
		t.Fatalf("list: %s", w.Body)
	}
	if w := do("POST", "/api/v1/streams/hook/replay", `{"fromBlock":3}`); w.Code != http.StatusNoContent {
		t.Fatalf("replay: %d %s", w.Code, w.Body)
	}
	want = append(want, src.ids(3, 4, func(a common.Address) bool { return a == addrA })...)
	waitFor(t, 5*time.Second, "replayed delivery", func() bool { return len(rcv.ids()) == len(want) })
	w = do("GET", "/api/v1/streams/hook/dlq", "")
	if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"events":[]}` {
		t.Fatalf("dlq: %d %s", w.Code, w.Body)
	}
	w = do("POST", "/api/v1/streams/hook/dlq/replay", "")
	if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"delivered":0}` {
		t.Fatalf("dlq replay: %d %s", w.Code, w.Body)
	}
	if w := do("DELETE", "/api/v1/streams/hook", ""); w.Code != http.StatusNoContent {
		t.Fatalf("delete: %d", w.Code)
	}
	problem(do("GET", "/api/v1/streams/hook", ""), http.StatusNotFound, "not-found")
}

func TestRedact(t *testing.T) {
	in := `{"brokers":["b:9092"],"topic":"t","sasl":{"mechanism":"plain","user":"u","password":"hunter2"},"list":[{"token":"x"}],"secret":"s"}`
	out := string(redact(json.RawMessage(in)))
	for _, leak := range []string{"hunter2", `"x"`, `"s"`} {
		if strings.Contains(out, leak) {
			t.Fatalf("redact(%s) = %s: shows %s", in, out, leak)
		}
	}
	if !strings.Contains(out, `"user":"u"`) || !strings.Contains(out, `"topic":"t"`) {
		t.Fatalf("redact(%s) = %s: hides more than secrets", in, out)
	}
	if got := string(redact(json.RawMessage(`{"url":"https://x"}`))); got != `{"url":"https://x"}` {
		t.Fatalf("redact changed a config without secrets: %s", got)
	}
}
