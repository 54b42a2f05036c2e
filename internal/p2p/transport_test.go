package p2p

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/identity"
)

func TestTwoNodesExchangeMessages(t *testing.T) {
	p := newPKI(t, "org0", "org1")
	a := newNode(t, p, "org0", "a").start(t)
	b := newNode(t, p, "org1", "b", func(c *Config) { c.ListenAddr = "" })
	if err := b.tr.AddPeer(PeerAddr{Addr: a.addr(), ID: a.id}); err != nil {
		t.Fatal(err)
	}
	b.start(t)
	eventually(t, waitFor, "a and b connected", func() bool { return a.connected(b.id) && b.connected(a.id) })

	if err := a.tr.Send(b.id, msgTest, []byte("hello b")); err != nil {
		t.Fatal(err)
	}
	b.expectMsg(t, a.id, "hello b")
	buf := []byte("hello a")
	if err := b.tr.Send(a.id, msgTest, buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXXX") // Send copied the payload
	a.expectMsg(t, b.id, "hello a")
	if n := a.tr.Broadcast(msgTest, []byte("to all")); n != 1 {
		t.Fatalf("broadcast reached %d peers", n)
	}
	b.expectMsg(t, a.id, "to all")

	info, _ := a.peer(b.id)
	if info.Identity.Org != "org1" || info.Identity.Name != "b" || info.Outbound {
		t.Fatalf("a's view of b: %+v", info)
	}
	sa := a.tr.Stats()
	if sa.Peers != 1 || sa.Types[msgTest].MsgsOut != 2 || sa.Types[msgTest].MsgsIn != 1 ||
		sa.Types[msgTest].BytesOut != uint64(2*frameHeaderLen+len("hello b")+len("to all")) {
		t.Fatalf("stats of a: %+v", sa)
	}
	eventually(t, waitFor, "up events", func() bool { return a.eventLog() == "b:true" && b.eventLog() == "a:true" })

	// API errors.
	if err := a.tr.Send(common.Address{1}, msgTest, nil); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("unknown peer: %v", err)
	}
	if err := a.tr.Send(b.id, 1, nil); !errors.Is(err, ErrReservedType) {
		t.Fatalf("reserved type: %v", err)
	}
	if err := a.tr.Send(b.id, msgTest, make([]byte, DefaultMaxMessageBytes+1)); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	_ = b.tr.Close()
	eventually(t, waitFor, "down event", func() bool { return a.eventLog() == "b:true b:false" })
	if err := b.tr.Send(a.id, msgTest, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestThreeNodesFullMeshKeepOneConnectionPerPair(t *testing.T) {
	p := newPKI(t, "org0", "org1", "org2")
	nodes := []*testNode{
		newNode(t, p, "org0", "n0").start(t),
		newNode(t, p, "org1", "n1").start(t),
		newNode(t, p, "org2", "n2").start(t),
	}
	// Everyone dials everyone: each pair dials both ways at once.
	for _, n := range nodes {
		for _, m := range nodes {
			if n != m {
				_ = n.tr.AddPeer(PeerAddr{Addr: m.addr()})
			}
		}
	}
	agree := func() bool {
		for _, n := range nodes {
			for _, m := range nodes {
				if n == m {
					continue
				}
				nm, ok1 := n.peer(m.id)
				mn, ok2 := m.peer(n.id)
				// Both ends hold the same TCP connection, the one dialed
				// by the lower NodeID (both dial, so that one exists).
				if !ok1 || !ok2 || nm.LocalAddr != mn.Addr || nm.Addr != mn.LocalAddr || nm.Outbound == mn.Outbound {
					return false
				}
				if nm.Outbound != (bytes.Compare(n.id[:], m.id[:]) < 0) {
					return false
				}
			}
		}
		return true
	}
	eventually(t, waitFor, "one agreed connection per pair", agree)

	for i, n := range nodes {
		if got := n.tr.Broadcast(msgTest, []byte(fmt.Sprintf("from %d", i))); got != 2 {
			t.Fatalf("n%d broadcast reached %d", i, got)
		}
	}
	for i, n := range nodes {
		seen := map[string]NodeID{}
		for range 2 {
			select {
			case m := <-n.inbox:
				seen[string(m.payload)] = m.from
			case <-time.After(waitFor):
				t.Fatalf("n%d got %v", i, seen)
			}
		}
		for j, m := range nodes {
			if j != i && seen[fmt.Sprintf("from %d", j)] != m.id {
				t.Fatalf("n%d: %v", i, seen)
			}
		}
	}
	for _, n := range nodes {
		if s := n.tr.Stats(); s.Peers != 2 {
			t.Fatalf("%s has %d peers", n.name, s.Peers)
		}
	}
}

func TestUnknownCACannotConnect(t *testing.T) {
	p := newPKI(t, "org0")
	mallory := newPKI(t, "Mallory")
	a := newNode(t, p, "org0", "a").start(t)
	// m's trust store knows org0 (so m would accept a), but m's own
	// certificate comes from a CA a has never heard of.
	m := newNode(t, p, "org0", "m", func(c *Config) {
		c.ListenAddr = ""
		c.Certificate = mallory.nodeCert(t, "Mallory", "m", identity.CertRequest{})
	})
	_ = m.tr.AddPeer(PeerAddr{Addr: a.addr()})
	m.start(t)
	eventually(t, waitFor, "a logs why it refused m", func() bool {
		return len(a.logs.lines("connection refused", "unknown CA", `\"m\" (Mallory)`)) > 0
	})
	if len(a.tr.Peers()) != 0 || len(m.tr.Peers()) != 0 {
		t.Fatal("a node with a foreign certificate got connected")
	}
	if a.tr.Stats().Rejected == 0 {
		t.Fatal("rejection not counted")
	}
	// The dialer learns that it was refused, too.
	eventually(t, waitFor, "m logs the refusal", func() bool { return len(m.logs.lines("dial failed", "bad certificate")) > 0 })
	t.Log(a.logs.lines("connection refused")[0])
}

func TestExpiredCertificateCannotConnect(t *testing.T) {
	p := newPKI(t, "org0")
	a := newNode(t, p, "org0", "a").start(t)
	old := newNode(t, p, "org0", "old", func(c *Config) {
		c.ListenAddr = ""
		c.Certificate = p.nodeCert(t, "org0", "old", identity.CertRequest{
			NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour})
	})
	_ = old.tr.AddPeer(PeerAddr{Addr: a.addr()})
	old.start(t)
	eventually(t, waitFor, "a logs the expired certificate", func() bool {
		return len(a.logs.lines("connection refused", "certificate expired", `\"old\" (org0) expired at`)) > 0
	})
	if len(a.tr.Peers()) != 0 {
		t.Fatal("expired certificate connected")
	}

	// The other way round: the dialer refuses a listener whose
	// certificate expired.
	stale := newNode(t, p, "org0", "stale", func(c *Config) {
		c.Certificate = p.nodeCert(t, "org0", "stale", identity.CertRequest{
			NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour})
	}).start(t)
	_ = a.tr.AddPeer(PeerAddr{Addr: stale.addr()})
	eventually(t, waitFor, "a refuses to dial an expired listener", func() bool {
		return len(a.logs.lines("dial failed", "certificate expired", `\"stale\"`)) > 0
	})
}

func TestRevokedPeerIsDisconnectedWithinOneRefreshInterval(t *testing.T) {
	p := newPKI(t, "org0", "org1")
	a := newNode(t, p, "org0", "a").start(t)
	b := newNode(t, p, "org0", "b", func(c *Config) { c.ListenAddr = "" })
	c := newNode(t, p, "org1", "c", func(c *Config) { c.ListenAddr = "" })
	for _, n := range []*testNode{b, c} {
		_ = n.tr.AddPeer(PeerAddr{Addr: a.addr(), ID: a.id})
		n.start(t)
	}
	eventually(t, waitFor, "b and c connected", func() bool { return a.connected(b.id, c.id) })
	interval := a.cfg.RefreshInterval

	// Governance revokes b's certificate on a's node.
	bInfo, _ := a.peer(b.id)
	revokedAt := time.Now()
	a.trust.RevokeFingerprint(bInfo.Identity.Fingerprint)
	eventually(t, interval+time.Second, "b disconnected", func() bool { return !a.connected(b.id) })
	if took := time.Since(revokedAt); took > interval+500*time.Millisecond {
		t.Fatalf("revoked peer dropped after %s, refresh interval %s", took, interval)
	}
	if len(a.logs.lines("peer disconnected", "certificate no longer trusted", "certificate revoked")) == 0 {
		t.Fatalf("no disconnect line:\n%s", a.logs.String())
	}
	// b keeps redialing and is refused at the TLS handshake.
	eventually(t, waitFor, "b refused on redial", func() bool {
		return len(a.logs.lines("connection refused", "certificate revoked")) > 0
	})
	if !a.connected(c.id) {
		t.Fatal("c was dropped with b")
	}

	// An organization voted out: its node is dropped too.
	if err := a.trust.SetOrgActive("org1", false); err != nil {
		t.Fatal(err)
	}
	eventually(t, interval+time.Second, "c disconnected", func() bool { return !a.connected(c.id) })
	if len(a.logs.lines("peer disconnected", "organization inactive")) == 0 {
		t.Fatal("no disconnect line for the inactive organization")
	}
}

// The periodic check, without any signal from the trust store: a peer
// certificate that expires while connected is dropped within one interval.
func TestPeriodicRecheckDropsCertificateExpiringWhileConnected(t *testing.T) {
	p := newPKI(t, "org0")
	var now atomic.Pointer[time.Time]
	t0 := time.Now()
	now.Store(&t0)
	clock := func() time.Time { return *now.Load() }
	a := newNode(t, p, "org0", "a", func(c *Config) { c.Trust = p.trust(t, identity.WithClock(clock)) }).start(t)
	b := newNode(t, p, "org0", "b", func(c *Config) {
		c.ListenAddr = ""
		c.Certificate = p.nodeCert(t, "org0", "b", identity.CertRequest{Validity: time.Hour})
	})
	_ = b.tr.AddPeer(PeerAddr{Addr: a.addr()})
	b.start(t)
	eventually(t, waitFor, "connected", func() bool { return a.connected(b.id) })

	later := t0.Add(2 * time.Hour)
	now.Store(&later)
	changedAt := time.Now()
	eventually(t, a.cfg.RefreshInterval+time.Second, "b dropped", func() bool { return !a.connected(b.id) })
	if took := time.Since(changedAt); took > a.cfg.RefreshInterval+500*time.Millisecond {
		t.Fatalf("dropped after %s", took)
	}
	if len(a.logs.lines("certificate no longer trusted", "certificate expired")) == 0 {
		t.Fatal("no reason logged")
	}
}

func TestWrongChainIDOrGenesisIsRejected(t *testing.T) {
	p := newPKI(t, "org0")
	a := newNode(t, p, "org0", "a").start(t)
	cases := []struct {
		name   string
		opt    nodeOpt
		reason string
	}{
		{"chain", func(c *Config) { c.ChainID = 7 }, "chain id mismatch: ours 1337"},
		{"genesis", func(c *Config) { c.GenesisHash = common.Hash{2} }, "genesis hash mismatch"},
	}
	for _, tc := range cases {
		n := newNode(t, p, "org0", tc.name, func(c *Config) { c.ListenAddr = "" }, tc.opt)
		_ = n.tr.AddPeer(PeerAddr{Addr: a.addr()})
		n.start(t)
		eventually(t, waitFor, tc.name+" refused by a", func() bool {
			return len(a.logs.lines("connection refused", tc.reason)) > 0
		})
		eventually(t, waitFor, tc.name+" refusal logged by the dialer", func() bool {
			return len(n.logs.lines("dial failed", strings.Split(tc.reason, ":")[0])) > 0
		})
		if len(a.tr.Peers()) != 0 {
			t.Fatalf("%s: connected", tc.name)
		}
		_ = n.tr.Close()
	}
}

func TestStaticPeerWithUnexpectedNodeIDAndSelfDial(t *testing.T) {
	p := newPKI(t, "org0")
	a := newNode(t, p, "org0", "a").start(t)
	b := newNode(t, p, "org0", "b", func(c *Config) { c.ListenAddr = "" })
	_ = b.tr.AddPeer(PeerAddr{Addr: a.addr(), ID: common.Address{0xaa}})
	b.start(t)
	eventually(t, waitFor, "b refuses a", func() bool {
		return len(b.logs.lines("dial failed", "peer is node "+a.id.Hex(), "the static peer list expects "+common.Address{0xaa}.Hex())) > 0
	})
	if len(b.tr.Peers()) != 0 {
		t.Fatal("connected to an unexpected node")
	}
	_ = a.tr.AddPeer(PeerAddr{Addr: a.addr()})
	eventually(t, waitFor, "self dial noticed", func() bool { return len(a.logs.lines("static peer is this node itself")) > 0 })
}

func TestAuthorizeHookAtHandshakeAndRefresh(t *testing.T) {
	p := newPKI(t, "org0")
	var deny atomic.Value
	deny.Store(common.Address{})
	a := newNode(t, p, "org0", "a", func(c *Config) {
		c.Authorize = func(pi PeerInfo) error {
			if pi.ID == deny.Load().(common.Address) {
				return errors.New("node key not registered for this certificate")
			}
			return nil
		}
	}).start(t)
	b := newNode(t, p, "org0", "b", func(c *Config) { c.ListenAddr = "" })
	_ = b.tr.AddPeer(PeerAddr{Addr: a.addr()})
	b.start(t)
	eventually(t, waitFor, "connected", func() bool { return a.connected(b.id) })
	deny.Store(b.id)
	eventually(t, a.cfg.RefreshInterval+time.Second, "b dropped", func() bool { return !a.connected(b.id) })
	eventually(t, waitFor, "b refused on redial", func() bool {
		return len(a.logs.lines("connection refused", "not authorized: node key not registered")) > 0
	})
}

func TestOversizedFrameClosesOnlyThatConnection(t *testing.T) {
	p := newPKI(t, "org0")
	a := newNode(t, p, "org0", "a", func(c *Config) { c.MaxMessageBytes = 1024 }).start(t)
	b := newNode(t, p, "org0", "b", func(c *Config) { c.ListenAddr = ""; c.MaxMessageBytes = 1024 })
	_ = b.tr.AddPeer(PeerAddr{Addr: a.addr()})
	b.start(t)
	eventually(t, waitFor, "b connected", func() bool { return a.connected(b.id) })

	evil := newNode(t, p, "org0", "evil")
	rc := dialRaw(t, evil.tr, a.addr())
	rc.handshake(t, evil.tr)
	eventually(t, waitFor, "evil connected", func() bool { return a.connected(evil.id) })
	// A frame within the limit passes, one byte over closes.
	rc.write(t, encodeFrame(msgTest, make([]byte, 1024)))
	a.expectMsg(t, evil.id, string(make([]byte, 1024)))
	var hdr [5]byte
	binary.BigEndian.PutUint32(hdr[:4], 1024+2)
	hdr[4] = msgTest
	rc.write(t, hdr[:])
	rc.waitClosed(t)
	eventually(t, waitFor, "evil dropped with a log line", func() bool {
		return !a.connected(evil.id) &&
			len(a.logs.lines("peer disconnected", "frame too large: 1025 bytes announced, maximum 1024")) > 0
	})
	// A 4 GiB announcement allocates nothing and closes too.
	rc2 := dialRaw(t, evil.tr, a.addr())
	rc2.handshake(t, evil.tr)
	rc2.write(t, []byte{0xff, 0xff, 0xff, 0xff, msgTest})
	rc2.waitClosed(t)

	// b is unaffected.
	if err := b.tr.Send(a.id, msgTest, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	a.expectMsg(t, b.id, "still here")
	if s := a.tr.Stats(); s.BadFrames != 2 {
		t.Fatalf("bad frames %d", s.BadFrames)
	}
}

func TestGarbageOnThePortIsDroppedAndLogged(t *testing.T) {
	p := newPKI(t, "org0")
	// Every refusal logged: this test reads each one's line (the
	// refusal log's bound is TestRefusalFloodIsLoggedOnceAndCounted's).
	a := newNode(t, p, "org0", "a", func(c *Config) { c.RefusalLogInterval = time.Nanosecond }).start(t)
	b := newNode(t, p, "org0", "b", func(c *Config) { c.ListenAddr = "" })
	_ = b.tr.AddPeer(PeerAddr{Addr: a.addr()})
	b.start(t)
	eventually(t, waitFor, "b connected", func() bool { return a.connected(b.id) })

	junk := make([]byte, 4096)
	_, _ = rand.Read(junk)
	for _, payload := range [][]byte{junk, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), {0x16, 0x03, 0x01, 0xff, 0xff}, {}} {
		c, err := net.Dial("tcp", a.addr())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(payload)
		if len(payload) == 0 {
			_ = c.(*net.TCPConn).CloseWrite()
		}
		_ = c.SetReadDeadline(time.Now().Add(waitFor))
		_, _ = c.Read(make([]byte, 1024)) // until a closes it
		_ = c.Close()
	}
	// TLS without a client certificate.
	c, err := tls.Dial("tcp", a.addr(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpnProto}})
	if err == nil {
		_ = c.SetReadDeadline(time.Now().Add(waitFor))
		_, _ = c.Read(make([]byte, 1))
		_ = c.Close()
	}
	eventually(t, waitFor, "refusals logged", func() bool {
		return len(a.logs.lines("connection refused", "TLS handshake")) >= 4 &&
			len(a.logs.lines("connection refused", "didn't provide a certificate")) >= 1
	})

	// A member that sends an unknown message type is not disconnected.
	evil := newNode(t, p, "org0", "evil")
	rc := dialRaw(t, evil.tr, a.addr())
	rc.handshake(t, evil.tr)
	rc.write(t, encodeFrame(200, []byte("what is this")))
	rc.write(t, encodeFrame(5, nil)) // reserved, unassigned
	rc.write(t, encodeFrame(msgTest, []byte("known")))
	a.expectMsg(t, evil.id, "known")
	if s := a.tr.Stats(); s.UnknownType != 2 || !a.connected(evil.id) {
		t.Fatalf("unknown types: %d, connected %v", s.UnknownType, a.connected(evil.id))
	}
	// A handshake message after the handshake closes the connection.
	h, _ := newHello(evil.key, testChainID, testGenesis, sideDialer, rc.ekm)
	rc.write(t, encodeFrame(typeHandshake, h.encode()))
	rc.waitClosed(t)
	eventually(t, waitFor, "replay logged", func() bool {
		return len(a.logs.lines("peer disconnected", "handshake message after the handshake")) > 0
	})

	// A hello captured on one connection does not open another.
	rc2 := dialRaw(t, evil.tr, a.addr())
	rc2.write(t, encodeFrame(typeHandshake, h.encode()))
	rc2.waitClosed(t)
	eventually(t, waitFor, "replayed hello refused", func() bool {
		return len(a.logs.lines("connection refused", "bad handshake: signature is not by node "+evil.id.Hex())) > 0
	})
	// Nor does a hello reflected back to its sender: sides differ.
	rc3 := dialRaw(t, evil.tr, a.addr())
	reflected, _ := newHello(evil.key, testChainID, testGenesis, sideListener, rc3.ekm)
	rc3.write(t, encodeFrame(typeHandshake, reflected.encode()))
	rc3.waitClosed(t)

	// Something that is not a hello as the first frame.
	rc4 := dialRaw(t, evil.tr, a.addr())
	rc4.write(t, encodeFrame(msgTest, []byte("hi")))
	rc4.waitClosed(t)

	// The node still serves b.
	if err := b.tr.Send(a.id, msgTest, []byte("fine")); err != nil {
		t.Fatal(err)
	}
	a.expectMsg(t, b.id, "fine")
}

func TestReconnectAfterRemoteRestart(t *testing.T) {
	p := newPKI(t, "org0")
	b := newNode(t, p, "org0", "b").start(t)
	addr := b.addr()
	a := newNode(t, p, "org0", "a", func(c *Config) {
		c.ListenAddr = ""
		c.StaticPeers = []PeerAddr{{Addr: addr, ID: b.id}}
	}).start(t)
	eventually(t, waitFor, "connected", func() bool { return a.connected(b.id) })

	_ = b.tr.Close()
	eventually(t, waitFor, "a sees b down", func() bool { return !a.connected(b.id) })

	// b comes back on the same address with the same keys.
	b2 := &testNode{name: "b2", key: b.key, id: b.id, logs: &logBuf{}, inbox: make(chan received, 16)}
	b2.cfg = b.cfg
	b2.cfg.ListenAddr = addr
	b2.cfg.OnPeerEvent = b2.onEvent
	b2.build(t)
	b2.start(t)
	eventually(t, waitFor, "a reconnects", func() bool { return a.connected(b.id) && b2.connected(a.id) })
	if err := a.tr.Send(b.id, msgTest, []byte("welcome back")); err != nil {
		t.Fatal(err)
	}
	b2.expectMsg(t, a.id, "welcome back")
	eventually(t, waitFor, "events", func() bool { return a.eventLog() == "b:true b:false b:true" })
}

func TestFullSendQueueDropsInsteadOfBlocking(t *testing.T) {
	p := newPKI(t, "org0")
	release := make(chan struct{})
	var releaseOnce sync.Once
	b := newNode(t, p, "org0", "b").start(t)
	// b's handler stalls, so b stops reading, TCP fills up, a's writer
	// blocks and a's queue for b fills.
	b.tr.Handle(msgOther, func(NodeID, []byte) { <-release })
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	a := newNode(t, p, "org0", "a", func(c *Config) {
		c.ListenAddr = ""
		c.SendQueueLen = 4
		c.WriteTimeout = time.Minute
		c.StaticPeers = []PeerAddr{{Addr: b.addr()}}
	}).start(t)
	eventually(t, waitFor, "connected", func() bool { return a.connected(b.id) })

	payload := make([]byte, 256<<10)
	var slowest time.Duration
	dropped := false
	for i := 0; i < 10_000 && !dropped; i++ {
		start := time.Now()
		err := a.tr.Send(b.id, msgOther, payload)
		slowest = max(slowest, time.Since(start))
		switch {
		case errors.Is(err, ErrQueueFull):
			dropped = true
		case err != nil:
			t.Fatal(err)
		}
	}
	if !dropped {
		t.Fatal("queue never filled")
	}
	// A blocked Send would wait for WriteTimeout (a minute); copying a
	// 256 KiB payload on a loaded machine takes well under a second.
	if slowest > time.Second {
		t.Fatalf("Send blocked for %s", slowest)
	}
	s := a.tr.Stats()
	if s.SendDropped == 0 || s.Types[msgOther].Dropped == 0 {
		t.Fatalf("drops not counted: %+v", s)
	}
	// Broadcast does not block either; the writer may free a slot now
	// and then, but the queue stays full.
	zero := false
	for i := 0; i < 100 && !zero; i++ {
		zero = a.tr.Broadcast(msgOther, payload) == 0
	}
	if !zero {
		t.Fatal("broadcast kept queuing on a full queue")
	}
	releaseOnce.Do(func() { close(release) })
	// Once b reads again, the queue drains and sending works.
	eventually(t, waitFor, "queue drains", func() bool { return a.tr.Send(b.id, msgTest, []byte("x")) == nil })
}

func TestReceiveRateLimitSlowsButKeepsMessages(t *testing.T) {
	p := newPKI(t, "org0")
	b := newNode(t, p, "org0", "b", func(c *Config) { c.RecvMsgsPerSec = 100; c.RecvMsgsBurst = 5 }).start(t)
	a := newNode(t, p, "org0", "a", func(c *Config) { c.ListenAddr = ""; c.StaticPeers = []PeerAddr{{Addr: b.addr()}} }).start(t)
	eventually(t, waitFor, "connected", func() bool { return a.connected(b.id) })
	const n = 40
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := a.tr.Send(b.id, msgTest, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		select {
		case m := <-b.inbox:
			if m.payload[0] != byte(i) {
				t.Fatalf("message %d out of order: %d", i, m.payload[0])
			}
		case <-time.After(waitFor):
			t.Fatalf("only %d messages arrived", i)
		}
	}
	// 35 messages beyond the burst at 100/s take at least 0.35 s (pings
	// only add to that).
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("rate limit not applied: %d messages in %s", n, took)
	}
	if b.tr.Stats().Throttled == 0 {
		t.Fatal("throttling not counted")
	}
}

