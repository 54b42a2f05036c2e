package system

import (
	"errors"
	"slices"
	"strings"
	"unicode"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/identity"
)

// The membership, validator, role, certificate, freeze and contract
// actions: who is in, with which rights.

// maxNameBytes bounds organization and upgrade names.
const maxNameBytes = 64

// AddOrganization admits an organization with its root certificates,
// admin accounts and nodes (of which some may validate).
type AddOrganization struct {
	Name         string           `abi:"name" max:"64" meta:"NAME" help:"organization name"`
	RootsPEM     string           `abi:"rootsPem" max:"8192" flag:"roots,file" meta:"FILE.pem" help:"file of the organization's PEM root certificates (its ca.crt)"`
	Tier         Tier             `abi:"tier" default:"validate" meta:"read|write|validate" help:"what its accounts and nodes may do: read, write or validate"`
	Weight       uint64           `abi:"weight" default:"1" meta:"N" help:"voting weight, 1 to 1000000"`
	Admins       []common.Address `abi:"admins" max:"16" flag:"admin" meta:"0xADDR" help:"admin account address (repeatable; at least one)"`
	Nodes        []common.Address `abi:"nodes" max:"64" flag:"node" meta:"0xID" help:"node id: the address of a node key (repeatable)"`
	Fingerprints []common.Hash    `abi:"fingerprints" max:"64" flag:"fingerprint" meta:"HEX" help:"SHA-256 of the node's TLS certificate, one per --node in the same order (64 hex digits; all zeros: any certificate of the organization)"`
	Validators   []common.Address `abi:"validators" max:"64" flag:"validator" meta:"0xID" help:"node id of a --node that validates (repeatable)"`
	PrivacyKey   PrivacyKey       `abi:"privacyKey" max:"1216" flag:"privacy-key,file,optional" meta:"FILE.pub" help:"file of the organization's privacy public key (its privacy.pub from 'charter join'; default: none, so no private transactions until set-privacy-key)"`
}

func (AddOrganization) Action() Action { return ActAddOrganization }

func (a AddOrganization) Validate() error {
	if err := checkBounds(a); err != nil {
		return err
	}
	if err := checkOrgName(a.Name); err != nil {
		return err
	}
	if err := checkRoots(a.RootsPEM); err != nil {
		return err
	}
	if err := a.Tier.check(); err != nil {
		return err
	}
	if err := checkWeight(a.Weight); err != nil {
		return err
	}
	if len(a.Admins) == 0 {
		return reverts("an organization needs at least one admin account")
	}
	for _, ad := range a.Admins {
		if ad == (common.Address{}) || IsSystem(ad) {
			return reverts("admin %s: not an account", ad.Hex())
		}
	}
	if len(a.Fingerprints) != len(a.Nodes) {
		return reverts("%d nodes but %d fingerprints", len(a.Nodes), len(a.Fingerprints))
	}
	for i, id := range a.Nodes {
		if id == (common.Address{}) || slices.Contains(a.Nodes[:i], id) {
			return reverts("node %s: zero or listed twice", id.Hex())
		}
	}
	for i, v := range a.Validators {
		if !slices.Contains(a.Nodes, v) {
			return reverts("validator %s is not one of the organization's nodes", v.Hex())
		}
		if slices.Contains(a.Validators[:i], v) {
			return reverts("validator %s listed twice", v.Hex())
		}
	}
	if len(a.Validators) > 0 && a.Tier < TierValidate {
		return reverts("organization %s of tier %s may not run validators", a.Name, a.Tier)
	}
	if len(a.PrivacyKey) > 0 {
		return checkPrivacyKey(a.PrivacyKey)
	}
	return nil
}

func (a AddOrganization) check(s *State) error {
	if _, ok := s.Org(a.Name); ok {
		return reverts("organization %s exists already", a.Name)
	}
	for _, ad := range a.Admins {
		if o := s.rawAccount(ad).Org; o != "" {
			return reverts("account %s belongs to organization %s already", ad.Hex(), o)
		}
	}
	for _, id := range a.Nodes {
		if _, ok := s.Node(id); ok {
			return reverts("node %s is registered already", id.Hex())
		}
	}
	if len(a.PrivacyKey) > 0 {
		return s.checkPrivacyKeyFree(a.Name, a.PrivacyKey)
	}
	return nil
}

