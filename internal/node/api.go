package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/event"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/events"
	"github.com/charter-ledger/charter/internal/execution"
	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/txpool"
)

// apiServer is the node's JSON-RPC listener (HTTP and WebSocket).
type apiServer struct {
	n    *Node
	rpc  *rpc.Server
	ln   net.Listener
	done chan struct{}
	// closeAPI closes what the handler opened (the access log).
	closeAPI func()
}

func newAPIServer(n *Node) *apiServer { return &apiServer{n: n} }

func (a *apiServer) start() error {
	if a.n.cfg.HTTPAddr == "" {
		return nil
	}
	rcfg := a.n.cfg.RPC
	rcfg.Org = a.n.cfg.Org
	srv, err := rpc.NewServer(rpcBackend{a.n}, rcfg, a.n.PeerCount, a.n.log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.n.cfg.HTTPAddr)
	if err != nil {
		srv.Stop()
		return fmt.Errorf("JSON-RPC cannot listen on %s: %w", a.n.cfg.HTTPAddr, err)
	}
	a.rpc, a.ln = srv, ln
	var tlsCfg *tls.Config
	if api := a.n.cfg.API; api != nil && api.TLS {
		// A client certificate is asked for, never required: the access
		// check decides what a caller without one may do.
		tlsCfg = &tls.Config{
			Certificates: []tls.Certificate{a.n.cfg.Network.Certificate},
			MinVersion:   tls.VersionTLS12,
			ClientAuth:   tls.RequestClientCert,
		}
	}
	h, closeAPI, err := a.apiHandler(srv)
	if err != nil {
		closeAPI()
		srv.Stop()
		ln.Close()
		return err
	}
	a.closeAPI = closeAPI
	a.done = make(chan struct{})
	go func() {
		defer close(a.done)
		if err := srv.ServeHandler(ln, h, tlsCfg); err != nil {
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
	if a.rpc == nil {
		return
	}
	a.rpc.Stop()
	<-a.done
	if a.closeAPI != nil {
		a.closeAPI()
	}
}

// rpcBackend is the node seen by the JSON-RPC namespaces. It goes through
// the node's exported accessors only.
type rpcBackend struct{ n *Node }

var _ rpc.Backend = rpcBackend{}

func (b rpcBackend) ChainSpec() *chain.Spec       { return b.n.Spec() }
func (b rpcBackend) CurrentHeader() *types.Header { return b.n.Ledger().Head() }

// FinalizedHeader is the committed head: every engine hands the node
// final blocks only (raft and bft decide a block before it is committed,
// poa commits a block once a majority of the authorities accepted it and
// FinalityDepth sealed blocks are on top of it), so "safe" and
// "finalized" are the committed head on every engine. The engine's own
// head (poa's newest sealed block, not final yet and not committed here)
// is what charter_head answers for a numeric confirmation level.
func (b rpcBackend) FinalizedHeader() *types.Header { return b.n.Ledger().Head() }

// EngineHead answers charter_head's numeric confirmation levels.
func (b rpcBackend) EngineHead(confirmations uint64) *types.Header {
	return b.n.Engine().Head(confirmations)
}

var _ rpc.EngineHeadBackend = rpcBackend{}

func (b rpcBackend) HeaderByNumber(number uint64) *types.Header {
	return b.n.Ledger().HeaderByNumber(number)
}
func (b rpcBackend) BlockByNumber(number uint64) *types.Block {
	return b.n.Ledger().BlockByNumber(number)
}
func (b rpcBackend) BlockByHash(hash common.Hash) *types.Block { return b.n.Ledger().BlockByHash(hash) }
func (b rpcBackend) HeaderByHash(hash common.Hash) *types.Header {
	return b.n.Ledger().HeaderByHash(hash)
}
func (b rpcBackend) BodyKept(number uint64) error { return b.n.Ledger().BodyKept(number) }
func (b rpcBackend) StateAt(root common.Hash) (*state.StateDB, error) {
	return b.n.Ledger().StateAt(root)
}
func (b rpcBackend) GetReceipts(number uint64) (types.Receipts, error) {
	return b.n.Ledger().Receipts(number)
}
func (b rpcBackend) GetTransaction(hash common.Hash) (uint64, int, bool) {
	return b.n.Ledger().TxLookup(hash)
}

func (b rpcBackend) SendTx(tx *types.Transaction) error                  { return b.n.Pool().Add(tx) }
func (b rpcBackend) PoolNonce(addr common.Address) uint64                { return b.n.Pool().Nonce(addr) }
func (b rpcBackend) PoolTransaction(hash common.Hash) *types.Transaction { return b.n.Pool().Get(hash) }
func (b rpcBackend) PoolStats() (int, int)                               { return b.n.Pool().Stats() }
func (b rpcBackend) PoolContent() (map[common.Address][]*types.Transaction, map[common.Address][]*types.Transaction) {
	return b.n.Pool().Content()
}

func (b rpcBackend) Call(ctx context.Context, h *types.Header, st *state.StateDB, msg *core.Message) (*core.ExecutionResult, error) {
	return b.n.Executor().Call(ctx, h, st, msg)
}

func (b rpcBackend) EstimateGas(ctx context.Context, h *types.Header, st *state.StateDB, msg *core.Message, gasCap uint64) (uint64, *core.ExecutionResult, error) {
	gas, failed, err := b.n.Executor().EstimateGas(ctx, h, st, msg, gasCap)
	if errors.Is(err, execution.ErrGasCapReached) {
		err = fmt.Errorf("%w (%d)", rpc.ErrGasCapReached, gasCap)
	}
	return gas, failed, err
}

func (b rpcBackend) SubscribeChainEvent(ch chan<- events.ChainEvent) event.Subscription {
	return b.n.Bus().SubscribeChain(ch)
}

func (b rpcBackend) SubscribeNewTxsEvent(ch chan<- txpool.NewTxsEvent) event.Subscription {
	return b.n.Pool().SubscribeNewTxs(ch)
}

func (b rpcBackend) DevAccounts() []chain.DevAccount { return b.n.DevAccounts() }

var _ rpc.LogIndexBackend = rpcBackend{}

// LogIndex answers eth_getLogs from the SQL index when the node keeps one.
func (b rpcBackend) LogIndex() rpc.LogIndex {
	if ix := b.n.Index(); ix != nil {
		return ix
	}
	return nil // not a non-nil interface holding a nil *index.Index
}

// Privacy serves the priv_ and eea_ namespaces when the node holds a
// privacy key.
func (b rpcBackend) Privacy() rpc.Privacy {
	if b.n.priv == nil {
		return nil
	}
	return b.n.priv
}
