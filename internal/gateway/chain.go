package gateway

import (
	"errors"
	"math/big"
	"net/http"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/system"
	"github.com/charter-ledger/charter/internal/txpool"
)

// BlockSummary is a block as lists show it. Numbers of 64 bits are JSON
// numbers, amounts of 256 bits decimal strings.
type BlockSummary struct {
	Number           uint64 `json:"number"`
	Hash             string `json:"hash"`
	ParentHash       string `json:"parentHash"`
	Timestamp        uint64 `json:"timestamp"`
	Coinbase         string `json:"coinbase"`
	StateRoot        string `json:"stateRoot"`
	TransactionsRoot string `json:"transactionsRoot"`
	ReceiptsRoot     string `json:"receiptsRoot"`
	GasLimit         uint64 `json:"gasLimit"`
	GasUsed          uint64 `json:"gasUsed"`
	BaseFeePerGas    string `json:"baseFeePerGas"`
	Size             uint64 `json:"size"`
	TransactionCount int    `json:"transactionCount"`
	// Finalized: the consensus engine holds the block final.
	Finalized bool `json:"finalized"`
}

// Block is one block with the hashes of its transactions.
type Block struct {
	BlockSummary
	Transactions []string `json:"transactions"`
}

// finalizedNumber is the number of the newest final block.
func (g *Gateway) finalizedNumber() uint64 {
	if h := g.b.FinalizedHeader(); h != nil {
		return h.Number.Uint64()
	}
	return g.b.CurrentHeader().Number.Uint64()
}

func blockSummary(b *types.Block, finalized uint64) BlockSummary {
	fee := "0"
	if b.BaseFee() != nil {
		fee = b.BaseFee().String()
	}
	return BlockSummary{
		Number: b.NumberU64(), Hash: b.Hash().Hex(), ParentHash: b.ParentHash().Hex(), Timestamp: b.Time(),
		Coinbase: b.Coinbase().Hex(), StateRoot: b.Root().Hex(), TransactionsRoot: b.TxHash().Hex(),
		ReceiptsRoot: b.ReceiptHash().Hex(), GasLimit: b.GasLimit(), GasUsed: b.GasUsed(), BaseFeePerGas: fee,
		Size: b.Size(), TransactionCount: len(b.Transactions()), Finalized: b.NumberU64() <= finalized,
	}
}

// listBlocks is GET /blocks: the newest first.
func (g *Gateway) listBlocks(c *call) (*reply, error) {
	q := c.r.URL.Query()
	limit, err := parseLimit(q)
	if err != nil {
		return nil, err
	}
	head := g.b.CurrentHeader().Number.Uint64()
	start, given, err := decodeCursor(q, "blocks")
	if err != nil {
		return nil, err
	}
	if !given || start > head {
		start = head
	}
	fin := g.finalizedNumber()
	items := make([]BlockSummary, 0, limit)
	for n := start; len(items) < limit; n-- {
		b := g.b.BlockByNumber(n)
		if b == nil {
			if err := g.b.BodyKept(n); err != nil {
				if len(items) > 0 {
					break // the page ends where the kept bodies do
				}
				return nil, gone(err)
			}
			return nil, internal("block %d of a chain whose head is %d is missing", n, head)
		}
		items = append(items, blockSummary(b, fin))
		if n == 0 {
			break
		}
	}
	next := ""
	if last := items[len(items)-1].Number; last > 0 {
		next = encodeCursor("blocks", last-1)
	}
	return pageReply(c.r, items, next, limit), nil
}

// blockID reads {block}: a decimal number, a 32-byte hash, latest or
// finalized.
func (g *Gateway) block(field, s string) (*types.Block, error) {
	var b *types.Block
	switch {
	case s == "latest":
		b = g.b.BlockByNumber(g.b.CurrentHeader().Number.Uint64())
	case s == "finalized":
		b = g.b.BlockByNumber(g.finalizedNumber())
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		h, err := parseHash(field, s)
		if err != nil {
			return nil, badInput(field, "want a decimal block number, a 32-byte hex hash, latest or finalized")
		}
		if b = g.b.BlockByHash(h); b == nil {
			if hd := g.b.HeaderByHash(h); hd != nil {
				if err := g.b.BodyKept(hd.Number.Uint64()); err != nil {
					return nil, gone(err)
				}
			}
			return nil, notFound(field, "no block with hash %s", h.Hex())
		}
	default:
		n, err := parseUint64(field, s)
		if err != nil {
			return nil, badInput(field, "want a decimal block number, a 32-byte hex hash, latest or finalized")
		}
		if b = g.b.BlockByNumber(n); b == nil {
			if err := g.b.BodyKept(n); err != nil {
				return nil, gone(err)
			}
			return nil, notFound(field, "no block %d (the head is %d)", n, g.b.CurrentHeader().Number.Uint64())
		}
	}
	if b == nil {
		return nil, internal("block %q is missing", s)
	}
	return b, nil
}

