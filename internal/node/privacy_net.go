package node

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/p2p"
	"github.com/charter-ledger/charter/internal/privacy"
	"github.com/charter-ledger/charter/internal/privacy/privstate"
	"github.com/charter-ledger/charter/internal/system"
)

// Private payloads between nodes. Three message types, each an RLP list:
//
//	msgPrivPush   {group, envelope}: a payload for a group, pushed by the
//	              sender's node to the nodes of the group's organizations
//	              (and of auditors granted) before its marker is sent
//	msgPrivFetch  {request id, group, [{marker, payload hash}]}: the
//	              payloads a node lacks to apply a block
//	msgPrivReply  {request id, group, [envelope]}: those the asked node has
//
// A node keeps a pushed payload only if the pushing node's organization
// is a member of the group, its own organization may read the group, and
// the envelope is sealed to it; it serves a fetch only to a node whose
// organization may read the group at the marker's height, and only for a
// committed marker that commits to that payload. Refusals are logged (at
// most once per peer, reason and minute) and counted.
const (
	msgPrivPush  = p2p.FirstUserType + 2
	msgPrivFetch = p2p.FirstUserType + 3
	msgPrivReply = p2p.FirstUserType + 4
)

// Bounds of payload exchange.
const (
	// privQueueLen bounds the payload messages waiting for the privacy
	// network worker; beyond it they are dropped (a pushed payload is
	// fetched later, a fetch asked again).
	privQueueLen = 1024
	// privQueueBytes bounds the bytes of the messages waiting; beyond it
	// they are dropped likewise.
	privQueueBytes = 64 << 20
	// maxFetchItems bounds the payloads one fetch asks for.
	maxFetchItems = 64
	// maxReplyBytes bounds one reply's envelopes (below the p2p frame).
	maxReplyBytes = 8 << 20
	// fetchWait is how long one round of fetching waits for replies;
	// fetchRounds how many rounds (after each but the first a back-off
	// of round × fetchWait/4) before a group halts: about 30 s in all.
	// They run in the background (applier.await): the group waits, the
	// others go on. fetchFirstWait is the one short round the applier
	// waits inline first, for a payload merely late (its push still in a
	// queue): well below a block time, so that a late payload costs the
	// other groups little and a group does not turn into a replay.
	// The fetcher's fields of the same names hold them (tests set them).
	fetchWait      = 2 * time.Second
	fetchRounds    = 8
	fetchFirstWait = 100 * time.Millisecond
	// maxOpenFetches bounds the requests awaiting replies.
	maxOpenFetches = 64
)

type privPush struct {
	Group    common.Hash
	Envelope []byte
}

type fetchItem struct {
	Marker  common.Hash
	Payload common.Hash
}

type privFetch struct {
	ID    uint64
	Group common.Hash
	Items []fetchItem
}

type privReply struct {
	ID        uint64
	Group     common.Hash
	Envelopes [][]byte
}

type privMsg struct {
	typ     byte
	from    consensus.NodeID
	payload []byte
}

// fetcher moves payloads between this node and others.
type fetcher struct {
	p     *privacyService
	queue chan privMsg

	// The fetch timing (fetchWait, fetchRounds, fetchFirstWait), set by
	// init; a test may change them before the node starts.
	wait, firstWait time.Duration
	rounds          int

	mu     sync.Mutex
	nextID uint64
	open   map[uint64]*openFetch

	refusedLog   sync.Map // peer+reason → last log time
	dropped      atomic.Uint64
	queued       atomic.Int64 // bytes of the messages in queue
	disclosureMu sync.Mutex
	disclosures  map[disclosureKey][][32]byte // served to auditors, not yet recorded
}

type disclosureKey struct {
	group   common.Hash
	auditor string
}

type openFetch struct {
	group common.Hash
	want  map[common.Hash]bool
	got   chan []byte
}

