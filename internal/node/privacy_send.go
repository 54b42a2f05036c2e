package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/privacy"
	"github.com/charter-ledger/charter/internal/privacy/privtx"
	"github.com/charter-ledger/charter/internal/system"
)

// Bounds of sending.
const (
	// groupCommitWait bounds how long priv_createPrivacyGroup and
	// priv_deletePrivacyGroup wait for their transaction to commit.
	groupCommitWait = 30 * time.Second
	// maxPendingNonces bounds the private nonces this node remembers for
	// transactions it sent that are not applied yet.
	maxPendingNonces = 16_384
	// markerGasSlack is added to a registry call's estimated gas.
	markerGasSlack = 1.25
)

// ErrNotPermitted-style refusals of a private transaction say what the
// client must change; they reach the client as the JSON-RPC error text.

// sender signs this node's registry calls with its node key, in nonce
// order, and remembers the private nonces of what it sent.
type sender struct {
	p  *privacyService
	mu sync.Mutex // one signing at a time: nonces in order

	gasMu sync.Mutex
	gas   map[string]uint64 // estimated gas by method (calls without a members list)

	pmu     sync.Mutex
	pending map[pendingKey]uint64 // next private nonce after what was sent
}

type pendingKey struct {
	group common.Hash
	from  common.Address
}

func (s *sender) init(p *privacyService) {
	s.p = p
	s.gas = make(map[string]uint64)
	s.pending = make(map[pendingKey]uint64)
}

// pendingNonce is the next private nonce of from in group counting what
// this node sent and has not applied yet (0: nothing pending).
func (s *sender) pendingNonce(group common.Hash, from common.Address) uint64 {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return s.pending[pendingKey{group, from}]
}

func (s *sender) notePending(group common.Hash, from common.Address, next uint64) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	k := pendingKey{group, from}
	if _, ok := s.pending[k]; !ok && len(s.pending) >= maxPendingNonces {
		clear(s.pending) // the store's nonces answer again; clients resend with them
	}
	if next > s.pending[k] {
		s.pending[k] = next
	}
}

// call signs and submits a registry call by this node; the transaction's
// hash. cacheGas: the method's gas does not depend on its arguments' sizes
// beyond a bound, so one estimate serves every call.
func (s *sender) call(ctx context.Context, method string, cacheGas bool, args ...any) (common.Hash, error) {
	data, err := system.Registry.Pack(method, args...)
	if err != nil {
		return common.Hash{}, fmt.Errorf("encode %s: %w", method, err)
	}
	n := s.p.n
	spec := n.cfg.Spec
	s.mu.Lock()
	defer s.mu.Unlock()
	nonce := n.pool.Nonce(n.self)
	gas, err := s.estimate(ctx, method, cacheGas, nonce, data)
	if err != nil {
		return common.Hash{}, err
	}
	tip := spec.MinGasPriceWei()
	to := system.RegistryAddress
	tx, err := types.SignNewTx(n.cfg.NodeKey, n.exec.Signer(), &types.DynamicFeeTx{
		ChainID: spec.Config.ChainID, Nonce: nonce, Gas: gas,
		GasTipCap: tip, GasFeeCap: new(big.Int).Add(spec.BaseFeeWei(), tip),
		To: &to, Data: data,
	})
	if err != nil {
		return common.Hash{}, err
	}
	if err := n.pool.AddSigned(tx, n.self); err != nil { // signed just above with the node key
		return common.Hash{}, fmt.Errorf("this node's %s transaction was refused: %w", method, err)
	}
	return tx.Hash(), nil
}

func (s *sender) estimate(ctx context.Context, method string, cacheGas bool, nonce uint64, data []byte) (uint64, error) {
	if cacheGas {
		s.gasMu.Lock()
		g, ok := s.gas[method]
		s.gasMu.Unlock()
		if ok {
			return g, nil
		}
	}
	n := s.p.n
	head := n.ledger.Head()
	st, err := n.ledger.StateAt(head.Root)
	if err != nil {
		return 0, err
	}
	to := system.RegistryAddress
	msg := &core.Message{From: n.self, To: &to, Nonce: nonce, Value: new(uint256.Int), GasLimit: uint64(n.cfg.Spec.TxGasLimit),
		GasPrice: new(uint256.Int), GasFeeCap: new(uint256.Int), GasTipCap: new(uint256.Int), Data: data}
	used, res, err := n.exec.EstimateGas(ctx, head, st, msg, uint64(n.cfg.Spec.TxGasLimit))
	if err != nil {
		return 0, fmt.Errorf("%s by this node: %w", method, err)
	}
	if res != nil && res.Failed() {
		return 0, fmt.Errorf("%s by this node would fail: %s", method, revertText(res))
	}
	g := min(uint64(float64(used)*markerGasSlack)+5_000, uint64(n.cfg.Spec.TxGasLimit))
	if cacheGas {
		s.gasMu.Lock()
		s.gas[method] = g
		s.gasMu.Unlock()
	}
	return g, nil
}

