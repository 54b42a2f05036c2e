package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/node"
)

// networkFlags are the flags init and testnet share.
type networkFlags struct {
	validators   *int
	engine       *string
	orgs         *int
	devAccounts  *bool
	noDev        *bool
	allowDevKeys *bool
	passwordFile *string
	chainID      *uint64
	observers    *int
	blockTime    *time.Duration
	params       *string
	host         *string
	rpcPort      *int
	p2pPort      *int
	metricsPort  *int
	apiAuth      *string
	apiTLS       *bool
}

// addNetworkFlags adds the network flags; devDefault is whether the
// development accounts are funded unless a flag says otherwise (testnet,
// a local playground: yes; init: no).
func addNetworkFlags(fs *flag.FlagSet, devDefault bool) *networkFlags {
	devUsage := "prefund the 20 development accounts (public keys of the test mnemonic) and give them read, write and deploy in org0: for a local playground only"
	noDevUsage := "do not prefund the development accounts (the default of init)"
	if devDefault {
		noDevUsage = "do not prefund the development accounts, nor give them roles"
	}
	nf := &networkFlags{
		validators:   fs.Int("validators", 4, "number of validator nodes"),
		observers:    fs.Int("observers", 0, "number of observer nodes after the validators: they follow the chain, serve RPC and forward transactions but never vote (raft: learners; bft, poa: nodes of a read-tier organization, observers)"),
		engine:       fs.String("consensus", "raft", "consensus engine: raft, bft or poa"),
		orgs:         fs.Int("orgs", 0, "spread the validators over this many organizations (default: one per validator)"),
		devAccounts:  fs.Bool("dev-accounts", devDefault, devUsage),
		noDev:        fs.Bool("no-dev-accounts", false, noDevUsage),
		allowDevKeys: fs.Bool("allow-dev-keys", false, "allow the development accounts with a --host beyond loopback (their keys are public: anyone who reaches an RPC port transacts with them)"),
		passwordFile: fs.String("password-file", "", "encrypt every private key written (CA, admin, node, TLS and privacy keys) with the password on this file's first line"),
		chainID:      fs.Uint64("chain-id", chain.DefaultChainID, "chain id"),
		blockTime:    fs.Duration("block-time", time.Duration(chain.DefaultBlockTimeMs)*time.Millisecond, "genesis block time: longest wait before waiting transactions are sealed (bft: consensus.params blockTime, the least time between two heights' starts)"),
		host:         fs.String("host", "127.0.0.1", "address every node listens on"),
		rpcPort:      fs.Int("rpc.port", 8545, "JSON-RPC port of node 0; node i uses this + i"),
		p2pPort:      fs.Int("p2p.port", 30303, "p2p port of node 0; node i uses this + i"),
		metricsPort:  fs.Int("metrics.port", 9545, "metrics port of node 0; node i uses this + i"),
		apiAuth:      fs.String("api-auth", "", "client access to the nodes' APIs: required (a token or client certificate; the default) or open (the default with --dev-accounts)"),
		apiTLS:       fs.Bool("api-tls", false, "serve the nodes' APIs over TLS with their certificates (default: on when --api-auth is required)"),
	}
	nf.params = fs.String("consensus-params", "", "the engine's genesis parameters (consensus.params): a JSON object, inline or in this file; "+
		`bft: {"timeoutPropose":"2s","timeoutVote":"500ms","timeoutGrowth":"500ms","blockTime":"250ms","emptyBlockPeriod":"0s"}; `+
		`poa: {"period":"1s","turnTimeout":"2s","confirmations":2} (durations as "500ms", "2s"; the values shown are the defaults)`)
	return nf
}

// devAccountsWanted resolves --dev-accounts and --no-dev-accounts (set:
// the flags given on the command line).
func (f *networkFlags) devAccountsWanted(set map[string]bool) (bool, error) {
	if *f.noDev {
		if set["dev-accounts"] && *f.devAccounts {
			return false, errors.New("--dev-accounts and --no-dev-accounts contradict each other; give one")
		}
		return false, nil
	}
	return *f.devAccounts, nil
}

func (f *networkFlags) options(dir string, set map[string]bool) (node.InitOptions, error) {
	if *f.blockTime < 10*time.Millisecond || *f.blockTime > time.Hour {
		return node.InitOptions{}, fmt.Errorf("--block-time %s is outside [10ms, 1h]", *f.blockTime)
	}
	if *f.chainID == 0 {
		return node.InitOptions{}, fmt.Errorf("--chain-id must be positive")
	}
	dev, err := f.devAccountsWanted(set)
	if err != nil {
		return node.InitOptions{}, err
	}
	pw, err := readPassword("password-file", *f.passwordFile)
	if err != nil {
		return node.InitOptions{}, err
	}
	var apiTLS *bool
	if set["api-tls"] {
		apiTLS = f.apiTLS
	}
	params, err := readConsensusParams(*f.params)
	if err != nil {
		return node.InitOptions{}, err
	}
	if set["block-time"] && *f.engine == "bft" {
		// bft paces its heights by consensus.params.blockTime (the
		// least time between two heights' starts), not by the spec's
		// block time.
		if params, err = withParam(params, "blockTime", f.blockTime.String()); err != nil {
			return node.InitOptions{}, err
		}
	}
	opts := node.InitOptions{
		APIAuth:      *f.apiAuth,
		APITLS:       apiTLS,
		Dir:          dir,
		Validators:   *f.validators,
		Observers:    *f.observers,
		Orgs:         *f.orgs,
		Engine:       *f.engine,
		ChainID:      *f.chainID,
		DevAccounts:  dev,
		AllowDevKeys: *f.allowDevKeys,
		Password:     pw,
		BlockTimeMs:  uint64(f.blockTime.Milliseconds()),
		Host:         *f.host,
		RPCPort:      *f.rpcPort,
		P2PPort:      *f.p2pPort,
		MetricsPort:  *f.metricsPort,
	}
	opts.ConsensusParams = params
	return opts, nil
}

