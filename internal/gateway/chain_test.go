package gateway

import (
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/txpool"
)

func TestBlocksPageNewestFirstAcrossPages(t *testing.T) {
	h := newHarness(t, nil)
	for i := 0; i < 44; i++ {
		h.f.addBlock(t, nil, nil, nil)
	}
	// 45 blocks, 0 to 44: pages of 20, 20 and 5, followed by next
	// cursors and Link headers.
	var got []uint64
	path := "/api/v1/blocks"
	for pages := 0; ; pages++ {
		if pages == 5 {
			t.Fatal("more than 4 pages")
		}
		r := h.get(path).want(t, http.StatusOK)
		var pg page[BlockSummary]
		r.decode(t, &pg)
		for _, b := range pg.Items {
			got = append(got, b.Number)
		}
		if pg.Next == "" {
			if link := r.header.Get("Link"); link != "" {
				t.Fatalf("last page with Link %q", link)
			}
			break
		}
		want := fmt.Sprintf(`</api/v1/blocks?cursor=%s&limit=20>; rel="next"`, pg.Next)
		if link := r.header.Get("Link"); link != want {
			t.Fatalf("Link %q, want %q", link, want)
		}
		path = "/api/v1/blocks?cursor=" + pg.Next
	}
	if len(got) != 45 {
		t.Fatalf("listed %d blocks, want 45: %v", len(got), got)
	}
	for i, n := range got {
		if n != uint64(44-i) {
			t.Fatalf("item %d is block %d, want %d", i, n, 44-i)
		}
	}
	// A smaller limit, and a cursor that outlives new blocks: positions,
	// not offsets.
	var pg page[BlockSummary]
	h.get("/api/v1/blocks?limit=3").want(t, http.StatusOK).decode(t, &pg)
	if len(pg.Items) != 3 || pg.Items[0].Number != 44 {
		t.Fatalf("limit 3: %+v", pg.Items)
	}
	h.f.addBlock(t, nil, nil, nil)
	var next page[BlockSummary]
	h.get("/api/v1/blocks?limit=3&cursor="+pg.Next).want(t, http.StatusOK).decode(t, &next)
	if next.Items[0].Number != 41 {
		t.Fatalf("the page after blocks 44..42 starts at %d after a new block, want 41", next.Items[0].Number)
	}
}

func TestBlocksPaginationRefusesBadParameters(t *testing.T) {
	h := newHarness(t, nil)
	for _, c := range []struct{ query, field string }{
		{"limit=0", "limit"},
		{"limit=101", "limit"},
		{"limit=ten", "limit"},
		{"limit=-1", "limit"},
		{"cursor=%%%", "query"},
		{"cursor=bm9wZQ", "cursor"}, // "nope"
		{"cursor=" + encodeCursor("proposals", 3), "cursor"},
		{"page=2", "page"},
	} {
		h.get("/api/v1/blocks?"+c.query).wantProblem(t, http.StatusBadRequest, c.field+":", c.field)
	}
}

func TestBlockByNumberHashAndTag(t *testing.T) {
	h := newHarness(t, nil)
	tx := h.f.transfer(t, 0, 0)
	b1 := h.f.addBlock(t, []*types.Transaction{tx}, nil, nil)
	h.f.addBlock(t, nil, nil, nil)
	h.f.setFinalized(1)

	var blk Block
	h.get("/api/v1/blocks/1").want(t, http.StatusOK).decode(t, &blk)
	if blk.Hash != b1.Hash().Hex() || blk.TransactionCount != 1 || len(blk.Transactions) != 1 || blk.Transactions[0] != tx.Hash().Hex() || !blk.Finalized {
		t.Fatalf("block 1: %+v", blk)
	}
	if blk.BaseFeePerGas != b1.BaseFee().String() || blk.GasUsed != 21_000 {
		t.Fatalf("block 1 fees and gas: %+v", blk)
	}
	var byHash Block
	h.get("/api/v1/blocks/"+b1.Hash().Hex()).want(t, http.StatusOK).decode(t, &byHash)
	if byHash.Number != 1 {
		t.Fatalf("by hash: block %d", byHash.Number)
	}
	var latest, final Block
	h.get("/api/v1/blocks/latest").want(t, http.StatusOK).decode(t, &latest)
	h.get("/api/v1/blocks/finalized").want(t, http.StatusOK).decode(t, &final)
	if latest.Number != 2 || latest.Finalized || final.Number != 1 {
		t.Fatalf("latest %d (final %v), finalized %d", latest.Number, latest.Finalized, final.Number)
	}
	h.get("/api/v1/blocks/3").wantProblem(t, http.StatusNotFound, "no block 3 (the head is 2)", "block")
	h.get("/api/v1/blocks/0x"+strings.Repeat("ab", 32)).wantProblem(t, http.StatusNotFound, "no block with hash", "block")
	for _, bad := range []string{"pending", "-1", "0x12", "1.5", "99999999999999999999999", "0x" + strings.Repeat("zz", 32)} {
		h.get("/api/v1/blocks/"+bad).wantProblem(t, http.StatusBadRequest, "block: want a decimal block number", "block")
	}
}

