package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/p2p"
	"github.com/charter-ledger/charter/internal/rpc"
)

// ConfigFile is the name of a node home's configuration file.
const ConfigFile = "config.json"

// HomeConfig is a node home's config.json: where the node's files are
// and which addresses it uses. Relative paths are relative to the home.
// `charter init` writes it; `charter node --home` reads it.
type HomeConfig struct {
	// Name and Org name the node (its certificate's CN and O).
	Name string `json:"name"`
	Org  string `json:"org"`
	// Genesis is the chain spec file.
	Genesis string `json:"genesis"`
	// DataDir holds the ledger and the engine's state.
	DataDir string `json:"dataDir"`
	// NodeKey is the secp256k1 node key file (its address is the node id).
	NodeKey string `json:"nodeKey"`
	// TLSCert and TLSKey are the node certificate (chain, leaf first) and
	// its P-256 key.
	TLSCert string `json:"tlsCert"`
	TLSKey  string `json:"tlsKey"`
	// PrivacyKey is the organization's privacy key file (default:
	// privacy.key in the home, which may be missing: the node then takes
	// no part in private transactions; a file named here must exist).
	PrivacyKey string `json:"privacyKey,omitempty"`
	// RPCAddr is host:port of JSON-RPC (HTTP and WebSocket).
	RPCAddr string `json:"rpcAddr"`
	// P2PAddr is host:port of the p2p listener.
	P2PAddr string `json:"p2pAddr"`
	// MetricsAddr is host:port of /metrics, /healthz and /readyz; empty: none.
	MetricsAddr string `json:"metricsAddr,omitempty"`
	// Peers are the static peers.
	Peers []HomePeer `json:"peers"`
	// LogLevel (debug, info, warn, error) and LogFormat (text, json).
	LogLevel  string `json:"logLevel,omitempty"`
	LogFormat string `json:"logFormat,omitempty"`
	// HTTPCorsDomain and WSOrigins are the browser origins that may use
	// JSON-RPC over HTTP and WebSocket ("*" or origins); empty: none.
	HTTPCorsDomain []string `json:"httpCorsDomain,omitempty"`
	WSOrigins      []string `json:"wsOrigins,omitempty"`
	// API is how clients authenticate to rpcAddr (TLS, tokens, client
	// certificates, rate limits, access log); nil: open, plain HTTP.
	API *HomeAPI `json:"api,omitempty"`
	// Index is the SQL index of final blocks; nil or not enabled: none.
	Index *HomeIndex `json:"index,omitempty"`
	// Snapshots: the snapshots the node makes for state sync, and how it
	// starts on an empty data directory; nil: HomeSnapshots' defaults.
	Snapshots *HomeSnapshots `json:"snapshots,omitempty"`
	// State is how much past state the node keeps; nil: the default.
	State *HomeState `json:"state,omitempty"`
	// History is how much of the chain's history the node keeps; nil:
	// every block's body and receipts.
	History *HomeHistory `json:"history,omitempty"`
}

// HomePeer is one static peer of a HomeConfig.
type HomePeer struct {
	Name string         `json:"name,omitempty"`
	Addr string         `json:"addr"`
	ID   common.Address `json:"id"`
}

// LoadHomeConfig reads and validates HOME/config.json. Errors name the
// file and the field.
func LoadHomeConfig(home string) (*HomeConfig, error) {
	path := filepath.Join(home, ConfigFile)
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist; is --home a folder written by 'charter init'?", path)
		}
		return nil, err
	}
	c, err := parseHomeConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// parseHomeConfig decodes and validates the content of a config.json.
