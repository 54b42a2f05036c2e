package system

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
)

// ---- permissions ----
//
// The rules (docs/design/governance.md, "Permission rules") are checked in
// two layers. The functions here decide what is known before a message
// runs: its sender, its recipient, its EIP-7702 authorizations; the pool
// and block execution both call them, so that they agree. What a message
// does inside the EVM (calls between contracts, internal value transfers,
// contract creations) is checked at every frame by the execution package,
// with FrozenCount, Frozen and IsFactory.

// ErrNotPermitted is wrapped by every refusal of a transaction for want of
// a role, or because an account or contract is frozen.
var ErrNotPermitted = errors.New("not permitted")

// CheckTx decides whether from may send a transaction to to (nil: a
// contract creation). The error names the missing role.
func (s *State) CheckTx(from common.Address, to *common.Address) error {
	_, err := s.CheckSender(from, to)
	return err
}

// CheckTransaction decides whether from may send tx: CheckTx, and for a
// set-code (EIP-7702) transaction CheckAuthorizations. The pool admits
// with it; block execution applies the same two checks. A node's
// transaction must also call one of the registry's privacy functions
// (privacy.go) and carry no set-code authorizations; block execution
// leaves the function to the registry, which refuses the others from a
// node.
func (s *State) CheckTransaction(from common.Address, tx *types.Transaction) error {
	sender, err := s.CheckSender(from, tx.To())
	if err != nil {
		return err
	}
	if sender.Node {
		return CheckNodeCall(from, tx)
	}
	if tx.Type() == types.SetCodeTxType {
		return s.CheckAuthorizations(tx.SetCodeAuthorizations())
	}
	return nil
}

// CheckNodeCall refuses a node's transaction that is not one of the
// registry's privacy calls, or that carries set-code authorizations. The
// pool and block execution both apply it.
func CheckNodeCall(from common.Address, tx *types.Transaction) error {
	m, err := Registry.MethodById(tx.Data())
	if err != nil || !privacyNodeCalls[m.Name] || tx.Type() == types.SetCodeTxType {
		return fmt.Errorf("%w: node %s may only send privacy calls to the registry", ErrNotPermitted, from.Hex())
	}
	return nil
}

// IsPrivateMarker reports whether tx is a marker of a private transaction
// to an existing group: a registry privateMarker call with no members
// listed. Markers emit one event and write no system storage; blocks do
// not count them against maxBlockGovTxs (a marker that creates a legacy
// group writes the registry and counts).
func IsPrivateMarker(tx *types.Transaction) bool {
	to := tx.To()
	data := tx.Data()
	if to == nil || *to != RegistryAddress || len(data) != 4+4*32 || !bytes.Equal(data[:4], privateMarkerID) {
		return false
	}
	// members is the third argument: its offset word, then its length word
	// at that offset must be zero.
	return new(big.Int).SetBytes(data[4+2*32:4+3*32]).Cmp(big.NewInt(3*32)) == 0 && new(big.Int).SetBytes(data[4+3*32:]).Sign() == 0
}

var privateMarkerID = Registry.Methods["privateMarker"].ID

// MaxGroupMarkersPerBlock bounds the markers of one privacy group in one
// block: a block builder leaves the others for later blocks, and a block
// with more is invalid. It is what a member node applies to a group's
// private state for one block (privstate.MaxPrivateTxsPerBlock).
const MaxGroupMarkersPerBlock = 1_000

// MarkerGroup is the group of a privateMarker call (any members list);
// ok false for any other transaction. The group is the first argument.
func MarkerGroup(tx *types.Transaction) (group common.Hash, ok bool) {
	to := tx.To()
	data := tx.Data()
	if to == nil || *to != RegistryAddress || len(data) < 4+32 || !bytes.Equal(data[:4], privateMarkerID) {
		return group, false
	}
	return common.BytesToHash(data[4 : 4+32]), true
}

// Sender is a transaction's sender as the rules see it.
type Sender struct {
	Account
	// Roles are the roles it may use now (EffectiveRoles); none for a node.
	Roles Role
	// Node: the sender is a registered node, which acts for its
	// organization (Account.Org) and may send only privacy calls to the
	// registry.
	Node bool
}

// MayDeploy reports whether the sender may create contracts itself, at
// any depth of its transaction.
func (a Sender) MayDeploy() bool { return !a.Frozen && a.Roles&RoleDeploy != 0 }

// CheckTxAccount is CheckTx that also returns the sender's record.
func (s *State) CheckTxAccount(from common.Address, to *common.Address) (Account, error) {
	a, err := s.CheckSender(from, to)
	return a.Account, err
}

// SenderOf returns addr's record and the roles it may use now.
func (s *State) SenderOf(addr common.Address) Sender {
	a := Sender{Account: s.Account(addr)}
	a.Roles = s.EffectiveRoles(a.Account)
	return a
}

