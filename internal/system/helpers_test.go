package system

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/charter-ledger/charter/internal/identity"
)

// goldenRootsPEM is a CA certificate made once with identity.NewRootCA
// ("golden", valid 2025-01-01 for 50 years) and frozen here, so that the
// state of the golden scenario does not depend on a freshly generated key.
const goldenRootsPEM = `-----BEGIN CERTIFICATE-----
MIIBmTCCAT+gAwIBAgIQQv7Z04f17yx130GrIPqWZjAKBggqhkjOPQQDAjAqMQ8w
DQYDVQQKEwZnb2xkZW4xFzAVBgNVBAMTDmdvbGRlbiBSb290IENBMCAXDTI1MDEw
MTAwMDAwMFoYDzIwNzQxMjIwMDAwMDAwWjAqMQ8wDQYDVQQKEwZnb2xkZW4xFzAV
BgNVBAMTDmdvbGRlbiBSb290IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
bbVqeIJ7h5smrWTrij/fTaVb0S75NqEYnNofk97xE/B5aB/akgzzfOf4K8nxHXSL
ISzrrtePDAvWGXyFfwmRTKNFMEMwDgYDVR0PAQH/BAQDAgGGMBIGA1UdEwEB/wQI
MAYBAf8CAQAwHQYDVR0OBBYEFPfGudhjCzhW/yfDBLh4eI008KK6MAoGCCqGSM49
BAMCA0gAMEUCIQDiGxnoNzyIkEyG/+zLxgDx+ZG/WEDhiIO3tqNDvaD0WQIgdqOQ
hFtO/DnEQQVEL9jEUWZNRSRJD5vnRiM8X6Z6L8c=
-----END CERTIFICATE-----
`

// testConfig is a chain configuration like the node's: every fork through
// Osaka active from genesis.
var testConfig = func() *params.ChainConfig {
	c := *params.AllDevChainProtocolChanges
	c.BogotaTime = nil
	c.AmsterdamTime = nil
	return &c
}()

var testRules = testConfig.Rules(new(big.Int), true, 0)

const testTimeBase = 1_700_000_000

// blockTime is the time of the block at height h in the tests.
func blockTime(h uint64) uint64 { return testTimeBase + 2*h }

func testAddr(kind string, i int) common.Address {
	return common.BytesToAddress(crypto.Keccak256([]byte(fmt.Sprintf("%s/%d", kind, i)))[12:])
}

// The accounts and nodes of organization i (1-based) of the fixture.
func adminOf(i int) common.Address    { return testAddr("admin", i) }
func writerOf(i int) common.Address   { return testAddr("writer", i) }
func readerOf(i int) common.Address   { return testAddr("reader", i) }
func deployerOf(i int) common.Address { return testAddr("deployer", i) }
func nodeOf(i int) common.Address     { return testAddr("node", i) }
func fpOf(i int) common.Hash          { return crypto.Keccak256Hash([]byte(fmt.Sprintf("fingerprint/%d", i))) }
func orgName(i int) string            { return fmt.Sprintf("org%d", i) }

// fixtureConfig describes the genesis of a fixture.
type fixtureConfig struct {
	orgs          int
	weights       []uint64 // default 1 each
	tiers         []string // default validate each
	nonValidators map[int]bool
	rules         map[string]Rule
	defaultRoles  []string
	roots         string // genesis roots of every organization
	maxOpen       uint64 // maxOpenProposals (0: the default)
}

type option func(*fixtureConfig)

func withOrgs(n int) option                { return func(c *fixtureConfig) { c.orgs = n } }
func withWeights(w ...uint64) option       { return func(c *fixtureConfig) { c.weights = w } }
func withTiers(t ...string) option         { return func(c *fixtureConfig) { c.tiers = t } }
func withRule(class string, r Rule) option { return func(c *fixtureConfig) { c.rules[class] = r } }
func withDefaultRoles(r ...string) option  { return func(c *fixtureConfig) { c.defaultRoles = r } }
func withoutValidator(i int) option        { return func(c *fixtureConfig) { c.nonValidators[i] = true } }
func withMaxOpen(n uint64) option          { return func(c *fixtureConfig) { c.maxOpen = n } }

// fixture is a real StateDB seeded with a consortium: organizations org1
// to orgN (weight 1, tier validate unless told), each with an admin (roles
// admin), a writer (read, write), a reader (read), a deployer (read, write,
// deploy) and a node with a fingerprint, every node a validator unless
// told.
type fixture struct {
	t   testing.TB
	st  *state.StateDB
	n   int
	gen *Genesis
}

