package p2p

import (
	"errors"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/charter-ledger/charter/internal/identity"
)

// Reasons a connection does not become a peer. They are the values of the
// reason label of charter_p2p_handshakes_refused_total, so the set is
// fixed: every refusal maps to exactly one of them (Stats.Refused).
const (
	ReasonTooManyHandshakes = "too_many_handshakes" // MaxPendingHandshakes reached: closed at accept
	ReasonTLS               = "tls"                 // TLS failed: not TLS, no client certificate, bad alert
	ReasonTimeout           = "timeout"             // HandshakeTimeout passed during TLS or the hello
	ReasonProtocol          = "protocol"            // ALPN not negotiated, or the first frame is not a hello
	ReasonNoCertificate     = "no_certificate"
	ReasonUnknownCA         = "unknown_ca"
	ReasonExpired           = "expired"
	ReasonNotYetValid       = "not_yet_valid"
	ReasonRevoked           = "revoked"
	ReasonWrongRole         = "wrong_role"
	ReasonWrongKeyUsage     = "wrong_key_usage"
	ReasonOrgMismatch       = "org_mismatch"
	ReasonOrgInactive       = "org_inactive"
	ReasonBadCertificate    = "bad_certificate" // any other trust store refusal
	ReasonBadHello          = "bad_hello"       // malformed, wrong version, bad or replayed signature
	ReasonWrongNetwork      = "wrong_network"   // chain id or genesis hash differ
	ReasonUnexpectedNode    = "unexpected_node" // the static peer list names another node
	ReasonUnauthorized      = "unauthorized"    // Config.Authorize refused the peer
	ReasonTooManyPeers      = "too_many_peers"
	ReasonOther             = "other"
)

// refusalReasons lists every reason, in a fixed order.
var refusalReasons = [...]string{
	ReasonTooManyHandshakes, ReasonTLS, ReasonTimeout, ReasonProtocol,
	ReasonNoCertificate, ReasonUnknownCA, ReasonExpired, ReasonNotYetValid, ReasonRevoked,
	ReasonWrongRole, ReasonWrongKeyUsage, ReasonOrgMismatch, ReasonOrgInactive, ReasonBadCertificate,
	ReasonBadHello, ReasonWrongNetwork, ReasonUnexpectedNode, ReasonUnauthorized, ReasonTooManyPeers, ReasonOther,
}

// RefusalReasons lists every reason a connection may be refused for, in
// a fixed order.
func RefusalReasons() []string { return slices.Clone(refusalReasons[:]) }

// reasonIndex maps a reason to its counter.
var reasonIndex = func() map[string]int {
	m := make(map[string]int, len(refusalReasons))
	for i, r := range refusalReasons {
		m[r] = i
	}
	return m
}()

// refusalError is an error of setup that says which reason it counts as
// and, once the hello named it, which node the peer claimed to be.
type refusalError struct {
	reason string
	peer   NodeID // zero before the hello
	err    error
}

func (e *refusalError) Error() string { return e.err.Error() }
func (e *refusalError) Unwrap() error { return e.err }

func refuse(reason string, peer NodeID, err error) error {
	return &refusalError{reason: reason, peer: peer, err: err}
}

// certReason maps a trust store refusal to its reason.
func certReason(err error) string {
	for _, c := range []struct {
		err    error
		reason string
	}{
		{identity.ErrNoCertificate, ReasonNoCertificate},
		{identity.ErrUnknownCA, ReasonUnknownCA},
		{identity.ErrExpired, ReasonExpired},
		{identity.ErrNotYetValid, ReasonNotYetValid},
		{identity.ErrRevoked, ReasonRevoked},
		{identity.ErrWrongRole, ReasonWrongRole},
		{identity.ErrWrongKeyUsage, ReasonWrongKeyUsage},
		{identity.ErrOrgMismatch, ReasonOrgMismatch},
		{identity.ErrOrgInactive, ReasonOrgInactive},
	} {
		if errors.Is(err, c.err) {
			return c.reason
		}
	}
	return ReasonBadCertificate
}

// reasonOf is the reason an error of setup counts as; "" for what is not
// a refusal (the transport closing, a duplicate connection, a dial of
// this very node).
func reasonOf(err error) (reason string, peer NodeID) {
	var re *refusalError
	switch {
	case err == nil, errors.Is(err, ErrClosed), errors.Is(err, errDuplicate), errors.Is(err, errSelf):
		return "", NodeID{}
	case errors.As(err, &re):
		if errors.Is(re.err, os.ErrDeadlineExceeded) {
			return ReasonTimeout, re.peer
		}
		return re.reason, re.peer
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonTimeout, NodeID{}
	}
	return ReasonOther, NodeID{}
}

// Bounds of the refusal log (Config.RefusalLogInterval and
// RefusalLogSources default to them).
const (
	DefaultRefusalLogInterval = time.Minute
	DefaultRefusalLogSources  = 1024
	// refusalSweepEvery bounds how often a full table is swept of
	// entries whose interval has passed.
	refusalSweepEvery = time.Second
)

// refusalLog decides which refused connections are logged: per source
// (the claimed node id once the hello named one, else the remote IP) and
// reason, the first refusal of each interval; the others are only counted,
// and the next line of that source and reason says how many were
// suppressed. It remembers at most max sources and reasons; when that many
// are fresh, new ones share one entry per reason (source "others"), so a
// flood from any number of addresses writes at most max+len(refusalReasons)
// lines per interval. Goroutine-safe.
type refusalLog struct {
	interval time.Duration
	max      int

	mu        sync.Mutex
	entries   map[refusalKey]*refusalEntry // at most max
	others    map[string]*refusalEntry     // by reason: at most len(refusalReasons)
	lastSweep time.Time
}

type refusalKey struct{ source, reason string }

type refusalEntry struct {
	logged     time.Time // when its last line was written
	suppressed uint64    // refusals since then not logged
}

// othersSource names the shared source of refusals beyond the table's
// bound.
const othersSource = "others"

func newRefusalLog(interval time.Duration, max int) *refusalLog {
	return &refusalLog{interval: interval, max: max,
		entries: make(map[refusalKey]*refusalEntry), others: make(map[string]*refusalEntry)}
}

// admit records one refusal at now. It reports whether to log it, the
// source to name, and how many refusals of that source and reason were
// suppressed since its previous line.
func (l *refusalLog) admit(source, reason string, now time.Time) (log bool, as string, suppressed uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := refusalKey{source, reason}
	e := l.entries[k]
	if e == nil {
		if len(l.entries) >= l.max && now.Sub(l.lastSweep) >= refusalSweepEvery {
			l.sweepLocked(now)
		}
		table := func(e *refusalEntry) { l.entries[k] = e }
		if len(l.entries) >= l.max {
			source, e = othersSource, l.others[reason]
			table = func(e *refusalEntry) { l.others[reason] = e }
		}
		if e == nil {
			table(&refusalEntry{logged: now})
			return true, source, 0
		}
	}
	if now.Sub(e.logged) < l.interval {
		e.suppressed++
		return false, source, 0
	}
	suppressed, e.suppressed, e.logged = e.suppressed, 0, now
	return true, source, suppressed
}

// sweepLocked forgets the entries whose interval has passed. Their
// suppressed counts are lost to the log (the counters keep them).
func (l *refusalLog) sweepLocked(now time.Time) {
	l.lastSweep = now
	for k, e := range l.entries {
		if now.Sub(e.logged) >= l.interval {
			delete(l.entries, k)
		}
	}
}

// hostOf is the IP of a host:port, or the address itself.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
