// Package index follows a node's final blocks into SQL (SQLite or
// PostgreSQL) so that blocks, transactions, receipts, logs, touched
// accounts and the decoded events of registered contracts can be queried.
//
// Guarantees:
//   - Every block's rows and the checkpoint (last indexed block number and
//     hash) are written in one database transaction, so an indexer killed at
//     any moment resumes after the checkpoint with no gap and no duplicate.
//   - On start the checkpoint's block hash must equal the source's block at
//     that height; otherwise Open refuses (the database is of another chain).
//   - Decoded event tables (one per registered contract and event) are
//     created when the registry changes and backfilled from the raw logs
//     already indexed, in the same transaction as their own checkpoint.
//   - Query runs only one read-only statement, with a row and time limit.
//   - Governance's proposals and votes (governance_proposals,
//     governance_votes), each organization's usage per day (usage) and the
//     system contracts' other events (system_<event>) are written in the
//     transaction of their block; governance.go, usage.go and
//     systemevents.go give their columns. Usage, and what governance decides at the start
//     of a block (execution, failure), need a Source that is also a
//     chaindata.SystemSource; without one the usage table stays empty.
//
// Only final blocks are read (chaindata.Source never forks), so the index
// never rolls back.
package index

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/chaindata"
)

// Config configures an Index. Exactly one of SQLitePath and PostgresURL
// must be set.
type Config struct {
	SQLitePath  string // an SQLite database file (created if absent)
	PostgresURL string // postgres://user@host:port/db?sslmode=...
	Source      chaindata.Source
	Heads       *chaindata.Heads    // wakes the live loop; may be nil (ticker only)
	Contracts   chaindata.Contracts // registered contracts; may be nil (no decoded tables)
	ChainID     *big.Int            // to recover transaction senders
	Log         *slog.Logger        // may be nil

	BatchBlocks  int           // most blocks per backfill transaction; default 500
	BatchTxs     int           // most transactions per backfill transaction; default 20000
	QueryRows    int           // Query's row limit; default 10000
	QueryBytes   int           // Query's limit on the result's text and blob bytes; default 32 MiB
	QueryTimeout time.Duration // Query's time limit; default 5s
	LogsLimit    int           // Logs' result cap; default 10000
	PollInterval time.Duration // fallback wake-up in the live loop; default 250ms
	// Linger is the least time between two database commits of the live
	// loop, so that the blocks of a fast chain share one: a single node
	// at 1,000 transactions a second makes about a hundred blocks a
	// second. Default 100ms; negative: none (a commit for every wake-up).
	Linger time.Duration

	// OnIndexed, if set, is called after each database commit of blocks
	// with the last block number it holds; every block up to it is then
	// queryable. It is called from the indexer's goroutine, one call at a
	// time, and must return quickly.
	OnIndexed func(height uint64)
}

// Index is a running indexer over one database.
type Index struct {
	cfg    Config
	d      dialect
	db     *sql.DB // writer
	ro     *sql.DB // read-only queries
	log    *slog.Logger
	signer types.Signer

	indexed atomic.Uint64
	has     atomic.Bool // something is indexed (block 0 included)
	head    atomic.Uint64

	mu sync.Mutex // one writer
	// inserts holds, for the tables every batch writes, the INSERT of a
	// full chunk (insertChunk rows) prepared once on the writer at Open,
	// by its text; a transaction runs it with Tx.StmtContext, which reuses
	// the statement already prepared on the writer's one connection
	// instead of parsing it again in every batch. Fixed after Open (at
	// most len(hotInserts) entries); closed by Close.
	inserts   map[string]*sql.Stmt
	evGen     uint64
	evGenSet  bool
	evSources map[evKey]*eventTable // (address, topic0) → table
}

// ErrWrongChain is returned by Open when the checkpoint's block is not the
// source's block at that height.
var ErrWrongChain = errors.New("index: checkpoint is not on the source's chain")

