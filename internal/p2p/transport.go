package p2p

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/identity"
)

// Handler receives the messages of one type. It is called from the
// sending peer's reader goroutine: one message at a time per peer, peers
// concurrently. The payload belongs to the handler. A handler that blocks
// stalls only that peer's connection (its reader), so it should hand the
// message to a bounded queue of its own and return.
type Handler func(from NodeID, payload []byte)

// PeerInfo describes a connected (or connecting) peer.
type PeerInfo struct {
	ID        NodeID
	Identity  identity.Identity // organization, name, certificate fingerprint
	Chain     []*x509.Certificate
	Addr      string // remote host:port
	LocalAddr string // this side's host:port of the connection
	Outbound  bool   // this node dialed
	Since     time.Time
}

// PeerEvent reports that a peer came up or went down. A peer is up from
// its first connection until it has none; a duplicate connection replacing
// another causes no event. Messages of a peer may reach handlers before
// its up event reaches OnPeerEvent.
type PeerEvent struct {
	Peer   PeerInfo
	Up     bool
	Reason string // why it went down
}

// Errors of Send.
var (
	ErrClosed          = errors.New("p2p: transport closed")
	ErrNotConnected    = errors.New("p2p: peer not connected")
	ErrQueueFull       = errors.New("p2p: send queue full, message dropped")
	ErrMessageTooLarge = errors.New("p2p: message too large")
	ErrReservedType    = errors.New("p2p: message type reserved for the transport")
)

// Transport is the node's mutually authenticated TLS 1.3 network. Create
// it with New, register handlers with Handle, then Start; Close once.
// Send, Broadcast, Peers, Stats and Handle are goroutine-safe.
type Transport struct {
	cfg     Config
	log     *slog.Logger
	self    NodeID
	tlsConf *tls.Config

	handlers [256]atomic.Pointer[Handler]
	stats    counters
	events   chan PeerEvent
	hsSlots  chan struct{} // inbound handshakes in progress
	refusals *refusalLog   // which refused inbound connections are logged

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	rngMu sync.Mutex
	rng   *rand.Rand

	mu struct {
		sync.Mutex
		started bool
		closed  bool
		ln      net.Listener
		peers   map[NodeID]*peer
		dialing map[string]bool // static peer addresses with a dial loop
		changed chan struct{}   // closed and replaced when peers changes
	}
}

// New checks the configuration and prepares a transport; nothing listens
// or dials before Start. The logger carries every log line of the
// transport (nil: discard).
func New(cfg Config, log *slog.Logger) (*Transport, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	self := crypto.PubkeyToAddress(cfg.NodeKey.PublicKey)
	seed := cfg.JitterSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t := &Transport{
		cfg:      cfg,
		log:      log.With("node", self.Hex()),
		self:     self,
		events:   make(chan PeerEvent, cfg.EventQueueLen),
		hsSlots:  make(chan struct{}, cfg.MaxPendingHandshakes),
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		refusals: newRefusalLog(cfg.RefusalLogInterval, cfg.RefusalLogSources),
	}
	t.tlsConf = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cfg.Certificate},
		NextProtos:   []string{alpnProto},
		// Both sides present certificates; both are checked against the
		// trust store in VerifyConnection (set per connection), which
		// also enforces revocation. Hostnames play no part: a peer is
		// known by its certificate and then by its NodeID.
		ClientAuth:             tls.RequireAnyClientCert,
		InsecureSkipVerify:     true,
		SessionTicketsDisabled: true,
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.mu.peers = map[NodeID]*peer{}
	t.mu.dialing = map[string]bool{}
	t.mu.changed = make(chan struct{})
	return t, nil
}

// Self is this node's NodeID.
func (t *Transport) Self() NodeID { return t.self }

// Handle registers the handler of a message type (>= FirstUserType),
// replacing any previous one; nil removes it. Messages of a type without a
// handler are dropped and counted. Register before Start so that no early
// message is dropped.
func (t *Transport) Handle(typ byte, h Handler) {
	if typ < FirstUserType {
		panic(fmt.Sprintf("p2p: message type %d is reserved for the transport", typ))
	}
	if h == nil {
		t.handlers[typ].Store(nil)
		return
	}
	t.handlers[typ].Store(&h)
}

