package index

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

func TestQuery(t *testing.T) {
	c := genChain(t, 20, 6, 0)
	backends(t, func(t *testing.T, db func(string) Config) {
		cfg := db("query")
		cfg.QueryRows = 50
		cfg.QueryBytes = 4096
		cfg.QueryTimeout = 300 * time.Millisecond
		ix := open(t, cfg, newSource(c, 20))
		defer ix.Close()
		runUntil(t, ix, 20)
		ctx := context.Background()

		cols, rows, err := ix.Query(ctx, "SELECT number, hash FROM blocks WHERE number <= 2 ORDER BY number;")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cols, []string{"number", "hash"}) || len(rows) != 3 || fmt.Sprint(rows[2][0]) != "2" || rows[2][1] != hexHash(c.blocks[2].Hash()) {
			t.Fatalf("got %v %v", cols, rows)
		}
		if _, rows, err = ix.Query(ctx, "-- a comment\nWITH t AS (SELECT count(*) AS n FROM transactions) SELECT n FROM t /* ; */"); err != nil || fmt.Sprint(rows[0][0]) != fmt.Sprint(c.txs) {
			t.Fatalf("WITH: %v %v", rows, err)
		}
		if _, _, err := ix.Query(ctx, "EXPLAIN SELECT * FROM logs WHERE address = 'x'"); err != nil {
			t.Fatalf("EXPLAIN: %v", err)
		}
		if _, _, err := ix.Query(ctx, "SELECT ';' AS semi"); err != nil {
			t.Fatalf("a semicolon in a string: %v", err)
		}

		refused := map[string]string{
			"write":             "DELETE FROM blocks",
			"write in a WITH":   "WITH x AS (SELECT 1) DELETE FROM blocks",
			"insert via WITH":   "WITH x AS (SELECT 1) INSERT INTO checkpoint (id, block_number, block_hash) VALUES (7, 1, 'x')",
			"ATTACH":            "ATTACH DATABASE '" + filepath.Join(t.TempDir(), "x.db") + "' AS x",
			"PRAGMA":            "PRAGMA query_only = 0",
			"two statements":    "SELECT 1; DELETE FROM blocks",
			"two selects":       "SELECT 1; SELECT 2",
			"create":            "CREATE TABLE x (a INTEGER)",
			"empty":             "  ",
			"comment then drop": "/* SELECT */ DROP TABLE blocks",
		}
		for name, q := range refused {
			_, _, err := ix.Query(ctx, q)
			if !errors.Is(err, ErrRefused) || !strings.HasPrefix(err.Error(), "sql: only one read-only statement is allowed: ") {
				t.Errorf("%s (%q): %v", name, q, err)
			}
			t.Logf("%s: %v", name, err)
		}
		// The guards behind the statement check: the database itself refuses.
		if _, d := ix.d.(sqliteDialect); d {
			if _, err := ix.ro.Exec("DELETE FROM blocks"); err == nil {
				t.Error("the SQLite read-only connection accepted a write")
			}
			for _, q := range []string{"ATTACH DATABASE ':memory:' AS x", "PRAGMA query_only = 0"} {
				if _, err := ix.ro.Exec(q); err == nil {
					t.Errorf("the SQLite authorizer admitted %q", q)
				}
			}
		}

		start := time.Now()
		_, _, err = ix.Query(ctx, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")
		if err == nil || !strings.Contains(err.Error(), "time limit") {
			t.Errorf("a long query: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("a long query ran %s", d)
		}
		_, _, err = ix.Query(ctx, "SELECT hash FROM transactions")
		if err == nil || !strings.Contains(err.Error(), "row limit") {
			t.Errorf("over the row limit: %v", err)
		}
		// Two 66-character hashes of 21 blocks fit in 4096 bytes; four do not.
		if _, rows, err := ix.Query(ctx, "SELECT hash, parent_hash FROM blocks"); err != nil || len(rows) != 21 {
			t.Errorf("under the size limit: %d rows, %v", len(rows), err)
		}
		_, _, err = ix.Query(ctx, "SELECT hash, parent_hash, hash AS h2, parent_hash AS p2 FROM blocks")
		if err == nil || !strings.Contains(err.Error(), "size limit") {
			t.Errorf("over the size limit: %v", err)
		}
		var n int
		if err := ix.db.QueryRow("SELECT count(*) FROM blocks").Scan(&n); err != nil || n != 21 {
			t.Fatalf("blocks after refusals: %d %v", n, err)
		}
	})
}

func TestLogs(t *testing.T) {
	c := genChain(t, 30, 9, 0)
	backends(t, func(t *testing.T, db func(string) Config) {
		cfg := db("logs")
		cfg.LogsLimit = 1000
		ix := open(t, cfg, newSource(c, 30))
		defer ix.Close()
		runUntil(t, ix, 30)
		transfer := tokenABI.Events["Transfer"].ID
		note := tokenABI.Events["NoteAdded"].ID
		var someone common.Hash
		for _, r := range c.receipts[3] {
			if len(r.Logs) > 0 {
				someone = r.Logs[0].Topics[1]
				break
			}
		}
		filters := []struct {
			from, to uint64
			addrs    []common.Address
			topics   [][]common.Hash
		}{
			{0, 30, nil, nil},
			{5, 9, []common.Address{tokenAddr}, nil},
			{0, 30, []common.Address{common.HexToAddress("0x99")}, nil},
			{0, 30, nil, [][]common.Hash{{note}}},
			{0, 30, nil, [][]common.Hash{{transfer, note}, {someone}}},
			{0, 30, nil, [][]common.Hash{nil, nil, {someone}}},
			{0, 30, nil, [][]common.Hash{{transfer, note}, nil}},      // NoteAdded has 2 topics, Transfer 3
			{0, 30, nil, [][]common.Hash{{transfer, note}, nil, nil}}, // Transfer only
			{0, 30, nil, [][]common.Hash{nil, nil, nil, nil}},         // no log has 4 topics
		}
		for i, f := range filters {
			got, err := ix.Logs(context.Background(), f.from, f.to, f.addrs, f.topics)
			if err != nil {
				t.Fatalf("filter %d: %v", i, err)
			}
			var want []*types.Log
			for n := f.from; n <= f.to; n++ {
				for _, r := range c.receipts[n] {
					for _, l := range r.Logs {
						if matches(l, f.addrs, f.topics) {
							want = append(want, l)
						}
					}
				}
			}
			if len(got) != len(want) {
				t.Fatalf("filter %d: %d logs, want %d", i, len(got), len(want))
			}
			for j := range want {
				if !reflect.DeepEqual(got[j], want[j]) {
					t.Fatalf("filter %d log %d: %+v, want %+v", i, j, got[j], want[j])
				}
			}
		}
		ix.cfg.LogsLimit = 3
		if _, err := ix.Logs(context.Background(), 0, 30, nil, nil); err == nil || !strings.Contains(err.Error(), "more than 3 logs") {
			t.Fatalf("over the cap: %v", err)
		}
	})
}

func matches(l *types.Log, addrs []common.Address, topics [][]common.Hash) bool {
	if len(addrs) > 0 {
		ok := false
		for _, a := range addrs {
			ok = ok || a == l.Address
		}
		if !ok {
			return false
		}
	}
	if len(topics) > len(l.Topics) {
		return false
	}
	for i, set := range topics {
		if len(set) == 0 {
			continue
		}
		ok := false
		for _, h := range set {
			ok = ok || h == l.Topics[i]
		}
		if !ok {
			return false
		}
	}
	return true
}
