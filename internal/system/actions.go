package system

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/identity"
)

// Action is what a proposal does when it passes.
type Action uint8

// Actions; ICharter.sol lists their arguments.
const (
	ActAddOrganization Action = iota + 1
	ActRemoveOrganization
	ActSetOrganization
	ActAddNode
	ActRemoveNode
	ActAddValidator
	ActRemoveValidator
	ActGrantRoles
	ActRevokeRoles
	ActRevokeCertificate
	ActRotateCA
	ActFreeze
	ActUnfreeze
	ActSetParameter
	ActScheduleUpgrade
	ActSetRule
	ActSetDefaultRoles
	numActions
)

type actionDef struct {
	name  string
	class Class
	args  abi.Arguments
}

func mustArgs(spec ...string) abi.Arguments {
	var out abi.Arguments
	for _, s := range spec {
		name, typ, _ := strings.Cut(s, " ")
		t, err := abi.NewType(typ, "", nil)
		if err != nil {
			panic(err)
		}
		out = append(out, abi.Argument{Name: name, Type: t})
	}
	return out
}

var actions = [numActions]actionDef{
	ActAddOrganization:    {"AddOrganization", ClassMembership, mustArgs("name string", "rootsPem string", "tier uint8", "weight uint64", "admins address[]", "nodes address[]", "fingerprints bytes32[]", "validators address[]")},
	ActRemoveOrganization: {"RemoveOrganization", ClassMembership, mustArgs("name string")},
	ActSetOrganization:    {"SetOrganization", ClassMembership, mustArgs("name string", "tier uint8", "weight uint64", "status uint8")},
	ActAddNode:            {"AddNode", ClassMembership, mustArgs("org string", "id address", "fingerprint bytes32", "validator bool")},
	ActRemoveNode:         {"RemoveNode", ClassMembership, mustArgs("id address")},
	ActAddValidator:       {"AddValidator", ClassValidators, mustArgs("id address")},
	ActRemoveValidator:    {"RemoveValidator", ClassValidators, mustArgs("id address")},
	ActGrantRoles:         {"GrantRoles", ClassRoles, mustArgs("account address", "org string", "roles uint32")},
	ActRevokeRoles:        {"RevokeRoles", ClassRoles, mustArgs("account address", "roles uint32")},
	ActRevokeCertificate:  {"RevokeCertificate", ClassCertificates, mustArgs("fingerprint bytes32")},
	ActRotateCA:           {"RotateCA", ClassCertificates, mustArgs("org string", "rootsPem string")},
	ActFreeze:             {"Freeze", ClassFreeze, mustArgs("target address")},
	ActUnfreeze:           {"Unfreeze", ClassFreeze, mustArgs("target address")},
	ActSetParameter:       {"SetParameter", ClassParameters, mustArgs("name string", "value uint256")},
	ActScheduleUpgrade:    {"ScheduleUpgrade", ClassUpgrade, mustArgs("name string", "height uint64")},
	ActSetRule:            {"SetRule", ClassPolicy, mustArgs("class uint8", "threshold uint64", "quorum uint64", "expiryBlocks uint64", "timelock uint64", "minApprovals uint64")},
	ActSetDefaultRoles:    {"SetDefaultRoles", ClassPolicy, mustArgs("roles uint32")},
}

func (a Action) def() (*actionDef, bool) {
	if a == 0 || a >= numActions {
		return nil, false
	}
	return &actions[a], true
}

