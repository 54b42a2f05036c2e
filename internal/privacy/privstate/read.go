package privstate

import (
	"context"
	"fmt"
	"math"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/privacy/privtx"
)

// Every read below answers ErrPurged for a purged group and
// ErrUnknownGroup for a group this node holds nothing of; neither creates
// anything on disk.

// Head is the last public block applied to group and the private state
// root after it; number 0 with the empty root when none was (the group
// only has payloads so far).
func (s *Store) Head(group common.Hash) (number uint64, root common.Hash, err error) {
	err = s.read(group, func(h *handle) error {
		head, _, err := h.head()
		number, root = head.Number, head.Root
		return err
	})
	return number, root, err
}

// PrivateRoot is group's private state root after public block number
// (Latest: the newest): the root after the last block at or below number
// that carried the group's transactions, the empty root before the first.
// Member nodes that applied the same blocks give the same root.
func (s *Store) PrivateRoot(group common.Hash, number uint64) (root common.Hash, err error) {
	err = s.read(group, func(h *handle) error {
		root, err = h.rootAt(number)
		return err
	})
	return root, err
}

// rootAt finds the root after block number: the head's at or above the
// head; below it, the first root record at or after number holds the
// root before its block (ParentRoot), which is the root at number unless
// the record is number's own.
func (h *handle) rootAt(number uint64) (common.Hash, error) {
	head, applied, err := h.head()
	if err != nil {
		return common.Hash{}, err
	}
	if !applied || number >= head.Number {
		return head.Root, nil
	}
	it := h.kv.NewIterator(prefRoot, numKey(nil, number))
	defer it.Release()
	if !it.Next() {
		if err := it.Error(); err != nil {
			return common.Hash{}, fmt.Errorf("%w: group %s: root records: %v", ErrCorrupt, h.id.Hex(), err)
		}
		return common.Hash{}, fmt.Errorf("%w: group %s: no root record at or after block %d below head %d", ErrCorrupt, h.id.Hex(), number, head.Number)
	}
	k := it.Key()
	rec, err := decodeRootRecord(it.Value())
	if err != nil || len(k) != len(prefRoot)+8 {
		return common.Hash{}, fmt.Errorf("%w: group %s: root record %x: %v", ErrCorrupt, h.id.Hex(), k, err)
	}
	if numberOf(k) == number {
		return rec.Root, nil
	}
	return rec.ParentRoot, nil
}

func numberOf(k []byte) uint64 {
	var n uint64
	for _, b := range k[len(k)-8:] {
		n = n<<8 | uint64(b)
	}
	return n
}

// read runs fn with a reference to an existing group's handle.
func (s *Store) read(group common.Hash, fn func(h *handle) error) error {
	h, err := s.acquire(group, false)
	if err != nil {
		return err
	}
	defer s.release(h)
	return fn(h)
}

// View runs fn on group's private state after public block number
// (Latest: the newest). st is fn's own: it may be changed (a call), and
// nothing is written back. fn must not call the Store: the group's
// database stays open for it until it returns.
func (s *Store) View(group common.Hash, number uint64, fn func(st *state.StateDB) error) error {
	return s.read(group, func(h *handle) error {
		root, err := h.rootAt(number)
		if err != nil {
			return err
		}
		st, err := state.New(root, h.sdb)
		if err != nil {
			return fmt.Errorf("%w: group %s: state %s: %v", ErrCorrupt, group.Hex(), root.TerminalString(), err)
		}
		return fn(st)
	})
}

