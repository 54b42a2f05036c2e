package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/charter-ledger/charter/internal/auth"
)

// Problem is an RFC 9457 problem document: the body of every failure.
// Type names the kind of problem (a URN of this API, one per status
// Charter answers), Title its short summary, Detail this occurrence in
// one line that names the bad field and what would be right, Instance
// the request's path. Field, when set, is the bad input's name (a body
// member such as "args[1].amount", a path or query parameter, or a
// header); Reason and RevertData are a reverted call's.
type Problem struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Status     int    `json:"status"`
	Detail     string `json:"detail"`
	Instance   string `json:"instance,omitempty"`
	Field      string `json:"field,omitempty"`
	Reason     string `json:"reason,omitempty"`
	RevertData string `json:"revertData,omitempty"`
}

func (p *Problem) Error() string { return p.Detail }

// ProblemContentType is the media type of problem documents.
const ProblemContentType = "application/problem+json"

// kinds names the problem type of each status the gateway answers.
var kinds = map[int]struct{ name, title string }{
	http.StatusBadRequest:            {"bad-input", "Bad input"},
	http.StatusForbidden:             {"forbidden", "Not permitted"},
	http.StatusNotFound:              {"not-found", "Not found"},
	http.StatusMethodNotAllowed:      {"method-not-allowed", "Method not allowed"},
	http.StatusConflict:              {"conflict", "Conflict"},
	http.StatusGone:                  {"gone", "Gone"},
	http.StatusRequestEntityTooLarge: {"too-large", "Request too large"},
	http.StatusUnsupportedMediaType:  {"unsupported-media-type", "Unsupported media type"},
	http.StatusUnprocessableEntity:   {"rejected", "Rejected"},
	http.StatusInternalServerError:   {"internal", "Internal error"},
	http.StatusNotImplemented:        {"not-implemented", "Not implemented"},
	http.StatusServiceUnavailable:    {"unavailable", "Unavailable"},
}

// ProblemType is the type URI of a problem of the given status.
func ProblemType(status int) string {
	if k, ok := kinds[status]; ok {
		return "urn:charter:problem:" + k.name
	}
	return "about:blank"
}

// problemf makes a problem of status about field ("" for none).
func problemf(status int, field, format string, args ...any) *Problem {
	title := http.StatusText(status)
	if k, ok := kinds[status]; ok {
		title = k.title
	}
	return &Problem{Type: ProblemType(status), Title: title, Status: status, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// badInput is a 400 whose detail starts with the field: "address: not a
// 20-byte hex address".
func badInput(field, format string, args ...any) *Problem {
	return problemf(http.StatusBadRequest, field, "%s: %s", field, fmt.Sprintf(format, args...))
}

func notFound(field, format string, args ...any) *Problem {
	return problemf(http.StatusNotFound, field, format, args...)
}

// gone is a 410 for a block whose body and receipts this node no longer
// keeps (an observer's --history.bodies): err says which and why.
func gone(err error) *Problem {
	return problemf(http.StatusGone, "", "%v", err)
}

// rejected is a 422: the request was understood but the chain refused
// it (a reverted call, a transaction the pool does not admit).
func rejected(format string, args ...any) *Problem {
	return problemf(http.StatusUnprocessableEntity, "", format, args...)
}

// internal is a 500 for a failure of the node (its store), logged.
func internal(format string, args ...any) error {
	return &internalError{fmt.Errorf(format, args...)}
}

type internalError struct{ err error }

func (e *internalError) Error() string { return e.err.Error() }
func (e *internalError) Unwrap() error { return e.err }

// encoded is an answer ready to be written (and kept for idempotent
// replays): it is not modified once built.
type encoded struct {
	status      int
	contentType string
	location    string
	link        string
	body        []byte
	result      string // the access log's result: "ok", or the problem's detail
}

func (e *encoded) size() int {
	return len(e.contentType) + len(e.location) + len(e.link) + len(e.body) + len(e.result)
}

// maxResultLen bounds the access log's result text.
const maxResultLen = 200

// problem is the one place that maps an error to a problem document.
func (g *Gateway) problem(r *http.Request, err error) *encoded {
	var p *Problem
	var denied *auth.Denied
	switch {
	case errors.As(err, &p):
		cp := *p
		p = &cp
	case errors.As(err, &denied):
		p = problemf(http.StatusForbidden, "", "%s", denied.Error())
	default:
		g.cfg.Log.Error("REST request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		p = problemf(http.StatusInternalServerError, "", "%v", err)
	}
	p.Instance = r.URL.Path
	body, jerr := marshal(p)
	if jerr != nil {
		body = []byte(`{"type":"about:blank","title":"Internal error","status":500,"detail":"problem does not encode"}`)
	}
	res := p.Detail
	if len(res) > maxResultLen {
		res = res[:maxResultLen]
	}
	return &encoded{status: p.Status, contentType: ProblemContentType, body: body, result: res}
}

// encode renders a handler's reply.
func (g *Gateway) encode(r *http.Request, rep *reply) *encoded {
	out := &encoded{status: rep.status, contentType: "application/json", body: rep.raw, result: "ok"}
	if rep.raw == nil {
		body, err := marshal(rep.body)
		if err != nil {
			return g.problem(r, internal("encode answer: %v", err))
		}
		out.body = body
	}
	if rep.header != nil {
		out.location = rep.header.Get("Location")
		out.link = rep.header.Get("Link")
	}
	return out
}

// fail answers err as a problem document.
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, err error) {
	g.write(w, r, g.problem(r, err))
}

// write sends e and notes its result in the access-log entry.
func (g *Gateway) write(w http.ResponseWriter, r *http.Request, e *encoded) {
	res := e.result
	if w.Header().Get("Idempotent-Replayed") != "" {
		res += " (replayed)"
	}
	auth.EntryOf(r.Context()).Result = res
	h := w.Header()
	h.Set("Content-Type", e.contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.location != "" {
		h.Set("Location", e.location)
	}
	if e.link != "" {
		h.Set("Link", e.link)
	}
	w.WriteHeader(e.status)
	w.Write(e.body)
}

// marshal encodes v as JSON without HTML escaping, with a final newline.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