func (a AddOrganization) apply(s *State) {
	s.putOrg(Org{Name: a.Name, Tier: a.Tier, Weight: a.Weight, Status: StatusActive, Since: s.height})
	s.reg.put("roots/"+a.Name, []byte(a.RootsPEM))
	for _, ad := range a.Admins {
		acct := s.rawAccount(ad)
		acct.Org, acct.Roles = a.Name, RoleAdmin|RoleRead
		if a.Tier >= TierWrite {
			acct.Roles |= RoleWrite
		}
		s.putAccount(acct)
	}
	for i, id := range a.Nodes {
		s.putNode(Node{ID: id, Org: a.Name, Fingerprint: a.Fingerprints[i], Validator: slices.Contains(a.Validators, id)})
	}
	if len(a.Validators) > 0 {
		s.setValidators(append(s.Validators(), a.Validators...))
	}
	if len(a.PrivacyKey) > 0 {
		s.setPrivacyKey(a.Name, a.PrivacyKey)
	}
}

// RemoveOrganization is an organization's exit: its nodes are revoked,
// its accounts lose their roles, its history stays.
type RemoveOrganization struct {
	Name string `abi:"name" max:"64" meta:"NAME" help:"organization name"`
}

func (RemoveOrganization) Action() Action { return ActRemoveOrganization }

func (a RemoveOrganization) Validate() error { return checkBounds(a) }

// validatorsWithout is the registry's validator set less org's nodes.
func (s *State) validatorsWithout(org string) []common.Address {
	var keep []common.Address
	for _, v := range s.Validators() {
		if n, _ := s.Node(v); n.Org != org {
			keep = append(keep, v)
		}
	}
	return keep
}

func (a RemoveOrganization) check(s *State) error {
	o, ok := s.Org(a.Name)
	if !ok || o.Status == StatusExited {
		return reverts("organization %s is not a member", a.Name)
	}
	if o.Status == StatusActive && len(s.activeOrgs()) == 1 {
		return reverts("organization %s is the last active one", a.Name)
	}
	if len(s.validatorsWithout(a.Name)) == 0 {
		return reverts("removing %s would leave no validator", a.Name)
	}
	return nil
}

func (a RemoveOrganization) apply(s *State) {
	keep := s.validatorsWithout(a.Name)
	o, _ := s.Org(a.Name)
	o.Status = StatusExited
	s.putOrg(o)
	for _, addr := range s.OrgAccounts(a.Name) {
		acct := s.rawAccount(addr)
		acct.Roles = 0
		s.putAccount(acct)
	}
	for _, n := range s.Nodes() {
		if n.Org == a.Name && !n.Revoked {
			n.Revoked, n.Validator = true, false
			s.putNode(n)
			s.revoke(n.Fingerprint)
		}
	}
	if len(keep) != len(s.Validators()) {
		s.setValidators(keep)
	}
}

// SetOrganization changes an organization's tier, weight or status
// (active or suspended).
type SetOrganization struct {
	Name   string `abi:"name" max:"64" meta:"NAME" help:"organization name"`
	Tier   Tier   `abi:"tier" flag:",current" meta:"read|write|validate" help:"read, write or validate (default: unchanged)"`
	Weight uint64 `abi:"weight" flag:",current" meta:"N" help:"voting weight, 1 to 1000000 (default: unchanged)"`
	Status Status `abi:"status" flag:",current" meta:"active|suspended" help:"active or suspended (default: unchanged)"`
}

func (SetOrganization) Action() Action { return ActSetOrganization }

func (a SetOrganization) Validate() error {
	if err := checkBounds(a); err != nil {
		return err
	}
	if err := a.Tier.check(); err != nil {
		return err
	}
	if err := checkWeight(a.Weight); err != nil {
		return err
	}
	if a.Status != StatusActive && a.Status != StatusSuspended {
		return reverts("status %d: want 1 (active) or 2 (suspended); exit is RemoveOrganization", uint8(a.Status))
	}
	return nil
}

func (a SetOrganization) check(s *State) error {
	o, ok := s.Org(a.Name)
	if !ok || o.Status == StatusExited {
		return reverts("organization %s is not a member", a.Name)
	}
	hasValidators := slices.ContainsFunc(s.Validators(), func(v common.Address) bool { n, _ := s.Node(v); return n.Org == a.Name })
	if hasValidators && (a.Tier < TierValidate || a.Status != StatusActive) {
		return reverts("organization %s runs validators: remove them first", a.Name)
	}
	if a.Status != StatusActive && o.Status == StatusActive && len(s.activeOrgs()) == 1 {
		return reverts("organization %s is the last active one", a.Name)
	}
	return nil
}

