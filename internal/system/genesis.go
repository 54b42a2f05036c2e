package system

import (
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/tracing"

	"github.com/charter-ledger/charter/internal/privacy"
)

// GenesisSpec is the governance section of the genesis file.
type GenesisSpec struct {
	// EpochLength: validator set changes take effect at multiples of it
	// (default 10).
	EpochLength uint64 `json:"epochLength,omitempty"`
	// Rules override the default rule of a class (membership, validators,
	// roles, certificates, freeze, parameters, upgrade, policy, contracts,
	// privacy).
	Rules map[string]Rule `json:"rules,omitempty"`
	// DefaultRoles are the roles of accounts the registry does not list.
	// Left out: none (only listed accounts transact).
	DefaultRoles []string `json:"defaultRoles,omitempty"`
	// Accounts are listed with their organization and roles.
	Accounts []GenesisAccount `json:"accounts,omitempty"`
	// Nodes are the consortium's nodes with their organization; the
	// validators among them are the consensus section's.
	Nodes []GenesisNode `json:"nodes,omitempty"`
	// AllowSetCode admits EIP-7702 (type 4) transactions, which let an
	// account delegate its code; governance may change it later through
	// the setCode parameter. Left out: refused. A chain without a
	// governance section admits them.
	AllowSetCode bool `json:"allowSetCode,omitempty"`
	// MaxOpenProposals bounds the open proposals of one organization
	// (the maxOpenProposals parameter; default 16).
	MaxOpenProposals uint64 `json:"maxOpenProposals,omitempty"`
}

// GenesisAccount is an account of the genesis registry.
type GenesisAccount struct {
	Address common.Address `json:"address"`
	Org     string         `json:"org"`
	Roles   []string       `json:"roles"`
}

// GenesisNode is a node of the genesis registry.
type GenesisNode struct {
	ID          common.Address `json:"id"`
	Org         string         `json:"org"`
	Fingerprint common.Hash    `json:"fingerprint,omitempty"`
}

// GenesisOrg is an organization as the genesis lists it.
type GenesisOrg struct {
	Name   string
	Roots  string
	Tier   string
	Weight uint64
	// PrivacyKey is its privacy public key (privacy.PublicKeySize bytes),
	// or none.
	PrivacyKey PrivacyKey
}

// Genesis is the registry and policy of block 0, checked.
type Genesis struct {
	Orgs       []Org
	Roots      map[string]string
	Accounts   []Account
	Nodes      []Node
	Validators []common.Address
	Policy     Policy
	// AllowSetCode admits EIP-7702 transactions (the setCode parameter).
	AllowSetCode bool

	// PrivacyKeys are the organizations' privacy public keys, by name;
	// an organization without one is not listed.
	PrivacyKeys map[string]PrivacyKey
}

// OpenRoles are the default roles of a chain without a governance
// section: anyone may transact and deploy.
const OpenRoles = RoleRead | RoleWrite | RoleDeploy

