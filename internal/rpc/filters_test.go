package rpc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
)

// smallQuery are query bounds small enough to reach in a test.
func smallQuery() queryLimits {
	q := defaultQuery
	q.logRange, q.logs, q.filters, q.subscriptions = 5, 3, 5, 4
	q.filterJanitor = time.Hour // the tests call expire themselves
	return q
}

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Unix(1_700_000_000, 0)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var (
	addrA  = common.HexToAddress("0x000000000000000000000000000000000000000a")
	addrB  = common.HexToAddress("0x000000000000000000000000000000000000000b")
	topic1 = common.Hash{1}
	topic2 = common.Hash{2}
	topic3 = common.Hash{3}
)

// logBlock adds a block with one transaction whose receipt has logs.
func logBlock(t *testing.T, f *fakeBackend, nonce uint64, logs ...*types.Log) *types.Block {
	t.Helper()
	return f.addBlock([]*types.Transaction{signedTransfer(t, 3, nonce)}, [][]*types.Log{logs})
}

func TestGetLogsRangesAndLimits(t *testing.T) {
	f := newFake(t)
	var b3 *types.Block
	for i := uint64(1); i <= 8; i++ {
		logs := []*types.Log{{Address: addrA, Topics: []common.Hash{topic1, {byte(i)}}}}
		if i == 3 {
			logs = append(logs, &types.Log{Address: addrB, Topics: []common.Hash{topic2}})
		}
		blk := logBlock(t, f, i-1, logs...)
		if i == 3 {
			b3 = blk
		}
	}
	ts := serve(t, f, Config{FiltersPerClient: 2, query: smallQuery()})
	get := func(crit map[string]any) ([]types.Log, error) {
		var logs []types.Log
		err := ts.http.Call(&logs, "eth_getLogs", crit)
		return logs, err
	}
	logs, err := get(map[string]any{"fromBlock": "0x1", "toBlock": "0x3", "address": addrA})
	if err != nil || len(logs) != 3 || logs[2].BlockNumber != 3 || logs[2].BlockHash != b3.Hash() {
		t.Fatalf("3 blocks of address A: %v, %v", logs, err)
	}
	_, err = get(map[string]any{"fromBlock": "0x1", "toBlock": "0x4"})
	rpcError(t, err, -32000, "query returns more than 3 logs")
	_, err = get(map[string]any{"fromBlock": "0x1", "toBlock": "0x7"})
	rpcError(t, err, -32000, "query spans 7 blocks, at most 5 allowed")
	_, err = get(map[string]any{"fromBlock": "0x3", "toBlock": "0x1"})
	rpcError(t, err, -32602, "fromBlock 3 is after toBlock 1")
	_, err = get(map[string]any{"fromBlock": "0x1", "blockHash": b3.Hash()})
	rpcError(t, err, -32602, "cannot specify both BlockHash and FromBlock/ToBlock")
	_, err = get(map[string]any{"blockHash": common.Hash{9}})
	rpcError(t, err, -32000, "unknown block")
	if logs, err := get(map[string]any{"blockHash": b3.Hash(), "address": addrB}); err != nil || len(logs) != 1 || logs[0].Index != 1 {
		t.Fatalf("block 3, address B: %v, %v", logs, err)
	}
	// Topics: a position, alternatives, and a wildcard before a position.
	if logs, err := get(map[string]any{"fromBlock": "0x1", "toBlock": "0x5", "topics": []any{topic2}}); err != nil || len(logs) != 1 {
		t.Fatalf("topic 2: %v, %v", logs, err)
	}
	if logs, err := get(map[string]any{"fromBlock": "0x2", "toBlock": "0x6", "topics": []any{nil, []common.Hash{{2}, {5}, {6}}}}); err != nil || len(logs) != 3 {
		t.Fatalf("second topic 2, 5 or 6: %v, %v", logs, err)
	}
	// An end past the head is the head; tags resolve.
	if logs, err := get(map[string]any{"fromBlock": "0x7", "toBlock": "0x99"}); err != nil || len(logs) != 2 {
		t.Fatalf("7 to past the head: %v, %v", logs, err)
	}
	if logs, err := get(map[string]any{"fromBlock": "latest"}); err != nil || len(logs) != 1 || logs[0].BlockNumber != 8 {
		t.Fatalf("latest: %v, %v", logs, err)
	}
}