func (a SetOrganization) apply(s *State) {
	o, _ := s.Org(a.Name)
	o.Tier, o.Weight, o.Status = a.Tier, a.Weight, a.Status
	s.putOrg(o)
}

// AddNode registers a node of an organization.
type AddNode struct {
	Org         string         `abi:"org" max:"64" meta:"NAME" help:"organization of the node"`
	ID          common.Address `abi:"id" meta:"0xID" help:"node id: the address of the node key"`
	Fingerprint common.Hash    `abi:"fingerprint" flag:",optional" meta:"HEX" help:"SHA-256 of the node's TLS certificate, 64 hex digits (default: any certificate of the organization)"`
	Validator   bool           `abi:"validator" help:"the node validates"`
}

func (AddNode) Action() Action { return ActAddNode }

func (a AddNode) Validate() error {
	if err := checkBounds(a); err != nil {
		return err
	}
	if a.ID == (common.Address{}) {
		return reverts("node id is zero")
	}
	return nil
}

func (a AddNode) check(s *State) error {
	o, ok := s.Org(a.Org)
	if !ok || o.Status != StatusActive {
		return reverts("organization %s is not active", a.Org)
	}
	if _, ok := s.Node(a.ID); ok {
		return reverts("node %s is registered already", a.ID.Hex())
	}
	if a.Validator && o.Tier < TierValidate {
		return reverts("organization %s of tier %s may not run validators", a.Org, o.Tier)
	}
	return nil
}

func (a AddNode) apply(s *State) {
	s.putNode(Node{ID: a.ID, Org: a.Org, Fingerprint: a.Fingerprint, Validator: a.Validator})
	if a.Validator {
		s.setValidators(append(s.Validators(), a.ID))
	}
}

// RemoveNode revokes a node and its certificate.
type RemoveNode struct {
	ID common.Address `abi:"id" meta:"0xID" help:"node id to remove; its certificate is revoked"`
}

func (RemoveNode) Action() Action { return ActRemoveNode }

func (a RemoveNode) Validate() error { return nil }

func (a RemoveNode) check(s *State) error {
	n, ok := s.Node(a.ID)
	if !ok || n.Revoked {
		return reverts("node %s is not registered or revoked already", a.ID.Hex())
	}
	return s.checkRevokeNodes([]Node{n})
}

func (a RemoveNode) apply(s *State) {
	n, _ := s.Node(a.ID)
	s.revokeNodes([]Node{n})
}

// checkRevokeNodes refuses to revoke the last validators.
func (s *State) checkRevokeNodes(targets []Node) error {
	if len(validatorsLess(s.Validators(), targets)) == 0 {
		return reverts("revoking would leave no validator")
	}
	return nil
}

func validatorsLess(vals []common.Address, targets []Node) []common.Address {
	return slices.DeleteFunc(vals, func(v common.Address) bool {
		return slices.ContainsFunc(targets, func(n Node) bool { return n.ID == v })
	})
}

// revokeNodes revokes targets and their certificates and takes them out
// of the validator set.
func (s *State) revokeNodes(targets []Node) {
	vals := validatorsLess(s.Validators(), targets)
	for _, n := range targets {
		n.Revoked, n.Validator = true, false
		s.putNode(n)
		s.revoke(n.Fingerprint)
	}
	if len(vals) != len(s.Validators()) {
		s.setValidators(vals)
	}
}

// AddValidator makes a registered node a validator.
type AddValidator struct {
	ID common.Address `abi:"id" meta:"0xID" help:"node id of a registered node to make a validator"`
}

func (AddValidator) Action() Action { return ActAddValidator }

func (a AddValidator) Validate() error { return nil }

func (a AddValidator) check(s *State) error {
	n, ok := s.Node(a.ID)
	if !ok || n.Revoked {
		return reverts("node %s is not registered or revoked", a.ID.Hex())
	}
	if slices.Contains(s.Validators(), a.ID) {
		return reverts("node %s is a validator already", a.ID.Hex())
	}
	if o, _ := s.Org(n.Org); o.Status != StatusActive || o.Tier < TierValidate {
		return reverts("organization %s (%s, tier %s) may not run validators", n.Org, o.Status, o.Tier)
	}
	return nil
}

func (a AddValidator) apply(s *State) {
	n, _ := s.Node(a.ID)
	n.Validator = true
	s.putNode(n)
	s.setValidators(append(s.Validators(), a.ID))
}

// RemoveValidator takes a node out of the validator set; it stays
// registered.
type RemoveValidator struct {
	ID common.Address `abi:"id" meta:"0xID" help:"node id of the validator to remove"`
}

