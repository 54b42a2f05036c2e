package system

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/ethereum/go-ethereum/common"
)

// Addresses of the system contracts, in the precompile range reserved for
// private chains.
var (
	RegistryAddress   = common.HexToAddress("0x0000000000000000000000000000000000000400")
	GovernanceAddress = common.HexToAddress("0x0000000000000000000000000000000000000401")
	ContractsAddress  = common.HexToAddress("0x0000000000000000000000000000000000000402")
)

// IsSystem reports whether addr is one of the system contracts.
func IsSystem(addr common.Address) bool {
	return addr == RegistryAddress || addr == GovernanceAddress || addr == ContractsAddress
}

// Role is a set of account rights, as a bit mask.
type Role uint32

// The roles an account may hold.
const (
	RoleRead    Role = 1 << iota // query the chain through the organization's gateways
	RoleWrite                    // send transactions
	RoleDeploy                   // create contracts
	RoleAdmin                    // propose and vote for the organization; manage its accounts
	RoleAuditor                  // the regulator's read-everything view

	allRoles = RoleRead | RoleWrite | RoleDeploy | RoleAdmin | RoleAuditor
)

var roleNames = []struct {
	r    Role
	name string
}{{RoleRead, "read"}, {RoleWrite, "write"}, {RoleDeploy, "deploy"}, {RoleAdmin, "admin"}, {RoleAuditor, "auditor"}}

