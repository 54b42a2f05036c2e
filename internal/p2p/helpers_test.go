package p2p

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/identity"
)

const (
	testChainID      = 1337
	msgTest     byte = 16
	msgOther    byte = 17
	// waitFor bounds every condition a test waits on.
	waitFor = 10 * time.Second
)

var testGenesis = common.HexToHash("0x1111111111111111111111111111111111111111111111111111111111111111")

// pki is a consortium of test organizations.
type pki struct {
	cas map[string]*identity.CA
}

func newPKI(t *testing.T, orgs ...string) *pki {
	t.Helper()
	p := &pki{cas: map[string]*identity.CA{}}
	for _, o := range orgs {
		ca, err := identity.NewRootCA(o, identity.CAOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.cas[o] = ca
	}
	return p
}

// trust builds a fresh trust store from every organization of p, as each
// node does from the genesis.
func (p *pki) trust(t *testing.T, opts ...identity.TrustOption) *identity.TrustStore {
	t.Helper()
	var orgs []identity.OrgRoots
	for name, ca := range p.cas {
		orgs = append(orgs, identity.OrgRoots{Name: name, Roots: []*x509.Certificate{ca.Cert}})
	}
	ts, err := identity.NewTrustStore(orgs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// nodeCert issues a node certificate of org; req may set validity.
func (p *pki) nodeCert(t *testing.T, org, name string, req identity.CertRequest) tls.Certificate {
	t.Helper()
	req.Role, req.Name = identity.RoleNode, name
	req.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	cert, key, err := p.cas[org].Issue(req)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := identity.TLSCertificate(key, cert)
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// logBuf collects a node's log lines for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the log lines containing every one of parts.
func (l *logBuf) lines(parts ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

type received struct {
	from    NodeID
	payload []byte
}

// testNode is one transport under test with its own keys, trust store
// and log.
type testNode struct {
	name  string
	tr    *Transport
	cfg   Config
	key   *ecdsa.PrivateKey
	id    NodeID
	trust *identity.TrustStore
	logs  *logBuf
	inbox chan received

	evMu   sync.Mutex
	events []PeerEvent
}

type nodeOpt func(*Config)

// fastConfig keeps every timer of a test short.
func fastConfig(c *Config) {
	c.RefreshInterval = 200 * time.Millisecond
	c.DialBackoffMin = 10 * time.Millisecond
	c.DialBackoffMax = 100 * time.Millisecond
	c.HandshakeTimeout = 3 * time.Second
	c.PingInterval = time.Second
	c.IdleTimeout = 5 * time.Second
}

// newNode creates (not starts) a node of org with a fresh node key.
func newNode(t *testing.T, p *pki, org, name string, opts ...nodeOpt) *testNode {
	t.Helper()
	key, err := identity.GenerateNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{name: name, key: key, id: identity.NodeIDOf(key), logs: &logBuf{}, inbox: make(chan received, 1024)}
	n.trust = p.trust(t)
	n.cfg = Config{
		ListenAddr:  "127.0.0.1:0",
		ChainID:     testChainID,
		GenesisHash: testGenesis,
		NodeKey:     key,
		Certificate: p.nodeCert(t, org, name, identity.CertRequest{}),
		Trust:       n.trust,
		JitterSeed:  1,
		OnPeerEvent: n.onEvent,
	}
	fastConfig(&n.cfg)
	for _, o := range opts {
		o(&n.cfg)
	}
	if n.cfg.Trust != nil {
		n.trust = n.cfg.Trust
	}
	n.build(t)
	return n
}

func (n *testNode) build(t *testing.T) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test_node", n.name)
	tr, err := New(n.cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	n.tr = tr
	tr.Handle(msgTest, func(from NodeID, payload []byte) {
		select {
		case n.inbox <- received{from, payload}:
		default:
			panic("test inbox full")
		}
	})
	t.Cleanup(func() {
		_ = tr.Close()
		if t.Failed() {
			t.Logf("log of %s:\n%s", n.name, n.logs.String())
		}
	})
}

func (n *testNode) start(t *testing.T) *testNode {
	t.Helper()
	if err := n.tr.Start(); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *testNode) addr() string { return n.tr.Addr().String() }

func (n *testNode) onEvent(ev PeerEvent) {
	n.evMu.Lock()
	defer n.evMu.Unlock()
	n.events = append(n.events, ev)
}

func (n *testNode) eventLog() string {
	n.evMu.Lock()
	defer n.evMu.Unlock()
	var parts []string
	for _, ev := range n.events {
		parts = append(parts, fmt.Sprintf("%s:%v", ev.Peer.Identity.Name, ev.Up))
	}
	return strings.Join(parts, " ")
}

func (n *testNode) peer(id NodeID) (PeerInfo, bool) {
	for _, p := range n.tr.Peers() {
		if p.ID == id {
			return p, true
		}
	}
	return PeerInfo{}, false
}

func (n *testNode) connected(ids ...NodeID) bool {
	for _, id := range ids {
		if _, ok := n.peer(id); !ok {
			return false
		}
	}
	return true
}

// eventually waits until cond holds, polling, for at most d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// expectMsg waits for the next message in n's inbox.
func (n *testNode) expectMsg(t *testing.T, from NodeID, payload string) {
	t.Helper()
	select {
	case m := <-n.inbox:
		if m.from != from || string(m.payload) != payload {
			t.Fatalf("%s got %q from %s, want %q from %s", n.name, m.payload, m.from, payload, from)
		}
	case <-time.After(waitFor):
		t.Fatalf("%s: no message %q from %s", n.name, payload, from)
	}
}

// rawConn is a hand-driven client connection: TLS done with d's identity,
// hello not yet sent, for tests that misbehave on purpose.
type rawConn struct {
	tc  *tls.Conn
	br  *bufio.Reader
	ekm []byte
}

func dialRaw(t *testing.T, d *Transport, addr string) *rawConn {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	tc := tls.Client(raw, d.tlsConf.Clone())
	_ = raw.SetDeadline(time.Now().Add(waitFor))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	cs := tc.ConnectionState()
	ekm, err := cs.ExportKeyingMaterial(ekmLabel, nil, ekmLen)
	if err != nil {
		t.Fatal(err)
	}
	return &rawConn{tc: tc, br: bufio.NewReader(tc), ekm: ekm}
}

// handshake completes the hello exchange as d would.
func (r *rawConn) handshake(t *testing.T, d *Transport) {
	t.Helper()
	h, err := newHello(d.cfg.NodeKey, d.cfg.ChainID, d.cfg.GenesisHash, sideDialer, r.ekm)
	if err != nil {
		t.Fatal(err)
	}
	r.write(t, encodeFrame(typeHandshake, h.encode()))
	typ, payload, err := readFrame(r.br, helloLen)
	if err != nil || typ != typeHandshake {
		t.Fatalf("read hello: %v (type %d)", err, typ)
	}
	theirs, err := decodeHello(payload)
	if err != nil {
		t.Fatal(err)
	}
	if err := theirs.verify(sideListener, r.ekm); err != nil {
		t.Fatal(err)
	}
}

func (r *rawConn) write(t *testing.T, b []byte) {
	t.Helper()
	if _, err := r.tc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// waitClosed reads until the server closes the connection.
func (r *rawConn) waitClosed(t *testing.T) {
	t.Helper()
	_ = r.tc.SetReadDeadline(time.Now().Add(waitFor))
	for i := 0; i < 1000; i++ {
		if _, _, err := readFrame(r.br, DefaultMaxMessageBytes); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("connection was not closed")
			}
			return
		}
	}
	t.Fatal("connection was not closed")
}
