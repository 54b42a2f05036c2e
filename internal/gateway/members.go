package gateway

import (
	"encoding/json"
	"slices"

	"github.com/charter-ledger/charter/internal/system"
)

// The registry and governance are read from the state at the head, as
// the charter_ JSON-RPC namespace reads them (system.Open at the head's
// height, so that a proposal past its expiry shows as expired).

// systemAt opens the registry and governance at the head.
func (g *Gateway) systemAt() (*system.State, uint64, error) {
	h, st, err := g.headState()
	if err != nil {
		return nil, 0, err
	}
	return system.Open(st, h.Number.Uint64(), h.Time), h.Number.Uint64(), nil
}

// Members are the organizations of the consortium and its validators.
type Members struct {
	Height        uint64         `json:"height"`
	Organizations []Organization `json:"organizations"`
	// Validators are the node ids of the validator set in force.
	Validators []string `json:"validators"`
}

// Organization is a member organization with its nodes.
type Organization struct {
	Name   string `json:"name"`
	Tier   string `json:"tier"`   // read, write or validate
	Weight uint64 `json:"weight"` // voting weight
	Status string `json:"status"` // active, suspended or exited
	Since  uint64 `json:"since"`  // height it was admitted (0: genesis)
	Nodes  []Node `json:"nodes"`
	// PrivacyKey is its privacy identity (base64 of its X25519 key), ""
	// when it has none.
	PrivacyKey string `json:"privacyKey"`
}

// Node is a node of an organization.
type Node struct {
	ID          string `json:"id"`          // address of the node key
	Fingerprint string `json:"fingerprint"` // SHA-256 of its TLS certificate; zero: any of its organization's
	Validator   bool   `json:"validator"`
	Revoked     bool   `json:"revoked"`
}

// OrganizationDetail is one organization with its accounts and open
// proposals.
type OrganizationDetail struct {
	Organization
	Height        uint64          `json:"height"`
	Accounts      []MemberAccount `json:"accounts"`
	OpenProposals []uint64        `json:"openProposals"`
}

// MemberAccount is an account an organization lists.
type MemberAccount struct {
	Address string   `json:"address"`
	Roles   []string `json:"roles"`
	Frozen  bool     `json:"frozen"`
}

func organization(s *system.State, o system.Org, nodes []system.Node) Organization {
	out := Organization{Name: o.Name, Tier: o.Tier.String(), Weight: o.Weight, Status: o.Status.String(), Since: o.Since, Nodes: []Node{}}
	if k := s.PrivacyKey(o.Name); k != nil {
		out.PrivacyKey = k.Identity().String()
	}
	for _, n := range nodes {
		if n.Org == o.Name {
			out.Nodes = append(out.Nodes, Node{ID: n.ID.Hex(), Fingerprint: n.Fingerprint.Hex(), Validator: n.Validator, Revoked: n.Revoked})
		}
	}
	return out
}

// listMembers is GET /members. The registry is the consortium's: tens of
// organizations, not a list to page through.
func (g *Gateway) listMembers(c *call) (*reply, error) {
	s, height, err := g.systemAt()
	if err != nil {
		return nil, err
	}
	nodes := s.Nodes()
	out := Members{Height: height, Organizations: []Organization{}, Validators: []string{}}
	for _, o := range s.Orgs() {
		out.Organizations = append(out.Organizations, organization(s, o, nodes))
	}
	for _, v := range s.Validators() {
		out.Validators = append(out.Validators, v.Hex())
	}
	return okReply(out), nil
}

// maxOrgName bounds {org} (an X.509 organization name is at most 64).
const maxOrgName = 64

// getMember is GET /members/{org}.
func (g *Gateway) getMember(c *call) (*reply, error) {
	name := c.r.PathValue("org")
	if name == "" || len(name) > maxOrgName {
		return nil, badInput("org", "want an organization's name of 1 to %d bytes", maxOrgName)
	}
	s, height, err := g.systemAt()
	if err != nil {
		return nil, err
	}
	o, found := s.Org(name)
	if !found {
		return nil, notFound("org", "no organization %q in the registry", name)
	}
	out := OrganizationDetail{Organization: organization(s, o, s.Nodes()), Height: height, Accounts: []MemberAccount{},
		OpenProposals: slices.Clone(s.OpenProposals(name))}
	if out.OpenProposals == nil {
		out.OpenProposals = []uint64{}
	}
	for _, a := range s.OrgAccounts(name) {
		acct := s.Account(a)
		out.Accounts = append(out.Accounts, MemberAccount{Address: a.Hex(), Roles: acct.Roles.Names(), Frozen: acct.Frozen})
	}
	return okReply(out), nil
}

