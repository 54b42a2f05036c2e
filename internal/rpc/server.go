package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/auth"
)

// Server is the JSON-RPC server of one node: HTTP and WebSocket on one
// listener, within the bounds of its Config.
type Server struct {
	cfg        Config
	rpc        *gethrpc.Server
	apis       map[string]any  // the receivers registered, by namespace
	namespaces map[string]bool // the namespaces served, go-ethereum's rpc among them
	filters    *filterSystem
	priv       *privFilters // nil unless the priv and eea namespaces are served
	eth        *EthAPI
	eea        *EeaAPI     // nil unless the eea namespace is served
	halted     atomic.Bool // set by Stop: go-ethereum's server answers nothing then
	cors       origins
	wsOK       origins
	log        *slog.Logger

	mu      sync.Mutex
	http    *http.Server // set by Serve
	ln      *limitListener
	stopped bool
}

// NewServer registers the namespaces over b. peers reports the number of
// connected peers for net_peerCount (nil: none). cfg's zero fields take
// their defaults. The priv and eea namespaces (Besu's privacy API) are
// served when b is a PrivacyBackend whose Privacy is not nil.
func NewServer(b Backend, cfg Config, peers func() int, log *slog.Logger) (*Server, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	cors, _ := parseOrigins("--http.corsdomain", cfg.CORSDomains)
	wsOK, _ := parseOrigins("--ws.origins", cfg.WSOrigins)
	srv := gethrpc.NewServer()
	srv.SetBatchLimits(cfg.BatchItems, cfg.ResponseBytes)
	srv.SetHTTPBodyLimit(cfg.BodyBytes)
	srv.SetWebsocketReadLimit(int64(cfg.BodyBytes))
	s := &Server{cfg: cfg, rpc: srv, cors: cors, wsOK: wsOK, log: log}
	s.filters = newFilterSystem(b, &s.cfg)
	eth := &EthAPI{b: b, cfg: &s.cfg, signer: types.LatestSignerForChainID(b.ChainSpec().Config.ChainID),
		filters: s.filters, budgets: newBudgets(cfg.BatchTimeout, cfg.BatchGas)}
	apis := map[string]any{
		"eth":      eth,
		"net":      &NetAPI{b: b, peers: peers},
		"web3":     Web3API{},
		"txpool":   &TxPoolAPI{eth: eth},
		"personal": &PersonalAPI{eth: eth},
		"charter":  &CharterAPI{b: b},
	}
	if pb, ok := b.(PrivacyBackend); ok {
		if p := pb.Privacy(); p != nil {
			s.priv = newPrivFilters(b, p, s.filters)
			apis["priv"] = &PrivAPI{b: b, p: p, eth: eth, pf: s.priv}
			s.eea = &EeaAPI{p: p}
			apis["eea"] = s.eea
		}
	}
	s.eth = eth
	s.apis, s.namespaces = apis, map[string]bool{"rpc": true}
	for name, api := range apis {
		if err := srv.RegisterName(name, api); err != nil {
			s.stopFilters()
			return nil, err
		}
		s.namespaces[name] = true
	}
	return s, nil
}

// Handler serves JSON-RPC over HTTP POST and WebSocket (an upgrade on any
// path, e.g. / or /ws). A request that carries an Origin header (every
// browser request does) is served only if the origin is allowed
// (--http.corsdomain for HTTP, --ws.origins for WebSocket), and refused
// with 403 otherwise: a page the browser of an employee opens cannot read
// the node, nor reach it by DNS rebinding.
//
// Behind auth.Middleware, every call is checked against the role its
// method needs (roles.go): each call of an HTTP request, each message of a
// WebSocket connection, by the caller of the request or of the upgrade.
func (s *Server) Handler() http.Handler {
	// Origins are checked here, before go-ethereum's own check (which,
	// given an empty list, would let localhost pages in).
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		_, hasOrigin := r.Header["Origin"]
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			if hasOrigin && !s.wsOK.allows(origin) && !SameOrigin(r) {
				http.Error(w, "origin not allowed: "+origin+" (the node's --ws.origins)", http.StatusForbidden)
				return
			}
			s.serveWS(w, r) // returns when the connection is closed (privws.go)
			s.filters.dropClient(wsClient(r.RemoteAddr))
			return
		}
		if s.corsDone(w, r, "POST, GET, OPTIONS", "Content-Type, Authorization") {
			return
		}
		if id := auth.FromContext(r.Context()); id != nil && !s.checkHTTP(w, r, id) {
			return
		}
		if s.serveSendRaw(w, r) {
			return
		}
		s.rpc.ServeHTTP(w, r)
	})
}

