package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// ProblemContentType is the media type of the problem documents (RFC
// 9457) the handler answers failures with.
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem document, typed with the same URNs as
// Charter's REST gateway.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance,omitempty"`
}

// maxRequestBytes bounds a request body.
const maxRequestBytes = 1 << 20

// ReplayRequest is the body of POST /api/v1/streams/{name}/replay.
type ReplayRequest struct {
	FromBlock *uint64 `json:"fromBlock"`
}

// Handler serves the streams' REST API under /api/v1/streams:
//
//	GET    /api/v1/streams                  every stream (Info, with stats)
//	POST   /api/v1/streams                  create (a Definition); 201
//	GET    /api/v1/streams/{name}           one stream
//	DELETE /api/v1/streams/{name}           delete; 204
//	POST   /api/v1/streams/{name}/pause     pause; 204
//	POST   /api/v1/streams/{name}/resume    resume; 204
//	POST   /api/v1/streams/{name}/replay    {"fromBlock": n}: move the cursor; 204
//	GET    /api/v1/streams/{name}/dlq       the dead-letter queue
//	POST   /api/v1/streams/{name}/dlq/replay  redeliver it: {"delivered": n}
//
// Failures are problem documents. Sink settings are shown with the
// values of keys named like secrets (secret, password, token, key)
// replaced by "REDACTED". It checks no credentials: mount it behind the
// node's authentication and authorization.
func (m *Manager) Handler() http.Handler {
	mux := http.NewServeMux()
	const p = "/api/v1/streams"
	mux.HandleFunc("GET "+p, m.serveList)
	mux.HandleFunc("POST "+p, m.serveCreate)
	mux.HandleFunc("GET "+p+"/{name}", m.serveGet)
	mux.HandleFunc("DELETE "+p+"/{name}", func(w http.ResponseWriter, r *http.Request) {
		m.noContent(w, r, m.Delete(r.PathValue("name")))
	})
	mux.HandleFunc("POST "+p+"/{name}/pause", func(w http.ResponseWriter, r *http.Request) {
		m.noContent(w, r, m.Pause(r.PathValue("name")))
	})
	mux.HandleFunc("POST "+p+"/{name}/resume", func(w http.ResponseWriter, r *http.Request) {
		m.noContent(w, r, m.Resume(r.PathValue("name")))
	})
	mux.HandleFunc("POST "+p+"/{name}/replay", m.serveReplay)
	mux.HandleFunc("GET "+p+"/{name}/dlq", m.serveDLQ)
	mux.HandleFunc("POST "+p+"/{name}/dlq/replay", m.serveDLQReplay)
	mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusNotFound, "no such resource: %s %s", r.Method, r.URL.Path)
	})
	return mux
}

// Route is one route of Handler's API; Reads tells that it changes
// nothing (the node lets role read call it, role admin the others).
type Route struct {
	Method, Path string
	Reads        bool
}

// Routes lists the routes Handler serves (the node's OpenAPI document
// describes them).
func Routes() []Route {
	const p = "/api/v1/streams"
	return []Route{
		{"GET", p, true}, {"POST", p, false},
		{"GET", p + "/{name}", true}, {"DELETE", p + "/{name}", false},
		{"POST", p + "/{name}/pause", false}, {"POST", p + "/{name}/resume", false},
		{"POST", p + "/{name}/replay", false},
		{"GET", p + "/{name}/dlq", true}, {"POST", p + "/{name}/dlq/replay", false},
	}
}

// View is a stream as the REST API shows it.
type View struct {
	Info
	Stats StreamStats `json:"stats"`
}

func (m *Manager) view(info Info) View {
	info.Sink.Config = redact(info.Sink.Config)
	return View{Info: info, Stats: statsByName(m.Stats(), info.Name)}
}

func statsByName(all []StreamStats, name string) StreamStats {
	for _, s := range all {
		if s.Name == name {
			return s
		}
	}
	return StreamStats{Name: name}
}

func (m *Manager) serveList(w http.ResponseWriter, r *http.Request) {
	stats := m.Stats()
	out := []View{}
	for _, info := range m.List() {
		info.Sink.Config = redact(info.Sink.Config)
		out = append(out, View{Info: info, Stats: statsByName(stats, info.Name)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"streams": out})
}

func (m *Manager) serveCreate(w http.ResponseWriter, r *http.Request) {
	var def Definition
	if !decodeBody(w, r, &def) {
		return
	}
	info, err := m.Create(def)
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/streams/"+info.Name)
	writeJSON(w, http.StatusCreated, m.view(info))
}

func (m *Manager) serveGet(w http.ResponseWriter, r *http.Request) {
	info, err := m.Get(r.PathValue("name"))
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m.view(info))
}

