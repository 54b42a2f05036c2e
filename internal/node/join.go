package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
)

// PeersFile lists a network's nodes for those who join it: names, p2p
// addresses and node ids, public information. `charter init` writes it.
const PeersFile = "peers.json"

// JoinOptions describe a new organization's first node.
type JoinOptions struct {
	// Genesis is the network's genesis file; Peers its peers.json.
	Genesis, Peers string
	// Org names the new organization; Dir receives its CA, admin
	// identities and the node home (Dir/node).
	Org, Dir string
	// Host, RPCPort, P2PPort and MetricsPort are the node's addresses.
	Host                          string
	RPCPort, P2PPort, MetricsPort int
	// Password, when not empty, encrypts every private key written (CA,
	// admin, node and TLS keys), as InitOptions.Password.
	Password []byte
	// AllowDevKeys permits a Host beyond loopback on a network whose
	// genesis empowers the development accounts, as InitOptions.AllowDevKeys.
	AllowDevKeys bool
	// APIAuth and APITLS are the node's api section, as InitOptions's:
	// authentication required and TLS unless the genesis empowers the
	// development accounts (a playground).
	APIAuth string
	APITLS  *bool
}

// JoinResult is what the consortium's members need to admit the new
// organization by a proposal (written to Dir/join.json too).
type JoinResult struct {
	Org         string         `json:"org"`
	Roots       string         `json:"roots"` // file of the root certificate (PEM)
	Admin       common.Address `json:"admin"`
	AdminKey    string         `json:"adminKey"`
	NodeID      common.Address `json:"nodeId"`
	Fingerprint common.Hash    `json:"fingerprint"`
	Home        string         `json:"home"`
	P2PAddr     string         `json:"p2pAddr"`
	RPCAddr     string         `json:"rpcAddr"`

	// PrivacyKey is the organization's privacy identity; PrivacyKeyFile its
	// public key file, for AddOrganization's --privacy-key.
	PrivacyKey     string `json:"privacyKey"`
	PrivacyKeyFile string `json:"privacyKeyFile"`
}

// Join prepares a new organization and its node: root CA, admin
// certificate and governance account, privacy key (Dir/privacy.pub, the
// private key in the node home), node key and TLS certificate, and a
// node home that dials the network's peers. The node runs as soon as the
// consortium admits the organization (until then its peers refuse it).
func Join(o JoinOptions) (*JoinResult, error) {
	switch {
	case o.Genesis == "" || o.Peers == "" || o.Org == "" || o.Dir == "":
		return nil, errors.New("--genesis, --peers, --org and --out are required")
	case o.RPCPort < 1 || o.RPCPort > 65535 || o.P2PPort < 1 || o.P2PPort > 65535 || o.MetricsPort < 0 || o.MetricsPort > 65535:
		return nil, fmt.Errorf("ports must be 1 to 65535")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	spec, err := chain.LoadSpec(o.Genesis)
	if err != nil {
		return nil, err
	}
	if spec.Org(o.Org) != nil {
		return nil, fmt.Errorf("--org %s: the genesis has an organization of that name already", o.Org)
	}
	if !o.AllowDevKeys {
		if err := CheckDevKeys(spec, o.Host); err != nil {
			return nil, fmt.Errorf("--host %w", err)
		}
	}
	raw, err := os.ReadFile(o.Peers)
	if err != nil {
		return nil, fmt.Errorf("--peers: %w", err)
	}
	var peers []HomePeer
	if err := json.Unmarshal(raw, &peers); err != nil || len(peers) == 0 {
		return nil, fmt.Errorf("--peers %s: want a JSON list of {name, addr, id}: %v", o.Peers, err)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err == nil {
		return nil, fmt.Errorf("%s exists already; remove it or choose another --out", dir)
	}
	home := filepath.Join(dir, "node")
	ca, admin, err := writeOrg(dir, o.Org, o.Password)
	if err != nil {
		return nil, err
	}
	nodeID, fp, err := writeNodeIdentity(home, o.Org+"-node", o.Host, ca, o.Password)
	if err != nil {
		return nil, err
	}
	privKey, err := NewOrgPrivacyKey(dir)
	if err != nil {
		return nil, err
	}
	if err := identity.SavePrivacyKey(filepath.Join(home, PrivacyKeyFile), privKey, o.Password); err != nil {
		return nil, err
	}
	genesis, err := os.ReadFile(o.Genesis)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(home, GenesisFile), genesis, 0o644); err != nil {
		return nil, err
	}
	cfg := HomeConfig{
		Name: o.Org + "-node", Org: o.Org, Genesis: GenesisFile, DataDir: "data", NodeKey: nodeKeyFile,
		TLSCert: filepath.Join("tls", "node.crt"), TLSKey: filepath.Join("tls", "node.key"), PrivacyKey: PrivacyKeyFile,
		RPCAddr: net.JoinHostPort(o.Host, strconv.Itoa(o.RPCPort)),
		P2PAddr: net.JoinHostPort(o.Host, strconv.Itoa(o.P2PPort)),
		Peers:   peers,
	}
	devHow, err := DevKeysInGenesis(spec)
	if err != nil {
		return nil, err
	}
	initLike := InitOptions{APIAuth: o.APIAuth, APITLS: o.APITLS, DevAccounts: devHow != ""}
	if cfg.API, err = initLike.api(); err != nil {
		return nil, err
	}
	if o.MetricsPort > 0 {
		cfg.MetricsAddr = net.JoinHostPort(o.Host, strconv.Itoa(o.MetricsPort))
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Write(home); err != nil {
		return nil, err
	}
	res := &JoinResult{Org: o.Org, Roots: filepath.Join(dir, "ca.crt"), Admin: admin,
		AdminKey: filepath.Join(dir, AdminAccountFile), NodeID: nodeID,
		Fingerprint: fp, Home: home, P2PAddr: cfg.P2PAddr, RPCAddr: cfg.RPCAddr,
		PrivacyKey: privKey.Public().Identity().String(), PrivacyKeyFile: filepath.Join(dir, PrivacyPublicKeyFile)}
	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "join.json"), append(out, '\n'), 0o644); err != nil {
		return nil, err
	}
	return res, nil
}

// writePeers writes DIR/peers.json for the nodes of a network.
func writePeers(dir string, nodes []InitNode) error {
	var peers []HomePeer
	for _, nd := range nodes {
		peers = append(peers, HomePeer{Name: nd.Name, Addr: nd.Config.P2PAddr, ID: nd.ID})
	}
	raw, err := json.MarshalIndent(peers, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, PeersFile), append(raw, '\n'), 0o644)
}
