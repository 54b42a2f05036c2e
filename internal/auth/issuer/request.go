package issuer

import (
	"encoding/base64"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/charter-ledger/charter/internal/system"
)

// tokenRequest is a client-credentials token request, as decoded.
type tokenRequest struct {
	clientID string
	secret   string
	scope    system.Role // 0: all of the client's roles
}

// parseTokenRequest decodes a token request from its Content-Type, its
// Authorization header values and its body (already bounded by the
// caller), per RFC 6749 §2.3.1, §3.2 and §4.4: the client authenticates
// with HTTP Basic or with client_id and client_secret in the form, not
// both; no parameter appears twice; grant_type is client_credentials; the
// scope, if any, is space-separated role names. Errors are the answer.
func parseTokenRequest(contentType string, authorization []string, body []byte) (*tokenRequest, *oauthError) {
	bad := func(code, format string, a ...any) *oauthError {
		return &oauthError{status: http.StatusBadRequest, code: code, desc: fmt.Sprintf(format, a...)}
	}
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, bad("invalid_request", "Content-Type must be application/x-www-form-urlencoded")
	}
	if len(body) > MaxRequestBytes {
		return nil, &oauthError{status: http.StatusRequestEntityTooLarge, code: "invalid_request",
			desc: fmt.Sprintf("request body of more than %d bytes", MaxRequestBytes)}
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, bad("invalid_request", "the body is not a URL-encoded form")
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, bad("invalid_request", "parameter %q appears more than once", truncate(k))
		}
	}
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		return nil, bad("invalid_request", "grant_type is missing; want client_credentials")
	default:
		return nil, bad("unsupported_grant_type", "grant_type %q: only client_credentials is supported", truncate(gt))
	}
	req := &tokenRequest{}
	_, formSecret := form["client_secret"]
	switch len(authorization) {
	case 0:
		req.clientID, req.secret = form.Get("client_id"), form.Get("client_secret")
	case 1:
		scheme, cred, _ := strings.Cut(authorization[0], " ")
		if !strings.EqualFold(scheme, "Basic") {
			return nil, &oauthError{status: http.StatusUnauthorized, code: "invalid_client",
				desc: "authenticate the client with HTTP Basic or client_id and client_secret in the form"}
		}
		if formSecret {
			return nil, bad("invalid_request", "use one client authentication: HTTP Basic or client_secret in the form, not both")
		}
		id, secret, ok := decodeBasic(strings.TrimSpace(cred))
		if !ok {
			return nil, &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "malformed HTTP Basic credentials"}
		}
		if fid, ok := form["client_id"]; ok && fid[0] != id {
			return nil, bad("invalid_request", "client_id in the form differs from the one of HTTP Basic")
		}
		req.clientID, req.secret = id, secret
	default:
		return nil, bad("invalid_request", "more than one Authorization header")
	}
	if req.clientID == "" || req.secret == "" {
		return nil, &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication required (client id and secret)"}
	}
	if len(req.clientID) > MaxIDBytes || len(req.secret) > MaxSecretBytes {
		return nil, bad("invalid_request", "client id or secret too long (at most %d and %d bytes)", MaxIDBytes, MaxSecretBytes)
	}
	if s, ok := form["scope"]; ok {
		names := strings.Fields(s[0])
		if len(names) == 0 {
			return nil, bad("invalid_scope", "scope is empty; give role names or leave it out")
		}
		if len(names) > 16 {
			return nil, bad("invalid_scope", "scope of %d names, at most 16", len(names))
		}
		roles, err := system.ParseRoles(names)
		if err != nil {
			return nil, bad("invalid_scope", "scope: %s", truncate(err.Error()))
		}
		req.scope = roles
	}
	return req, nil
}

// decodeBasic decodes HTTP Basic credentials whose id and secret are
// form-encoded (RFC 6749 §2.3.1).
func decodeBasic(cred string) (id, secret string, ok bool) {
	if len(cred) > 2*(MaxIDBytes+MaxSecretBytes)*3 {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		return "", "", false
	}
	rawID, rawSecret, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	if id, err = url.QueryUnescape(rawID); err != nil {
		return "", "", false
	}
	if secret, err = url.QueryUnescape(rawSecret); err != nil {
		return "", "", false
	}
	return id, secret, true
}