// Names lists the roles in r.
func (r Role) Names() []string {
	out := []string{}
	for _, n := range roleNames {
		if r&n.r != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

func (r Role) String() string {
	if r == 0 {
		return "none"
	}
	return strings.Join(r.Names(), ",")
}

// MarshalJSON shows roles as a list of names.
func (r Role) MarshalJSON() ([]byte, error) { return json.Marshal(r.Names()) }

// UnmarshalText reads role names, comma separated, or "none".
func (r *Role) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "" || strings.EqualFold(s, "none") {
		*r = 0
		return nil
	}
	v, err := ParseRoles(strings.Split(s, ","))
	*r = v
	return err
}

// ParseRoles reads role names ("write", "deploy", ...).
func ParseRoles(names []string) (Role, error) {
	var r Role
	for _, s := range names {
		found := false
		for _, n := range roleNames {
			if strings.EqualFold(strings.TrimSpace(s), n.name) {
				r |= n.r
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown role %q (want read, write, deploy, admin, auditor)", s)
		}
	}
	return r, nil
}

// Tier is what an organization may do.
type Tier uint8

// Tiers, each including the rights of the ones before.
const (
	TierRead     Tier = 1 // its accounts read (and audit, administer)
	TierWrite    Tier = 2 // and send transactions, deploy contracts
	TierValidate Tier = 3 // and run validators
)

// ParseTier reads "read", "write" or "validate" ("" is validate).
func ParseTier(s string) (Tier, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "read":
		return TierRead, nil
	case "write":
		return TierWrite, nil
	case "validate", "":
		return TierValidate, nil
	}
	return 0, fmt.Errorf("unknown tier %q (want read, write, validate)", s)
}

// MarshalText shows the tier by name.
func (t Tier) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads read, write or validate.
func (t *Tier) UnmarshalText(b []byte) error {
	if strings.TrimSpace(string(b)) == "" {
		return fmt.Errorf("empty tier (want read, write, validate)")
	}
	v, err := ParseTier(string(b))
	*t = v
	return err
}

func (t Tier) check() error {
	if t < TierRead || t > TierValidate {
		return reverts("tier %d: want 1 (read), 2 (write) or 3 (validate)", uint8(t))
	}
	return nil
}

func (t Tier) String() string {
	switch t {
	case TierRead:
		return "read"
	case TierWrite:
		return "write"
	case TierValidate:
		return "validate"
	}
	return fmt.Sprintf("tier(%d)", uint8(t))
}

// allows reports whether an account of an organization of tier t may
// hold r.
func (t Tier) allows(r Role) bool {
	if t < TierWrite && r&(RoleWrite|RoleDeploy) != 0 {
		return false
	}
	return t >= TierRead
}

// Status is an organization's standing.
type Status uint8

// Organization statuses.
const (
	StatusActive    Status = 1
	StatusSuspended Status = 2 // keeps its history; its accounts and nodes are refused until reactivated
	StatusExited    Status = 3 // for good: certificates revoked, roles gone, history kept
)

// MarshalText shows the status by name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads active or suspended (an organization exits by
// RemoveOrganization, not by a status).
func (s *Status) UnmarshalText(b []byte) error {
	switch strings.ToLower(strings.TrimSpace(string(b))) {
	case "active":
		*s = StatusActive
	case "suspended":
		*s = StatusSuspended
	default:
		return fmt.Errorf("status %q: want active or suspended (an organization leaves with remove-organization)", b)
	}
	return nil
}

func (s Status) String() string {
	switch s {
	case StatusActive:
		return "active"
	case StatusSuspended:
		return "suspended"
	case StatusExited:
		return "exited"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Org is an organization of the registry.
type Org struct {
	Name   string
	Tier   Tier
	Weight uint64
	Status Status
	Since  uint64 // height it was admitted (0: genesis)
}

// Node is a node of the registry.
type Node struct {
	ID          common.Address // address of the node key
	Org         string
	Fingerprint common.Hash // SHA-256 of the node's TLS certificate (DER); zero: any certificate of the organization
	Validator   bool        // in the validator set the registry wants
	Revoked     bool
}

// Account is an account of the registry; an address with no record has
// the registry's default roles and no organization.
type Account struct {
	Address common.Address
	Org     string
	Roles   Role
	Frozen  bool
}

// Rule is the voting rule of one class of proposals. Fractions are in
// basis points of the total weight of the active organizations.
type Rule struct {
	Threshold    uint64 `json:"threshold"`    // yes weight needed to pass, 1..10000
	Quorum       uint64 `json:"quorum"`       // weight that must have voted (yes or no), 0..10000
	ExpiryBlocks uint64 `json:"expiryBlocks"` // an open proposal expires this many blocks after it was made
	Timelock     uint64 `json:"timelock"`     // blocks between passing and execution (at least 1)
	MinApprovals uint64 `json:"minApprovals"` // distinct organizations that must vote yes (multi-party approval)
}

// Class groups the proposal actions that share a rule.
type Class uint8

// Proposal classes.
const (
	ClassMembership   Class = iota // add, remove, suspend organizations; nodes; tier, weight
	ClassValidators                // add or remove a validator
	ClassRoles                     // grant or revoke roles
	ClassCertificates              // revoke certificates, rotate an organization's CA (high privilege)
	ClassFreeze                    // freeze or unfreeze accounts and contracts
	ClassParameters                // chain parameters
	ClassUpgrade                   // protocol upgrades at a height
	ClassPolicy                    // the policy itself (high privilege)
	ClassContracts                 // contract factories, the contract registry's upgrades and deprecations
	ClassPrivacy                   // orders about privacy groups: purge, auditor grants
	NumClasses
)

// noClass makes Policy.check check the approvals of no class.
const noClass Class = 255

var classNames = [NumClasses]string{"membership", "validators", "roles", "certificates", "freeze", "parameters", "upgrade", "policy", "contracts", "privacy"}

// MarshalText shows the class by name.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a class by name.
func (c *Class) UnmarshalText(b []byte) error {
	i := slices.IndexFunc(classNames[:], func(n string) bool { return strings.EqualFold(n, strings.TrimSpace(string(b))) })
	if i < 0 {
		return fmt.Errorf("class %q: want one of %s", b, strings.Join(classNames[:], ", "))
	}
	*c = Class(i)
	return nil
}

func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Policy is how the consortium decides.
type Policy struct {
	Rules [NumClasses]Rule
	// EpochLength: validator set changes take effect at heights that are
	// multiples of it.
	EpochLength uint64
	// DefaultRoles are the roles of accounts the registry does not list.
	DefaultRoles Role
	// MaxOpenProposals bounds the open proposals of one organization (the
	// maxOpenProposals parameter).
	MaxOpenProposals uint64
}

// DefaultPolicy: membership, validators, certificates and upgrades by two
// thirds of the weight (6666 bp: 2 of 3, 3 of 4 equal organizations),
// roles, freezes, parameters and contracts by a majority, the policy by
// all; certificates, the policy and privacy orders (which overrule a
// group's members) also need two organizations to approve. Proposals expire after 10,000 blocks and execute in the
// block after they pass.
func DefaultPolicy() Policy {
	two3 := Rule{Threshold: 6666, ExpiryBlocks: 10_000, Timelock: 1}
	maj := Rule{Threshold: 5001, ExpiryBlocks: 10_000, Timelock: 1}
	p := Policy{EpochLength: 10}
	p.Rules[ClassMembership] = two3
	p.Rules[ClassValidators] = two3
	p.Rules[ClassRoles] = maj
	p.Rules[ClassCertificates] = Rule{Threshold: 6666, ExpiryBlocks: 10_000, Timelock: 1, MinApprovals: 2}
	p.Rules[ClassFreeze] = maj
	p.Rules[ClassParameters] = maj
	p.Rules[ClassUpgrade] = two3
	p.Rules[ClassPolicy] = Rule{Threshold: 10000, ExpiryBlocks: 10_000, Timelock: 1, MinApprovals: 2}
	p.Rules[ClassContracts] = maj
	p.Rules[ClassPrivacy] = Rule{Threshold: 6666, ExpiryBlocks: 10_000, Timelock: 1, MinApprovals: 2}
	p.MaxOpenProposals = DefaultMaxOpenProposals
	return p
}

// check refuses a policy that could lock the consortium out, given the
// number of active organizations. The approvals a rule needs are checked
// for class only (NumClasses: every class): a rule whose organizations
// have since left counts at most the active ones (see effectiveRule).
func (p *Policy) check(activeOrgs int, class Class) error {
	if p.EpochLength == 0 || p.EpochLength > 1_000_000 {
		return fmt.Errorf("epoch length %d outside [1, 1000000]", p.EpochLength)
	}
	if err := checkDefaultRoles(p.DefaultRoles); err != nil {
		return err
	}
	for c, r := range p.Rules {
		name := Class(c).String()
		if err := r.check(name); err != nil {
			return err
		}
		if (class == NumClasses || class == Class(c)) && r.MinApprovals > uint64(activeOrgs) {
			return fmt.Errorf("%s: %d approvals needed but only %d organizations are active: nothing could pass", name, r.MinApprovals, activeOrgs)
		}
	}
	return nil
}

func checkDefaultRoles(r Role) error {
	if r&^allRoles != 0 {
		return fmt.Errorf("default roles %#x: unknown role bits", uint32(r))
	}
	if r&RoleAdmin != 0 {
		return fmt.Errorf("default roles may not include admin")
	}
	return nil
}

// check checks the rule's own ranges; name is its class's.
func (r Rule) check(name string) error {
	switch {
	case r.Threshold == 0 || r.Threshold > 10000:
		return fmt.Errorf("%s: threshold %d outside [1, 10000] basis points of the total weight", name, r.Threshold)
	case r.Quorum > 10000:
		return fmt.Errorf("%s: quorum %d above 10000 basis points", name, r.Quorum)
	case r.ExpiryBlocks == 0 || r.ExpiryBlocks > 100_000_000:
		return fmt.Errorf("%s: expiry %d blocks outside [1, 100000000]", name, r.ExpiryBlocks)
	case r.Timelock == 0 || r.Timelock > 100_000_000:
		return fmt.Errorf("%s: time-lock %d blocks outside [1, 100000000]", name, r.Timelock)
	}
	return nil
}

// ProposalStatus is where a proposal stands.
type ProposalStatus uint8

// Proposal statuses.
const (
	ProposalOpen      ProposalStatus = 1
	ProposalPassed    ProposalStatus = 2 // waiting for its activation height
	ProposalExecuted  ProposalStatus = 3
	ProposalRejected  ProposalStatus = 4 // can no longer reach its threshold
	ProposalExpired   ProposalStatus = 5
	ProposalCancelled ProposalStatus = 6
	ProposalFailed    ProposalStatus = 7 // passed, but its action could not apply at activation
)

var proposalStatusNames = map[ProposalStatus]string{ProposalOpen: "open", ProposalPassed: "passed", ProposalExecuted: "executed",
	ProposalRejected: "rejected", ProposalExpired: "expired", ProposalCancelled: "cancelled", ProposalFailed: "failed"}

func (s ProposalStatus) String() string {
	if n, ok := proposalStatusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Vote is one organization's vote.
type Vote struct {
	Org     string
	Voter   common.Address
	Support bool
	Weight  uint64
	Height  uint64
}

// Proposal is a governance proposal.
type Proposal struct {
	ID          uint64
	Action      Action
	Args        []byte // ABI encoded arguments of the action
	Memo        string
	Proposer    common.Address
	Org         string
	Created     uint64
	Expires     uint64 // last height at which it may be voted
	Status      ProposalStatus
	Decided     uint64 // height it passed, was rejected, cancelled or expired
	ActivatesAt uint64 // height at whose start it executes
	Result      string // why it failed, when it did
	Votes       []Vote
}

func (p *Proposal) voted(org string) bool {
	return slices.ContainsFunc(p.Votes, func(v Vote) bool { return v.Org == org })
}

// Usage is what one organization used in one period (a UTC day).
type Usage struct {
	Txs        uint64
	Gas        uint64
	StateBytes uint64
}

// Upgrade is a protocol upgrade scheduled by governance.
type Upgrade struct {
	Name   string
	Height uint64
}

// ValidatorChange is a validator set in force from a height on.
type ValidatorChange struct {
	From uint64
	IDs  []common.Address
}

// Event is one entry of the governance audit trail.
type Event struct {
	Height   uint64
	Proposal uint64
	Kind     string // proposed, voted, passed, rejected, cancelled, expired, executed, failed, roles
	Org      string
	Actor    common.Address
	Detail   string
}