func newFixture(t testing.TB, opts ...option) *fixture {
	t.Helper()
	cfg := fixtureConfig{orgs: 4, nonValidators: map[int]bool{}, rules: map[string]Rule{}, roots: goldenRootsPEM}
	for _, o := range opts {
		o(&cfg)
	}
	var orgs []GenesisOrg
	gs := &GenesisSpec{Rules: cfg.rules, DefaultRoles: cfg.defaultRoles, MaxOpenProposals: cfg.maxOpen}
	var validators []common.Address
	for i := 1; i <= cfg.orgs; i++ {
		o := GenesisOrg{Name: orgName(i), Roots: cfg.roots, Tier: "validate", Weight: 1}
		if len(cfg.weights) >= i {
			o.Weight = cfg.weights[i-1]
		}
		if len(cfg.tiers) >= i {
			o.Tier = cfg.tiers[i-1]
		}
		orgs = append(orgs, o)
		writer := []string{"read", "write"}
		deployer := []string{"read", "write", "deploy"}
		if o.Tier == "read" {
			writer, deployer = []string{"read"}, []string{"read"}
		}
		gs.Accounts = append(gs.Accounts,
			GenesisAccount{Address: adminOf(i), Org: o.Name, Roles: []string{"admin"}},
			GenesisAccount{Address: writerOf(i), Org: o.Name, Roles: writer},
			GenesisAccount{Address: readerOf(i), Org: o.Name, Roles: []string{"read"}},
			GenesisAccount{Address: deployerOf(i), Org: o.Name, Roles: deployer},
		)
		gs.Nodes = append(gs.Nodes, GenesisNode{ID: nodeOf(i), Org: o.Name, Fingerprint: fpOf(i)})
		if !cfg.nonValidators[i] {
			validators = append(validators, nodeOf(i))
		}
	}
	g, err := BuildGenesis(gs, orgs, validators)
	if err != nil {
		t.Fatalf("BuildGenesis: %v", err)
	}
	st := newStateDB(t)
	Seed(st, g)
	st.IntermediateRoot(testRules)
	return &fixture{t: t, st: st, n: cfg.orgs, gen: g}
}

func newStateDB(t testing.TB) *state.StateDB {
	t.Helper()
	st, err := state.New(types.EmptyRootHash, state.NewDatabaseForTesting())
	if err != nil {
		t.Fatalf("state.New: %v", err)
	}
	return st
}

// at opens the system state for the block at height h.
func (f *fixture) at(h uint64) *State { return Open(f.st, h, blockTime(h)) }

// root is the state root now.
func (f *fixture) root() common.Hash { return f.st.IntermediateRoot(testRules) }

func (f *fixture) args(a Action, vals ...any) []byte {
	f.t.Helper()
	return encArgs(f.t, a, vals...)
}

func encArgs(t testing.TB, a Action, vals ...any) []byte {
	t.Helper()
	b, err := EncodeArgs(a, vals...)
	if err != nil {
		t.Fatalf("EncodeArgs(%s): %v", a, err)
	}
	return b
}

// propose makes a proposal by org's admin at height h.
func (f *fixture) propose(h uint64, org int, a Action, vals ...any) uint64 {
	f.t.Helper()
	id, err := f.at(h).Propose(adminOf(org), a, f.args(a, vals...), "test "+a.String())
	if err != nil {
		f.t.Fatalf("Propose(%s) by %s at %d: %v", a, orgName(org), h, err)
	}
	return id
}

// vote casts org's vote at height h and returns the proposal's status.
func (f *fixture) vote(h uint64, org int, id uint64, yes bool) ProposalStatus {
	f.t.Helper()
	s, err := f.at(h).Vote(adminOf(org), id, yes)
	if err != nil {
		f.t.Fatalf("Vote(%d) by %s at %d: %v", id, orgName(org), h, err)
	}
	return s
}

// begin runs BeginBlock at height h.
func (f *fixture) begin(h uint64) BlockEffects { return f.at(h).BeginBlock(f.st) }

// proposal reads proposal id as stored (a read-only view, height 0).
func (f *fixture) proposal(id uint64) Proposal {
	f.t.Helper()
	p, ok := Read(f.st).Proposal(id)
	if !ok {
		f.t.Fatalf("no proposal %d", id)
	}
	return p
}

// passVotes votes yes by org 1, 2, ... at h until the proposal passes;
// it fails the test if it does not.
func (f *fixture) passVotes(h uint64, id uint64) Proposal {
	f.t.Helper()
	for i := 1; i <= f.n; i++ {
		if _, ok := f.status(id, ProposalOpen); !ok {
			break
		}
		if o, _ := Read(f.st).Org(orgName(i)); o.Status != StatusActive {
			continue
		}
		f.vote(h, i, id, true)
	}
	p := f.proposal(id)
	if p.Status != ProposalPassed {
		f.t.Fatalf("proposal %d is %s after every organization voted yes", id, p.Status)
	}
	return p
}