// Open opens (creating if needed) the index database and checks its
// checkpoint against cfg.Source.
func Open(cfg Config) (*Index, error) {
	if cfg.Source == nil {
		return nil, errors.New("index: no Source")
	}
	if (cfg.SQLitePath == "") == (cfg.PostgresURL == "") {
		return nil, errors.New("index: set exactly one of SQLitePath and PostgresURL")
	}
	if cfg.BatchBlocks <= 0 {
		cfg.BatchBlocks = 500
	}
	if cfg.BatchTxs <= 0 {
		cfg.BatchTxs = 20000
	}
	if cfg.QueryRows <= 0 {
		cfg.QueryRows = 10000
	}
	if cfg.QueryBytes <= 0 {
		cfg.QueryBytes = 32 << 20
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 5 * time.Second
	}
	if cfg.LogsLimit <= 0 {
		cfg.LogsLimit = 10000
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if cfg.Linger == 0 {
		cfg.Linger = 100 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	chainID := cfg.ChainID
	if chainID == nil {
		chainID = new(big.Int)
	}
	ix := &Index{cfg: cfg, log: cfg.Log, signer: types.LatestSignerForChainID(chainID), evSources: map[evKey]*eventTable{}}
	var err error
	if cfg.SQLitePath != "" {
		ix.d = sqliteDialect{}
		ix.db, ix.ro, err = openSQLite(cfg.SQLitePath)
	} else {
		ix.d = pgDialect{}
		ix.db, ix.ro, err = openPostgres(cfg.PostgresURL)
	}
	if err != nil {
		return nil, err
	}
	if err := ix.init(); err != nil {
		ix.Close()
		return nil, err
	}
	if err := ix.initSystem(); err != nil { // governance.go
		ix.Close()
		return nil, err
	}
	if err := ix.prepareInserts(); err != nil {
		ix.Close()
		return nil, err
	}
	return ix, nil
}

// Close closes the database connections. Call it after Run has returned.
func (ix *Index) Close() error {
	var err error
	for _, st := range ix.inserts {
		err = errors.Join(err, st.Close())
	}
	err = errors.Join(err, ix.db.Close())
	if ix.ro != nil && ix.ro != ix.db {
		err = errors.Join(err, ix.ro.Close())
	}
	return err
}

// Indexed is the last indexed block number (0 also before any block).
func (ix *Index) Indexed() uint64 { return ix.indexed.Load() }

// execer is a transaction.
type execer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	StmtContext(ctx context.Context, stmt *sql.Stmt) *sql.Stmt
}

// Lag is how many final blocks the source holds beyond the last indexed
// one, as of the indexer's last look at the head.
func (ix *Index) Lag() uint64 {
	h, n := ix.head.Load(), ix.indexed.Load()
	if !ix.has.Load() {
		return h + 1
	}
	if h < n {
		return 0
	}
	return h - n
}

func (ix *Index) init() error {
	ctx := context.Background()
	for _, s := range ix.d.schema() {
		if _, err := ix.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("index: schema: %w", err)
		}
	}
	var num int64
	var hash string
	err := ix.db.QueryRowContext(ctx, `SELECT block_number, block_hash FROM checkpoint WHERE id = 1`).Scan(&num, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("index: read checkpoint: %w", err)
	}
	b := ix.cfg.Source.BlockByNumber(uint64(num))
	if b == nil {
		return fmt.Errorf("%w: checkpoint block %d (hash %s) is above the source's head", ErrWrongChain, num, hash)
	}
	if got := hexHash(b.Hash()); got != hash {
		return fmt.Errorf("%w: block %d is %s in the index but %s in the source", ErrWrongChain, num, hash, got)
	}
	ix.indexed.Store(uint64(num))
	ix.has.Store(true)
	return nil
}