// TestPrunedBlocksAreGone: on an observer that keeps recent block bodies
// only, a pruned block by number or hash is a 410 naming the retention,
// and the block list ends where the kept bodies do.
func TestPrunedBlocksAreGone(t *testing.T) {
	h := newHarness(t, nil)
	b1 := h.f.addBlock(t, []*types.Transaction{h.f.transfer(t, 0, 0)}, nil, nil)
	h.f.addBlock(t, nil, nil, nil)
	h.f.addBlock(t, nil, nil, nil)
	h.f.mu.Lock()
	h.f.bodiesFrom = 2
	h.f.mu.Unlock()
	h.get("/api/v1/blocks/1").wantProblem(t, http.StatusGone, "keeps those of the last 16 blocks (--history.bodies)", "")
	h.get("/api/v1/blocks/"+b1.Hash().Hex()).wantProblem(t, http.StatusGone, "block 1 are not kept", "")
	h.get("/api/v1/blocks/2").want(t, http.StatusOK)
	var page struct {
		Items []BlockSummary `json:"items"`
	}
	h.get("/api/v1/blocks?limit=10").want(t, http.StatusOK).decode(t, &page)
	if len(page.Items) != 2 || page.Items[1].Number != 2 {
		t.Fatalf("block list on a pruning node: %+v", page.Items)
	}
}

func TestTransactionCommittedPendingAndUnknown(t *testing.T) {
	h := newHarness(t, nil)
	committed := h.f.transfer(t, 0, 0)
	blk := h.f.addBlock(t, []*types.Transaction{committed}, nil, nil)
	pending := h.f.transfer(t, 0, 1)
	if err := h.f.SendTx(pending); err != nil {
		t.Fatal(err)
	}

	var tx Transaction
	h.get("/api/v1/transactions/"+committed.Hash().Hex()).want(t, http.StatusOK).decode(t, &tx)
	if tx.Status != "included" || tx.BlockNumber == nil || *tx.BlockNumber != 1 || *tx.BlockHash != blk.Hash().Hex() || *tx.Index != 0 {
		t.Fatalf("committed: %+v", tx)
	}
	if tx.From != h.f.dev[0].Address.Hex() || tx.Value != "1" || tx.ChainID != "1337" || tx.Type != types.DynamicFeeTxType {
		t.Fatalf("committed: %+v", tx)
	}
	wantPrice := new(big.Int).Add(blk.BaseFee(), committed.EffectiveGasTipValue(blk.BaseFee())).String()
	if tx.GasPrice != wantPrice || *tx.MaxFeePerGas != "2000000000" || *tx.MaxPriorityFeePerGas != "1" {
		t.Fatalf("committed fees: price %s (want %s), %+v", tx.GasPrice, wantPrice, tx)
	}

	var p Transaction
	h.get("/api/v1/transactions/"+pending.Hash().Hex()).want(t, http.StatusOK).decode(t, &p)
	if p.Status != "pending" || p.BlockNumber != nil || p.Nonce != 1 || p.GasPrice != "2000000000" {
		t.Fatalf("pending: %+v", p)
	}
	unknown := common.HexToHash("0x1234").Hex()
	h.get("/api/v1/transactions/"+unknown).wantProblem(t, http.StatusNotFound, "no transaction", "hash")
	h.get("/api/v1/transactions/0x1234").wantProblem(t, http.StatusBadRequest, "hash: not a 32-byte hex hash", "hash")
}

func TestReceiptWithLogs(t *testing.T) {
	h := newHarness(t, nil)
	tx := h.f.transfer(t, 1, 0)
	logs := [][]*types.Log{{{Address: echoAddr, Topics: []common.Hash{{0x01}, {0x02}}, Data: []byte{0xbe, 0xef}}}}
	blk := h.f.addBlock(t, []*types.Transaction{tx}, logs, nil)
	pending := h.f.transfer(t, 1, 1)
	if err := h.f.SendTx(pending); err != nil {
		t.Fatal(err)
	}

	var rc Receipt
	h.get("/api/v1/transactions/"+tx.Hash().Hex()+"/receipt").want(t, http.StatusOK).decode(t, &rc)
	if rc.Status != "success" || rc.BlockHash != blk.Hash().Hex() || rc.BlockNumber != 1 || rc.GasUsed != 21_000 ||
		rc.From != h.f.dev[1].Address.Hex() || rc.ContractAddress != nil || rc.EffectiveGasPrice != "1000000000" {
		t.Fatalf("receipt: %+v", rc)
	}
	if len(rc.Logs) != 1 || rc.Logs[0].Address != echoAddr.Hex() || rc.Logs[0].Data != "0xbeef" || len(rc.Logs[0].Topics) != 2 {
		t.Fatalf("receipt logs: %+v", rc.Logs)
	}
	h.get("/api/v1/transactions/"+pending.Hash().Hex()+"/receipt").wantProblem(t, http.StatusNotFound, "waiting in the pool", "hash")
	h.get("/api/v1/transactions/"+common.HexToHash("0x99").Hex()+"/receipt").wantProblem(t, http.StatusNotFound, "no transaction", "hash")
}