// TestLogFilterPastTheLogLimit: more logs than one answer holds
// (smallQuery: 3): a poll answers fewer blocks, the next ones the rest; no
// block is skipped. A block that alone holds more is an error, and stays
// to be asked for again.
func TestLogFilterPastTheLogLimit(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{FiltersPerClient: 5, query: smallQuery()})
	var logsID gethrpc.ID
	if err := ts.http.Call(&logsID, "eth_newFilter", map[string]any{"address": addrA}); err != nil {
		t.Fatal(err)
	}
	var logs []types.Log
	for i := uint64(1); i <= 4; i++ {
		logBlock(t, f, i-1, &types.Log{Address: addrA, Topics: []common.Hash{{byte(i)}}})
	}
	var got []byte
	for range 4 {
		if err := ts.http.Call(&logs, "eth_getFilterChanges", logsID); err != nil || len(logs) > 3 {
			t.Fatalf("log filter past the log limit: %v, %v", logs, err)
		}
		for _, l := range logs {
			got = append(got, l.Topics[0][0])
		}
	}
	if string(got) != "\x01\x02\x03\x04" {
		t.Fatalf("log filter past the log limit: topics %x, want 01020304", got)
	}
	logBlock(t, f, 4, &types.Log{Address: addrA}, &types.Log{Address: addrA}, &types.Log{Address: addrA}, &types.Log{Address: addrA})
	for range 2 {
		rpcError(t, ts.http.Call(&logs, "eth_getFilterChanges", logsID), -32000, "query returns more than 3 logs")
	}
}

func TestPolledFiltersAndTheirExpiry(t *testing.T) {
	f := newFake(t)
	clk := newTestClock()
	ts := serve(t, f, Config{FiltersPerClient: 5, query: smallQuery(), now: clk.Now})
	var logsID, blocksID, pendingID gethrpc.ID
	if err := ts.http.Call(&logsID, "eth_newFilter", map[string]any{"fromBlock": "earliest", "address": addrA}); err != nil {
		t.Fatal(err)
	}
	if err := ts.http.Call(&blocksID, "eth_newBlockFilter"); err != nil {
		t.Fatal(err)
	}
	if err := ts.http.Call(&pendingID, "eth_newPendingTransactionFilter"); err != nil {
		t.Fatal(err)
	}
	var out any
	rpcError(t, ts.http.Call(&out, "eth_newFilter", map[string]any{"blockHash": common.Hash{1}}), -32602, "blockHash is not allowed in a filter")

	b1 := logBlock(t, f, 0, &types.Log{Address: addrA, Topics: []common.Hash{topic1}}, &types.Log{Address: addrB})
	b2 := f.addBlock(nil, nil)
	var logs []types.Log
	if err := ts.http.Call(&logs, "eth_getFilterChanges", logsID); err != nil || len(logs) != 1 || logs[0].BlockHash != b1.Hash() {
		t.Fatalf("log filter: %v, %v", logs, err)
	}
	if err := ts.http.Call(&logs, "eth_getFilterChanges", logsID); err != nil || len(logs) != 0 {
		t.Fatalf("log filter, polled again: %v, %v", logs, err)
	}
	var hashes []common.Hash
	if err := ts.http.Call(&hashes, "eth_getFilterChanges", blocksID); err != nil || len(hashes) != 2 || hashes[1] != b2.Hash() {
		t.Fatalf("block filter: %v, %v", hashes, err)
	}
	tx := signedTransfer(t, 0, 0)
	raw, _ := tx.MarshalBinary()
	if err := ts.http.Call(&out, "eth_sendRawTransaction", hexutil.Bytes(raw)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pending hash", 5*time.Second, func() bool {
		if err := ts.http.Call(&hashes, "eth_getFilterChanges", pendingID); err != nil {
			t.Fatal(err)
		}
		return len(hashes) == 1 && hashes[0] == tx.Hash()
	})
	// eth_getFilterLogs: every match of a log filter's range.
	var all []types.Log
	if err := ts.http.Call(&all, "eth_getFilterLogs", logsID); err != nil || len(all) != 1 {
		t.Fatalf("filter logs: %v, %v", all, err)
	}
	rpcError(t, ts.http.Call(&all, "eth_getFilterLogs", blocksID), -32000, "filter not found")

	// Uninstall.
	var ok bool
	if err := ts.http.Call(&ok, "eth_uninstallFilter", pendingID); err != nil || !ok {
		t.Fatalf("uninstall: %v, %v", ok, err)
	}
	if err := ts.http.Call(&ok, "eth_uninstallFilter", pendingID); err != nil || ok {
		t.Fatalf("uninstall twice: %v, %v", ok, err)
	}
	rpcError(t, ts.http.Call(&out, "eth_getFilterChanges", pendingID), -32000, "filter not found")

	// Expiry: a filter polled within the timeout stays, the other goes.
	clk.advance(3 * time.Minute)
	if err := ts.http.Call(&hashes, "eth_getFilterChanges", blocksID); err != nil {
		t.Fatal(err)
	}
	clk.advance(3 * time.Minute)
	ts.filters.expire()
	rpcError(t, ts.http.Call(&out, "eth_getFilterChanges", logsID), -32000, "filter not found")
	if err := ts.http.Call(&hashes, "eth_getFilterChanges", blocksID); err != nil {
		t.Fatalf("polled filter expired: %v", err)
	}
	if n := ts.filters.filters.count(clientOfHTTP("127.0.0.1")); n != 1 {
		t.Fatalf("the client holds %d filters, want 1", n)
	}
}