func revertText(res *core.ExecutionResult) string {
	if reason, err := abi.UnpackRevert(res.Revert()); err == nil {
		return reason
	}
	return res.Err.Error()
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// waitCommitted waits until transaction hash is in a committed block and
// returns its receipt.
func (p *privacyService) waitCommitted(ctx context.Context, hash common.Hash) (*types.Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, groupCommitWait)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if number, index, ok := p.n.ledger.TxLookup(hash); ok {
			receipts, err := p.n.ledger.Receipts(number)
			if err != nil {
				return nil, err
			}
			if index < len(receipts) {
				return receipts[index], nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("transaction %s not committed within %s", hash.Hex(), groupCommitWait)
		case <-p.n.quit:
			return nil, errors.New("node stopping")
		case <-tick.C:
		}
	}
}

// prepared is a private transaction checked and sealed for its group.
type prepared struct {
	tx       *privtx.Tx
	raw      []byte // the private transaction as the client signed it
	from     common.Address
	group    common.Hash
	envelope []byte
	hash     common.Hash // keccak256(envelope): the marker's commitment
	members  []string    // the group's member organizations
	auditors []string    // auditor organizations granted at the head
	create   []string    // a legacy group to create with the marker: its members
}

// prepare checks a client's private transaction against the registry at
// the head and seals it: this node's organization sends it, to a group it
// belongs to, from an account of its own that may send (and deploy).
func (p *privacyService) prepare(raw []byte) (*prepared, error) {
	tx, from, err := p.decodePrivate(raw)
	if err != nil {
		return nil, err
	}
	if tx.Restriction != privtx.Restricted {
		return nil, fmt.Errorf("restriction %q: this node takes restricted private transactions only (the payload goes to the group's members alone)", tx.Restriction)
	}
	if tx.Value != nil && tx.Value.Sign() != 0 {
		return nil, errors.New("value: a private transaction sends no ether (private accounts hold none)")
	}
	if tx.Gas > uint64(p.n.cfg.Spec.TxGasLimit) {
		return nil, fmt.Errorf("gas limit %d above the chain's per-transaction limit %d", tx.Gas, uint64(p.n.cfg.Spec.TxGasLimit))
	}
	memo, err := p.headMemo()
	if err != nil {
		return nil, err
	}
	org := memo.org(p.n.self)
	if org == "" {
		return nil, errors.New("this node is not in the registry (or is revoked): it cannot send private transactions")
	}
	me := p.identity()
	if !bytes.Equal(tx.PrivateFrom, me[:]) {
		return nil, fmt.Errorf("privateFrom %s is not this node's organization %s (its privacy key is %s)", b64(tx.PrivateFrom), org, me)
	}
	if reason := senderRefusal(memo.sender(from), from, org, tx.To == nil); reason != "" {
		return nil, errors.New(reason)
	}
	pr := &prepared{tx: tx, raw: raw, from: from, group: tx.GroupID()}
	g, exists := memo.group(pr.group)
	switch {
	case exists && g.Status != system.GroupActive:
		return nil, fmt.Errorf("privacy group %s is %s", system.GroupIDBase64(pr.group), g.Status)
	case exists:
		if !slices.Contains(g.Members, org) {
			if slices.ContainsFunc(g.Auditors, func(a system.AuditorGrant) bool { return a.Org == org }) {
				return nil, fmt.Errorf("not permitted: organization %s is an auditor of privacy group %s, not a member: it reads, it does not send", org, system.GroupIDBase64(pr.group))
			}
			return nil, errNoGroup(pr.group)
		}
		pr.members = g.Members
		for _, a := range g.Auditors {
			if a.From <= memo.header.Number.Uint64()+1 {
				pr.auditors = append(pr.auditors, a.Org)
			}
		}
	case tx.PrivacyGroupID != nil:
		return nil, errNoGroup(pr.group)
	default:
		// privateFor names the members: the group is made with the marker.
		var members []string
		memo.with(func(reg *system.State) {
			members, err = orgsOfIdentities(reg, append([][]byte{tx.PrivateFrom}, tx.PrivateFor...))
		})
		if err != nil {
			return nil, fmt.Errorf("privateFor: %w", err)
		}
		pr.members, pr.create = members, members
	}
	// A nonce the group's private state has used is refused now, as Besu
	// does; it would only be rejected once ordered.
	if next, err := p.store.Nonce(pr.group, from); err == nil && tx.Nonce < next {
		return nil, fmt.Errorf("nonce too low: private nonce %d of %s in privacy group %s, whose next is %d", tx.Nonce, from.Hex(), system.GroupIDBase64(pr.group), next)
	}
	var keys []*privacy.PublicKey
	for _, o := range append(slices.Clone(pr.members), pr.auditors...) {
		pk, err := memo.key(o)
		if err != nil {
			return nil, err
		}
		if pk == nil {
			return nil, fmt.Errorf("organization %s of privacy group %s has no privacy key", o, system.GroupIDBase64(pr.group))
		}
		if !slices.ContainsFunc(keys, pk.Equal) {
			keys = append(keys, pk)
		}
	}
	pr.envelope, err = p.sealer.Seal(keys, raw)
	if err != nil {
		return nil, err
	}
	if pr.hash, err = privacy.ContentHash(pr.envelope); err != nil {
		return nil, err
	}
	return pr, nil
}

