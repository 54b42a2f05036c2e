package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/index"
	"github.com/charter-ledger/charter/internal/system"
)

// IndexConfig turns on the SQL index of the node's final blocks: an
// SQLite file in the data directory (the default) or a PostgreSQL
// database.
type IndexConfig struct {
	// SQLitePath is the SQLite file; "" with no PostgresURL:
	// DATA/index.sqlite.
	SQLitePath string
	// PostgresURL is a PostgreSQL database (postgres://…); it replaces
	// the SQLite file.
	PostgresURL string
}

// HomeIndex is the index section of a node's config.json.
type HomeIndex struct {
	// Enabled indexes into DATA/index.sqlite unless Postgres is set.
	Enabled bool `json:"enabled"`
	// SQLite is another SQLite file path (relative to the home).
	SQLite string `json:"sqlite,omitempty"`
	// Postgres is a PostgreSQL URL; the index goes there instead.
	Postgres string `json:"postgres,omitempty"`
}

// config is the node's IndexConfig for the section; nil: no index.
func (h *HomeIndex) config(home string) *IndexConfig {
	if h == nil || (!h.Enabled && h.Postgres == "") {
		return nil
	}
	ic := &IndexConfig{PostgresURL: h.Postgres}
	if h.SQLite != "" {
		ic.SQLitePath = homePath(home, h.SQLite)
	}
	return ic
}

// IndexFlags makes the IndexConfig of the --index flags: --index alone
// indexes into DATA/index.sqlite, --index.postgres URL into PostgreSQL;
// neither keeps what the config file says (cur).
func IndexFlags(enabled bool, postgres string, cur *IndexConfig) *IndexConfig {
	switch {
	case postgres != "":
		return &IndexConfig{PostgresURL: postgres}
	case enabled && cur == nil:
		return &IndexConfig{}
	}
	return cur
}

// openIndex opens the SQL index if the config asks for one; the indexer
// runs from Start (runIndex).
func (n *Node) openIndex() error {
	ic := n.cfg.Index
	if ic == nil {
		return nil
	}
	cfg := index.Config{SQLitePath: ic.SQLitePath, PostgresURL: ic.PostgresURL, Source: systemSource{n.ledger},
		Heads: &n.heads, Contracts: n.contracts, ChainID: new(big.Int).SetUint64(n.cfg.Spec.ChainID()), Log: n.log.With("part", "index")}
	if cfg.PostgresURL == "" && cfg.SQLitePath == "" {
		cfg.SQLitePath = filepath.Join(n.cfg.DataDir, "index.sqlite")
	}
	ix, err := index.Open(cfg)
	if err != nil {
		return fmt.Errorf("SQL index: %w", err)
	}
	n.index = ix
	n.ins.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "charter_index_height", Help: "Last block the SQL index holds."},
			func() float64 { return float64(ix.Indexed()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "charter_index_lag_blocks", Help: "Final blocks not yet in the SQL index."},
			func() float64 { return float64(ix.Lag()) }))
	return nil
}

// runIndex follows final blocks into the index until the node stops. The
// index is not part of consensus: if it cannot go on (a database that
// refuses, a database of another chain) it says why and the node goes on
// without it.
func (n *Node) runIndex() {
	defer n.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-n.quit; cancel() }()
	defer cancel()
	if err := n.index.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		n.log.Error("The SQL index stopped; the node goes on without it", "err", err)
	}
}

// Index is the node's SQL index, nil when none is configured.
func (n *Node) Index() *index.Index { return n.index }

// maxSQLBody bounds POST /api/v1/sql's body.
const maxSQLBody = 64 << 10

// sqlRequest is the body of POST /api/v1/sql.
type sqlRequest struct {
	Query string `json:"query"`
	Args  []any  `json:"args,omitempty"`
}

// sqlHandler serves POST /api/v1/sql: one read-only statement over the
// index, with the index's time and row limits, for callers with the read
// role. Private data never enters the index.
func (n *Node) sqlHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := auth.EntryOf(r.Context()); e != nil {
			e.What = "POST /api/v1/sql"
		}
		if id := auth.FromContext(r.Context()); id != nil {
			if err := auth.Allow(id, "POST /api/v1/sql", system.RoleRead); err != nil {
				sqlProblem(w, http.StatusForbidden, err.Error())
				return
			}
		}
		if n.index == nil {
			sqlProblem(w, http.StatusNotImplemented, "this node keeps no SQL index (start it with --index or --index.postgres URL)")
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxSQLBody+1))
		if err != nil {
			sqlProblem(w, http.StatusBadRequest, "reading the body: "+err.Error())
			return
		}
		if len(body) > maxSQLBody {
			sqlProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over %d bytes", maxSQLBody))
			return
		}
		var req sqlRequest
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || strings.TrimSpace(req.Query) == "" {
			sqlProblem(w, http.StatusBadRequest, `the body must be {"query": "SELECT …", "args": [...]}`)
			return
		}
		cols, rows, err := n.index.Query(r.Context(), req.Query, req.Args...)
		if err != nil {
			sqlProblem(w, http.StatusBadRequest, err.Error())
			return
		}
		if rows == nil {
			rows = [][]any{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"columns": cols, "rows": rows, "indexed": n.index.Indexed()})
	})
}

func sqlProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail})
}
