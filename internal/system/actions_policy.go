package system

import (
	"maps"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/bft"
	"github.com/charter-ledger/charter/internal/consensus/poa"
)

// The parameter, upgrade and policy actions: how the chain and the
// consortium run.

// Chain parameters governance may set.
const (
	ParamGasLimit    = "gasLimit"
	ParamTxGasLimit  = "txGasLimit"
	ParamMaxTxBytes  = "maxTxBytes"
	ParamMinGasPrice = "minGasPrice"
	ParamEpochLength = "epochLength"
	// ParamSetCode is 1 when EIP-7702 (type 4) transactions are admitted,
	// 0 when they are refused.
	ParamSetCode = "setCode"
	// ParamMaxOpenProposals bounds the open proposals of one organization.
	ParamMaxOpenProposals = "maxOpenProposals"
	// ParamMaxBlockBytes bounds the encoded size of a block.
	ParamMaxBlockBytes = "maxBlockBytes"
	// ParamMaxBlockGovBytes bounds the system-contract storage the
	// transactions of one block write.
	ParamMaxBlockGovBytes = "maxBlockGovBytes"
	// ParamMaxBlockGovTxs bounds the transactions of one block that call
	// a system contract.
	ParamMaxBlockGovTxs = "maxBlockGovTxs"
)

// DefaultMaxOpenProposals is the open proposals an organization may have
// at once while neither the genesis nor governance set another bound.
const DefaultMaxOpenProposals = 16

// ParamSpec is a chain parameter governance may set, with its range.
type ParamSpec struct {
	Name     string
	Min, Max uint64
	// Default is the value in force while the parameter is unset, if
	// HasDefault; otherwise the chain spec's value applies.
	Default    uint64
	HasDefault bool
	Doc        string
	// Engine, when set, makes it a consensus engine's parameter (a
	// duration in milliseconds): the engine takes it from the next epoch
	// boundary on (see ParamChanges), and the other engines ignore it.
	Engine string
}

// Params lists the chain parameters governance may set.
var Params = []ParamSpec{
	{Name: ParamGasLimit, Min: 5000, Max: 10_000_000_000, Doc: "gas of one block"},
	{Name: ParamTxGasLimit, Min: 21_000, Max: 1 << 24, Doc: "gas of one transaction, at most the block's"},
	{Name: ParamMaxTxBytes, Min: 1024, Max: 4 << 20, Doc: "encoded size of one transaction"},
	{Name: ParamMinGasPrice, Min: 0, Max: 1_000_000_000_000_000_000, Doc: "lowest tip per gas the pool admits"},
	{Name: ParamEpochLength, Min: 1, Max: 1_000_000, Doc: "validator set changes take effect at its multiples"},
	{Name: ParamSetCode, Min: 0, Max: 1, HasDefault: true, Doc: "1: EIP-7702 (type 4) transactions admitted; 0: refused"},
	{Name: ParamMaxOpenProposals, Min: 1, Max: 256, Default: DefaultMaxOpenProposals, HasDefault: true, Doc: "open proposals one organization may have at once"},
	{Name: ParamMaxBlockBytes, Min: MinMaxBlockBytes, Max: consensus.MaxBlockBytes, Default: DefaultMaxBlockBytes, HasDefault: true,
		Doc: "encoded size of one block, header and transactions; at least maxTxBytes + 1024"},
	{Name: ParamMaxBlockGovBytes, Min: 1 << 10, Max: 1 << 20, Default: DefaultMaxBlockGovBytes, HasDefault: true,
		Doc: "bytes of system-contract storage the transactions of one block may write (32 per slot changed); a block's first such transaction is taken whatever it writes"},
	{Name: ParamMaxBlockGovTxs, Min: 1, Max: 1024, Default: DefaultMaxBlockGovTxs, HasDefault: true, Doc: "transactions of one block that call a system contract"},
	{Name: ParamMaxGroupsPerOrg, Min: 1, Max: 256, Default: DefaultMaxGroupsPerOrg, HasDefault: true, Doc: "active privacy groups one organization may belong to (groups.go)"},
}

func init() {
	for _, e := range []struct {
		engine string
		params []consensus.DurationParam
	}{{"bft", bft.Params}, {"poa", poa.Params}} {
		for _, p := range e.params {
			spec := ParamSpec{Name: p.GovName, Min: uint64(p.Min / time.Millisecond), Max: uint64(p.Max / time.Millisecond),
				Doc: p.Doc + "; from the next epoch boundary", Engine: e.engine}
			if p.ZeroOK {
				spec.Min = 0
				spec.Doc += "; 0 or at least " + p.Min.String()
			}
			Params = append(Params, spec)
		}
	}
}

// ParamNames lists the parameters' names.
func ParamNames() []string {
	out := make([]string, len(Params))
	for i, p := range Params {
		out[i] = p.Name
	}
	return out
}