// CORS serves next (the REST gateway) under the browser-origin policy of
// JSON-RPC over HTTP (--http.corsdomain): a request from another origin is
// refused, a preflight answered.
func (s *Server) CORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.corsDone(w, r, "GET, POST, DELETE, OPTIONS", "Content-Type, Authorization, Idempotency-Key") {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// corsDone applies the --http.corsdomain policy to an HTTP request: it
// refuses an origin the policy does not allow, answers a preflight
// (OPTIONS) with the methods and headers given, and otherwise sets the
// answer's allow-origin header and lets the request through (false).
func (s *Server) corsDone(w http.ResponseWriter, r *http.Request, methods, headers string) bool {
	origin := r.Header.Get("Origin")
	_, hasOrigin := r.Header["Origin"]
	if hasOrigin && !s.cors.allows(origin) {
		if SameOrigin(r) && r.Method != http.MethodOptions {
			return false // the node's own page (the console); no CORS headers needed
		}
		http.Error(w, "origin not allowed: "+origin+" (the node's --http.corsdomain)", http.StatusForbidden)
		return true
	}
	h := w.Header()
	switch {
	case s.cors.any:
		h.Set("Access-Control-Allow-Origin", "*")
	case hasOrigin:
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", methods)
		h.Set("Access-Control-Allow-Headers", headers)
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// Serve serves JSON-RPC on ln until Stop, with the HTTP timeouts and the
// connection cap of the config. It returns nil after Stop, and the
// listener's error otherwise.
func (s *Server) Serve(ln net.Listener) error { return s.ServeHandler(ln, s.Handler(), nil) }

// ServeHandler is Serve with h in front of the server's Handler, over TLS
// when tlsCfg is not nil: a node mounts its other routes (REST, the token
// endpoint) and its authentication there. h must pass JSON-RPC requests
// to Handler.
func (s *Server) ServeHandler(ln net.Listener, h http.Handler, tlsCfg *tls.Config) error {
	lim := newLimitListener(ln, s.cfg.MaxConns)
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         lim.connState,
		TLSConfig:         tlsCfg,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	switch {
	case s.stopped:
		s.mu.Unlock()
		ln.Close()
		return nil
	case s.http != nil:
		s.mu.Unlock()
		return errors.New("rpc: Serve called twice")
	}
	s.http, s.ln = hs, lim
	s.mu.Unlock()
	var err error
	if tlsCfg != nil {
		err = hs.ServeTLS(lim, "", "") // the certificate is in tlsCfg
	} else {
		err = hs.Serve(lim)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// maxHeaderBytes bounds a request's headers: a bearer token is at most a
// few KiB, and a client that sends more is refused with 431.
const maxHeaderBytes = 64 << 10

// Stop ends subscriptions, filters and WebSocket connections, then the
// HTTP server (requests in flight get 5 s to finish).
func (s *Server) Stop() {
	s.halted.Store(true)
	s.rpc.Stop()
	s.stopFilters()
	s.mu.Lock()
	s.stopped = true
	hs, ln := s.http, s.ln
	s.mu.Unlock()
	if hs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		hs.Close()
	}
	ln.Close() // ends an Accept that waits for a slot
}

func (s *Server) stopFilters() {
	if s.priv != nil {
		s.priv.stop()
	}
	s.filters.stop()
}

// openConns counts the connections open now (0 before Serve).
func (s *Server) openConns() int {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		return 0
	}
	return len(ln.slots)
}

// SameOrigin tells whether r comes from a page the node itself served (the
// web console): its Origin is the scheme, host and port r was sent to, and
// that host is an IP address or localhost. A host name is not enough: a
// page of another site can rebind its own name to the node's address (DNS
// rebinding), and its requests then carry that name as both Host and
// Origin; a console reached by a name is allowed with --http.corsdomain
// and --ws.origins like any other origin.
func SameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if u.Scheme != scheme || !strings.EqualFold(u.Host, r.Host) {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	_, err = netip.ParseAddr(host)
	return err == nil
}
