package rpc

import (
	"encoding/base64"
	"encoding/json"

	"github.com/ethereum/go-ethereum/common"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/system"
)

// CharterAPI is the charter_ namespace: the registry, governance and
// usage, as JSON for tools (the CLI's `members`, `gov` and `usage`). The
// same data is reachable through the system contracts' Solidity ABI.
type CharterAPI struct{ b Backend }

func (api *CharterAPI) system(bnh *gethrpc.BlockNumberOrHash) (*system.State, uint64, error) {
	h, st, err := stateAt(api.b, latest(bnh))
	if err != nil {
		return nil, 0, err
	}
	return system.Open(st, h.Number.Uint64(), h.Time), h.Number.Uint64(), nil
}

// MemberAccount is an account as charter_members shows it.
type MemberAccount struct {
	Address common.Address `json:"address"`
	Org     string         `json:"org"`
	Roles   []string       `json:"roles"`
	Frozen  bool           `json:"frozen"`
}

// MemberNode is a node as charter_members shows it.
type MemberNode struct {
	ID          common.Address `json:"id"`
	Org         string         `json:"org"`
	Fingerprint common.Hash    `json:"fingerprint"`
	Validator   bool           `json:"validator"`
	Revoked     bool           `json:"revoked"`
}

// MemberOrg is an organization as charter_members shows it.
type MemberOrg struct {
	Name     string          `json:"name"`
	Tier     string          `json:"tier"`
	Weight   uint64          `json:"weight"`
	Status   string          `json:"status"`
	Since    uint64          `json:"since"`
	Nodes    []MemberNode    `json:"nodes"`
	Accounts []MemberAccount `json:"accounts"`
	// PrivacyKey is the organization's privacy identity (base64 of its
	// X25519 key, as privateFrom and privateFor carry it) and PrivacyKEM
	// its ML-KEM-768 key (base64); both empty when it has none.
	PrivacyKey string `json:"privacyKey"`
	PrivacyKEM string `json:"privacyKem"`
}

// ValidatorSet is a validator set and the height it is in force from.
type ValidatorSet struct {
	From uint64           `json:"from"`
	IDs  []common.Address `json:"ids"`
}

// Members is the answer of charter_members.
type Members struct {
	Height           uint64            `json:"height"`
	Organizations    []MemberOrg       `json:"organizations"`
	Validators       []common.Address  `json:"validators"`
	ValidatorChanges []ValidatorSet    `json:"validatorChanges"`
	DefaultRoles     []string          `json:"defaultRoles"`
	Parameters       map[string]uint64 `json:"parameters"`
	Upgrades         []system.Upgrade  `json:"upgrades"`
	Revoked          []common.Hash     `json:"revokedCertificates"`
	Frozen           []common.Address  `json:"frozen"`
	Factories        []common.Address  `json:"factories"`
}

func memberNode(n system.Node) MemberNode {
	return MemberNode{ID: n.ID, Org: n.Org, Fingerprint: n.Fingerprint, Validator: n.Validator, Revoked: n.Revoked}
}

