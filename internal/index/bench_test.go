package index

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/charter-ledger/charter/internal/pgtest"
)

// benchTransfers is the size of the backfill benchmarks' chain:
// $CHARTER_BENCH_INDEX_TXS transactions (default 200,000), 100 a block.
func benchTransfers(b *testing.B) (blocks, perBlock int) {
	n := 200_000
	if s := os.Getenv("CHARTER_BENCH_INDEX_TXS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 100 {
			b.Fatalf("CHARTER_BENCH_INDEX_TXS=%q: want a number of at least 100", s)
		}
		n = v
	}
	return n / 100, 100
}

// BenchmarkBackfillSQLite indexes a chain of transfers (value transfers
// and token transfers with their Transfer logs, as genChain makes them)
// from block 0 into a fresh SQLite file, reading blocks the way a ledger
// gives them (decoded anew, senders not yet recovered).
//
//	CHARTER_BENCH_INDEX_TXS=200000 go test -run X -bench BenchmarkBackfill -benchtime 1x ./internal/index
func BenchmarkBackfillSQLite(b *testing.B) {
	dir := b.TempDir()
	benchBackfill(b, func(i int) Config { return Config{SQLitePath: filepath.Join(dir, fmt.Sprintf("b%d.db", i))} })
}

// BenchmarkBackfillPostgres is BenchmarkBackfillSQLite into a fresh
// database of a throwaway PostgreSQL on the same machine.
func BenchmarkBackfillPostgres(b *testing.B) {
	s := pgtest.Start(b)
	benchBackfill(b, func(i int) Config {
		u, err := s.CreateDB(fmt.Sprintf("backfill%d_%d", time.Now().UnixNano(), i))
		if err != nil {
			b.Fatal(err)
		}
		return Config{PostgresURL: u}
	})
}

func benchBackfill(b *testing.B, db func(i int) Config) {
	blocks, per := benchTransfers(b)
	c := genChain(b, blocks, per, 3)
	rows := len(c.blocks) + 2*c.txs + c.logs // blocks, transactions, receipts, logs
	b.ResetTimer()
	var spent time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		src := newSource(c, uint64(blocks))
		src.fresh = true
		cfg := db(i)
		cfg.Source, cfg.ChainID = src, testChainID
		ix, err := Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if _, err := ix.catchUp(context.Background()); err != nil {
			b.Fatal(err)
		}
		spent += time.Since(start)
		b.StopTimer()
		if n, ok := ix.LogsIndexed(); !ok || n != uint64(blocks) {
			b.Fatalf("indexed %d (%v), want %d", n, ok, blocks)
		}
		ix.Close()
		b.StartTimer()
	}
	sec := spent.Seconds() / float64(b.N)
	b.ReportMetric(float64(len(c.blocks))/sec, "blocks/s")
	b.ReportMetric(float64(c.txs)/sec, "tx/s")
	b.ReportMetric(float64(rows)/sec, "rows/s")
}