// Unknown fields are an error; errors name the field.
func parseHomeConfig(data []byte) (*HomeConfig, error) {
	var c HomeConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON document")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate reports the first field that is wrong.
func (c *HomeConfig) Validate() error {
	required := map[string]string{"genesis": c.Genesis, "dataDir": c.DataDir, "nodeKey": c.NodeKey,
		"tlsCert": c.TLSCert, "tlsKey": c.TLSKey, "rpcAddr": c.RPCAddr, "p2pAddr": c.P2PAddr}
	for _, f := range []string{"genesis", "dataDir", "nodeKey", "tlsCert", "tlsKey", "rpcAddr", "p2pAddr"} {
		if strings.TrimSpace(required[f]) == "" {
			return fmt.Errorf("%s: required", f)
		}
	}
	for f, addr := range map[string]string{"rpcAddr": c.RPCAddr, "p2pAddr": c.P2PAddr, "metricsAddr": c.MetricsAddr} {
		if addr == "" {
			continue
		}
		if err := checkHostPort(addr); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	for i, p := range c.Peers {
		if err := checkHostPort(p.Addr); err != nil {
			return fmt.Errorf("peers[%d].addr: %w", i, err)
		}
		if p.ID == (common.Address{}) {
			return fmt.Errorf("peers[%d].id: required (the peer's node id)", i)
		}
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("logLevel: %q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "", "text", "json":
	default:
		return fmt.Errorf("logFormat: %q is not text or json", c.LogFormat)
	}
	if err := rpc.CheckOrigins("httpCorsDomain", c.HTTPCorsDomain); err != nil {
		return err
	}
	if err := rpc.CheckOrigins("wsOrigins", c.WSOrigins); err != nil {
		return err
	}
	if c.API != nil {
		if err := c.API.validate(); err != nil {
			return err
		}
	}
	if c.Snapshots != nil {
		if err := c.Snapshots.validate(); err != nil {
			return err
		}
	}
	return nil
}

// checkHostPort accepts host:port with a numeric port.
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", addr, err)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || (p == 0 && port != "0") {
		return fmt.Errorf("%q: port %q is not a port number", addr, port)
	}
	return nil
}

// Write stores the config as HOME/config.json.
func (c *HomeConfig) Write(home string) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(home, ConfigFile), append(data, '\n'), 0o644)
}

// path resolves a path of the config against the home folder.
func homePath(home, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(home, p)
}

// LoadOptions are what a node's operator adds to its home config when
// loading it (`charter node` flags).
type LoadOptions struct {
	Logger *slog.Logger
	// Password opens encrypted node and TLS keys (nil: the keys must be
	// unencrypted; an encrypted one gives identity.ErrPasswordRequired).
	Password []byte
	// AllowDevKeys lets the node serve RPC beyond loopback although its
	// genesis funds the development accounts or grants them roles
	// (ErrDevKeysExposed otherwise).
	AllowDevKeys bool
}

// NodeConfig is Load with only a logger: unencrypted keys, and RPC beyond
// loopback refused while the genesis empowers the development keys.
func (c *HomeConfig) NodeConfig(home string, logger *slog.Logger) (Config, error) {
	return c.Load(home, LoadOptions{Logger: logger})
}