func TestConfigValidationNamesTheField(t *testing.T) {
	p := newPKI(t, "org0")
	n := newNode(t, p, "org0", "n")
	base := n.cfg
	cases := map[string]func(*Config){
		"NodeKey":         func(c *Config) { c.NodeKey = nil },
		"Certificate":     func(c *Config) { c.Certificate = tls.Certificate{} },
		"Trust":           func(c *Config) { c.Trust = nil },
		"MaxMessageBytes": func(c *Config) { c.MaxMessageBytes = -1 },
		"IdleTimeout":     func(c *Config) { c.IdleTimeout = c.PingInterval },
		"RecvBytesBurst":  func(c *Config) { c.RecvBytesBurst = 10 },
		"StaticPeers[0]":  func(c *Config) { c.StaticPeers = []PeerAddr{{}} },
		"DialBackoffMax":  func(c *Config) { c.DialBackoffMax = c.DialBackoffMin / 2 },
	}
	for field, mutate := range cases {
		c := base
		mutate(&c)
		if _, err := New(c, nil); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	var zero Config
	zero.NodeKey, zero.Certificate, zero.Trust = base.NodeKey, base.Certificate, base.Trust
	tr, err := New(zero, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr.cfg.MaxMessageBytes != DefaultMaxMessageBytes || tr.cfg.RefreshInterval != DefaultRefreshInterval || tr.cfg.SendQueueLen != DefaultSendQueueLen {
		t.Fatalf("defaults: %+v", tr.cfg)
	}
	// Not started: Close is harmless, Start after Close refused.
	_ = tr.Close()
	if err := tr.Start(); err == nil {
		t.Fatal("Start after Close")
	}
	if !bytes.Equal(tr.Self().Bytes(), n.id.Bytes()) {
		t.Fatal("Self")
	}
}

func TestSilentConnectionsAreBoundedAndTimedOut(t *testing.T) {
	p := newPKI(t, "org0")
	a := newNode(t, p, "org0", "a", func(c *Config) {
		c.MaxPendingHandshakes = 1
		c.HandshakeTimeout = 300 * time.Millisecond
	}).start(t)
	silent, err := net.Dial("tcp", a.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	eventually(t, waitFor, "silent connection in its handshake", func() bool { return len(a.tr.hsSlots) == 1 })
	// The only handshake slot is taken: the next connection is closed
	// at once with a log line.
	eventually(t, waitFor, "second connection refused", func() bool {
		c, err := net.Dial("tcp", a.addr())
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(waitFor))
		_, _ = c.Read(make([]byte, 1))
		return len(a.logs.lines("too many handshakes in progress")) > 0
	})
	// The silent one is closed after HandshakeTimeout.
	_ = silent.SetReadDeadline(time.Now().Add(waitFor))
	start := time.Now()
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatal("silent connection got data")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("silent connection held for %s", took)
	}
	eventually(t, waitFor, "timeout logged", func() bool {
		return len(a.logs.lines("connection refused", "TLS handshake", "i/o timeout")) > 0
	})
}
