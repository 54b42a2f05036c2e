// Package gateway serves Charter's REST API, /api/v1, beside JSON-RPC on
// a node's API listener: blocks, transactions and receipts, accounts with
// their registry record, calls and sends of contract functions by their
// ABI, the members and governance proposals of the consortium, and the
// OpenAPI 3 document that describes all of it (openapi.json, served at
// /api/v1/openapi.json).
//
// The auth middleware in front of the gateway authenticates the request
// and puts an *auth.Identity into its context (nothing at all on charter
// dev, where everything is allowed). Each route declares the role it
// needs (Routes) and checks it with auth.Allow; it names itself and its
// result in the request's access-log entry (auth.EntryOf).
//
// Every failure is an RFC 9457 problem document (application/problem+json)
// whose detail names the bad field. Bodies are bounded (Config.BodyBytes)
// and decoded strictly (unknown fields are refused); integers of 256 bits
// (balances, values, fees) are decimal strings. POST routes honour an
// Idempotency-Key header: a retry with the same key and body gets the
// first answer again, with Idempotent-Replayed: true. Lists are newest
// first with opaque cursors (?cursor=&limit=, a next cursor in the body
// and in a Link header).
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
)

// Prefix is the path under which the gateway serves; the node mounts the
// gateway's Handler there.
const Prefix = "/api/v1/"

// Sender signs transactions with keys the node holds for its
// organization's applications and admits them to the node's pool. The
// node's key store implements it; without one, sends answer 501.
//
// Send calls contract tx.To with the key keyID: it sets the nonce (the
// key's next, counting its transactions waiting in the pool), the gas
// (estimated when tx.Gas is 0) and the fees, signs for the chain and
// admits the transaction to the pool, and returns its hash once the pool
// holds it. caller is who asks (nil: no authentication, as on charter
// dev, where any key may be used).
//
// Before Send, the gateway has checked that caller holds the write role
// and lists keyID in its Keys. Send checks what only the key store knows
// and says so by wrapping a sentinel: ErrUnknownKey when there is no key
// keyID, ErrKeyDenied when caller's organization may not use it (a
// node-held key serves only the node's own organization). Any other error
// is a refusal of the transaction (the pool's errors, such as
// txpool.ErrNonceTooLow or txpool.ErrPoolFull, wrapped); its message goes
// to the client. Send is safe for concurrent use; it returns when ctx
// ends, with ctx's error.
type Sender interface {
	Send(ctx context.Context, keyID string, caller *auth.Identity, tx TxRequest) (common.Hash, error)
}

// TxRequest is the transaction a send asks of a node-held key: a call of
// contract To with Data (selector and ABI-encoded arguments) carrying
// Value wei, with at most Gas gas (0: the Sender estimates it). The
// Sender owns it once Send is called.
type TxRequest struct {
	To    common.Address
	Data  []byte
	Value *big.Int // never nil; may be zero
	Gas   uint64
}

// Errors a Sender wraps to say why it did not send.
var (
	// ErrUnknownKey: the node holds no key of that id (404).
	ErrUnknownKey = errors.New("no such node-held key")
	// ErrKeyDenied: the caller may not use the key (403).
	ErrKeyDenied = errors.New("key not permitted")
)

// ContractABIs finds a contract by the name it was registered under: its
// address and its ABI, the JSON array a Solidity compiler writes. ok is
// false for a name it does not know. Lookup is safe for concurrent use;
// the caller does not modify the returned bytes.
type ContractABIs interface {
	Lookup(name string) (addr common.Address, abi []byte, ok bool)
}

// Config is what the gateway reads and how far it goes for one request.
// Zero fields take the defaults of DefaultConfig; Validate names the
// first bad field.
type Config struct {
	// Backend is the node's chain as JSON-RPC sees it: blocks, receipts,
	// state (the registry and governance are read from the state at the
	// head), calls and the pool. Required.
	Backend rpc.Backend
	// Sender signs with node-held keys; nil: sends answer 501.
	Sender Sender
	// Contracts names contracts; nil: contracts are named by address, and
	// a call or send carries the ABI in its body.
	Contracts ContractABIs
	// SQL is the node's SQL index; nil: POST /sql answers 501.
	SQL SQLIndex

	// BodyBytes bounds a request's body (default 1 MiB); more is 413.
	BodyBytes int
	// GasCap is the most gas one contract call may use (default 50,000,000).
	GasCap uint64
	// CallTimeout is the most time one contract call may run (default 5 s).
	CallTimeout time.Duration
	// ResultBytes bounds what a call's decoded outputs may hold (default
	// 4 MiB): return data whose offsets point many times at the same
	// bytes cannot blow up into more.
	ResultBytes int
	// Idempotency bounds the store of answers to POST requests that
	// carried an Idempotency-Key.
	Idempotency IdempotencyConfig

	// Now is the clock of idempotency expiry (nil: time.Now).
	Now func() time.Time
	// Log receives internal errors (nil: slog.Default()).
	Log *slog.Logger
}

