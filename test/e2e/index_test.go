package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
	"github.com/charter-ledger/charter/internal/freeport"
	"github.com/charter-ledger/charter/internal/pgtest"
)

// The SQL index against the chain it follows, through the real binary:
// every block, transaction, receipt and log the index holds equals what
// JSON-RPC says, also after kill -9 of the node while it indexes live
// blocks and while it backfills.
//
// The size of the load is CHARTER_INDEX_TXS (default 3,000 transactions);
// the full run is
//
//	CHARTER_INDEX_TXS=50000 go test ./test/e2e -run 'TestIndex' -timeout 30m -v

const indexSenders = 10

func indexTxs(t *testing.T) int {
	n := 3000
	if v := os.Getenv("CHARTER_INDEX_TXS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < indexSenders {
			t.Fatalf("CHARTER_INDEX_TXS=%q: want a number of at least %d", v, indexSenders)
		}
	}
	return n
}

// indexLoad sends up to n transactions (n/indexSenders from each of the
// first indexSenders development accounts) until stop closes or the node
// goes away, and returns the senders' final nonces. The mix: plain
// transfers; per sender, the deployment of an ERC-20 token (its constructor
// logs a Transfer) first and again now and then; token transfers and
// approvals (one log each); token transfers over the balance (reverted);
// token transfers with too little gas (out of gas).
func indexLoad(ctx context.Context, url string, n int, seed int64, stop <-chan struct{}) (map[common.Address]uint64, error) {
	accts, err := chain.DevAccounts(indexSenders)
	if err != nil {
		return nil, err
	}
	rc, err := gethrpc.DialContext(ctx, url)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	signer := types.LatestSignerForChainID(big.NewInt(1337))
	tokenABI := token.Parsed()
	var (
		mu     sync.Mutex
		nonces = map[common.Address]uint64{}
		first  error
		wg     sync.WaitGroup
	)
	for s := 0; s < indexSenders; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			from, key := accts[s].Address, accts[s].Key
			rng := rand.New(rand.NewSource(seed + int64(s)))
			var nonce hexutil.Uint64
			if err := rc.CallContext(ctx, &nonce, "eth_getTransactionCount", from, "pending"); err != nil {
				mu.Lock()
				first = err
				mu.Unlock()
				return
			}
			next := uint64(nonce)
			var tok *common.Address
			const batch = 50
			for sent := 0; sent < n/indexSenders; {
				select {
				case <-stop:
					return
				default:
				}
				var raws []string
				for k := 0; k < batch && sent < n/indexSenders; k, sent = k+1, sent+1 {
					to := recipients[rng.Intn(len(recipients))]
					txd := &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: next, Gas: 100_000, GasFeeCap: big.NewInt(1), GasTipCap: new(big.Int)}
					switch r := rng.Float64(); {
					case tok == nil || r < 0.02:
						txd.Gas = 1_000_000
						txd.Data = token.DeployData(big.NewInt(1_000_000_000))
						a := crypto.CreateAddress(from, next)
						tok = &a
					case r < 0.40:
						txd.Gas, txd.To, txd.Value = 21000, &to, big.NewInt(rng.Int63n(1_000_000)+1)
					case r < 0.75:
						txd.To, txd.Data = tok, token.TransferData(to, big.NewInt(rng.Int63n(100)+1))
					case r < 0.85:
						data, _ := tokenABI.Pack("approve", to, big.NewInt(rng.Int63n(1000)))
						txd.To, txd.Data = tok, data
					case r < 0.93: // over the balance: reverted
						txd.To, txd.Data = tok, token.TransferData(to, new(big.Int).Lsh(big.NewInt(1), 100))
					default: // out of gas
						txd.Gas, txd.To, txd.Data = 30_000, tok, token.TransferData(to, big.NewInt(1))
					}
					raw, _ := types.MustSignNewTx(key, signer, txd).MarshalBinary()
					raws = append(raws, hexutil.Encode(raw))
					next++
				}
				elems := make([]gethrpc.BatchElem, len(raws))
				for i, raw := range raws {
					elems[i] = gethrpc.BatchElem{Method: "eth_sendRawTransaction", Args: []any{raw}, Result: new(common.Hash)}
				}
				err := rc.BatchCallContext(ctx, elems)
				for i := 0; err == nil && i < len(elems); i++ {
					err = elems[i].Error
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("sender %d: %w", s, err)
					}
					mu.Unlock()
					return
				}
				mu.Lock()
				nonces[from] = next
				mu.Unlock()
				// Stay well inside the pool's slots per account.
				for {
					var done hexutil.Uint64
					if err := rc.CallContext(ctx, &done, "eth_getTransactionCount", from, "latest"); err != nil {
						return
					}
					if next-uint64(done) < 1000 {
						break
					}
					select {
					case <-stop:
						return
					case <-ctx.Done():
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}
		}(s)
	}
	wg.Wait()
	return nonces, first
}

