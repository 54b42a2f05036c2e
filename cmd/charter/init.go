package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/node"
)

// networkFlags are the flags init and testnet share.
type networkFlags struct {
	validators  *int
	engine      *string
	orgs        *int
	noDev       *bool
	chainID     *uint64
	observers   *int
	blockTime   *time.Duration
	host        *string
	rpcPort     *int
	p2pPort     *int
	metricsPort *int
}

func addNetworkFlags(fs *flag.FlagSet) *networkFlags {
	return &networkFlags{
		validators:  fs.Int("validators", 4, "number of validator nodes"),
		observers:   fs.Int("observers", 0, "number of observer nodes after the validators: they follow the chain and serve RPC but never vote (raft only)"),
		engine:      fs.String("consensus", "raft", "consensus engine: raft, bft or poa"),
		orgs:        fs.Int("orgs", 0, "spread the validators over this many organizations (default: one per validator)"),
		noDev:       fs.Bool("no-dev-accounts", false, "do not prefund the 20 development accounts"),
		chainID:     fs.Uint64("chain-id", chain.DefaultChainID, "chain id"),
		blockTime:   fs.Duration("block-time", time.Duration(chain.DefaultBlockTimeMs)*time.Millisecond, "genesis block time: longest wait before waiting transactions are sealed"),
		host:        fs.String("host", "127.0.0.1", "address every node listens on"),
		rpcPort:     fs.Int("rpc.port", 8545, "JSON-RPC port of node 0; node i uses this + i"),
		p2pPort:     fs.Int("p2p.port", 30303, "p2p port of node 0; node i uses this + i"),
		metricsPort: fs.Int("metrics.port", 9545, "metrics port of node 0; node i uses this + i"),
	}
}

func (f *networkFlags) options(dir string) (node.InitOptions, error) {
	if *f.blockTime < 10*time.Millisecond || *f.blockTime > time.Hour {
		return node.InitOptions{}, fmt.Errorf("--block-time %s is outside [10ms, 1h]", *f.blockTime)
	}
	if *f.chainID == 0 {
		return node.InitOptions{}, fmt.Errorf("--chain-id must be positive")
	}
	return node.InitOptions{
		Dir:         dir,
		Validators:  *f.validators,
		Observers:   *f.observers,
		Orgs:        *f.orgs,
		Engine:      *f.engine,
		ChainID:     *f.chainID,
		DevAccounts: !*f.noDev,
		BlockTimeMs: uint64(f.blockTime.Milliseconds()),
		Host:        *f.host,
		RPCPort:     *f.rpcPort,
		P2PPort:     *f.p2pPort,
		MetricsPort: *f.metricsPort,
	}, nil
}

func runInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("init", stderr)
	nf := addNetworkFlags(fs)
	out := fs.String("out", "", "folder to write the network to (genesis.json, orgs/, node0/, ...)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required: the folder to write the network to")
	}
	opts, err := nf.options(*out)
	if err != nil {
		return err
	}
	spec, nodes, err := node.InitNetwork(opts)
	if err != nil {
		return err
	}
	dir, _ := filepath.Abs(*out)
	printNetwork(stdout, dir, spec, nodes)
	fmt.Fprintf(stdout, "\nRun one node:   charter node --home %s\nRun them all:   charter testnet --dir %s\n", nodes[0].Home, dir)
	return nil
}

func printNetwork(w io.Writer, dir string, spec *chain.Spec, nodes []node.InitNode) {
	observers := ""
	if n := len(nodes) - len(spec.Consensus.Validators); n > 0 {
		observers = fmt.Sprintf(" and %d observer(s)", n)
	}
	fmt.Fprintf(w, "Network in %s: chain id %d, %s consensus, %d validators%s in %d organizations\n",
		dir, spec.ChainID(), spec.Consensus.Engine, len(spec.Consensus.Validators), observers, len(spec.Organizations))
	fmt.Fprintf(w, "Genesis %s; organization CAs in %s\n", filepath.Join(dir, node.GenesisFile), filepath.Join(dir, "orgs"))
	for _, n := range nodes {
		role := "validator"
		if !slices.Contains(spec.Consensus.Validators, n.ID) {
			role = "observer"
		}
		fmt.Fprintf(w, "  %-6s %-6s %-9s id %s  rpc http://%s  p2p %s  home %s\n", n.Name, n.Org, role, n.ID.Hex(), n.Config.RPCAddr, n.Config.P2PAddr, n.Home)
	}
}
