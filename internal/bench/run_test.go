package bench

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/node"
)

// startDevNode runs an in-process `charter dev` chain with JSON-RPC and
// metrics on free loopback ports; it returns the RPC and metrics URLs.
func startDevNode(t *testing.T) (rpcURL, metricsURL string, accts []chain.DevAccount) {
	t.Helper()
	spec, err := chain.DevSpec(chain.DefaultChainID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if accts, err = chain.DevAccounts(chain.DevAccountCount); err != nil {
		t.Fatal(err)
	}
	nodeKey, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{DataDir: t.TempDir(), Spec: spec, NodeKey: nodeKey, HTTPAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0",
		DevAccounts: accts, BlockTime: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	return "http://" + n.RPCAddr(), "http://" + n.MetricsAddr() + "/metrics", accts
}

// A sustained mixed run against a dev node: every kind lands in its share,
// nothing fails, the hot contract counted every call to it, the series has
// a second per second of the run with the scraped round changes, and
// senders beyond the development accounts are funded by the node's own
// account (FundFromNode).
func TestRunMixedDuration(t *testing.T) {
	url, metrics, accts := startDevNode(t)
	keys := keysN(t, 4) // unfunded: the node's account funds them
	for _, a := range accts[:4] {
		keys = append(keys, a.Key)
	}
	var progress strings.Builder
	cfg := Config{Kind: KindMixed, Endpoints: []string{url}, Duration: 2 * time.Second, Rate: 200, Senders: 8, Batch: 20, Keys: keys,
		Metrics: []string{metrics}, FundFromNode: true, Timeout: 30 * time.Second, Progress: &progress}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 400 || res.Confirmed != 400 || res.Failed != 0 || res.Mix != DefaultMix.String() || res.TargetS != 2 {
		t.Fatalf("result %+v (errors %v)", res, res.Errors)
	}
	for name, want := range map[string]int{"transfer": 200, "erc20": 120, "create": 20, "hot": 60} {
		k := res.ByKind[name]
		if k == nil || k.Sent != want || k.Confirmed != want || k.Failed != 0 || k.Latency.P50 <= 0 {
			t.Fatalf("%s: %+v, want %d sent and confirmed", name, k, want)
		}
	}
	if len(res.Series) < 2 || res.Series[0].Rounds == nil || res.Consensus == nil || res.Consensus.Heights < 1 || res.Consensus.Nodes[0].Error != "" {
		t.Fatalf("series %+v, consensus %+v", res.Series, res.Consensus)
	}
	if !strings.Contains(progress.String(), "tx/s  height ") {
		t.Fatalf("progress %q", progress.String())
	}
	sub := 0
	for _, s := range res.Series {
		sub += s.Submitted
	}
	if sub != 400 || len(res.Points) != 400 {
		t.Fatalf("series counts %d submissions, %d points", sub, len(res.Points))
	}
	// The hot contract is the second contract the first sender created.
	c, err := gethrpc.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hot := crypto.CreateAddress(crypto.PubkeyToAddress(keys[0].PublicKey), 1)
	var slot hexutil.Bytes
	if err := c.Call(&slot, "eth_getStorageAt", hot, "0x0", "latest"); err != nil {
		t.Fatal(err)
	}
	if got := new(big.Int).SetBytes(slot); got.Cmp(big.NewInt(60)) != 0 {
		t.Fatalf("hot counter %v at %s, want 60", got, hot)
	}
}

// Flag combinations a run refuses.
func TestConfigValidateDuration(t *testing.T) {
	base := Config{Kind: KindTransfer, Endpoints: []string{"http://127.0.0.1:1"}, Txs: 1, Senders: 1, Batch: 1, Keys: keysN(t, 1)}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Duration = time.Second }, "--duration needs --rate"},
		{func(c *Config) { c.Duration, c.Rate = 25*time.Hour, 1 }, "--duration 25h0m0s is outside"},
		{func(c *Config) { c.Duration, c.Rate = time.Hour, 1e6 }, "more than 1000000000 transactions"},
		{func(c *Config) { c.Kind, c.Mix = KindMixed, Mix{Shares: [numTxKinds]int{50, 10}} }, "add up to 60"},
		{func(c *Config) { c.Metrics = []string{"127.0.0.1:9545/metrics"} }, "is not an http://"},
		{func(c *Config) { c.Kind = "nft" }, "want transfer, erc20, mixed or private-erc20"},
	} {
		cfg := base
		tc.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
	ok := base
	ok.Duration, ok.Rate, ok.Txs = time.Second, 10, 0
	if err := ok.Validate(); err != nil {
		t.Fatalf("a sustained run without --txs: %v", err)
	}
}

// receiptsEth answers eth_getBlockReceipts with receipts of the test's
// choosing.
type receiptsEth struct{ blocks map[uint64][]map[string]any }

func (e receiptsEth) GetBlockReceipts(n hexutil.Uint64) []map[string]any { return e.blocks[uint64(n)] }