// Run indexes from the checkpoint to the head, then follows new final
// blocks until ctx ends. It returns ctx's error, or the first error.
func (ix *Index) Run(ctx context.Context) error {
	ticker := time.NewTicker(ix.cfg.PollInterval)
	defer ticker.Stop()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	for {
		var changed <-chan struct{}
		if ix.cfg.Heads != nil {
			changed = ix.cfg.Heads.Changed()
		}
		err := ix.syncEvents(ctx)
		wrote := 0
		if err == nil {
			wrote, err = ix.catchUp(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				// A transaction begun with ctx is rolled back when ctx ends,
				// and its statements then fail with "statement is closed":
				// the stop, not the write, is what happened.
				return ctx.Err()
			}
			return err
		}
		if wrote > 0 && ix.cfg.Linger > 0 {
			// Blocks committed meanwhile wait for the next commit.
			linger.Reset(ix.cfg.Linger)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-linger.C:
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-ticker.C:
		}
	}
}

// catchUp indexes every block up to the current head.
func (ix *Index) catchUp(ctx context.Context) (int, error) {
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		h := ix.cfg.Source.Head()
		if h == nil {
			return total, nil
		}
		head := h.Number.Uint64()
		ix.head.Store(head)
		next := uint64(0)
		if ix.has.Load() {
			next = ix.indexed.Load() + 1
		}
		if base := chaindata.BaseOf(ix.cfg.Source); next > 0 && next < base {
			// A node started from a snapshot holds no blocks below it.
			ix.log.Info("Indexing from the snapshot the node started from: the blocks below it are not on this node", "from", base, "absent", fmt.Sprintf("%d-%d", next, base-1))
			next = base
		}
		if next > head {
			return total, nil
		}
		n, err := ix.indexBatch(ctx, next, head)
		total += n
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, nil
		}
	}
}

type blockData struct {
	block    *types.Block
	receipts types.Receipts
	senders  []*common.Address
}

// indexBatch writes blocks from..(at most to) in one transaction.
func (ix *Index) indexBatch(ctx context.Context, from, to uint64) (int, error) {
	var batch []blockData
	txs := 0
	for n := from; n <= to && len(batch) < ix.cfg.BatchBlocks && txs < ix.cfg.BatchTxs; n++ {
		b := ix.cfg.Source.BlockByNumber(n)
		if b == nil {
			break
		}
		rs, err := ix.cfg.Source.Receipts(n)
		if err != nil {
			return 0, fmt.Errorf("index: receipts of block %d: %w", n, err)
		}
		if len(rs) != len(b.Transactions()) {
			return 0, fmt.Errorf("index: block %d has %d transactions but %d receipts", n, len(b.Transactions()), len(rs))
		}
		batch = append(batch, blockData{block: b, receipts: rs, senders: make([]*common.Address, len(rs))})
		txs += len(rs)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
	if len(batch) == 0 {
		return 0, nil
	}
	ix.recoverSenders(batch)
	sys, err := ix.readSystem(ctx, batch) // governance.go
	if err != nil {
		return 0, err
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	tx, err := ix.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if err := ix.writeBatch(ctx, tx, batch); err != nil {
		return 0, err
	}
	if err := ix.writeSystem(ctx, tx, batch, sys); err != nil {
		return 0, err
	}
	last := batch[len(batch)-1].block
	if _, err := tx.ExecContext(ctx, ix.d.rebind(`INSERT INTO checkpoint(id, block_number, block_hash) VALUES (1, ?, ?)
		ON CONFLICT(id) DO UPDATE SET block_number = excluded.block_number, block_hash = excluded.block_hash`),
		int64(last.NumberU64()), hexHash(last.Hash())); err != nil {
		return 0, fmt.Errorf("index: checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("index: commit: %w", err)
	}
	ix.indexed.Store(last.NumberU64())
	ix.has.Store(true)
	if ix.cfg.OnIndexed != nil {
		ix.cfg.OnIndexed(last.NumberU64())
	}
	return len(batch), nil
}

// recoverSenders recovers every transaction's sender on all cores.
func (ix *Index) recoverSenders(batch []blockData) {
	type job struct{ b, i int }
	jobs := make(chan job, 256)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				tx := batch[j.b].block.Transactions()[j.i]
				if from, err := types.Sender(ix.signer, tx); err == nil {
					batch[j.b].senders[j.i] = &from
				}
			}
		}()
	}
	for b := range batch {
		for i := range batch[b].senders {
			jobs <- job{b, i}
		}
	}
	close(jobs)
	wg.Wait()
}