func TestAccountWithRegistryRecord(t *testing.T) {
	h := newHarness(t, nil)
	dev := h.f.dev[0].Address
	var a Account
	h.get("/api/v1/accounts/"+dev.Hex()).want(t, http.StatusOK).decode(t, &a)
	if a.Address != dev.Hex() || a.Balance != h.f.spec.Alloc[dev].Balance.String() || a.Nonce != 0 || a.Contract ||
		a.CodeHash != types.EmptyCodeHash.Hex() || a.Org != devOrg || a.Frozen {
		t.Fatalf("dev account: %+v", a)
	}
	if strings.Join(a.Roles, ",") != "read,write,deploy,admin" || strings.Join(a.EffectiveRoles, ",") != "read,write,deploy,admin" {
		t.Fatalf("dev account roles %v, effective %v", a.Roles, a.EffectiveRoles)
	}
	// The bank is of tier write; its writer's record.
	var bank Account
	h.get("/api/v1/accounts/"+strings.ToLower(bankWriter.Hex())).want(t, http.StatusOK).decode(t, &bank)
	if bank.Org != bankOrg || strings.Join(bank.Roles, ",") != "read,write" || bank.Balance != "0" {
		t.Fatalf("bank writer: %+v", bank)
	}
	// A contract the registry does not list: the default roles.
	var c Account
	h.get("/api/v1/accounts/"+echoAddr.Hex()).want(t, http.StatusOK).decode(t, &c)
	if !c.Contract || c.Org != "" || strings.Join(c.Roles, ",") != "read,write,deploy" {
		t.Fatalf("contract: %+v", c)
	}
	var b Balance
	h.get("/api/v1/accounts/"+dev.Hex()+"/balance").want(t, http.StatusOK).decode(t, &b)
	if b.Balance != a.Balance || b.Block != 0 {
		t.Fatalf("balance: %+v", b)
	}
	for _, addr := range []string{"0x1234", strings.TrimPrefix(dev.Hex(), "0x"), "0x" + strings.Repeat("g", 40)} {
		h.get("/api/v1/accounts/"+addr).wantProblem(t, http.StatusBadRequest, "address: not a 20-byte hex address", "address")
	}
	if mixed := wrongChecksum(dev); mixed != "" {
		h.get("/api/v1/accounts/"+mixed+"/balance").wantProblem(t, http.StatusBadRequest, "EIP-55 checksum", "address")
	}
}

// wrongChecksum is addr in mixed case with one letter's case flipped.
func wrongChecksum(addr common.Address) string {
	s := []byte(addr.Hex())
	for i := 2; i < len(s); i++ {
		switch {
		case s[i] >= 'a' && s[i] <= 'f':
			s[i] -= 'a' - 'A'
			return string(s)
		case s[i] >= 'A' && s[i] <= 'F':
			s[i] += 'a' - 'A'
			return string(s)
		}
	}
	return ""
}

