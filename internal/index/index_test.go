package index

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/chaindata"
	"github.com/charter-ledger/charter/internal/pgtest"
)

// backends runs f once on SQLite and once on PostgreSQL. db(name) gives a
// Config naming a fresh (or, for the same name, the same) database.
func backends(t *testing.T, f func(t *testing.T, db func(name string) Config)) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		f(t, func(name string) Config { return Config{SQLitePath: filepath.Join(dir, name+".db")} })
	})
	t.Run("postgres", func(t *testing.T) {
		s := pgtest.Start(t)
		var mu sync.Mutex
		urls := map[string]string{}
		f(t, func(name string) Config {
			mu.Lock()
			defer mu.Unlock()
			if u, ok := urls[name]; ok {
				return Config{PostgresURL: u}
			}
			u, err := s.CreateDB(strings.ToLower(name))
			if err != nil {
				t.Fatal(err)
			}
			urls[name] = u
			return Config{PostgresURL: u}
		})
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func open(t *testing.T, cfg Config, src chaindata.Source) *Index {
	t.Helper()
	cfg.Source = src
	cfg.ChainID = testChainID
	if cfg.BatchBlocks == 0 {
		cfg.BatchBlocks = 7
	}
	ix, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// runUntil runs ix until it has indexed height, then stops it.
func runUntil(t *testing.T, ix *Index, height uint64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	waitFor(t, fmt.Sprintf("height %d", height), func() bool {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		return ix.has.Load() && ix.Indexed() >= height
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
}

func TestIndexEqualsSource(t *testing.T) {
	c := genChain(t, 60, 12, 0)
	backends(t, func(t *testing.T, db func(string) Config) {
		src := newSource(c, 30)
		heads := &chaindata.Heads{}
		cfg := db("equal")
		cfg.Heads = heads
		cfg.PollInterval = time.Hour // only Heads may wake the live loop
		ix := open(t, cfg, src)
		defer ix.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- ix.Run(ctx) }()
		waitFor(t, "backfill to 30", func() bool { return ix.has.Load() && ix.Indexed() == 30 })
		if ix.Lag() != 0 {
			t.Fatalf("lag %d at the head", ix.Lag())
		}
		for _, h := range []uint64{31, 33, 40, 41, 60} { // live: new heads announced
			src.head.Store(h)
			heads.Notify()
			waitFor(t, fmt.Sprintf("live block %d", h), func() bool { return ix.Indexed() == h })
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		checkEqual(t, ix, c, 60)
	})
}

// checkEqual compares every indexed row with the chain, field by field.
func checkEqual(t *testing.T, ix *Index, c *chain, head uint64) {
	t.Helper()
	ctx := context.Background()
	signer := types.LatestSignerForChainID(testChainID)
	type acct struct{ first, last, count int64 }
	wantAccts := map[string]*acct{}
	touch := func(a common.Address, n uint64) {
		k := hexAddr(a)
		if x := wantAccts[k]; x != nil {
			x.last, x.count = int64(n), x.count+1
		} else {
			wantAccts[k] = &acct{int64(n), int64(n), 1}
		}
	}
	count := func(table string) int {
		var n int
		if err := ix.db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var nTx, nLogs int
	for num := uint64(0); num <= head; num++ {
		b := c.blocks[num]
		var hash, parent, coinbase string
		var ts, gasUsed, gasLimit int64
		var txCount int
		err := ix.db.QueryRowContext(ctx, ix.d.rebind(`SELECT hash, parent_hash, timestamp, gas_used, gas_limit, tx_count, coinbase FROM blocks WHERE number = ?`), int64(num)).
			Scan(&hash, &parent, &ts, &gasUsed, &gasLimit, &txCount, &coinbase)
		if err != nil {
			t.Fatalf("block %d: %v", num, err)
		}
		if hash != hexHash(b.Hash()) || parent != hexHash(b.ParentHash()) || uint64(ts) != b.Time() || uint64(gasUsed) != b.GasUsed() ||
			uint64(gasLimit) != b.GasLimit() || txCount != len(b.Transactions()) || coinbase != hexAddr(b.Coinbase()) {
			t.Fatalf("block %d differs: %s %s %d %d %d %d %s", num, hash, parent, ts, gasUsed, gasLimit, txCount, coinbase)
		}
		for i, tx := range b.Transactions() {
			nTx++
			var bn, nonce, gas int64
			var idx int
			var from, to sql.NullString
			var value, input string
			err := ix.db.QueryRowContext(ctx, ix.d.rebind(`SELECT block_number, tx_index, from_addr, to_addr, nonce, value, gas, input FROM transactions WHERE hash = ?`), hexHash(tx.Hash())).
				Scan(&bn, &idx, &from, &to, &nonce, &value, &gas, &input)
			if err != nil {
				t.Fatalf("tx %d/%d: %v", num, i, err)
			}
			wantFrom := sql.NullString{}
			sender, serr := types.Sender(signer, tx)
			if serr == nil {
				wantFrom = sql.NullString{String: hexAddr(sender), Valid: true}
				touch(sender, num)
			}
			wantTo := sql.NullString{}
			if tx.To() != nil {
				wantTo = sql.NullString{String: hexAddr(*tx.To()), Valid: true}
				if serr != nil || sender != *tx.To() {
					touch(*tx.To(), num)
				}
			}
			if uint64(bn) != num || idx != i || from != wantFrom || to != wantTo || uint64(nonce) != tx.Nonce() || value != tx.Value().String() ||
				uint64(gas) != tx.Gas() || input != hexBytes(tx.Data()) {
				t.Fatalf("tx %d/%d differs: %d %d %v %v %d %s %d %s", num, i, bn, idx, from, to, nonce, value, gas, input)
			}
			r := c.receipts[num][i]
			var status, rgas int64
			var created sql.NullString
			err = ix.db.QueryRowContext(ctx, ix.d.rebind(`SELECT block_number, tx_index, status, gas_used, contract_address FROM receipts WHERE tx_hash = ?`), hexHash(tx.Hash())).
				Scan(&bn, &idx, &status, &rgas, &created)
			if err != nil {
				t.Fatalf("receipt %d/%d: %v", num, i, err)
			}
			wantCreated := sql.NullString{}
			if tx.To() == nil {
				wantCreated = sql.NullString{String: hexAddr(r.ContractAddress), Valid: true}
				touch(r.ContractAddress, num)
			}
			if uint64(bn) != num || idx != i || uint64(status) != r.Status || uint64(rgas) != r.GasUsed || created != wantCreated {
				t.Fatalf("receipt %d/%d differs", num, i)
			}
			for _, l := range r.Logs {
				nLogs++
				var txh, addr, data string
				var tidx int
				var tp [4]sql.NullString
				err := ix.db.QueryRowContext(ctx, ix.d.rebind(`SELECT tx_hash, tx_index, address, topic0, topic1, topic2, topic3, data FROM logs WHERE block_number = ? AND log_index = ?`), int64(num), int64(l.Index)).
					Scan(&txh, &tidx, &addr, &tp[0], &tp[1], &tp[2], &tp[3], &data)
				if err != nil {
					t.Fatalf("log %d/%d: %v", num, l.Index, err)
				}
				for k := 0; k < 4; k++ {
					want := sql.NullString{}
					if k < len(l.Topics) {
						want = sql.NullString{String: hexHash(l.Topics[k]), Valid: true}
					}
					if tp[k] != want {
						t.Fatalf("log %d/%d topic %d: %v, want %v", num, l.Index, k, tp[k], want)
					}
				}
				if txh != hexHash(l.TxHash) || tidx != int(l.TxIndex) || addr != hexAddr(l.Address) || data != hexBytes(l.Data) {
					t.Fatalf("log %d/%d differs", num, l.Index)
				}
			}
		}
	}
	if n := count("blocks"); n != int(head)+1 {
		t.Fatalf("%d blocks, want %d", n, head+1)
	}
	if n := count("transactions"); n != nTx {
		t.Fatalf("%d transactions, want %d", n, nTx)
	}
	if n := count("receipts"); n != nTx {
		t.Fatalf("%d receipts, want %d", n, nTx)
	}
	if n := count("logs"); n != nLogs {
		t.Fatalf("%d logs, want %d", n, nLogs)
	}
	if n := count("accounts"); n != len(wantAccts) {
		t.Fatalf("%d accounts, want %d", n, len(wantAccts))
	}
	for a, want := range wantAccts {
		var got acct
		if err := ix.db.QueryRowContext(ctx, ix.d.rebind(`SELECT first_block, last_block, tx_count FROM accounts WHERE address = ?`), a).Scan(&got.first, &got.last, &got.count); err != nil {
			t.Fatalf("account %s: %v", a, err)
		}
		if got != *want {
			t.Fatalf("account %s: %+v, want %+v", a, got, *want)
		}
	}
	var cn int64
	var ch string
	if err := ix.db.QueryRowContext(ctx, `SELECT block_number, block_hash FROM checkpoint WHERE id = 1`).Scan(&cn, &ch); err != nil {
		t.Fatal(err)
	}
	if uint64(cn) != head || ch != hexHash(c.blocks[head].Hash()) {
		t.Fatalf("checkpoint %d %s", cn, ch)
	}
}

// rowsHash hashes every row of every table, in key order.
func rowsHash(t testing.TB, ix *Index) (string, map[string]int) {
	t.Helper()
	tables := []string{"blocks", "transactions", "receipts", "logs", "accounts", "checkpoint", "event_tables"}
	rows, err := ix.db.Query(`SELECT DISTINCT table_name FROM event_tables ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	h := sha256.New()
	counts := map[string]int{}
	for _, tb := range tables {
		rows, err := ix.db.Query(`SELECT * FROM ` + quoteIdent(tb) + ` ORDER BY 1, 2`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					vals[i] = string(b)
				}
			}
			fmt.Fprintf(h, "%s %v\n", tb, vals)
			counts[tb]++
		}
		rows.Close()
	}
	return fmt.Sprintf("%x", h.Sum(nil)), counts
}

const crashChildEnv = "CHARTER_INDEX_CRASH_CHILD"

// TestCrashChild is the process TestCrashResume kills: it indexes slowly
// into the database named by the environment until killed.
func TestCrashChild(t *testing.T) {
	dsn := os.Getenv(crashChildEnv)
	if dsn == "" {
		t.Skip("run by TestCrashResume")
	}
	c := genChain(t, 150, 10, 0)
	src := newSource(c, 150)
	src.delay = 2 * time.Millisecond
	cfg := Config{SQLitePath: dsn, BatchBlocks: 5}
	if strings.HasPrefix(dsn, "postgres://") {
		cfg = Config{PostgresURL: dsn, BatchBlocks: 5}
	}
	ix := open(t, cfg, src)
	ix.Run(context.Background())
}

func TestCrashResume(t *testing.T) {
	c := genChain(t, 150, 10, 0)
	backends(t, func(t *testing.T, db func(string) Config) {
		clean := open(t, db("clean"), newSource(c, 150))
		runUntil(t, clean, 150)
		want, wantCounts := rowsHash(t, clean)
		clean.Close()

		cfg := db("crash")
		dsn := cfg.SQLitePath + cfg.PostgresURL
		// The first run is stopped by cancelling Run between batches.
		ix := open(t, cfg, newSource(c, 150))
		runUntil(t, ix, 20)
		ix.Close()
		// The second is killed with SIGKILL mid-backfill.
		for round := 0; round < 2; round++ {
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
			cmd.Env = append(os.Environ(), crashChildEnv+"="+dsn)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			ro := open(t, cfg, newSource(c, 150))
			start := ro.Indexed()
			waitFor(t, "the child to index some blocks", func() bool {
				var n int64
				ro.db.QueryRow(`SELECT block_number FROM checkpoint WHERE id = 1`).Scan(&n)
				return uint64(n) >= start+30
			})
			ro.Close()
			cmd.Process.Kill()
			cmd.Wait()
		}
		ix = open(t, cfg, newSource(c, 150))
		if ix.Indexed() >= 150 {
			t.Fatalf("the child finished (%d) before it was killed", ix.Indexed())
		}
		t.Logf("resuming after block %d", ix.Indexed())
		runUntil(t, ix, 150)
		got, gotCounts := rowsHash(t, ix)
		if got != want || !reflect.DeepEqual(gotCounts, wantCounts) {
			t.Fatalf("after crashes: %v, clean run: %v", gotCounts, wantCounts)
		}
		checkEqual(t, ix, c, 150)
		ix.Close()
	})
}

func TestWrongChainRefused(t *testing.T) {
	a := genChain(t, 20, 3, 0)
	b := genChain(t, 20, 3, 9)
	backends(t, func(t *testing.T, db func(string) Config) {
		ix := open(t, db("wrong"), newSource(a, 20))
		runUntil(t, ix, 20)
		ix.Close()
		cfg := db("wrong")
		cfg.Source, cfg.ChainID = newSource(b, 20), testChainID
		_, err := Open(cfg)
		if !errors.Is(err, ErrWrongChain) {
			t.Fatalf("Open on another chain: %v", err)
		}
		if !strings.Contains(err.Error(), hexHash(a.blocks[20].Hash())) || !strings.Contains(err.Error(), hexHash(b.blocks[20].Hash())) {
			t.Fatalf("error does not name both hashes: %v", err)
		}
		// A source whose head is below the checkpoint is refused too.
		cfg.Source = newSource(a, 10)
		if _, err := Open(cfg); !errors.Is(err, ErrWrongChain) {
			t.Fatalf("Open below the checkpoint: %v", err)
		}
	})
}

func TestDecodedEvents(t *testing.T) {
	c := genChain(t, 40, 12, 0)
	backends(t, func(t *testing.T, db func(string) Config) {
		reg := &fakeContracts{}
		reg.register(chaindata.Contract{Name: "Other", Version: 1, Address: common.HexToAddress("0x0b")}) // no ABI
		src := newSource(c, 25)
		cfg := db("events")
		cfg.Contracts = reg
		cfg.PollInterval = 5 * time.Millisecond
		ix := open(t, cfg, src)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ix.Run(ctx) }()
		waitFor(t, "backfill", func() bool { return ix.has.Load() && ix.Indexed() == 25 })
		// The token is registered after its history was indexed.
		reg.register(chaindata.Contract{Name: "Token", Version: 1, Address: tokenAddr, ABI: tokenABI})
		count := func(table string) int {
			var n int
			if err := ix.db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
				return -1
			}
			return n
		}
		wantTransfers := func(upTo uint64) int {
			n := 0
			for _, rs := range c.receipts[:upTo+1] {
				for _, r := range rs {
					for _, l := range r.Logs {
						if l.Topics[0] == tokenABI.Events["Transfer"].ID {
							n++
						}
					}
				}
			}
			return n
		}
		waitFor(t, "token_transfer backfilled", func() bool { return count("token_transfer") == wantTransfers(25) })
		src.head.Store(40) // live blocks are decoded as they are indexed
		waitFor(t, "live", func() bool { return ix.Indexed() == 40 })
		cancel()
		<-done
		if n := count("token_transfer"); n != c.transfers || n != wantTransfers(40) {
			t.Fatalf("token_transfer has %d rows, want %d", n, c.transfers)
		}
		// Every row equals the log it decodes.
		rows, err := ix.db.Query(`SELECT block_number, log_index, tx_hash, address, "from", "to", value FROM token_transfer ORDER BY block_number, log_index`)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for rows.Next() {
			var bn, li int64
			var txh, addr, from, to, value string
			if err := rows.Scan(&bn, &li, &txh, &addr, &from, &to, &value); err != nil {
				t.Fatal(err)
			}
			var l *types.Log
			for _, r := range c.receipts[bn] {
				for _, x := range r.Logs {
					if x.Index == uint(li) {
						l = x
					}
				}
			}
			want := new(big.Int).SetBytes(l.Data).String()
			if txh != hexHash(l.TxHash) || addr != hexAddr(tokenAddr) || from != hexAddr(common.BytesToAddress(l.Topics[1].Bytes())) ||
				to != hexAddr(common.BytesToAddress(l.Topics[2].Bytes())) || value != want {
				t.Fatalf("row %d/%d: %s %s %s %s, want value %s", bn, li, txh, from, to, value, want)
			}
			seen++
		}
		rows.Close()
		if seen != c.transfers {
			t.Fatalf("read %d rows", seen)
		}
		// Other types: string, bytes, bool, uint256[] as JSON, an indexed string as its hash.
		var text, blob, list, tag string
		var ok bool
		if err := ix.db.QueryRow(`SELECT text, blob, ok, list, tag FROM token_note_added WHERE block_number = 2`).Scan(&text, &blob, &ok, &list, &tag); err != nil {
			t.Fatal(err)
		}
		if text != "note 2" || blob != "0x020102" || !ok || list != `["1","2"]` || tag != "0x"+common.Bytes2Hex(common.FromHex("0x"+fmt.Sprintf("%x", keccak("tag")))) {
			t.Fatalf("note: %q %q %v %q %q", text, blob, ok, list, tag)
		}
		before, counts := rowsHash(t, ix)
		ix.Close()
		// A restart with the same registry neither backfills again nor duplicates.
		ix = open(t, cfg, src)
		runUntil(t, ix, 40)
		after, counts2 := rowsHash(t, ix)
		if before != after {
			t.Fatalf("restart changed rows: %v → %v", counts, counts2)
		}
		ix.Close()
	})
}

func keccak(s string) []byte { return common.BytesToHash(crypto256(s)).Bytes() }

// Blocks that become final while the live loop lingers after a commit share
// the next one: ten heads announced one by one right after a commit, each
// given the time to be committed alone, make two commits (BatchBlocks 7),
// not ten.
func TestLiveCommitsLinger(t *testing.T) {
	c := genChain(t, 40, 4, 0)
	src := newSource(c, 30)
	heads := &chaindata.Heads{}
	var mu sync.Mutex
	var commits []uint64
	cfg := Config{SQLitePath: filepath.Join(t.TempDir(), "linger.db"), Heads: heads, PollInterval: time.Hour,
		Linger: 2 * time.Second, OnIndexed: func(h uint64) { mu.Lock(); commits = append(commits, h); mu.Unlock() }}
	ix := open(t, cfg, src)
	defer ix.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	waitFor(t, "backfill to 30", func() bool { return ix.has.Load() && ix.Indexed() == 30 })
	mu.Lock()
	backfill := len(commits)
	mu.Unlock()
	start := time.Now()
	for h := uint64(31); h <= 40; h++ {
		src.head.Store(h)
		heads.Notify()
		// Without the linger, each block would be committed alone here.
		for wait := time.Now().Add(50 * time.Millisecond); ix.Indexed() < h && time.Now().Before(wait); {
			time.Sleep(time.Millisecond)
		}
	}
	if time.Since(start) > 1500*time.Millisecond {
		t.Skip("the announcements took longer than the linger could cover on this machine")
	}
	waitFor(t, "live block 40", func() bool { return ix.Indexed() == 40 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if live := commits[backfill:]; len(live) != 2 || live[0] != 37 || live[1] != 40 {
		t.Fatalf("after the backfill's %d commits, the live loop committed at %v; want [37 40]", backfill, live)
	}
	checkEqual(t, ix, c, 40)
}

// The SQLite writer runs with its larger page cache and statement journals
// in memory.
func TestSQLiteWriterPragmas(t *testing.T) {
	c := genChain(t, 2, 1, 0)
	ix := open(t, Config{SQLitePath: filepath.Join(t.TempDir(), "p.db")}, newSource(c, 2))
	defer ix.Close()
	for pragma, want := range map[string]int64{"cache_size": -65536, "temp_store": 2} {
		var got int64
		if err := ix.db.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil || got != want {
			t.Errorf("PRAGMA %s = %d (%v), want %d", pragma, got, err, want)
		}
	}
}