type acct struct {
	first, last uint64
	count       int64
}

func (ix *Index) writeBatch(ctx context.Context, tx *sql.Tx, batch []blockData) error {
	var blocks, txRows, rcRows, logRows [][]any
	accts := map[common.Address]*acct{}
	touch := func(a common.Address, n uint64) {
		if x := accts[a]; x != nil {
			x.last = n
			x.count++
		} else {
			accts[a] = &acct{first: n, last: n, count: 1}
		}
	}
	dec := newEventRows()
	for _, bd := range batch {
		b := bd.block
		n := b.NumberU64()
		blocks = append(blocks, []any{int64(n), hexHash(b.Hash()), hexHash(b.ParentHash()), u64(b.Time()), u64(b.GasUsed()), u64(b.GasLimit()), len(b.Transactions()), hexAddr(b.Coinbase())})
		for i, t := range b.Transactions() {
			r := bd.receipts[i]
			var from, to any
			if s := bd.senders[i]; s != nil {
				from = hexAddr(*s)
				touch(*s, n)
			}
			if t.To() != nil {
				to = hexAddr(*t.To())
				if s := bd.senders[i]; s == nil || *s != *t.To() {
					touch(*t.To(), n)
				}
			}
			var created any
			if t.To() == nil && r.ContractAddress != (common.Address{}) {
				created = hexAddr(r.ContractAddress)
				touch(r.ContractAddress, n)
			}
			th := hexHash(t.Hash())
			txRows = append(txRows, []any{th, int64(n), i, from, to, u64(t.Nonce()), t.Value().String(), u64(t.Gas()), hexBytes(t.Data())})
			rcRows = append(rcRows, []any{th, int64(n), i, int64(r.Status), u64(r.GasUsed), created})
			for _, l := range r.Logs {
				row := []any{int64(n), int64(l.Index), th, i, hexAddr(l.Address), nil, nil, nil, nil, hexBytes(l.Data)}
				for k := 0; k < len(l.Topics) && k < 4; k++ {
					row[5+k] = hexHash(l.Topics[k])
				}
				logRows = append(logRows, row)
				if len(l.Topics) > 0 {
					if et := ix.evSources[evKey{l.Address, l.Topics[0]}]; et != nil {
						dec.add(et, n, uint64(l.Index), t.Hash(), l)
					}
				}
			}
		}
	}
	if err := ix.insert(ctx, tx, "blocks", blockCols, blocks, ""); err != nil {
		return err
	}
	if err := ix.insert(ctx, tx, "transactions", txCols, txRows, ""); err != nil {
		return err
	}
	if err := ix.insert(ctx, tx, "receipts", receiptCols, rcRows, ""); err != nil {
		return err
	}
	if err := ix.insert(ctx, tx, "logs", logCols, logRows, ""); err != nil {
		return err
	}
	var acRows [][]any
	for a, x := range accts {
		acRows = append(acRows, []any{hexAddr(a), u64(x.first), u64(x.last), x.count})
	}
	if err := ix.insert(ctx, tx, "accounts", accountCols, acRows, accountsUpsert); err != nil {
		return err
	}
	return dec.write(ctx, ix, tx)
}

var (
	blockCols   = []string{"number", "hash", "parent_hash", "timestamp", "gas_used", "gas_limit", "tx_count", "coinbase"}
	txCols      = []string{"hash", "block_number", "tx_index", "from_addr", "to_addr", "nonce", "value", "gas", "input"}
	receiptCols = []string{"tx_hash", "block_number", "tx_index", "status", "gas_used", "contract_address"}
	logCols     = []string{"block_number", "log_index", "tx_hash", "tx_index", "address", "topic0", "topic1", "topic2", "topic3", "data"}
	accountCols = []string{"address", "first_block", "last_block", "tx_count"}
)