// Load reads what the home config names (genesis, node key, TLS identity)
// into a node Config. Errors name the file or field. Key files that group
// or others may read are refused (identity.ErrKeyFileMode).
func (c *HomeConfig) Load(home string, opts LoadOptions) (Config, error) {
	logger := opts.Logger
	spec, err := chain.LoadSpec(homePath(home, c.Genesis))
	if err != nil {
		return Config{}, err
	}
	if !opts.AllowDevKeys {
		if err := CheckDevKeys(spec, c.RPCAddr); err != nil {
			return Config{}, fmt.Errorf("rpcAddr: %w", err)
		}
	}
	key, err := identity.LoadNodeKey(homePath(home, c.NodeKey), opts.Password)
	if err != nil {
		return Config{}, fmt.Errorf("nodeKey: %w", err)
	}
	cert, err := identity.LoadTLSCertificate(homePath(home, c.TLSCert), homePath(home, c.TLSKey), opts.Password)
	if err != nil {
		return Config{}, fmt.Errorf("tlsCert/tlsKey: %w", err)
	}
	privKey, privPath, err := c.loadPrivacyKey(home, opts.Password)
	if err != nil {
		return Config{}, err
	}
	if spec.Consensus.Engine == "solo" {
		return Config{}, fmt.Errorf("genesis %s: consensus.engine: solo runs one node alone ('charter dev'); a network needs raft, bft or poa", c.Genesis)
	}
	// A node outside the genesis validators and organizations may be one
	// governance admitted since: its peers' registries decide.
	peers := make([]p2p.PeerAddr, len(c.Peers))
	for i, p := range c.Peers {
		peers[i] = p2p.PeerAddr{Addr: p.Addr, ID: p.ID}
	}
	return Config{
		DataDir:     homePath(home, c.DataDir),
		Spec:        spec,
		NodeKey:     key,
		HTTPAddr:    c.RPCAddr,
		MetricsAddr: c.MetricsAddr,
		RPC:         rpc.Config{CORSDomains: c.HTTPCorsDomain, WSOrigins: c.WSOrigins},
		Network: &NetworkConfig{
			ListenAddr:  c.P2PAddr,
			Peers:       peers,
			Certificate: cert,
		},
		Logger:         logger,
		PrivacyKey:     privKey,
		PrivacyKeyFile: privPath,
		API:            c.API,
		Org:            c.Org,
		Index:          c.Index.config(home),
		Home:           home,
		Name:           c.Name,
		Snapshots:      c.Snapshots.config(),
		StateHistory:   c.State.history(),
		HistoryBodies:  c.History.bodies(),
	}, nil
}

// ErrDevKeysExposed: a node would serve JSON-RPC beyond this machine while
// its genesis funds the development accounts or grants them roles. Their
// keys are public (the mnemonic every Hardhat and Anvil user knows), so
// anyone who reaches the port could transact with them.
var ErrDevKeysExposed = errors.New("the development keys are public")

// DevKeysInGenesis says how a genesis empowers the development accounts
// (chain.DevAccounts): "prefunds", "grants roles to", both joined by
// "and", or "" when it does neither.
func DevKeysInGenesis(spec *chain.Spec) (string, error) {
	accts, err := chain.DevAccounts(chain.DevAccountCount)
	if err != nil {
		return "", err
	}
	dev := make(map[common.Address]bool, len(accts))
	for _, a := range accts {
		dev[a.Address] = true
	}
	funded, roles := false, false
	for addr, a := range spec.Alloc {
		funded = funded || dev[addr] && a.Balance != nil && a.Balance.Sign() > 0
	}
	if spec.Governance != nil {
		for _, a := range spec.Governance.Accounts {
			roles = roles || dev[a.Address] && len(a.Roles) > 0
		}
	}
	switch {
	case funded && roles:
		return "prefunds and grants roles to", nil
	case funded:
		return "prefunds", nil
	case roles:
		return "grants roles to", nil
	}
	return "", nil
}

// CheckDevKeys refuses JSON-RPC on rpcAddr beyond loopback while the
// genesis empowers the development accounts (ErrDevKeysExposed).
func CheckDevKeys(spec *chain.Spec, rpcAddr string) error {
	if IsLoopback(rpcAddr) {
		return nil
	}
	how, err := DevKeysInGenesis(spec)
	if err != nil || how == "" {
		return err
	}
	return fmt.Errorf("%s is reachable from other machines while the genesis %s the %d development accounts: %w, so anyone who reaches the port transacts with them",
		rpcAddr, how, chain.DevAccountCount, ErrDevKeysExposed)
}

// IsLoopback reports whether host:port (or a bare host) listens on
// loopback only: localhost, 127.0.0.0/8 or ::1. An empty host, 0.0.0.0,
// :: and any other name or address may be reached from elsewhere.
func IsLoopback(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
