package gateway

import (
	"context"
	"net/http"
	"strings"
)

// SQLIndex is the node's SQL index of final blocks, as POST /sql reads
// it: one read-only statement under the index's own time and row limits.
type SQLIndex interface {
	Query(ctx context.Context, query string, args ...any) ([]string, [][]any, error)
	// Indexed is the last block the index holds.
	Indexed() uint64
}

// sqlRequest is the body of POST /sql.
type sqlRequest struct {
	Query string `json:"query"`
	Args  []any  `json:"args"`
}

// sqlResult is its answer.
type sqlResult struct {
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
	Indexed uint64   `json:"indexed"`
}

// sqlQuery is POST /sql. Private data never enters the index, so role
// read is all it needs.
func (g *Gateway) sqlQuery(c *call) (*reply, error) {
	if g.cfg.SQL == nil {
		return nil, problemf(http.StatusNotImplemented, "", "this node keeps no SQL index (start it with --index or --index.postgres URL)")
	}
	var req sqlRequest
	if err := decodeBody(c.body, &req); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Query) == "" {
		return nil, badInput("query", "give one statement, e.g. SELECT number, tx_count FROM blocks ORDER BY number DESC LIMIT 5")
	}
	cols, rows, err := g.cfg.SQL.Query(c.ctx, req.Query, req.Args...)
	if err != nil {
		return nil, badInput("query", "%v", err)
	}
	if rows == nil {
		rows = [][]any{}
	}
	return okReply(sqlResult{Columns: cols, Rows: rows, Indexed: g.cfg.SQL.Indexed()}), nil
}
