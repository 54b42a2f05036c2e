package raft

import (
	"fmt"
	"slices"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/charter-ledger/charter/internal/consensus"
)

// catchup is the state of a node that received a raft snapshot (a chain
// position) beyond its head: it fetches the blocks in between from peers,
// commits each (Ready.Commits: the host executes it), and only then
// applies the entries after the snapshot. One request is outstanding at a time; a request unanswered for
// an election timeout goes to the next peer.
type catchup struct {
	target SnapshotData
	index  uint64 // raft index of the snapshot
	nonce  uint64 // of the outstanding request; responses with another are stale
	to     uint64 // raft id of the peer asked
	wait   int    // ticks since the request was sent
}

// onSnapshot handles a snapshot raft installed from the leader (already
// persisted): the log now starts after it, and the chain must reach its
// position.
func (c *Core) onSnapshot(snap *raftpb.Snapshot) error {
	sd, listed, err := decodeSnapshot(snap.GetData())
	if err != nil {
		return fmt.Errorf("%w: received %w", ErrHalted, err)
	}
	idx := snap.GetMetadata().GetIndex()
	// Raft took its membership from the snapshot.
	c.resetConf(idx, snap.GetMetadata().GetConfState(), listed)
	c.stats.snapshotsReceived.Add(1)
	c.snapIndex, c.sinceSnap = idx, 0
	c.applied = idx
	c.commitIndex = max(c.commitIndex, idx)
	c.inflight = nil
	head := c.head
	if head.Number.Uint64() >= sd.Height {
		if c.contradicts(sd) {
			return fmt.Errorf("%w: %w: snapshot at index %d is block %d %s, the chain has another block there",
				ErrHalted, ErrDeterminism, idx, sd.Height, sd.Hash)
		}
		c.catchup = nil
		return nil
	}
	c.log.Info("Raft snapshot beyond the head: fetching blocks", "head", head.Number, "target", sd.Height, "index", idx)
	c.startCatchup(sd, idx)
	return nil
}

func (c *Core) startCatchup(sd SnapshotData, index uint64) {
	var nonce uint64
	if c.catchup != nil {
		nonce = c.catchup.nonce
	}
	c.catchup = &catchup{target: sd, index: index, nonce: nonce}
	c.requestBlocks(false)
}

// requestBlocks asks the next range of blocks from a peer: the leader
// first if known, the same peer again unless rotate, else the next
// member in raft id order.
func (c *Core) requestBlocks(rotate bool) {
	cu := c.catchup
	peers := c.peerIDs()
	if cu == nil || len(peers) == 0 {
		return
	}
	switch {
	case cu.to == 0 && c.lead != 0 && c.lead != c.id:
		cu.to = c.lead
	case cu.to == 0:
		cu.to = peers[0]
	case rotate:
		i := slices.Index(peers, cu.to) // -1 if gone: start over
		cu.to = peers[(i+1)%len(peers)]
	}
	to := cu.to
	node, ok := c.mem.node(to)
	if !ok {
		return // not addressable yet: the next peer after a timeout
	}
	head := c.head.Number.Uint64()
	cu.nonce++
	cu.wait = 0
	req := &blockRequest{
		Nonce:        cu.nonce,
		From:         head + 1,
		Count:        min(cu.target.Height-head, uint64(c.cfg.MaxBlocksPerMsg)),
		TargetNumber: cu.target.Height,
		TargetHash:   cu.target.Hash,
	}
	c.send(node, MsgBlockRequest, encodeBlockRequest(req))
}

func (c *Core) tickCatchup() {
	if c.catchup == nil {
		return
	}
	c.catchup.wait++
	if c.catchup.wait >= c.cfg.ElectionTicks {
		c.requestBlocks(true)
	}
}

// maxServing bounds the block requests waiting for the owner's reads.
const maxServing = 256

// onBlockRequest asks the owner to read the committed blocks a peer
// catching up wants, and the target block its request names (Served
// answers the peer if this node's chain holds that target, so that the
// blocks sent are its ancestors), bounded in count.
func (c *Core) onBlockRequest(from consensus.NodeID, body []byte) {
	req, err := decodeBlockRequest(body)
	if err != nil {
		c.drop(from, err)
		return
	}
	if req.From == 0 || req.From > req.TargetNumber {
		c.drop(from, fmt.Errorf("block request for %d..%d", req.From, req.TargetNumber))
		return
	}
	if req.TargetNumber > c.acked.Number.Uint64() {
		c.log.Debug("Cannot serve blocks: target beyond this chain", "from", from, "target", req.TargetNumber)
		return
	}
	if _, waiting := c.serving[from]; !waiting && len(c.serving) >= maxServing {
		c.drop(from, fmt.Errorf("too many block requests waiting"))
		return
	}
	c.serving[from] = req
	count := min(req.Count, uint64(c.cfg.MaxBlocksPerMsg), req.TargetNumber-req.From+1)
	c.rd.Serve = append(c.rd.Serve, consensus.ServeRequest{ID: req.Nonce, To: from, From: req.From, Count: int(count), Anchor: req.TargetNumber})
}

