package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/event"

	"github.com/charter-ledger/charter/internal/privacy"
	"github.com/charter-ledger/charter/internal/privacy/privstate"
	"github.com/charter-ledger/charter/internal/privacy/privtx"
	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
)

// Private transactions on a node (docs/design/privacy.md):
//
//   - sending (privacy_send.go): a client's signed private transaction is
//     checked against the registry at the head, sealed to the group's
//     organizations, kept, pushed to their connected nodes, and ordered
//     by a marker transaction this node signs with its node key;
//   - the network (privacy_net.go): pushes of payloads, and fetches of
//     those a node lacks, only between nodes of organizations the group
//     lets see them;
//   - applying (privacy_apply.go): a worker follows committed blocks and
//     runs the private transactions of this node's groups on their private
//     state, after the public block and never in its way;
//   - reading: rpc.Privacy below, for the priv_ and eea_ namespaces.
//
// A node without a privacy key takes no part: it keeps nothing private and
// serves no priv_ namespace.

// privacyDir is the private state's folder in the data directory.
const privacyDir = "private"

// privacyService is a node's part in private transactions.
type privacyService struct {
	n     *Node
	log   *slog.Logger
	key   *privacy.PrivateKey
	dir   string // DATA/private
	store *privstate.Store

	send   sender     // signs and submits this node's registry calls
	fetch  fetcher    // payloads asked of other nodes
	worker applier    // follows committed blocks
	logs   event.Feed // rpc.PrivateLogsEvent

	mu     sync.Mutex
	halted map[common.Hash]halt // groups whose private state stopped

	markersMu sync.Mutex
	markers   map[common.Hash]markerInfo // committed markers the applier met, at most maxMarkersKept

	memoMu sync.Mutex
	memo   *regMemo // of the registry at the head
	keys   keyCache // organizations' privacy keys, checked against each state

	sealed sealedMemo      // what this node sealed, until its applier meets the marker
	kept   keptMemo        // envelopes this node kept lately, until its applier meets their markers
	sealer *privacy.Sealer // the network's envelope scheme, in sessions where it has them
}

// newPrivacy opens the private state; nil, nil when the node has no
// privacy key.
func newPrivacy(n *Node) (*privacyService, error) {
	if n.cfg.PrivacyKey == nil {
		return nil, nil
	}
	dir := filepath.Join(n.cfg.DataDir, privacyDir)
	store, err := privstate.Open(dir, n.cfg.Spec, n.ledger, privstate.Options{}, n.log)
	if err != nil {
		return nil, fmt.Errorf("open private state: %w", err)
	}
	p := &privacyService{n: n, log: n.log.With("part", "privacy"), key: n.cfg.PrivacyKey, dir: dir, store: store,
		halted: make(map[common.Hash]halt), markers: make(map[common.Hash]markerInfo),
		sealer: privacy.NewSealer(n.cfg.Spec.PrivacyScheme())}
	p.send.init(p)
	p.fetch.init(p)
	p.worker.init(p)
	return p, nil
}

func (p *privacyService) start() error {
	if err := p.worker.start(); err != nil {
		return err
	}
	return nil
}

func (p *privacyService) close() {
	p.worker.stop()
	if err := p.store.Close(); err != nil {
		p.log.Warn("Closing the private state failed", "err", err)
	}
}

// identity is this node's organization's privacy identity.
func (p *privacyService) identity() privacy.Identity { return p.key.Public().Identity() }

// registry is the registry at the head.
func (p *privacyService) registry() (*system.State, *types.Header, error) { return p.n.chain.System() }

// myOrg is this node's organization in reg ("" if the registry does not
// list the node).
func (p *privacyService) myOrg(reg *system.State) string {
	nd, ok := reg.Node(p.n.self)
	if !ok || nd.Revoked {
		return ""
	}
	return nd.Org
}

// readable reports whether org may read group g at height: a member, or
// an auditor granted from at most height.
func readable(g system.Group, org string, height uint64) bool {
	if org == "" {
		return false
	}
	if slices.Contains(g.Members, org) {
		return true
	}
	for _, a := range g.Auditors {
		if a.Org == org && a.From <= height {
			return true
		}
	}
	return false
}

// halt is why and where a group's private state stopped on this node:
// halted (a payload no member node could supply, a store failure), or
// waiting for payloads being fetched. Either way the group is applied up
// to the block before and is tried again from block.
type halt struct {
	block   uint64
	reason  string
	waiting bool // the payloads are being fetched (applier.await)
}