func paramSpec(name string) (ParamSpec, bool) {
	i := slices.IndexFunc(Params, func(p ParamSpec) bool { return p.Name == name })
	if i < 0 {
		return ParamSpec{}, false
	}
	return Params[i], true
}

// SetParameter sets a chain parameter.
type SetParameter struct {
	Name  string   `abi:"name" max:"64" meta:"NAME" help:"the parameter"`
	Value *big.Int `abi:"value" meta:"N" help:"new value (decimal, or hex with 0x)"`
}

func (SetParameter) Action() Action { return ActSetParameter }

func (a SetParameter) Validate() error {
	if err := checkBounds(a); err != nil {
		return err
	}
	p, ok := paramSpec(a.Name)
	if !ok {
		return reverts("unknown parameter %q (want %s)", a.Name, strings.Join(ParamNames(), ", "))
	}
	if a.Value == nil || !a.Value.IsUint64() || a.Value.Uint64() < p.Min || a.Value.Uint64() > p.Max {
		return reverts("%s %s outside [%d, %d]", a.Name, a.Value, p.Min, p.Max)
	}
	if p.Engine != "" && p.Min == 0 && a.Value.Sign() != 0 {
		// 0 or a duration of at least the engine's least.
		for _, d := range append(append([]consensus.DurationParam(nil), bft.Params...), poa.Params...) {
			if d.GovName == a.Name && a.Value.Uint64() < uint64(d.Min/time.Millisecond) {
				return reverts("%s %s: 0 or at least %d", a.Name, a.Value, uint64(d.Min/time.Millisecond))
			}
		}
	}
	return nil
}

func (a SetParameter) check(s *State) error {
	switch a.Name {
	case ParamTxGasLimit:
		if gl := s.Param(ParamGasLimit); gl != 0 && a.Value.Uint64() > gl {
			return reverts("txGasLimit %s above the block gas limit %d", a.Value, gl)
		}
	case ParamMaxTxBytes:
		// A transaction the pool admits must fit a block.
		if bb := s.BlockLimits().Bytes; a.Value.Uint64() > bb-BlockFramingBytes {
			return reverts("maxTxBytes %s above maxBlockBytes %d less %d bytes of block framing: such a transaction would fit no block", a.Value, bb, BlockFramingBytes)
		}
	case ParamMaxBlockBytes:
		if tb := s.Param(ParamMaxTxBytes); tb != 0 && a.Value.Uint64() < tb+BlockFramingBytes {
			return reverts("maxBlockBytes %s below maxTxBytes %d plus %d bytes of block framing: a transaction of the largest size would fit no block", a.Value, tb, BlockFramingBytes)
		}
	}
	return nil
}

func (a SetParameter) apply(s *State) {
	s.reg.putUint("param/"+a.Name, a.Value.Uint64())
	if p, _ := paramSpec(a.Name); p.Engine != "" {
		s.scheduleParam(a.Name, a.Value.Uint64())
	}
}

// ParamChange is the engine parameters governance set, in force from
// height From on: every one set up to then (Names ascending, Values
// alongside), not only the one that changed.
type ParamChange struct {
	From   uint64
	Names  []string
	Values []uint64
}

// Map is the change's values by name.
func (c ParamChange) Map() map[string]uint64 {
	m := make(map[string]uint64, len(c.Names))
	for i, n := range c.Names {
		if i < len(c.Values) {
			m[n] = c.Values[i]
		}
	}
	return m
}

// ParamChanges lists the engine parameter changes still in force or to
// come, ascending by From: the one in force at the state's height (if
// governance changed any) and the later ones.
func (s *State) ParamChanges() []ParamChange {
	v, _ := getRLP[[]ParamChange](s.reg, "paramchanges")
	return v
}

// scheduleParam makes an engine parameter change take effect at the
// first epoch boundary far enough ahead, as validator changes do: every
// node hands it to its engine while committing this block, and every
// engine switches at that height.
func (s *State) scheduleParam(name string, value uint64) {
	epoch := max(s.Param(ParamEpochLength), 1)
	from := (s.height + validatorLead + epoch - 1) / epoch * epoch
	changes := s.ParamChanges()
	values := map[string]uint64{}
	if len(changes) > 0 {
		values = changes[len(changes)-1].Map()
	}
	values[name] = value
	for len(changes) > 0 && changes[len(changes)-1].From >= from {
		changes = changes[:len(changes)-1]
	}
	// Changes in force before this height but the last are history.
	for len(changes) > 1 && changes[1].From <= s.height {
		changes = changes[1:]
	}
	c := ParamChange{From: from}
	for _, n := range slices.Sorted(maps.Keys(values)) {
		c.Names, c.Values = append(c.Names, n), append(c.Values, values[n])
	}
	putRLP(s.reg, "paramchanges", append(changes, c))
}

// ScheduleUpgrade schedules a protocol upgrade by name at a height.
type ScheduleUpgrade struct {
	Name   string `abi:"name" max:"64" meta:"NAME" help:"upgrade name"`
	Height uint64 `abi:"height" meta:"H" help:"block height at which it takes effect"`
}

