package privstate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/bitutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/privacy/privtx"
	"github.com/charter-ledger/charter/internal/system"
)

// Tx is one private transaction a public block carries for a group.
type Tx struct {
	// Raw is the private transaction as its payload carried it: the
	// privtx encoding, signed. Bytes that do not decode are rejected.
	Raw []byte
	// Marker is the hash of the public marker transaction that ordered it.
	Marker common.Hash
	// Reject, when not empty, is why the caller refuses the transaction
	// (a check against public state, e.g. a sender that is not an account
	// of the marker's organization): it gets a rejected receipt with this
	// reason, cut at MaxReasonBytes, and changes nothing.
	Reject string
	// Sender, when not zero, is the sender the caller recovered from Raw's
	// signature with the chain's id (it checked it already); zero: the
	// store recovers it. It saves a second signature recovery per
	// transaction.
	Sender common.Address
}

// BlockResult is what one public block did to one group's private state.
type BlockResult struct {
	Number     uint64      // the public block
	Hash       common.Hash // the public block
	ParentRoot common.Hash // the group's private state root before it
	Root       common.Hash // and after it
	// Receipts are one per transaction passed, in order, with every
	// derived field filled; a rejected transaction has a failed receipt
	// with no gas used and its reason. They are shared with the store's
	// readers: the caller copies what it changes.
	Receipts []*Receipt
	// Replayed is true when the block had been applied before: nothing
	// was executed, the result is the one recorded then.
	Replayed bool
}

// Receipt is a private receipt: go-ethereum's receipt with its derived
// fields, and what Besu's priv_getTransactionReceipt adds.
//
// Receipt.TxHash is the private transaction hash (privtx's Hash:
// keccak256 of the encoding, which is keccak256 of Tx.Raw), also for
// bytes that do not decode; Type is always 0.
type Receipt struct {
	*types.Receipt
	Marker common.Hash     // the public marker transaction that ordered it
	From   common.Address  // zero when the signature recovers no sender
	To     *common.Address // nil for a creation, and for bytes that do not decode
	// Output is the return data, the revert data of a reverted
	// transaction; cut at MaxOutputBytes.
	Output []byte
	// Rejected says why the transaction was not executed (it changed
	// nothing, not even its sender's nonce); "" when it ran.
	Rejected string
}

// ApplyBlock executes the private transactions of group that the public
// block header carries, in marker order, on the group's private state at
// the last block applied to it (empty before the first), and commits the
// result: state, receipts, logs, transactions, markers and the block's
// root record, made durable together before it returns.
//
// Blocks are applied in increasing height; heights in between (blocks with
// nothing of the group) keep the state as it was. Applying a block again
// (a replay after a crash) executes nothing and returns the result
// recorded the first time (Replayed), or ErrConflict if header is another
// block of that height. A block below the last applied one that was never
// applied is ErrOutOfOrder.
//
// A transaction that cannot run is rejected, deterministically on every
// member node, and the others run. The reasons, in the order checked: the
// caller's Reject, past MaxPrivateTxsPerBlock, over MaxPrivateTxBytes,
// bytes that privtx.Decode refuses, a restriction other than
// "restricted", a signature that recovers no sender for the chain's id, a
// gas limit above the chain's, a value transfer, then what go-ethereum
// refuses (a nonce that is not its sender's next, intrinsic gas, gas
// beyond what the block gas limit leaves). An error means nothing was
// committed: the group's store failed, or the call itself is wrong.
func (s *Store) ApplyBlock(group common.Hash, header *types.Header, txs []Tx) (*BlockResult, error) {
	if header == nil || header.Number == nil || !header.Number.IsUint64() {
		return nil, errors.New("private state: ApplyBlock needs the header of a committed public block")
	}
	if len(txs) > MaxRecordedTxsPerBlock {
		return nil, fmt.Errorf("%w: %d private transactions for group %s in block %d, above MaxRecordedTxsPerBlock %d",
			ErrTooMany, len(txs), group.Hex(), header.Number.Uint64(), MaxRecordedTxsPerBlock)
	}
	h, err := s.acquire(group, true)
	if err != nil {
		return nil, err
	}
	defer s.release(h)
	h.write.Lock()
	defer h.write.Unlock()

	number, hash := header.Number.Uint64(), header.Hash()
	head, applied, err := h.head()
	if err != nil {
		return nil, err
	}
	if applied && number <= head.Number {
		return s.replayed(h, number, hash, head.Number)
	}
	st, err := state.New(head.Root, h.sdb)
	if err != nil {
		return nil, fmt.Errorf("%w: group %s: state %s of block %d: %v", ErrCorrupt, group.Hex(), head.Root.TerminalString(), head.Number, err)
	}
	rec, decoded, root, bloom := s.execute(st, header, txs)
	blockRLP, err := rlp.EncodeToBytes(rec)
	if err != nil {
		return nil, fmt.Errorf("private state: encode block record %d: %w", number, err)
	}
	if err := s.commit(h, number, hash, head.Root, root, bloom, blockRLP, rec, st, header); err != nil {
		return nil, err
	}
	// The receipts are derived from the record as written, exactly as a
	// replay or a later read derives them.
	stored, err := decodeBlockRecord(blockRLP)
	if err != nil {
		return nil, fmt.Errorf("%w: group %s: block %d: %v", ErrCorrupt, group.Hex(), number, err)
	}
	receipts, err := s.derive(stored, decoded, number, hash)
	if err != nil {
		return nil, fmt.Errorf("%w: group %s: block %d: %v", ErrCorrupt, group.Hex(), number, err)
	}
	// The receipts and logs of a block just applied are what clients ask
	// for next (a log filter's poll, a receipt per transaction): they
	// read these instead of decoding the record again.
	h.recent.put(recentBlock{number: number, rec: stored, receipts: receipts})
	return &BlockResult{Number: number, Hash: hash, ParentRoot: head.Root, Root: root, Receipts: receipts}, nil
}

