package node

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/engines"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/privacy"
	"github.com/charter-ledger/charter/internal/system"
)

// InitOptions describe a network for InitNetwork.
type InitOptions struct {
	// Dir receives genesis.json, orgs/ORG (each organization's CA) and
	// one home folder per node (node0, node1, ...).
	Dir string
	// Validators is the number of validator nodes (node0 ...).
	Validators int
	// Observers is the number of observer nodes after the validators: they
	// follow the chain, serve RPC and forward transactions but never vote.
	// On raft they are learners of the validators' organizations; on bft
	// and poa they are the nodes of one more organization, ObserverOrg, of
	// the read tier (which may never run a validator), and follow the
	// chain by checking the validators' certificates (bft) or seals and
	// votes (poa).
	Observers int
	// Orgs spreads the validators over this many organizations, node i
	// in organization i mod Orgs. 0 means one per validator.
	Orgs int
	// Engine is raft, bft or poa.
	Engine string
	// ChainID of the network; 0 means chain.DefaultChainID.
	ChainID uint64
	// DevAccounts prefunds the development accounts and gives them read,
	// write and deploy in the first organization. Their keys are public:
	// for a local playground only (off by default in `charter init`).
	DevAccounts bool
	// AllowDevKeys permits DevAccounts with a Host beyond loopback, whose
	// nodes then need the same permission to start (LoadOptions).
	AllowDevKeys bool
	// Password, when not empty, encrypts every private key written: the
	// organizations' CA keys, admin TLS and account keys, and the nodes'
	// node and TLS keys (identity's PEMEncryptedKey format).
	Password []byte
	// BlockTimeMs of the genesis; 0 means the default.
	BlockTimeMs uint64
	// ConsensusParams is the genesis consensus.params: a JSON object of
	// the engine's parameters (bft: timeoutPropose, timeoutVote,
	// timeoutGrowth, blockTime, emptyBlockPeriod; poa: period,
	// turnTimeout, confirmations; raft: see raft.Params). Nil: the
	// defaults. raft's learners come from Observers, not from here.
	ConsensusParams json.RawMessage
	// Host is the address every node listens on; "" means 127.0.0.1.
	Host string
	// RPCPort, P2PPort and MetricsPort are node 0's ports; node i adds i.
	// Zero means 8545, 30303 and 9545.
	RPCPort, P2PPort, MetricsPort int
	// APIAuth is the nodes' api.auth: "open" or "required". "" means
	// required, and open on a playground (DevAccounts).
	APIAuth string
	// APITLS serves the nodes' API over TLS; nil means on when
	// authentication is required (tokens never cross plain HTTP).
	APITLS *bool
}

// api is the api section every node of the network gets.
func (o *InitOptions) api() (*HomeAPI, error) {
	a := &HomeAPI{Auth: o.APIAuth}
	if a.Auth == "" {
		a.Auth = APIRequired
		if o.DevAccounts {
			a.Auth = APIOpen
		}
	}
	a.TLS = a.Auth == APIRequired
	if o.APITLS != nil {
		a.TLS = *o.APITLS
	}
	if err := a.validate(); err != nil {
		return nil, fmt.Errorf("--api-auth: %q is not open or required", o.APIAuth)
	}
	return a, nil
}

// InitNode is one node InitNetwork wrote.
type InitNode struct {
	Name, Org string
	Home      string // absolute
	ID        common.Address
	Config    HomeConfig
}

// ObserverOrg names the read-tier organization InitNetwork makes for the
// observers of a bft or poa network.
const ObserverOrg = "observers"

// Init file names inside the output folder and each home.
const (
	GenesisFile = "genesis.json"
	orgsDir     = "orgs"
	nodeKeyFile = "nodekey"
	// AdminAccountFile is an organization's governance account key
	// (secp256k1, the node key format), in orgs/ORG.
	AdminAccountFile = "admin-account.key"
)

// AdminBalance funds each organization's admin account at genesis, for
// the gas of its governance transactions: 1,000 ETH.
var AdminBalance = new(big.Int).Mul(big.NewInt(1000), big.NewInt(1e18))

// NodeBalance funds each node's address (its node key's) at genesis, for
// the fees of the privacy calls it sends (markers, disclosures): 100 ETH.
var NodeBalance = new(big.Int).Mul(big.NewInt(100), big.NewInt(1e18))