// waitIncluded waits until every sender's transactions are in blocks.
func waitIncluded(t *testing.T, url string, nonces map[common.Address]uint64, timeout time.Duration) {
	t.Helper()
	rc, err := gethrpc.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	waitFor(t, timeout, "every sent transaction in a block", func() bool {
		for a, want := range nonces {
			var got hexutil.Uint64
			if err := rc.Call(&got, "eth_getTransactionCount", a, "latest"); err != nil || uint64(got) < want {
				return false
			}
		}
		return true
	})
}

// sqlAnswer is POST /api/v1/sql's answer.
type sqlAnswer struct {
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
	Indexed uint64   `json:"indexed"`
}

func sqlQuery(url, query string, args ...any) (*sqlAnswer, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "args": args})
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Post(url+"/api/v1/sql", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p map[string]any
		json.NewDecoder(resp.Body).Decode(&p)
		return nil, fmt.Errorf("POST /api/v1/sql %q: %d %v", query, resp.StatusCode, p["detail"])
	}
	var a sqlAnswer
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&a); err != nil {
		return nil, err
	}
	return &a, nil
}

// cell is one SQL value as text: numbers in decimal, strings lowercased,
// NULL as "".
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case json.Number:
		return x.String()
	case string:
		return strings.ToLower(x)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// indexRows reads a table's rows up to block head through POST