// replayed answers ApplyBlock for a block at or below the group's head.
func (s *Store) replayed(h *handle, number uint64, hash common.Hash, headNumber uint64) (*BlockResult, error) {
	rr, ok, err := h.rootRecord(number)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: block %d, group %s applied up to block %d", ErrOutOfOrder, number, h.id.Hex(), headNumber)
	}
	if rr.Hash != hash {
		return nil, fmt.Errorf("%w: group %s: block %d is %s, applied was %s", ErrConflict, h.id.Hex(), number, hash.TerminalString(), rr.Hash.TerminalString())
	}
	br, err := h.blockRecord(number)
	if err != nil {
		return nil, err
	}
	txs, err := br.decodeTxs()
	if err != nil {
		return nil, fmt.Errorf("%w: group %s: block %d: %v", ErrCorrupt, h.id.Hex(), number, err)
	}
	receipts, err := s.derive(br, txs, number, hash)
	if err != nil {
		return nil, fmt.Errorf("%w: group %s: block %d: %v", ErrCorrupt, h.id.Hex(), number, err)
	}
	return &BlockResult{Number: number, Hash: hash, ParentRoot: rr.ParentRoot, Root: rr.Root, Receipts: receipts, Replayed: true}, nil
}

// newEVM makes the EVM of private execution for a public block on st.
//
// What differs from public execution, and why:
//   - no fees: the block context's base fee is 0 and vm.Config.NoBaseFee
//     is set, and every message runs with gas price, fee cap and tip 0.
//     Private accounts hold no ether (the private state begins empty and
//     nothing mints in it), the marker transaction pays on the public
//     chain; the private transaction's gas limit still bounds its work.
//     BASEFEE reads 0.
//   - no system contracts: the registry and governance are public state.
//     Their addresses are precompiles that revert every frame, so that a
//     private contract cannot reach them (and a call to them fails instead
//     of succeeding on an empty account).
//   - no permission guard: who may send to the group is decided before
//     (the sender's organization is a member); no account of private
//     state is ever frozen or needs a role.
func (s *Store) newEVM(header *types.Header, st vm.StateDB) *vm.EVM {
	ctx := s.exec.BlockContext(header)
	ctx.BaseFee = new(big.Int)
	evm := vm.NewEVM(ctx, st, s.exec.Config(), vm.Config{NoBaseFee: true})
	pcs := vm.ActivePrecompiledContracts(s.rules(header))
	for _, a := range []common.Address{system.RegistryAddress, system.GovernanceAddress} {
		pcs[a] = unreachable{a}
	}
	evm.SetPrecompiles(pcs)
	return evm
}

// unreachable stands at a system contract's address in private execution.
type unreachable struct{ addr common.Address }

func (unreachable) RequiredGas([]byte) uint64 { return 0 }
func (unreachable) Name() string              { return "CHARTER_PRIVATE_UNREACHABLE" }
func (unreachable) Run([]byte) ([]byte, error) {
	return nil, vm.ErrExecutionReverted
}