// BuildGenesis checks the governance section (nil: an open chain) against
// the organizations and validators of the genesis.
func BuildGenesis(gs *GenesisSpec, orgs []GenesisOrg, validators []common.Address) (*Genesis, error) {
	g := &Genesis{Roots: map[string]string{}, PrivacyKeys: map[string]PrivacyKey{}, Validators: validators, Policy: DefaultPolicy()}
	orgIdx := map[string]Org{}
	privacyIDs := map[privacy.Identity]int{}
	for i, o := range orgs {
		t, err := ParseTier(o.Tier)
		if err != nil {
			return nil, fmt.Errorf("organizations[%d].tier: %v", i, err)
		}
		w := o.Weight
		if w == 0 {
			w = 1
		}
		if err := checkWeight(w); err != nil {
			return nil, fmt.Errorf("organizations[%d].weight: %v", i, err)
		}
		if len(o.PrivacyKey) > 0 {
			if err := checkPrivacyKey(o.PrivacyKey); err != nil {
				return nil, fmt.Errorf("organizations[%d].privacyKey: %v", i, err)
			}
			if j, dup := privacyIDs[o.PrivacyKey.Identity()]; dup {
				return nil, fmt.Errorf("organizations[%d].privacyKey: the key of organizations[%d] already", i, j)
			}
			privacyIDs[o.PrivacyKey.Identity()] = i
			g.PrivacyKeys[o.Name] = o.PrivacyKey
		}
		org := Org{Name: o.Name, Tier: t, Weight: w, Status: StatusActive}
		g.Orgs = append(g.Orgs, org)
		orgIdx[o.Name] = org
		g.Roots[o.Name] = o.Roots
	}
	// The default rules ask for at most as many approvals as there are
	// organizations.
	for c := range g.Policy.Rules {
		g.Policy.Rules[c].MinApprovals = min(g.Policy.Rules[c].MinApprovals, uint64(len(orgs)))
	}
	if gs == nil {
		g.Policy.DefaultRoles = OpenRoles
		g.AllowSetCode = true
		for _, v := range validators {
			g.Nodes = append(g.Nodes, Node{ID: v, Validator: true})
		}
		return g, nil
	}
	if gs.EpochLength != 0 {
		g.Policy.EpochLength = gs.EpochLength
	}
	if gs.MaxOpenProposals != 0 {
		p, _ := paramSpec(ParamMaxOpenProposals)
		if gs.MaxOpenProposals < p.Min || gs.MaxOpenProposals > p.Max {
			return nil, fmt.Errorf("maxOpenProposals: %d outside [%d, %d]", gs.MaxOpenProposals, p.Min, p.Max)
		}
		g.Policy.MaxOpenProposals = gs.MaxOpenProposals
	}
	g.AllowSetCode = gs.AllowSetCode
	for name, r := range gs.Rules {
		c := slices.Index(classNames[:], name)
		if c < 0 {
			return nil, fmt.Errorf("rules.%s: unknown class (want one of %v)", name, classNames)
		}
		g.Policy.Rules[c] = r
	}
	roles, err := ParseRoles(gs.DefaultRoles)
	if err != nil {
		return nil, fmt.Errorf("defaultRoles: %v", err)
	}
	g.Policy.DefaultRoles = roles
	if err := g.Policy.check(len(orgs), NumClasses); err != nil {
		return nil, err
	}
	seen := map[common.Address]bool{}
	for i, a := range gs.Accounts {
		field := fmt.Sprintf("accounts[%d]", i)
		o, ok := orgIdx[a.Org]
		if !ok {
			return nil, fmt.Errorf("%s.org: %q is not an organization of the genesis", field, a.Org)
		}
		r, err := ParseRoles(a.Roles)
		if err != nil {
			return nil, fmt.Errorf("%s.roles: %v", field, err)
		}
		if !o.Tier.allows(r) {
			return nil, fmt.Errorf("%s.roles: organization %s of tier %s may not hold %s", field, o.Name, o.Tier, r)
		}
		if a.Address == (common.Address{}) || IsSystem(a.Address) || seen[a.Address] {
			return nil, fmt.Errorf("%s.address: zero, a system contract, or listed twice", field)
		}
		seen[a.Address] = true
		g.Accounts = append(g.Accounts, Account{Address: a.Address, Org: a.Org, Roles: r})
	}
	nodes := map[common.Address]bool{}
	for i, n := range gs.Nodes {
		field := fmt.Sprintf("nodes[%d]", i)
		o, ok := orgIdx[n.Org]
		if !ok {
			return nil, fmt.Errorf("%s.org: %q is not an organization of the genesis", field, n.Org)
		}
		if n.ID == (common.Address{}) || nodes[n.ID] {
			return nil, fmt.Errorf("%s.id: zero or listed twice", field)
		}
		nodes[n.ID] = true
		val := slices.Contains(validators, n.ID)
		if val && o.Tier < TierValidate {
			return nil, fmt.Errorf("%s: validator of organization %s of tier %s", field, o.Name, o.Tier)
		}
		g.Nodes = append(g.Nodes, Node{ID: n.ID, Org: n.Org, Fingerprint: n.Fingerprint, Validator: val})
	}
	for _, v := range validators {
		if !nodes[v] {
			g.Nodes = append(g.Nodes, Node{ID: v, Validator: true})
		}
	}
	return g, nil
}

// GenesisState is what Seed writes to: the genesis StateDB.
type GenesisState interface {
	StateWriter
	SetCode(addr common.Address, code []byte, reason tracing.CodeChangeReason) []byte
	SetNonce(addr common.Address, nonce uint64, reason tracing.NonceChangeReason)
}

// systemCode is the code the system accounts show: INVALID, so that they
// are not empty accounts (which the EVM would delete) and Solidity sees
// contracts there; calls never run it, the node answers them.
var systemCode = []byte{0xfe}

// Seed writes the genesis registry and policy into st.
func Seed(st GenesisState, g *Genesis) {
	for _, addr := range []common.Address{RegistryAddress, GovernanceAddress} {
		st.SetCode(addr, systemCode, tracing.CodeChangeGenesis)
		st.SetNonce(addr, 1, tracing.NonceChangeGenesis)
	}
	s := Open(st, 0, 0)
	for _, o := range g.Orgs {
		s.putOrg(o)
		if g.Roots[o.Name] != "" {
			s.reg.put("roots/"+o.Name, []byte(g.Roots[o.Name]))
		}
		if k := g.PrivacyKeys[o.Name]; len(k) > 0 {
			s.setPrivacyKey(o.Name, k)
		}
	}
	for _, a := range g.Accounts {
		s.putAccount(a)
	}
	for _, n := range g.Nodes {
		s.putNode(n)
	}
	putRLP(s.reg, "validators", g.Validators)
	putRLP(s.reg, "valchanges", []ValidatorChange{{From: 0, IDs: g.Validators}})
	s.putPolicy(g.Policy)
	if g.AllowSetCode {
		s.reg.putUint("param/"+ParamSetCode, 1)
	}
	if n := g.Policy.MaxOpenProposals; n != 0 && n != DefaultMaxOpenProposals {
		s.reg.putUint("param/"+ParamMaxOpenProposals, n)
	}
}