// IdempotencyConfig bounds the store of idempotent answers: each is kept
// TTL after its first request, and the store holds at most MaxEntries of
// them and MaxBytes (keys and bodies); the oldest go first.
type IdempotencyConfig struct {
	TTL        time.Duration // default 24 h
	MaxEntries int           // default 100,000
	MaxBytes   int           // default 64 MiB
}

// DefaultConfig is the gateway's configuration unless told otherwise
// (without Backend).
func DefaultConfig() Config {
	return Config{
		BodyBytes:   1 << 20,
		GasCap:      50_000_000,
		CallTimeout: 5 * time.Second,
		ResultBytes: 4 << 20,
		Idempotency: IdempotencyConfig{TTL: 24 * time.Hour, MaxEntries: 100_000, MaxBytes: 64 << 20},
	}
}

// EnsureDefaults fills the zero fields from DefaultConfig.
func (c *Config) EnsureDefaults() {
	d := DefaultConfig()
	if c.BodyBytes == 0 {
		c.BodyBytes = d.BodyBytes
	}
	if c.GasCap == 0 {
		c.GasCap = d.GasCap
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = d.CallTimeout
	}
	if c.ResultBytes == 0 {
		c.ResultBytes = d.ResultBytes
	}
	if c.Idempotency.TTL == 0 {
		c.Idempotency.TTL = d.Idempotency.TTL
	}
	if c.Idempotency.MaxEntries == 0 {
		c.Idempotency.MaxEntries = d.Idempotency.MaxEntries
	}
	if c.Idempotency.MaxBytes == 0 {
		c.Idempotency.MaxBytes = d.Idempotency.MaxBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Validate reports the first field out of range.
func (c *Config) Validate() error {
	switch {
	case c.Backend == nil:
		return errors.New("gateway: Config.Backend is required")
	case c.BodyBytes < 1024:
		return fmt.Errorf("gateway: BodyBytes %d: want at least 1024", c.BodyBytes)
	case c.CallTimeout < 0:
		return fmt.Errorf("gateway: CallTimeout %s: want a positive duration", c.CallTimeout)
	case c.ResultBytes < 1024:
		return fmt.Errorf("gateway: ResultBytes %d: want at least 1024", c.ResultBytes)
	case c.Idempotency.TTL < 0 || c.Idempotency.MaxEntries < 0 || c.Idempotency.MaxBytes < 0:
		return fmt.Errorf("gateway: Idempotency %+v: want positive bounds", c.Idempotency)
	}
	return nil
}

// Gateway is the REST API of one node, an http.Handler for Prefix.
type Gateway struct {
	cfg    Config
	b      rpc.Backend
	signer types.Signer
	mux    *http.ServeMux
	idem   *idemStore
}

// New builds the gateway over cfg.Backend.
func New(cfg Config) (*Gateway, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:    cfg,
		b:      cfg.Backend,
		signer: types.LatestSignerForChainID(cfg.Backend.ChainSpec().Config.ChainID),
		mux:    http.NewServeMux(),
		idem:   newIdemStore(cfg.Idempotency, cfg.Now),
	}
	methods := map[string][]string{}
	var paths []string
	for i := range routes {
		rt := &routes[i]
		g.mux.HandleFunc(rt.Method+" "+rt.Path, func(w http.ResponseWriter, r *http.Request) { g.serve(w, r, rt) })
		if methods[rt.Path] == nil {
			paths = append(paths, rt.Path)
		}
		methods[rt.Path] = append(methods[rt.Path], rt.Method)
	}
	// Other methods on a known path: 405 naming the allowed ones. A
	// pattern without a method is less specific than one with, so it only
	// gets what the routes above do not.
	for _, p := range paths {
		allow := methods[p]
		if slices.Contains(allow, http.MethodGet) {
			allow = append(allow, http.MethodHead)
		}
		g.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			g.fail(w, r, problemf(http.StatusMethodNotAllowed, "", "method %s: %s serves %s", r.Method, r.URL.Path, strings.Join(allow, ", ")))
		})
	}
	g.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		g.fail(w, r, problemf(http.StatusNotFound, "", "no route %s %s (the routes are listed in %sopenapi.json)", r.Method, r.URL.Path, Prefix))
	})
	return g, nil
}

// ServeHTTP serves the routes under Prefix; anything else is 404.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

// Route is one route of the API and the role a caller needs for it (0:
// none).
type Route struct {
	Method string
	Path   string // a net/http pattern: /api/v1/blocks/{block}
	Role   system.Role
}

// Routes lists the API's routes and the roles they need (the OpenAPI
// document names each operation's role in x-charter-role).
func Routes() []Route {
	out := make([]Route, len(routes))
	for i, rt := range routes {
		out[i] = rt.Route
	}
	return out
}

// route is a Route with its handler and its properties.
type route struct {
	Route
	h handler
	// query lists the query parameters the route takes; others are 400.
	// POST routes read a JSON body and honour Idempotency-Key.
	query []string
}

func (rt *route) pattern() string { return rt.Method + " " + rt.Path }

// handler serves one route: a reply, or an error that fail maps to a
// problem document.
type handler func(g *Gateway, c *call) (*reply, error)