func (f *fetcher) init(p *privacyService) {
	f.p = p
	f.queue = make(chan privMsg, privQueueLen)
	f.open = make(map[uint64]*openFetch)
	f.disclosures = make(map[disclosureKey][][32]byte)
	f.wait, f.firstWait, f.rounds = fetchWait, fetchFirstWait, fetchRounds
}

// register adds the handlers to the transport (a node without peers has
// none to add).
func (f *fetcher) register(tr *p2p.Transport) {
	for _, typ := range []byte{msgPrivPush, msgPrivFetch, msgPrivReply} {
		tr.Handle(typ, func(from p2p.NodeID, payload []byte) {
			if f.queued.Add(int64(len(payload))) > privQueueBytes {
				f.queued.Add(-int64(len(payload)))
				f.dropped.Add(1)
				return
			}
			select {
			case f.queue <- privMsg{typ: typ, from: from, payload: payload}:
			default:
				f.queued.Add(-int64(len(payload)))
				f.dropped.Add(1)
			}
		})
	}
}

// loop handles payload messages until the node stops.
func (f *fetcher) loop() {
	n := f.p.n
	defer n.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-n.quit:
			return
		case m := <-f.queue:
			f.queued.Add(-int64(len(m.payload)))
			switch m.typ {
			case msgPrivPush:
				f.handlePush(m.from, m.payload)
			case msgPrivFetch:
				f.handleFetch(m.from, m.payload)
			case msgPrivReply:
				f.handleReply(m.from, m.payload)
			}
		case <-tick.C:
			f.flushDisclosures()
		}
	}
}

// refuse logs a refused payload message, at most once per peer and
// reason a minute, and counts it.
func (f *fetcher) refuse(from consensus.NodeID, reason string, attrs ...any) {
	f.p.n.ins.m.PrivacyRefused.WithLabelValues(reason).Inc()
	k := from.Hex() + "/" + reason
	now := time.Now()
	if last, ok := f.refusedLog.Load(k); ok && now.Sub(last.(time.Time)) < time.Minute {
		return
	}
	f.refusedLog.Store(k, now)
	f.p.log.Warn("Refused a private payload message", append([]any{"peer", from, "reason", reason}, attrs...)...)
}

// peersOf are the connected nodes of these organizations.
func (f *fetcher) peersOf(memo *regMemo, orgs []string) []consensus.NodeID {
	nw := f.p.n.net
	if nw == nil {
		return nil
	}
	var out []consensus.NodeID
	for _, pi := range nw.tr.Peers() {
		if o := memo.org(pi.ID); o != "" && slices.Contains(orgs, o) {
			out = append(out, pi.ID)
		}
	}
	return out
}

// push sends a payload to the connected nodes of orgs; how many it was
// queued for.
func (f *fetcher) push(group common.Hash, envelope []byte, orgs []string) int {
	nw := f.p.n.net
	if nw == nil {
		return 0
	}
	memo, err := f.p.headMemo()
	if err != nil {
		return 0
	}
	msg, err := rlp.EncodeToBytes(&privPush{Group: group, Envelope: envelope})
	if err != nil {
		return 0
	}
	sent := 0
	for _, id := range f.peersOf(memo, orgs) {
		// Best effort: a node that missed it fetches it.
		if nw.tr.Send(id, msgPrivPush, msg) == nil {
			sent++
		}
	}
	return sent
}