func (RemoveValidator) Action() Action { return ActRemoveValidator }

func (a RemoveValidator) Validate() error { return nil }

func (a RemoveValidator) check(s *State) error {
	vals := s.Validators()
	if !slices.Contains(vals, a.ID) {
		return reverts("node %s is not a validator", a.ID.Hex())
	}
	if len(vals) == 1 {
		return reverts("node %s is the last validator", a.ID.Hex())
	}
	return nil
}

func (a RemoveValidator) apply(s *State) {
	if n, ok := s.Node(a.ID); ok {
		n.Validator = false
		s.putNode(n)
	}
	s.setValidators(slices.DeleteFunc(s.Validators(), func(v common.Address) bool { return v == a.ID }))
}

// GrantRoles adds roles to an account of an organization (or of none,
// which then joins it).
type GrantRoles struct {
	Account common.Address `abi:"account" meta:"0xADDR" help:"account address"`
	Org     string         `abi:"org" max:"64" meta:"NAME" help:"organization the account belongs to (or joins)"`
	Roles   Role           `abi:"roles" meta:"ROLE[,ROLE...]" help:"roles to add, comma separated: read, write, deploy, admin, auditor"`
}

func (GrantRoles) Action() Action { return ActGrantRoles }

func (a GrantRoles) Validate() error {
	if err := checkBounds(a); err != nil {
		return err
	}
	if err := checkRoleBits(a.Roles); err != nil {
		return err
	}
	if a.Account == (common.Address{}) || IsSystem(a.Account) {
		return reverts("account %s: not an account", a.Account.Hex())
	}
	return nil
}

func (a GrantRoles) check(s *State) error {
	o, ok := s.Org(a.Org)
	if !ok || o.Status != StatusActive {
		return reverts("organization %s is not active", a.Org)
	}
	if cur := s.rawAccount(a.Account); cur.Org != "" && cur.Org != a.Org {
		return reverts("account %s belongs to organization %s", a.Account.Hex(), cur.Org)
	}
	if !o.Tier.allows(a.Roles) {
		return reverts("organization %s of tier %s may not hold %s", a.Org, o.Tier, a.Roles)
	}
	return nil
}

func (a GrantRoles) apply(s *State) {
	cur := s.rawAccount(a.Account)
	cur.Org = a.Org
	cur.Roles |= a.Roles
	s.putAccount(cur)
}

// RevokeRoles takes roles from an account.
type RevokeRoles struct {
	Account common.Address `abi:"account" meta:"0xADDR" help:"account address"`
	Roles   Role           `abi:"roles" meta:"ROLE[,ROLE...]" help:"roles to remove, comma separated: read, write, deploy, admin, auditor"`
}

func (RevokeRoles) Action() Action { return ActRevokeRoles }

func (a RevokeRoles) Validate() error { return checkRoleBits(a.Roles) }

func (a RevokeRoles) check(s *State) error {
	if s.rawAccount(a.Account).Org == "" {
		return reverts("account %s belongs to no organization", a.Account.Hex())
	}
	return nil
}

func (a RevokeRoles) apply(s *State) {
	cur := s.rawAccount(a.Account)
	cur.Roles &^= a.Roles
	s.putAccount(cur)
}

// RevokeCertificate revokes a certificate by fingerprint, and the nodes
// that present it.
type RevokeCertificate struct {
	Fingerprint common.Hash `abi:"fingerprint" meta:"HEX" help:"SHA-256 of the certificate to revoke, 64 hex digits"`
}

func (RevokeCertificate) Action() Action { return ActRevokeCertificate }

func (a RevokeCertificate) Validate() error {
	if a.Fingerprint == (common.Hash{}) {
		return reverts("fingerprint is zero")
	}
	return nil
}

func (a RevokeCertificate) targets(s *State) []Node {
	var out []Node
	for _, n := range s.Nodes() {
		if n.Fingerprint == a.Fingerprint && !n.Revoked {
			out = append(out, n)
		}
	}
	return out
}

func (a RevokeCertificate) check(s *State) error {
	if slices.Contains(s.RevokedFingerprints(), a.Fingerprint) {
		return reverts("certificate %x is revoked already", a.Fingerprint[:8])
	}
	return s.checkRevokeNodes(a.targets(s))
}

func (a RevokeCertificate) apply(s *State) {
	targets := a.targets(s)
	s.revoke(a.Fingerprint)
	s.revokeNodes(targets)
}

