package p2p

import "sync/atomic"

// Stats is a snapshot of the transport's counters since New.
type Stats struct {
	// Peers is the number of connected peers.
	Peers int
	// Types has the traffic of each message type that saw any; the
	// transport's own pings are type 1. Bytes are frame bytes (payload
	// plus the 5-byte header), TLS overhead not included.
	Types map[byte]TypeStats
	// SendDropped counts messages dropped because a send queue was full.
	SendDropped uint64
	// UnknownType counts received messages without a handler.
	UnknownType uint64
	// BadFrames counts connections closed for an oversized or empty frame.
	BadFrames uint64
	// HandshakeFailed counts connections that failed TLS or the hello
	// (garbage, wrong chain, bad signature, replayed handshake, timeouts).
	HandshakeFailed uint64
	// Rejected counts peers refused or disconnected by the trust store
	// or Authorize (unknown CA, expired, revoked, inactive organization).
	Rejected uint64
	// Refused counts connections, inbound and outbound, that did not
	// become peers, by reason (one of RefusalReasons(); reasons never seen
	// are absent). Duplicate connections, dials of this node itself and
	// connections cut by Close are not refusals.
	Refused map[string]uint64
	// Throttled counts frames delayed by the receive rate limit.
	Throttled uint64
	// EventsDropped counts peer events lost to a full event queue.
	EventsDropped uint64
}

// TypeStats is the traffic of one message type. Out counts messages
// taken from a send queue to be written (a write that then fails closes
// the connection); In counts messages handed to a handler.
type TypeStats struct {
	MsgsIn, BytesIn, MsgsOut, BytesOut uint64
	// Dropped counts messages of this type dropped on a full send queue.
	Dropped uint64
}

type typeCounters struct {
	msgsIn, bytesIn, msgsOut, bytesOut, dropped atomic.Uint64
}

type counters struct {
	types           [256]typeCounters
	sendDropped     atomic.Uint64
	unknownType     atomic.Uint64
	oversized       atomic.Uint64
	handshakeFailed atomic.Uint64
	rejected        atomic.Uint64
	throttled       atomic.Uint64
	eventsDropped   atomic.Uint64
	refused         [len(refusalReasons)]atomic.Uint64
}

// Stats returns the counters. Each counter is read atomically; the
// snapshot as a whole is not.
func (t *Transport) Stats() Stats {
	s := Stats{
		Types:           map[byte]TypeStats{},
		SendDropped:     t.stats.sendDropped.Load(),
		UnknownType:     t.stats.unknownType.Load(),
		BadFrames:       t.stats.oversized.Load(),
		HandshakeFailed: t.stats.handshakeFailed.Load(),
		Rejected:        t.stats.rejected.Load(),
		Throttled:       t.stats.throttled.Load(),
		EventsDropped:   t.stats.eventsDropped.Load(),
		Refused:         map[string]uint64{},
	}
	for i := range t.stats.refused {
		if v := t.stats.refused[i].Load(); v > 0 {
			s.Refused[refusalReasons[i]] = v
		}
	}
	for i := range t.stats.types {
		c := &t.stats.types[i]
		ts := TypeStats{c.msgsIn.Load(), c.bytesIn.Load(), c.msgsOut.Load(), c.bytesOut.Load(), c.dropped.Load()}
		if ts != (TypeStats{}) {
			s.Types[byte(i)] = ts
		}
	}
	t.mu.Lock()
	s.Peers = len(t.mu.peers)
	t.mu.Unlock()
	return s
}
