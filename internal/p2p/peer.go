package p2p

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/charter-ledger/charter/internal/identity"
)

// peer is one established connection to a peer. Its reader goroutine owns
// the read side and the rate limiters; its writer goroutine owns the write
// side; close may be called from anywhere.
type peer struct {
	t     *Transport
	info  PeerInfo
	raw   net.Conn
	tc    *tls.Conn
	br    *bufio.Reader
	sendq chan outFrame
	log   *slog.Logger

	done      chan struct{}
	closeOnce sync.Once
}

type outFrame struct {
	typ   byte
	frame []byte
}

const (
	readBufferSize  = 64 << 10
	writeBufferSize = 64 << 10
	// maxWriteBatch bounds the bytes written between flushes.
	maxWriteBatch = 1 << 20
)

// setup turns a fresh TCP connection into a registered, running peer:
// TLS 1.3 with both certificates checked against the trust store, the
// hello exchange, the Authorize hook, dedupe. On error the connection is
// closed, the refusal is counted by its reason (Stats.Refused) and the
// error says why in one line.
func (t *Transport) setup(raw net.Conn, outbound bool, expect NodeID) (p *peer, err error) {
	defer func() {
		if err != nil {
			_ = raw.Close()
			t.countRefusal(err)
		}
	}()
	// Close aborts a handshake in progress.
	stop := context.AfterFunc(t.ctx, func() { _ = raw.Close() })
	defer stop()
	deadline := time.Now().Add(t.cfg.HandshakeTimeout)
	if err := raw.SetDeadline(deadline); err != nil {
		return nil, err
	}

	var (
		ident     identity.Identity
		verifyErr error
	)
	conf := t.tlsConf.Clone()
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		id, err := t.cfg.Trust.Verify(cs.PeerCertificates, peerUsage(outbound), identity.RoleNode)
		if err != nil {
			verifyErr = err
			return err
		}
		ident = id
		return nil
	}
	var tc *tls.Conn
	mySide, theirSide := sideListener, sideDialer
	if outbound {
		tc = tls.Client(raw, conf)
		mySide, theirSide = sideDialer, sideListener
	} else {
		tc = tls.Server(raw, conf)
	}
	if err := tc.Handshake(); err != nil {
		if verifyErr != nil {
			t.stats.rejected.Add(1)
			return nil, refuse(certReason(verifyErr), NodeID{}, fmt.Errorf("peer certificate rejected: %w", verifyErr))
		}
		t.stats.handshakeFailed.Add(1)
		return nil, refuse(ReasonTLS, NodeID{}, fmt.Errorf("TLS handshake: %w", err))
	}
	cs := tc.ConnectionState()
	if cs.NegotiatedProtocol != alpnProto {
		t.stats.handshakeFailed.Add(1)
		return nil, refuse(ReasonProtocol, NodeID{}, fmt.Errorf("peer did not negotiate protocol %q", alpnProto))
	}

	h, err := t.hello(&cs, tc, mySide, theirSide)
	if err != nil {
		t.stats.handshakeFailed.Add(1)
		return nil, err
	}
	br := h.br
	info := PeerInfo{
		ID: h.id, Identity: ident, Chain: cs.PeerCertificates,
		Addr: raw.RemoteAddr().String(), LocalAddr: raw.LocalAddr().String(),
		Outbound: outbound, Since: time.Now(),
	}
	switch {
	case info.ID == t.self:
		return nil, errSelf
	case expect != (NodeID{}) && info.ID != expect:
		t.stats.rejected.Add(1)
		return nil, refuse(ReasonUnexpectedNode, info.ID, fmt.Errorf("peer is node %s, the static peer list expects %s", info.ID, expect))
	}
	if t.cfg.Authorize != nil {
		if err := t.cfg.Authorize(info); err != nil {
			t.stats.rejected.Add(1)
			return nil, refuse(ReasonUnauthorized, info.ID, fmt.Errorf("peer %s not authorized: %w", info.ID, err))
		}
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}

	p = &peer{
		t: t, info: info, raw: raw, tc: tc, br: br,
		sendq: make(chan outFrame, t.cfg.SendQueueLen),
		done:  make(chan struct{}),
		log: t.log.With("peer", info.ID.Hex(), "org", ident.Org, "name", ident.Name,
			"remote", info.Addr, "outbound", outbound),
	}
	old, err := t.register(p)
	if err != nil {
		return nil, err
	}
	if old != nil {
		old.close("replaced by a newer connection", slog.LevelDebug)
		// Messages the old connection had not written yet go out on the
		// new one (possibly after a few newer ones).
		p.takeQueue(old)
	}
	p.log.Info("p2p: peer connected")
	if !t.spawn(p.readLoop) || !t.spawn(p.writeLoop) {
		p.close("transport closed", slog.LevelInfo)
		return nil, ErrClosed
	}
	return p, nil
}

