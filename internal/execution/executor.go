// Package execution applies transactions to the world state through
// go-ethereum's EVM: it builds blocks from pending transactions, verifies
// blocks built by others, and runs read-only calls. It computes one state
// root per block, never per transaction.
package execution

import (
	"errors"
	"fmt"
	"math/big"
	"math/bits"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus/misc/eip4844"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/system"
)

// HeaderReader gives the committed headers that BLOCKHASH may read.
type HeaderReader interface {
	HeaderByNumber(number uint64) *types.Header
}

// TxSource yields the transactions a block is built from, in the order they
// should be tried (by account, nonce order inside an account).
// It is used by one goroutine.
type TxSource interface {
	// Peek returns the next transaction to try, or nil when none is left.
	Peek() *types.Transaction
	// Shift accepts the peeked transaction and moves to the sender's next.
	Shift()
	// Skip rejects the peeked transaction and skips the rest of its sender's.
	Skip()
}

// Result is an executed block: the block with every header field filled,
// its receipts, and the post-state (not yet committed).
type Result struct {
	Block    *types.Block
	Receipts types.Receipts
	State    *state.StateDB
	// Rejected are transactions tried while building and left out because
	// they can no longer be executed (nonce too low, funds gone), with why.
	Rejected []Rejection
	// Effects are the governance decisions the block executed that the
	// node acts on (validator set changes).
	Effects system.BlockEffects

	gov govWork // the governance work of its transactions
}

// Rejection is a transaction left out of a block, and the reason.
type Rejection struct {
	Tx  *types.Transaction
	Err error
}

// ErrInvalidBlock wraps every reason a received block is refused.
var ErrInvalidBlock = errors.New("invalid block")

// Executor runs the EVM for one chain. It is goroutine-safe: it holds no
// mutable state.
type Executor struct {
	spec    *chain.Spec
	config  *params.ChainConfig
	signer  types.Signer
	headers HeaderReader
	opts    Options
}

// New returns an executor for the chain described by spec.
func New(spec *chain.Spec, headers HeaderReader) *Executor {
	return &Executor{
		spec:    spec,
		config:  spec.Config,
		signer:  types.LatestSignerForChainID(spec.Config.ChainID),
		headers: headers,
	}
}

// Signer is the transaction signer of the chain: it accepts every
// transaction type the active forks allow, and only with this chain's id.
func (e *Executor) Signer() types.Signer { return e.signer }

// Config is the chain configuration.
func (e *Executor) Config() *params.ChainConfig { return e.config }

// BlockContext is the EVM's view of a block.
func (e *Executor) BlockContext(h *types.Header) vm.BlockContext {
	ctx := vm.BlockContext{
		CanTransfer:      core.CanTransfer,
		Transfer:         core.Transfer,
		GetHash:          e.getHashFn(h),
		Coinbase:         h.Coinbase,
		BlockNumber:      new(big.Int).Set(h.Number),
		Time:             h.Time,
		Difficulty:       new(big.Int),
		BaseFee:          new(big.Int).Set(h.BaseFee),
		GasLimit:         h.GasLimit,
		Random:           &h.MixDigest,
		CostPerStateByte: params.CostPerStateByte,
	}
	if h.ExcessBlobGas != nil {
		ctx.BlobBaseFee = eip4844.CalcBlobFee(e.config, h)
	}
	return ctx
}

// getHashFn answers BLOCKHASH for the 256 blocks before h.
func (e *Executor) getHashFn(h *types.Header) vm.GetHashFunc {
	number := h.Number.Uint64()
	return func(n uint64) common.Hash {
		if n >= number || number-n > 256 {
			return common.Hash{}
		}
		if n == number-1 {
			return h.ParentHash
		}
		if hdr := e.headers.HeaderByNumber(n); hdr != nil {
			return hdr.Hash()
		}
		return common.Hash{}
	}
}