// maxParamsBytes bounds a --consensus-params file.
const maxParamsBytes = 64 << 10

// readConsensusParams reads --consensus-params: inline JSON (starting
// with "{") or a file's; "" is none.
// withParam is params (a JSON object, or empty) with name set to value;
// params that give name already are refused, naming both places.
func withParam(params json.RawMessage, name, value string) (json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	if len(params) > 0 {
		if err := json.Unmarshal(params, &obj); err != nil {
			return nil, fmt.Errorf("--consensus-params: %v", err)
		}
	}
	if _, ok := obj[name]; ok {
		return nil, fmt.Errorf("--block-time and --consensus-params' %s both set the block time; give one of them", name)
	}
	obj[name], _ = json.Marshal(value)
	return json.Marshal(obj)
}

func readConsensusParams(arg string) (json.RawMessage, error) {
	text := strings.TrimSpace(arg)
	if text == "" {
		return nil, nil
	}
	raw := []byte(text)
	if !strings.HasPrefix(text, "{") {
		f, err := os.Open(arg)
		if err != nil {
			return nil, fmt.Errorf("--consensus-params: %v; give a JSON object or a file holding one", err)
		}
		defer f.Close()
		if raw, err = io.ReadAll(io.LimitReader(f, maxParamsBytes+1)); err != nil {
			return nil, fmt.Errorf("--consensus-params: %v", err)
		}
		if len(raw) > maxParamsBytes {
			return nil, fmt.Errorf("--consensus-params: %s is larger than %d bytes", arg, maxParamsBytes)
		}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("--consensus-params: want a JSON object of the engine's parameters: %v", err)
	}
	return json.RawMessage(bytes.TrimSpace(raw)), nil
}

// devKeysHint completes an error that refuses the public development
// keys beyond loopback with what to pass.
func devKeysHint(err error) error {
	if errors.Is(err, node.ErrDevKeysExposed) {
		return fmt.Errorf("%w; pass --allow-dev-keys to do so anyway, or listen on 127.0.0.1", err)
	}
	return err
}

// flagsSet lists the flags given on the command line.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flagT) { set[f.Name] = true })
	return set
}

func runInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("init", stderr)
	nf := addNetworkFlags(fs, false)
	out := fs.String("out", "", "folder to write the network to (genesis.json, orgs/, node0/, ...)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required: the folder to write the network to")
	}
	opts, err := nf.options(*out, flagsSet(fs))
	if err != nil {
		return err
	}
	spec, nodes, err := node.InitNetwork(opts)
	if err != nil {
		return devKeysHint(err)
	}
	dir, _ := filepath.Abs(*out)
	printNetwork(stdout, dir, spec, nodes)
	if opts.DevAccounts {
		fmt.Fprintf(stdout, "Development accounts: the %d accounts of the public test mnemonic are funded, with read, write and deploy in %s: a local playground only\n",
			chain.DevAccountCount, spec.Organizations[0].Name)
	} else {
		fmt.Fprintf(stdout, "Accounts: each organization's admin (orgs/ORG/%s) gives its accounts roles with 'charter members set-roles'; the development accounts get nothing (--dev-accounts for a local playground)\n",
			node.AdminAccountFile)
	}
	pwFlag := ""
	if *nf.passwordFile != "" {
		pwFlag = " --password-file " + *nf.passwordFile
	}
	fmt.Fprintf(stdout, "\nRun one node:   charter node --home %s%s\nRun them all:   charter testnet --dir %s%s\n", nodes[0].Home, pwFlag, dir, pwFlag)
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
	fmt.Fprintf(w, "Privacy keys: one per organization, public in the genesis and orgs/ORG/%s, private in each node home's %s\n",
		node.PrivacyPublicKeyFile, node.PrivacyKeyFile)
	for _, n := range nodes {
		role := "validator"
		if !slices.Contains(spec.Consensus.Validators, n.ID) {
			role = "observer"
		}
		scheme := "http"
		if n.Config.API != nil && n.Config.API.TLS {
			scheme = "https"
		}
		fmt.Fprintf(w, "  %-6s %-6s %-9s id %s  rpc %s://%s  p2p %s  home %s\n", n.Name, n.Org, role, n.ID.Hex(), scheme, n.Config.RPCAddr, n.Config.P2PAddr, n.Home)
	}
}