// freeMessage takes the fees out of a message: private gas costs nothing.
func freeMessage(msg *core.Message) {
	msg.GasPrice, msg.GasFeeCap, msg.GasTipCap = new(uint256.Int), new(uint256.Int), new(uint256.Int)
}

// execute runs txs on st and returns the block record, the decoded
// private transactions (nil for bytes that do not decode), the new root
// and the block's bloom. st is left with the block's changes finalised.
func (s *Store) execute(st *state.StateDB, header *types.Header, txs []Tx) (*blockRecord, []*privtx.Tx, common.Hash, types.Bloom) {
	var (
		evm     = s.newEVM(header, st)
		gp      = core.NewGasPool(header.GasLimit)
		rules   = s.rules(header)
		rec     = &blockRecord{Time: header.Time}
		decoded = make([]*privtx.Tx, len(txs))
		bloom   types.Bloom
		blooms  = bloomMemo{}
	)
	for i, tx := range txs {
		receipt, ptx, extra := s.applyTx(evm, st, gp, header, tx, i)
		decoded[i] = ptx
		if extra.Rejected != "" {
			receipt = &types.Receipt{Type: types.LegacyTxType, Status: types.ReceiptStatusFailed, CumulativeGasUsed: gp.CumulativeUsed(), Logs: []*types.Log{}}
		} else {
			st.Finalise(rules)
		}
		blooms.addLogs(&bloom, receipt.Logs) // the receipt's own bloom is derived on reading
		raw := tx.Raw
		if len(raw) > MaxPrivateTxBytes {
			raw = nil // rejected for its size; its hash is kept in extra
		}
		rec.Txs = append(rec.Txs, raw)
		rec.Markers = append(rec.Markers, tx.Marker)
		rec.Receipts = append(rec.Receipts, (*types.ReceiptForStorage)(receipt))
		rec.Extras = append(rec.Extras, extra)
	}
	root := st.IntermediateRoot(rules)
	return rec, decoded, root, bloom
}

// bloomMemo makes logs' blooms as types.CreateBloom does, hashing each
// distinct address and topic once: the logs of a block repeat a few of
// them (a token's address, its event's signature, its holders), and the
// three keccak256 of every log were most of a private block's blooms.
type bloomMemo map[string]*types.Bloom

// maxBloomMemo bounds a memo's entries (one block's or one derivation's
// distinct addresses and topics); beyond, values are hashed each time.
const maxBloomMemo = 4096

// addLogs adds the addresses and topics of logs to b.
func (m bloomMemo) addLogs(b *types.Bloom, logs []*types.Log) {
	for _, l := range logs {
		m.add(b, l.Address[:])
		for k := range l.Topics {
			m.add(b, l.Topics[k][:])
		}
	}
}

func (m bloomMemo) add(b *types.Bloom, data []byte) {
	v, ok := m[string(data)]
	if !ok {
		v = new(types.Bloom)
		v.Add(data)
		if len(m) < maxBloomMemo {
			m[string(data)] = v
		}
	}
	bitutil.ORBytes(b[:], b[:], v[:])
}

// reason cuts a rejection reason at MaxReasonBytes, on a character
// boundary.
func reason(r string) string {
	if len(r) <= MaxReasonBytes {
		return r
	}
	return strings.ToValidUTF8(r[:MaxReasonBytes], "")
}