// Build executes transactions from src on st (the parent's post-state)
// and returns the block. header must come from chain.NewHeader.
//
// The block takes transactions while they fit its bounds: gas, encoded
// size (maxBlockBytes) and governance work (maxBlockGovTxs,
// maxBlockGovBytes). A transaction that does not fit what is left of the
// block is passed over with the rest of its sender's and stays in the
// pool for a later block, while the senders after it still get their
// turn: the room a burst of large or governance transactions leaves goes
// to the others. A transaction that can never be part of a block is
// rejected (Result.Rejected).
func (e *Executor) Build(header *types.Header, st *state.StateDB, src TxSource) (*Result, error) {
	run, err := e.begin(header, st)
	if err != nil {
		return nil, err
	}
	var (
		res     = &Result{State: st, Effects: run.effects}
		gp      = core.NewGasPool(header.GasLimit)
		txs     types.Transactions
		maxSize = run.maxTxBytes
		lim     = run.limits
		size    = uint64(system.BlockFramingBytes) // the header's and the body's framing
		govFull bool                               // a transaction went over the governance budget: no more are tried
	)
	for tx := src.Peek(); tx != nil; tx = src.Peek() {
		if gp.Available(false) < params.TxGas {
			break
		}
		if tx.Gas() > gp.Available(false) {
			// Does not fit this block; the sender's later nonces cannot go first.
			src.Skip()
			continue
		}
		if tx.Size() > maxSize {
			res.Rejected = append(res.Rejected, Rejection{tx, fmt.Errorf("transaction of %d bytes exceeds %d", tx.Size(), maxSize)})
			src.Skip()
			continue
		}
		n := blockBytes(tx)
		if n > lim.Bytes-system.BlockFramingBytes {
			res.Rejected = append(res.Rejected, Rejection{tx, fmt.Errorf("transaction of %d bytes fits no block: maxBlockBytes %d less %d bytes of framing", n, lim.Bytes, system.BlockFramingBytes)})
			src.Skip()
			continue
		}
		if size+n > lim.Bytes {
			src.Skip() // waits for a block with room
			continue
		}
		if countsAsGovernance(tx) && (govFull || run.gov.txs >= lim.GovTxs) {
			src.Skip() // the block's governance budget is spent: a later block
			continue
		}
		if g, ok := system.MarkerGroup(tx); ok && run.markers[g] >= system.MaxGroupMarkersPerBlock {
			src.Skip() // the group has its markers for this block: a later block
			continue
		}
		snap, gpSnap := st.Snapshot(), gp.Snapshot()
		receipt, err := e.applyTx(run, st, gp, header, tx, len(txs))
		if err != nil {
			st.RevertToSnapshot(snap)
			gp.Set(gpSnap)
			src.Skip()
			if errors.Is(err, errGovBudget) {
				// It wrote more governance state than the block has left;
				// undone, it waits for a later block.
				govFull = true
				continue
			}
			if errors.Is(err, errMarkerBudget) {
				continue // its group has its markers for this block: a later block
			}
			res.Rejected = append(res.Rejected, Rejection{tx, err})
			continue
		}
		src.Shift()
		size += n
		txs = append(txs, tx)
		res.Receipts = append(res.Receipts, receipt)
	}
	run.end()
	res.gov = run.gov
	res.Block = e.seal(header, st, txs, res.Receipts, gp)
	return res, nil
}

