// Package raft is Charter's crash-fault-tolerant consensus engine: a thin
// layer over etcd's raft library (go.etcd.io/raft/v3, RawNode) in which
// every raft entry is one block.
//
// Core is the engine, a consensus.Core run by the consensus Driver like
// every engine (see docs/design/raft.md): RawNode, the block pipeline (the
// leader asks for a block and proposes it; every node commits the
// committed entries in order), block transfer for nodes behind a
// snapshot, transaction forwarding to the leader, and the write-ahead log
// it persists to (WAL, on a durable.FS).
package raft

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/durable"
)

// New returns the raft engine of the node env.Host: a Core run by the
// consensus Driver, its WAL in Config.DataDir (default Env.Dir/raft) on
// Config.FS (default Env.FS). A node that is neither a validator nor a
// learner of the genesis starts as a non-member: it waits until a
// configuration change adds it (see Core.SetValidators), then catches up
// from the leader. SetValidators may be called before Start.
func New(cfg Config, env consensus.Env) (consensus.Engine, error) {
	if env.Host == nil {
		return nil, fmt.Errorf("%w: New needs a host", ErrInvalidConfig)
	}
	if cfg.DataDir == "" && env.Dir != "" {
		cfg.DataDir = filepath.Join(env.Dir, "raft")
	}
	if cfg.FS == nil {
		cfg.FS = env.FS
	}
	if cfg.FS == nil {
		cfg.FS = durable.OSFS{}
	}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: DataDir is empty", ErrInvalidConfig)
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host := env.Host
	var wal *WAL
	return consensus.NewDriver(consensus.DriverConfig{
		Name:            "raft",
		TickInterval:    cfg.TickInterval,
		InboxSize:       cfg.InboxSize,
		MaxMessageBytes: cfg.MaxMessageBytes,
		Close: func() error {
			if wal == nil {
				return nil
			}
			return wal.Close()
		},
	}, env, func([]byte) (consensus.Core, error) {
		w, err := OpenWAL(cfg.FS, cfg.DataDir, cfg.SegmentBytes, log)
		if err != nil {
			return nil, err
		}
		core, err := NewCore(cfg, host.Self(), host, w, log)
		if err != nil {
			w.Close()
			return nil, err
		}
		wal = w
		return core, nil
	})
}