// getBlock is GET /blocks/{block}.
func (g *Gateway) getBlock(c *call) (*reply, error) {
	b, err := g.block("block", c.r.PathValue("block"))
	if err != nil {
		return nil, err
	}
	out := Block{BlockSummary: blockSummary(b, g.finalizedNumber()), Transactions: make([]string, len(b.Transactions()))}
	for i, tx := range b.Transactions() {
		out.Transactions[i] = tx.Hash().Hex()
	}
	return okReply(out), nil
}

// Transaction is a transaction, committed or waiting in the pool.
type Transaction struct {
	Hash    string  `json:"hash"`
	Type    uint8   `json:"type"`
	ChainID string  `json:"chainId"`
	From    string  `json:"from"`
	To      *string `json:"to"` // null: a contract creation
	Nonce   uint64  `json:"nonce"`
	Value   string  `json:"value"`
	Gas     uint64  `json:"gas"`
	// GasPrice is what a committed transaction paid per gas; while it
	// waits, its fee cap.
	GasPrice             string  `json:"gasPrice"`
	MaxFeePerGas         *string `json:"maxFeePerGas,omitempty"`
	MaxPriorityFeePerGas *string `json:"maxPriorityFeePerGas,omitempty"`
	Input                string  `json:"input"`
	// Status is "pending" (in the pool) or "included" (in a block).
	Status      string  `json:"status"`
	BlockNumber *uint64 `json:"blockNumber"`
	BlockHash   *string `json:"blockHash"`
	Index       *uint64 `json:"index"`
}

func hexPtr(a *common.Address) *string {
	if a == nil {
		return nil
	}
	s := a.Hex()
	return &s
}

func decPtr(n *big.Int) *string {
	s := n.String()
	return &s
}

func (g *Gateway) transaction(tx *types.Transaction, blk *types.Block, index int) Transaction {
	from, _ := types.Sender(g.signer, tx)
	chainID := "0"
	if tx.ChainId() != nil {
		chainID = tx.ChainId().String()
	}
	out := Transaction{
		Hash: tx.Hash().Hex(), Type: tx.Type(), ChainID: chainID, From: from.Hex(), To: hexPtr(tx.To()),
		Nonce: tx.Nonce(), Value: tx.Value().String(), Gas: tx.Gas(), GasPrice: tx.GasFeeCap().String(),
		Input: hexutil.Encode(tx.Data()), Status: "pending",
	}
	if tx.Type() != types.LegacyTxType && tx.Type() != types.AccessListTxType {
		out.MaxFeePerGas, out.MaxPriorityFeePerGas = decPtr(tx.GasFeeCap()), decPtr(tx.GasTipCap())
	}
	if blk != nil {
		n, h, i := blk.NumberU64(), blk.Hash().Hex(), uint64(index)
		out.Status, out.BlockNumber, out.BlockHash, out.Index = "included", &n, &h, &i
		if out.MaxFeePerGas != nil && blk.BaseFee() != nil {
			out.GasPrice = new(big.Int).Add(blk.BaseFee(), tx.EffectiveGasTipValue(blk.BaseFee())).String()
		}
	}
	return out
}

// committed finds a committed transaction: its block and index.
func (g *Gateway) committed(hash common.Hash) (*types.Block, int, error) {
	num, idx, found := g.b.GetTransaction(hash)
	if !found {
		return nil, 0, nil
	}
	blk := g.b.BlockByNumber(num)
	if blk == nil {
		if err := g.b.BodyKept(num); err != nil {
			return nil, 0, gone(err) // pruned since the lookup
		}
	}
	if blk == nil || idx < 0 || idx >= len(blk.Transactions()) {
		return nil, 0, internal("transaction %s: index %d out of range in block %d", hash.Hex(), idx, num)
	}
	return blk, idx, nil
}

// getTransaction is GET /transactions/{hash}.
func (g *Gateway) getTransaction(c *call) (*reply, error) {
	hash, err := parseHash("hash", c.r.PathValue("hash"))
	if err != nil {
		return nil, err
	}
	blk, idx, err := g.committed(hash)
	switch {
	case err != nil:
		return nil, err
	case blk != nil:
		return okReply(g.transaction(blk.Transactions()[idx], blk, idx)), nil
	}
	if tx := g.b.PoolTransaction(hash); tx != nil {
		return okReply(g.transaction(tx, nil, 0)), nil
	}
	return nil, notFound("hash", "no transaction %s in the chain or the pool", hash.Hex())
}