// Nonce is the next nonce of addr in group's newest private state
// (priv_getTransactionCount). A member node that holds nothing of the
// group yet gets ErrUnknownGroup, which means 0.
func (s *Store) Nonce(group common.Hash, addr common.Address) (nonce uint64, err error) {
	err = s.read(group, func(h *handle) error {
		head, _, err := h.head()
		if err != nil {
			return err
		}
		if n, ok := h.nonces.get(head.Root, addr); ok {
			nonce = n
			return nil
		}
		st, err := state.New(head.Root, h.sdb)
		if err != nil {
			return fmt.Errorf("%w: group %s: state %s: %v", ErrCorrupt, group.Hex(), head.Root.TerminalString(), err)
		}
		nonce = st.GetNonce(addr)
		h.nonces.put(head.Root, addr, nonce)
		return nil
	})
	return nonce, err
}

// Code is the code at addr in group's private state after public block
// number (priv_getCode).
func (s *Store) Code(group common.Hash, number uint64, addr common.Address) (code []byte, err error) {
	err = s.View(group, number, func(st *state.StateDB) error {
		code = st.GetCode(addr)
		return nil
	})
	return code, err
}

// Call runs msg on group's private state after the public block header,
// in that block's context, as private execution runs a transaction (no
// fees, no system contracts), without keeping anything (priv_call). As
// eth_call, it skips the nonce and sender checks; a gas limit of 0 means
// the chain's per-transaction limit.
func (s *Store) Call(ctx context.Context, group common.Hash, header *types.Header, msg *core.Message) (*core.ExecutionResult, error) {
	if header == nil || header.Number == nil || !header.Number.IsUint64() {
		return nil, fmt.Errorf("private state: Call needs a public block header")
	}
	m := *msg
	if m.GasLimit == 0 || m.GasLimit > uint64(s.spec.TxGasLimit) {
		m.GasLimit = uint64(s.spec.TxGasLimit)
	}
	if m.Value == nil {
		m.Value = new(uint256.Int)
	}
	freeMessage(&m)
	m.SkipNonceCheck().SkipEOACheck().SkipGasLimitCapCheck()
	var res *core.ExecutionResult
	err := s.View(group, header.Number.Uint64(), func(st *state.StateDB) error {
		evm := s.newEVM(header, st)
		stop := context.AfterFunc(ctx, evm.Cancel)
		defer stop()
		st.SetTxContext(common.Hash{}, 0, 0)
		var err error
		res, err = core.ApplyMessage(evm, &m, core.NewGasPool(math.MaxUint64))
		if err != nil {
			return err
		}
		if evm.Cancelled() {
			return fmt.Errorf("private call aborted: %w", ctx.Err())
		}
		return nil
	})
	return res, err
}

// Receipt is the private receipt of a transaction executed (or rejected)
// for group, by its private transaction hash (priv_getTransactionReceipt);
// ErrNotFound if none. A hash that several transactions share (a copy
// sent again) answers for the first. Receipts are shared with other
// callers: do not modify them.
func (s *Store) Receipt(group common.Hash, txHash common.Hash) (receipt *Receipt, err error) {
	err = s.read(group, func(h *handle) error {
		receipt, err = s.receipt(h, prefTx, "transaction", txHash)
		return err
	})
	return receipt, err
}

// ReceiptByMarker is the private receipt of the private transaction that
// the public marker transaction marker ordered; ErrNotFound if none.
func (s *Store) ReceiptByMarker(group common.Hash, marker common.Hash) (receipt *Receipt, err error) {
	err = s.read(group, func(h *handle) error {
		receipt, err = s.receipt(h, prefMarker, "marker", marker)
		return err
	})
	return receipt, err
}

func (s *Store) receipt(h *handle, prefix []byte, what string, hash common.Hash) (*Receipt, error) {
	br, number, blockHash, index, err := s.lookup(h, prefix, what, hash)
	if err != nil {
		return nil, err
	}
	receipts, err := s.blockReceipts(h, br, number, blockHash)
	if err != nil {
		return nil, err
	}
	return receipts[index], nil
}