// Served answers a peer's block request with the blocks the owner read,
// bounded in bytes, if the target block it names is this chain's.
func (c *Core) Served(sr consensus.ServeRequest, blocks []consensus.SealedBlock) {
	req, ok := c.serving[sr.To]
	if !ok || req.Nonce != sr.ID {
		return
	}
	delete(c.serving, sr.To)
	if c.fatal != nil {
		return
	}
	c.run(func() error {
		c.serveBlocks(sr.To, req, blocks)
		return nil
	})
}

func (c *Core) serveBlocks(from consensus.NodeID, req *blockRequest, blocks []consensus.SealedBlock) {
	// The anchor (the target block) is the last block read.
	if len(blocks) == 0 {
		return
	}
	if tb := blocks[len(blocks)-1].Block; tb.NumberU64() != req.TargetNumber || tb.Hash() != req.TargetHash {
		c.log.Debug("Cannot serve blocks: target not in this chain", "from", from, "target", req.TargetNumber)
		return
	}
	blocks = blocks[:len(blocks)-1]
	resp := &blockResponse{Nonce: req.Nonce}
	budget := c.cfg.MaxMessageBytes - entryOverhead
	for i, sb := range blocks {
		b, seal := sb.Block, sb.Seal
		if n := req.From + uint64(i); b.NumberU64() != n {
			break
		}
		enc, err := encodeBlockEntry(b)
		if err != nil {
			c.log.Error("Cannot encode a block to serve", "number", b.NumberU64(), "err", err)
			break
		}
		raw := enc[1:] // the RLP of the block
		if len(raw)+len(seal)+16 > budget {
			break
		}
		budget -= len(raw) + len(seal) + 16
		resp.Blocks = append(resp.Blocks, blockWithSeal{Block: raw, Seal: seal})
	}
	payload, err := encodeBlockResponse(resp)
	if err != nil {
		c.log.Error("Cannot encode a block response", "err", err)
		return
	}
	c.stats.blocksServed.Add(uint64(len(resp.Blocks)))
	c.send(from, MsgBlockResponse, payload)
}

// onBlockResponse verifies and commits the blocks that extend the head
// toward the catch-up target. A block that extends the head, is an
// ancestor of the target (the server checked) and fails verification
// means this node's execution disagrees with the committed chain: halt.
func (c *Core) onBlockResponse(from consensus.NodeID, body []byte) error {
	cu := c.catchup
	if cu == nil {
		c.drop(from, fmt.Errorf("unsolicited block response"))
		return nil
	}
	nonce, blocks, err := decodeBlockResponse(body, c.cfg.MaxBlocksPerMsg)
	if err != nil {
		c.drop(from, err)
		return nil
	}
	if nonce != cu.nonce {
		c.drop(from, fmt.Errorf("stale block response %d, want %d", nonce, cu.nonce))
		return nil
	}
	progressed := false
	for _, db := range blocks {
		head := c.head
		b := db.block
		n := b.NumberU64()
		if n <= head.Number.Uint64() {
			continue
		}
		if n != head.Number.Uint64()+1 || b.ParentHash() != head.Hash() || n > cu.target.Height {
			break
		}
		if idx, _, ok := decodeSeal(db.seal); !ok || idx > cu.index {
			c.log.Warn("Block transfer: bad seal", "from", from, "number", n)
			break
		}
		if n == cu.target.Height && b.Hash() != cu.target.Hash {
			return fmt.Errorf("%w: %w: block %d from %s is %s, the raft snapshot names %s",
				ErrHalted, ErrDeterminism, n, from, b.Hash(), cu.target.Hash)
		}
		// Host.CommitBlock executes it: a block that does not execute here
		// halts the engine (this node's execution disagrees).
		c.commit(b, db.seal)
		c.stats.blocksFetched.Add(1)
		progressed = true
	}
	if c.head.Number.Uint64() >= cu.target.Height {
		c.log.Info("Raft catch-up done", "height", cu.target.Height)
		c.catchup = nil
		return nil
	}
	// More to fetch: ask the same peer again if it helped, else the next.
	c.requestBlocks(!progressed)
	return nil
}