// CheckSender is CheckTx that also returns the sender's record and roles.
// A registered node (revoked or not) may send only to the registry, for
// its organization, which must be active; its roles as an account do not
// count.
func (s *State) CheckSender(from common.Address, to *common.Address) (Sender, error) {
	a := s.SenderOf(from)
	if a.Frozen {
		return a, fmt.Errorf("%w: account %s is frozen", ErrNotPermitted, from.Hex())
	}
	if n, ok := s.Node(from); ok {
		a = Sender{Account: Account{Address: from, Org: n.Org}, Node: true}
		if _, _, err := s.nodeOrg(from); err != nil {
			return a, fmt.Errorf("%w: %v", ErrNotPermitted, err)
		}
		if to == nil || *to != RegistryAddress {
			return a, fmt.Errorf("%w: node %s may only send privacy calls to the registry", ErrNotPermitted, from.Hex())
		}
		return a, nil
	}
	roles := a.Roles
	if a.Org != "" && roles == 0 {
		if o, ok := s.Org(a.Org); ok && o.Status != StatusActive {
			return a, fmt.Errorf("%w: organization %s of account %s is %s", ErrNotPermitted, a.Org, from.Hex(), o.Status)
		}
	}
	switch {
	case to == nil:
		if roles&RoleDeploy == 0 {
			return a, fmt.Errorf("%w: account %s lacks role deploy", ErrNotPermitted, from.Hex())
		}
	case IsSystem(*to):
		if roles&(RoleWrite|RoleAdmin) == 0 {
			return a, fmt.Errorf("%w: account %s lacks role write or admin", ErrNotPermitted, from.Hex())
		}
	default:
		if roles&RoleWrite == 0 {
			return a, fmt.Errorf("%w: account %s lacks role write", ErrNotPermitted, from.Hex())
		}
		if s.FrozenCount() > 0 && s.rawAccount(*to).Frozen {
			return a, fmt.Errorf("%w: %s is frozen", ErrNotPermitted, to.Hex())
		}
	}
	return a, nil
}

// CheckAuthorizations decides whether a set-code (EIP-7702) transaction
// with these authorizations may run: the chain must admit such
// transactions (parameter setCode), and the authority of every
// authorization must hold write and not be frozen. An authorization whose
// signature does not recover names no authority; go-ethereum skips it
// without effect, and so does this check. Recovering costs one signature
// check per authorization (at most 671 fit in a 2^24-gas transaction).
func (s *State) CheckAuthorizations(auths []types.SetCodeAuthorization) error {
	if s.Param(ParamSetCode) == 0 {
		return fmt.Errorf("%w: set-code (EIP-7702, type 4) transactions are refused on this chain (parameter %s is 0)", ErrNotPermitted, ParamSetCode)
	}
	for i := range auths {
		authority, err := auths[i].Authority()
		if err != nil {
			continue
		}
		if s.IsNode(authority) {
			return fmt.Errorf("%w: authorization %d: authority %s is a node, which may only send privacy calls to the registry", ErrNotPermitted, i, authority.Hex())
		}
		a := s.Account(authority)
		if a.Frozen {
			return fmt.Errorf("%w: authorization %d: authority %s is frozen", ErrNotPermitted, i, authority.Hex())
		}
		if s.EffectiveRoles(a)&RoleWrite == 0 {
			return fmt.Errorf("%w: authorization %d: authority %s lacks role write", ErrNotPermitted, i, authority.Hex())
		}
	}
	return nil
}

// FrozenCount is the number of frozen accounts and contracts: one storage
// read, so that execution skips every frozen lookup while it is 0.
func (s *State) FrozenCount() uint64 { return s.reg.getUint(frozenCountKey) }

// ---- factories ----

// factoryKey holds 1 for a contract governance marked a factory: it may
// create contracts (CREATE, CREATE2) inside transactions whose sender
// lacks the deploy role.
func factoryKey(addr common.Address) string { return "factory/" + addr.Hex() }

// IsFactory reports whether governance marked addr a contract factory.
func (s *State) IsFactory(addr common.Address) bool { return s.reg.getUint(factoryKey(addr)) != 0 }

// setFactory marks or unmarks addr a contract factory.
func (s *State) setFactory(addr common.Address, on bool) {
	var v uint64
	if on {
		v = 1
	}
	s.reg.putUint(factoryKey(addr), v)
}

// SetFactoryForTesting marks or unmarks addr a contract factory in st
// directly, as the governance action does: for tests of other packages
// only (a node never calls it).
func SetFactoryForTesting(st StateWriter, addr common.Address, on bool) {
	Open(st, 0, 0).setFactory(addr, on)
}

// SetFrozenForTesting freezes or unfreezes addr in st directly, as the
// governance action does: for tests of other packages only.
func SetFrozenForTesting(st StateWriter, addr common.Address, frozen bool) {
	s := Open(st, 0, 0)
	a := s.rawAccount(addr)
	a.Frozen = frozen
	s.putAccount(a)
}

// ---- precompiles ----

// Precompiles returns a new map of the precompiled contracts c's EVM runs:
// those of its fork rules and the system contracts. Install sets one; the
// executor sets a copy with more entries (frozen addresses) per message.
func (c *Contracts) Precompiles() vm.PrecompiledContracts {
	pcs := vm.ActivePrecompiledContracts(c.evm.GetRules())
	pcs[RegistryAddress] = &precompile{c: c, addr: RegistryAddress, abi: &Registry}
	pcs[GovernanceAddress] = &precompile{c: c, addr: GovernanceAddress, abi: &Governance}
	pcs[ContractsAddress] = &precompile{c: c, addr: ContractsAddress, abi: &ContractRegistry}
	return pcs
}
