package node

import (
	"crypto/x509"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/rlp"

	"github.com/charter-ledger/charter/internal/console"
	"github.com/charter-ledger/charter/internal/p2p"
)

// What the web console needs of the node beyond its APIs: the connected
// peers and what each reports of its own readiness, the node's identity
// and certificate expiry, and the last hour of its counters.
//
// Each node tells its peers, every statusInterval, whether it is ready
// (what its /readyz answers) and its head, in a msgStatus message on the
// mTLS links. So the console of any node shows every connected node's
// readiness behind that node's own authentication: the page cannot reach
// the other nodes' /readyz itself (they are on other origins, which its
// content security policy and their own credentials keep out, and
// /readyz is on the metrics listener, often off or private).

// msgStatus carries a node's report of itself: statusWire, RLP. A node of
// an older version drops it as a message of unknown type.
const msgStatus = p2p.FirstUserType + 10

// Bounds of the status reports.
const (
	statusInterval = 5 * time.Second
	// maxStatusBytes bounds a report received; maxReasonBytes its reason.
	maxStatusBytes = 512
	maxReasonBytes = 200
	// maxStatusPeers bounds the reports kept (one per peer; those of
	// peers gone are pruned every statusInterval).
	maxStatusPeers = 1024
)

type statusWire struct {
	Ready  bool
	Reason string
	Head   uint64
}

type statusEntry struct {
	statusWire
	at time.Time
}

// statusBook keeps each peer's last report. Goroutine-safe: handle runs on
// the peers' reader goroutines.
type statusBook struct {
	mu struct {
		sync.Mutex
		by map[p2p.NodeID]statusEntry
	}
}

func (b *statusBook) handle(from p2p.NodeID, payload []byte) {
	if len(payload) > maxStatusBytes {
		return
	}
	var w statusWire
	if err := rlp.DecodeBytes(payload, &w); err != nil {
		return
	}
	if len(w.Reason) > maxReasonBytes {
		w.Reason = w.Reason[:maxReasonBytes]
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mu.by == nil {
		b.mu.by = map[p2p.NodeID]statusEntry{}
	}
	if _, ok := b.mu.by[from]; !ok && len(b.mu.by) >= maxStatusPeers {
		return
	}
	b.mu.by[from] = statusEntry{statusWire: w, at: time.Now()}
}

func (b *statusBook) get(id p2p.NodeID) (statusEntry, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.mu.by[id]
	return e, ok
}

// prune forgets the reports of nodes not in keep.
func (b *statusBook) prune(keep map[p2p.NodeID]bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id := range b.mu.by {
		if !keep[id] {
			delete(b.mu.by, id)
		}
	}
}

// consoleLoop samples the counters the console charts every
// console.HistoryInterval and sends this node's status to its peers every
// statusInterval.
func (n *Node) consoleLoop() {
	defer n.wg.Done()
	n.history.Add(*console.ReadCounters(n.ins.reg))
	status := time.NewTicker(statusInterval)
	defer status.Stop()
	sample := time.NewTicker(console.HistoryInterval)
	defer sample.Stop()
	for {
		select {
		case <-n.quit:
			return
		case <-sample.C:
			n.history.Add(*console.ReadCounters(n.ins.reg))
		case <-status.C:
			if n.net != nil {
				n.net.sendStatus()
			}
		}
	}
}

func (nw *network) sendStatus() {
	ready, reason := nw.n.readiness()
	if len(reason) > maxReasonBytes {
		reason = reason[:maxReasonBytes]
	}
	payload, err := rlp.EncodeToBytes(statusWire{Ready: ready, Reason: reason, Head: nw.n.ledger.Head().Number.Uint64()})
	if err != nil {
		return
	}
	nw.tr.Broadcast(msgStatus, payload)
	keep := map[p2p.NodeID]bool{}
	for _, p := range nw.tr.Peers() {
		keep[p.ID] = true
	}
	nw.status.prune(keep)
}

// consolePeers lists the connected peers for the console.
func (n *Node) consolePeers() []console.Peer {
	out := []console.Peer{}
	if n.net == nil {
		return out
	}
	now := time.Now()
	for _, p := range n.net.tr.Peers() {
		cp := console.Peer{ID: p.ID.Hex(), Name: p.Identity.Name, Org: p.Identity.Org, Addr: p.Addr, Outbound: p.Outbound, Since: p.Since.UTC()}
		if !p.Identity.NotAfter.IsZero() {
			t := p.Identity.NotAfter.UTC()
			cp.CertExpires = &t
		} else if len(p.Chain) > 0 {
			t := p.Chain[0].NotAfter.UTC()
			cp.CertExpires = &t
		}
		if e, ok := n.net.status.get(p.ID); ok {
			cp.Status = &console.PeerStatus{Ready: e.Ready, Reason: e.Reason, Head: e.Head, Age: now.Sub(e.at).Seconds()}
		}
		out = append(out, cp)
	}
	return out
}

// consoleNodeInfo names this node for the console.
func (n *Node) consoleNodeInfo() console.NodeInfo {
	info := console.NodeInfo{Name: n.cfg.Name, Org: n.cfg.Org, Consensus: n.cfg.Spec.Consensus.Engine}
	if n.net != nil {
		info.ID = n.self.Hex()
	}
	if nc := n.cfg.Network; nc != nil {
		leaf := nc.Certificate.Leaf
		if leaf == nil && len(nc.Certificate.Certificate) > 0 {
			leaf, _ = x509.ParseCertificate(nc.Certificate.Certificate[0])
		}
		if leaf != nil {
			t := leaf.NotAfter.UTC()
			info.CertExpires = &t
		}
	}
	return info
}