// Receipt is the outcome of a committed transaction.
type Receipt struct {
	TransactionHash string `json:"transactionHash"`
	BlockNumber     uint64 `json:"blockNumber"`
	BlockHash       string `json:"blockHash"`
	Index           uint64 `json:"index"`
	// Status is "success" or "failed" (reverted).
	Status            string  `json:"status"`
	From              string  `json:"from"`
	To                *string `json:"to"`
	ContractAddress   *string `json:"contractAddress"`
	GasUsed           uint64  `json:"gasUsed"`
	CumulativeGasUsed uint64  `json:"cumulativeGasUsed"`
	EffectiveGasPrice string  `json:"effectiveGasPrice"`
	Logs              []Log   `json:"logs"`
}

// Log is an event a transaction emitted.
type Log struct {
	Address string   `json:"address"`
	Topics  []string `json:"topics"`
	Data    string   `json:"data"`
	Index   uint64   `json:"index"` // in its block
}

// getReceipt is GET /transactions/{hash}/receipt.
func (g *Gateway) getReceipt(c *call) (*reply, error) {
	hash, err := parseHash("hash", c.r.PathValue("hash"))
	if err != nil {
		return nil, err
	}
	blk, idx, err := g.committed(hash)
	switch {
	case err != nil:
		return nil, err
	case blk == nil && g.b.PoolTransaction(hash) != nil:
		return nil, notFound("hash", "transaction %s is waiting in the pool: no receipt until it is in a block", hash.Hex())
	case blk == nil:
		return nil, notFound("hash", "no transaction %s in the chain", hash.Hex())
	}
	receipts, err := g.b.GetReceipts(blk.NumberU64())
	if err != nil {
		return nil, internal("receipts of block %d: %v", blk.NumberU64(), err)
	}
	if idx >= len(receipts) {
		return nil, internal("block %d: %d receipts for %d transactions", blk.NumberU64(), len(receipts), len(blk.Transactions()))
	}
	r, tx := receipts[idx], blk.Transactions()[idx]
	from, _ := types.Sender(g.signer, tx)
	out := Receipt{
		TransactionHash: hash.Hex(), BlockNumber: blk.NumberU64(), BlockHash: blk.Hash().Hex(), Index: uint64(idx),
		Status: "success", From: from.Hex(), To: hexPtr(tx.To()), GasUsed: r.GasUsed,
		CumulativeGasUsed: r.CumulativeGasUsed, EffectiveGasPrice: "0", Logs: make([]Log, len(r.Logs)),
	}
	if r.Status != types.ReceiptStatusSuccessful {
		out.Status = "failed"
	}
	if r.ContractAddress != (common.Address{}) {
		out.ContractAddress = hexPtr(&r.ContractAddress)
	}
	if r.EffectiveGasPrice != nil {
		out.EffectiveGasPrice = r.EffectiveGasPrice.String()
	}
	for i, l := range r.Logs {
		topics := make([]string, len(l.Topics))
		for j, t := range l.Topics {
			topics[j] = t.Hex()
		}
		out.Logs[i] = Log{Address: l.Address.Hex(), Topics: topics, Data: hexutil.Encode(l.Data), Index: uint64(l.Index)}
	}
	return okReply(out), nil
}

// headState opens the state at the head.
func (g *Gateway) headState() (*types.Header, *state.StateDB, error) {
	h := g.b.CurrentHeader()
	st, err := g.b.StateAt(h.Root)
	if err != nil {
		return nil, nil, internal("state of block %d: %v", h.Number.Uint64(), err)
	}
	return h, st, nil
}

// Account is an account at the head: its balance, nonce and code, and
// what the registry says of it.
type Account struct {
	Address  string `json:"address"`
	Balance  string `json:"balance"` // wei
	Nonce    uint64 `json:"nonce"`
	CodeHash string `json:"codeHash"`
	Contract bool   `json:"contract"` // it has code
	// Org is the organization the registry lists it under ("": none).
	Org string `json:"org"`
	// Roles are its roles in the registry (the default roles when it is
	// not listed); EffectiveRoles those it may use now (none while frozen
	// or while its organization is not active).
	Roles          []string `json:"roles"`
	EffectiveRoles []string `json:"effectiveRoles"`
	Frozen         bool     `json:"frozen"`
	Block          uint64   `json:"block"` // the head it was read at
}

// getAccount is GET /accounts/{address}.
func (g *Gateway) getAccount(c *call) (*reply, error) {
	addr, err := parseAddress("address", c.r.PathValue("address"))
	if err != nil {
		return nil, err
	}
	h, st, err := g.headState()
	if err != nil {
		return nil, err
	}
	code := st.GetCodeHash(addr)
	if code == (common.Hash{}) {
		code = types.EmptyCodeHash
	}
	s := system.Open(st, h.Number.Uint64(), h.Time)
	a := s.Account(addr)
	eff := s.EffectiveRoles(a).Names()
	if a.Frozen {
		eff = []string{}
	}
	out := Account{
		Address: addr.Hex(), Balance: st.GetBalance(addr).Dec(), Nonce: st.GetNonce(addr), CodeHash: code.Hex(),
		Contract: code != types.EmptyCodeHash, Org: a.Org, Roles: a.Roles.Names(), EffectiveRoles: eff,
		Frozen: a.Frozen, Block: h.Number.Uint64(),
	}
	if err := readFailed(h, st); err != nil {
		return nil, err
	}
	return okReply(out), nil
}