// applyTx runs one private transaction, or rejects it (the state as it
// was before). A rejection is returned in extra.Rejected. ptx is the
// decoded transaction, nil when the bytes do not decode.
func (s *Store) applyTx(evm *vm.EVM, st *state.StateDB, gp *core.GasPool, header *types.Header, tx Tx, index int) (receipt *types.Receipt, ptx *privtx.Tx, extra txExtra) {
	extra.Hash = crypto.Keccak256Hash(tx.Raw)
	reject := func(format string, args ...any) (*types.Receipt, *privtx.Tx, txExtra) {
		extra.Rejected = reason(fmt.Sprintf(format, args...))
		return nil, ptx, extra
	}
	var decodeErr, senderErr error
	if len(tx.Raw) <= MaxPrivateTxBytes {
		ptx, decodeErr = privtx.Decode(tx.Raw)
		switch {
		case decodeErr == nil && tx.Sender != (common.Address{}):
			extra.From = tx.Sender
		case decodeErr == nil:
			extra.From, senderErr = ptx.Sender(s.exec.Config().ChainID)
		}
	}
	switch {
	case tx.Reject != "":
		return reject("%s", tx.Reject)
	case index >= MaxPrivateTxsPerBlock:
		return reject("private transaction %d of the block for the group, above MaxPrivateTxsPerBlock %d", index+1, MaxPrivateTxsPerBlock)
	case len(tx.Raw) > MaxPrivateTxBytes:
		return reject("private transaction of %d bytes, above MaxPrivateTxBytes %d", len(tx.Raw), MaxPrivateTxBytes)
	case decodeErr != nil:
		return reject("%v", decodeErr)
	case ptx.Restriction != privtx.Restricted:
		return reject("restriction %q: private execution runs only %q transactions", ptx.Restriction, privtx.Restricted)
	case senderErr != nil:
		return reject("%v", senderErr)
	case ptx.Gas > uint64(s.spec.TxGasLimit):
		return reject("gas limit %d above the chain's per-transaction limit %d", ptx.Gas, uint64(s.spec.TxGasLimit))
	case ptx.Value.Sign() != 0:
		return reject("value %s: private accounts hold no ether, a private transaction sends none", ptx.Value)
	}
	legacy := ptx.Legacy()
	msg := &core.Message{
		From:     extra.From,
		To:       legacy.To,
		Nonce:    legacy.Nonce,
		Value:    new(uint256.Int),
		GasLimit: legacy.Gas,
		Data:     legacy.Data,
	}
	freeMessage(msg)
	snap, gpSnap := st.Snapshot(), gp.Snapshot()
	// The logs are kept under the private hash: two senders' transactions
	// with the same fields have the same unsigned legacy hash.
	st.SetTxContext(extra.Hash, index, uint32(index+1))
	res, err := core.ApplyMessage(evm, msg, gp)
	if err != nil {
		st.RevertToSnapshot(snap)
		gp.Set(gpSnap)
		return reject("%v", err)
	}
	extra.Output = res.ReturnData
	if len(extra.Output) > MaxOutputBytes {
		extra.Output = extra.Output[:MaxOutputBytes]
	}
	// go-ethereum's receipt takes a *types.Transaction: the unsigned
	// legacy one gives it type, recipient and nonce; the hash and the
	// logs are the private transaction's.
	receipt = core.MakeReceipt(evm, res, st, header.Number, common.Hash{}, header.Time, types.NewTx(legacy), gp.CumulativeUsed(), nil)
	receipt.TxHash = extra.Hash
	receipt.Logs = st.GetLogs(extra.Hash, header.Number.Uint64(), common.Hash{}, header.Time)
	return receipt, ptx, extra
}

