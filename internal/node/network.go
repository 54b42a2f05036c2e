package node

import (
	"time"

	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/p2p"
	"github.com/charter-ledger/charter/internal/txpool"
)

// NetworkConfig is what a node of a multi-node network adds to Config:
// its p2p listener, its peers and its TLS identity. The trust store is
// built from the genesis organizations.
type NetworkConfig struct {
	// ListenAddr is host:port of the p2p listener ("127.0.0.1:0" picks a
	// port; see Node.P2PAddr).
	ListenAddr string
	// Peers are the static peers, dialed and redialed with backoff. A
	// peer's ID, when set, is the NodeID it must prove.
	Peers []p2p.PeerAddr
	// Certificate is the node's TLS identity: a node certificate of its
	// organization's CA and its key (identity.LoadTLSCertificate).
	Certificate tls.Certificate
	// GossipLinger is how long transactions admitted here wait to be
	// gossiped together with the next ones (default DefaultGossipLinger;
	// negative: each batch of admissions at once).
	GossipLinger time.Duration
}

// DefaultGossipLinger is NetworkConfig.GossipLinger's default: a small
// part of a block time, long enough that clients submitting one
// transaction a request share gossip messages.
const DefaultGossipLinger = 10 * time.Millisecond

// The node's p2p message types.
const (
	// msgConsensus carries an engine message: Host.Send and Broadcast out,
	// Engine.HandleMessage in.
	msgConsensus = p2p.FirstUserType
	// msgTxs carries transactions gossiped by a node that admitted them
	// (bft and poa; raft forwards through its engine to the leader):
	// an RLP list of transactions in their binary encoding.
	msgTxs = p2p.FirstUserType + 1
)

// Bounds of transaction gossip.
const (
	// maxGossipTxs bounds the transactions of one msgTxs message, sent or
	// received.
	maxGossipTxs = 4096
	// maxGossipBytes bounds one msgTxs message sent (below the p2p frame).
	maxGossipBytes = 4 << 20
	// remoteQueueLen bounds the batches of peer transactions waiting for
	// admission; beyond it batches are dropped (the sender still holds them).
	remoteQueueLen = 256
	// remoteMemory is how many hashes of transactions received from peers
	// are remembered, so that they are not gossiped back.
	remoteMemory = 1 << 16
)

// TrustStore builds the trust store of peer certificates from the genesis
// organizations and their roots.
func TrustStore(spec *chain.Spec) (*identity.TrustStore, error) {
	if len(spec.Organizations) == 0 {
		return nil, errors.New("genesis: organizations: none listed, so no peer certificate can be trusted")
	}
	orgs := make([]identity.OrgRoots, 0, len(spec.Organizations))
	for i, o := range spec.Organizations {
		r, err := identity.OrgRootsFromPEM(o.Name, o.Roots...)
		if err != nil {
			return nil, fmt.Errorf("genesis: organizations[%d]: %w", i, err)
		}
		orgs = append(orgs, r)
	}
	ts, err := identity.NewTrustStore(orgs)
	if err != nil {
		return nil, fmt.Errorf("genesis: organizations: %w", err)
	}
	return ts, nil
}

func (c *NetworkConfig) validate() error {
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		return fmt.Errorf("config: p2p listen address %q: %v", c.ListenAddr, err)
	}
	if len(c.Certificate.Certificate) == 0 || c.Certificate.PrivateKey == nil {
		return errors.New("config: p2p certificate and key are required")
	}
	for i, p := range c.Peers {
		if _, _, err := net.SplitHostPort(p.Addr); err != nil {
			return fmt.Errorf("config: peers[%d] address %q: %v", i, p.Addr, err)
		}
	}
	return nil
}

// network is the node's part of the p2p network: the transport and the
// transaction gossip.
type network struct {
	n      *Node
	tr     *p2p.Transport
	gossip bool          // broadcast locally admitted transactions (bft, poa)
	linger time.Duration // gossip held back to share messages (NetworkConfig.GossipLinger)

	members map[consensus.NodeID]bool // who may connect besides the registry's nodes
	trust   *identity.TrustStore

	remoteQ chan remoteBatch // peer transactions waiting for admission
	remote  remoteSet

	status statusBook // what each peer last reported of itself (console_node.go)

	gossipDropped atomic.Uint64 // undecodable or oversized gossip messages
	remoteDropped atomic.Uint64 // batches lost to a full admission queue
}

// certExpiryWarning is how long before its certificate expires a node
// says so at start (the alert CharterCertificateExpiring fires at 14 days).
const certExpiryWarning = 30 * 24 * time.Hour

