package system

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rlp"
)

// State is the registry and governance as stored in one world state.
// Open it read-only with Read, or for writing at a height with Open.
type State struct {
	reg, gov, con store
	code          codeReader // nil when the state cannot read code
	height        uint64
	time          uint64
}

// Read gives read-only access to the system state in st.
func Read(st StateReader) *State {
	s := &State{reg: store{addr: RegistryAddress, r: st}, gov: store{addr: GovernanceAddress, r: st}, con: store{addr: ContractsAddress, r: st}}
	s.code, _ = st.(codeReader)
	return s
}

// Open gives read and write access to the system state in st, for the
// block at height with time (seconds).
func Open(st StateWriter, height, time uint64) *State {
	s := &State{
		reg:    store{addr: RegistryAddress, r: st, w: st},
		gov:    store{addr: GovernanceAddress, r: st, w: st},
		con:    store{addr: ContractsAddress, r: st, w: st},
		height: height, time: time,
	}
	s.code, _ = st.(codeReader)
	return s
}

// Height is the block height the state was opened at.
func (s *State) Height() uint64 { return s.height }

func getRLP[T any](st store, key string) (T, bool) {
	var v T
	raw := st.get(key)
	if raw == nil {
		return v, false
	}
	if err := rlp.DecodeBytes(raw, &v); err != nil {
		// Records are only written by this package: a record that does
		// not decode is a broken state, not bad input.
		panic(fmt.Sprintf("system: record %q does not decode: %v", key, err))
	}
	return v, true
}

func putRLP(st store, key string, v any) {
	raw, err := rlp.EncodeToBytes(v)
	if err != nil {
		panic(fmt.Sprintf("system: encode %q: %v", key, err))
	}
	st.put(key, raw)
}

// ---- organizations ----

func orgKey(name string) string { return "org/" + name }

// Org returns the organization named name.
func (s *State) Org(name string) (Org, bool) { return getRLP[Org](s.reg, orgKey(name)) }

// orgsKey is the record of OrgNames.
const orgsKey = "orgs"

// OrgNames lists every organization ever admitted, in admission order.
func (s *State) OrgNames() []string { v, _ := getRLP[[]string](s.reg, orgsKey); return v }

// OrgNamesSlot is the registry's head slot of the OrgNames list. The list
// only grows, and a record's head slot holds its length, so every change
// of the list writes this slot: the ledger reads the list again only then.
func OrgNamesSlot() common.Hash { return headSlot(orgsKey) }

// Orgs lists every organization ever admitted.
func (s *State) Orgs() []Org {
	var out []Org
	for _, n := range s.OrgNames() {
		if o, ok := s.Org(n); ok {
			out = append(out, o)
		}
	}
	return out
}

// Roots returns an organization's root certificates (PEM).
func (s *State) Roots(org string) string { return string(s.reg.get("roots/" + org)) }

func (s *State) putOrg(o Org) {
	if !s.reg.has(orgKey(o.Name)) {
		putRLP(s.reg, orgsKey, append(s.OrgNames(), o.Name))
	}
	putRLP(s.reg, orgKey(o.Name), o)
}

func (s *State) activeOrgs() []Org {
	var out []Org
	for _, o := range s.Orgs() {
		if o.Status == StatusActive {
			out = append(out, o)
		}
	}
	return out
}

// TotalWeight is the voting weight of the active organizations.
func (s *State) TotalWeight() uint64 {
	var w uint64
	for _, o := range s.activeOrgs() {
		w += o.Weight
	}
	return w
}

// OrgAccounts lists the accounts an organization has listed.
func (s *State) OrgAccounts(org string) []common.Address {
	v, _ := getRLP[[]common.Address](s.reg, "orgaccts/"+org)
	return v
}

// ---- accounts ----

func acctKey(a common.Address) string { return "acct/" + string(a[:]) }

// storedAccount is an account record as stored (the address is its key).
type storedAccount struct {
	Org    string
	Roles  Role
	Frozen bool
}

// Account returns an account's record; an address the registry does not
// list has no organization and the default roles.
func (s *State) Account(addr common.Address) Account {
	a := s.rawAccount(addr)
	if a.Org == "" {
		a.Roles |= s.DefaultRoles()
	}
	return a
}