func TestSubmitTransaction(t *testing.T) {
	h := newHarness(t, nil)
	tx := h.f.transfer(t, 0, 0)
	raw, _ := tx.MarshalBinary()
	r := h.post("/api/v1/transactions", map[string]string{"raw": hexutil.Encode(raw)}).want(t, http.StatusAccepted)
	var s Submitted
	r.decode(t, &s)
	if s.Hash != tx.Hash().Hex() || r.header.Get("Location") != "/api/v1/transactions/"+tx.Hash().Hex() {
		t.Fatalf("submitted %+v, Location %q", s, r.header.Get("Location"))
	}
	if h.f.PoolTransaction(tx.Hash()) == nil {
		t.Fatal("the pool does not hold the transaction")
	}
	// The same transaction again while it waits: the same answer.
	h.post("/api/v1/transactions", map[string]string{"raw": hexutil.Encode(raw)}).want(t, http.StatusAccepted)
	// Once it is in a block: 409.
	h.f.seal(t)
	h.post("/api/v1/transactions", map[string]string{"raw": hexutil.Encode(raw)}).wantProblem(t, http.StatusConflict, "already in block 1", "raw")

	// The pool's refusals.
	next, _ := h.f.transfer(t, 0, 1).MarshalBinary()
	h.f.setSendErr(fmt.Errorf("%w: next nonce 2, tx nonce 1", txpool.ErrNonceTooLow))
	h.post("/api/v1/transactions", map[string]string{"raw": hexutil.Encode(next)}).wantProblem(t, http.StatusUnprocessableEntity, "transaction rejected: nonce too low")
	h.f.setSendErr(fmt.Errorf("%w: 100000 transactions", txpool.ErrPoolFull))
	h.post("/api/v1/transactions", map[string]string{"raw": hexutil.Encode(next)}).wantProblem(t, http.StatusServiceUnavailable, "txpool is full")
	h.f.setSendErr(nil)

	// Bad input.
	h.post("/api/v1/transactions", map[string]string{}).wantProblem(t, http.StatusBadRequest, "raw: required", "raw")
	h.post("/api/v1/transactions", map[string]string{"raw": "0xzz"}).wantProblem(t, http.StatusBadRequest, "raw: not hex bytes", "raw")
	h.post("/api/v1/transactions", map[string]string{"raw": "0x02c0"}).wantProblem(t, http.StatusBadRequest, "raw: transaction does not decode", "raw")
	h.post("/api/v1/transactions", map[string]any{"raw": 12}).wantProblem(t, http.StatusBadRequest, "raw: want a string", "raw")
	h.post("/api/v1/transactions", map[string]string{"raw": hexutil.Encode(raw), "from": "me"}).wantProblem(t, http.StatusBadRequest, "from: unknown member", "from")
	huge := make([]byte, h.f.spec.MaxTxBytes+1)
	h.post("/api/v1/transactions", map[string]string{"raw": hexutil.Encode(huge)}).wantProblem(t, http.StatusRequestEntityTooLarge, "raw: transaction of", "raw")
}

func TestHealthzAndOpenAPI(t *testing.T) {
	h := newHarness(t, nil)
	h.f.addBlock(t, nil, nil, nil)
	var hz Health
	h.get("/api/v1/healthz").want(t, http.StatusOK).decode(t, &hz)
	if hz.Status != "ok" || hz.Head != 1 || hz.Finalized != 1 {
		t.Fatalf("healthz: %+v", hz)
	}
	r := h.get("/api/v1/openapi.json").want(t, http.StatusOK)
	if string(r.body) != string(OpenAPI) {
		t.Fatal("openapi.json is not the embedded document")
	}
}

func TestCreationReceiptNamesTheContract(t *testing.T) {
	h := newHarness(t, nil)
	tx, err := types.SignNewTx(h.f.dev[0].Key, h.f.signer, &types.LegacyTx{Nonce: 0, Gas: 100_000, GasPrice: big.NewInt(1_000_000_000), Data: echoCode})
	if err != nil {
		t.Fatal(err)
	}
	h.f.addBlock(t, []*types.Transaction{tx}, nil, nil)
	var got Transaction
	h.get("/api/v1/transactions/"+tx.Hash().Hex()).want(t, http.StatusOK).decode(t, &got)
	if got.To != nil || got.Type != types.LegacyTxType || got.MaxFeePerGas != nil || got.GasPrice != "1000000000" || got.Input != hexutil.Encode(echoCode) {
		t.Fatalf("creation: %+v", got)
	}
	var rc Receipt
	h.get("/api/v1/transactions/"+tx.Hash().Hex()+"/receipt").want(t, http.StatusOK).decode(t, &rc)
	if rc.To != nil || rc.ContractAddress == nil || *rc.ContractAddress != crypto.CreateAddress(h.f.dev[0].Address, 0).Hex() {
		t.Fatalf("creation receipt: %+v", rc)
	}
}

func TestNewValidatesItsConfig(t *testing.T) {
	f := newFake(t)
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Config.Backend is required"},
		{Config{Backend: f, BodyBytes: 100}, "BodyBytes 100"},
		{Config{Backend: f, ResultBytes: 10}, "ResultBytes 10"},
		{Config{Backend: f, CallTimeout: -time.Second}, "CallTimeout"},
		{Config{Backend: f, Idempotency: IdempotencyConfig{MaxEntries: -1}}, "Idempotency"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v): %v, want %q", c.cfg, err, c.want)
		}
	}
	g, err := New(Config{Backend: f})
	if err != nil {
		t.Fatal(err)
	}
	if d := DefaultConfig(); g.cfg.BodyBytes != d.BodyBytes || g.cfg.GasCap != d.GasCap || g.cfg.Idempotency != d.Idempotency {
		t.Fatalf("defaults not filled: %+v", g.cfg)
	}
}
