package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"

	"github.com/charter-ledger/charter/internal/execution"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/node"
)

func runNode(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("node", stderr)
	home := fs.String("home", "", "the node's home folder, as written by 'charter init' (config.json, genesis, keys, data)")
	pwFile := fs.String("password-file", "", "password of encrypted node, TLS and privacy keys ('charter init --password-file'), on this file's first line")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the node's whole run to this file (go tool pprof)")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file when the node stops (go tool pprof; inuse_space is what was live)")
	allowDevKeys := fs.Bool("allow-dev-keys", false, "serve JSON-RPC beyond loopback although the genesis funds the development accounts or gives them roles (their keys are public)")
	indexOn := fs.Bool("index", false, "index final blocks into SQL: an SQLite file DATA/index.sqlite (query with charter sql or POST /api/v1/sql)")
	indexPG := fs.String("index.postgres", "", "index final blocks into this PostgreSQL database instead (postgres://user:pass@host:port/db)")
	syncMode := fs.String("sync", "", "how to start on an empty data directory: genesis (replay every block), snapshot (state sync from the peers' newest snapshot) or auto (snapshot if a peer offers one, else genesis); default: config.json's snapshots.sync, else genesis")
	stateHistory := fs.String("state.history", "", "past blocks whose state is kept for historical calls and proofs: N (1-128), or all (archive) (default: config.json's state.history, else what the data directory records, else 128)")
	historyBodies := fs.Int64("history.bodies", 0, "keep the bodies and receipts of the last N blocks only, deleting older ones in the background (headers and certificates stay); observers of bft and poa only, N at least 16; 0: keep every block (default: config.json's history.bodies, else 0)")
	parallelVerify := fs.Bool("experimental.parallel-verify", false, "EXPERIMENTAL, off by default: verify blocks built by other nodes by running their transactions speculatively in parallel (same result as sequential; blocks that call a system contract stay sequential)")
	parallelWorkers := fs.Int("experimental.parallel-workers", 0, "goroutines for --experimental.parallel-verify, the committer included (0: GOMAXPROCS, at most 64)")
	logFlags := addLogFlags(fs)
	rpcFlags := addRPCFlags(fs, "(default: config.json's httpCorsDomain and wsOrigins, else none)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *home == "" {
		return errors.New("--home is required: the node's folder written by 'charter init'")
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
	var writeHeap []func()
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			return fmt.Errorf("--memprofile: %w", err)
		}
		defer f.Close()
		// Written at the stop signal, before the node lets go of its state.
		writeHeap = append(writeHeap, func() {
			runtime.GC() // the profile's live heap is as of the last collection
			if err := pprof.WriteHeapProfile(f); err != nil {
				fmt.Fprintf(stderr, "charter node: --memprofile: %v\n", err)
			}
		})
	}
	hc, err := node.LoadHomeConfig(*home)
	if err != nil {
		return err
	}
	// The config file's log settings apply unless a flag overrides them.
	set := map[string]bool{}
	fs.Visit(func(f *flagT) { set[f.Name] = true })
	if !set["log.level"] && hc.LogLevel != "" {
		*logFlags.level = hc.LogLevel
	}
	if !set["log.format"] && hc.LogFormat != "" {
		*logFlags.format = hc.LogFormat
	}
	logger, err := logFlags.logger(stderr)
	if err != nil {
		return err
	}
	pw, err := readPassword("password-file", *pwFile)
	if err != nil {
		return err
	}
	cfg, err := hc.Load(*home, node.LoadOptions{Logger: logger, Password: pw, AllowDevKeys: *allowDevKeys})
	if err != nil {
		switch {
		case errors.Is(err, identity.ErrPasswordRequired):
			err = fmt.Errorf("%w; give --password-file FILE", err)
		case errors.Is(err, node.ErrDevKeysExposed):
			err = fmt.Errorf("%w; pass --allow-dev-keys to serve anyway, or set rpcAddr to 127.0.0.1 in %s", err, filepath.Join(*home, node.ConfigFile))
		}
		return fmt.Errorf("%s: %w", *home, err)
	}
	// The RPC flags apply over config.json; the origins only when given.
	rpcCfg, corsSet, wsSet := rpcFlags.config()
	if !corsSet {
		rpcCfg.CORSDomains = cfg.RPC.CORSDomains
	}
	if !wsSet {
		rpcCfg.WSOrigins = cfg.RPC.WSOrigins
	}
	cfg.RPC = rpcCfg
	cfg.Index = node.IndexFlags(*indexOn, *indexPG, cfg.Index)
	if *syncMode != "" {
		switch *syncMode {
		case node.SyncGenesis, node.SyncSnapshot, node.SyncAuto:
		default:
			return fmt.Errorf("--sync %q: want genesis, snapshot or auto", *syncMode)
		}
		cfg.Snapshots.Sync = *syncMode
	}
	if *stateHistory != "" {
		if cfg.StateHistory, err = node.ParseStateHistory(*stateHistory); err != nil {
			return fmt.Errorf("--state.history: %w", err)
		}
	}
	if set["history.bodies"] {
		if *historyBodies < 0 {
			return fmt.Errorf("--history.bodies %d: give a number of blocks (0: keep every block)", *historyBodies)
		}
		cfg.HistoryBodies = uint64(*historyBodies)
	}
	if *parallelWorkers < 0 {
		return fmt.Errorf("--experimental.parallel-workers %d: want 0 (GOMAXPROCS) or more", *parallelWorkers)
	}
	cfg.Execution = execution.Options{Parallel: *parallelVerify, Workers: *parallelWorkers}
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	h, ws, access := "http", "ws", "open"
	if a := hc.API; a != nil {
		if a.TLS {
			h, ws = "https", "wss"
		}
		access = a.Auth
	}
	return serveNode(n, logger, func() {
		fmt.Fprintf(stdout, "Charter node %s (%s), id %s, %s consensus, chain id %d\nJSON-RPC: %s://%s  %s://%s (access %s)\np2p: %s\n",
			hc.Name, hc.Org, n.Self().Hex(), cfg.Spec.Consensus.Engine, cfg.Spec.ChainID(), h, n.RPCAddr(), ws, n.RPCAddr(), access, n.P2PAddr())
	}, writeHeap...)
}