// blockReceipts are the receipts of block record br (public block number
// and hash), derived once and kept with the group's recent blocks. They
// are shared: callers copy what they change.
func (s *Store) blockReceipts(h *handle, br *blockRecord, number uint64, blockHash common.Hash) ([]*Receipt, error) {
	if e, ok := h.recent.get(number); ok && e.rec == br && e.receipts != nil {
		return e.receipts, nil
	}
	txs, err := br.decodeTxs()
	if err != nil {
		return nil, fmt.Errorf("%w: group %s: block %d: %v", ErrCorrupt, h.id.Hex(), number, err)
	}
	receipts, err := s.derive(br, txs, number, blockHash)
	if err != nil {
		return nil, fmt.Errorf("%w: group %s: block %d: %v", ErrCorrupt, h.id.Hex(), number, err)
	}
	h.recent.put(recentBlock{number: number, rec: br, receipts: receipts})
	return receipts, nil
}

// Transaction is a private transaction the group executed (or rejected),
// by its private transaction hash, with its public block and index
// (priv_getPrivateTransaction). ErrNotFound if none, and for bytes that
// were rejected because they do not decode (they have a receipt only).
func (s *Store) Transaction(group common.Hash, txHash common.Hash) (tx *privtx.Tx, number uint64, index int, err error) {
	err = s.read(group, func(h *handle) error {
		tx, number, _, index, err = s.transaction(h, prefTx, "transaction", txHash)
		return err
	})
	return tx, number, index, err
}

// TransactionByMarker is the private transaction that the public marker
// transaction marker ordered, with its public block (number and hash) and
// its index among the group's transactions of that block. ErrNotFound if
// none, and for bytes that do not decode (they have a receipt only).
func (s *Store) TransactionByMarker(group common.Hash, marker common.Hash) (tx *privtx.Tx, number uint64, blockHash common.Hash, index int, err error) {
	err = s.read(group, func(h *handle) error {
		tx, number, blockHash, index, err = s.transaction(h, prefMarker, "marker", marker)
		return err
	})
	return tx, number, blockHash, index, err
}

func (s *Store) transaction(h *handle, prefix []byte, what string, hash common.Hash) (*privtx.Tx, uint64, common.Hash, int, error) {
	br, number, blockHash, index, err := s.lookup(h, prefix, what, hash)
	if err != nil {
		return nil, 0, common.Hash{}, 0, err
	}
	tx, err := privtx.Decode(br.Txs[index])
	if err != nil {
		if br.Extras[index].Rejected == "" {
			return nil, 0, common.Hash{}, 0, fmt.Errorf("%w: group %s: %s %s: transaction ran, and does not decode: %v", ErrCorrupt, h.id.Hex(), what, hash.Hex(), err)
		}
		return nil, 0, common.Hash{}, 0, fmt.Errorf("%w: %s %s in group %s was rejected: %s", ErrNotFound, what, hash.Hex(), h.id.Hex(), br.Extras[index].Rejected)
	}
	return tx, number, blockHash, index, nil
}

// lookup finds the block record of a transaction, by the lookup key
// prefix (prefTx, prefMarker) and hash, and its index in it.
func (s *Store) lookup(h *handle, prefix []byte, what string, hash common.Hash) (br *blockRecord, number uint64, blockHash common.Hash, index int, err error) {
	raw, ok, err := h.getOptional(key(prefix, hash[:]))
	if err != nil {
		return nil, 0, blockHash, 0, fmt.Errorf("%w: group %s: %s lookup: %v", ErrCorrupt, h.id.Hex(), what, err)
	}
	if !ok {
		return nil, 0, blockHash, 0, fmt.Errorf("%w: %s %s in group %s", ErrNotFound, what, hash.Hex(), h.id.Hex())
	}
	number, index, err = decodeTxLookup(raw)
	if err != nil {
		return nil, 0, blockHash, 0, fmt.Errorf("%w: group %s: %s %s: %v", ErrCorrupt, h.id.Hex(), what, hash.Hex(), err)
	}
	rr, ok, err := h.rootRecord(number)
	if err != nil || !ok {
		return nil, 0, blockHash, 0, fmt.Errorf("%w: group %s: root record of block %d of %s %s missing (%v)", ErrCorrupt, h.id.Hex(), number, what, hash.Hex(), err)
	}
	br, err = h.blockRecord(number)
	if err != nil {
		return nil, 0, blockHash, 0, err
	}
	if index >= len(br.Txs) {
		return nil, 0, blockHash, 0, fmt.Errorf("%w: group %s: %s %s at index %d of block %d, which has %d", ErrCorrupt, h.id.Hex(), what, hash.Hex(), index, number, len(br.Txs))
	}
	return br, number, rr.Hash, index, nil
}