// Members returns the registry: organizations with their nodes and
// accounts, the validator set and its scheduled changes, parameters.
func (api *CharterAPI) Members(bnh *gethrpc.BlockNumberOrHash) (*Members, error) {
	s, height, err := api.system(bnh)
	if err != nil {
		return nil, err
	}
	out := &Members{Height: height, Validators: nonNil(s.Validators()), DefaultRoles: s.DefaultRoles().Names(),
		Parameters: map[string]uint64{}, Upgrades: nonNil(s.Upgrades()), Revoked: nonNil(s.RevokedFingerprints()),
		Frozen: nonNil(s.Frozen()), Factories: nonNil(s.Factories()), Organizations: []MemberOrg{}, ValidatorChanges: []ValidatorSet{}}
	nodes := s.Nodes()
	for _, o := range s.Orgs() {
		mo := MemberOrg{Name: o.Name, Tier: o.Tier.String(), Weight: o.Weight, Status: o.Status.String(), Since: o.Since,
			Nodes: []MemberNode{}, Accounts: []MemberAccount{}}
		if k := s.PrivacyKey(o.Name); k != nil {
			mo.PrivacyKey, mo.PrivacyKEM = k.Identity().String(), base64.StdEncoding.EncodeToString(k.KEM())
		}
		for _, n := range nodes {
			if n.Org == o.Name {
				mo.Nodes = append(mo.Nodes, memberNode(n))
			}
		}
		for _, a := range s.OrgAccounts(o.Name) {
			acct := s.Account(a)
			mo.Accounts = append(mo.Accounts, MemberAccount{Address: a, Org: acct.Org, Roles: acct.Roles.Names(), Frozen: acct.Frozen})
		}
		out.Organizations = append(out.Organizations, mo)
	}
	for _, n := range nodes {
		if n.Org == "" {
			out.Organizations = appendUnattributed(out.Organizations, memberNode(n))
		}
	}
	for _, c := range s.ValidatorChanges() {
		out.ValidatorChanges = append(out.ValidatorChanges, ValidatorSet{From: c.From, IDs: nonNil(c.IDs)})
	}
	out.Parameters = parameters(s)
	return out, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// appendUnattributed lists nodes of no organization (validators of a
// genesis without a governance section) under the name "".
func appendUnattributed(orgs []MemberOrg, n MemberNode) []MemberOrg {
	for i := range orgs {
		if orgs[i].Name == "" {
			orgs[i].Nodes = append(orgs[i].Nodes, n)
			return orgs
		}
	}
	return append(orgs, MemberOrg{Name: "", Status: "unattributed", Nodes: []MemberNode{n}, Accounts: []MemberAccount{}})
}

// AccountInfo is the answer of charter_account.
type AccountInfo struct {
	MemberAccount
	EffectiveRoles []string `json:"effectiveRoles"`
}

// Account returns an account's organization and roles (the default roles
// for an account the registry does not list).
func (api *CharterAPI) Account(addr common.Address, bnh *gethrpc.BlockNumberOrHash) (*AccountInfo, error) {
	s, _, err := api.system(bnh)
	if err != nil {
		return nil, err
	}
	a := s.Account(addr)
	eff := s.EffectiveRoles(a).Names()
	if a.Frozen {
		eff = []string{}
	}
	return &AccountInfo{MemberAccount{Address: addr, Org: a.Org, Roles: a.Roles.Names(), Frozen: a.Frozen}, eff}, nil
}

// ProposalInfo is a proposal as the charter_ namespace shows it.
type ProposalInfo struct {
	ID          uint64          `json:"id"`
	Action      string          `json:"action"`
	Class       string          `json:"class"`
	Args        json.RawMessage `json:"args"` // by the action's ABI names, in ABI order (system.ArgsJSON)
	Memo        string          `json:"memo"`
	Proposer    common.Address  `json:"proposer"`
	Org         string          `json:"org"`
	Status      string          `json:"status"`
	Created     uint64          `json:"created"`
	Expires     uint64          `json:"expires"`
	Decided     uint64          `json:"decided,omitempty"`
	ActivatesAt uint64          `json:"activatesAt,omitempty"`
	Result      string          `json:"result,omitempty"`
	Yes         uint64          `json:"yesWeight"`
	No          uint64          `json:"noWeight"`
	Total       uint64          `json:"totalWeight"`
	Threshold   uint64          `json:"thresholdBps"`
	// The class's rule besides the threshold: the weight that must vote,
	// the organizations that must approve, the blocks between passing
	// and execution.
	Quorum       uint64     `json:"quorumBps"`
	MinApprovals uint64     `json:"minApprovals"`
	Timelock     uint64     `json:"timelockBlocks"`
	Votes        []VoteInfo `json:"votes"`
}

// VoteInfo is one organization's vote.
type VoteInfo struct {
	Org     string         `json:"org"`
	Voter   common.Address `json:"voter"`
	Support bool           `json:"support"`
	Weight  uint64         `json:"weight"`
	Height  uint64         `json:"height"`
}

func proposalInfo(s *system.State, p system.Proposal) ProposalInfo {
	t := s.Tally(&p)
	rule := s.Policy().Rules[p.Action.Class()]
	info := ProposalInfo{ID: p.ID, Action: p.Action.String(), Class: p.Action.Class().String(), Memo: p.Memo,
		Proposer: p.Proposer, Org: p.Org, Status: p.Status.String(), Created: p.Created, Expires: p.Expires,
		Decided: p.Decided, ActivatesAt: p.ActivatesAt, Result: p.Result, Yes: t.Yes, No: t.No, Total: t.Total,
		Threshold: rule.Threshold, Quorum: rule.Quorum, MinApprovals: rule.MinApprovals, Timelock: rule.Timelock, Votes: []VoteInfo{}}
	if args, err := system.DecodeArgs(p.Action, p.Args); err == nil {
		info.Args, _ = system.ArgsJSON(args)
	}
	for _, v := range p.Votes {
		info.Votes = append(info.Votes, VoteInfo{Org: v.Org, Voter: v.Voter, Support: v.Support, Weight: v.Weight, Height: v.Height})
	}
	return info
}

// Proposal returns proposal id.
func (api *CharterAPI) Proposal(id uint64, bnh *gethrpc.BlockNumberOrHash) (*ProposalInfo, error) {
	s, _, err := api.system(bnh)
	if err != nil {
		return nil, err
	}
	p, ok := s.Proposal(id)
	if !ok {
		return nil, invalidParams("no proposal %d (there are %d)", id, s.ProposalCount())
	}
	info := proposalInfo(s, p)
	return &info, nil
}

// Proposals lists the proposals, newest first; status filters ("open",
// "passed", ...; "" for all); at most limit (default 100).
func (api *CharterAPI) Proposals(statusArg *string, limitArg *uint64) ([]ProposalInfo, error) {
	s, _, err := api.system(nil)
	if err != nil {
		return nil, err
	}
	status, limit := deref(statusArg), deref(limitArg)
	if limit == 0 || limit > 1000 {
		limit = 100
	}
	out := []ProposalInfo{}
	for id := s.ProposalCount(); id >= 1 && uint64(len(out)) < limit; id-- {
		p, ok := s.Proposal(id)
		if ok && (status == "" || p.Status.String() == status) {
			out = append(out, proposalInfo(s, p))
		}
	}
	return out, nil
}

// HistoryEvent is one entry of the audit trail.
type HistoryEvent struct {
	Index    uint64         `json:"index"`
	Height   uint64         `json:"height"`
	Proposal uint64         `json:"proposal,omitempty"`
	Kind     string         `json:"kind"`
	Org      string         `json:"org,omitempty"`
	Actor    common.Address `json:"actor"`
	Detail   string         `json:"detail,omitempty"`
}

// History returns the governance audit trail from index from, at most
// limit entries (default 1000).
func (api *CharterAPI) History(fromArg, limitArg *uint64) ([]HistoryEvent, error) {
	s, _, err := api.system(nil)
	if err != nil {
		return nil, err
	}
	from, limit := deref(fromArg), deref(limitArg)
	if limit == 0 || limit > 10000 {
		limit = 1000
	}
	out := []HistoryEvent{}
	for i, e := range s.Events(from, limit) {
		out = append(out, HistoryEvent{Index: from + uint64(i), Height: e.Height, Proposal: e.Proposal, Kind: e.Kind, Org: e.Org, Actor: e.Actor, Detail: e.Detail})
	}
	return out, nil
}

// UsageRow is one organization's usage over a range of days.
type UsageRow struct {
	Org        string `json:"org"`
	Nodes      int    `json:"nodes"`
	Txs        uint64 `json:"txs"`
	Gas        uint64 `json:"gas"`
	StateBytes uint64 `json:"stateBytes"`
	// Share is the organization's share of the gas used, in basis points.
	Share uint64 `json:"gasShareBps"`
}

// Usage reports per organization the transactions, gas and state bytes
// written from UTC day fromDay to toDay inclusive (days since 1970; 0 and
// 0: the day of the head block), with its active node count.
func (api *CharterAPI) Usage(fromArg, toArg *uint64) ([]UsageRow, error) {
	h, st, err := stateAt(api.b, latest(nil))
	if err != nil {
		return nil, err
	}
	fromDay, toDay := deref(fromArg), deref(toArg)
	s := system.Read(st)
	if fromDay == 0 && toDay == 0 {
		fromDay, toDay = h.Time/86400, h.Time/86400
	}
	if toDay < fromDay || toDay-fromDay > 3660 {
		return nil, invalidParams("days %d to %d: want from <= to, at most 3660 days", fromDay, toDay)
	}
	nodes := s.Nodes()
	orgs := append(s.OrgNames(), "")
	rows := []UsageRow{}
	var total uint64
	for _, o := range orgs {
		r := UsageRow{Org: o}
		for _, n := range nodes {
			if n.Org == o && !n.Revoked && o != "" {
				r.Nodes++
			}
		}
		for d := fromDay; d <= toDay; d++ {
			u := s.Usage(o, d)
			r.Txs += u.Txs
			r.Gas += u.Gas
			r.StateBytes += u.StateBytes
		}
		if o == "" && r.Txs == 0 {
			continue
		}
		total += r.Gas
		rows = append(rows, r)
	}
	for i := range rows {
		if total > 0 {
			rows[i].Share = rows[i].Gas * 10000 / total
		}
	}
	return rows, nil
}

// parameters are the chain parameters in force that governance or the
// genesis set, or that have a default of their own (setCode,
// maxOpenProposals); unset ones of the chain spec are left out.
func parameters(s *system.State) map[string]uint64 {
	out := map[string]uint64{}
	for _, p := range system.Params {
		if v, ok := s.ParamValue(p.Name); ok && (v != 0 || p.HasDefault) {
			out[p.Name] = v
		}
	}
	return out
}

// PolicyInfo is the answer of charter_policy.
type PolicyInfo struct {
	EpochLength      uint64                 `json:"epochLength"`
	DefaultRoles     []string               `json:"defaultRoles"`
	MaxOpenProposals uint64                 `json:"maxOpenProposals"`
	Rules            map[string]system.Rule `json:"rules"`
	Parameters       map[string]uint64      `json:"parameters"`
}

// Policy returns the governance policy in force.
func (api *CharterAPI) Policy() (*PolicyInfo, error) {
	s, _, err := api.system(nil)
	if err != nil {
		return nil, err
	}
	p := s.Policy()
	out := &PolicyInfo{EpochLength: p.EpochLength, DefaultRoles: p.DefaultRoles.Names(), MaxOpenProposals: p.MaxOpenProposals,
		Rules: map[string]system.Rule{}, Parameters: parameters(s)}
	for c := system.Class(0); c < system.NumClasses; c++ {
		out.Rules[c.String()] = p.Rules[c]
	}
	return out, nil
}
