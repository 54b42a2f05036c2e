package keystore

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/system"
	"github.com/charter-ledger/charter/internal/txpool"
)

// Errors of Send. Each is wrapped with the key's id.
var (
	// ErrDenied: the caller may not use the key (not among its keys, or
	// it acts for another organization than the node's).
	ErrDenied = errors.New("not permitted")
	// ErrBusy: the key has SignerConfig.MaxInFlight sends in progress;
	// the caller may retry.
	ErrBusy = errors.New("too many sends in progress")
)

// Pool is what a Signer needs of the node: the transaction pool and a
// gas estimate on the newest state. The consumer owns it; the node adapts
// its pool and executor (the JSON-RPC backend has PoolNonce and SendTx
// with these signatures). Implementations are safe for concurrent use.
type Pool interface {
	// PoolNonce is the next nonce of addr, counting its transactions in
	// the pool.
	PoolNonce(addr common.Address) uint64
	// EstimateGas is the gas msg needs on the newest state; an error
	// says why it cannot run (a revert, a refused sender).
	EstimateGas(ctx context.Context, msg ethereum.CallMsg) (uint64, error)
	// SendTx admits a signed transaction. nil: admitted; an error: not
	// admitted, and why (an admitted transaction never gets an error:
	// the Signer would send another in its place). A nonce already used
	// is refused with an error that wraps (or, from a remote pool, says)
	// core.ErrNonceTooLow or txpool.ErrReplaceUnderpriced; the same
	// transaction again with txpool.ErrAlreadyKnown.
	SendTx(tx *types.Transaction) error
}

// TxRequest is a transaction to sign with a node-held key: what a REST
// send gives. The Signer fills the rest (nonce, fees, chain id).
type TxRequest struct {
	To    *common.Address // nil: create a contract
	Data  []byte
	Value *big.Int // nil: zero
	// Gas is the gas limit; 0: estimated.
	Gas uint64
	// GasPrice, when set, makes a legacy (EIP-155) transaction at this
	// price; nil: the chain's fees, an EIP-1559 transaction when London
	// is active (a tip of the pool's minimum, a fee cap of twice the base
	// fee plus the tip, as eth_sendTransaction fills them).
	GasPrice *big.Int
}

// SignerConfig configures a Signer.
type SignerConfig struct {
	// Org is the node's organization: only its callers may use its keys.
	Org string
	// MaxInFlight bounds the sends of one key in progress at once
	// (estimating, waiting for the key's nonce, being submitted); one
	// more is refused with ErrBusy. Default DefaultMaxInFlight.
	MaxInFlight int
}

// DefaultMaxInFlight is SignerConfig.MaxInFlight's default.
const DefaultMaxInFlight = 64

// Signer signs transactions with a Store's current keys and submits
// them, one nonce sequence per key. It is safe for concurrent use.
//
// Nonces: a key's sends are serialized from the choice of the nonce to
// the pool's answer, so that the pool sees them in nonce order without
// gaps. The nonce is the larger of the key's local next nonce and the
// pool's (PoolNonce): the local one covers a pool whose view lags, the
// pool's covers transactions sent with the key elsewhere (another node,
// before a restart). The local next nonce advances only when the pool
// admitted a transaction, so a refused send leaves no gap. A refusal
// because the nonce was used (nonce too low, already known, replacement
// underpriced) resyncs from the pool and retries once; "already known"
// is success (the same transaction is in the pool).
type Signer struct {
	ks     *Store
	pool   Pool
	cfg    SignerConfig
	signer types.Signer
	london bool
	// baseFee and minTip are the chain's fixed base fee and the pool's
	// minimum tip; never modified.
	baseFee, minTip *big.Int

	mu struct {
		sync.Mutex
		// slots has one entry per key address that sent; bounded by the
		// store's keys (MaxKeys).
		slots map[common.Address]*slot
	}
}

// slot is the nonce state of one key address.
type slot struct {
	// inflight holds a token per send in progress (cap MaxInFlight).
	inflight chan struct{}
	// lock (cap 1) is held from the choice of a nonce to the pool's
	// answer; a channel so that waiting for it ends with the context.
	lock chan struct{}
	// next is the nonce after the last one the pool admitted from this
	// signer; guarded by lock.
	next uint64
}

