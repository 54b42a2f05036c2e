package system

import (
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
)

// ---- permissions ----

// ErrNotPermitted is wrapped by every refusal of a transaction for want of
// a role, or because an account or contract is frozen.
var ErrNotPermitted = errors.New("not permitted")

// CheckTx decides whether from may send a transaction to to (nil: a
// contract creation). The error names the missing role.
func (s *State) CheckTx(from common.Address, to *common.Address) error {
	_, err := s.CheckTxAccount(from, to)
	return err
}

// CheckTxAccount is CheckTx that also returns the sender's record.
func (s *State) CheckTxAccount(from common.Address, to *common.Address) (Account, error) {
	a := s.Account(from)
	if a.Frozen {
		return a, fmt.Errorf("%w: account %s is frozen", ErrNotPermitted, from.Hex())
	}
	roles := s.EffectiveRoles(a)
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
		if s.reg.getUint(frozenCountKey) > 0 && s.rawAccount(*to).Frozen {
			return a, fmt.Errorf("%w: %s is frozen", ErrNotPermitted, to.Hex())
		}
	}
	return a, nil
}

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