func (a Action) String() string {
	if d, ok := a.def(); ok {
		return d.name
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Class is the class whose rule decides the action.
func (a Action) Class() Class {
	if d, ok := a.def(); ok {
		return d.class
	}
	return NumClasses
}

// ParseAction reads an action by name (case-insensitive) or number.
func ParseAction(s string) (Action, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n >= 1 && n < int(numActions) {
			return Action(n), nil
		}
		return 0, fmt.Errorf("unknown action %d (want 1 to %d)", n, numActions-1)
	}
	for a := Action(1); a < numActions; a++ {
		if strings.EqualFold(actions[a].name, s) {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown action %q", s)
}

// ActionArgs describes an action's arguments ("name string", ...).
func ActionArgs(a Action) []string {
	d, ok := a.def()
	if !ok {
		return nil
	}
	out := make([]string, len(d.args))
	for i, arg := range d.args {
		out[i] = arg.Name + " " + arg.Type.String()
	}
	return out
}

// EncodeArgs ABI-encodes an action's arguments (Go values of the ABI
// types: string, uint8, uint64, *big.Int, common.Address, [32]byte,
// slices of those, bool).
func EncodeArgs(a Action, vals ...any) ([]byte, error) {
	d, ok := a.def()
	if !ok {
		return nil, fmt.Errorf("unknown action %d", a)
	}
	return d.args.Pack(vals...)
}

// DecodeArgs decodes an action's arguments into a name → value map.
func DecodeArgs(a Action, data []byte) (map[string]any, error) {
	d, ok := a.def()
	if !ok {
		return nil, fmt.Errorf("unknown action %d", a)
	}
	out := map[string]any{}
	if err := d.args.UnpackIntoMap(out, data); err != nil {
		return nil, fmt.Errorf("%s: malformed arguments: %v", d.name, err)
	}
	// Canonical encoding only: what decodes must re-encode to the input,
	// so that one action has one form.
	vals := make([]any, len(d.args))
	for i, arg := range d.args {
		vals[i] = out[arg.Name]
	}
	if re, err := d.args.Pack(vals...); err != nil || !slices.Equal(re, data) {
		return nil, fmt.Errorf("%s: arguments not in canonical ABI encoding", d.name)
	}
	return out, nil
}

// revert is an error that reverts a system contract call with its text
// as the reason.
type revert string

func (r revert) Error() string { return string(r) }

func reverts(format string, args ...any) error { return revert(fmt.Sprintf(format, args...)) }

func checkOrgName(name string) error {
	switch {
	case strings.TrimSpace(name) == "" || strings.TrimSpace(name) != name:
		return reverts("organization name %q: empty or padded", name)
	case len(name) > 64:
		return reverts("organization name %q: longer than 64 bytes", name)
	case strings.ContainsFunc(name, func(r rune) bool { return unicode.IsControl(r) || r == '/' }):
		return reverts("organization name %q: control characters or '/'", name)
	}
	return nil
}

// checkRoots accepts PEM text of one or more CA certificates.
func checkRoots(text string) error {
	if _, err := identity.ParseRootsPEM(text); err != nil {
		if errors.Is(err, identity.ErrRootsShape) {
			return reverts("roots: %v", identity.ErrRootsShape)
		}
		return reverts("roots: %v", err)
	}
	return nil
}

func checkWeight(w uint64) error {
	if w == 0 || w > 1_000_000 {
		return reverts("weight %d outside [1, 1000000]", w)
	}
	return nil
}

func checkTier(t uint8) error {
	if t < uint8(TierRead) || t > uint8(TierValidate) {
		return reverts("tier %d: want 1 (read), 2 (write) or 3 (validate)", t)
	}
	return nil
}

func checkRoleBits(r uint32) error {
	if r == 0 || Role(r)&^allRoles != 0 {
		return reverts("roles %#x: want a non-empty set of read 1, write 2, deploy 4, admin 8, auditor 16", r)
	}
	return nil
}

// paramRange bounds each chain parameter.
func paramRange(name string) (lo, hi uint64, ok bool) {
	switch name {
	case ParamGasLimit:
		return 5000, 10_000_000_000, true
	case ParamTxGasLimit:
		return 21_000, 1 << 24, true
	case ParamMaxTxBytes:
		return 1024, 4 << 20, true
	case ParamMinGasPrice:
		return 0, 1_000_000_000_000_000_000, true
	case ParamEpochLength:
		return 1, 1_000_000, true
	}
	return 0, 0, false
}

// apply checks an action against the state and, with write set, applies
// it. Proposing runs it with write false (nothing changes); execution
// with write true.
func (s *State) apply(a Action, args map[string]any, write bool) error {
	switch a {
	case ActAddOrganization:
		name := args["name"].(string)
		roots := args["rootsPem"].(string)
		tier := args["tier"].(uint8)
		weight := args["weight"].(uint64)
		admins := args["admins"].([]common.Address)
		nodes := args["nodes"].([]common.Address)
		fps := args["fingerprints"].([][32]byte)
		vals := args["validators"].([]common.Address)
		if err := checkOrgName(name); err != nil {
			return err
		}
		if _, ok := s.Org(name); ok {
			return reverts("organization %s exists already", name)
		}
		if err := checkRoots(roots); err != nil {
			return err
		}
		if err := checkTier(tier); err != nil {
			return err
		}
		if err := checkWeight(weight); err != nil {
			return err
		}
		if len(admins) == 0 {
			return reverts("an organization needs at least one admin account")
		}
		for _, ad := range admins {
			if ad == (common.Address{}) || IsSystem(ad) {
				return reverts("admin %s: not an account", ad.Hex())
			}
			if o := s.rawAccount(ad).Org; o != "" {
				return reverts("account %s belongs to organization %s already", ad.Hex(), o)
			}
		}
		if len(fps) != len(nodes) {
			return reverts("%d nodes but %d fingerprints", len(nodes), len(fps))
		}
		seen := map[common.Address]bool{}
		for _, id := range nodes {
			if id == (common.Address{}) || seen[id] {
				return reverts("node %s: zero or listed twice", id.Hex())
			}
			seen[id] = true
			if _, ok := s.Node(id); ok {
				return reverts("node %s is registered already", id.Hex())
			}
		}
		valSeen := map[common.Address]bool{}
		for _, v := range vals {
			if !seen[v] {
				return reverts("validator %s is not one of the organization's nodes", v.Hex())
			}
			if valSeen[v] {
				return reverts("validator %s listed twice", v.Hex())
			}
			valSeen[v] = true
		}
		if len(vals) > 0 && Tier(tier) < TierValidate {
			return reverts("organization %s of tier %s may not run validators", name, Tier(tier))
		}
		if !write {
			return nil
		}
		s.putOrg(Org{Name: name, Tier: Tier(tier), Weight: weight, Status: StatusActive, Since: s.height})
		s.reg.put("roots/"+name, []byte(roots))
		for _, ad := range admins {
			acct := s.rawAccount(ad)
			acct.Org, acct.Roles = name, RoleAdmin|RoleRead
			if Tier(tier) >= TierWrite {
				acct.Roles |= RoleWrite
			}
			s.putAccount(acct)
		}
		for i, id := range nodes {
			s.putNode(Node{ID: id, Org: name, Fingerprint: fps[i], Validator: slices.Contains(vals, id)})
		}
		if len(vals) > 0 {
			s.setValidators(append(s.Validators(), vals...))
		}
		return nil

	case ActRemoveOrganization:
		name := args["name"].(string)
		o, ok := s.Org(name)
		if !ok || o.Status == StatusExited {
			return reverts("organization %s is not a member", name)
		}
		if o.Status == StatusActive && len(s.activeOrgs()) == 1 {
			return reverts("organization %s is the last active one", name)
		}
		var keep []common.Address
		for _, v := range s.Validators() {
			if n, _ := s.Node(v); n.Org != name {
				keep = append(keep, v)
			}
		}
		if len(keep) == 0 {
			return reverts("removing %s would leave no validator", name)
		}
		if !write {
			return nil
		}
		o.Status = StatusExited
		s.putOrg(o)
		for _, addr := range s.OrgAccounts(name) {
			acct := s.rawAccount(addr)
			acct.Roles = 0
			s.putAccount(acct)
		}
		for _, n := range s.Nodes() {
			if n.Org == name && !n.Revoked {
				n.Revoked, n.Validator = true, false
				s.putNode(n)
				s.revoke(n.Fingerprint)
			}
		}
		if len(keep) != len(s.Validators()) {
			s.setValidators(keep)
		}
		return nil

	case ActSetOrganization:
		name := args["name"].(string)
		tier, weight, status := args["tier"].(uint8), args["weight"].(uint64), args["status"].(uint8)
		o, ok := s.Org(name)
		if !ok || o.Status == StatusExited {
			return reverts("organization %s is not a member", name)
		}
		if err := checkTier(tier); err != nil {
			return err
		}
		if err := checkWeight(weight); err != nil {
			return err
		}
		if status != uint8(StatusActive) && status != uint8(StatusSuspended) {
			return reverts("status %d: want 1 (active) or 2 (suspended); exit is RemoveOrganization", status)
		}
		hasValidators := slices.ContainsFunc(s.Validators(), func(v common.Address) bool { n, _ := s.Node(v); return n.Org == name })
		if hasValidators && (Tier(tier) < TierValidate || Status(status) != StatusActive) {
			return reverts("organization %s runs validators: remove them first", name)
		}
		if Status(status) != StatusActive && o.Status == StatusActive && len(s.activeOrgs()) == 1 {
			return reverts("organization %s is the last active one", name)
		}
		if !write {
			return nil
		}
		o.Tier, o.Weight, o.Status = Tier(tier), weight, Status(status)
		s.putOrg(o)
		return nil

	case ActAddNode:
		org, id, fp, val := args["org"].(string), args["id"].(common.Address), args["fingerprint"].([32]byte), args["validator"].(bool)
		o, ok := s.Org(org)
		if !ok || o.Status != StatusActive {
			return reverts("organization %s is not active", org)
		}
		if id == (common.Address{}) {
			return reverts("node id is zero")
		}
		if _, ok := s.Node(id); ok {
			return reverts("node %s is registered already", id.Hex())
		}
		if val && o.Tier < TierValidate {
			return reverts("organization %s of tier %s may not run validators", org, o.Tier)
		}
		if !write {
			return nil
		}
		s.putNode(Node{ID: id, Org: org, Fingerprint: fp, Validator: val})
		if val {
			s.setValidators(append(s.Validators(), id))
		}
		return nil

	case ActRemoveNode, ActRevokeCertificate:
		var targets []Node
		if a == ActRemoveNode {
			id := args["id"].(common.Address)
			n, ok := s.Node(id)
			if !ok || n.Revoked {
				return reverts("node %s is not registered or revoked already", id.Hex())
			}
			targets = []Node{n}
		} else {
			fp := common.Hash(args["fingerprint"].([32]byte))
			if fp == (common.Hash{}) {
				return reverts("fingerprint is zero")
			}
			if slices.Contains(s.RevokedFingerprints(), fp) {
				return reverts("certificate %x is revoked already", fp[:8])
			}
			for _, n := range s.Nodes() {
				if n.Fingerprint == fp && !n.Revoked {
					targets = append(targets, n)
				}
			}
		}
		vals := slices.DeleteFunc(s.Validators(), func(v common.Address) bool {
			return slices.ContainsFunc(targets, func(n Node) bool { return n.ID == v })
		})
		if len(vals) == 0 {
			return reverts("revoking would leave no validator")
		}
		if !write {
			return nil
		}
		if a == ActRevokeCertificate {
			s.revoke(common.Hash(args["fingerprint"].([32]byte)))
		}
		for _, n := range targets {
			n.Revoked, n.Validator = true, false
			s.putNode(n)
			s.revoke(n.Fingerprint)
		}
		if len(vals) != len(s.Validators()) {
			s.setValidators(vals)
		}
		return nil

	case ActAddValidator:
		id := args["id"].(common.Address)
		n, ok := s.Node(id)
		if !ok || n.Revoked {
			return reverts("node %s is not registered or revoked", id.Hex())
		}
		if slices.Contains(s.Validators(), id) {
			return reverts("node %s is a validator already", id.Hex())
		}
		if o, _ := s.Org(n.Org); o.Status != StatusActive || o.Tier < TierValidate {
			return reverts("organization %s (%s, tier %s) may not run validators", n.Org, o.Status, o.Tier)
		}
		if !write {
			return nil
		}
		n.Validator = true
		s.putNode(n)
		s.setValidators(append(s.Validators(), id))
		return nil

	case ActRemoveValidator:
		id := args["id"].(common.Address)
		vals := s.Validators()
		if !slices.Contains(vals, id) {
			return reverts("node %s is not a validator", id.Hex())
		}
		if len(vals) == 1 {
			return reverts("node %s is the last validator", id.Hex())
		}
		if !write {
			return nil
		}
		if n, ok := s.Node(id); ok {
			n.Validator = false
			s.putNode(n)
		}
		s.setValidators(slices.DeleteFunc(vals, func(v common.Address) bool { return v == id }))
		return nil

	case ActGrantRoles:
		acct, org, roles := args["account"].(common.Address), args["org"].(string), args["roles"].(uint32)
		if err := checkRoleBits(roles); err != nil {
			return err
		}
		if acct == (common.Address{}) || IsSystem(acct) {
			return reverts("account %s: not an account", acct.Hex())
		}
		o, ok := s.Org(org)
		if !ok || o.Status != StatusActive {
			return reverts("organization %s is not active", org)
		}
		cur := s.rawAccount(acct)
		if cur.Org != "" && cur.Org != org {
			return reverts("account %s belongs to organization %s", acct.Hex(), cur.Org)
		}
		if !o.Tier.allows(Role(roles)) {
			return reverts("organization %s of tier %s may not hold %s", org, o.Tier, Role(roles))
		}
		if !write {
			return nil
		}
		cur.Org = org
		cur.Roles |= Role(roles)
		s.putAccount(cur)
		return nil

	case ActRevokeRoles:
		acct, roles := args["account"].(common.Address), args["roles"].(uint32)
		if err := checkRoleBits(roles); err != nil {
			return err
		}
		cur := s.rawAccount(acct)
		if cur.Org == "" {
			return reverts("account %s belongs to no organization", acct.Hex())
		}
		if !write {
			return nil
		}
		cur.Roles &^= Role(roles)
		s.putAccount(cur)
		return nil

	case ActRotateCA:
		org, roots := args["org"].(string), args["rootsPem"].(string)
		if o, ok := s.Org(org); !ok || o.Status == StatusExited {
			return reverts("organization %s is not a member", org)
		}
		if err := checkRoots(roots); err != nil {
			return err
		}
		if !write {
			return nil
		}
		s.reg.put("roots/"+org, []byte(roots))
		return nil

	case ActFreeze, ActUnfreeze:
		target := args["target"].(common.Address)
		if target == (common.Address{}) || IsSystem(target) {
			return reverts("%s cannot be frozen", target.Hex())
		}
		cur := s.rawAccount(target)
		if cur.Frozen == (a == ActFreeze) {
			return reverts("%s is %sfrozen already", target.Hex(), map[bool]string{true: "", false: "un"}[a == ActFreeze])
		}
		if !write {
			return nil
		}
		cur.Frozen = a == ActFreeze
		s.putAccount(cur)
		return nil

	case ActSetParameter:
		name, v := args["name"].(string), args["value"].(*big.Int)
		lo, hi, ok := paramRange(name)
		if !ok {
			return reverts("unknown parameter %q (want %s)", name, strings.Join(paramNames, ", "))
		}
		if !v.IsUint64() || v.Uint64() < lo || v.Uint64() > hi {
			return reverts("%s %s outside [%d, %d]", name, v, lo, hi)
		}
		if name == ParamTxGasLimit {
			if gl := s.Param(ParamGasLimit); gl != 0 && v.Uint64() > gl {
				return reverts("txGasLimit %s above the block gas limit %d", v, gl)
			}
		}
		if !write {
			return nil
		}
		s.reg.putUint("param/"+name, v.Uint64())
		return nil

	case ActScheduleUpgrade:
		name, h := args["name"].(string), args["height"].(uint64)
		if strings.TrimSpace(name) == "" || len(name) > 64 {
			return reverts("upgrade name %q: empty or longer than 64 bytes", name)
		}
		if h <= s.height {
			return reverts("upgrade height %d is not after the current height %d", h, s.height)
		}
		if slices.ContainsFunc(s.Upgrades(), func(u Upgrade) bool { return u.Name == name }) {
			return reverts("upgrade %s is scheduled already", name)
		}
		if !write {
			return nil
		}
		putRLP(s.reg, "upgrades", append(s.Upgrades(), Upgrade{Name: name, Height: h}))
		return nil

	case ActSetRule:
		c := args["class"].(uint8)
		if Class(c) >= NumClasses {
			return reverts("class %d: want 0 to %d", c, NumClasses-1)
		}
		p := s.Policy()
		p.Rules[c] = Rule{Threshold: args["threshold"].(uint64), Quorum: args["quorum"].(uint64),
			ExpiryBlocks: args["expiryBlocks"].(uint64), Timelock: args["timelock"].(uint64), MinApprovals: args["minApprovals"].(uint64)}
		if err := p.check(len(s.activeOrgs()), Class(c)); err != nil {
			return revert("policy: " + err.Error())
		}
		if !write {
			return nil
		}
		s.putPolicy(p)
		return nil

	case ActSetDefaultRoles:
		roles := Role(args["roles"].(uint32))
		p := s.Policy()
		p.DefaultRoles = roles
		if err := p.check(len(s.activeOrgs()), noClass); err != nil {
			return revert("policy: " + err.Error())
		}
		if !write {
			return nil
		}
		s.putPolicy(p)
		return nil
	}
	return reverts("unknown action %d", a)
}