func (m *Manager) serveReplay(w http.ResponseWriter, r *http.Request) {
	var req ReplayRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.FromBlock == nil {
		writeProblem(w, r, http.StatusBadRequest, "fromBlock: required (the block to deliver again from)")
		return
	}
	m.noContent(w, r, m.ReplayFrom(r.PathValue("name"), *req.FromBlock))
}

func (m *Manager) serveDLQ(w http.ResponseWriter, r *http.Request) {
	q, err := m.DLQ(r.PathValue("name"))
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	if q == nil {
		q = []DLQEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": q})
}

func (m *Manager) serveDLQReplay(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	n, err := m.ReplayDLQ(ctx, r.PathValue("name"))
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"delivered": n})
}

func (m *Manager) noContent(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeError is the one place that maps the Manager's errors to
// statuses.
func (m *Manager) writeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeProblem(w, r, http.StatusNotFound, "%v", err)
	case errors.Is(err, ErrExists):
		writeProblem(w, r, http.StatusConflict, "%v", err)
	case errors.Is(err, ErrBadInput), errors.Is(err, ErrSinkKind):
		writeProblem(w, r, http.StatusBadRequest, "%v", err)
	case errors.Is(err, ErrDLQReplay):
		writeProblem(w, r, http.StatusBadGateway, "%v", err)
	case errors.Is(err, ErrStopped):
		writeProblem(w, r, http.StatusServiceUnavailable, "%v", err)
	default:
		m.cfg.Log.Error("streams request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeProblem(w, r, http.StatusInternalServerError, "%v", err)
	}
}

var problemKinds = map[int]struct{ name, title string }{
	http.StatusBadRequest:            {"bad-input", "Bad input"},
	http.StatusNotFound:              {"not-found", "Not found"},
	http.StatusConflict:              {"conflict", "Conflict"},
	http.StatusRequestEntityTooLarge: {"too-large", "Request too large"},
	http.StatusUnsupportedMediaType:  {"unsupported-media-type", "Unsupported media type"},
	http.StatusInternalServerError:   {"internal", "Internal error"},
	http.StatusBadGateway:            {"sink-failed", "Sink failed"},
	http.StatusServiceUnavailable:    {"unavailable", "Unavailable"},
}

func writeProblem(w http.ResponseWriter, r *http.Request, status int, format string, args ...any) {
	p := Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: fmt.Sprintf(format, args...), Instance: r.URL.Path}
	if k, ok := problemKinds[status]; ok {
		p.Type, p.Title = "urn:charter:problem:"+k.name, k.title
	}
	body, _ := json.Marshal(p)
	w.Header().Set("Content-Type", ProblemContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// decodeBody reads one JSON object of at most maxRequestBytes into v,
// refusing unknown members; on failure it has answered.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			writeProblem(w, r, http.StatusUnsupportedMediaType, "Content-Type %q: want application/json", ct)
			return false
		}
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeProblem(w, r, http.StatusRequestEntityTooLarge, "body over %d bytes", maxRequestBytes)
			return false
		}
		writeProblem(w, r, http.StatusBadRequest, "body: %v", err)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeProblem(w, r, http.StatusBadRequest, "body: %v", err)
		return false
	}
	if dec.More() {
		writeProblem(w, r, http.StatusBadRequest, "body: more than one JSON value")
		return false
	}
	return true
}

// redact replaces the values of secret-like keys of a JSON object, in
// nested objects and arrays too (a Kafka sink's sasl.password).
func redact(cfg json.RawMessage) json.RawMessage {
	var v any
	if len(cfg) == 0 || json.Unmarshal(cfg, &v) != nil {
		return cfg
	}
	v, changed := redactValue(v)
	if !changed {
		return cfg
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return out
}

func redactValue(v any) (any, bool) {
	changed := false
	switch t := v.(type) {
	case map[string]any:
		for k, sub := range t {
			if secretKey(k) {
				t[k] = "REDACTED"
				changed = true
				continue
			}
			if nv, c := redactValue(sub); c {
				t[k] = nv
				changed = true
			}
		}
	case []any:
		for i, sub := range t {
			if nv, c := redactValue(sub); c {
				t[i] = nv
				changed = true
			}
		}
	}
	return v, changed
}

func secretKey(k string) bool {
	lk := strings.ToLower(k)
	for _, s := range []string{"secret", "password", "token", "key", "credential"} {
		if strings.Contains(lk, s) {
			return true
		}
	}
	return false
}
