package node

import (
	"errors"
	"fmt"
	"time"
)

// Body retention on observers (--history.bodies N): blocks and receipts
// are the ledger and every node keeps them by default, but an observer
// may keep only the bodies and receipts of its last N blocks. Headers
// and seals (certificates) stay, so it still verifies, follows and
// serves headers. It deletes in the background, in bounded batches.
//
// Only an observer may: a validator serves every block to the peers that
// catch up, and raft learners are not supported (a raft snapshot names a
// block whose body raft reads back at restart).

// MinHistoryBodies is the least retention: the recent blocks the engines,
// the state window's calls and a snapshot being made read back.
const MinHistoryBodies = 16

// Pruning bounds: heights per batch, the pause between batches (the
// commit path and readers share the store), and the bytes deleted
// between two compactions of the pruned range (pebble returns the space
// of deleted records at compaction).
const (
	pruneBatchHeights = 256
	prunePause        = 20 * time.Millisecond
)

// pruneCompactBytes is a variable so that a test can compact sooner.
var pruneCompactBytes = 64 << 20

// HomeHistory is the history section of a node's config.json.
type HomeHistory struct {
	// Bodies, when above 0, keeps the bodies and receipts of the last
	// Bodies blocks only (observers; see MinHistoryBodies).
	Bodies uint64 `json:"bodies,omitempty"`
}

func (h *HomeHistory) bodies() uint64 {
	if h == nil {
		return 0
	}
	return h.Bodies
}

// validateHistoryBodies checks the retention against the chain and the
// node's role, once the ledger is open.
func (n *Node) validateHistoryBodies() error {
	keep := n.cfg.HistoryBodies
	if keep == 0 {
		return nil
	}
	if keep < MinHistoryBodies {
		return fmt.Errorf("config: history.bodies %d: keep at least %d blocks", keep, MinHistoryBodies)
	}
	switch engine := n.cfg.Spec.Consensus.Engine; engine {
	case "bft", "poa":
	default:
		return fmt.Errorf("config: history.bodies: only bft and poa observers may prune block bodies (the %s engine needs every body it committed)", engine)
	}
	if n.Role() == RoleValidator {
		return errors.New("config: history.bodies: this node is a validator, which must keep every block to serve peers that catch up; the body retention is for observers")
	}
	return nil
}

// pruneBodies runs while the node does when it has a body retention: at
// every new head it deletes the bodies below head-N, a batch at a time,
// never above what the SQL index has indexed. It stops pruning, loudly,
// if governance makes the node a validator.
func (n *Node) pruneBodies() {
	defer n.wg.Done()
	var sinceCompact int
	for {
		changed := n.heads.Changed()
		for {
			if n.Role() == RoleValidator {
				n.log.Error("This node became a validator: it stops pruning block bodies (history.bodies); restart it without the retention")
				return
			}
			below := ^uint64(0)
			if n.index != nil {
				if done, ok := n.index.LogsIndexed(); ok {
					below = done + 1
				} else {
					below = 0
				}
			}
			heights, bytes, err := n.ledger.PruneBodies(pruneBatchHeights, below)
			if err != nil {
				n.fail(fmt.Errorf("prune block bodies: %w", err))
				return
			}
			sinceCompact += bytes
			if sinceCompact >= pruneCompactBytes {
				if err := n.ledger.CompactBodies(n.ledger.BodiesFrom()); err != nil {
					n.log.Warn("Compacting the pruned block bodies failed", "err", err)
				}
				sinceCompact = 0
			}
			if heights > 0 {
				n.log.Debug("Pruned block bodies", "heights", heights, "bytes", bytes, "from", n.ledger.BodiesFrom())
			}
			if heights < pruneBatchHeights {
				break
			}
			select {
			case <-n.quit:
				return
			case <-time.After(prunePause):
			}
		}
		select {
		case <-n.quit:
			return
		case <-changed:
		}
	}
}