func clientOfHTTP(host string) string { return "http " + host }

// One client's filters do not exhaust another's: each WebSocket connection
// has its own bound, and a connection's filters go when it closes.
func TestFiltersOfOneClientDoNotExhaustAnothers(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{FiltersPerClient: 2, query: smallQuery()}) // 5 in all
	a, b := ts.ws(t), ts.ws(t)
	var id gethrpc.ID
	for i := 0; i < 2; i++ {
		if err := a.Call(&id, "eth_newBlockFilter"); err != nil {
			t.Fatal(err)
		}
	}
	rpcError(t, a.Call(&id, "eth_newBlockFilter"), -32005, "too many filters for this client: 2 open (--rpc.filters-per-client)")
	for i := 0; i < 2; i++ {
		if err := b.Call(&id, "eth_newFilter", map[string]any{}); err != nil {
			t.Fatalf("the second client's filter %d: %v", i, err)
		}
	}
	if err := ts.http.Call(&id, "eth_newBlockFilter"); err != nil {
		t.Fatalf("an HTTP client's filter: %v", err)
	}
	// Five in all: the node-wide bound holds.
	c := ts.ws(t)
	rpcError(t, c.Call(&id, "eth_newBlockFilter"), -32005, "too many filters on this node")
	// The first connection closes: its filters are removed.
	a.Close()
	waitFor(t, "filters of the closed connection removed", 5*time.Second, func() bool {
		ts.filters.mu.Lock()
		defer ts.filters.mu.Unlock()
		return len(ts.filters.all) == 3
	})
	if err := c.Call(&id, "eth_newBlockFilter"); err != nil {
		t.Fatalf("after the first connection closed: %v", err)
	}
}

// Over HTTP a client is its remote IP address, whatever port it comes from.
func TestFiltersPerClientOverHTTPByAddress(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{FiltersPerClient: 2, query: smallQuery()})
	h := ts.Handler()
	install := func(remote string) (int, string) {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_newBlockFilter"}`))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	for _, remote := range []string{"10.0.0.1:4000", "10.0.0.1:4001"} {
		if code, body := install(remote); code != 200 || !strings.Contains(body, `"result"`) {
			t.Fatalf("%s: %d %s", remote, code, body)
		}
	}
	if _, body := install("10.0.0.1:4002"); !strings.Contains(body, "-32005") || !strings.Contains(body, "too many filters for this client") {
		t.Fatalf("third filter of 10.0.0.1: %s", body)
	}
	if _, body := install("10.0.0.2:4000"); !strings.Contains(body, `"result"`) {
		t.Fatalf("10.0.0.2: %s", body)
	}
}