// commit writes the block's state, then its records in one batch whose
// last write is the head record, then syncs once. The trie nodes and code
// written first are content-addressed: without the records that follow
// they are unreachable, and pebble's write-ahead log is in order, so that
// the sync that makes the head record durable makes them durable too. A
// crash before the sync leaves the group at its previous block.
func (s *Store) commit(h *handle, number uint64, hash, parentRoot, root common.Hash, bloom types.Bloom, blockRLP []byte, rec *blockRecord, st *state.StateDB, header *types.Header) error {
	got, err := st.Commit(s.rules(header), number)
	if err != nil {
		return fmt.Errorf("private state: group %s: commit state of block %d: %w", h.id.Hex(), number, err)
	}
	if got != root {
		return fmt.Errorf("%w: group %s: block %d: committed root %s, computed %s", ErrCorrupt, h.id.Hex(), number, got.TerminalString(), root.TerminalString())
	}
	if err := h.tdb.Commit(root, false); err != nil {
		return fmt.Errorf("private state: group %s: flush state of block %d: %w", h.id.Hex(), number, err)
	}
	if err := s.fail("after-state"); err != nil {
		return err
	}
	rootRLP, _ := rlp.EncodeToBytes(&rootRecord{Hash: hash, Root: root, ParentRoot: parentRoot, Bloom: bloom})
	headRLP, _ := rlp.EncodeToBytes(&headRecord{Number: number, Hash: hash, Root: root})
	batch := h.kv.NewBatchWithSize(len(blockRLP) + len(rootRLP) + len(headRLP) + 2*64*len(rec.Extras) + 128)
	put := func(k, v []byte) {
		if err == nil {
			err = batch.Put(k, v)
		}
	}
	put(numKey(prefBlock, number), blockRLP)
	put(numKey(prefRoot, number), rootRLP)
	// The first of a transaction's appearances answers for it: a copy
	// sent again is rejected (its nonce is spent) and must not hide it.
	// Markers are public transaction hashes, unique on the chain; the
	// same rule holds for them.
	for _, index := range []struct {
		prefix []byte
		hashes func(i int) common.Hash
	}{
		{prefTx, func(i int) common.Hash { return rec.Extras[i].Hash }},
		{prefMarker, func(i int) common.Hash { return rec.Markers[i] }},
	} {
		seen := make(map[common.Hash]bool, len(rec.Extras))
		for i := range rec.Extras {
			th := index.hashes(i)
			if seen[th] {
				continue
			}
			seen[th] = true
			k := key(index.prefix, th[:])
			has, herr := h.kv.Has(k)
			if herr != nil {
				return fmt.Errorf("private state: group %s: read transaction lookup: %w", h.id.Hex(), herr)
			}
			if !has {
				put(k, binary12(number, i))
			}
		}
	}
	put(keyHead, headRLP)
	if err != nil {
		return fmt.Errorf("private state: group %s: stage block %d: %w", h.id.Hex(), number, err)
	}
	if err := batch.Write(); err != nil {
		return fmt.Errorf("private state: group %s: write block %d: %w", h.id.Hex(), number, err)
	}
	h.headCache.Store(&headRecord{Number: number, Hash: hash, Root: root})
	if err := s.fail("before-sync"); err != nil {
		return err
	}
	// The payloads kept without a sync (KeepPayload) are made durable
	// with the group's block, as when they shared its database, and
	// before it: a block whose head record survives a crash has its
	// payloads (the applier kept them before applying it), which this
	// node serves to the members that fetch them.
	if err := h.pay.sync(); err != nil {
		return fmt.Errorf("private state: group %s: sync payloads with block %d: %w", h.id.Hex(), number, err)
	}
	if err := h.kv.SyncKeyValue(); err != nil {
		return fmt.Errorf("private state: group %s: sync block %d: %w", h.id.Hex(), number, err)
	}
	return s.fail("after-sync")
}

func binary12(number uint64, index int) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, number), uint32(index))
}

// derive fills the derived fields of a block's receipts, as
// types.Receipts.DeriveFields does, from what the store keeps: the
// record, and the transactions decoded from it (decodeTxs: nil for bytes
// that do not decode).
func (s *Store) derive(rec *blockRecord, txs []*privtx.Tx, number uint64, hash common.Hash) ([]*Receipt, error) {
	if len(txs) != len(rec.Receipts) || len(rec.Extras) != len(txs) || len(rec.Markers) != len(txs) {
		return nil, fmt.Errorf("%d transactions, %d receipts, %d extras, %d markers", len(txs), len(rec.Receipts), len(rec.Extras), len(rec.Markers))
	}
	out := make([]*Receipt, len(txs))
	var cumulative uint64
	logIndex := uint(0)
	blooms := bloomMemo{}
	for i, tx := range txs {
		x := rec.Extras[i]
		r := new(types.Receipt)
		*r = types.Receipt(*rec.Receipts[i])
		r.Type = types.LegacyTxType
		r.TxHash = x.Hash
		r.GasUsed = r.CumulativeGasUsed - cumulative
		cumulative = r.CumulativeGasUsed
		r.EffectiveGasPrice = new(big.Int)
		r.BlockHash, r.BlockNumber, r.TransactionIndex = hash, new(big.Int).SetUint64(number), uint(i)
		var to *common.Address
		if tx != nil && tx.To != nil {
			a := *tx.To
			to = &a
		}
		if tx != nil && tx.To == nil && x.Rejected == "" {
			r.ContractAddress = crypto.CreateAddress(x.From, tx.Nonce)
		}
		logs := make([]*types.Log, len(r.Logs))
		for j, l := range r.Logs {
			c := *l
			c.BlockNumber, c.BlockHash, c.BlockTimestamp = number, hash, rec.Time
			c.TxHash, c.TxIndex, c.Index = r.TxHash, uint(i), logIndex
			logIndex++
			logs[j] = &c
		}
		r.Logs = logs
		r.Bloom = types.Bloom{}
		blooms.addLogs(&r.Bloom, logs)
		out[i] = &Receipt{Receipt: r, Marker: rec.Markers[i], From: x.From, To: to, Output: x.Output, Rejected: x.Rejected}
	}
	return out, nil
}