func (f *fetcher) handlePush(from consensus.NodeID, payload []byte) {
	var m privPush
	if err := rlp.DecodeBytes(payload, &m); err != nil || len(m.Envelope) > privstate.MaxPayloadBytes {
		f.refuse(from, "malformed")
		return
	}
	p := f.p
	memo, err := p.headMemo()
	if err != nil {
		return
	}
	g, ok := memo.group(m.Group)
	peerOrg := memo.org(from)
	known := peerOrg != ""
	nd := system.Node{Org: peerOrg}
	switch {
	case !ok:
		// A group made by the marker that follows (privateFor): kept if
		// sealed to this node; the marker's block decides whether it is
		// ever used. Unknown senders are refused below all the same.
		if !known || nd.Revoked {
			f.refuse(from, "unknown_sender", "group", m.Group)
			return
		}
	case g.Status != system.GroupActive:
		f.refuse(from, "inactive_group", "group", m.Group, "status", g.Status)
		return
	case !known || nd.Revoked || !slices.Contains(g.Members, nd.Org):
		f.refuse(from, "sender_not_member", "group", m.Group, "org", nd.Org)
		return
	case !readable(g, memo.org(p.n.self), memo.header.Number.Uint64()+1):
		f.refuse(from, "sent_to_non_member", "group", m.Group, "org", nd.Org)
		return
	}
	if err := p.payloadFor(m.Envelope); err != nil {
		f.refuse(from, "not_sealed_to_this_node", "group", m.Group, "err", err)
		return
	}
	hash, err := privacy.ContentHash(m.Envelope)
	if err != nil {
		f.refuse(from, "malformed", "err", err)
		return
	}
	if err := p.store.KeepPayload(m.Group, hash, m.Envelope); err != nil {
		p.log.Warn("Keeping a pushed private payload failed", "group", m.Group, "payload", hash, "err", err)
		return
	}
	p.kept.put(m.Group, hash, m.Envelope)
	p.worker.poke()
}

// request asks the connected nodes of the group's organizations for
// payloads (the first maxFetchItems of items) and returns what arrived
// within wait.
func (f *fetcher) request(group common.Hash, items []fetchItem, orgs []string, wait time.Duration) map[common.Hash][]byte {
	got := make(map[common.Hash][]byte)
	nw := f.p.n.net
	if nw == nil || len(items) == 0 {
		return got
	}
	memo, err := f.p.headMemo()
	if err != nil {
		return got
	}
	peers := f.peersOf(memo, orgs)
	if len(peers) == 0 {
		return got
	}
	if len(items) > maxFetchItems {
		items = items[:maxFetchItems]
	}
	of := &openFetch{group: group, want: make(map[common.Hash]bool, len(items)), got: make(chan []byte, len(items)*len(peers))}
	for _, it := range items {
		of.want[it.Payload] = true
	}
	f.mu.Lock()
	if len(f.open) >= maxOpenFetches {
		f.mu.Unlock()
		return got
	}
	f.nextID++
	id := f.nextID
	f.open[id] = of
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.open, id)
		f.mu.Unlock()
	}()
	msg, err := rlp.EncodeToBytes(&privFetch{ID: id, Group: group, Items: items})
	if err != nil {
		return got
	}
	for _, peer := range peers {
		_ = nw.tr.Send(peer, msgPrivFetch, msg)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for len(got) < len(of.want) {
		select {
		case env := <-of.got:
			if h, err := privacy.ContentHash(env); err == nil {
				got[h] = env
			}
		case <-timer.C:
			return got
		case <-f.p.n.quit:
			return got
		}
	}
	return got
}