// Balance is an account's balance at the head.
type Balance struct {
	Address string `json:"address"`
	Balance string `json:"balance"` // wei
	Block   uint64 `json:"block"`
}

// getBalance is GET /accounts/{address}/balance.
func (g *Gateway) getBalance(c *call) (*reply, error) {
	addr, err := parseAddress("address", c.r.PathValue("address"))
	if err != nil {
		return nil, err
	}
	h, st, err := g.headState()
	if err != nil {
		return nil, err
	}
	out := Balance{Address: addr.Hex(), Balance: st.GetBalance(addr).Dec(), Block: h.Number.Uint64()}
	if err := readFailed(h, st); err != nil {
		return nil, err
	}
	return okReply(out), nil
}

// readFailed reports a read of st that failed: go-ethereum's StateDB
// answers it with a zero value and records the error. The state of the
// head read becomes unreadable when the node writes a newer head's state
// to disk meanwhile: a retry reads the new head (503).
func readFailed(h *types.Header, st *state.StateDB) error {
	if err := st.Error(); err != nil {
		return problemf(http.StatusServiceUnavailable, "", "state of block %d could not be read (%v); ask again", h.Number.Uint64(), err)
	}
	return nil
}

// Submitted is the answer of a submission: the transaction's hash, to
// poll at /transactions/{hash}/receipt.
type Submitted struct {
	Hash string `json:"hash"`
}

// submitRequest is the body of POST /transactions.
type submitRequest struct {
	Raw *string `json:"raw"` // the signed transaction, 0x hex of its binary encoding
}

// submitTransaction is POST /transactions: a signed transaction to the
// pool.
func (g *Gateway) submitTransaction(c *call) (*reply, error) {
	var req submitRequest
	if err := decodeBody(c.body, &req); err != nil {
		return nil, err
	}
	if req.Raw == nil {
		return nil, badInput("raw", "required: the signed transaction in hex")
	}
	raw, err := hexutil.Decode(*req.Raw)
	if err != nil {
		return nil, badInput("raw", "not hex bytes (0x and an even number of hex digits)")
	}
	if max := g.b.ChainSpec().MaxTxBytes; max > 0 && uint64(len(raw)) > max {
		return nil, problemf(http.StatusRequestEntityTooLarge, "raw", "raw: transaction of %d bytes, at most %d", len(raw), max)
	}
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(raw); err != nil {
		return nil, badInput("raw", "transaction does not decode: %v", err)
	}
	if num, _, found := g.b.GetTransaction(tx.Hash()); found {
		return nil, problemf(http.StatusConflict, "raw", "transaction %s is already in block %d", tx.Hash().Hex(), num)
	}
	if err := g.b.SendTx(tx); err != nil && !errors.Is(err, txpool.ErrAlreadyKnown) {
		return nil, refused(err)
	}
	return submitted(tx.Hash()), nil
}

// submitted answers 202 with the transaction's hash and where to find it.
func submitted(hash common.Hash) *reply {
	return &reply{status: http.StatusAccepted, body: Submitted{Hash: hash.Hex()},
		header: http.Header{"Location": {Prefix + "transactions/" + hash.Hex()}}}
}

// refused maps a refusal of the pool: a full pool is the node's
// trouble (503, retry later), anything else the transaction's (422).
func refused(err error) error {
	if errors.Is(err, txpool.ErrPoolFull) || errors.Is(err, txpool.ErrAccountLimit) || errors.Is(err, txpool.ErrStateUnavailable) {
		return problemf(http.StatusServiceUnavailable, "", "transaction not admitted: %v", err)
	}
	return rejected("transaction rejected: %v", err)
}

// Health is the answer of /healthz.
type Health struct {
	Status    string `json:"status"` // "ok"
	Head      uint64 `json:"head"`
	HeadHash  string `json:"headHash"`
	Timestamp uint64 `json:"timestamp"`
	Finalized uint64 `json:"finalized"`
}

// healthz is GET /healthz: the node answers and has a chain.
func (g *Gateway) healthz(c *call) (*reply, error) {
	h := g.b.CurrentHeader()
	return okReply(Health{Status: "ok", Head: h.Number.Uint64(), HeadHash: h.Hash().Hex(), Timestamp: h.Time, Finalized: g.finalizedNumber()}), nil
}
