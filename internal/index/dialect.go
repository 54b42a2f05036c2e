package index

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"modernc.org/sqlite"
)

// dialect is what differs between SQLite and PostgreSQL.
type dialect interface {
	name() string
	schema() []string
	param(i int) string // the i-th (1-based) placeholder
	rebind(q string) string
	maxParams() int
	numericType() string // integers of any size, stored exactly
	boolType() string
}

type sqliteDialect struct{}

func (sqliteDialect) name() string           { return "sqlite" }
func (sqliteDialect) param(int) string       { return "?" }
func (sqliteDialect) rebind(q string) string { return q }
func (sqliteDialect) maxParams() int         { return 30000 }
func (sqliteDialect) numericType() string    { return "TEXT" } // decimal text: NUMERIC affinity would round big values
func (sqliteDialect) boolType() string       { return "INTEGER" }
func (d sqliteDialect) schema() []string     { return schema(d) }

type pgDialect struct{}

func (pgDialect) name() string        { return "postgres" }
func (pgDialect) param(i int) string  { return "$" + strconv.Itoa(i) }
func (pgDialect) maxParams() int      { return 60000 }
func (pgDialect) numericType() string { return "NUMERIC" }
func (pgDialect) boolType() string    { return "BOOLEAN" }
func (d pgDialect) schema() []string  { return schema(d) }
func (pgDialect) rebind(q string) string {
	var sb strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			sb.WriteString("$" + strconv.Itoa(n))
			continue
		}
		sb.WriteRune(c)
	}
	return sb.String()
}

func schema(d dialect) []string {
	num := d.numericType()
	return []string{
		`CREATE TABLE IF NOT EXISTS blocks (number BIGINT PRIMARY KEY, hash TEXT NOT NULL, parent_hash TEXT NOT NULL,
			timestamp BIGINT NOT NULL, gas_used BIGINT NOT NULL, gas_limit BIGINT NOT NULL, tx_count INTEGER NOT NULL, coinbase TEXT NOT NULL)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS blocks_hash ON blocks (hash)`,
		`CREATE TABLE IF NOT EXISTS transactions (hash TEXT PRIMARY KEY, block_number BIGINT NOT NULL, tx_index INTEGER NOT NULL,
			from_addr TEXT, to_addr TEXT, nonce BIGINT NOT NULL, value ` + num + ` NOT NULL, gas BIGINT NOT NULL, input TEXT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS transactions_block ON transactions (block_number, tx_index)`,
		`CREATE INDEX IF NOT EXISTS transactions_from ON transactions (from_addr, block_number)`,
		`CREATE INDEX IF NOT EXISTS transactions_to ON transactions (to_addr, block_number)`,
		`CREATE TABLE IF NOT EXISTS receipts (tx_hash TEXT PRIMARY KEY, block_number BIGINT NOT NULL, tx_index INTEGER NOT NULL,
			status INTEGER NOT NULL, gas_used BIGINT NOT NULL, contract_address TEXT)`,
		`CREATE TABLE IF NOT EXISTS logs (block_number BIGINT NOT NULL, log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL, tx_index INTEGER NOT NULL,
			address TEXT NOT NULL, topic0 TEXT, topic1 TEXT, topic2 TEXT, topic3 TEXT, data TEXT NOT NULL, PRIMARY KEY (block_number, log_index))`,
		`CREATE INDEX IF NOT EXISTS logs_address ON logs (address, block_number)`,
		`CREATE INDEX IF NOT EXISTS logs_topic0 ON logs (topic0, block_number)`,
		`CREATE TABLE IF NOT EXISTS accounts (address TEXT PRIMARY KEY, first_block BIGINT NOT NULL, last_block BIGINT NOT NULL, tx_count BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS checkpoint (id INTEGER PRIMARY KEY, block_number BIGINT NOT NULL, block_hash TEXT NOT NULL)`,
		// One row per (decoded table, contract address): the table holds
		// that address's events up to the main checkpoint.
		`CREATE TABLE IF NOT EXISTS event_tables (table_name TEXT NOT NULL, address TEXT NOT NULL, topic0 TEXT NOT NULL,
			contract TEXT NOT NULL, version BIGINT NOT NULL, event TEXT NOT NULL, signature TEXT NOT NULL, backfilled_to BIGINT NOT NULL,
			PRIMARY KEY (table_name, address))`,
	}
}

// quoteIdent quotes an SQL identifier (both back ends use double quotes).
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

type connector struct {
	d   *sqlite.Driver
	dsn string
}

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return c.d }

func openSQLite(path string) (*sql.DB, *sql.DB, error) {
	u := "file:" + (&url.URL{Path: path}).EscapedPath()
	w := &sqlite.Driver{}
	// The writer's page cache holds 64 MiB (SQLite's default is 2 MiB): a
	// block of thousands of transactions dirties more pages than that, and
	// SQLite then spills them into the WAL in the middle of the
	// transaction and reads them back. Statement journals stay in memory.
	db := sql.OpenDB(connector{w, u + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(OFF)" +
		"&_pragma=cache_size(-65536)&_pragma=temp_store(MEMORY)"})
	db.SetMaxOpenConns(1) // one writer
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("index: open %s: %w", path, err)
	}
	// Readers: read-only file, query_only, and an authorizer that lets a
	// statement only read.
	r := &sqlite.Driver{}
	r.RegisterConnectionHook(func(c sqlite.ExecQuerierContext, _ string) error {
		reg, ok := c.(sqlite.AuthorizerRegisterer)
		if !ok {
			return fmt.Errorf("index: the SQLite driver has no authorizer")
		}
		return reg.RegisterAuthorizer(readOnlyAuthorizer)
	})
	ro := sql.OpenDB(connector{r, u + "?mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(10000)"})
	ro.SetMaxOpenConns(4)
	return db, ro, nil
}

// readOnlyAuthorizer admits reading and calling functions; it denies
// writes, schema changes, ATTACH, PRAGMA and transactions.
func readOnlyAuthorizer(action sqlite.AuthorizerActionCode, arg1, arg2, db, trig string) sqlite.AuthorizerReturnCode {
	switch action {
	case sqlite.AuthSelect, sqlite.AuthRead, sqlite.AuthFunction, sqlite.AuthRecursive:
		return sqlite.AuthorizerOK
	}
	return sqlite.AuthorizerDeny
}

func openPostgres(dsn string) (*sql.DB, *sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("index: open PostgreSQL: %w", err)
	}
	db.SetMaxOpenConns(8)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("index: open PostgreSQL: %w", err)
	}
	return db, db, nil
}