// NewSigner returns a Signer over ks that submits to pool, signing for
// the chain of spec.
func NewSigner(ks *Store, spec *chain.Spec, pool Pool, cfg SignerConfig) *Signer {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	s := &Signer{ks: ks, pool: pool, cfg: cfg,
		signer:  types.LatestSigner(spec.Config),
		london:  spec.Config.IsLondon(new(big.Int)),
		baseFee: spec.BaseFeeWei(),
		minTip:  spec.MinGasPriceWei(),
	}
	s.mu.slots = make(map[common.Address]*slot)
	return s
}

// Permit reports whether caller may use key id: id among caller.Keys and
// caller acting for the node's organization. A nil caller (no access
// control: charter dev) may use every key. It does not say whether the
// key exists, so that callers learn nothing of keys they may not use.
func (s *Signer) Permit(id string, caller *auth.Identity) error {
	if caller == nil {
		return nil
	}
	if caller.Org != s.cfg.Org {
		return fmt.Errorf("%w: key %s is held for organization %s; caller %s acts for %q", ErrDenied, id, s.cfg.Org, caller.Name(), caller.Org)
	}
	if !slices.Contains(caller.Keys, id) {
		return fmt.Errorf("%w: caller %s may not use key %s (its client's keys do not include it)", ErrDenied, caller.Name(), id)
	}
	return nil
}

// Send signs req with the current version of key id and submits it,
// returning the transaction's hash once the pool admitted it. It checks
// that caller may use the key (Permit), fills gas (when 0), fees, chain
// id and the key's next nonce. Errors: ErrDenied, ErrUnknownKey, ErrBusy,
// the context's error while waiting for the key, and the estimate's or
// the pool's refusal, each wrapped with the key's id. A key's account
// also needs its roles in the registry: the pool refuses it otherwise.
func (s *Signer) Send(ctx context.Context, id string, caller *auth.Identity, req TxRequest) (common.Hash, error) {
	if err := s.Permit(id, caller); err != nil {
		return common.Hash{}, err
	}
	e := s.ks.current(id)
	if e == nil {
		return common.Hash{}, fmt.Errorf("%w %q: add it with 'charter keys add'", ErrUnknownKey, id)
	}
	return s.send(ctx, e, req)
}

// SendRetired is Send with a retired version of key id, for an admin who
// moves what its account holds (the current version is for Send only).
// The caller must also hold the admin role.
func (s *Signer) SendRetired(ctx context.Context, id string, version int, caller *auth.Identity, req TxRequest) (common.Hash, error) {
	if err := s.Permit(id, caller); err != nil {
		return common.Hash{}, err
	}
	if caller != nil && !caller.Has(system.RoleAdmin) {
		return common.Hash{}, fmt.Errorf("%w: sending with a retired key needs role admin (caller %s holds %s)", ErrDenied, caller.Name(), caller.Roles)
	}
	e := s.ks.version(id, version)
	switch {
	case e == nil:
		return common.Hash{}, fmt.Errorf("%w: %q has no version %d", ErrUnknownKey, id, version)
	case e.info.Current():
		return common.Hash{}, fmt.Errorf("key %s version %d is current, not retired: send with it as clients do", id, version)
	}
	return s.send(ctx, e, req)
}

