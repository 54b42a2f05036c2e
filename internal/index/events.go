package index

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"sort"
	"strings"
	"unicode"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

type evKey struct {
	addr   common.Address
	topic0 common.Hash
}

// eventTable is one decoded event table: <contract>_<event>.
type eventTable struct {
	name  string
	sig   string // the event's signature with indexed marks; a table holds one shape
	ev    abi.Event
	cols  []string // argument columns, in ev.Inputs order
	types []string // their SQL types
}

var fixedEventCols = []string{"block_number", "log_index", "tx_hash", "address"}

// snake turns a Solidity or registry name into a lowercase SQL identifier.
func snake(s string) string {
	var sb strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]) ||
			(i+1 < len(rs) && unicode.IsUpper(rs[i-1]) && unicode.IsLower(rs[i+1]))) {
			sb.WriteByte('_')
		}
		r = unicode.ToLower(r)
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			sb.WriteRune(r)
		} else {
			sb.WriteByte('_')
		}
	}
	out := sb.String()
	for strings.Contains(out, "__") {
		out = strings.ReplaceAll(out, "__", "_")
	}
	out = strings.Trim(out, "_")
	if out == "" {
		out = "x"
	}
	if out[0] >= '0' && out[0] <= '9' {
		out = "c_" + out
	}
	return out
}

func eventSig(ev abi.Event) string {
	parts := make([]string, len(ev.Inputs))
	for i, a := range ev.Inputs {
		parts[i] = a.Type.String()
		if a.Indexed {
			parts[i] += " indexed"
		}
	}
	return ev.RawName + "(" + strings.Join(parts, ",") + ")"
}

func newEventTable(name string, ev abi.Event, d dialect) *eventTable {
	t := &eventTable{name: name, sig: eventSig(ev), ev: ev}
	used := map[string]bool{}
	for _, c := range fixedEventCols {
		used[c] = true
	}
	for i, a := range ev.Inputs {
		c := snake(a.Name)
		if a.Name == "" {
			c = fmt.Sprintf("arg%d", i)
		}
		for used[c] {
			c = fmt.Sprintf("%s_%d", c, i)
		}
		used[c] = true
		t.cols = append(t.cols, c)
		t.types = append(t.types, columnType(a, d))
	}
	return t
}

func columnType(a abi.Argument, d dialect) string {
	if a.Indexed {
		switch a.Type.T {
		case abi.StringTy, abi.BytesTy, abi.SliceTy, abi.ArrayTy, abi.TupleTy:
			return "TEXT" // only the keccak256 hash is in the topic
		}
	}
	switch a.Type.T {
	case abi.IntTy, abi.UintTy:
		return d.numericType()
	case abi.BoolTy:
		return d.boolType()
	}
	return "TEXT"
}

func (t *eventTable) ddl() []string {
	var sb strings.Builder
	sb.WriteString("CREATE TABLE IF NOT EXISTS " + quoteIdent(t.name) + " (block_number BIGINT NOT NULL, log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL, address TEXT NOT NULL")
	for i, c := range t.cols {
		sb.WriteString(", " + quoteIdent(c) + " " + t.types[i])
	}
	sb.WriteString(", PRIMARY KEY (block_number, log_index))")
	return []string{sb.String(),
		"CREATE INDEX IF NOT EXISTS " + quoteIdent(t.name+"_address") + " ON " + quoteIdent(t.name) + " (address, block_number)"}
}

// decode makes the table's row from a log, or false if the log does not
// match the event.
func (t *eventTable) decode(block, logIndex uint64, txHash common.Hash, addr common.Address, topics []common.Hash, data []byte) ([]any, bool) {
	var indexed abi.Arguments
	for _, a := range t.ev.Inputs {
		if a.Indexed {
			indexed = append(indexed, a)
		}
	}
	if len(topics) != len(indexed)+1 {
		return nil, false
	}
	m := map[string]any{}
	if err := t.ev.Inputs.NonIndexed().UnpackIntoMap(m, data); err != nil {
		return nil, false
	}
	if err := abi.ParseTopicsIntoMap(m, indexed, topics[1:]); err != nil {
		return nil, false
	}
	row := []any{int64(block), int64(logIndex), hexHash(txHash), hexAddr(addr)}
	for _, a := range t.ev.Inputs {
		v, ok := m[a.Name]
		if !ok {
			return nil, false
		}
		row = append(row, sqlValue(v))
	}
	return row, true
}

