package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/index"
	"github.com/charter-ledger/charter/internal/pgtest"
)

// fakeSource shows a fake backend's chain to the index.
type fakeSource struct{ b Backend }

func (s fakeSource) Head() *types.Header                       { return s.b.CurrentHeader() }
func (s fakeSource) BlockByNumber(n uint64) *types.Block       { return s.b.BlockByNumber(n) }
func (s fakeSource) Receipts(n uint64) (types.Receipts, error) { return s.b.GetReceipts(n) }

// countingIndex counts the queries an index answers.
type countingIndex struct {
	LogIndex
	calls atomic.Int64
}

func (c *countingIndex) FilterLogs(ctx context.Context, from, to uint64, addrs []common.Address, topics [][]common.Hash, max int) ([]*types.Log, error) {
	c.calls.Add(1)
	return c.LogIndex.FilterLogs(ctx, from, to, addrs, topics, max)
}

// indexedBackend is a Backend with a log index.
type indexedBackend struct {
	Backend
	ix LogIndex
}

func (b indexedBackend) LogIndex() LogIndex { return b.ix }

var (
	ixAddrs  = []common.Address{addrA, addrB, common.HexToAddress("0x000000000000000000000000000000000000000c")}
	ixTopics = []common.Hash{topic1, topic2, topic3, {4}, {5}}
)

// addLogBlocks appends n blocks: some empty, others with up to three
// transactions each carrying zero to three logs of zero to four topics,
// with or without data. Every log has the block time a node's receipts
// give it.
func addLogBlocks(t *testing.T, f *fakeBackend, rnd *rand.Rand, n int, nonce *uint64) {
	t.Helper()
	for i := 0; i < n; i++ {
		if rnd.Intn(4) == 0 {
			f.addBlock(nil, nil)
			continue
		}
		time := f.CurrentHeader().Time + 1
		var txs []*types.Transaction
		var logs [][]*types.Log
		for k := rnd.Intn(3) + 1; k > 0; k-- {
			txs = append(txs, signedTransfer(t, int(*nonce%4), *nonce))
			*nonce++
			var ls []*types.Log
			for j := rnd.Intn(4); j > 0; j-- {
				l := &types.Log{Address: ixAddrs[rnd.Intn(len(ixAddrs))], Topics: []common.Hash{}, BlockTimestamp: time}
				for m := rnd.Intn(5); m > 0; m-- {
					l.Topics = append(l.Topics, ixTopics[rnd.Intn(len(ixTopics))])
				}
				if rnd.Intn(2) == 0 {
					l.Data = make([]byte, rnd.Intn(70)+1)
					rnd.Read(l.Data)
				}
				ls = append(ls, l)
			}
			logs = append(logs, ls)
		}
		f.addBlock(txs, logs)
	}
}