// RotateCA replaces an organization's root certificates.
type RotateCA struct {
	Org      string `abi:"org" max:"64" meta:"NAME" help:"organization whose roots change"`
	RootsPEM string `abi:"rootsPem" max:"8192" flag:"roots,file" meta:"FILE.pem" help:"file of the organization's new PEM root certificates"`
}

func (RotateCA) Action() Action { return ActRotateCA }

func (a RotateCA) Validate() error {
	if err := checkBounds(a); err != nil {
		return err
	}
	return checkRoots(a.RootsPEM)
}

func (a RotateCA) check(s *State) error {
	if o, ok := s.Org(a.Org); !ok || o.Status == StatusExited {
		return reverts("organization %s is not a member", a.Org)
	}
	return nil
}

func (a RotateCA) apply(s *State) { s.reg.put("roots/"+a.Org, []byte(a.RootsPEM)) }

// Freeze freezes an account or contract: it may not send, nor receive
// transfers.
type Freeze struct {
	Target common.Address `abi:"target" meta:"0xADDR" help:"account or contract to freeze"`
}

func (Freeze) Action() Action { return ActFreeze }

func (a Freeze) Validate() error { return checkFreezable(a.Target) }

func (a Freeze) check(s *State) error { return s.checkFrozen(a.Target, true) }

func (a Freeze) apply(s *State) { s.setFrozen(a.Target, true) }

// Unfreeze lifts a freeze.
type Unfreeze struct {
	Target common.Address `abi:"target" meta:"0xADDR" help:"account or contract to unfreeze"`
}

func (Unfreeze) Action() Action { return ActUnfreeze }

func (a Unfreeze) Validate() error { return checkFreezable(a.Target) }

func (a Unfreeze) check(s *State) error { return s.checkFrozen(a.Target, false) }

func (a Unfreeze) apply(s *State) { s.setFrozen(a.Target, false) }

func checkFreezable(target common.Address) error {
	if target == (common.Address{}) || IsSystem(target) {
		return reverts("%s cannot be frozen", target.Hex())
	}
	return nil
}

// checkFrozen refuses to set target's freeze to what it is.
func (s *State) checkFrozen(target common.Address, frozen bool) error {
	if s.rawAccount(target).Frozen == frozen {
		if frozen {
			return reverts("%s is frozen already", target.Hex())
		}
		return reverts("%s is unfrozen already", target.Hex())
	}
	return nil
}

func (s *State) setFrozen(target common.Address, frozen bool) {
	cur := s.rawAccount(target)
	cur.Frozen = frozen
	s.putAccount(cur)
}

// SetFactory marks a contract a factory, or unmarks it: a factory may
// create contracts (CREATE, CREATE2) inside transactions whose sender
// lacks the deploy role. The address need not hold code yet (a factory
// may be marked before it is deployed at a known address).
type SetFactory struct {
	Target  common.Address `abi:"target" meta:"0xADDR" help:"the contract to mark (or unmark) a factory"`
	Factory bool           `abi:"factory" flag:"remove,invert" help:"unmark it: it no longer creates contracts for senders without deploy"`
}

func (SetFactory) Action() Action { return ActSetFactory }

func (a SetFactory) Validate() error {
	if a.Target == (common.Address{}) || IsSystem(a.Target) {
		return reverts("%s cannot be a factory", a.Target.Hex())
	}
	return nil
}

func (a SetFactory) check(s *State) error {
	switch is := s.IsFactory(a.Target); {
	case is && a.Factory:
		return reverts("%s is a factory already", a.Target.Hex())
	case !is && !a.Factory:
		return reverts("%s is not a factory", a.Target.Hex())
	}
	return nil
}

func (a SetFactory) apply(s *State) {
	s.setFactory(a.Target, a.Factory)
	list := s.Factories()
	if a.Factory {
		list = append(list, a.Target)
	} else {
		list = slices.DeleteFunc(list, func(x common.Address) bool { return x == a.Target })
	}
	putRLP(s.reg, "factories", list)
}

// ---- checks shared by the actions and the genesis ----

func checkOrgName(name string) error {
	switch {
	case strings.TrimSpace(name) == "" || strings.TrimSpace(name) != name:
		return reverts("organization name %q: empty or padded", name)
	case len(name) > maxNameBytes:
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

func checkRoleBits(r Role) error {
	if r == 0 || r&^allRoles != 0 {
		return reverts("roles %#x: want a non-empty set of read 1, write 2, deploy 4, admin 8, auditor 16", uint32(r))
	}
	return nil
}