// sqlValue turns a decoded ABI value into what the table column stores.
func sqlValue(v any) any {
	switch x := v.(type) {
	case *big.Int:
		return x.String()
	case uint8, uint16, uint32, uint64, int8, int16, int32, int64:
		return fmt.Sprint(x)
	case common.Address:
		return hexAddr(x)
	case common.Hash:
		return hexHash(x)
	case bool:
		return x
	case []byte:
		return hexBytes(x)
	case string:
		return x
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Array && rv.Type().Elem().Kind() == reflect.Uint8 {
		b := make([]byte, rv.Len())
		reflect.Copy(reflect.ValueOf(b), rv)
		return hexBytes(b)
	}
	j, err := json.Marshal(jsonValue(v))
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(j)
}

// jsonValue makes nested values JSON-friendly: integers as decimal
// strings, byte arrays and addresses as hex.
func jsonValue(v any) any {
	switch x := v.(type) {
	case *big.Int, uint8, uint16, uint32, uint64, int8, int16, int32, int64, common.Address, common.Hash, []byte:
		return sqlValue(x)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return sqlValue(v)
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = jsonValue(rv.Index(i).Interface())
		}
		return out
	case reflect.Struct:
		out := map[string]any{}
		for i := 0; i < rv.NumField(); i++ {
			if f := rv.Type().Field(i); f.IsExported() {
				out[f.Name] = jsonValue(rv.Field(i).Interface())
			}
		}
		return out
	}
	return v
}

// eventRows collects decoded rows per table for one batch.
type eventRows struct {
	rows  map[*eventTable][][]any
	order []*eventTable
}

func newEventRows() *eventRows { return &eventRows{rows: map[*eventTable][][]any{}} }

func (e *eventRows) add(t *eventTable, block, logIndex uint64, txHash common.Hash, l *types.Log) {
	row, ok := t.decode(block, logIndex, txHash, l.Address, l.Topics, l.Data)
	if !ok {
		return
	}
	if _, seen := e.rows[t]; !seen {
		e.order = append(e.order, t)
	}
	e.rows[t] = append(e.rows[t], row)
}

func (e *eventRows) write(ctx context.Context, ix *Index, tx execer) error {
	for _, t := range e.order {
		if err := ix.insert(ctx, tx, t.name, append(append([]string{}, fixedEventCols...), t.cols...), e.rows[t], ""); err != nil {
			return err
		}
	}
	return nil
}

type wantSource struct {
	table    *eventTable
	addr     common.Address
	contract string
	version  uint64
}

