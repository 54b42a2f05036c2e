package main

import (
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/console"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/node"
	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
)

func runDev(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", stderr)
	datadir := fs.String("datadir", "", "data directory; the chain survives restarts (default: a temporary directory removed on exit)")
	httpAddr := fs.String("http.addr", "127.0.0.1", "JSON-RPC listen address (HTTP and WebSocket)")
	httpPort := fs.Int("http.port", 8545, "JSON-RPC port (HTTP and WebSocket)")
	metricsAddr := fs.String("metrics.addr", "", "serve /metrics, /healthz and /readyz on this host:port (default: off)")
	chainID := fs.Uint64("chain-id", chain.DefaultChainID, "chain id")
	blockTime := fs.Duration("block-time", time.Second, "longest wait before sealing waiting transactions; when given, empty blocks are sealed at this interval too")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the node's whole run to this file")
	indexOn := fs.Bool("index", true, "index final blocks into SQL: an SQLite file in the data directory (query with charter sql or POST /api/v1/sql); --index=false: no index")
	indexPG := fs.String("index.postgres", "", "index final blocks into this PostgreSQL database instead (postgres://user:pass@host:port/db)")
	stateHistory := fs.String("state.history", "", "past blocks whose state is kept for historical calls and proofs: N (1-128), or all (archive) (default: what the data directory records, else 128)")
	allowDevKeys := fs.Bool("allow-dev-keys", false, "serve the unlocked development accounts on an --http.addr other machines can reach")
	logFlags := addLogFlags(fs)
	rpcFlags := addRPCFlags(fs, "(default: * when --http.addr is a loopback address, none otherwise)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	forceEmpty := false
	fs.Visit(func(f *flagT) { forceEmpty = forceEmpty || f.Name == "block-time" })
	if *httpPort < 0 || *httpPort > 65535 {
		return fmt.Errorf("--http.port %d is not a port number", *httpPort)
	}
	if *chainID == 0 {
		return fmt.Errorf("--chain-id must be positive")
	}
	if *blockTime < 10*time.Millisecond || *blockTime > time.Hour {
		return fmt.Errorf("--block-time %s is outside [10ms, 1h]", *blockTime)
	}
	if _, port, err := net.SplitHostPort(*httpAddr); err == nil {
		return fmt.Errorf("--http.addr takes a host (e.g. 127.0.0.1); give the port with --http.port %s", port)
	}
	if addr := net.JoinHostPort(*httpAddr, strconv.Itoa(*httpPort)); !*allowDevKeys && !node.IsLoopback(addr) {
		return fmt.Errorf("--http.addr %s is reachable from other machines, and charter dev signs with the %d development accounts, whose keys are public: use a loopback address, or pass --allow-dev-keys", *httpAddr, chain.DevAccountCount)
	}
	logger, err := logFlags.logger(stderr)
	if err != nil {
		return err
	}
	spec, err := chain.DevSpec(*chainID, uint64(blockTime.Milliseconds()))
	if err != nil {
		return err
	}
	accts, err := chain.DevAccounts(chain.DevAccountCount)
	if err != nil {
		return err
	}
	dir := *datadir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "charter-dev-"); err != nil {
			return fmt.Errorf("create temporary data directory: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	// The dev node key is derived from the data directory's first start, so
	// the coinbase is stable across restarts of one chain.
	_, statErr := os.Stat(filepath.Join(dir, "nodekey"))
	fresh := errors.Is(statErr, os.ErrNotExist)
	key, err := loadOrCreateNodeKey(dir)
	if err != nil {
		return err
	}
	devNodeGenesis(spec, identity.NodeIDOf(key))
	// So is the development organization's privacy key, which the genesis
	// lists.
	privKey, err := loadOrCreateDevPrivacyKey(dir, fresh, logger)
	if err != nil {
		return err
	}
	if privKey != nil {
		dev := spec.Org(chain.DevOrg)
		dev.PrivacyKey, dev.PrivacyKEM = privKey.Public().Identity().String(), privKey.Public().KEMString()
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	var history uint64
	if *stateHistory != "" {
		if history, err = node.ParseStateHistory(*stateHistory); err != nil {
			return fmt.Errorf("--state.history: %w", err)
		}
	}
	rpcCfg, corsSet, wsSet := rpcFlags.config()
	devOrigins(&rpcCfg, corsSet, wsSet, *httpAddr)
	n, err := node.New(node.Config{
		DataDir:          dir,
		Spec:             spec,
		NodeKey:          key,
		HTTPAddr:         net.JoinHostPort(*httpAddr, strconv.Itoa(*httpPort)),
		MetricsAddr:      *metricsAddr,
		DevAccounts:      accts,
		ForceEmptyBlocks: forceEmpty,
		BlockTime:        *blockTime,
		RPC:              rpcCfg,
		Logger:           logger,
		PrivacyKey:       privKey,
		PrivacyKeyFile:   filepath.Join(dir, node.PrivacyKeyFile),
		Index:            node.IndexFlags(*indexOn, *indexPG, nil),
		StateHistory:     history,
	})
	if err != nil {
		return err
	}
	return serveNode(n, logger, func() {
		printDevBanner(stdout, n.RPCAddr(), spec.ChainID(), accts)
		if n.Index() != nil {
			fmt.Fprintf(stdout, "SQL index of final blocks: charter sql \"SELECT number, tx_count FROM blocks\" --rpc http://%s\n\n", n.RPCAddr())
		}
	})
}

func printDevBanner(w io.Writer, addr string, chainID uint64, accts []chain.DevAccount) {
	fmt.Fprintf(w, "Charter development chain %s, chain id %d\n", rpc.Version, chainID)
	fmt.Fprintf(w, "JSON-RPC: http://%s  ws://%s\n", addr, addr)
	fmt.Fprintf(w, "Web console: http://%s%s\n\n", addr, console.Path)
	fmt.Fprintf(w, "Development accounts, %s ETH each. DEVELOPMENT KEYS: publicly known, never use them on a real network.\n", "10000")
	fmt.Fprintf(w, "Mnemonic: %s (m/44'/60'/0'/0/i)\n\n", chain.DevMnemonic)
	for _, a := range accts {
		fmt.Fprintf(w, "(%d) %s  key %s\n", a.Index, a.Address.Hex(), hexutil.Encode(crypto.FromECDSA(a.Key)))
	}
	fmt.Fprintln(w)
}

// devNodeGenesis makes the dev node (id, its node key's address) the dev
// organization's node in spec's registry, funded for the fees of the
// privacy calls it sends (markers), as init does for every node.
func devNodeGenesis(spec *chain.Spec, id common.Address) {
	spec.Governance.Nodes = append(spec.Governance.Nodes, system.GenesisNode{ID: id, Org: chain.DevOrg})
	spec.Alloc[id] = types.Account{Balance: new(big.Int).Set(node.NodeBalance)}
}