// newNetwork prepares the transport; start begins it.
func newNetwork(n *Node, cfg *NetworkConfig, members []consensus.NodeID, gossip bool) (*network, error) {
	trust, err := TrustStore(n.cfg.Spec)
	if err != nil {
		return nil, err
	}
	// A node whose own certificate the consortium refuses cannot connect;
	// say so once at start, naming the reason (peers log it too).
	if leaf := cfg.Certificate.Leaf; leaf != nil {
		n.ins.m.CertExpiry.Set(float64(leaf.NotAfter.Unix()))
		if left := time.Until(leaf.NotAfter); left < certExpiryWarning {
			n.log.Warn("This node's TLS certificate expires soon: renew it before then, or peers refuse the node", "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "left", left.Round(time.Hour))
		}
		chain := []*x509.Certificate{leaf}
		for _, raw := range cfg.Certificate.Certificate[1:] {
			if c, err := x509.ParseCertificate(raw); err == nil {
				chain = append(chain, c)
			}
		}
		if _, err := trust.Verify(chain, x509.ExtKeyUsageClientAuth, identity.RoleNode); err != nil {
			n.log.Warn("This node's certificate is not trusted by the organizations it knows yet (the genesis and the registry at its head); peers refuse it unless governance has admitted its organization", "err", err)
		}
	}
	linger := cfg.GossipLinger
	if linger == 0 {
		linger = DefaultGossipLinger
	}
	nw := &network{
		n:       n,
		gossip:  gossip,
		linger:  linger,
		members: make(map[consensus.NodeID]bool, len(members)),
		remoteQ: make(chan remoteBatch, remoteQueueLen),
		trust:   trust,
	}
	if err := nw.syncTrust(); err != nil {
		n.log.Warn("The registry's organizations do not all fit the trust store", "err", err)
	}
	nw.remote.init(remoteMemory)
	for _, m := range members {
		nw.members[m] = true
	}
	tr, err := p2p.New(p2p.Config{
		ListenAddr:  cfg.ListenAddr,
		ChainID:     n.cfg.Spec.ChainID(),
		GenesisHash: n.ledger.Genesis().Hash(),
		NodeKey:     n.cfg.NodeKey,
		Certificate: cfg.Certificate,
		Trust:       trust,
		StaticPeers: cfg.Peers,
		Authorize:   nw.authorize,
	}, n.log)
	if err != nil {
		return nil, err
	}
	nw.tr = tr
	tr.Handle(msgConsensus, func(from p2p.NodeID, payload []byte) { n.engine.HandleMessage(from, payload) })
	tr.Handle(msgTxs, nw.handleTxs)
	tr.Handle(msgStatus, nw.status.handle)
	return nw, nil
}

// start runs the admission worker and the transport.
func (nw *network) start() error {
	nw.n.wg.Add(1)
	go nw.admitLoop()
	return nw.tr.Start()
}

func (nw *network) close() {
	if err := nw.tr.Close(); err != nil {
		nw.n.log.Warn("Closing p2p failed", "err", err)
	}
}

func (nw *network) peerCount() int { return len(nw.tr.Peers()) }

// send and broadcast carry engine messages; they never block.
func (nw *network) send(to consensus.NodeID, payload []byte) {
	_ = nw.tr.Send(to, msgConsensus, payload) // best effort: engines re-send
}

func (nw *network) broadcast(payload []byte) { nw.tr.Broadcast(msgConsensus, payload) }

// gossipTxs broadcasts transactions this node admitted from its own
// clients. Transactions that came from peers are not sent back out: every
// node dials every other, so the first broadcast reached everyone.
func (nw *network) gossipTxs(txs []*types.Transaction) {
	var (
		batch [][]byte
		size  int
	)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		payload, err := rlp.EncodeToBytes(batch)
		if err == nil {
			nw.tr.Broadcast(msgTxs, payload)
		}
		batch, size = batch[:0], 0
	}
	for _, tx := range txs {
		if nw.remote.has(tx.Hash()) {
			continue
		}
		raw, err := tx.MarshalBinary()
		if err != nil {
			continue
		}
		if len(batch) == maxGossipTxs || size+len(raw) > maxGossipBytes {
			flush()
		}
		batch = append(batch, raw)
		size += len(raw) + 4
	}
	flush()
}

// handleTxs runs on a peer's reader goroutine: it decodes the
// transactions and indexes them by hash at once (so that a block carrying
// them, verified before their admission, finds them and recovers their
// senders on the objects admission uses), then queues them; admission
// (signature recovery) runs on the admission worker. Transactions of
// blocks committed already are dropped here.
func (nw *network) handleTxs(from p2p.NodeID, payload []byte) {
	raw, err := decodeGossip(payload)
	if err != nil {
		nw.gossipDropped.Add(1)
		nw.n.log.Debug("Dropped a bad transaction gossip message", "peer", from, "bytes", len(payload), "err", err)
		return
	}
	maxBytes := nw.n.cfg.Spec.MaxTxBytes
	txs := make([]*types.Transaction, 0, len(raw))
	for _, r := range raw {
		tx, err := decodeRemoteTx(r, maxBytes)
		if err != nil {
			continue
		}
		if known, committed := nw.n.txIdx.get(tx.Hash()); committed {
			continue
		} else if known != nil {
			tx = known // its sender may be recovered already
		} else {
			nw.n.txIdx.add(tx)
		}
		txs = append(txs, tx)
	}
	nw.enqueue(remoteBatch{txs: txs})
}