// A reverted transaction of the run's senders counts as a failure of its
// kind, read from its receipt; others' transactions and successes do not.
func TestCountRevertedByKind(t *testing.T) {
	me, other := common.HexToAddress("0x01"), common.HexToAddress("0x02")
	token, hot, dest := common.HexToAddress("0x7070"), common.HexToAddress("0x4040"), common.HexToAddress("0x9999")
	rc := func(from common.Address, to *common.Address, status uint64) map[string]any {
		return map[string]any{"from": from, "to": to, "status": hexutil.Uint64(status)}
	}
	blocks := map[uint64][]map[string]any{}
	for n := uint64(3); n <= 45; n++ { // more than one batch of blocks
		blocks[n] = []map[string]any{rc(me, &dest, 1)}
	}
	blocks[4] = append(blocks[4], rc(me, &token, 0), rc(me, nil, 0), rc(other, &hot, 0))
	blocks[44] = append(blocks[44], rc(me, &hot, 0), rc(me, &hot, 0), rc(me, &dest, 0), rc(me, &token, 1))
	srv := gethrpc.NewServer()
	if err := srv.RegisterName("eth", receiptsEth{blocks}); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	r := &runner{clients: []*gethrpc.Client{gethrpc.DialInProc(srv)}, senders: []common.Address{me}, token: token, hot: hot}
	got, err := r.countReverted(context.Background(), 3, 45)
	if err != nil {
		t.Fatal(err)
	}
	if want := [numTxKinds]int{txTransfer: 1, txERC20: 1, txCreate: 1, txHot: 2}; got != want {
		t.Fatalf("reverted %v, want %v", got, want)
	}
}

// A batch of receipts the node refuses as too large is asked again in
// smaller batches: blocks of many transactions do not fail the run.
func TestCountRevertedSplitsLargeResponses(t *testing.T) {
	me, dest := common.HexToAddress("0x01"), common.HexToAddress("0x9999")
	blocks := map[uint64][]map[string]any{}
	for n := uint64(1); n <= 20; n++ {
		for i := 0; i < 20; i++ {
			blocks[n] = append(blocks[n], map[string]any{"from": me, "to": &dest, "status": hexutil.Uint64(1)})
		}
	}
	blocks[17][3]["status"] = hexutil.Uint64(0)
	srv := gethrpc.NewServer()
	// A block's 20 receipts are about 2 KiB of JSON: 20 blocks' are far
	// above this bound, two blocks' below it.
	srv.SetBatchLimits(100, 8<<10)
	if err := srv.RegisterName("eth", receiptsEth{blocks}); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	r := &runner{clients: []*gethrpc.Client{gethrpc.DialInProc(srv)}, senders: []common.Address{me}}
	whole := make([]gethrpc.BatchElem, 20)
	for i := range whole {
		whole[i] = gethrpc.BatchElem{Method: "eth_getBlockReceipts", Args: []any{hexutil.Uint64(i + 1)}, Result: new(json.RawMessage)}
	}
	if err := r.batchCall(context.Background(), whole); err == nil {
		t.Fatal("the server took the whole batch; the test needs a response bound it exceeds")
	}
	got, err := r.countReverted(context.Background(), 1, 20)
	if err != nil {
		t.Fatal(err)
	}
	if want := [numTxKinds]int{txTransfer: 1}; got != want {
		t.Fatalf("reverted %v, want %v", got, want)
	}
}

type blocksEth struct{ txs map[uint64][]common.Hash }

func (e blocksEth) GetBlockByNumber(n hexutil.Uint64, full bool) map[string]any {
	if _, ok := e.txs[uint64(n)]; !ok {
		return nil
	}
	return map[string]any{"number": n, "transactions": e.txs[uint64(n)]}
}

// The follower reads the new blocks in one request, at most followBatch of
// them; the blocks past the node's bound of a batch's answer in the next.
func TestReadBlocksBatchesAndSplits(t *testing.T) {
	txs := map[uint64][]common.Hash{}
	for n := uint64(1); n <= 100; n++ {
		for i := 0; i < int(n%3); i++ {
			txs[n] = append(txs[n], common.Hash{byte(n), byte(i)})
		}
	}
	// Block 50's 200 hashes are about 13 KiB of JSON, over the bound.
	for i := 0; i < 200; i++ {
		txs[50] = append(txs[50], common.Hash{50, byte(i), 1})
	}
	srv := gethrpc.NewServer()
	srv.SetBatchLimits(100, 8<<10)
	if err := srv.RegisterName("eth", blocksEth{txs}); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	r := &runner{clients: []*gethrpc.Client{gethrpc.DialInProc(srv)}}
	var reads []int
	for next := uint64(1); next <= 100; {
		blks, err := r.readBlocks(context.Background(), next, 100)
		if err != nil {
			t.Fatal(err)
		}
		reads = append(reads, len(blks))
		for i, got := range blks {
			if want := txs[next+uint64(i)]; len(got) != len(want) || (len(got) > 0 && got[len(got)-1] != want[len(want)-1]) {
				t.Fatalf("block %d: %d hashes, want %d", next+uint64(i), len(got), len(want))
			}
		}
		next += uint64(len(blks))
	}
	// 1-50 in one read (block 50 passes the bound: go-ethereum answers
	// the call that passes it), then 51-100.
	if len(reads) != 2 || reads[0] != 50 || reads[1] != 50 {
		t.Fatalf("reads of %v blocks; want [50 50]", reads)
	}
	if _, err := r.readBlocks(context.Background(), 1, 200); err != nil {
		t.Fatal(err) // 64 asked, the ones past the head are null: no transactions
	}
}