// hotInserts are the inserts of every batch, whose full-chunk statement
// Open prepares once (see Index.inserts).
var hotInserts = []struct {
	table  string
	cols   []string
	suffix string
}{
	{"blocks", blockCols, ""},
	{"transactions", txCols, ""},
	{"receipts", receiptCols, ""},
	{"logs", logCols, ""},
	{"accounts", accountCols, accountsUpsert},
}

const accountsUpsert = ` ON CONFLICT(address) DO UPDATE SET last_block = excluded.last_block, tx_count = accounts.tx_count + excluded.tx_count`

func (ix *Index) prepareInserts() error {
	ix.inserts = make(map[string]*sql.Stmt, len(hotInserts))
	for _, h := range hotInserts {
		q := ix.insertSQL(h.table, h.cols, ix.insertChunk(len(h.cols)), h.suffix)
		st, err := ix.db.Prepare(q)
		if err != nil {
			return fmt.Errorf("index: prepare insert into %s: %w", h.table, err)
		}
		ix.inserts[q] = st
	}
	return nil
}

// insertChunk is how many rows of cols one INSERT statement writes.
func (ix *Index) insertChunk(cols int) int {
	return min(ix.d.maxParams()/cols, 500)
}

// insertSQL is the INSERT of k rows of cols into table.
func (ix *Index) insertSQL(table string, cols []string, k int, suffix string) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + quoteIdent(table) + " (")
	for i, c := range cols {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(quoteIdent(c))
	}
	sb.WriteString(") VALUES ")
	p := 1
	for r := 0; r < k; r++ {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for c := range cols {
			if c > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(ix.d.param(p))
			p++
		}
		sb.WriteByte(')')
	}
	sb.WriteString(suffix)
	return sb.String()
}

// insert writes rows with multi-row INSERTs of at most maxParams values.
func (ix *Index) insert(ctx context.Context, tx execer, table string, cols []string, rows [][]any, suffix string) error {
	if len(rows) == 0 {
		return nil
	}
	per := ix.insertChunk(len(cols))
	var stmt *sql.Stmt
	stmtRows := 0
	defer func() {
		if stmt != nil {
			stmt.Close()
		}
	}()
	args := make([]any, 0, per*len(cols))
	for start := 0; start < len(rows); start += per {
		end := min(start+per, len(rows))
		k := end - start
		if stmt == nil || stmtRows != k {
			if stmt != nil {
				stmt.Close()
			}
			q := ix.insertSQL(table, cols, k, suffix)
			if st := ix.inserts[q]; st != nil {
				stmt = tx.StmtContext(ctx, st)
			} else {
				var err error
				if stmt, err = tx.PrepareContext(ctx, q); err != nil {
					return fmt.Errorf("index: prepare insert into %s: %w", table, err)
				}
			}
			stmtRows = k
		}
		args = args[:0]
		for _, r := range rows[start:end] {
			args = append(args, r...)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("index: insert into %s: %w", table, err)
		}
	}
	return nil
}

func hexHash(h common.Hash) string { return h.Hex() }

// hexAddr is the address in lowercase hex with 0x, as strings.ToLower of
// a.Hex() but without the EIP-55 checksum's keccak256, which a.Hex()
// computes only for ToLower to undo (several per indexed transaction).
func hexAddr(a common.Address) string {
	var buf [2 + 2*common.AddressLength]byte
	buf[0], buf[1] = '0', 'x'
	hex.Encode(buf[2:], a[:])
	return string(buf[:])
}
func hexBytes(b []byte) string { return "0x" + common.Bytes2Hex(b) }

// u64 stores a uint64 as int64; values above MaxInt64 (never seen in
// practice for gas, nonces and times) are clamped.
func u64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}
