package node

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/charter-ledger/charter/internal/index"
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