// senderRefusal is why account from may not send a private transaction
// for organization org (creation: it deploys a contract); "" if it may.
// The sending node and every member's applier decide with it.
func senderRefusal(acct system.Sender, from common.Address, org string, creation bool) string {
	switch {
	case acct.Org != org:
		return fmt.Sprintf("not permitted: sender %s is not an account of organization %s", from.Hex(), org)
	case acct.Frozen:
		return fmt.Sprintf("not permitted: account %s is frozen", from.Hex())
	case acct.Roles&system.RoleWrite == 0:
		return fmt.Sprintf("not permitted: account %s lacks role write", from.Hex())
	case creation && acct.Roles&system.RoleDeploy == 0:
		return fmt.Sprintf("not permitted: account %s lacks role deploy", from.Hex())
	}
	return ""
}

// orgsOfIdentities maps privacy identities to the active organizations
// that hold them, sorted.
func orgsOfIdentities(reg *system.State, ids [][]byte) ([]string, error) {
	var out []string
	for _, raw := range ids {
		if len(raw) != privacy.X25519KeySize {
			return nil, fmt.Errorf("%s is not a privacy identity (32 bytes)", b64(raw))
		}
		org, ok := reg.PrivacyKeyOrg(privacy.Identity(raw))
		if !ok {
			return nil, fmt.Errorf("no organization has privacy key %s", b64(raw))
		}
		if o, _ := reg.Org(org); o.Status != system.StatusActive {
			return nil, fmt.Errorf("organization %s (privacy key %s) is %s", org, b64(raw), o.Status)
		}
		if !slices.Contains(out, org) {
			out = append(out, org)
		}
	}
	slices.Sort(out)
	return out, nil
}

// distribute keeps the payload and pushes it to the group's nodes.
//
// The payload is synced to disk before the marker is sent only when no
// other node received it. Otherwise it is written without a sync of its
// own (the group's next block makes it durable): the push went, on each
// connection, before the marker's gossip, so a node that has the marker
// had the payload first, and a sender that crashes meanwhile fetches it
// back. One fsync per private transaction was most of the time a
// sending node spent on it.
func (p *privacyService) distribute(pr *prepared) error {
	if err := p.store.KeepSealed(pr.group, pr.hash, pr.envelope); err != nil {
		return err
	}
	if p.fetch.push(pr.group, pr.envelope, append(slices.Clone(pr.members), pr.auditors...)) == 0 {
		if err := p.store.PutPayload(pr.group, pr.hash, pr.envelope); err != nil {
			return err
		}
	}
	for _, a := range pr.auditors {
		p.fetch.noteDisclosure(pr.group, a, [][32]byte{pr.hash})
	}
	p.sealed.put(pr.hash, pr.raw, pr.from)
	p.kept.put(pr.group, pr.hash, pr.envelope)
	return nil
}