func TestSubscriptions(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{})
	ws := ts.ws(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	heads := make(chan map[string]any, 4)
	logs := make(chan types.Log, 4)
	pending := make(chan common.Hash, 4)
	for _, s := range []struct {
		ch   any
		args []any
	}{
		{heads, []any{"newHeads"}},
		{logs, []any{"logs", map[string]any{"address": addrB}}},
		{pending, []any{"newPendingTransactions"}},
	} {
		sub, err := ws.EthSubscribe(ctx, s.ch, s.args...)
		if err != nil {
			t.Fatalf("subscribe %v: %v", s.args, err)
		}
		defer sub.Unsubscribe()
	}
	var out any
	_, err := ws.EthSubscribe(ctx, make(chan any), "logs", map[string]any{"fromBlock": "0x1"})
	rpcError(t, err, -32602, "a logs subscription takes addresses and topics only")
	rpcError(t, ts.http.Call(&out, "eth_subscribe", "newHeads"), -32601, "notifications not supported")

	blk := logBlock(t, f, 0, &types.Log{Address: addrA}, &types.Log{Address: addrB, Topics: []common.Hash{topic3}})
	select {
	case h := <-heads:
		if h["hash"] != blk.Hash().Hex() {
			t.Fatalf("newHeads: %v", h)
		}
	case <-ctx.Done():
		t.Fatal("no newHeads notification")
	}
	select {
	case l := <-logs:
		if l.Address != addrB || l.Topics[0] != topic3 {
			t.Fatalf("logs: %+v", l)
		}
	case <-ctx.Done():
		t.Fatal("no logs notification")
	}
	tx := signedTransfer(t, 1, 0)
	raw, _ := tx.MarshalBinary()
	if err := ts.http.Call(&out, "eth_sendRawTransaction", hexutil.Bytes(raw)); err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-pending:
		if h != tx.Hash() {
			t.Fatalf("pending: %s", h)
		}
	case <-ctx.Done():
		t.Fatal("no pending-transaction notification")
	}
}

// The N+1th subscription on one WebSocket connection is refused; another
// connection is not affected, and an unsubscribe frees a slot.
func TestSubscriptionsPerConnection(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{SubscriptionsPerConn: 3, FiltersPerClient: 2, query: smallQuery()}) // 4 in all
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, b := ts.ws(t), ts.ws(t)
	var subs []*gethrpc.ClientSubscription
	for i := 0; i < 3; i++ {
		sub, err := a.EthSubscribe(ctx, make(chan any, 1), "newHeads")
		if err != nil {
			t.Fatalf("subscription %d: %v", i, err)
		}
		subs = append(subs, sub)
	}
	_, err := a.EthSubscribe(ctx, make(chan any, 1), "newHeads")
	rpcError(t, err, -32005, "too many subscriptions on this WebSocket connection: 3 open (--ws.max-subscriptions)")
	if _, err := b.EthSubscribe(ctx, make(chan any, 1), "newPendingTransactions"); err != nil {
		t.Fatalf("another connection: %v", err)
	}
	// Four in all: the node-wide bound.
	_, err = b.EthSubscribe(ctx, make(chan any, 1), "newHeads")
	rpcError(t, err, -32005, "too many subscriptions on this node")
	subs[0].Unsubscribe()
	waitFor(t, "the slot freed", 5*time.Second, func() bool {
		sub, err := a.EthSubscribe(ctx, make(chan any, 1), "newHeads")
		if err == nil {
			sub.Unsubscribe()
		}
		return err == nil
	})
	// A closed connection gives its slots back.
	a.Close()
	waitFor(t, "the connection's slots freed", 5*time.Second, func() bool {
		return totalSubs(ts) == 1
	})
}

func totalSubs(ts *testServer) int {
	c := ts.filters.subs
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.all
}