// errSelf: the peer is this very node (a static peer entry pointing back).
var errSelf = errors.New("connected to itself")

type helloResult struct {
	id NodeID
	br *bufio.Reader
}

// hello sends this node's hello and checks the peer's (signature over
// this connection's keying material, chain id, genesis hash). Its errors
// carry their refusal reason.
func (t *Transport) hello(cs *tls.ConnectionState, tc *tls.Conn, mySide, theirSide byte) (helloResult, error) {
	ekm, err := cs.ExportKeyingMaterial(ekmLabel, nil, ekmLen)
	if err != nil {
		return helloResult{}, refuse(ReasonTLS, NodeID{}, fmt.Errorf("export keying material: %w", err))
	}
	mine, err := newHello(t.cfg.NodeKey, t.cfg.ChainID, t.cfg.GenesisHash, mySide, ekm)
	if err != nil {
		return helloResult{}, err
	}
	if _, err := tc.Write(encodeFrame(typeHandshake, mine.encode())); err != nil {
		return helloResult{}, refuse(ReasonTLS, NodeID{}, fmt.Errorf("send hello: %w", err))
	}
	br := bufio.NewReaderSize(tc, readBufferSize)
	typ, payload, err := readFrame(br, helloLen)
	if err != nil {
		reason := ReasonTLS // the peer closed, or sent a TLS alert: it refused us
		if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrEmptyFrame) {
			reason = ReasonBadHello
		}
		return helloResult{}, refuse(reason, NodeID{}, fmt.Errorf("read hello: %w", err))
	}
	if typ != typeHandshake {
		return helloResult{}, refuse(ReasonProtocol, NodeID{}, fmt.Errorf("%w: first message has type %d, not a handshake", errHello, typ))
	}
	theirs, err := decodeHello(payload)
	if err != nil {
		return helloResult{}, refuse(ReasonBadHello, NodeID{}, err)
	}
	if err := theirs.verify(theirSide, ekm); err != nil {
		return helloResult{}, refuse(ReasonBadHello, theirs.NodeID, err)
	}
	if theirs.ChainID != t.cfg.ChainID {
		return helloResult{}, refuse(ReasonWrongNetwork, theirs.NodeID,
			fmt.Errorf("%w: chain id mismatch: ours %d, peer %s has %d", errHello, t.cfg.ChainID, theirs.NodeID, theirs.ChainID))
	}
	if theirs.Genesis != t.cfg.GenesisHash {
		return helloResult{}, refuse(ReasonWrongNetwork, theirs.NodeID,
			fmt.Errorf("%w: genesis hash mismatch: ours %s, peer %s has %s", errHello, t.cfg.GenesisHash, theirs.NodeID, theirs.Genesis))
	}
	return helloResult{id: theirs.NodeID, br: br}, nil
}

// enqueue puts a frame on the send queue, or drops and counts it when
// the queue is full. It never blocks.
func (p *peer) enqueue(typ byte, frame []byte) error {
	select {
	case <-p.done:
		return ErrNotConnected
	default:
	}
	select {
	case p.sendq <- outFrame{typ, frame}:
		return nil
	default:
		p.t.stats.types[typ].dropped.Add(1)
		p.t.stats.sendDropped.Add(1)
		return ErrQueueFull
	}
}

// takeQueue moves the unsent frames of a closed connection to p's queue,
// as far as they fit. Bounded by old's queue length.
func (p *peer) takeQueue(old *peer) {
	for range cap(old.sendq) {
		select {
		case f := <-old.sendq:
			_ = p.enqueue(f.typ, f.frame)
		default:
			return
		}
	}
}

// close ends the connection once, logging the reason in one line at the
// given level, and unregisters the peer.
func (p *peer) close(reason string, level slog.Level) {
	p.closeOnce.Do(func() {
		close(p.done)
		// Close the TCP connection, not the TLS one: a TLS close_notify
		// could block on a peer that does not read.
		_ = p.raw.Close()
		p.log.Log(context.Background(), level, "p2p: peer disconnected", "reason", reason)
		p.t.unregister(p, reason)
	})
}

