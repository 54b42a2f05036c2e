package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrRefused is wrapped by every refusal of Query's statement checks.
var ErrRefused = errors.New("sql: only one read-only statement is allowed")

// checkStatement admits one SELECT, WITH or EXPLAIN statement (a final
// semicolon allowed) and returns it without the semicolon. It is the first
// of several guards: the database itself also refuses writes (a read-only
// connection and authorizer on SQLite, a READ ONLY transaction on
// PostgreSQL).
func checkStatement(q string) (string, error) {
	end := -1 // index of the first top-level semicolon
	first := ""
	i := 0
	for i < len(q) && end < 0 {
		c := q[i]
		switch {
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			for i < len(q) && q[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				return "", fmt.Errorf("%w: unterminated comment", ErrRefused)
			}
			i += j + 4
			continue
		case c == '\'' || c == '"' || c == '`' || c == '[':
			close := c
			if c == '[' {
				close = ']'
			}
			j := i + 1
			for j < len(q) {
				if q[j] == close {
					if j+1 < len(q) && q[j+1] == close && close != ']' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			if j >= len(q) {
				return "", fmt.Errorf("%w: unterminated quote", ErrRefused)
			}
			i = j + 1
			continue
		case c == '$':
			// PostgreSQL dollar quoting: $tag$ ... $tag$
			j := i + 1
			for j < len(q) && (q[j] == '_' || isAlnum(q[j])) {
				j++
			}
			if j < len(q) && q[j] == '$' && (j == i+1 || !isDigit(q[i+1])) {
				tag := q[i : j+1]
				k := strings.Index(q[j+1:], tag)
				if k < 0 {
					return "", fmt.Errorf("%w: unterminated dollar quote", ErrRefused)
				}
				i = j + 1 + k + len(tag)
				continue
			}
		case c == ';':
			end = i
			continue
		case first == "" && isAlnum(c):
			j := i
			for j < len(q) && (isAlnum(q[j]) || q[j] == '_') {
				j++
			}
			first = strings.ToUpper(q[i:j])
			i = j
			continue
		}
		i++
	}
	if end >= 0 {
		rest := strings.TrimSpace(stripComments(q[end+1:]))
		if rest != "" {
			return "", fmt.Errorf("%w: found more than one statement", ErrRefused)
		}
		q = q[:end]
	}
	switch first {
	case "SELECT", "WITH", "EXPLAIN":
		return q, nil
	case "":
		return "", fmt.Errorf("%w: empty statement", ErrRefused)
	case "ATTACH", "DETACH", "PRAGMA":
		return "", fmt.Errorf("%w: %s is refused", ErrRefused, first)
	}
	return "", fmt.Errorf("%w: %s is not a SELECT, WITH or EXPLAIN statement", ErrRefused, first)
}

func stripComments(s string) string {
	for {
		s = strings.TrimSpace(s)
		switch {
		case strings.HasPrefix(s, "--"):
			if j := strings.IndexByte(s, '\n'); j >= 0 {
				s = s[j+1:]
			} else {
				return ""
			}
		case strings.HasPrefix(s, "/*"):
			if j := strings.Index(s, "*/"); j >= 0 {
				s = s[j+2:]
			} else {
				return s
			}
		default:
			return s
		}
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

// Query runs one read-only statement with the configured row and time
// limits and returns its columns and rows (integers, floats, strings,
// booleans, times or nil). A result of more rows than the limit is an
// error rather than a silent truncation.
func (ix *Index) Query(ctx context.Context, q string, args ...any) ([]string, [][]any, error) {
	stmtText, err := checkStatement(q)
	if err != nil {
		return nil, nil, err
	}
	limit := ix.cfg.QueryTimeout
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var rows *sql.Rows
	if _, ok := ix.d.(pgDialect); ok {
		tx, err := ix.ro.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return nil, nil, ix.queryErr(ctx, err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", limit.Milliseconds())); err != nil {
			return nil, nil, ix.queryErr(ctx, err)
		}
		if rows, err = tx.QueryContext(ctx, stmtText, args...); err != nil {
			return nil, nil, ix.queryErr(ctx, err)
		}
	} else {
		stmt, err := ix.ro.PrepareContext(ctx, stmtText)
		if err != nil {
			return nil, nil, ix.queryErr(ctx, err)
		}
		defer stmt.Close()
		if rows, err = stmt.QueryContext(ctx, args...); err != nil {
			return nil, nil, ix.queryErr(ctx, err)
		}
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, ix.queryErr(ctx, err)
	}
	var out [][]any
	size := 0 // bytes of text and blobs held, plus a word per value
	for rows.Next() {
		if len(out) >= ix.cfg.QueryRows {
			return nil, nil, fmt.Errorf("sql: the result has more than %d rows (the row limit)", ix.cfg.QueryRows)
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, ix.queryErr(ctx, err)
		}
		for i, v := range vals {
			switch x := v.(type) {
			case []byte:
				vals[i] = string(x)
			case fmt.Stringer:
				if _, isTime := v.(time.Time); !isTime {
					vals[i] = x.String()
				}
			}
			size += 8
			if s, ok := vals[i].(string); ok {
				size += len(s)
			}
		}
		if size > ix.cfg.QueryBytes {
			return nil, nil, fmt.Errorf("sql: the result is larger than %d bytes (the size limit); select fewer columns or rows", ix.cfg.QueryBytes)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, ix.queryErr(ctx, err)
	}
	return cols, out, nil
}

func (ix *Index) queryErr(ctx context.Context, err error) error {
	var pgErr *pgconn.PgError
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &pgErr) && pgErr.Code == "57014") {
		return fmt.Errorf("sql: the statement ran over the time limit of %s", ix.cfg.QueryTimeout)
	}
	if errors.As(err, &pgErr) && pgErr.Code == "25006" { // read_only_sql_transaction
		return fmt.Errorf("%w: %s", ErrRefused, pgErr.Message)
	}
	msg := err.Error()
	if strings.Contains(msg, "not authorized") || strings.Contains(msg, "readonly") || strings.Contains(msg, "read-only") {
		return fmt.Errorf("%w: %s", ErrRefused, msg)
	}
	return fmt.Errorf("sql: %w", err)
}

// Logs answers an eth_getLogs filter: logs of blocks from..to (inclusive)
// emitted by one of addresses (any if empty) whose i-th topic is one of
// topics[i] (any if empty), in chain order. As in eth_getLogs, a log has
// to have at least len(topics) topics. More matches than the configured
// cap is an error.
func (ix *Index) Logs(ctx context.Context, from, to uint64, addresses []common.Address, topics [][]common.Hash) ([]*types.Log, error) {
	out, err := ix.FilterLogs(ctx, from, to, addresses, topics, ix.cfg.LogsLimit)
	if err != nil {
		return nil, err
	}
	if len(out) > ix.cfg.LogsLimit {
		return nil, fmt.Errorf("index: more than %d logs match; narrow the block range or the filter", ix.cfg.LogsLimit)
	}
	return out, nil
}

// LogsIndexed is the last block whose logs the index holds, and false
// while it holds none.
func (ix *Index) LogsIndexed() (uint64, bool) {
	if !ix.has.Load() {
		return 0, false
	}
	return ix.indexed.Load(), true
}

// FilterLogs is Logs with a cap of max (at least 1) instead of the
// configured one: it returns at most max+1 logs, so that more than max
// matches can be told apart from exactly max. The logs carry every field
// a node's receipts give them (block hash, number and time, transaction
// hash and index, log index); Topics is never nil.
func (ix *Index) FilterLogs(ctx context.Context, from, to uint64, addresses []common.Address, topics [][]common.Hash, max int) ([]*types.Log, error) {
	if len(topics) > 4 {
		return nil, fmt.Errorf("index: at most 4 topic positions, got %d", len(topics))
	}
	if from > to {
		return nil, fmt.Errorf("index: from block %d is after to block %d", from, to)
	}
	if max < 1 {
		max = 1
	}
	var sb strings.Builder
	args := []any{u64(from), u64(to)}
	sb.WriteString(`SELECT l.block_number, l.log_index, l.tx_hash, l.tx_index, l.address, l.topic0, l.topic1, l.topic2, l.topic3, l.data, b.hash, b.timestamp
		FROM logs l JOIN blocks b ON b.number = l.block_number WHERE l.block_number >= ? AND l.block_number <= ?`)
	in := func(col string, vals []string) {
		sb.WriteString(" AND " + col + " IN (")
		for i, v := range vals {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("?")
			args = append(args, v)
		}
		sb.WriteString(")")
	}
	if len(addresses) > 0 {
		vals := make([]string, len(addresses))
		for i, a := range addresses {
			vals[i] = hexAddr(a)
		}
		in("l.address", vals)
	}
	for i, set := range topics {
		if len(set) == 0 {
			continue
		}
		vals := make([]string, len(set))
		for j, h := range set {
			vals[j] = hexHash(h)
		}
		in(fmt.Sprintf("l.topic%d", i), vals)
	}
	if n := len(topics); n > 0 && len(topics[n-1]) == 0 {
		// Topics are stored from topic0 on without gaps.
		sb.WriteString(fmt.Sprintf(" AND l.topic%d IS NOT NULL", n-1))
	}
	sb.WriteString(fmt.Sprintf(" ORDER BY l.block_number, l.log_index LIMIT %d", max+1))
	rows, err := ix.ro.QueryContext(ctx, ix.d.rebind(sb.String()), args...)
	if err != nil {
		return nil, fmt.Errorf("index: logs: %w", err)
	}
	defer rows.Close()
	var out []*types.Log
	for rows.Next() {
		var b, li, ti, ts int64
		var txh, addr, data, bh string
		var t [4]*string
		if err := rows.Scan(&b, &li, &txh, &ti, &addr, &t[0], &t[1], &t[2], &t[3], &data, &bh, &ts); err != nil {
			return nil, err
		}
		l := &types.Log{Address: common.HexToAddress(addr), Topics: []common.Hash{}, Data: common.FromHex(data), BlockNumber: uint64(b),
			TxHash: common.HexToHash(txh), TxIndex: uint(ti), BlockHash: common.HexToHash(bh), BlockTimestamp: uint64(ts), Index: uint(li)}
		if len(l.Data) == 0 {
			l.Data = []byte{}
		}
		for _, s := range t {
			if s == nil {
				break
			}
			l.Topics = append(l.Topics, common.HexToHash(*s))
		}
		out = append(out, l)
	}
	return out, rows.Err()
}
