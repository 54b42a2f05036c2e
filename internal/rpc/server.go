package rpc

import (
	"log/slog"
	"net/http"
	"strings"

	gethrpc "github.com/ethereum/go-ethereum/rpc"
)

// Limits bound what one client can ask of the server.
type Limits struct {
	BatchItems    int // requests in one batch
	ResponseBytes int // bytes of one batch response
	BodyBytes     int // bytes of one HTTP request or WebSocket message
}

// Server is the JSON-RPC server of one node.
type Server struct {
	rpc     *gethrpc.Server
	filters *filterSystem
	log     *slog.Logger
}

// NewServer registers the namespaces over b. peers reports the number of
// connected peers for net_peerCount (nil: none).
func NewServer(b Backend, lim Limits, peers func() int, log *slog.Logger) (*Server, error) {
	srv := gethrpc.NewServer()
	srv.SetBatchLimits(lim.BatchItems, lim.ResponseBytes)
	srv.SetHTTPBodyLimit(lim.BodyBytes)
	srv.SetWebsocketReadLimit(int64(lim.BodyBytes))
	fs := newFilterSystem(b)
	eth := &EthAPI{b: b, filters: fs}
	for name, api := range map[string]any{
		"eth":      eth,
		"net":      &NetAPI{b: b, peers: peers},
		"web3":     Web3API{},
		"txpool":   &TxPoolAPI{b: b},
		"personal": &PersonalAPI{eth: eth},
		"charter":  &CharterAPI{b: b},
	} {
		if err := srv.RegisterName(name, api); err != nil {
			fs.stop()
			return nil, err
		}
	}
	return &Server{rpc: srv, filters: fs, log: log}, nil
}

// Handler serves JSON-RPC over HTTP POST and WebSocket (an upgrade on any
// path, e.g. / or /ws) on one listener, with permissive CORS so browser
// wallets and dapps on other origins can call it.
func (s *Server) Handler() http.Handler {
	ws := s.rpc.WebsocketHandler([]string{"*"})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			ws.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		s.rpc.ServeHTTP(w, r)
	})
}

// Stop ends subscriptions and filters.
func (s *Server) Stop() {
	s.rpc.Stop()
	s.filters.stop()
}