// EffectiveRoles are the roles an account may use now: none while its
// organization is not active, and only those its organization's tier
// allows.
func (s *State) EffectiveRoles(a Account) Role {
	if a.Org == "" {
		return a.Roles
	}
	o, ok := s.Org(a.Org)
	if !ok || o.Status != StatusActive {
		return 0
	}
	r := a.Roles
	if !o.Tier.allows(RoleWrite) {
		r &^= RoleWrite | RoleDeploy
	}
	return r
}

func (s *State) putAccount(a Account) {
	if a.Org != "" {
		list := s.OrgAccounts(a.Org)
		if !slices.Contains(list, a.Address) {
			putRLP(s.reg, "orgaccts/"+a.Org, append(list, a.Address))
		}
	}
	old := s.rawAccount(a.Address)
	s.countAuditor(old, a)
	if old.Frozen != a.Frozen {
		list := s.Frozen()
		if a.Frozen {
			list = append(list, a.Address)
		} else {
			list = slices.DeleteFunc(list, func(x common.Address) bool { return x == a.Address })
		}
		putRLP(s.reg, "frozen", list)
		s.reg.putUint(frozenCountKey, uint64(len(list)))
	}
	putRLP(s.reg, acctKey(a.Address), storedAccount{Org: a.Org, Roles: a.Roles, Frozen: a.Frozen})
}

// Frozen lists the frozen accounts and contracts.
func (s *State) Frozen() []common.Address {
	v, _ := getRLP[[]common.Address](s.reg, "frozen")
	return v
}

// frozenCountKey counts frozen accounts, so that transfers skip the
// recipient's lookup while none is.
const frozenCountKey = "frozenCount"

// rawAccount is the stored record, without default roles.
func (s *State) rawAccount(addr common.Address) Account {
	a, _ := getRLP[storedAccount](s.reg, acctKey(addr))
	return Account{Address: addr, Org: a.Org, Roles: a.Roles, Frozen: a.Frozen}
}

// DefaultRoles are the roles of accounts the registry does not list.
func (s *State) DefaultRoles() Role { return Role(s.reg.getUint("defaultRoles")) }

// ---- nodes and validators ----

func nodeKey(id common.Address) string { return "node/" + string(id[:]) }

// Node returns a node's record.
func (s *State) Node(id common.Address) (Node, bool) { return getRLP[Node](s.reg, nodeKey(id)) }

// Nodes lists every node ever registered.
func (s *State) Nodes() []Node {
	ids, _ := getRLP[[]common.Address](s.reg, "nodes")
	out := make([]Node, 0, len(ids))
	for _, id := range ids {
		if n, ok := s.Node(id); ok {
			out = append(out, n)
		}
	}
	return out
}

func (s *State) putNode(n Node) {
	if !s.reg.has(nodeKey(n.ID)) {
		ids, _ := getRLP[[]common.Address](s.reg, "nodes")
		putRLP(s.reg, "nodes", append(ids, n.ID))
	}
	putRLP(s.reg, nodeKey(n.ID), n)
}

// Validators is the validator set the registry holds now, in order.
func (s *State) Validators() []common.Address {
	v, _ := getRLP[[]common.Address](s.reg, "validators")
	return v
}

// ValidatorChanges lists every validator set with the height it is (or
// will be) in force from, ascending; the first is the genesis set.
func (s *State) ValidatorChanges() []ValidatorChange {
	v, _ := getRLP[[]ValidatorChange](s.reg, "valchanges")
	return v
}

// ValidatorsAt is the validator set in force at height h.
func (s *State) ValidatorsAt(h uint64) []common.Address {
	var set []common.Address
	for _, c := range s.ValidatorChanges() {
		if c.From <= h {
			set = c.IDs
		}
	}
	return set
}

// validatorLead is how many blocks after the block that decides it a
// validator change may take effect at the earliest; every engine accepts
// it (bft: 2, poa: its lookahead + 1, 7 by default).
const validatorLead = 8

// setValidators makes ids the registry's set and schedules it for the
// first epoch boundary far enough ahead.
func (s *State) setValidators(ids []common.Address) ValidatorChange {
	putRLP(s.reg, "validators", ids)
	epoch := max(s.Param(ParamEpochLength), 1)
	from := (s.height + validatorLead + epoch - 1) / epoch * epoch
	changes := s.ValidatorChanges()
	for len(changes) > 0 && changes[len(changes)-1].From >= from {
		changes = changes[:len(changes)-1]
	}
	c := ValidatorChange{From: from, IDs: ids}
	putRLP(s.reg, "valchanges", append(changes, c))
	return c
}

