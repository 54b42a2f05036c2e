package p2p

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// stableConnection is how long a connection must last for the dial
// backoff to start over; a peer that accepts and drops us at once keeps
// backing off.
const stableConnection = time.Second

// acceptLoop accepts inbound connections and runs their handshakes, at
// most MaxPendingHandshakes at a time.
func (t *Transport) acceptLoop(ln net.Listener) {
	var acceptBackoff time.Duration
	for {
		raw, err := ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little,
			// bounded, instead of spinning.
			acceptBackoff = min(max(2*acceptBackoff, 5*time.Millisecond), time.Second)
			t.log.Warn("p2p: accept failed", "err", err, "retry_in", acceptBackoff)
			if !t.sleep(acceptBackoff) {
				return
			}
			continue
		}
		acceptBackoff = 0
		select {
		case t.hsSlots <- struct{}{}:
		default:
			t.stats.handshakeFailed.Add(1)
			err := refuse(ReasonTooManyHandshakes, NodeID{},
				fmt.Errorf("too many handshakes in progress (MaxPendingHandshakes %d)", t.cfg.MaxPendingHandshakes))
			t.countRefusal(err)
			t.logRefused(err, raw.RemoteAddr().String(), false)
			_ = raw.Close()
			continue
		}
		if !t.spawn(func() {
			defer func() { <-t.hsSlots }()
			remote := raw.RemoteAddr().String()
			if _, err := t.setup(raw, false, NodeID{}); err != nil {
				t.logRefused(err, remote, false)
			}
		}) {
			_ = raw.Close()
			return
		}
	}
}

// countRefusal counts a connection that did not become a peer by its
// reason; what is not a refusal (a duplicate, the transport closing) is
// not counted.
func (t *Transport) countRefusal(err error) {
	if t.ctx.Err() != nil {
		return
	}
	if reason, _ := reasonOf(err); reason != "" {
		t.stats.refused[reasonIndex[reason]].Add(1)
	}
}

// logRefused logs why an inbound connection did not become a peer, in
// one line, at most once per interval per source and reason (see
// refusalLog): a flood of refused connections costs a few lines and its
// count, not a line each.
func (t *Transport) logRefused(err error, remote string, outbound bool) {
	if errors.Is(err, ErrClosed) || t.ctx.Err() != nil {
		return
	}
	if errors.Is(err, errDuplicate) {
		t.log.Debug("p2p: duplicate connection closed", "remote", remote, "outbound", outbound, "reason", err)
		return
	}
	reason, peer := reasonOf(err)
	source := hostOf(remote)
	if peer != (NodeID{}) {
		source = peer.Hex()
	}
	log, as, suppressed := t.refusals.admit(source, reason, time.Now())
	if !log {
		return
	}
	attrs := []any{"remote", remote, "outbound", outbound, "refusal", reason, "reason", err}
	if as != source {
		attrs = append(attrs, "source", as)
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	t.log.Warn("p2p: connection refused", attrs...)
}

// dialLoop keeps one static peer connected: dial, run until the
// connection ends, back off, dial again. While the peer is connected by
// any connection (one it dialed, say) it waits instead of dialing.
func (t *Transport) dialLoop(pa PeerAddr) {
	log := t.log.With("peer_addr", pa.Addr)
	dialer := net.Dialer{Timeout: t.cfg.DialTimeout}
	known := pa.ID // learned from the first handshake when not configured
	attempt := 0
	lastErr := ""
	for {
		if !t.waitWhileConnected(known) {
			return
		}
		raw, err := dialer.DialContext(t.ctx, "tcp", pa.Addr)
		var (
			p   *peer
			dup *duplicateError
		)
		if err == nil {
			p, err = t.setup(raw, true, pa.ID)
		}
		if err != nil {
			switch {
			case t.ctx.Err() != nil:
				return
			case errors.Is(err, errSelf):
				log.Warn("p2p: static peer is this node itself; not dialing it")
				return
			case errors.As(err, &dup):
				// The peer is connected by the connection the pair keeps;
				// wait for it to end before dialing again.
				log.Debug("p2p: duplicate connection closed", "reason", err)
				known = dup.id
				if !t.sleep(t.backoff(0)) {
					return
				}
				continue
			default:
				// One line per change of reason; repeats at debug level.
				level := slog.LevelWarn
				if err.Error() == lastErr {
					level = slog.LevelDebug
				}
				lastErr = err.Error()
				log.Log(t.ctx, level, "p2p: dial failed", "attempt", attempt+1, "reason", err)
			}
			attempt++
			if !t.sleep(t.backoff(attempt)) {
				return
			}
			continue
		}
		lastErr = ""
		known = p.info.ID
		start := time.Now()
		select {
		case <-p.done:
		case <-t.ctx.Done():
			return
		}
		if time.Since(start) < stableConnection {
			attempt++
		} else {
			attempt = 0
		}
		if !t.sleep(t.backoff(attempt)) {
			return
		}
	}
}

// waitWhileConnected blocks while id has a connection; false when the
// transport closes. A zero id never waits.
func (t *Transport) waitWhileConnected(id NodeID) bool {
	for {
		t.mu.Lock()
		_, connected := t.mu.peers[id]
		changed := t.mu.changed
		t.mu.Unlock()
		if id == (NodeID{}) || !connected {
			return t.ctx.Err() == nil
		}
		select {
		case <-changed:
		case <-t.ctx.Done():
			return false
		}
	}
}