// halt stops a group's private state on this node at a block, with a
// reason; the public chain goes on.
func (p *privacyService) halt(group common.Hash, block uint64, reason string) {
	p.mu.Lock()
	was, ok := p.halted[group]
	p.halted[group] = halt{block: block, reason: reason}
	p.mu.Unlock()
	if ok && was.waiting {
		p.n.ins.m.PrivacyWaiting.Dec()
	}
	if !ok || was.waiting {
		p.log.Error("Private state of a privacy group halted on this node; the public chain goes on", "group", group, "reason", reason)
		p.n.ins.m.PrivacyHalted.Inc()
	}
}

// wait holds a group's private state at a block while its payloads are
// fetched; the other groups and the public chain go on.
func (p *privacyService) wait(group common.Hash, block uint64, reason string) {
	p.mu.Lock()
	was, ok := p.halted[group]
	p.halted[group] = halt{block: block, reason: reason, waiting: true}
	p.mu.Unlock()
	if !ok || !was.waiting {
		p.log.Warn("Private state of a privacy group waits for payloads on this node; the other groups go on", "group", group, "reason", reason)
		p.n.ins.m.PrivacyWaiting.Inc()
	}
}

// haltWaiting halts group if it still waits at block (not resumed, not
// moved to an earlier block meanwhile); whether it did.
func (p *privacyService) haltWaiting(group common.Hash, block uint64, reason string) bool {
	p.mu.Lock()
	was, ok := p.halted[group]
	if !ok || !was.waiting || was.block != block {
		p.mu.Unlock()
		return false
	}
	p.halted[group] = halt{block: block, reason: reason}
	p.mu.Unlock()
	p.n.ins.m.PrivacyWaiting.Dec()
	p.log.Error("Private state of a privacy group halted on this node; the public chain goes on", "group", group, "reason", reason)
	p.n.ins.m.PrivacyHalted.Inc()
	return true
}

// restore notes a group that stopped at block before this start, while
// it is tried again (no log line, no count: they were at the time).
func (p *privacyService) restore(group common.Hash, block uint64, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.halted[group]; !ok {
		p.halted[group] = halt{block: block, reason: fmt.Sprintf("block %d: %s", block, reason)}
	}
}

// resume forgets that group stopped.
func (p *privacyService) resume(group common.Hash) {
	p.mu.Lock()
	was, ok := p.halted[group]
	delete(p.halted, group)
	p.mu.Unlock()
	if ok && was.waiting {
		p.n.ins.m.PrivacyWaiting.Dec()
	}
}

// stopped tells whether and why group stopped on this node.
func (p *privacyService) stopped(group common.Hash) (halt, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.halted[group]
	return h, ok
}

// haltedAt is the block at which group halted, or waits, on this node.
func (p *privacyService) haltedAt(group common.Hash) (uint64, bool) {
	h, ok := p.stopped(group)
	return h.block, ok
}

// ---- rpc.Privacy ----

var _ rpc.Privacy = (*privacyService)(nil)

// errNoGroup answers a group this node may not read as Besu answers a group
// it does not know.
func errNoGroup(id common.Hash) error {
	return fmt.Errorf("%w: %s", rpc.ErrNoPrivacyGroup, system.GroupIDBase64(id))
}

func (p *privacyService) MarkerAddress() common.Address { return system.RegistryAddress }

// readGroup returns the group if this node may read it now.
func (p *privacyService) readGroup(id common.Hash) (system.Group, error) {
	memo, err := p.headMemo()
	if err != nil {
		return system.Group{}, err
	}
	g, ok := memo.group(id)
	if !ok || !readable(g, memo.org(p.n.self), memo.header.Number.Uint64()) {
		return system.Group{}, errNoGroup(id)
	}
	if h, purged := p.store.Purged(id); purged {
		return system.Group{}, fmt.Errorf("privacy group %s was purged at block %d: its private data is deleted", system.GroupIDBase64(id), h)
	}
	return g, nil
}

func (p *privacyService) Group(id common.Hash) (rpc.PrivacyGroup, bool) {
	memo, err := p.headMemo()
	if err != nil {
		return rpc.PrivacyGroup{}, false
	}
	g, ok := memo.group(id)
	// A purged group stays visible to its members, so that their reads
	// answer that it was purged rather than that it does not exist.
	if !ok || (g.Status != system.GroupActive && g.Status != system.GroupPurged) || !readable(g, memo.org(p.n.self), memo.header.Number.Uint64()) {
		return rpc.PrivacyGroup{}, false
	}
	return p.groupView(memo, g), true
}

