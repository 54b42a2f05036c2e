package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth/filters"

	"github.com/charter-ledger/charter/internal/index"
	"github.com/charter-ledger/charter/internal/pgtest"
)

// synthChain is a long chain of mostly empty blocks made on demand: every
// 200th block holds one transaction with a token's Transfer log (one of
// 50 senders to the next), every 2,000th one more log of a rare
// address. Headers are built at each read (no storage is read, so the
// receipt walk's figures are a lower bound of a node's, whose ledger
// reads and decodes each block); the blocks with logs are kept.
type synthChain struct {
	*fakeBackend
	n        uint64
	receipts map[uint64]types.Receipts
	blooms   map[uint64]types.Bloom
}

var (
	synthToken    = common.HexToAddress("0x00000000000000000000000000000000000000e1")
	synthRare     = common.HexToAddress("0x00000000000000000000000000000000000000e2")
	synthTransfer = common.HexToHash("0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")
	synthRareSig  = common.Hash{0xee}
)

func synthAccount(i uint64) common.Hash {
	return common.BigToHash(new(big.Int).SetUint64(0x1000 + i%50))
}

func newSynthChain(tb testing.TB, n uint64) *synthChain {
	s := &synthChain{fakeBackend: newFake(tb), n: n, receipts: map[uint64]types.Receipts{}, blooms: map[uint64]types.Bloom{}}
	for b := uint64(200); b <= n; b += 200 {
		k := b / 200
		logs := []*types.Log{{Address: synthToken, Topics: []common.Hash{synthTransfer, synthAccount(k), synthAccount(k + 1)},
			Data: common.BigToHash(new(big.Int).SetUint64(b)).Bytes()}}
		if b%2000 == 0 {
			logs = append(logs, &types.Log{Address: synthRare, Topics: []common.Hash{synthRareSig}, Data: []byte{}})
		}
		r := &types.Receipt{Type: types.LegacyTxType, Status: types.ReceiptStatusSuccessful, GasUsed: 50_000, CumulativeGasUsed: 50_000, Logs: logs}
		r.Bloom = types.CreateBloom(r)
		s.blooms[b] = r.Bloom
		h := s.header(b)
		tx := s.tx(b)
		r.TxHash, r.BlockHash, r.BlockNumber, r.TransactionIndex = tx.Hash(), h.Hash(), h.Number, 0
		for i, l := range logs {
			l.BlockNumber, l.BlockHash, l.BlockTimestamp, l.TxHash, l.TxIndex, l.Index = b, r.BlockHash, h.Time, r.TxHash, 0, uint(i)
		}
		s.receipts[b] = types.Receipts{r}
	}
	return s
}

func (s *synthChain) header(n uint64) *types.Header {
	var parent common.Hash
	binary.BigEndian.PutUint64(parent[24:], n-1)
	h := &types.Header{ParentHash: parent, Number: new(big.Int).SetUint64(n), Time: 1_700_000_000 + n, GasLimit: 30_000_000,
		Difficulty: new(big.Int), Bloom: s.blooms[n]}
	if _, ok := s.receipts[n]; ok || s.blooms[n] != (types.Bloom{}) {
		h.GasUsed = 50_000
	}
	return h
}

func (s *synthChain) tx(n uint64) *types.Transaction {
	return types.NewTx(&types.LegacyTx{Nonce: n, To: &synthToken, Gas: 100_000, GasPrice: new(big.Int), Value: new(big.Int)})
}

func (s *synthChain) CurrentHeader() *types.Header { return s.header(s.n) }
func (s *synthChain) HeaderByNumber(n uint64) *types.Header {
	if n > s.n {
		return nil
	}
	return s.header(n)
}
func (s *synthChain) BlockByNumber(n uint64) *types.Block {
	if n > s.n {
		return nil
	}
	var txs types.Transactions
	if _, ok := s.receipts[n]; ok {
		txs = types.Transactions{s.tx(n)}
	}
	return types.NewBlockWithHeader(s.header(n)).WithBody(types.Body{Transactions: txs})
}
func (s *synthChain) GetReceipts(n uint64) (types.Receipts, error) {
	if n > s.n {
		return nil, fmt.Errorf("no block %d", n)
	}
	if r, ok := s.receipts[n]; ok {
		return r, nil
	}
	return types.Receipts{}, nil
}

// benchBlocks is $CHARTER_BENCH_GETLOGS_BLOCKS (default 1,000,000).
func benchBlocks(b *testing.B) uint64 {
	if v := os.Getenv("CHARTER_BENCH_GETLOGS_BLOCKS"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 2000 {
			b.Fatalf("CHARTER_BENCH_GETLOGS_BLOCKS=%q: want a number of at least 2000", v)
		}
		return n
	}
	return 1_000_000
}

// A built index is kept for the whole run of the test binary (every
// -count), in $CHARTER_BENCH_DIR (and kept there for later runs) or in a
// temporary folder removed at the end.
var (
	synthMu      sync.Mutex
	synthIndexes = map[uint64]*synthIndexed{}
	synthTmp     string
)

type synthIndexed struct {
	chain *synthChain
	ix    *index.Index
}