// decodeGossip decodes the envelope of a msgTxs payload: an RLP list of at
// most maxGossipTxs byte strings. The transactions in it are decoded by
// decodeRemoteTx.
func decodeGossip(payload []byte) ([][]byte, error) {
	var raw [][]byte
	if err := rlp.DecodeBytes(payload, &raw); err != nil {
		return nil, err
	}
	if len(raw) > maxGossipTxs {
		return nil, fmt.Errorf("%d transactions, at most %d", len(raw), maxGossipTxs)
	}
	return raw, nil
}

// decodeRemoteTx decodes one transaction from a peer: at most maxBytes
// long, in its binary encoding.
func decodeRemoteTx(raw []byte, maxBytes uint64) (*types.Transaction, error) {
	if uint64(len(raw)) > maxBytes {
		return nil, fmt.Errorf("transaction of %d bytes, at most %d", len(raw), maxBytes)
	}
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(raw); err != nil {
		return nil, err
	}
	return tx, nil
}

// remoteBatch is a batch of peer transactions waiting for admission:
// decoded (gossip) or raw (forwarded to this node as raft leader, queued
// from the engine goroutine, which does not decode).
type remoteBatch struct {
	txs []*types.Transaction
	raw [][]byte
}

// enqueueRemote queues raw transactions forwarded to this node as raft
// leader for admission. It never blocks.
func (nw *network) enqueueRemote(raw [][]byte) { nw.enqueue(remoteBatch{raw: raw}) }

func (nw *network) enqueue(b remoteBatch) {
	if len(b.raw) == 0 && len(b.txs) == 0 {
		return
	}
	select {
	case nw.remoteQ <- b:
	default:
		nw.remoteDropped.Add(1)
	}
}

// admitLoop admits peers' transactions through the pool, the same
// admission as JSON-RPC's. Known ones answer ErrAlreadyKnown and go no
// further, so nothing circulates.
func (nw *network) admitLoop() {
	defer nw.n.wg.Done()
	for {
		select {
		case <-nw.n.quit:
			return
		case b := <-nw.remoteQ:
			// Gossip batches queued meanwhile are admitted with it, in
			// arrival order: one parallel check and one locked pool
			// batch for many small messages.
			for len(b.raw) == 0 && len(b.txs) < maxGossipTxs {
				var more remoteBatch
				select {
				case more = <-nw.remoteQ:
				default:
				}
				if len(more.raw) > 0 {
					nw.admit(b)
					b = more
					continue
				}
				if len(more.txs) == 0 {
					break
				}
				b.txs = append(b.txs, more.txs...)
			}
			nw.admit(b)
		}
	}
}

func (nw *network) admit(b remoteBatch) {
	pool, maxBytes := nw.n.pool, nw.n.cfg.Spec.MaxTxBytes
	txs := make([]*types.Transaction, 0, len(b.txs)+len(b.raw))
	for _, r := range b.raw {
		if tx, err := decodeRemoteTx(r, maxBytes); err == nil {
			txs = append(txs, tx)
		}
	}
	txs = append(txs, b.txs...)
	n := 0
	for _, tx := range txs {
		if pool.Get(tx.Hash()) != nil {
			continue // known: no signature work
		}
		if _, committed := nw.n.txIdx.get(tx.Hash()); committed {
			continue // final already, in a block verified here
		}
		txs[n] = tx
		n++
	}
	txs = txs[:n]
	if len(txs) == 0 {
		return
	}
	// Remember them before the pool announces them, so the gossip loop
	// does not send them back.
	for _, tx := range txs {
		nw.remote.add(tx.Hash())
	}
	// Stateless checks and sender recovery in parallel (a sender that
	// block verification recovered on the same object is not recovered
	// again), then one locked batch admission.
	froms := make([]common.Address, len(txs))
	errs := make([]error, len(txs))
	workers := min(runtime.GOMAXPROCS(0), (len(txs)+63)/64)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(txs); i += workers {
				froms[i], errs[i] = pool.ValidateBasic(txs[i])
			}
		}(w)
	}
	wg.Wait()
	ok := txs[:0]
	okFroms := froms[:0]
	for i, tx := range txs {
		if errs[i] == nil {
			ok = append(ok, tx)
			okFroms = append(okFroms, froms[i])
		}
	}
	for i, err := range pool.AddBatch(ok, okFroms) {
		if err != nil && !errors.Is(err, txpool.ErrAlreadyKnown) {
			nw.n.log.Debug("Peer transaction refused", "tx", ok[i].Hash(), "err", err)
		}
	}
}

// remoteSet remembers the last N hashes added (a ring over a map).
type remoteSet struct {
	mu   sync.Mutex
	set  map[common.Hash]struct{}
	ring []common.Hash
	next int
}

func (r *remoteSet) init(n int) {
	r.set = make(map[common.Hash]struct{}, n)
	r.ring = make([]common.Hash, n)
}

func (r *remoteSet) add(h common.Hash) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[h]; ok {
		return
	}
	if old := r.ring[r.next]; old != (common.Hash{}) {
		delete(r.set, old)
	}
	r.ring[r.next] = h
	r.next = (r.next + 1) % len(r.ring)
	r.set[h] = struct{}{}
}

func (r *remoteSet) has(h common.Hash) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[h]
	return ok
}