// LogQuery selects private logs, as eth_getLogs does: public blocks From
// to To (Latest: the group's newest), any of Addresses (none: all), and
// per position any of Topics[i] (empty: any).
type LogQuery struct {
	From, To  uint64
	Addresses []common.Address
	Topics    [][]common.Hash
	// ByMarker names, as each log's TxHash, the public marker transaction
	// that ordered its private transaction (as Besu's private logs do)
	// instead of the private transaction's own hash.
	ByMarker bool
}

// Logs returns group's private logs that q selects, in block and log
// order (priv_getLogs). A query spanning more than MaxLogRange blocks, or
// that would return more than MaxLogsPerQuery logs, fails with
// ErrTooMany.
func (s *Store) Logs(group common.Hash, q LogQuery) (logs []*types.Log, err error) {
	err = s.read(group, func(h *handle) error {
		head, _, err := h.head()
		if err != nil {
			return err
		}
		to := q.To
		if to == Latest || to > head.Number {
			to = head.Number
		}
		if q.From > to {
			logs = []*types.Log{}
			return nil
		}
		if q.To != Latest && q.To-q.From+1 > MaxLogRange {
			return fmt.Errorf("%w: the query spans %d blocks, above MaxLogRange %d", ErrTooMany, q.To-q.From+1, MaxLogRange)
		}
		if to-q.From+1 > MaxLogRange {
			return fmt.Errorf("%w: the query spans %d blocks (to the newest), above MaxLogRange %d", ErrTooMany, to-q.From+1, MaxLogRange)
		}
		logs, err = s.logs(h, q, to)
		return err
	})
	return logs, err
}