func synthIndex(b *testing.B, n uint64) *synthIndexed {
	synthMu.Lock()
	defer synthMu.Unlock()
	if s := synthIndexes[n]; s != nil {
		return s
	}
	dir := os.Getenv("CHARTER_BENCH_DIR")
	if dir == "" {
		if synthTmp == "" {
			d, err := os.MkdirTemp("", "charter-getlogs-bench-")
			if err != nil {
				b.Fatal(err)
			}
			synthTmp = d
		}
		dir = synthTmp
	}
	c := newSynthChain(b, n)
	path := filepath.Join(dir, fmt.Sprintf("getlogs-%d.sqlite", n))
	ix, err := buildSynthIndex(b, c, index.Config{SQLitePath: path})
	if errors.Is(err, index.ErrWrongChain) {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(path + suffix)
		}
		ix, err = buildSynthIndex(b, c, index.Config{SQLitePath: path})
	}
	if err != nil {
		b.Fatal(err)
	}
	s := &synthIndexed{chain: c, ix: ix}
	synthIndexes[n] = s
	return s
}

// buildSynthIndex opens the index of cfg over c and runs it up to c's head.
func buildSynthIndex(b *testing.B, c *synthChain, cfg index.Config) (*index.Index, error) {
	cfg.Source, cfg.ChainID, cfg.BatchBlocks, cfg.PollInterval = fakeSource{c}, c.spec.Config.ChainID, 5000, 10*time.Millisecond
	ix, err := index.Open(cfg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	for {
		if h, ok := ix.LogsIndexed(); ok && h >= c.n {
			break
		}
		select {
		case err := <-done:
			cancel()
			ix.Close()
			return nil, err
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	<-done
	b.Logf("indexed %d blocks in %s", c.n+1, time.Since(start).Round(time.Millisecond))
	return ix, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range synthIndexes {
		s.ix.Close()
	}
	if synthTmp != "" {
		os.RemoveAll(synthTmp)
	}
	os.Exit(code)
}

// BenchmarkGetLogs answers eth_getLogs filters over a chain of
// $CHARTER_BENCH_GETLOGS_BLOCKS mostly empty blocks (default 1,000,000),
// over the whole chain and over its last 10,000 blocks, by walking the
// header blooms and receipts ("receipts") and from the SQLite index
// ("index"). The range limit is raised to the chain's length.
//
//	go test -run X -bench 'BenchmarkGetLogs$' -benchtime 3x ./internal/rpc
func BenchmarkGetLogs(b *testing.B) {
	n := benchBlocks(b)
	s := synthIndex(b, n)
	benchGetLogs(b, s.chain, n, s.ix, true)
}

// BenchmarkGetLogsPostgres is BenchmarkGetLogs's "index" path on an index
// in a throwaway PostgreSQL, built anew at every run (use -count 1).
//
//	go test -run X -bench BenchmarkGetLogsPostgres -benchtime 3x -count 1 ./internal/rpc
func BenchmarkGetLogsPostgres(b *testing.B) {
	n := benchBlocks(b)
	c := newSynthChain(b, n)
	ix, err := buildSynthIndex(b, c, index.Config{PostgresURL: pgtest.Start(b).URL})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	benchGetLogs(b, c, n, ix, false)
}

func benchGetLogs(b *testing.B, c *synthChain, n uint64, ix LogIndex, withReceipts bool) {
	q := defaultQuery
	q.logRange = n + 1
	cfg := DefaultConfig()
	cfg.query = q
	cfg.EnsureDefaults()
	plain := newFilterSystem(c, &cfg)
	defer plain.stop()
	indexed := newFilterSystem(indexedBackend{c, ix}, &cfg)
	defer indexed.stop()
	type path struct {
		name string
		fs   *filterSystem
	}
	paths := []path{{"index", indexed}}
	if withReceipts {
		paths = []path{{"receipts", plain}, {"index", indexed}}
	}

	queries := []struct {
		name string
		crit filters.FilterCriteria
	}{
		{"rare-address", filters.FilterCriteria{Addresses: []common.Address{synthRare}}},
		{"token-address", filters.FilterCriteria{Addresses: []common.Address{synthToken}}},
		{"transfer-from-one", filters.FilterCriteria{Topics: [][]common.Hash{{synthTransfer}, {synthAccount(7)}}}},
		{"no-match", filters.FilterCriteria{Addresses: []common.Address{{0x99}}}},
	}
	ranges := []struct {
		name     string
		from, to uint64
	}{{fmt.Sprintf("%dblocks", n+1), 0, n}, {"10000blocks", n - 9999, n}}
	for _, r := range ranges {
		for _, qq := range queries {
			// What the receipts answer, once, to check every answer by.
			crit := qq.crit
			want, err := plain.logs(context.Background(), &crit, r.from, r.to)
			if err != nil {
				b.Fatal(err)
			}
			for _, p := range paths {
				b.Run(r.name+"/"+qq.name+"/"+p.name, func(b *testing.B) {
					var logs []*types.Log
					for i := 0; i < b.N; i++ {
						var err error
						if logs, err = p.fs.logs(context.Background(), &crit, r.from, r.to); err != nil {
							b.Fatal(err)
						}
					}
					if len(logs) != len(want) {
						b.Fatalf("%d logs, the receipts hold %d", len(logs), len(want))
					}
					b.ReportMetric(float64(len(logs)), "logs")
				})
			}
		}
	}
}