// ---- certificates, freezes, parameters, upgrades ----

// RevokedFingerprints lists the revoked certificate fingerprints.
func (s *State) RevokedFingerprints() []common.Hash {
	v, _ := getRLP[[]common.Hash](s.reg, "revoked")
	return v
}

func (s *State) revoke(fp common.Hash) {
	list := s.RevokedFingerprints()
	if fp != (common.Hash{}) && !slices.Contains(list, fp) {
		putRLP(s.reg, "revoked", append(list, fp))
	}
}

// Upgrades lists the protocol upgrades scheduled.
func (s *State) Upgrades() []Upgrade { v, _ := getRLP[[]Upgrade](s.reg, "upgrades"); return v }

// ---- policy ----

type storedPolicy struct {
	Rules       []Rule
	EpochLength uint64
}

// Policy is the governance policy in force.
func (s *State) Policy() Policy {
	sp, ok := getRLP[storedPolicy](s.gov, "policy")
	p := DefaultPolicy()
	if ok {
		copy(p.Rules[:], sp.Rules)
	}
	p.EpochLength = max(s.Param(ParamEpochLength), 1)
	p.DefaultRoles = s.DefaultRoles()
	p.MaxOpenProposals = s.MaxOpenProposals()
	return p
}

func (s *State) putPolicy(p Policy) {
	putRLP(s.gov, "policy", storedPolicy{Rules: p.Rules[:], EpochLength: p.EpochLength})
	s.reg.putUint("param/"+ParamEpochLength, p.EpochLength)
	s.reg.putUint("defaultRoles", uint64(p.DefaultRoles))
}

// ---- usage ----

func usageKey(org string, day uint64) string { return fmt.Sprintf("usage/%s/%d", org, day) }

// Usage returns what org used on day (UTC days since 1970).
func (s *State) Usage(org string, day uint64) Usage {
	u, _ := getRLP[Usage](s.reg, usageKey(org, day))
	return u
}

// UsageSlots are the storage slots of the registry (RegistryAddress) that
// org's usage record of day may occupy: its head slot and the data slots
// of the largest record (three 64-bit counters, RLP-encoded, fit in one;
// two are given). Usage records are written for every block with
// transactions, so the ledger's history of the system state leaves them
// out (ledger.Ledger.SystemStateAt does not answer Usage).
func UsageSlots(org string, day uint64) [3]common.Hash {
	ks := slotsOf(usageKey(org, day))
	return [3]common.Hash{ks.head, dataSlotAt(ks.base, 0), dataSlotAt(ks.base, 1)}
}

// AddUsage adds to org's usage of the day of the state's block time.
func (s *State) AddUsage(org string, u Usage) {
	day := s.time / 86400
	cur := s.Usage(org, day)
	cur.Txs += u.Txs
	cur.Gas += u.Gas
	cur.StateBytes += u.StateBytes
	putRLP(s.reg, usageKey(org, day), cur)
}

// AllowedNode reports whether a node may take part: registered, not
// revoked, its organization active, and its certificate (fingerprint fp,
// zero if unknown) not revoked and the one registered, if one is.
func (s *State) AllowedNode(id common.Address, fp common.Hash) error {
	n, ok := s.Node(id)
	if !ok {
		return fmt.Errorf("node %s is not in the registry", id.Hex())
	}
	if n.Revoked {
		return fmt.Errorf("node %s is revoked", id.Hex())
	}
	// A node of no organization is a validator of a genesis without a
	// governance section: the trust store alone vets its certificate.
	if o, ok := s.Org(n.Org); n.Org != "" && (!ok || o.Status != StatusActive) {
		return fmt.Errorf("organization %s of node %s is %s", n.Org, id.Hex(), o.Status)
	}
	if fp != (common.Hash{}) {
		if slices.Contains(s.RevokedFingerprints(), fp) {
			return fmt.Errorf("certificate %x of node %s is revoked", fp[:8], id.Hex())
		}
		if n.Fingerprint != (common.Hash{}) && !bytes.Equal(n.Fingerprint[:], fp[:]) {
			return fmt.Errorf("node %s presents a certificate other than the registered one", id.Hex())
		}
	}
	return nil
}