// Start listens on ListenAddr (if set) and begins dialing the static
// peers.
func (t *Transport) Start() error {
	t.mu.Lock()
	if t.mu.started || t.mu.closed {
		t.mu.Unlock()
		return errors.New("p2p: Start called twice or after Close")
	}
	t.mu.started = true
	if t.cfg.ListenAddr != "" {
		ln, err := net.Listen("tcp", t.cfg.ListenAddr)
		if err != nil {
			t.mu.Unlock()
			return fmt.Errorf("p2p: listen on %s: %w", t.cfg.ListenAddr, err)
		}
		t.mu.ln = ln
		t.log.Info("p2p: listening", "addr", ln.Addr().String())
	}
	t.mu.Unlock()

	if ln := t.listener(); ln != nil {
		t.spawn(func() { t.acceptLoop(ln) })
	}
	for _, p := range t.cfg.StaticPeers {
		_ = t.AddPeer(p)
	}
	t.spawn(t.refreshLoop)
	if t.cfg.OnPeerEvent != nil {
		t.spawn(t.eventLoop)
	}
	return nil
}

// AddPeer adds a static peer and keeps it dialed until Close. An address
// already dialed is not dialed twice. Called before Start, it only adds to
// the list Start dials.
func (t *Transport) AddPeer(pa PeerAddr) error {
	if pa.Addr == "" {
		return errors.New("p2p: AddPeer: empty address")
	}
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	if !t.mu.started {
		t.cfg.StaticPeers = append(t.cfg.StaticPeers, pa)
		t.mu.Unlock()
		return nil
	}
	if t.mu.dialing[pa.Addr] {
		t.mu.Unlock()
		return nil
	}
	t.mu.dialing[pa.Addr] = true
	t.mu.Unlock()
	t.spawn(func() { t.dialLoop(pa) })
	return nil
}

func (t *Transport) listener() net.Listener {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.ln
}

// Addr is the address the transport listens on, nil when not listening.
func (t *Transport) Addr() net.Addr {
	if ln := t.listener(); ln != nil {
		return ln.Addr()
	}
	return nil
}

// Send queues a message for one connected peer and returns at once: it
// never blocks. The payload is copied; the caller may reuse it. Errors:
// ErrNotConnected, ErrQueueFull (the message is dropped and counted),
// ErrMessageTooLarge, ErrReservedType, ErrClosed.
func (t *Transport) Send(to NodeID, typ byte, payload []byte) error {
	if err := t.checkOutgoing(typ, payload); err != nil {
		return err
	}
	t.mu.Lock()
	p, closed := t.mu.peers[to], t.mu.closed
	t.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case p == nil:
		return ErrNotConnected
	}
	return p.enqueue(typ, encodeFrame(typ, payload))
}

// Broadcast queues a message for every connected peer, like Send, and
// returns how many peers took it (the others' queues were full).
func (t *Transport) Broadcast(typ byte, payload []byte) int {
	if t.checkOutgoing(typ, payload) != nil {
		return 0
	}
	frame := encodeFrame(typ, payload) // shared: the writers only read it
	n := 0
	for _, p := range t.peerList() {
		if p.enqueue(typ, frame) == nil {
			n++
		}
	}
	return n
}

func (t *Transport) checkOutgoing(typ byte, payload []byte) error {
	if typ < FirstUserType {
		return ErrReservedType
	}
	if len(payload) > t.cfg.MaxMessageBytes {
		return fmt.Errorf("%w: %d bytes, maximum %d", ErrMessageTooLarge, len(payload), t.cfg.MaxMessageBytes)
	}
	return nil
}

// Peers lists the connected peers, sorted by NodeID.
func (t *Transport) Peers() []PeerInfo {
	ps := t.peerList()
	out := make([]PeerInfo, len(ps))
	for i, p := range ps {
		out[i] = p.info
	}
	slices.SortFunc(out, func(a, b PeerInfo) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return out
}

func (t *Transport) peerList() []*peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := make([]*peer, 0, len(t.mu.peers))
	for _, p := range t.mu.peers {
		ps = append(ps, p)
	}
	return ps
}

// Close stops listening and dialing, disconnects every peer and returns
// when every goroutine of the transport has ended, so it waits for
// handlers still running. Safe to call twice.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		return nil
	}
	t.mu.closed = true
	ln := t.mu.ln
	var peers []*peer
	for _, p := range t.mu.peers {
		peers = append(peers, p)
	}
	t.mu.Unlock()

	t.cancel()
	if ln != nil {
		_ = ln.Close()
	}
	for _, p := range peers {
		p.close("transport closed", slog.LevelInfo)
	}
	t.wg.Wait()
	return nil
}