// /api/v1/sql, a page at a time in key order (the index answers at most
// 10,000 rows per statement). cols must start with the two key columns.
func indexRows(t *testing.T, url, table string, cols []string, head uint64) [][]string {
	t.Helper()
	k1, k2 := cols[0], cols[1]
	var out [][]string
	var a1, a2 int64 = -1, -1
	for {
		// Integers written into the statement: the two back ends spell
		// placeholders differently.
		var q string
		if table == "blocks" {
			q = fmt.Sprintf("SELECT %s FROM blocks WHERE number > %d AND number <= %d ORDER BY number LIMIT 5000", strings.Join(cols, ", "), a1, head)
		} else {
			q = fmt.Sprintf("SELECT %s FROM %s WHERE (%s > %d OR (%s = %d AND %s > %d)) AND %s <= %d ORDER BY %s, %s LIMIT 5000",
				strings.Join(cols, ", "), table, k1, a1, k1, a1, k2, a2, k1, head, k1, k2)
		}
		ans, err := sqlQuery(url, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ans.Rows {
			row := make([]string, len(r))
			for i, v := range r {
				row[i] = cell(v)
			}
			out = append(out, row)
		}
		if len(ans.Rows) < 5000 {
			return out
		}
		last := out[len(out)-1]
		a1, _ = strconv.ParseInt(last[0], 10, 64)
		if table != "blocks" {
			a2, _ = strconv.ParseInt(last[1], 10, 64)
		}
	}
}

// indexView is the index's rows of blocks 0..head as text, per table.
type indexView map[string][]string

func joinRow(r []string) string { return strings.Join(r, "|") }

// viewOfIndex reads the index's blocks, transactions, receipts (with the
// count of their logs) and logs of blocks 0..head.
func viewOfIndex(t *testing.T, url string, head uint64) indexView {
	t.Helper()
	v := indexView{}
	for _, r := range indexRows(t, url, "blocks", []string{"number", "hash", "parent_hash", "tx_count"}, head) {
		v["blocks"] = append(v["blocks"], joinRow(r))
	}
	for _, r := range indexRows(t, url, "transactions", []string{"block_number", "tx_index", "hash", "from_addr", "to_addr"}, head) {
		v["transactions"] = append(v["transactions"], joinRow(r))
	}
	logs := indexRows(t, url, "logs", []string{"block_number", "log_index", "tx_hash", "tx_index", "address", "topic0", "topic1", "topic2", "topic3", "data"}, head)
	perTx := map[string]int{}
	for _, r := range logs {
		perTx[r[0]+"|"+r[3]]++
		v["logs"] = append(v["logs"], joinRow(r))
	}
	for _, r := range indexRows(t, url, "receipts", []string{"block_number", "tx_index", "tx_hash", "status", "gas_used", "contract_address"}, head) {
		v["receipts"] = append(v["receipts"], joinRow(append(r, strconv.Itoa(perTx[r[0]+"|"+r[1]]))))
	}
	return v
}

type rpcBlock struct {
	Number       hexutil.Uint64
	Hash         common.Hash
	ParentHash   common.Hash
	Transactions []common.Hash
}

type rpcLog struct {
	Address          common.Address
	Topics           []common.Hash
	Data             hexutil.Bytes
	LogIndex         hexutil.Uint
	TransactionIndex hexutil.Uint
	TransactionHash  common.Hash
}

type rpcReceipt struct {
	TransactionHash  common.Hash
	TransactionIndex hexutil.Uint
	From             common.Address
	To               *common.Address
	Status           hexutil.Uint64
	GasUsed          hexutil.Uint64
	ContractAddress  *common.Address
	Logs             []rpcLog
}

func lowerHex(s string) string { return strings.ToLower(s) }

// viewOfChain is what JSON-RPC says of blocks 0..head, as viewOfIndex
// writes it.
func viewOfChain(t *testing.T, url string, head uint64) indexView {
	t.Helper()
	rc, err := gethrpc.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	v := indexView{}
	const per = 10
	for from := uint64(0); from <= head; from += per {
		to := min(from+per-1, head)
		var elems []gethrpc.BatchElem
		blocks := make([]rpcBlock, to-from+1)
		receipts := make([][]rpcReceipt, to-from+1)
		for n := from; n <= to; n++ {
			num := hexutil.EncodeUint64(n)
			elems = append(elems,
				gethrpc.BatchElem{Method: "eth_getBlockByNumber", Args: []any{num, false}, Result: &blocks[n-from]},
				gethrpc.BatchElem{Method: "eth_getBlockReceipts", Args: []any{num}, Result: &receipts[n-from]})
		}
		if err := rc.BatchCallContext(ctx, elems); err != nil {
			t.Fatal(err)
		}
		for _, e := range elems {
			if e.Error != nil {
				t.Fatalf("%s %v: %v", e.Method, e.Args, e.Error)
			}
		}
		for i, b := range blocks {
			n := from + uint64(i)
			if uint64(b.Number) != n || len(receipts[i]) != len(b.Transactions) {
				t.Fatalf("block %d: JSON-RPC answered block %d with %d transactions and %d receipts", n, b.Number, len(b.Transactions), len(receipts[i]))
			}
			num := strconv.FormatUint(n, 10)
			v["blocks"] = append(v["blocks"], joinRow([]string{num, lowerHex(b.Hash.Hex()), lowerHex(b.ParentHash.Hex()), strconv.Itoa(len(b.Transactions))}))
			for j, r := range receipts[i] {
				if r.TransactionHash != b.Transactions[j] || int(r.TransactionIndex) != j {
					t.Fatalf("block %d: receipt %d is of %s (index %d), the block's transaction is %s", n, j, r.TransactionHash, r.TransactionIndex, b.Transactions[j])
				}
				idx := strconv.Itoa(j)
				to, created := "", ""
				if r.To != nil {
					to = lowerHex(r.To.Hex())
				} else if r.ContractAddress != nil {
					created = lowerHex(r.ContractAddress.Hex())
				}
				v["transactions"] = append(v["transactions"], joinRow([]string{num, idx, lowerHex(r.TransactionHash.Hex()), lowerHex(r.From.Hex()), to}))
				v["receipts"] = append(v["receipts"], joinRow([]string{num, idx, lowerHex(r.TransactionHash.Hex()),
					strconv.FormatUint(uint64(r.Status), 10), strconv.FormatUint(uint64(r.GasUsed), 10), created, strconv.Itoa(len(r.Logs))}))
				for _, l := range r.Logs {
					row := []string{num, strconv.Itoa(int(l.LogIndex)), lowerHex(l.TransactionHash.Hex()), strconv.Itoa(int(l.TransactionIndex)),
						lowerHex(l.Address.Hex()), "", "", "", "", lowerHex(hexutil.Encode(l.Data))}
					for k := 0; k < len(l.Topics) && k < 4; k++ {
						row[5+k] = lowerHex(l.Topics[k].Hex())
					}
					v["logs"] = append(v["logs"], joinRow(row))
				}
			}
		}
	}
	return v
}

func digest(rows []string) string {
	h := sha256.New()
	for _, r := range rows {
		h.Write([]byte(r))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// checkIndexEqualsChain waits until the index holds block head, then
// compares it with the chain table by table: the counts and a hash over
// the rows in key order must be equal; on a difference it names the first
// row that differs.
func checkIndexEqualsChain(t *testing.T, url string, head uint64) {
	t.Helper()
	waitFor(t, 2*time.Minute, fmt.Sprintf("the index reaches block %d", head), func() bool {
		a, err := sqlQuery(url, "SELECT 1")
		return err == nil && a.Indexed >= head
	})
	chainView := viewOfChain(t, url, head)
	ixView := viewOfIndex(t, url, head)
	if len(chainView["blocks"]) != int(head)+1 {
		t.Fatalf("JSON-RPC gave %d blocks for 0..%d", len(chainView["blocks"]), head)
	}
	for _, table := range []string{"blocks", "transactions", "receipts", "logs"} {
		c, x := chainView[table], ixView[table]
		if len(c) == len(x) && digest(c) == digest(x) {
			t.Logf("%s: %d rows, digest %s, equal", table, len(c), digest(c))
			continue
		}
		for i := 0; i < min(len(c), len(x)); i++ {
			if c[i] != x[i] {
				t.Fatalf("%s: %d rows in the chain, %d in the index; row %d differs:\n chain %s\n index %s", table, len(c), len(x), i, c[i], x[i])
			}
		}
		t.Fatalf("%s: %d rows in the chain, %d in the index (the shorter is a prefix of the longer)", table, len(c), len(x))
	}
	if len(chainView["logs"]) == 0 || len(chainView["transactions"]) == 0 {
		t.Fatalf("nothing to compare: %d transactions, %d logs", len(chainView["transactions"]), len(chainView["logs"]))
	}
}

// headOf is the node's head block number.
func headOf(t *testing.T, url string) uint64 {
	t.Helper()
	rc, err := gethrpc.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var n hexutil.Uint64
	if err := rc.Call(&n, "eth_blockNumber"); err != nil {
		t.Fatal(err)
	}
	return uint64(n)
}

// checkMix checks the load's mix reached the chain: successes and
// failures, creations, logs.
func checkMix(t *testing.T, url string, head uint64) {
	t.Helper()
	ans, err := sqlQuery(url, fmt.Sprintf(`SELECT
		(SELECT COUNT(*) FROM receipts WHERE status = 0 AND block_number <= %[1]d),
		(SELECT COUNT(*) FROM receipts WHERE contract_address IS NOT NULL AND block_number <= %[1]d),
		(SELECT COUNT(*) FROM logs WHERE block_number <= %[1]d),
		(SELECT COUNT(*) FROM transactions WHERE input = '0x' AND block_number <= %[1]d)`, head))
	if err != nil {
		t.Fatal(err)
	}
	r := ans.Rows[0]
	t.Logf("index: %s failed, %s contracts created, %s logs, %s plain transfers", cell(r[0]), cell(r[1]), cell(r[2]), cell(r[3]))
	for i, what := range []string{"failed transactions", "contract creations", "logs", "plain transfers"} {
		if cell(r[i]) == "0" {
			t.Errorf("the load left no %s in the index", what)
		}
	}
}

// TestIndexEqualsChain loads `charter dev --index` (SQLite, then
// PostgreSQL) with transfers, contract deployments, calls that log, and
// reverted and out-of-gas calls, then compares every block hash, receipt
// and log JSON-RPC returns with the index's rows.
func TestIndexEqualsChain(t *testing.T) {
	n := indexTxs(t)
	run := func(t *testing.T, args ...string) {
		p := startDev(t, args...)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		nonces, err := indexLoad(ctx, p.url, n, 1, nil)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		waitIncluded(t, p.url, nonces, time.Minute+time.Duration(n)*time.Millisecond)
		head := headOf(t, p.url)
		t.Logf("%d transactions in blocks 1..%d after %s", n, head, time.Since(start).Round(time.Millisecond))
		checkIndexEqualsChain(t, p.url, head)
		checkMix(t, p.url, head)
		p.terminate(t)
	}
	t.Run("sqlite", func(t *testing.T) { run(t, "--index") })
	t.Run("postgres", func(t *testing.T) {
		pg := pgtest.Start(t)
		run(t, "--index.postgres", pg.URL)
	})
}

// startIndexed runs `charter dev --datadir dir --index` with /metrics on a
// free port and returns it and the metrics URL.
func startIndexed(t *testing.T, dir string, extra ...string) (*proc, string) {
	t.Helper()
	port, err := freeport.Base(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := startDev(t, append([]string{"--datadir", dir, "--index", "--metrics.addr", addr}, extra...)...)
	return p, "http://" + addr + "/metrics"
}

// indexHeight scrapes charter_index_height (a live figure; the chain's
// own figures on /metrics are sampled once a second, so the head is asked
// of JSON-RPC); ok is false when /metrics does not answer or lacks it.
func indexHeight(metricsURL string) (height uint64, ok bool) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(metricsURL)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	for _, line := range strings.Split(buf.String(), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "charter_index_height" {
			v, err := strconv.ParseFloat(f[1], 64)
			return uint64(v), err == nil
		}
	}
	return 0, false
}

// TestIndexKillLive kills `charter dev --index` with SIGKILL while it
// indexes blocks under load, three times, and restarts it: the index
// resumes and equals the chain, with no block, transaction or log missing
// or twice.
func TestIndexKillLive(t *testing.T) {
	seed := simnet.Seed(t) // kill instants; CHARTER_SEED repeats them
	rng := rand.New(rand.NewSource(seed))
	dir := t.TempDir()
	for round := 0; round < 3; round++ {
		p, metrics := startIndexed(t, dir)
		var at uint64
		waitFor(t, 30*time.Second, "/metrics answers", func() bool {
			var ok bool
			at, ok = indexHeight(metrics)
			return ok
		})
		stop := make(chan struct{})
		done := make(chan error, 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		go func() { _, err := indexLoad(ctx, p.url, 1<<30, seed+int64(round)*100, stop); done <- err }()
		waitFor(t, 30*time.Second, "the index follows new blocks", func() bool {
			ix, ok := indexHeight(metrics)
			return ok && ix >= at+3
		})
		time.Sleep(time.Duration(rng.Intn(800)) * time.Millisecond)
		ix, _ := indexHeight(metrics)
		head := headOf(t, p.url)
		p.kill()
		close(stop)
		<-done // an error is the node going away
		cancel()
		t.Logf("round %d: killed with the index at %v of %v", round, ix, head)
	}
	p, _ := startIndexed(t, dir)
	checkIndexEqualsChain(t, p.url, headOf(t, p.url))
	p.terminate(t)
}

// TestIndexKillBackfill makes blocks with a node that keeps no index,
// then restarts it with --index and kills it with SIGKILL while the index
// backfills (charter_index_height below the head), twice: once at a
// random instant after the start and once after the index committed part
// of the chain. The last restart's index equals the chain.
func TestIndexKillBackfill(t *testing.T) {
	seed := simnet.Seed(t)
	rng := rand.New(rand.NewSource(seed))
	dir := t.TempDir()
	// Empty blocks every 10ms give the backfill more blocks than one of its
	// database transactions holds (500).
	blockTime := []string{"--block-time", "10ms"}
	p := startDev(t, append([]string{"--datadir", dir, "--index=false"}, blockTime...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nonces, err := indexLoad(ctx, p.url, indexTxs(t), seed, nil)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	waitIncluded(t, p.url, nonces, time.Minute)
	waitFor(t, time.Minute, "1,600 blocks", func() bool { return headOf(t, p.url) >= 1600 })
	stopped := headOf(t, p.url)
	p.terminate(t)

	// At a random instant after the start.
	p, metrics := startIndexed(t, dir, blockTime...)
	time.Sleep(time.Duration(rng.Intn(300)) * time.Millisecond)
	ix, _ := indexHeight(metrics)
	head := headOf(t, p.url)
	p.kill()
	t.Logf("killed at a random instant with the index at %d of %d", ix, head)
	// After the index committed blocks in this run and before it reached
	// the head the first node left (stopped): /metrics is polled every
	// 2ms, and one database transaction of the backfill holds 500 blocks.
	p, metrics = startIndexed(t, dir, blockTime...)
	start, seen := uint64(0), false
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		if ix, ok = indexHeight(metrics); ok {
			if !seen {
				start, seen = ix, true
			}
			if ix >= stopped {
				t.Fatalf("the index reached %d (the head was %d) before it was seen part way from %d", ix, stopped, start)
			}
			if ix > start {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the index did not move from %d in 30s", start)
		}
		time.Sleep(2 * time.Millisecond)
	}
	p.kill()
	t.Logf("killed during the backfill with the index at %d of at least %d (from %d in this run)", ix, stopped, start)

	p, _ = startIndexed(t, dir, blockTime...)
	checkIndexEqualsChain(t, p.url, headOf(t, p.url))
	p.terminate(t)
}
