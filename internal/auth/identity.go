// Package auth says who calls a node's client APIs (JSON-RPC, REST) and
// what they may do: an Identity from a bearer token, a client certificate
// or nothing at all, checked against the roles each method or route
// declares, within a rate limit per identity, and written to an access log.
//
// The middleware (Middleware) authenticates every HTTP request once and
// puts the Identity into the request's context; the handlers behind it
// (internal/rpc for JSON-RPC, internal/gateway for REST) read it with
// FromContext and check the role a method or route needs with Allow. A
// handler notes what it served (method or route, result) in the request's
// Entry so that the access log names it.
package auth

import (
	"context"
	"fmt"
	"net/http"

	"github.com/charter-ledger/charter/internal/system"
)

// Kind is how a caller proved who it is.
type Kind string

// The kinds of identity.
const (
	// KindAnonymous: no credential. Its roles are the network's policy for
	// anonymous callers (none on init networks, all on charter dev).
	KindAnonymous Kind = "anonymous"
	// KindToken: an OAuth2 bearer JWT, from the node's built-in issuer or
	// from an organization's OpenID Connect issuer.
	KindToken Kind = "token"
	// KindCertificate: a TLS client certificate issued by an
	// organization's CA (charter ca issue --role client).
	KindCertificate Kind = "certificate"
)

// Identity is one authenticated caller. It is immutable once built: the
// middleware puts it into the request's context and every handler reads
// the same value.
type Identity struct {
	Kind Kind
	// Subject names the caller within its organization: a client id of
	// the built-in issuer, a token's sub claim, a certificate's CN; "" for
	// an anonymous caller.
	Subject string
	// Org is the organization the caller acts for; "" for an anonymous
	// caller.
	Org string
	// Roles are what the caller may do through the APIs. They never exceed
	// what its credential grants (the token's roles claim, the client's
	// registration); a transaction still needs its signer's roles.
	Roles system.Role
	// Issuer is the token's iss claim, or the issuing CA's fingerprint of
	// a certificate; "" for an anonymous caller.
	Issuer string
	// Keys are the ids of the node-held signing keys this caller may use
	// for REST sends (empty: none).
	Keys []string
}

// Name is how logs and metrics name the caller: "org/subject", or
// "anonymous".
func (id *Identity) Name() string {
	if id == nil || id.Kind == KindAnonymous {
		return "anonymous"
	}
	return id.Org + "/" + id.Subject
}

// Has reports whether the caller holds every role in need.
func (id *Identity) Has(need system.Role) bool {
	return id != nil && id.Roles&need == need
}

// Denied is the error of a caller that lacks a role a method or route
// needs. Its message names the role and the method: "not permitted:
// eth_getBalance needs role read (caller org1/app holds write)".
type Denied struct {
	What string // method or route
	Need system.Role
	Who  *Identity
}

func (e *Denied) Error() string {
	held := system.Role(0)
	if e.Who != nil {
		held = e.Who.Roles
	}
	return fmt.Sprintf("not permitted: %s needs role %s (caller %s holds %s)", e.What, e.Need, e.Who.Name(), held)
}

// Allow returns nil when id holds need, and a *Denied naming what
// otherwise. need 0 is always allowed.
func Allow(id *Identity, what string, need system.Role) error {
	if need == 0 || id.Has(need) {
		return nil
	}
	return &Denied{What: what, Need: need, Who: id}
}

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity the middleware put into ctx, or nil
// when there is none (a server without the middleware: everything is
// allowed, as on charter dev).
func FromContext(ctx context.Context) *Identity {
	id, _ := ctx.Value(ctxKey{}).(*Identity)
	return id
}

// Entry is what the access log writes for one request. The middleware
// creates it and writes it when the handler returns; handlers fill What
// and Result. It is owned by the request's goroutine.
type Entry struct {
	What   string // JSON-RPC methods (comma-separated) or the REST route
	Result string // "ok", or the first error's short form
	// Private marks a request that read private data (priv_ methods, an
	// auditor's view): it also goes to the node's disclosure log.
	Private bool
}

type entryKey struct{}

// WithEntry returns ctx carrying e.
func WithEntry(ctx context.Context, e *Entry) context.Context {
	return context.WithValue(ctx, entryKey{}, e)
}

// EntryOf returns the request's access-log entry; a fresh throwaway one
// when the request has none, so that handlers need not check.
func EntryOf(ctx context.Context) *Entry {
	if e, ok := ctx.Value(entryKey{}).(*Entry); ok {
		return e
	}
	return &Entry{}
}

// Authenticator finds who sent r. It returns the caller's identity, or an
// *Error (bad or expired credential, unknown client, exited organization)
// that the middleware answers with 401 or 403. A request without any
// credential gets the anonymous identity, never an error.
// Implementations are safe for concurrent use.
type Authenticator interface {
	Authenticate(r *http.Request) (*Identity, error)
}

// Error is a refused credential. Status is 401 (no valid credential) or
// 403 (a valid one that may not be used: revoked client, exited
// organization); Code is an OAuth2 error code ("invalid_token",
// "invalid_client", ...); Msg says what was wrong in one line and never
// holds the credential itself.
type Error struct {
	Status int
	Code   string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }
