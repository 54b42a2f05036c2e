package simnet

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/consensus"
)

// Checker watches what every simulated node finalizes and what clients were
// told, and reports violations of safety (a fork, a node going back) and of
// exactly-once delivery of acknowledged transactions. Liveness is checked by
// the test with MinHeight.
//
// The first violation is kept (Err) even if the caller ignores the error
// returned by Finalized. A Checker is not goroutine-safe.
type Checker struct {
	canon map[uint64]canonEntry          // height -> first hash finalized there, by whom
	nodes map[consensus.NodeID]*nodeView // per node
	acked map[common.Hash]struct{}
	err   error
}

type canonEntry struct {
	hash common.Hash
	node consensus.NodeID
}

type nodeView struct {
	height    uint64 // last finalized height
	finalized bool   // height is meaningful
	reached   uint64 // highest height seen in Finalized or Included
	txs       map[common.Hash][]uint64
}

// NewChecker returns an empty checker.
func NewChecker() *Checker {
	return &Checker{
		canon: make(map[uint64]canonEntry),
		nodes: make(map[consensus.NodeID]*nodeView),
		acked: make(map[common.Hash]struct{}),
	}
}

func (c *Checker) view(id consensus.NodeID) *nodeView {
	v := c.nodes[id]
	if v == nil {
		v = &nodeView{txs: make(map[common.Hash][]uint64)}
		c.nodes[id] = v
	}
	return v
}

func (c *Checker) fail(err error) error {
	if c.err == nil {
		c.err = err
	}
	return err
}

// Err is the first violation seen, nil if none.
func (c *Checker) Err() error { return c.err }

// Finalized records that node finalized the block hash at height. It
// returns an error on a fork (another hash already final at that height on
// any node) or when the node finalizes a height at or below one it already
// finalized.
func (c *Checker) Finalized(node consensus.NodeID, height uint64, hash common.Hash) error {
	v := c.view(node)
	if v.finalized && height <= v.height {
		return c.fail(fmt.Errorf("safety: node %s finalized height %d after height %d", node, height, v.height))
	}
	v.height, v.finalized = height, true
	v.reached = max(v.reached, height)
	if e, ok := c.canon[height]; ok {
		if e.hash != hash {
			return c.fail(fmt.Errorf("safety: fork at height %d: node %s finalized %s, node %s finalized %s",
				height, e.node, e.hash, node, hash))
		}
		return nil
	}
	c.canon[height] = canonEntry{hash: hash, node: node}
	return nil
}

// Acknowledge records that a client was given a receipt for tx: from now on
// tx must be in the chain exactly once.
func (c *Checker) Acknowledge(tx common.Hash) { c.acked[tx] = struct{}{} }

// Included records the transactions of a block node finalized at height
// (before or after the matching Finalized call; either order works).
// A transaction included twice in one node's chain is a violation at once.
func (c *Checker) Included(node consensus.NodeID, height uint64, txs []common.Hash) {
	v := c.view(node)
	for _, tx := range txs {
		prev := v.txs[tx]
		v.txs[tx] = append(prev, height)
		if len(prev) > 0 {
			c.fail(fmt.Errorf("exactly-once: node %s has tx %s at heights %v and %d", node, tx, prev, height))
		}
	}
	v.reached = max(v.reached, height)
}

// CheckExactlyOnce verifies every acknowledged transaction: it is in some
// node's chain, no node has it more than once, and every node whose chain
// reaches the height where the transaction was included has it there too.
// It also returns any earlier violation (Err).
func (c *Checker) CheckExactlyOnce() error {
	if c.err != nil {
		return c.err
	}
	nodes := c.sortedNodes()
	for _, tx := range sortedHashes(c.acked) {
		var (
			at    uint64
			found bool
		)
		for _, id := range nodes {
			hs := c.nodes[id].txs[tx]
			if len(hs) > 1 {
				return c.fail(fmt.Errorf("exactly-once: node %s has acknowledged tx %s at heights %v", id, tx, hs))
			}
			if len(hs) == 1 {
				if found && hs[0] != at {
					return c.fail(fmt.Errorf("exactly-once: acknowledged tx %s at height %d on one node and %d on node %s", tx, at, hs[0], id))
				}
				at, found = hs[0], true
			}
		}
		if !found {
			return c.fail(fmt.Errorf("exactly-once: acknowledged tx %s is in no node's chain", tx))
		}
		for _, id := range nodes {
			v := c.nodes[id]
			if v.reached >= at && len(v.txs[tx]) == 0 {
				return c.fail(fmt.Errorf("exactly-once: node %s reached height %d but lacks acknowledged tx %s (included at %d elsewhere)", id, v.reached, tx, at))
			}
		}
	}
	return nil
}

// MinHeight is the lowest finalized height among nodes (0 for a node that
// finalized nothing). Liveness checks compare it before and after healing.
func (c *Checker) MinHeight(nodes []consensus.NodeID) uint64 {
	var min uint64
	for i, id := range nodes {
		h := c.Height(id)
		if i == 0 || h < min {
			min = h
		}
	}
	return min
}

// Height is the last height node finalized, 0 if none.
func (c *Checker) Height(node consensus.NodeID) uint64 {
	if v := c.nodes[node]; v != nil {
		return v.height
	}
	return 0
}

// HashAt is the hash final at height, if any node finalized it.
func (c *Checker) HashAt(height uint64) (common.Hash, bool) {
	e, ok := c.canon[height]
	return e.hash, ok
}

func (c *Checker) sortedNodes() []consensus.NodeID {
	ids := make([]consensus.NodeID, 0, len(c.nodes))
	for id := range c.nodes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	return ids
}

func sortedHashes(m map[common.Hash]struct{}) []common.Hash {
	hs := make([]common.Hash, 0, len(m))
	for h := range m {
		hs = append(hs, h)
	}
	sort.Slice(hs, func(i, j int) bool { return bytes.Compare(hs[i][:], hs[j][:]) < 0 })
	return hs
}