func (f *fixture) status(id uint64, want ProposalStatus) (ProposalStatus, bool) {
	p := f.proposal(id)
	return p.Status, p.Status == want
}

// enact proposes a by org 1 at h, has everyone vote yes at h and runs the
// blocks up to its activation; it checks it executes exactly then and
// returns the proposal id, the activation height and that block's effects.
func (f *fixture) enact(h uint64, a Action, vals ...any) (uint64, uint64, BlockEffects) {
	f.t.Helper()
	id := f.propose(h, 1, a, vals...)
	p := f.passVotes(h, id)
	if p.ActivatesAt <= h {
		f.t.Fatalf("proposal %d activates at %d, not after %d", id, p.ActivatesAt, h)
	}
	for b := h + 1; b < p.ActivatesAt; b++ {
		if fx := f.begin(b); len(fx.Executed) != 0 {
			f.t.Fatalf("BeginBlock(%d) executed %v before the activation height %d", b, fx.Executed, p.ActivatesAt)
		}
	}
	fx := f.begin(p.ActivatesAt)
	if got := f.proposal(id); got.Status != ProposalExecuted {
		f.t.Fatalf("proposal %d (%s) is %s at its activation height %d (result %q)", id, a, got.Status, p.ActivatesAt, got.Result)
	}
	return id, p.ActivatesAt, fx
}

// wantRevert checks that err is a revert whose reason is exactly want.
func wantRevert(t *testing.T, err error, want string) {
	t.Helper()
	var r revert
	if !errors.As(err, &r) {
		t.Fatalf("error %v (%T), want revert %q", err, err, want)
	}
	if string(r) != want {
		t.Fatalf("revert reason\n got %q\nwant %q", string(r), want)
	}
}

// wantRevertPrefix checks that err is a revert whose reason starts with want.
func wantRevertPrefix(t *testing.T, err error, want string) {
	t.Helper()
	var r revert
	if !errors.As(err, &r) {
		t.Fatalf("error %v (%T), want revert %q...", err, err, want)
	}
	if !strings.HasPrefix(string(r), want) {
		t.Fatalf("revert reason\n got %q\nwant prefix %q", string(r), want)
	}
}

// newCAPEM makes a fresh root CA for org with the identity package.
func newCAPEM(t *testing.T, org string) string {
	t.Helper()
	ca, err := identity.NewRootCA(org, identity.CAOptions{})
	if err != nil {
		t.Fatalf("NewRootCA: %v", err)
	}
	return string(identity.EncodeCertsPEM(ca.Cert))
}

// addOrgArgs are the arguments of an AddOrganization.
type addOrgArgs struct {
	name       string
	roots      string
	tier       uint8
	weight     uint64
	admins     []common.Address
	nodes      []common.Address
	fps        [][32]byte
	validators []common.Address
	privacyKey []byte
}

func (a addOrgArgs) vals() []any {
	adm, nodes, fps, vals := a.admins, a.nodes, a.fps, a.validators
	if adm == nil {
		adm = []common.Address{}
	}
	if nodes == nil {
		nodes = []common.Address{}
	}
	if fps == nil {
		fps = [][32]byte{}
	}
	if vals == nil {
		vals = []common.Address{}
	}
	pk := a.privacyKey
	if pk == nil {
		pk = []byte{}
	}
	return []any{a.name, a.roots, a.tier, a.weight, adm, nodes, fps, vals, pk}
}

// org5 is an organization to admit: one admin, one validator node.
func org5(roots string) addOrgArgs {
	return addOrgArgs{name: "org5", roots: roots, tier: uint8(TierValidate), weight: 1,
		admins: []common.Address{adminOf(5)}, nodes: []common.Address{nodeOf(5)}, fps: [][32]byte{fpOf(5)},
		validators: []common.Address{nodeOf(5)}}
}

// leafCertPEM makes a CA for org and returns the PEM of a client
// certificate it issued (CN "leaf"), which is not a CA.
func leafCertPEM(t *testing.T, org string) string {
	t.Helper()
	ca, err := identity.NewRootCA(org, identity.CAOptions{})
	if err != nil {
		t.Fatalf("NewRootCA: %v", err)
	}
	cert, _, err := ca.IssueClient("leaf", 0)
	if err != nil {
		t.Fatalf("IssueClient: %v", err)
	}
	return string(identity.EncodeCertsPEM(cert))
}
