package rpc

import (
	"github.com/ethereum/go-ethereum/common"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/system"
)

// GroupInfo is a privacy group as the charter_ namespace shows it (the
// registry's record; see system.Group).
type GroupInfo struct {
	ID common.Hash `json:"id"`
	// PrivacyGroupID is the id as Besu's privacy API shows it: base64.
	PrivacyGroupID string   `json:"privacyGroupId"`
	Name           string   `json:"name"`
	Description    string   `json:"description"`
	Creator        string   `json:"creator"`
	Members        []string `json:"members"`
	// InactiveMembers are the members whose organization is not active
	// now (suspended, exited): they stay members until a member's admin
	// removes them.
	InactiveMembers []string       `json:"inactiveMembers"`
	MembersHash     common.Hash    `json:"membersHash"`
	Status          string         `json:"status"`
	Created         uint64         `json:"created"`
	Changed         uint64         `json:"changed"`
	Auditors        []GroupAuditor `json:"auditors"`
}

// GroupAuditor is an auditor organization's grant on a group.
type GroupAuditor struct {
	Org  string `json:"org"`
	From uint64 `json:"from"`
}

func groupInfo(s *system.State, g system.Group) GroupInfo {
	out := GroupInfo{ID: g.ID, PrivacyGroupID: system.GroupIDBase64(g.ID), Name: g.Name, Description: g.Description,
		Creator: g.Creator, Members: nonNil(g.Members), InactiveMembers: []string{}, MembersHash: g.MembersHash,
		Status: g.Status.String(), Created: g.Created, Changed: g.Changed, Auditors: []GroupAuditor{}}
	for _, m := range g.Members {
		if o, ok := s.Org(m); !ok || o.Status != system.StatusActive {
			out.InactiveMembers = append(out.InactiveMembers, m)
		}
	}
	for _, a := range g.Auditors {
		out.Auditors = append(out.Auditors, GroupAuditor{Org: a.Org, From: a.From})
	}
	return out
}

// Group returns the privacy group id (0x and 64 hex digits, or Besu's
// base64 privacyGroupId), deleted or not.
func (api *CharterAPI) Group(id string, bnh *gethrpc.BlockNumberOrHash) (*GroupInfo, error) {
	gid, err := system.ParseGroupID(id)
	if err != nil {
		return nil, invalidParams("%v", err)
	}
	s, _, err := api.system(bnh)
	if err != nil {
		return nil, err
	}
	g, ok := s.Group(gid)
	if !ok {
		return nil, invalidParams("no privacy group %s", gid.Hex())
	}
	info := groupInfo(s, g)
	return &info, nil
}

// Groups returns the active privacy groups org belongs to, in the order
// of its list (system.State.GroupsOf; at most 256, the top of the
// maxGroupsPerOrg parameter's range).
func (api *CharterAPI) Groups(org string, bnh *gethrpc.BlockNumberOrHash) ([]GroupInfo, error) {
	s, _, err := api.system(bnh)
	if err != nil {
		return nil, err
	}
	if _, ok := s.Org(org); !ok {
		return nil, invalidParams("organization %q is not in the registry", org)
	}
	out := []GroupInfo{}
	for _, id := range s.GroupsOf(org) {
		if g, ok := s.Group(id); ok {
			out = append(out, groupInfo(s, g))
		}
	}
	return out, nil
}