// InitNetwork writes a whole network into opts.Dir: each organization's
// root CA (orgs/ORG/ca.crt, ca.key 0600) and an administrator certificate,
// each node's home (node key 0600, TLS certificate and key 0600,
// config.json, a copy of the genesis, the organization's privacy key
// privacy.key 0600), and genesis.json listing the organizations with
// their roots and privacy public keys (also in orgs/ORG/privacy.pub), the
// validators by node id and the engine. It refuses a folder that already holds a genesis.
func InitNetwork(opts InitOptions) (*chain.Spec, []InitNode, error) {
	if err := opts.defaults(); err != nil {
		return nil, nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, GenesisFile)); err == nil {
		return nil, nil, fmt.Errorf("%s exists already; remove %s or choose another --out", filepath.Join(dir, GenesisFile), dir)
	}
	// The engine's parameters are checked before anything is written.
	placeholder := make([]common.Address, opts.Validators)
	for i := range placeholder {
		placeholder[i] = common.BigToAddress(big.NewInt(int64(i + 1)))
	}
	if err := opts.checkParams(opts.ConsensusParams, placeholder); err != nil {
		return nil, nil, err
	}
	total := opts.Validators + opts.Observers
	for i := 0; i < total; i++ {
		if _, err := os.Stat(filepath.Join(dir, nodeName(i))); err == nil {
			return nil, nil, fmt.Errorf("%s exists already; remove it or choose another --out", filepath.Join(dir, nodeName(i)))
		}
	}
	if opts.DevAccounts && !opts.AllowDevKeys && !IsLoopback(opts.Host) {
		return nil, nil, fmt.Errorf("--host %s is reachable from other machines and the %d development accounts would be funded and allowed to transact: %w",
			opts.Host, chain.DevAccountCount, ErrDevKeysExposed)
	}
	api, err := opts.api()
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}

	// Organizations and their CAs: the validators' (validate tier), and on
	// bft and poa one of the read tier for the observers.
	numOrgs := opts.Orgs
	readOrg := opts.Observers > 0 && opts.Engine != "raft"
	if readOrg {
		numOrgs++
	}
	cas := make([]*identity.CA, numOrgs)
	gov := &system.GenesisSpec{}
	fundAlloc := types.GenesisAlloc{}
	orgs := make([]chain.Organization, numOrgs)
	privKeys := make([]*privacy.PrivateKey, numOrgs)
	for k := range cas {
		name, tier, roles := "org"+strconv.Itoa(k), chain.TierValidate, []string{"read", "write", "admin"}
		if k == opts.Orgs {
			name, tier, roles = ObserverOrg, chain.TierRead, []string{"read", "admin"}
		}
		ca, admin, err := writeOrg(filepath.Join(dir, orgsDir, name), name, opts.Password)
		if err != nil {
			return nil, nil, err
		}
		if privKeys[k], err = NewOrgPrivacyKey(filepath.Join(dir, orgsDir, name)); err != nil {
			return nil, nil, err
		}
		gov.Accounts = append(gov.Accounts, system.GenesisAccount{Address: admin, Org: name, Roles: roles})
		fundAlloc[admin] = types.Account{Balance: new(big.Int).Set(AdminBalance)}
		cas[k] = ca
		orgs[k] = chain.Organization{Name: name, Roots: []string{string(identity.EncodeCertsPEM(ca.Cert))}, Tier: tier}
		setOrgPrivacyKey(&orgs[k], privKeys[k].Public())
	}
	// orgOf is the organization of node i: validators in turn over the
	// validators' organizations, observers in the read tier's when there
	// is one.
	orgOf := func(i int) int {
		if readOrg && i >= opts.Validators {
			return opts.Orgs
		}
		return i % opts.Orgs
	}

	// Nodes: keys and certificates.
	nodes := make([]InitNode, total)
	for i := range nodes {
		nd := &nodes[i]
		k := orgOf(i)
		nd.Name, nd.Org, nd.Home = nodeName(i), orgs[k].Name, filepath.Join(dir, nodeName(i))
		id, fp, err := writeNodeIdentity(nd.Home, nd.Name, opts.Host, cas[k], opts.Password)
		if err != nil {
			return nil, nil, err
		}
		nd.ID = id
		gov.Nodes = append(gov.Nodes, system.GenesisNode{ID: id, Org: nd.Org, Fingerprint: fp})
		fundAlloc[id] = types.Account{Balance: new(big.Int).Set(NodeBalance)}
		if err := identity.SavePrivacyKey(filepath.Join(nd.Home, PrivacyKeyFile), privKeys[k], opts.Password); err != nil {
			return nil, nil, err
		}
	}

	// The genesis.
	spec := &chain.Spec{
		Config:        &params.ChainConfig{ChainID: new(big.Int).SetUint64(opts.ChainID)},
		Alloc:         types.GenesisAlloc{},
		BlockTimeMs:   opts.BlockTimeMs,
		Consensus:     chain.Consensus{Engine: opts.Engine},
		Organizations: orgs,
		Governance:    gov,
		// New networks seal in sessions (internal/privacy Sealer); a
		// genesis without the field keeps the envelope it always had.
		PrivacyEnvelope: privacy.SchemeHybridSession.String(),
	}
	maps.Copy(spec.Alloc, fundAlloc)
	var learners []common.Address
	for i, nd := range nodes {
		if i < opts.Validators {
			spec.Consensus.Validators = append(spec.Consensus.Validators, nd.ID)
		} else {
			learners = append(learners, nd.ID)
		}
	}
	spec.Consensus.Params = opts.ConsensusParams
	if len(learners) > 0 && !readOrg {
		fields := map[string]any{}
		if len(opts.ConsensusParams) > 0 {
			if err := json.Unmarshal(opts.ConsensusParams, &fields); err != nil {
				return nil, nil, fmt.Errorf("--consensus-params: want a JSON object: %v", err)
			}
		}
		if _, ok := fields["learners"]; ok {
			return nil, nil, errors.New("--consensus-params: leave learners out: the observers (--observers) are the learners")
		}
		fields["learners"] = learners
		params, err := json.Marshal(fields)
		if err != nil {
			return nil, nil, err
		}
		spec.Consensus.Params = params
	}
	if opts.DevAccounts {
		accts, err := chain.DevAccounts(chain.DevAccountCount)
		if err != nil {
			return nil, nil, err
		}
		for _, a := range accts {
			spec.Alloc[a.Address] = types.Account{Balance: new(big.Int).Set(chain.DevBalance)}
			// The development accounts transact for the first organization.
			gov.Accounts = append(gov.Accounts, system.GenesisAccount{Address: a.Address, Org: orgs[0].Name, Roles: []string{"read", "write", "deploy"}})
		}
	}
	raw, err := spec.Marshal()
	if err != nil {
		return nil, nil, err
	}
	// Parse what will be written: defaults filled, validated as a node will.
	if spec, err = chain.ParseSpec(raw); err != nil {
		return nil, nil, err
	}
	if err := opts.checkParams(spec.Consensus.Params, spec.Consensus.Validators); err != nil {
		return nil, nil, err
	}
	if raw, err = spec.Marshal(); err != nil {
		return nil, nil, err
	}
	raw = append(raw, '\n')

	// Node configs and genesis copies; the shared genesis last, so that a
	// folder with a genesis is a complete network.
	for i := range nodes {
		nd := &nodes[i]
		nd.Config = HomeConfig{
			Name:        nd.Name,
			Org:         nd.Org,
			Genesis:     GenesisFile,
			DataDir:     "data",
			NodeKey:     nodeKeyFile,
			TLSCert:     filepath.Join("tls", "node.crt"),
			TLSKey:      filepath.Join("tls", "node.key"),
			PrivacyKey:  PrivacyKeyFile,
			RPCAddr:     net.JoinHostPort(opts.Host, strconv.Itoa(opts.RPCPort+i)),
			P2PAddr:     net.JoinHostPort(opts.Host, strconv.Itoa(opts.P2PPort+i)),
			MetricsAddr: net.JoinHostPort(opts.Host, strconv.Itoa(opts.MetricsPort+i)),
			API:         api,
		}
		for j, peer := range nodes {
			if j != i {
				nd.Config.Peers = append(nd.Config.Peers, HomePeer{Name: peer.Name, Addr: net.JoinHostPort(opts.Host, strconv.Itoa(opts.P2PPort+j)), ID: peer.ID})
			}
		}
		if err := nd.Config.Validate(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", nd.Name, err)
		}
		if err := nd.Config.Write(nd.Home); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(filepath.Join(nd.Home, GenesisFile), raw, 0o644); err != nil {
			return nil, nil, err
		}
	}
	if err := writePeers(dir, nodes); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, GenesisFile), raw, 0o644); err != nil {
		return nil, nil, err
	}
	return spec, nodes, nil
}