// catchUp runs the indexer until it holds block head, then stops it.
func catchUp(t *testing.T, ix *index.Index, head uint64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if n, ok := ix.LogsIndexed(); ok && n >= head {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the index did not reach block %d", head)
		}
		select {
		case err := <-done:
			t.Fatalf("the index stopped: %v", err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// rawAnswer is a call's raw result or its error, for comparing.
type rawAnswer struct {
	Result json.RawMessage
	Code   int
	Err    string
}

func callRaw(c *gethrpc.Client, method string, args ...any) rawAnswer {
	var raw json.RawMessage
	err := c.Call(&raw, method, args...)
	if err != nil {
		a := rawAnswer{Err: err.Error()}
		var e gethrpc.Error
		if errors.As(err, &e) {
			a.Code = e.ErrorCode()
		}
		return a
	}
	return rawAnswer{Result: raw}
}

// TestGetLogsFromIndexEqualsReceipts asks the same eth_getLogs filters,
// log filters and filter polls of a node without an index and of the same
// node with one, on SQLite and on PostgreSQL, and wants the same answers
// byte for byte, including errors at the range and result limits.
func TestGetLogsFromIndexEqualsReceipts(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testGetLogsFromIndex(t, index.Config{SQLitePath: filepath.Join(t.TempDir(), "index.db")})
	})
	t.Run("postgres", func(t *testing.T) {
		testGetLogsFromIndex(t, index.Config{PostgresURL: pgtest.Start(t).URL})
	})
}

func testGetLogsFromIndex(t *testing.T, cfg index.Config) {
	f := newFake(t)
	rnd := rand.New(rand.NewSource(7))
	nonce := uint64(0)
	addLogBlocks(t, f, rnd, 60, &nonce)
	cfg.Source, cfg.ChainID, cfg.PollInterval, cfg.BatchBlocks = fakeSource{f}, f.spec.Config.ChainID, 5*time.Millisecond, 9
	ix, err := index.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	head := f.CurrentHeader().Number.Uint64()
	catchUp(t, ix, head)
	counted := &countingIndex{LogIndex: ix}

	type pair struct {
		name       string
		plain, idx *gethrpc.Client
		// long answers, without an index, what the index answers past
		// plain's range limit: plain's limits with no range limit.
		long *gethrpc.Client
	}
	loose := defaultQuery
	loose.filterJanitor = time.Hour
	tight := loose
	tight.logRange, tight.logs = 20, 6
	var pairs []pair
	for _, c := range []struct {
		name string
		q    queryLimits
	}{{"loose", loose}, {"tight", tight}} {
		long := c.q
		long.logRange = 1 << 40
		pairs = append(pairs, pair{c.name, serveBackend(t, f, f, Config{query: c.q}).http, serveBackend(t, indexedBackend{f, counted}, f, Config{query: c.q}).http,
			serveBackend(t, f, f, Config{query: long}).http})
	}

	b3 := f.BlockByNumber(3).Hash()
	filters := []map[string]any{
		{"fromBlock": "earliest", "toBlock": "latest"},
		{"fromBlock": "0x0"},
		{},
		{"fromBlock": "latest"},
		{"fromBlock": "0x5", "toBlock": "0x9"},
		{"fromBlock": "0xa", "toBlock": "0xa"},
		{"fromBlock": "0x1", "toBlock": "0x14"},
		{"fromBlock": "0x1", "toBlock": "0x15"},
		{"fromBlock": "0x100", "toBlock": "latest"},
		{"fromBlock": "0x9", "toBlock": "0x5"},
		{"fromBlock": "0x0", "address": addrA},
		{"fromBlock": "0x0", "address": []common.Address{addrA, ixAddrs[2]}},
		{"fromBlock": "0x0", "address": common.HexToAddress("0x99")},
		{"fromBlock": "0x0", "topics": []any{topic1}},
		{"fromBlock": "0x0", "topics": []any{[]common.Hash{topic1, topic2}}},
		{"fromBlock": "0x0", "topics": []any{nil, topic3}},
		{"fromBlock": "0x0", "topics": []any{topic1, nil}},
		{"fromBlock": "0x0", "topics": []any{nil, nil, nil}},
		{"fromBlock": "0x0", "topics": []any{nil, nil, nil, nil}},
		{"fromBlock": "0x0", "topics": []any{[]common.Hash{topic1, topic2}, []common.Hash{topic3, {4}}, nil, []common.Hash{{5}, topic1}}},
		{"fromBlock": "0x0", "topics": []any{[]common.Hash{}, topic2}},
		{"fromBlock": "0x0", "address": addrB, "topics": []any{nil, []common.Hash{topic2, {5}}}},
		{"fromBlock": "0x2", "toBlock": "0x20", "address": []common.Address{addrB, ixAddrs[2]}, "topics": []any{[]common.Hash{topic1, topic3, {4}}}},
		{"blockHash": b3},
		{"blockHash": b3, "address": addrA},
	}
	nonEmpty := 0
	for _, p := range pairs {
		before := counted.calls.Load()
		for i, crit := range filters {
			want := callRaw(p.plain, "eth_getLogs", crit)
			if strings.Contains(want.Err, "query spans") {
				// The range limit binds a walk of the receipts, not the index.
				want = callRaw(p.long, "eth_getLogs", crit)
			}
			got := callRaw(p.idx, "eth_getLogs", crit)
			if string(want.Result) != string(got.Result) || want.Code != got.Code || want.Err != got.Err {
				t.Fatalf("%s filter %d %v:\nwithout the index %d %q %s\nwith the index    %d %q %s", p.name, i, crit,
					want.Code, want.Err, want.Result, got.Code, got.Err, got.Result)
			}
			if len(want.Result) > 2 {
				nonEmpty++
			}
			// The same through a log filter.
			if _, ok := crit["blockHash"]; ok {
				continue
			}
			var idA, idB gethrpc.ID
			if err := p.plain.Call(&idA, "eth_newFilter", crit); err != nil {
				t.Fatal(err)
			}
			if err := p.idx.Call(&idB, "eth_newFilter", crit); err != nil {
				t.Fatal(err)
			}
			want, got = callRaw(p.plain, "eth_getFilterLogs", idA), callRaw(p.idx, "eth_getFilterLogs", idB)
			if strings.Contains(want.Err, "query spans") {
				var idC gethrpc.ID
				if err := p.long.Call(&idC, "eth_newFilter", crit); err != nil {
					t.Fatal(err)
				}
				want = callRaw(p.long, "eth_getFilterLogs", idC)
			}
			if string(want.Result) != string(got.Result) || want.Code != got.Code || want.Err != got.Err {
				t.Fatalf("%s eth_getFilterLogs %d %v:\nwithout the index %d %q %s\nwith the index    %d %q %s", p.name, i, crit,
					want.Code, want.Err, want.Result, got.Code, got.Err, got.Result)
			}
			p.plain.Call(nil, "eth_uninstallFilter", idA)
			p.idx.Call(nil, "eth_uninstallFilter", idB)
		}
		// Loose: every query but the block hash ones and the empty
		// ranges reaches the index, twice. Tight: many stop at the range
		// limit first.
		wantCalls := int64(len(filters))
		if p.name == "tight" {
			wantCalls = 5
		}
		if n := counted.calls.Load() - before; n < wantCalls {
			t.Fatalf("%s: the index answered %d queries, want at least %d", p.name, n, wantCalls)
		}
	}
	if nonEmpty < len(filters) {
		t.Fatalf("only %d answers hold logs; the chain is too sparse to compare", nonEmpty)
	}

	// A backend that could have an index but has none answers from the
	// receipts.
	none := serveBackend(t, indexedBackend{f, nil}, f, Config{query: loose}).http
	if want, got := callRaw(pairs[0].plain, "eth_getLogs", filters[0]), callRaw(none, "eth_getLogs", filters[0]); string(want.Result) != string(got.Result) || got.Err != "" {
		t.Fatalf("without an index: %q %s, want %s", got.Err, got.Result, want.Result)
	}

	// Polled filters: blocks added after the filter was installed.
	crits := []map[string]any{{}, {"address": addrA}, {"topics": []any{nil, []common.Hash{topic2, topic3}}}}
	type polled struct{ a, b gethrpc.ID }
	var ids []polled
	p := pairs[0]
	for _, crit := range crits {
		var id polled
		if err := p.plain.Call(&id.a, "eth_newFilter", crit); err != nil {
			t.Fatal(err)
		}
		if err := p.idx.Call(&id.b, "eth_newFilter", crit); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	poll := func(what string) {
		t.Helper()
		for i, id := range ids {
			want, got := callRaw(p.plain, "eth_getFilterChanges", id.a), callRaw(p.idx, "eth_getFilterChanges", id.b)
			if string(want.Result) != string(got.Result) || want.Err != got.Err {
				t.Fatalf("%s, filter %d:\nwithout the index %q %s\nwith the index    %q %s", what, i, want.Err, want.Result, got.Err, got.Result)
			}
			if len(want.Result) <= 2 && i == 0 {
				t.Fatalf("%s: no changes to compare", what)
			}
		}
	}
	addLogBlocks(t, f, rnd, 12, &nonce)
	head = f.CurrentHeader().Number.Uint64()
	catchUp(t, ix, head)
	before := counted.calls.Load()
	poll("indexed blocks")
	if counted.calls.Load() == before {
		t.Fatal("the index answered no filter poll")
	}

	// Blocks the index does not hold yet: the receipts answer.
	addLogBlocks(t, f, rnd, 12, &nonce)
	before = counted.calls.Load()
	poll("blocks not yet indexed")
	if n := counted.calls.Load(); n != before {
		t.Fatalf("the index answered %d queries for blocks it does not hold", n-before)
	}
	// A range that ends past the index: the index answers the blocks it
	// holds, the receipts the rest, and together they equal the walk.
	want := callRaw(p.plain, "eth_getLogs", map[string]any{"fromBlock": "0x0"})
	got := callRaw(p.idx, "eth_getLogs", map[string]any{"fromBlock": "0x0"})
	if string(want.Result) != string(got.Result) || want.Err != got.Err {
		t.Fatalf("range beyond the index:\nwithout the index %q %s\nwith the index    %q %s", want.Err, want.Result, got.Err, got.Result)
	}
	if n := counted.calls.Load(); n != before+1 {
		t.Fatalf("the index answered %d queries of a range it holds the start of, want 1", n-before)
	}
}