// call is one request as a handler sees it.
type call struct {
	r    *http.Request
	ctx  context.Context
	who  *auth.Identity // nil without authentication
	body []byte         // POST routes: the whole body, within BodyBytes
}

// reply is a handler's answer: status and a value encoded as JSON (raw
// bytes when raw is set, sent as they are).
type reply struct {
	status int
	body   any
	raw    []byte
	header http.Header // extra headers (Link, Location)
}

func okReply(body any) *reply { return &reply{status: http.StatusOK, body: body} }

var routes = []route{
	{Route: Route{"GET", "/api/v1/blocks", system.RoleRead}, h: (*Gateway).listBlocks, query: []string{"cursor", "limit"}},
	{Route: Route{"GET", "/api/v1/blocks/{block}", system.RoleRead}, h: (*Gateway).getBlock},
	{Route: Route{"GET", "/api/v1/transactions/{hash}", system.RoleRead}, h: (*Gateway).getTransaction},
	{Route: Route{"GET", "/api/v1/transactions/{hash}/receipt", system.RoleRead}, h: (*Gateway).getReceipt},
	{Route: Route{"POST", "/api/v1/transactions", system.RoleWrite}, h: (*Gateway).submitTransaction},
	{Route: Route{"GET", "/api/v1/accounts/{address}", system.RoleRead}, h: (*Gateway).getAccount},
	{Route: Route{"GET", "/api/v1/accounts/{address}/balance", system.RoleRead}, h: (*Gateway).getBalance},
	{Route: Route{"POST", "/api/v1/contracts/{contract}/call/{method}", system.RoleRead}, h: (*Gateway).callContract},
	{Route: Route{"POST", "/api/v1/contracts/{contract}/send/{method}", system.RoleWrite}, h: (*Gateway).sendContract},
	{Route: Route{"GET", "/api/v1/members", system.RoleRead}, h: (*Gateway).listMembers},
	{Route: Route{"GET", "/api/v1/members/{org}", system.RoleRead}, h: (*Gateway).getMember},
	{Route: Route{"GET", "/api/v1/governance/proposals", system.RoleRead}, h: (*Gateway).listProposals, query: []string{"cursor", "limit"}},
	{Route: Route{"GET", "/api/v1/governance/proposals/{id}", system.RoleRead}, h: (*Gateway).getProposal},
	{Route: Route{"POST", "/api/v1/sql", system.RoleRead}, h: (*Gateway).sqlQuery},
	{Route: Route{"GET", "/api/v1/openapi.json", 0}, h: (*Gateway).openAPI},
	{Route: Route{"GET", "/api/v1/healthz", 0}, h: (*Gateway).healthz},
}

// serve runs one route: the role check, the query, for POST the body
// and the idempotency store, the handler, the answer, and the access-log
// entry.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, rt *route) {
	ctx := r.Context()
	auth.EntryOf(ctx).What = rt.pattern()
	who := auth.FromContext(ctx)
	// No identity: no authentication in front of the gateway (charter
	// dev), where everything is allowed.
	if who != nil {
		if err := auth.Allow(who, rt.pattern(), rt.Role); err != nil {
			g.fail(w, r, err)
			return
		}
	}
	if err := checkQuery(r, rt.query); err != nil {
		g.fail(w, r, err)
		return
	}
	c := &call{r: r, ctx: ctx, who: who}
	if rt.Method != http.MethodPost {
		g.write(w, r, g.run(rt, c))
		return
	}
	var err error
	if c.body, err = readBody(w, r, g.cfg.BodyBytes); err != nil {
		g.fail(w, r, err)
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	if key == "" {
		g.write(w, r, g.run(rt, c))
		return
	}
	ticket, replay, err := g.idem.begin(who.Name(), key, fingerprint(r, c.body))
	switch {
	case err != nil:
		g.fail(w, r, err)
		return
	case replay != nil:
		w.Header().Set("Idempotent-Replayed", "true")
		g.write(w, r, replay)
		return
	}
	out := g.run(rt, c)
	// Answers of the node's trouble (5xx) are not kept: a retry runs
	// again.
	g.idem.finish(ticket, out, out.status < 500)
	g.write(w, r, out)
}

// run calls the route's handler and encodes its answer.
func (g *Gateway) run(rt *route, c *call) *encoded {
	rep, err := rt.h(g, c)
	if err != nil {
		return g.problem(c.r, err)
	}
	return g.encode(c.r, rep)
}

// checkQuery refuses query parameters the route does not take.
func checkQuery(r *http.Request, allowed []string) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badInput("query", "does not parse: %v", err)
	}
	for name := range q {
		if !slices.Contains(allowed, name) {
			if name == "" || len(name) > maxFieldName {
				return badInput("query", "unknown parameter %.64q", name)
			}
			if len(allowed) == 0 {
				return badInput(name, "%s takes no query parameters", r.URL.Path)
			}
			return badInput(name, "unknown query parameter (want %s)", strings.Join(allowed, ", "))
		}
	}
	return nil
}