func (ScheduleUpgrade) Action() Action { return ActScheduleUpgrade }

func (a ScheduleUpgrade) Validate() error {
	if err := checkBounds(a); err != nil {
		return err
	}
	if strings.TrimSpace(a.Name) == "" {
		return reverts("upgrade name %q: empty or longer than 64 bytes", a.Name)
	}
	return nil
}

func (a ScheduleUpgrade) check(s *State) error {
	if a.Height <= s.height {
		return reverts("upgrade height %d is not after the current height %d", a.Height, s.height)
	}
	if slices.ContainsFunc(s.Upgrades(), func(u Upgrade) bool { return u.Name == a.Name }) {
		return reverts("upgrade %s is scheduled already", a.Name)
	}
	return nil
}

func (a ScheduleUpgrade) apply(s *State) {
	putRLP(s.reg, "upgrades", append(s.Upgrades(), Upgrade{Name: a.Name, Height: a.Height}))
}

// SetRule sets the voting rule of one class of proposals.
type SetRule struct {
	Class        Class  `abi:"class" meta:"CLASS" help:"class of proposals"`
	Threshold    uint64 `abi:"threshold" flag:",current" meta:"BPS" help:"yes weight needed to pass, in basis points of the total weight (1 to 10000; default: unchanged)"`
	Quorum       uint64 `abi:"quorum" flag:",current" meta:"BPS" help:"weight that must vote, in basis points (0 to 10000; default: unchanged)"`
	ExpiryBlocks uint64 `abi:"expiryBlocks" flag:"expiry,current" meta:"BLOCKS" help:"blocks an open proposal may be voted (default: unchanged)"`
	Timelock     uint64 `abi:"timelock" flag:",current" meta:"BLOCKS" help:"blocks between passing and execution, at least 1 (default: unchanged)"`
	MinApprovals uint64 `abi:"minApprovals" flag:",current" meta:"N" help:"distinct organizations that must vote yes (default: unchanged)"`
}

func (SetRule) Action() Action { return ActSetRule }

func (a SetRule) rule() Rule {
	return Rule{Threshold: a.Threshold, Quorum: a.Quorum, ExpiryBlocks: a.ExpiryBlocks, Timelock: a.Timelock, MinApprovals: a.MinApprovals}
}

func (a SetRule) Validate() error {
	if a.Class >= NumClasses {
		return reverts("class %d: want 0 to %d", uint8(a.Class), NumClasses-1)
	}
	if err := a.rule().check(a.Class.String()); err != nil {
		return revert("policy: " + err.Error())
	}
	return nil
}

func (a SetRule) check(s *State) error {
	p := s.Policy()
	p.Rules[a.Class] = a.rule()
	if err := p.check(len(s.activeOrgs()), a.Class); err != nil {
		return revert("policy: " + err.Error())
	}
	return nil
}

func (a SetRule) apply(s *State) {
	p := s.Policy()
	p.Rules[a.Class] = a.rule()
	s.putPolicy(p)
}

// SetDefaultRoles sets the roles of accounts the registry does not list.
type SetDefaultRoles struct {
	Roles Role `abi:"roles" meta:"ROLE[,ROLE...]|none" help:"roles of accounts the registry does not list, comma separated (read, write, deploy, auditor), or none"`
}

func (SetDefaultRoles) Action() Action { return ActSetDefaultRoles }

func (a SetDefaultRoles) Validate() error {
	if err := checkDefaultRoles(a.Roles); err != nil {
		return revert("policy: " + err.Error())
	}
	return nil
}

func (a SetDefaultRoles) check(s *State) error {
	p := s.Policy()
	p.DefaultRoles = a.Roles
	if err := p.check(len(s.activeOrgs()), noClass); err != nil {
		return revert("policy: " + err.Error())
	}
	return nil
}

func (a SetDefaultRoles) apply(s *State) {
	p := s.Policy()
	p.DefaultRoles = a.Roles
	s.putPolicy(p)
}

// Param returns a chain parameter as set (0 when unset).
func (s *State) Param(name string) uint64 { return s.reg.getUint("param/" + name) }

// ParamValue is the parameter in force: as set, or its default; false
// when it is unset and has no default (the chain spec's value applies).
func (s *State) ParamValue(name string) (uint64, bool) {
	if s.reg.has("param/" + name) {
		return s.Param(name), true
	}
	p, ok := paramSpec(name)
	return p.Default, ok && p.HasDefault
}

// MaxOpenProposals is the open proposals one organization may have.
func (s *State) MaxOpenProposals() uint64 {
	v, _ := s.ParamValue(ParamMaxOpenProposals)
	return max(v, 1)
}

// Factories lists the contracts governance marked factories.
func (s *State) Factories() []common.Address {
	v, _ := getRLP[[]common.Address](s.reg, "factories")
	return v
}