// Proposal is a governance proposal with its votes.
type Proposal struct {
	ID     uint64 `json:"id"`
	Action string `json:"action"` // AddOrganization, Freeze, ...
	Class  string `json:"class"`  // the class whose rule decides it
	// Args are the action's arguments by their ABI names (addresses and
	// hashes in hex, uint256 as decimal strings).
	Args     json.RawMessage `json:"args"`
	Memo     string          `json:"memo"`
	Proposer string          `json:"proposer"`
	Org      string          `json:"org"`
	// Status is open, passed, executed, rejected, expired, cancelled or
	// failed.
	Status      string `json:"status"`
	Created     uint64 `json:"created"`     // height
	Expires     uint64 `json:"expires"`     // last height it may be voted at
	Decided     uint64 `json:"decided"`     // height it was decided (0: not yet)
	ActivatesAt uint64 `json:"activatesAt"` // height it executes at (0: not passed)
	Result      string `json:"result"`      // why it failed, when it did
	// Weights of the votes against the current weights of the active
	// organizations, and the threshold to pass in basis points of Total.
	YesWeight    uint64 `json:"yesWeight"`
	NoWeight     uint64 `json:"noWeight"`
	TotalWeight  uint64 `json:"totalWeight"`
	ThresholdBps uint64 `json:"thresholdBps"`
	Votes        []Vote `json:"votes"`
}

// Vote is one organization's vote.
type Vote struct {
	Org     string `json:"org"`
	Voter   string `json:"voter"`
	Support bool   `json:"support"`
	Weight  uint64 `json:"weight"`
	Height  uint64 `json:"height"`
}

func proposal(s *system.State, p system.Proposal) Proposal {
	t := s.Tally(&p)
	out := Proposal{ID: p.ID, Action: p.Action.String(), Class: p.Action.Class().String(), Args: json.RawMessage("{}"),
		Memo: p.Memo, Proposer: p.Proposer.Hex(), Org: p.Org, Status: p.Status.String(), Created: p.Created,
		Expires: p.Expires, Decided: p.Decided, ActivatesAt: p.ActivatesAt, Result: p.Result,
		YesWeight: t.Yes, NoWeight: t.No, TotalWeight: t.Total, Votes: []Vote{}}
	if c := p.Action.Class(); c < system.NumClasses {
		out.ThresholdBps = s.Policy().Rules[c].Threshold
	}
	if args, err := system.DecodeArgs(p.Action, p.Args); err == nil {
		if raw, err := system.ArgsJSON(args); err == nil {
			out.Args = raw
		}
	}
	for _, v := range p.Votes {
		out.Votes = append(out.Votes, Vote{Org: v.Org, Voter: v.Voter.Hex(), Support: v.Support, Weight: v.Weight, Height: v.Height})
	}
	return out
}

// listProposals is GET /governance/proposals: the newest first.
func (g *Gateway) listProposals(c *call) (*reply, error) {
	q := c.r.URL.Query()
	limit, err := parseLimit(q)
	if err != nil {
		return nil, err
	}
	start, given, err := decodeCursor(q, "proposals")
	if err != nil {
		return nil, err
	}
	s, _, err := g.systemAt()
	if err != nil {
		return nil, err
	}
	count := s.ProposalCount()
	if !given || start > count {
		start = count
	}
	items := make([]Proposal, 0, limit)
	id := start
	for ; id >= 1 && len(items) < limit; id-- {
		p, found := s.Proposal(id)
		if !found {
			return nil, internal("proposal %d of %d is missing", id, count)
		}
		items = append(items, proposal(s, p))
	}
	next := ""
	if id >= 1 {
		next = encodeCursor("proposals", id)
	}
	return pageReply(c.r, items, next, limit), nil
}

// getProposal is GET /governance/proposals/{id}.
func (g *Gateway) getProposal(c *call) (*reply, error) {
	id, err := parseUint64("id", c.r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	s, _, err := g.systemAt()
	if err != nil {
		return nil, err
	}
	p, found := s.Proposal(id)
	if !found {
		return nil, notFound("id", "no proposal %d (there are %d)", id, s.ProposalCount())
	}
	return okReply(proposal(s, p)), nil
}
