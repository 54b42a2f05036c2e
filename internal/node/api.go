package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/charter-ledger/charter/internal/rpc"
)

// apiServer is the node's JSON-RPC listener (HTTP and WebSocket).
type apiServer struct {
	n    *Node
	rpc  *rpc.Server
	ln   net.Listener
	http *http.Server
	done chan struct{}
}

func newAPIServer(n *Node) *apiServer { return &apiServer{n: n} }

func (a *apiServer) start() error {
	if a.n.cfg.HTTPAddr == "" {
		return nil
	}
	srv, err := rpc.NewServer(a.n, rpc.Limits{
		BatchItems:    a.n.cfg.RPCBatchLimit,
		ResponseBytes: a.n.cfg.RPCResponseLimit,
		BodyBytes:     a.n.cfg.RPCBodyLimit,
	}, a.n.PeerCount, a.n.log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.n.cfg.HTTPAddr)
	if err != nil {
		srv.Stop()
		return fmt.Errorf("JSON-RPC cannot listen on %s: %w", a.n.cfg.HTTPAddr, err)
	}
	a.rpc, a.ln = srv, ln
	a.http = &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
	}
	a.done = make(chan struct{})
	go func() {
		defer close(a.done)
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.n.fail(fmt.Errorf("JSON-RPC server: %w", err))
		}
	}()
	return nil
}

func (a *apiServer) addr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

func (a *apiServer) stop() {
	if a.http == nil {
		return
	}
	// Subscriptions and filters end first, so WebSocket handlers return.
	a.rpc.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.http.Shutdown(ctx); err != nil {
		a.http.Close()
	}
	<-a.done
}
