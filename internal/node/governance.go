package node

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/p2p"
	"github.com/charter-ledger/charter/internal/system"
	"github.com/charter-ledger/charter/internal/txpool"
)

// validatorSetter is an engine whose validator set governance changes
// (bft and poa).
type validatorSetter interface {
	SetValidators(from uint64, ids []consensus.NodeID) error
}

// registry reads the system state of the committed head.
func (n *Node) registry() (*system.State, *types.Header, error) {
	head := n.ledger.Head()
	st, err := n.ledger.StateAt(head.Root)
	if err != nil {
		return nil, nil, err
	}
	return system.Read(st), head, nil
}

// genesisValidators is the set in force after the head, and the changes
// decided for later heights, from the registry: what an engine starts
// with after a restart.
func (n *Node) validatorSchedule() ([]consensus.NodeID, []system.ValidatorChange, error) {
	reg, head, err := n.registry()
	if err != nil {
		return nil, nil, err
	}
	next := head.Number.Uint64() + 1
	var later []system.ValidatorChange
	for _, c := range reg.ValidatorChanges() {
		if c.From > next {
			later = append(later, c)
		}
	}
	return reg.ValidatorsAt(next), later, nil
}

// applyValidatorChanges hands the validator changes a committed block
// decided to the engine.
func (n *Node) applyValidatorChanges(height uint64, changes []system.ValidatorChange) {
	if len(changes) == 0 {
		return
	}
	vs, ok := n.engine.(validatorSetter)
	if !ok {
		n.log.Error("Governance changed the validator set but this engine cannot apply it; the registry and the running set now differ",
			"engine", n.cfg.Spec.Consensus.Engine, "height", height)
		return
	}
	for _, c := range changes {
		if err := vs.SetValidators(c.From, c.IDs); err != nil {
			n.fail(fmt.Errorf("validator set change decided at height %d for height %d: %w", height, c.From, err))
			return
		}
		n.log.Info("Validator set changes", "from", c.From, "validators", len(c.IDs), "decided", height)
	}
}

// trustFromRegistry brings the peer trust store in line with the
// registry: organizations admitted by governance, their status, rotated
// roots and revoked certificates. The transport re-verifies every peer
// when the store changes, and drops those that no longer pass.
func (nw *network) syncTrust() error {
	reg, _, err := nw.n.registry()
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, o := range nw.trust.Orgs() {
		known[o] = true
	}
	var errs []error
	for _, o := range reg.Orgs() {
		if !known[o.Name] {
			roots := reg.Roots(o.Name)
			if strings.TrimSpace(roots) == "" {
				continue
			}
			or, err := identity.OrgRootsFromPEM(o.Name, roots)
			if err == nil {
				err = nw.trust.AddOrg(or)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("organization %s: %w", o.Name, err))
				continue
			}
			nw.n.log.Info("Organization admitted to the peer trust store", "org", o.Name)
		}
		if err := nw.trust.SetOrgActive(o.Name, o.Status == system.StatusActive); err != nil {
			errs = append(errs, err)
		}
	}
	for _, fp := range reg.RevokedFingerprints() {
		nw.trust.RevokeFingerprint(identity.Fingerprint(fp))
	}
	return errors.Join(errs...)
}

// authorize admits a peer the registry allows: a registered node, not
// revoked, of an active organization, presenting its registered
// certificate, or, when the registry holds no fingerprint for it, a
// certificate of its own organization (the trust store has verified the
// chain to that organization's root; a node of one organization never
// speaks with another's certificate). Nodes the registry does not list
// (observers of a genesis without a governance section) are admitted if
// the genesis names them.
func (nw *network) authorize(p p2p.PeerInfo) error {
	reg, _, err := nw.n.registry()
	if err != nil {
		return fmt.Errorf("registry unreadable: %w", err)
	}
	id := common.Address(p.ID)
	if rn, listed := reg.Node(id); listed {
		if rn.Org != "" && p.Identity.Org != rn.Org {
			return fmt.Errorf("%s/%s: node %s is registered to organization %s but presents a certificate of organization %s",
				p.Identity.Org, p.Identity.Name, id.Hex(), rn.Org, p.Identity.Org)
		}
		if err := reg.AllowedNode(id, common.Hash(p.Identity.Fingerprint)); err != nil {
			return fmt.Errorf("%s/%s: %w", p.Identity.Org, p.Identity.Name, err)
		}
		return nil
	}
	if !nw.members[p.ID] {
		return fmt.Errorf("node %s (%s/%s) is not in the registry of this chain", p.ID, p.Identity.Org, p.Identity.Name)
	}
	return nil
}

// governanceDue reports whether governance has work at the start of the
// block after the head (a passed proposal to execute, an open one to
// expire), so that a sealer that only seals for transactions makes it.
func (n *Node) governanceDue() bool {
	head := n.ledger.Head()
	if c := n.due.Load(); c != nil && c.head == head.Hash() {
		return c.due
	}
	st, err := n.ledger.StateAt(head.Root)
	if err != nil {
		return false
	}
	due := system.Read(st).DueAt(head.Number.Uint64() + 1)
	n.due.Store(&dueCache{head: head.Hash(), due: due})
	return due
}

// dueCache remembers governanceDue's answer for one head.
type dueCache struct {
	head common.Hash
	due  bool
}

// applyPoolLimits gives the pool the per-transaction bounds governance set
// (the genesis values where it set none).
func (n *Node) applyPoolLimits() {
	reg, _, err := n.registry()
	if err != nil {
		return
	}
	spec := n.cfg.Spec
	lim := txpool.Limits{MaxTxBytes: spec.MaxTxBytes, TxGasLimit: uint64(spec.TxGasLimit), MinTip: spec.MinGasPriceWei()}
	if v := reg.Param(system.ParamMaxTxBytes); v != 0 {
		lim.MaxTxBytes = v
	}
	if v := reg.Param(system.ParamTxGasLimit); v != 0 {
		lim.TxGasLimit = v
	}
	if v := reg.Param(system.ParamMinGasPrice); v != 0 {
		lim.MinTip = new(big.Int).SetUint64(v)
	}
	n.pool.SetLimits(lim)
}