// spawn runs f in a goroutine that Close waits for, unless the transport
// is closed.
func (t *Transport) spawn(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

// errDuplicate: the pair already has the connection the dedupe rule keeps.
var errDuplicate = errors.New("duplicate connection: the pair keeps the one dialed by the lower NodeID")

// duplicateError is errDuplicate naming the peer.
type duplicateError struct{ id NodeID }

func (e *duplicateError) Error() string { return errDuplicate.Error() + " (peer " + e.id.Hex() + ")" }
func (e *duplicateError) Unwrap() error { return errDuplicate }

// preferred reports whether p is the connection the pair keeps when two
// exist: the one dialed by the lower NodeID. Both ends compute the same
// answer, so both keep the same connection.
func (t *Transport) preferred(p *peer) bool {
	return p.info.Outbound == (bytes.Compare(t.self[:], p.info.ID[:]) < 0)
}

// register makes p the connection of its peer. A second connection
// between the same pair replaces the first if it is preferred, or if
// neither is (a redial after the old one died unnoticed); otherwise it is
// refused with errDuplicate. The replaced connection is returned for the
// caller to close.
func (t *Transport) register(p *peer) (replaced *peer, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return nil, ErrClosed
	}
	old := t.mu.peers[p.info.ID]
	switch {
	case old != nil && t.preferred(old) && !t.preferred(p):
		return nil, &duplicateError{p.info.ID}
	case old == nil && len(t.mu.peers) >= t.cfg.MaxPeers:
		return nil, refuse(ReasonTooManyPeers, p.info.ID, fmt.Errorf("too many peers (MaxPeers %d)", t.cfg.MaxPeers))
	}
	t.mu.peers[p.info.ID] = p
	t.notifyLocked()
	if old == nil {
		t.emitLocked(PeerEvent{Peer: p.info, Up: true})
	}
	return old, nil
}

// unregister removes p if it is still its peer's connection.
func (t *Transport) unregister(p *peer, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.peers[p.info.ID] != p {
		return
	}
	delete(t.mu.peers, p.info.ID)
	t.notifyLocked()
	t.emitLocked(PeerEvent{Peer: p.info, Up: false, Reason: reason})
}

func (t *Transport) notifyLocked() {
	close(t.mu.changed)
	t.mu.changed = make(chan struct{})
}

func (t *Transport) emitLocked(ev PeerEvent) {
	if t.cfg.OnPeerEvent == nil || t.mu.closed {
		return
	}
	select {
	case t.events <- ev:
	default:
		t.stats.eventsDropped.Add(1)
	}
}

func (t *Transport) eventLoop() {
	for {
		select {
		case <-t.ctx.Done():
			return
		case ev := <-t.events:
			t.cfg.OnPeerEvent(ev)
		}
	}
}

// refreshLoop verifies every connected peer again, every RefreshInterval
// and whenever the trust store changes, and disconnects those that no
// longer pass: revoked, expired, organization inactive, or refused by
// Authorize.
func (t *Transport) refreshLoop() {
	tick := time.NewTicker(t.cfg.RefreshInterval)
	defer tick.Stop()
	watch := t.cfg.Trust.Watch()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		case <-watch:
			watch = t.cfg.Trust.Watch()
		}
		for _, p := range t.peerList() {
			if _, err := t.cfg.Trust.Verify(p.info.Chain, peerUsage(p.info.Outbound), identity.RoleNode); err != nil {
				t.stats.rejected.Add(1)
				p.close("certificate no longer trusted: "+err.Error(), slog.LevelWarn)
				continue
			}
			if t.cfg.Authorize != nil {
				if err := t.cfg.Authorize(p.info); err != nil {
					t.stats.rejected.Add(1)
					p.close("no longer authorized: "+err.Error(), slog.LevelWarn)
				}
			}
		}
	}
}

// peerUsage is the extended key usage the peer's certificate needs: a
// peer we dialed acts as a TLS server, one that dialed us as a client.
func peerUsage(outbound bool) x509.ExtKeyUsage {
	if outbound {
		return x509.ExtKeyUsageServerAuth
	}
	return x509.ExtKeyUsageClientAuth
}

// backoff is the delay before redialing after attempt consecutive
// failures: DialBackoffMin doubled per failure up to DialBackoffMax, the
// upper half randomized so that nodes restarted together do not dial in
// lockstep.
func (t *Transport) backoff(attempt int) time.Duration {
	t.rngMu.Lock()
	r := t.rng.Float64()
	t.rngMu.Unlock()
	return backoffDelay(attempt, t.cfg.DialBackoffMin, t.cfg.DialBackoffMax, r)
}

func backoffDelay(attempt int, lo, hi time.Duration, r float64) time.Duration {
	d := hi
	if attempt < 40 {
		if x := lo << attempt; x > 0 && x < hi {
			d = x
		}
	}
	return d/2 + time.Duration(r*float64(d/2))
}

// sleep waits d or until Close; false when closed.
func (t *Transport) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
