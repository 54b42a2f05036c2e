package main

import (
	"flag"
	"net"

	"github.com/charter-ledger/charter/internal/rpc"
)

// rpcFlags are the JSON-RPC bounds and browser origins that charter dev
// and charter node take. Flags left out keep rpc.DefaultConfig's values;
// node.New validates the result, and its errors name the flag.
type rpcFlags struct {
	fs       *flag.FlagSet
	cfg      rpc.Config
	cors, ws string
	corsFlag string
	wsFlag   string
}

func addRPCFlags(fs *flag.FlagSet, originsDefault string) *rpcFlags {
	d := rpc.DefaultConfig()
	f := &rpcFlags{fs: fs, cfg: d, corsFlag: "http.corsdomain", wsFlag: "ws.origins"}
	c := &f.cfg
	fs.DurationVar(&c.ReadHeaderTimeout, "http.read-header-timeout", d.ReadHeaderTimeout, "longest wait for a request's headers")
	fs.DurationVar(&c.ReadTimeout, "http.read-timeout", d.ReadTimeout, "longest wait for a whole request, body included (a slow body is cut here)")
	fs.DurationVar(&c.WriteTimeout, "http.write-timeout", d.WriteTimeout, "longest time to answer a request (more than --rpc.batch-timeout)")
	fs.DurationVar(&c.IdleTimeout, "http.idle-timeout", d.IdleTimeout, "how long a keep-alive connection may idle between requests")
	fs.IntVar(&c.MaxConns, "http.max-conns", d.MaxConns, "connections open at once, WebSockets included; more wait")
	fs.IntVar(&c.BatchItems, "rpc.batch-request-limit", d.BatchItems, "requests in one batch")
	fs.IntVar(&c.ResponseBytes, "rpc.batch-response-max-size", d.ResponseBytes, "bytes of one batch response")
	fs.IntVar(&c.BodyBytes, "rpc.max-request-bytes", d.BodyBytes, "bytes of one HTTP request or WebSocket message")
	fs.Uint64Var(&c.GasCap, "rpc.gascap", d.GasCap, "gas of one eth_call or eth_estimateGas")
	fs.DurationVar(&c.EVMTimeout, "rpc.evmtimeout", d.EVMTimeout, "time of one eth_call or eth_estimateGas")
	fs.DurationVar(&c.BatchTimeout, "rpc.batch-timeout", d.BatchTimeout, "time the heavy requests of one batch (or one request) may take together")
	fs.Uint64Var(&c.BatchGas, "rpc.batch-gascap", d.BatchGas, "gas the calls of one batch may use together")
	fs.IntVar(&c.FiltersPerClient, "rpc.filters-per-client", d.FiltersPerClient, "installed filters per client (a WebSocket connection, or an HTTP client's IP address)")
	fs.IntVar(&c.SubscriptionsPerConn, "ws.max-subscriptions", d.SubscriptionsPerConn, "subscriptions per WebSocket connection")
	fs.StringVar(&f.cors, f.corsFlag, "", "browser origins that may call JSON-RPC over HTTP: comma-separated origins (https://app.example.org) or * "+originsDefault)
	fs.StringVar(&f.ws, f.wsFlag, "", "browser origins that may open a JSON-RPC WebSocket: comma-separated origins or * "+originsDefault)
	return f
}

// config is the RPC configuration the flags give. corsSet and wsSet tell
// whether the origin flags were given at all.
func (f *rpcFlags) config() (cfg rpc.Config, corsSet, wsSet bool) {
	f.fs.Visit(func(fl *flagT) {
		switch fl.Name {
		case f.corsFlag:
			corsSet = true
		case f.wsFlag:
			wsSet = true
		}
	})
	cfg = f.cfg
	cfg.CORSDomains = rpc.ParseOriginList(f.cors)
	cfg.WSOrigins = rpc.ParseOriginList(f.ws)
	return cfg, corsSet, wsSet
}

// devOrigins are the origins of charter dev: what the flags say, else *
// when JSON-RPC listens on a loopback address only (browser wallets and
// dapps on the developer's machine), and none when it listens further.
func devOrigins(cfg *rpc.Config, corsSet, wsSet bool, host string) {
	if isLoopbackHost(host) {
		if !corsSet {
			cfg.CORSDomains = []string{"*"}
		}
		if !wsSet {
			cfg.WSOrigins = []string{"*"}
		}
	}
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