func (p *privacyService) groupView(memo *regMemo, g system.Group) rpc.PrivacyGroup {
	out := rpc.PrivacyGroup{ID: g.ID, Name: g.Name, Description: g.Description, Legacy: g.Description == system.LegacyGroupDescription, Created: g.Created}
	for _, m := range g.Members {
		if k, _ := memo.key(m); k != nil {
			id := k.Identity()
			out.Members = append(out.Members, id[:])
		}
	}
	return out
}

func (p *privacyService) FindGroups(members [][]byte) ([]rpc.PrivacyGroup, error) {
	memo, err := p.headMemo()
	if err != nil {
		return nil, err
	}
	org := memo.org(p.n.self)
	if org == "" {
		return []rpc.PrivacyGroup{}, nil
	}
	want := make(map[string]bool, len(members))
	for _, m := range members {
		want[string(m)] = true
	}
	out := []rpc.PrivacyGroup{}
	var ids []common.Hash
	memo.with(func(reg *system.State) { ids = reg.GroupsOf(org) })
	for _, id := range ids {
		g, ok := memo.group(id)
		if !ok || g.Status != system.GroupActive {
			continue
		}
		v := p.groupView(memo, g)
		if len(v.Members) != len(want) {
			continue
		}
		match := true
		for _, m := range v.Members {
			match = match && want[string(m)]
		}
		if match {
			out = append(out, v)
		}
	}
	return out, nil
}

func (p *privacyService) Nonce(group common.Hash, addr common.Address) (uint64, error) {
	if _, err := p.readGroup(group); err != nil {
		return 0, err
	}
	nonce, err := p.store.Nonce(group, addr)
	if errors.Is(err, privstate.ErrUnknownGroup) {
		nonce, err = 0, nil
	}
	if err != nil {
		return 0, err
	}
	return max(nonce, p.send.pendingNonce(group, addr)), nil
}

// markerGroup finds the group of a marker transaction from its receipt's
// PrivateMarker log; ok false if hash is not a committed marker.
func (p *privacyService) markerGroup(hash common.Hash) (group, payload common.Hash, number uint64, ok bool) {
	p.markersMu.Lock()
	m, hit := p.markers[hash]
	p.markersMu.Unlock()
	if hit {
		return m.group, m.payload, m.number, true
	}
	number, index, found := p.n.ledger.TxLookup(hash)
	if !found {
		return group, payload, 0, false
	}
	receipts, err := p.n.ledger.Receipts(number)
	if err != nil || index >= len(receipts) {
		return group, payload, 0, false
	}
	for _, l := range receipts[index].Logs {
		if m, ok := parseMarkerLog(l); ok {
			return m.Group, m.Payload, number, true
		}
	}
	return group, payload, 0, false
}

func (p *privacyService) Receipt(marker common.Hash) (*rpc.PrivateReceipt, error) {
	group, _, _, ok := p.markerGroup(marker)
	if !ok {
		return nil, nil
	}
	if _, err := p.readGroup(group); err != nil {
		return nil, nil
	}
	r, err := p.store.ReceiptByMarker(group, marker)
	if err != nil {
		return nil, nilIfAbsent(err)
	}
	tx, _, _, _, err := p.store.TransactionByMarker(group, marker)
	if err != nil {
		tx = nil // an undecodable private transaction has a receipt only
	}
	return &rpc.PrivateReceipt{Marker: marker, Group: group, Tx: tx, Receipt: r}, nil
}

func (p *privacyService) Transaction(marker common.Hash) (*rpc.PrivateTransaction, error) {
	group, _, _, ok := p.markerGroup(marker)
	if !ok {
		return nil, nil
	}
	if _, err := p.readGroup(group); err != nil {
		return nil, nil
	}
	tx, number, blockHash, index, err := p.store.TransactionByMarker(group, marker)
	if err != nil {
		return nil, nilIfAbsent(err)
	}
	out := &rpc.PrivateTransaction{Marker: marker, Group: group, Tx: tx, BlockHash: blockHash, BlockNumber: number, Index: index}
	if from, err := tx.Sender(p.n.cfg.Spec.Config.ChainID); err == nil {
		out.From = from
	}
	return out, nil
}

// markerInfo is where a committed marker points.
type markerInfo struct {
	group, payload common.Hash
	number         uint64
}

// maxMarkersKept bounds the markers remembered for receipt lookups
// (about 100 bytes each); past it the memory starts over and lookups read
// the ledger.
const maxMarkersKept = 100_000