// syncEvents creates and backfills decoded tables when the registry has
// changed since the last look.
func (ix *Index) syncEvents(ctx context.Context) error {
	if ix.cfg.Contracts == nil {
		return nil
	}
	gen := ix.cfg.Contracts.Generation()
	if ix.evGenSet && gen == ix.evGen {
		return nil
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	// What the database already holds: table → signature, and sources.
	sigs := map[string]string{}
	have := map[string]bool{} // table|address
	rows, err := ix.db.QueryContext(ctx, `SELECT table_name, address, signature FROM event_tables`)
	if err != nil {
		return fmt.Errorf("index: read event tables: %w", err)
	}
	for rows.Next() {
		var tn, addr, sig string
		if err := rows.Scan(&tn, &addr, &sig); err != nil {
			rows.Close()
			return err
		}
		sigs[tn] = sig
		have[tn+"|"+addr] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	tables := map[string]*eventTable{}
	sources := map[evKey]*eventTable{}
	var todo []wantSource
	for _, c := range ix.cfg.Contracts.All() {
		if c.ABI == nil {
			continue
		}
		names := make([]string, 0, len(c.ABI.Events))
		for n := range c.ABI.Events {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			ev := c.ABI.Events[n]
			if ev.Anonymous {
				continue
			}
			key := evKey{c.Address, ev.ID}
			if sources[key] != nil {
				continue // the same address and event under another name or version
			}
			sig := eventSig(ev)
			name := snake(c.Name) + "_" + snake(ev.Name)
			if s, ok := sigs[name]; (ok && s != sig) || reservedTables[name] {
				name = fmt.Sprintf("%s_v%d", name, c.Version)
			}
			if len(name) > 60 {
				name = name[:60]
			}
			t := tables[name]
			if t == nil {
				t = newEventTable(name, ev, ix.d)
				tables[name] = t
				sigs[name] = sig
			} else if t.sig != sig {
				continue // a clash that renaming could not avoid; skip rather than mis-decode
			}
			sources[key] = t
			if !have[name+"|"+hexAddr(c.Address)] {
				todo = append(todo, wantSource{table: t, addr: c.Address, contract: c.Name, version: c.Version})
			}
		}
	}
	for _, w := range todo {
		if err := ix.backfillEvents(ctx, w); err != nil {
			return err
		}
	}
	ix.evSources = sources
	ix.evGen, ix.evGenSet = gen, true
	return nil
}

// backfillEvents creates a source's table and fills it from the indexed
// logs, with its event_tables row, in one transaction.
func (ix *Index) backfillEvents(ctx context.Context, w wantSource) error {
	tx, err := ix.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, s := range w.table.ddl() {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("index: create %s: %w", w.table.name, err)
		}
	}
	upTo := int64(-1)
	if ix.has.Load() {
		upTo = int64(ix.indexed.Load())
	}
	addr, topic0 := hexAddr(w.addr), hexHash(w.table.ev.ID)
	cols := append(append([]string{}, fixedEventCols...), w.table.cols...)
	lastB, lastI := int64(-1), int64(-1)
	const page = 5000
	for {
		rows, err := tx.QueryContext(ctx, ix.d.rebind(`SELECT block_number, log_index, tx_hash, topic0, topic1, topic2, topic3, data FROM logs
			WHERE address = ? AND topic0 = ? AND block_number <= ? AND (block_number > ? OR (block_number = ? AND log_index > ?))
			ORDER BY block_number, log_index LIMIT `+fmt.Sprint(page)), addr, topic0, upTo, lastB, lastB, lastI)
		if err != nil {
			return fmt.Errorf("index: read logs for %s: %w", w.table.name, err)
		}
		var out [][]any
		n := 0
		for rows.Next() {
			var b, li int64
			var txh, data string
			var t [4]*string
			if err := rows.Scan(&b, &li, &txh, &t[0], &t[1], &t[2], &t[3], &data); err != nil {
				rows.Close()
				return err
			}
			n++
			lastB, lastI = b, li
			var topics []common.Hash
			for _, s := range t {
				if s != nil {
					topics = append(topics, common.HexToHash(*s))
				}
			}
			if row, ok := w.table.decode(uint64(b), uint64(li), common.HexToHash(txh), w.addr, topics, common.FromHex(data)); ok {
				out = append(out, row)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := ix.insert(ctx, tx, w.table.name, cols, out, ""); err != nil {
			return err
		}
		if n < page {
			break
		}
	}
	if _, err := tx.ExecContext(ctx, ix.d.rebind(`INSERT INTO event_tables (table_name, address, topic0, contract, version, event, signature, backfilled_to)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), w.table.name, addr, topic0, w.contract, u64(w.version), w.table.ev.Name, w.table.sig, upTo); err != nil {
		return fmt.Errorf("index: record %s: %w", w.table.name, err)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	ix.log.Info("index: decoded event table ready", "table", w.table.name, "address", addr, "upTo", upTo)
	return nil
}