func (f *fetcher) handleFetch(from consensus.NodeID, payload []byte) {
	var m privFetch
	if err := rlp.DecodeBytes(payload, &m); err != nil || len(m.Items) > maxFetchItems {
		f.refuse(from, "malformed")
		return
	}
	p := f.p
	reg, _, err := p.registry()
	if err != nil {
		return
	}
	g, ok := reg.Group(m.Group)
	nd, known := reg.Node(from)
	if !ok || !known || nd.Revoked {
		f.refuse(from, "fetch_unknown", "group", m.Group)
		return
	}
	// A member now is entitled to the group's whole history (a member
	// added later catches up from the group's start); an auditor to the
	// markers from the height it was granted.
	member := slices.Contains(g.Members, nd.Org) && g.Status == system.GroupActive
	var to *privacy.PublicKey
	if k := reg.PrivacyKey(nd.Org); k != nil {
		to, _ = privacy.ParsePublicKey(k)
	}
	if to == nil {
		f.refuse(from, "fetch_no_privacy_key", "group", m.Group, "org", nd.Org)
		return
	}
	reply := privReply{ID: m.ID, Group: m.Group}
	size := 0
	var disclosed [][32]byte
	for _, it := range m.Items {
		group, commit, number, ok := p.markerGroup(it.Marker)
		if !ok || group != m.Group || commit != it.Payload {
			continue
		}
		if !member && !readable(g, nd.Org, number) {
			f.refuse(from, "fetch_not_entitled", "group", m.Group, "org", nd.Org, "block", number)
			continue
		}
		env, err := p.store.Payload(m.Group, it.Payload)
		if err != nil {
			continue
		}
		// A payload sealed before the asking organization could read it
		// is given to its key; what it commits to stays the same.
		if env, err = privacy.AddRecipient(p.key, env, to); err != nil {
			p.log.Warn("A payload could not be given to a member or auditor", "group", m.Group, "payload", it.Payload, "org", nd.Org, "err", err)
			continue
		}
		if size+len(env) > maxReplyBytes {
			continue
		}
		size += len(env)
		reply.Envelopes = append(reply.Envelopes, env)
		if !member {
			disclosed = append(disclosed, it.Payload)
		}
	}
	if len(reply.Envelopes) == 0 {
		return
	}
	msg, err := rlp.EncodeToBytes(&reply)
	if err != nil {
		return
	}
	if p.n.net != nil {
		_ = p.n.net.tr.Send(from, msgPrivReply, msg)
	}
	if len(disclosed) > 0 {
		f.noteDisclosure(m.Group, nd.Org, disclosed)
	}
}

func (f *fetcher) handleReply(from consensus.NodeID, payload []byte) {
	var m privReply
	if err := rlp.DecodeBytes(payload, &m); err != nil || len(m.Envelopes) > maxFetchItems {
		f.refuse(from, "malformed")
		return
	}
	f.mu.Lock()
	of, ok := f.open[m.ID]
	f.mu.Unlock()
	if !ok || of.group != m.Group {
		return // late, or not ours
	}
	for _, env := range m.Envelopes {
		h, err := privacy.ContentHash(env)
		if err != nil || !of.want[h] {
			f.refuse(from, "unrequested_payload", "group", m.Group)
			continue
		}
		select {
		case of.got <- env:
		default:
		}
	}
}

// noteDisclosure remembers payloads served to an auditor's node; they are
// recorded on chain (recordDisclosure) within a second.
func (f *fetcher) noteDisclosure(group common.Hash, auditor string, hashes [][32]byte) {
	f.disclosureMu.Lock()
	defer f.disclosureMu.Unlock()
	k := disclosureKey{group, auditor}
	if len(f.disclosures) >= maxOpenFetches && f.disclosures[k] == nil {
		f.p.log.Warn("Too many disclosures waiting to be recorded; recording these now", "group", group, "auditor", auditor)
	}
	f.disclosures[k] = append(f.disclosures[k], hashes...)
}

// flushDisclosures records the payloads served to auditors on chain.
func (f *fetcher) flushDisclosures() {
	f.disclosureMu.Lock()
	pending := f.disclosures
	f.disclosures = make(map[disclosureKey][][32]byte)
	f.disclosureMu.Unlock()
	for k, hashes := range pending {
		for len(hashes) > 0 {
			batch := hashes[:min(len(hashes), system.MaxDisclosureHashes)]
			hashes = hashes[len(batch):]
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := f.p.send.call(ctx, "recordDisclosure", false, [32]byte(k.group), k.auditor, batch)
			cancel()
			if err != nil {
				f.p.log.Error("Recording a disclosure to an auditor failed", "group", k.group, "auditor", k.auditor, "payloads", len(batch), "err", err)
			}
		}
	}
}

var errFetchFailed = errors.New("no member node could supply the payload")