// rememberMarker notes a committed marker, so that a receipt lookup by
// its hash need not decode its block's public receipts.
func (p *privacyService) rememberMarker(m marker, number uint64) {
	p.markersMu.Lock()
	defer p.markersMu.Unlock()
	if len(p.markers) >= maxMarkersKept {
		clear(p.markers)
	}
	p.markers[m.Tx] = markerInfo{group: m.Group, payload: m.Payload, number: number}
}

// nilIfAbsent turns "this node holds nothing of it" into no error.
func nilIfAbsent(err error) error {
	if errors.Is(err, privstate.ErrNotFound) || errors.Is(err, privstate.ErrUnknownGroup) || errors.Is(err, privstate.ErrPurged) {
		return nil
	}
	return err
}

func (p *privacyService) Call(ctx context.Context, group common.Hash, number uint64, msg *core.Message) (*core.ExecutionResult, error) {
	if _, err := p.readGroup(group); err != nil {
		return nil, err
	}
	header := p.n.ledger.HeaderByNumber(number)
	if header == nil {
		return nil, fmt.Errorf("block %d not found", number)
	}
	return p.store.Call(ctx, group, header, msg)
}

func (p *privacyService) Code(group common.Hash, number uint64, addr common.Address) ([]byte, error) {
	if _, err := p.readGroup(group); err != nil {
		return nil, err
	}
	code, err := p.store.Code(group, number, addr)
	if errors.Is(err, privstate.ErrUnknownGroup) {
		return []byte{}, nil
	}
	return code, err
}

func (p *privacyService) Logs(group common.Hash, q privstate.LogQuery) ([]*types.Log, error) {
	if _, err := p.readGroup(group); err != nil {
		return nil, err
	}
	q.ByMarker = true
	logs, err := p.store.Logs(group, q)
	if errors.Is(err, privstate.ErrUnknownGroup) {
		return []*types.Log{}, nil
	}
	if err != nil {
		return nil, err
	}
	index := map[common.Hash]int{} // the markers' indexes in their blocks, -1: not found
	for _, l := range logs {
		i, ok := index[l.TxHash]
		if !ok {
			i = -1
			if _, at, found := p.n.ledger.TxLookup(l.TxHash); found {
				i = at
			}
			index[l.TxHash] = i
		}
		if i >= 0 {
			l.TxIndex = uint(i)
		}
	}
	return logs, nil
}

// markLog names a private log's marker as its transaction, with the
// marker's index in its public block, as Besu's private logs do (the
// private transaction's own hash is in its receipt).
func (p *privacyService) markLog(l *types.Log, marker common.Hash) {
	if marker == (common.Hash{}) {
		return
	}
	l.TxHash = marker
	if _, index, ok := p.n.ledger.TxLookup(marker); ok {
		l.TxIndex = uint(index)
	}
}

func (p *privacyService) StateRoot(group common.Hash, number uint64) (common.Hash, error) {
	if _, err := p.readGroup(group); err != nil {
		return common.Hash{}, err
	}
	if h, stopped := p.stopped(group); stopped {
		if head, _ := p.Head(group); number > head {
			if h.waiting {
				return common.Hash{}, fmt.Errorf("the private state of privacy group %s is behind on this node at block %d, waiting: %s", system.GroupIDBase64(group), head, h.reason)
			}
			return common.Hash{}, fmt.Errorf("the private state of privacy group %s is halted on this node at block %d: %s", system.GroupIDBase64(group), head, h.reason)
		}
	}
	root, err := p.store.PrivateRoot(group, number)
	if errors.Is(err, privstate.ErrUnknownGroup) {
		return types.EmptyRootHash, nil
	}
	return root, err
}

func (p *privacyService) Head(group common.Hash) (uint64, error) {
	number, _, err := p.store.Head(group)
	if errors.Is(err, privstate.ErrUnknownGroup) {
		return 0, nil
	}
	return number, err
}

func (p *privacyService) SubscribeLogs(ch chan<- rpc.PrivateLogsEvent) event.Subscription {
	return p.logs.Subscribe(ch)
}

// decodePrivate decodes a client's signed private transaction and
// recovers its sender.
func (p *privacyService) decodePrivate(raw []byte) (*privtx.Tx, common.Address, error) {
	tx, err := privtx.Decode(raw)
	if err != nil {
		return nil, common.Address{}, fmt.Errorf("invalid private transaction: %w", err)
	}
	from, err := tx.Sender(p.n.cfg.Spec.Config.ChainID)
	if err != nil {
		return nil, common.Address{}, fmt.Errorf("invalid private transaction: %w", err)
	}
	return tx, from, nil
}