func (s *Store) logs(h *handle, q LogQuery, to uint64) ([]*types.Log, error) {
	out := []*types.Log{}
	it := h.kv.NewIterator(prefRoot, numKey(nil, q.From))
	defer it.Release()
	for it.Next() {
		k := it.Key()
		if len(k) != len(prefRoot)+8 {
			return nil, fmt.Errorf("%w: group %s: root record key %x", ErrCorrupt, h.id.Hex(), k)
		}
		number := numberOf(k)
		if number > to {
			break
		}
		rr, err := decodeRootRecord(it.Value())
		if err != nil {
			return nil, fmt.Errorf("%w: group %s: root record of block %d: %v", ErrCorrupt, h.id.Hex(), number, err)
		}
		if !bloomMatches(rr.Bloom, q) {
			continue
		}
		br, err := h.blockRecord(number)
		if err != nil {
			return nil, err
		}
		receipts, err := s.blockReceipts(h, br, number, rr.Hash)
		if err != nil {
			return nil, err
		}
		for _, r := range receipts {
			for _, l := range r.Logs {
				if !logMatches(l, q) {
					continue
				}
				if len(out) == MaxLogsPerQuery {
					return nil, fmt.Errorf("%w: more than MaxLogsPerQuery %d logs match; narrow the block range or the filter", ErrTooMany, MaxLogsPerQuery)
				}
				c := *l // the receipts are shared
				if q.ByMarker {
					c.TxHash = r.Marker
				}
				out = append(out, &c)
			}
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("%w: group %s: root records: %v", ErrCorrupt, h.id.Hex(), err)
	}
	return out, nil
}

func bloomMatches(b types.Bloom, q LogQuery) bool {
	if len(q.Addresses) > 0 {
		hit := false
		for _, a := range q.Addresses {
			if b.Test(a[:]) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	for _, set := range q.Topics {
		if len(set) == 0 {
			continue
		}
		hit := false
		for _, t := range set {
			if b.Test(t[:]) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func logMatches(l *types.Log, q LogQuery) bool {
	if len(q.Addresses) > 0 {
		hit := false
		for _, a := range q.Addresses {
			if a == l.Address {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	if len(q.Topics) > len(l.Topics) {
		return false
	}
	for i, set := range q.Topics {
		if len(set) == 0 {
			continue
		}
		hit := false
		for _, t := range set {
			if t == l.Topics[i] {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

// PutPayload keeps a payload of group (the encrypted envelope of one
// private transaction) under hash, durably before it returns; the caller
// checked hash against the marker's commitment. It creates the group's
// folder if this node held nothing of the group yet. Concurrent calls
// share their syncs (the sync runs outside the group's write lock).
func (s *Store) PutPayload(group common.Hash, hash common.Hash, payload []byte) error {
	return s.putPayload(group, hash, payload, true, false)
}

// KeepPayload is PutPayload without the sync: for a copy that can be
// fetched again (a payload pushed by its sender's node). The next sync of
// the group (ApplyBlock's, PutPayload's) makes it durable.
func (s *Store) KeepPayload(group common.Hash, hash common.Hash, payload []byte) error {
	return s.putPayload(group, hash, payload, false, false)
}

// KeepSealed is KeepPayload for a payload this node has just sealed: no
// copy of it can be kept yet (its content key is fresh), so the store
// does not look for one.
func (s *Store) KeepSealed(group common.Hash, hash common.Hash, payload []byte) error {
	return s.putPayload(group, hash, payload, false, true)
}

func (s *Store) putPayload(group common.Hash, hash common.Hash, payload []byte, sync, fresh bool) error {
	if len(payload) > MaxPayloadBytes {
		return fmt.Errorf("%w: payload of %d bytes, above MaxPayloadBytes %d", ErrTooMany, len(payload), MaxPayloadBytes)
	}
	h, err := s.acquire(group, true)
	if err != nil {
		return err
	}
	defer s.release(h)
	// Payloads are a database of their own: no need to wait for a block
	// being applied (ApplyBlock holds the group's write lock while it
	// executes).
	if err := h.pay.put(hash, payload, fresh); err != nil {
		return fmt.Errorf("private state: group %s: write payload %s: %w", group.Hex(), hash.Hex(), err)
	}
	if !sync {
		return nil
	}
	if err := h.pay.sync(); err != nil {
		return fmt.Errorf("private state: group %s: sync payload %s: %w", group.Hex(), hash.Hex(), err)
	}
	return nil
}

// Payload is a payload kept by PutPayload; ErrNotFound if none.
func (s *Store) Payload(group common.Hash, hash common.Hash) (payload []byte, err error) {
	err = s.read(group, func(h *handle) error {
		raw, ok, err := h.pay.get(hash)
		if err == nil && !ok {
			// A payload kept by a build before the payload store.
			raw, ok, err = h.getOptional(key(prefPayload, hash[:]))
		}
		switch {
		case err != nil:
			return fmt.Errorf("%w: group %s: payload %s: %v", ErrCorrupt, group.Hex(), hash.Hex(), err)
		case !ok:
			return fmt.Errorf("%w: payload %s in group %s", ErrNotFound, hash.Hex(), group.Hex())
		case len(raw) > MaxPayloadBytes:
			return fmt.Errorf("%w: group %s: payload %s of %d bytes, above MaxPayloadBytes %d", ErrCorrupt, group.Hex(), hash.Hex(), len(raw), MaxPayloadBytes)
		}
		payload = raw
		return nil
	})
	return payload, err
}