func (p *peer) readLoop() {
	cfg := &p.t.cfg
	now := time.Now()
	bytesIn := newTokenBucket(cfg.RecvBytesPerSec, cfg.RecvBytesBurst, now)
	msgsIn := newTokenBucket(cfg.RecvMsgsPerSec, cfg.RecvMsgsBurst, now)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := p.raw.SetReadDeadline(time.Now().Add(cfg.IdleTimeout)); err != nil {
			p.close("set read deadline: "+err.Error(), slog.LevelInfo)
			return
		}
		typ, payload, err := readFrame(p.br, cfg.MaxMessageBytes)
		if err != nil {
			p.readFailed(err)
			return
		}
		n := len(payload) + frameHeaderLen
		now := time.Now()
		if wait := max(bytesIn.reserve(now, n), msgsIn.reserve(now, 1)); wait > 0 {
			p.t.stats.throttled.Add(1)
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-p.done:
				return
			case <-timer.C:
			}
		}
		if !p.dispatch(typ, payload, n) {
			return
		}
	}
}

func (p *peer) readFailed(err error) {
	select {
	case <-p.done:
		return // closed by this side; the reason is logged already
	default:
	}
	switch {
	case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrEmptyFrame):
		p.t.stats.oversized.Add(1)
		p.close("bad frame: "+err.Error(), slog.LevelWarn)
	case errors.Is(err, io.EOF):
		p.close("closed by peer", slog.LevelInfo)
	case errors.Is(err, os.ErrDeadlineExceeded):
		p.close(fmt.Sprintf("idle for %s", p.t.cfg.IdleTimeout), slog.LevelWarn)
	default:
		p.close("read: "+err.Error(), slog.LevelInfo)
	}
}

// dispatch hands one message to its handler; false when the connection
// was closed for a protocol violation.
func (p *peer) dispatch(typ byte, payload []byte, n int) bool {
	st := &p.t.stats.types[typ]
	switch {
	case typ == typePing:
		st.msgsIn.Add(1)
		st.bytesIn.Add(uint64(n))
		return true
	case typ == typeHandshake:
		p.t.stats.handshakeFailed.Add(1)
		p.close("protocol violation: handshake message after the handshake (replayed?)", slog.LevelWarn)
		return false
	}
	h := p.t.handlers[typ].Load()
	if h == nil {
		p.t.stats.unknownType.Add(1)
		p.log.Debug("p2p: message of unknown type dropped", "type", typ, "bytes", n)
		return true
	}
	st.msgsIn.Add(1)
	st.bytesIn.Add(uint64(n))
	(*h)(p.info.ID, payload)
	return true
}

func (p *peer) writeLoop() {
	cfg := &p.t.cfg
	bw := bufio.NewWriterSize(p.tc, writeBufferSize)
	ping := time.NewTicker(cfg.PingInterval)
	defer ping.Stop()
	wroteSincePing := false
	pingFrame := encodeFrame(typePing, nil)
	for {
		var batch []outFrame
		select {
		case <-p.done:
			return
		case f := <-p.sendq:
			batch = append(batch, f)
			size := len(f.frame)
		drain:
			for size < maxWriteBatch {
				select {
				case f := <-p.sendq:
					batch = append(batch, f)
					size += len(f.frame)
				default:
					break drain
				}
			}
			wroteSincePing = true
		case <-ping.C:
			if wroteSincePing {
				wroteSincePing = false
				continue
			}
			batch = append(batch, outFrame{typePing, pingFrame})
		}
		if err := p.write(bw, batch); err != nil {
			select {
			case <-p.done:
			default:
				level := slog.LevelInfo
				if errors.Is(err, os.ErrDeadlineExceeded) {
					level = slog.LevelWarn
					err = fmt.Errorf("peer did not read for %s", cfg.WriteTimeout)
				}
				p.close("write: "+err.Error(), level)
			}
			return
		}
	}
}

func (p *peer) write(bw *bufio.Writer, batch []outFrame) error {
	if err := p.raw.SetWriteDeadline(time.Now().Add(p.t.cfg.WriteTimeout)); err != nil {
		return err
	}
	// Counted before writing, so that a peer that has a message always
	// sees it counted by the sender.
	for _, f := range batch {
		st := &p.t.stats.types[f.typ]
		st.msgsOut.Add(1)
		st.bytesOut.Add(uint64(len(f.frame)))
	}
	for _, f := range batch {
		if _, err := bw.Write(f.frame); err != nil {
			return err
		}
	}
	return bw.Flush()
}