// Apply executes a block built elsewhere on st (its parent's post-state)
// and checks the result against every field of its header and the bounds
// of a block (encoded size, governance work). parent is the committed
// parent header.
func (e *Executor) Apply(parent *types.Header, block *types.Block, st *state.StateDB) (*Result, error) {
	invalid := func(format string, args ...any) (*Result, error) {
		return nil, fmt.Errorf("%w %d (%s): %s", ErrInvalidBlock, block.NumberU64(), block.Hash().TerminalString(), fmt.Sprintf(format, args...))
	}
	got := block.Header()
	want := chain.NewHeader(e.spec, parent, got.Coinbase, got.Time)
	run, err := e.begin(want, st)
	if err != nil {
		return invalid("%v", err)
	}
	switch {
	case got.ParentHash != want.ParentHash:
		return invalid("parent %s, head is %s", got.ParentHash.TerminalString(), want.ParentHash.TerminalString())
	case got.Number.Cmp(want.Number) != 0:
		return invalid("number %d, want %d", got.Number, want.Number)
	case got.Time < parent.Time:
		return invalid("time %d before parent's %d", got.Time, parent.Time)
	case got.GasLimit != want.GasLimit:
		return invalid("gas limit %d, want %d", got.GasLimit, want.GasLimit)
	case got.BaseFee == nil || got.BaseFee.Cmp(want.BaseFee) != 0:
		return invalid("base fee %v, want %v", got.BaseFee, want.BaseFee)
	case got.Difficulty.Sign() != 0 || got.MixDigest != want.MixDigest || got.UncleHash != types.EmptyUncleHash || len(block.Uncles()) > 0:
		return invalid("difficulty, mix digest or uncles differ from the rules")
	case len(got.Extra) > 32:
		return invalid("extra data of %d bytes", len(got.Extra))
	case !sameFields(got, want):
		return invalid("fork fields (withdrawals, blob gas, beacon root, requests) differ from the rules")
	case block.Size() > run.limits.Bytes:
		return invalid("%d bytes encoded, above maxBlockBytes %d", block.Size(), run.limits.Bytes)
	}
	var (
		res      = &Result{State: st, Effects: run.effects}
		gp       = core.NewGasPool(got.GasLimit)
		maxSize  = run.maxTxBytes
		txs      = block.Transactions()
		parallel = e.opts.Parallel && parallelizable(txs) && fitsTxBytes(txs, maxSize)
		txHash   = make(chan common.Hash, 1)
	)
	if parallel {
		// Hashed while the transactions run; checked before their outcome.
		go func() { txHash <- types.DeriveSha(txs, trie.NewStackTrie(nil)) }()
	} else {
		txHash <- types.DeriveSha(txs, trie.NewStackTrie(nil))
	}
	if !parallel {
		if h := <-txHash; h != got.TxHash {
			return invalid("transactions hash %s, header %s", h.TerminalString(), got.TxHash.TerminalString())
		}
	}
	if parallel {
		receipts, i, err := e.applyParallel(run, st, gp, want, txs)
		if h := <-txHash; h != got.TxHash {
			return invalid("transactions hash %s, header %s", h.TerminalString(), got.TxHash.TerminalString())
		}
		if err != nil {
			return invalid("transaction %d (%s): %v", i, txs[i].Hash().TerminalString(), err)
		}
		res.Receipts = receipts
		txs = nil
	}
	for i, tx := range txs {
		if tx.Size() > maxSize {
			return invalid("transaction %d of %d bytes exceeds %d", i, tx.Size(), maxSize)
		}
		receipt, err := e.applyTx(run, st, gp, got, tx, i)
		if err != nil {
			return invalid("transaction %d (%s): %v", i, tx.Hash().TerminalString(), err)
		}
		res.Receipts = append(res.Receipts, receipt)
	}
	run.end()
	// What seal would put in the header, less the transactions hash
	// (checked above); in parallel mode the receipts are hashed while the
	// state root is.
	var (
		gasUsed     = gp.Used()
		rules       = e.config.Rules(want.Number, true, want.Time)
		root        common.Hash
		receiptHash common.Hash
		bloom       types.Bloom
	)
	if parallel {
		done := make(chan struct{})
		go func() {
			defer close(done)
			receiptHash, bloom = receiptsOutcome(res.Receipts)
		}()
		root = st.IntermediateRoot(rules)
		<-done
	} else {
		root = st.IntermediateRoot(rules)
		receiptHash, bloom = receiptsOutcome(res.Receipts)
	}
	switch {
	case gasUsed != got.GasUsed:
		return invalid("gas used %d, execution gives %d", got.GasUsed, gasUsed)
	case root != got.Root:
		return invalid("state root %s, execution gives %s", got.Root.TerminalString(), root.TerminalString())
	case receiptHash != got.ReceiptHash:
		return invalid("receipts root %s, execution gives %s", got.ReceiptHash.TerminalString(), receiptHash.TerminalString())
	case bloom != got.Bloom:
		return invalid("logs bloom differs from execution")
	}
	res.Block = block
	return res, nil
}