func nodeName(i int) string { return "node" + strconv.Itoa(i) }

// checkParams checks consensus.params as the engine will at the nodes'
// start.
func (o *InitOptions) checkParams(params json.RawMessage, validators []common.Address) error {
	err := engines.CheckParams(consensus.Spec{Engine: o.Engine, ChainID: o.ChainID, Validators: validators, Params: params,
		BlockTime: time.Duration(cmp.Or(o.BlockTimeMs, chain.DefaultBlockTimeMs)) * time.Millisecond})
	if err != nil {
		return fmt.Errorf("--consensus-params: %w", err)
	}
	return nil
}

func (o *InitOptions) defaults() error {
	switch {
	case o.Dir == "":
		return errors.New("--out: an output folder is required")
	case o.Validators < 1 || o.Validators > 64:
		return fmt.Errorf("--validators %d: want 1 to 64", o.Validators)
	case o.Observers < 0 || o.Observers > 64:
		return fmt.Errorf("--observers %d: want 0 to 64", o.Observers)
	}
	switch o.Engine {
	case "raft", "bft", "poa":
	default:
		return fmt.Errorf("--consensus %q: want raft, bft or poa", o.Engine)
	}
	if o.Orgs == 0 {
		o.Orgs = o.Validators
	}
	if o.Orgs < 1 || o.Orgs > o.Validators {
		return fmt.Errorf("--orgs %d: want 1 to the number of validators (%d)", o.Orgs, o.Validators)
	}
	if o.ChainID == 0 {
		o.ChainID = chain.DefaultChainID
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	for _, p := range []struct {
		name string
		v    *int
		def  int
	}{{"--rpc.port", &o.RPCPort, 8545}, {"--p2p.port", &o.P2PPort, 30303}, {"--metrics.port", &o.MetricsPort, 9545}} {
		if *p.v == 0 {
			*p.v = p.def
		}
		if last := *p.v + o.Validators + o.Observers - 1; *p.v < 1 || last > 65535 {
			return fmt.Errorf("%s %d: node ports %d..%d are not all port numbers", p.name, *p.v, *p.v, last)
		}
	}
	return nil
}

// writeOrg makes an organization's files in dir: its root CA (ca.crt,
// ca.key 0600), an administrator certificate (admin.crt, admin.key) and
// its governance account (AdminAccountFile), whose address it returns.
// Every key is encrypted with password when it is not empty.
func writeOrg(dir, name string, password []byte) (*identity.CA, common.Address, error) {
	ca, err := identity.NewRootCA(name, identity.CAOptions{})
	if err != nil {
		return nil, common.Address{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, common.Address{}, err
	}
	if err := identity.SaveCA(ca, filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"), password); err != nil {
		return nil, common.Address{}, err
	}
	adm, admKey, err := ca.IssueAdmin("admin", 0)
	if err != nil {
		return nil, common.Address{}, err
	}
	if err := identity.WriteKeyFile(filepath.Join(dir, "admin.key"), admKey, password); err != nil {
		return nil, common.Address{}, err
	}
	if err := identity.WriteCertFile(filepath.Join(dir, "admin.crt"), adm, ca.Cert); err != nil {
		return nil, common.Address{}, err
	}
	// The account proposes and votes in governance
	// (charter gov --key ORGDIR/admin-account.key).
	acct, err := identity.GenerateNodeKey()
	if err != nil {
		return nil, common.Address{}, err
	}
	if err := identity.SaveNodeKey(filepath.Join(dir, AdminAccountFile), acct, password); err != nil {
		return nil, common.Address{}, err
	}
	return ca, identity.NodeIDOf(acct), nil
}

// writeNodeIdentity makes a node's key (home/nodekey) and its TLS
// certificate from ca for host (and localhost) in home/tls, both keys
// encrypted with password when it is not empty, and returns the node id
// and the certificate's fingerprint.
func writeNodeIdentity(home, name, host string, ca *identity.CA, password []byte) (common.Address, common.Hash, error) {
	if err := os.MkdirAll(filepath.Join(home, "tls"), 0o700); err != nil {
		return common.Address{}, common.Hash{}, err
	}
	key, err := identity.GenerateNodeKey()
	if err != nil {
		return common.Address{}, common.Hash{}, err
	}
	if err := identity.SaveNodeKey(filepath.Join(home, nodeKeyFile), key, password); err != nil {
		return common.Address{}, common.Hash{}, err
	}
	hosts := []string{host}
	if host != "localhost" {
		hosts = append(hosts, "localhost")
	}
	cert, certKey, err := ca.IssueNode(name, hosts, 0)
	if err != nil {
		return common.Address{}, common.Hash{}, err
	}
	if err := identity.WriteKeyFile(filepath.Join(home, "tls", "node.key"), certKey, password); err != nil {
		return common.Address{}, common.Hash{}, err
	}
	if err := identity.WriteCertFile(filepath.Join(home, "tls", "node.crt"), cert, ca.Cert); err != nil {
		return common.Address{}, common.Hash{}, err
	}
	return identity.NodeIDOf(key), common.Hash(identity.FingerprintOf(cert)), nil
}