// send signs req with e and submits it under e's nonce sequence.
func (s *Signer) send(ctx context.Context, e *entry, req TxRequest) (common.Hash, error) {
	id := e.info.ID
	if e.info.Version > 1 {
		id = fmt.Sprintf("%s (version %d)", id, e.info.Version)
	}
	if err := req.check(); err != nil {
		return common.Hash{}, fmt.Errorf("send with key %s: %w", id, err)
	}
	addr := e.info.Address
	sl := s.slot(addr)
	select {
	case sl.inflight <- struct{}{}:
	default:
		return common.Hash{}, fmt.Errorf("key %s: %w (at most %d at once); retry", id, ErrBusy, s.cfg.MaxInFlight)
	}
	defer func() { <-sl.inflight }()

	gas := req.Gas
	if gas == 0 {
		msg := ethereum.CallMsg{From: addr, To: req.To, Data: req.Data, Value: req.Value, GasPrice: req.GasPrice}
		est, err := s.pool.EstimateGas(ctx, msg)
		if err != nil {
			return common.Hash{}, fmt.Errorf("send with key %s: estimate gas: %w", id, err)
		}
		gas = est
	}

	select {
	case sl.lock <- struct{}{}:
	case <-ctx.Done():
		return common.Hash{}, fmt.Errorf("send with key %s: %w", id, ctx.Err())
	}
	defer func() { <-sl.lock }()
	if err := ctx.Err(); err != nil {
		return common.Hash{}, fmt.Errorf("send with key %s: %w", id, err)
	}
	nonce := max(sl.next, s.pool.PoolNonce(addr))
	hash, err := s.submitLocked(e, nonce, gas, req)
	if err == nil {
		sl.next = nonce + 1
		return hash, nil
	}
	if !nonceTaken(err) {
		// Nothing was admitted: the nonce stays the next one.
		return common.Hash{}, fmt.Errorf("send with key %s: %w", id, err)
	}
	// The nonce was used (the key sent elsewhere, or the pool's view
	// moved): resync from the pool and retry once.
	nonce = max(s.pool.PoolNonce(addr), nonce+1)
	sl.next = nonce
	hash, err = s.submitLocked(e, nonce, gas, req)
	if err != nil {
		return common.Hash{}, fmt.Errorf("send with key %s: nonce %d: %w", id, nonce, err)
	}
	sl.next = nonce + 1
	return hash, nil
}

// submitLocked signs req with nonce and gas and gives it to the pool;
// the caller holds the key's slot lock. The pool's "already known" is
// success: that very transaction (the same hash: signatures are
// deterministic) is in the pool, and sending another would pay twice.
func (s *Signer) submitLocked(e *entry, nonce, gas uint64, req TxRequest) (common.Hash, error) {
	tx, err := types.SignNewTx(e.key, s.signer, s.txData(nonce, gas, req))
	if err != nil {
		return common.Hash{}, fmt.Errorf("sign: %w", err)
	}
	if err := s.pool.SendTx(tx); err != nil && !isKnown(err) {
		return common.Hash{}, err
	}
	return tx.Hash(), nil
}

// txData fills fees and chain id as eth_sendTransaction does.
func (s *Signer) txData(nonce, gas uint64, req TxRequest) types.TxData {
	value := new(big.Int)
	if req.Value != nil {
		value.Set(req.Value)
	}
	data := slices.Clone(req.Data)
	if req.GasPrice != nil || !s.london {
		price := new(big.Int).Add(s.baseFee, s.minTip)
		if req.GasPrice != nil {
			price.Set(req.GasPrice)
		}
		return &types.LegacyTx{Nonce: nonce, GasPrice: price, Gas: gas, To: req.To, Value: value, Data: data}
	}
	tip := new(big.Int).Set(s.minTip)
	feeCap := new(big.Int).Add(new(big.Int).Mul(s.baseFee, big.NewInt(2)), tip)
	return &types.DynamicFeeTx{ChainID: s.signer.ChainID(), Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap,
		Gas: gas, To: req.To, Value: value, Data: data}
}

func (r *TxRequest) check() error {
	for name, v := range map[string]*big.Int{"value": r.Value, "gasPrice": r.GasPrice} {
		if v != nil && (v.Sign() < 0 || v.BitLen() > 256) {
			return fmt.Errorf("%s %s out of range (0 to 2^256-1)", name, v)
		}
	}
	return nil
}

// slot returns addr's nonce state, made on first use.
func (s *Signer) slot(addr common.Address) *slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.mu.slots[addr]
	if sl == nil {
		sl = &slot{inflight: make(chan struct{}, s.cfg.MaxInFlight), lock: make(chan struct{}, 1)}
		s.mu.slots[addr] = sl
	}
	return sl
}

// nonceTaken reports whether the pool refused a transaction because its
// nonce was used by another one. A remote pool's errors carry only their
// message, which Ethereum clients match on, so the messages count too.
func nonceTaken(err error) bool {
	return is(err, txpool.ErrNonceTooLow) || is(err, txpool.ErrReplaceUnderpriced)
}

// isKnown reports whether the pool holds the transaction already.
func isKnown(err error) bool { return is(err, txpool.ErrAlreadyKnown) }

func is(err, target error) bool {
	return errors.Is(err, target) || strings.Contains(err.Error(), target.Error())
}
