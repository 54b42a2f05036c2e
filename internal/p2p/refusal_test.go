package p2p

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/charter-ledger/charter/internal/identity"
)

// TestRefusalFloodIsLoggedOnceAndCounted: a loop of refused connections
// from one address (not TLS at all, then a certificate of a CA the node
// does not know) writes one log line per reason, not one per connection,
// and every refusal is counted by its reason. Once the interval passes,
// the next line says how many were suppressed.
func TestRefusalFloodIsLoggedOnceAndCounted(t *testing.T) {
	const flood = 300
	p := newPKI(t, "org0")
	a := newNode(t, p, "org0", "a", func(c *Config) { c.RefusalLogInterval = time.Hour }).start(t)

	for i := 0; i < flood; i++ {
		c, err := net.DialTimeout("tcp", a.addr(), waitFor)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		_ = c.SetReadDeadline(time.Now().Add(waitFor))
		_, _ = c.Read(make([]byte, 64)) // until a closes it
		_ = c.Close()
	}
	mallory := newPKI(t, "Mallory")
	foreign := mallory.nodeCert(t, "Mallory", "m", identity.CertRequest{})
	for i := 0; i < flood/10; i++ {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: waitFor}, "tcp", a.addr(), &tls.Config{
			InsecureSkipVerify: true, NextProtos: []string{alpnProto}, Certificates: []tls.Certificate{foreign}})
		if err == nil {
			_ = c.SetReadDeadline(time.Now().Add(waitFor))
			_, _ = c.Read(make([]byte, 1)) // the server's alert
			_ = c.Close()
		}
	}
	eventually(t, waitFor, "every refusal counted", func() bool {
		s := a.tr.Stats()
		return s.Refused[ReasonTLS] == flood && s.Refused[ReasonUnknownCA] == flood/10
	})
	if got := a.tr.Stats().Refused; len(got) != 2 {
		t.Fatalf("refusals by reason %v, want only tls and unknown_ca", got)
	}
	lines := a.logs.lines("connection refused")
	if len(lines) != 2 || len(a.logs.lines("connection refused", "refusal=tls")) != 1 ||
		len(a.logs.lines("connection refused", "refusal=unknown_ca", "unknown CA")) != 1 {
		t.Fatalf("%d refusal lines for %d refusals, want one per reason:\n%s", len(lines), flood+flood/10, strings.Join(lines, "\n"))
	}
	t.Log(lines[0])
}

// TestRefusalLogBounds: the refusal log says how many it suppressed, keys
// by source and reason, and never remembers more sources than its bound:
// beyond it, new sources share one line per reason and interval.
func TestRefusalLogBounds(t *testing.T) {
	l := newRefusalLog(time.Minute, 3)
	t0 := time.Unix(1_000_000, 0)
	type step struct {
		source, reason string
		at             time.Duration
		log            bool
		as             string
		suppressed     uint64
	}
	steps := []step{
		{"10.0.0.1", ReasonTLS, 0, true, "10.0.0.1", 0},
		{"10.0.0.1", ReasonTLS, time.Second, false, "10.0.0.1", 0},
		{"10.0.0.1", ReasonTLS, 2 * time.Second, false, "10.0.0.1", 0},
		{"10.0.0.1", ReasonUnknownCA, 10 * time.Second, true, "10.0.0.1", 0}, // another reason: its own line
		{"10.0.0.1", ReasonTLS, 61 * time.Second, true, "10.0.0.1", 2},       // the interval passed
		{"10.0.0.2", ReasonTLS, 62 * time.Second, true, "10.0.0.2", 0},
		// The table holds 3: a fourth source within their interval shares "others".
		{"10.0.0.3", ReasonTLS, 63 * time.Second, true, othersSource, 0},
		{"10.0.0.4", ReasonTLS, 64 * time.Second, false, othersSource, 0},
		{"10.0.0.5", ReasonExpired, 65 * time.Second, true, othersSource, 0},
		// Past every interval, a sweep makes room again.
		{"10.0.0.6", ReasonTLS, 200 * time.Second, true, "10.0.0.6", 0},
	}
	for i, s := range steps {
		log, as, sup := l.admit(s.source, s.reason, t0.Add(s.at))
		if log != s.log || as != s.as || sup != s.suppressed {
			t.Fatalf("step %d %+v: log %v as %q suppressed %d", i, s, log, as, sup)
		}
	}
	// A flood from many sources stays bounded in memory and in lines.
	l = newRefusalLog(time.Minute, 64)
	logged := 0
	for i := 0; i < 100_000; i++ {
		src := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		if log, _, _ := l.admit(src, ReasonTLS, t0.Add(time.Duration(i)*time.Microsecond)); log {
			logged++
		}
	}
	if len(l.entries) > 64 || len(l.others) > len(refusalReasons) || logged != 65 {
		t.Fatalf("entries %d, others %d, lines %d; want at most 64, %d, and 65 lines", len(l.entries), len(l.others), logged, len(refusalReasons))
	}
}
