package node

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/blockchain"
	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/p2p"
	"github.com/charter-ledger/charter/internal/snapshot"
	"github.com/charter-ledger/charter/internal/system"
	"github.com/charter-ledger/charter/internal/txpool"
)

// registry reads the system state of the committed head.
func (n *Node) registry() (*system.State, *types.Header, error) { return n.chain.System() }

// applyGovernance is the commit's subscriber that makes governance's
// decisions take effect on this node: validator changes go to the engine
// (from inside the commit, before the engine's Advance, as engines
// require), and executed proposals may have changed the pool's limits and
// the organizations, nodes and certificates peers are checked against.
func (n *Node) applyGovernance(c *blockchain.Committed) error {
	if err := n.applyValidatorChanges(c.Block.NumberU64(), c.Effects.ValidatorChanges); err != nil {
		return err
	}
	if len(c.Effects.ValidatorChanges) > 0 {
		n.recordHandover(c.Block.Header())
	}
	if err := n.applyParamChanges(c.Block.NumberU64(), c.Effects.ParamChanges); err != nil {
		return err
	}
	if len(c.Effects.Executed) > 0 {
		n.applyPoolLimits()
		if n.net != nil {
			if err := n.net.syncTrust(); err != nil {
				n.log.Warn("The registry's organizations do not all fit the trust store", "err", err)
			}
		}
	}
	return nil
}

// applyValidatorChanges hands the validator changes a committed block
// decided to the engine.
func (n *Node) applyValidatorChanges(height uint64, changes []system.ValidatorChange) error {
	for _, c := range changes {
		if err := n.engine.SetValidators(c.From, c.IDs); err != nil {
			err = fmt.Errorf("validator set change decided at height %d for height %d: %w", height, c.From, err)
			n.fail(err)
			return err
		}
		n.log.Info("Validator set changes", "from", c.From, "validators", len(c.IDs), "decided", height)
	}
	return nil
}

// recordHandover keeps the evidence that the validators in force at
// header's block decided a validator set change (snapshot.Handover), so
// that the snapshots this node makes let an importer that knows only the
// genesis follow the set. Only engines whose seals are signed (bft, poa)
// can anchor a set; a failure is logged, the node goes on.
func (n *Node) recordHandover(header *types.Header) {
	if e := n.cfg.Spec.Consensus.Engine; e != "bft" && e != "poa" {
		return
	}
	num := header.Number.Uint64()
	ho, err := snapshot.NewHandover(header, n.ledger.Seal(num), n.ledger.NodeDatabase())
	if err == nil {
		_, err = snapshot.AddHandovers(n.cfg.DataDir, []snapshot.Handover{ho})
	}
	if err != nil {
		n.log.Error("Could not keep the evidence of a validator set change; snapshots of later heights made here will be refused by new nodes", "height", num, "err", err)
		return
	}
	n.log.Info("Kept the evidence of a validator set change for snapshots", "height", num)
}

// applyParamChanges hands the engine parameter changes a committed block
// decided to the engine, if it takes them (bft, poa); other engines
// ignore them.
func (n *Node) applyParamChanges(height uint64, changes []system.ParamChange) error {
	t, ok := n.engine.(consensus.Tunable)
	if !ok {
		return nil
	}
	for _, c := range changes {
		if err := t.SetParams(c.From, c.Map()); err != nil {
			err = fmt.Errorf("engine parameter change decided at height %d for height %d: %w", height, c.From, err)
			n.fail(err)
			return err
		}
		n.log.Info("Engine parameters change", "from", c.From, "params", c.Map(), "decided", height)
	}
	return nil
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