func errTxGasLimit(gas, limit uint64) error {
	return fmt.Errorf("gas limit %d above the chain's per-transaction limit %d", gas, limit)
}

func fitsTxBytes(txs types.Transactions, maxSize uint64) bool {
	for _, tx := range txs {
		if tx.Size() > maxSize {
			return false
		}
	}
	return true
}

func sameFields(a, b *types.Header) bool {
	eqHash := func(x, y *common.Hash) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eqU64 := func(x, y *uint64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return eqHash(a.WithdrawalsHash, b.WithdrawalsHash) && eqHash(a.ParentBeaconRoot, b.ParentBeaconRoot) &&
		eqHash(a.RequestsHash, b.RequestsHash) && eqU64(a.BlobGasUsed, b.BlobGasUsed) &&
		eqU64(a.ExcessBlobGas, b.ExcessBlobGas) && a.SlotNumber == nil && b.SlotNumber == nil
}

// errGovBudget: the transaction would take the block over its governance
// budget (system.BlockLimits). It is not invalid: a later block takes it.
var errGovBudget = errors.New("over the block's governance budget")

// errMarkerBudget: a successful marker beyond its group's markers for the
// block (system.MaxGroupMarkersPerBlock); it may be part of a later block.
var errMarkerBudget = errors.New("over the privacy group's markers for the block")

// blockBytes is what tx adds to the encoded size of a block: its encoding
// as an item of the body's transaction list (a typed transaction is an
// RLP string holding type and payload, a legacy one its RLP list).
func blockBytes(tx *types.Transaction) uint64 {
	n := tx.Size()
	if tx.Type() == types.LegacyTxType {
		return n
	}
	if n < 56 {
		return n + 1
	}
	return n + 1 + uint64(bits.Len64(n)+7)/8
}

// callsSystem reports whether tx calls a system contract: the only
// transactions that may write the system contracts' storage (a write runs
// only when the transaction itself calls it).
func callsSystem(tx *types.Transaction) bool {
	return tx.To() != nil && system.IsSystem(*tx.To())
}

// countsAsGovernance reports whether tx counts against maxBlockGovTxs:
// a call of a system contract other than a private transaction's marker
// (system.IsPrivateMarker), which writes no system storage.
func countsAsGovernance(tx *types.Transaction) bool {
	return callsSystem(tx) && !system.IsPrivateMarker(tx)
}

// govWork is the governance work of a block so far, counted against its
// budget (system.BlockLimits) by applyTx, in Build and Apply alike.
type govWork struct {
	txs   uint64 // transactions that call a system contract
	bytes uint64 // system-contract storage written, 32 per slot changed
}

// applyTx runs one transaction. An error means the transaction cannot be
// part of this block (the state is then left for the caller to revert);
// errGovBudget that it may be part of a later one.
func (e *Executor) applyTx(run *blockRun, st *state.StateDB, gp *core.GasPool, h *types.Header, tx *types.Transaction, index int) (*types.Receipt, error) {
	if tx.Type() == types.BlobTxType {
		return nil, errors.New("blob transactions are not supported")
	}
	if tx.Gas() > run.txGasLimit {
		return nil, errTxGasLimit(tx.Gas(), run.txGasLimit)
	}
	call := countsAsGovernance(tx)
	if call && run.gov.txs >= run.limits.GovTxs {
		return nil, fmt.Errorf("%w: call %d of a system contract, above maxBlockGovTxs %d", errGovBudget, run.gov.txs+1, run.limits.GovTxs)
	}
	markerGroup, marker := system.MarkerGroup(tx)
	msg, sender, err := e.admit(run.sys, tx, h)
	if err != nil {
		return nil, err
	}
	st.SetTxContext(tx.Hash(), index, uint32(index+1))
	run.contracts.SetCall(system.Call{From: msg.From, To: msg.To, Data: msg.Data, Value: msg.Value})
	run.stateBytes, run.govBytes = 0, 0
	// What core.ApplyTransactionWithEVM does, with the message run by the
	// guard (the rules at every frame): apply, finalise the state (every
	// fork from Byzantium on is active, so no intermediate root), receipt.
	run.guard.begin(sender.MayDeploy())
	res, err := run.guard.apply(st, msg, gp)
	if err != nil {
		return nil, err
	}
	// The governance budget, before Finalise (after it, the caller could
	// no longer revert the transaction). The first transaction of a block
	// that writes system storage fits whatever it writes, so that none
	// waits for ever.
	if w := run.govBytes; w > 0 && run.gov.bytes > 0 && run.gov.bytes+w > run.limits.GovBytes {
		return nil, fmt.Errorf("%w: its %d bytes of system-contract storage bring the block's to %d, above maxBlockGovBytes %d",
			errGovBudget, w, run.gov.bytes+w, run.limits.GovBytes)
	}
	// Markers that succeed count against their group's bound; a failed
	// one (a non-member's, a purged group's) takes no slot, so that
	// nobody can fill a group's blocks with reverting markers.
	if marker && !res.Failed() {
		if run.markers[markerGroup] >= system.MaxGroupMarkersPerBlock {
			return nil, fmt.Errorf("%w: marker %d of privacy group %s in the block, above %d", errMarkerBudget, run.markers[markerGroup]+1, markerGroup.Hex(), system.MaxGroupMarkersPerBlock)
		}
		run.markers[markerGroup]++
	}
	if call {
		run.gov.txs++
	}
	run.gov.bytes += run.govBytes
	run.evm.StateDB.Finalise(run.evm.GetRules())
	receipt := core.MakeReceipt(run.evm, res, st, h.Number, common.Hash{}, h.Time, tx, gp.CumulativeUsed(), nil)
	run.meter(sender.Org, receipt)
	return receipt, nil
}

// admit turns tx into the message the EVM runs and checks that its sender
// may send it, with the registry read through sys (the state the
// transaction runs on).
func (e *Executor) admit(sys *system.State, tx *types.Transaction, h *types.Header) (*core.Message, system.Sender, error) {
	msg, err := core.TransactionToMessage(tx, e.signer, h.BaseFee)
	if err != nil {
		return nil, system.Sender{}, err
	}
	// Permissions are part of block validity: a block that carries a
	// transaction its sender may not send, or with an authorization its
	// authority may not give, is invalid, whoever built it. These are the
	// checks of the pool (system.State.CheckTransaction), on the state
	// this transaction runs on.
	sender, err := sys.CheckSender(msg.From, msg.To)
	if err != nil {
		return nil, sender, err
	}
	if sender.Node {
		if err := system.CheckNodeCall(msg.From, tx); err != nil {
			return nil, sender, err
		}
	} else if tx.Type() == types.SetCodeTxType {
		if err := sys.CheckAuthorizations(msg.SetCodeAuthorizations); err != nil {
			return nil, sender, err
		}
	}
	return msg, sender, nil
}

// receiptsOutcome is the receipts root and logs bloom of a block with
// these receipts, as types.NewBlock computes them.
func receiptsOutcome(receipts types.Receipts) (common.Hash, types.Bloom) {
	if len(receipts) == 0 {
		return types.EmptyReceiptsHash, types.Bloom{}
	}
	return types.DeriveSha(receipts, trie.NewStackTrie(nil)), types.MergeBloom(receipts)
}

// seal fills the execution-dependent header fields and assembles the block.
func (e *Executor) seal(h *types.Header, st *state.StateDB, txs types.Transactions, receipts types.Receipts, gp *core.GasPool) *types.Block {
	h.GasUsed = gp.Used()
	h.Root = st.IntermediateRoot(e.config.Rules(h.Number, true, h.Time))
	return types.NewBlock(h, &types.Body{Transactions: txs, Withdrawals: []*types.Withdrawal{}}, receipts, trie.NewStackTrie(nil))
}