// SendRaw is eea_sendRawTransaction.
func (p *privacyService) SendRaw(ctx context.Context, raw []byte) (common.Hash, error) {
	pr, err := p.prepare(raw)
	if err != nil {
		return common.Hash{}, err
	}
	if err := p.distribute(pr); err != nil {
		return common.Hash{}, err
	}
	members := pr.create
	if members == nil {
		members = []string{}
	}
	hash, err := p.send.call(ctx, "privateMarker", len(pr.create) == 0, [32]byte(pr.group), [32]byte(pr.hash), members)
	if err != nil {
		return common.Hash{}, err
	}
	p.send.notePending(pr.group, pr.from, pr.tx.Nonce+1)
	p.n.ins.m.PrivateSent.Inc()
	return hash, nil
}

// Distribute is priv_distributeRawTransaction: the payload without a
// marker (a marker sent by other means commits to the returned hash).
func (p *privacyService) Distribute(ctx context.Context, raw []byte) (common.Hash, error) {
	pr, err := p.prepare(raw)
	if err != nil {
		return common.Hash{}, err
	}
	if pr.create != nil {
		return common.Hash{}, fmt.Errorf("privacy group %s does not exist: create it first (priv_createPrivacyGroup), or send with eea_sendRawTransaction, whose marker creates it", system.GroupIDBase64(pr.group))
	}
	if err := p.distribute(pr); err != nil {
		return common.Hash{}, err
	}
	return pr.hash, nil
}

// CreateGroup is priv_createPrivacyGroup: a group with a random id, made
// by this node for its organization.
func (p *privacyService) CreateGroup(ctx context.Context, members [][]byte, name, description string) (common.Hash, error) {
	reg, _, err := p.registry()
	if err != nil {
		return common.Hash{}, err
	}
	org := p.myOrg(reg)
	if org == "" {
		return common.Hash{}, errors.New("this node is not in the registry (or is revoked): it cannot create privacy groups")
	}
	orgs, err := orgsOfIdentities(reg, members)
	if err != nil {
		return common.Hash{}, fmt.Errorf("addresses: %w", err)
	}
	if !slices.Contains(orgs, org) {
		return common.Hash{}, fmt.Errorf("addresses: this node's organization %s (privacy key %s) must be a member", org, p.identity())
	}
	if err := system.CheckGroupText(name, description); err != nil {
		return common.Hash{}, err
	}
	var id common.Hash
	if _, err := rand.Read(id[:]); err != nil {
		return common.Hash{}, err
	}
	hash, err := p.send.call(ctx, "createGroup", false, [32]byte(id), name, description, orgs)
	if err != nil {
		return common.Hash{}, err
	}
	if err := p.committedOK(ctx, hash, "createGroup"); err != nil {
		return common.Hash{}, err
	}
	return id, nil
}

// DeleteGroup is priv_deletePrivacyGroup.
func (p *privacyService) DeleteGroup(ctx context.Context, id common.Hash) error {
	if _, err := p.readGroup(id); err != nil {
		return err
	}
	hash, err := p.send.call(ctx, "deleteGroup", false, [32]byte(id))
	if err != nil {
		return err
	}
	return p.committedOK(ctx, hash, "deleteGroup")
}

func (p *privacyService) committedOK(ctx context.Context, hash common.Hash, what string) error {
	r, err := p.waitCommitted(ctx, hash)
	if err != nil {
		return err
	}
	if r.Status != types.ReceiptStatusSuccessful {
		return fmt.Errorf("%s transaction %s failed in block %d", what, hash.Hex(), r.BlockNumber)
	}
	return nil
}

// checkPayload is what a receiver of a pushed or fetched payload checks
// before it keeps it; errPayload names the refusal.
var errPayload = errors.New("private payload refused")

// payloadFor reports whether this node's organization is a recipient of
// envelope.
func (p *privacyService) payloadFor(envelope []byte) error {
	ok, err := privacy.SealedTo(envelope, p.key.Public().KeyID())
	if err != nil {
		return fmt.Errorf("%w: %v", errPayload, err)
	}
	if !ok {
		return fmt.Errorf("%w: not sealed to this node's organization", errPayload)
	}
	return nil
}
