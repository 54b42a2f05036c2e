package node

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/p2p"
)

// syncBuffer is a log destination tests read while nodes write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines counts the lines that contain every one of parts.
func (s *syncBuffer) lines(parts ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, line := range strings.Split(s.b.String(), "\n") {
		ok := line != ""
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			n++
		}
	}
	return n
}

// startHome runs the node of a home in this process, logging to w.
func startHome(t *testing.T, home string, w *syncBuffer) *Node {
	t.Helper()
	hc, err := LoadHomeConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := hc.NodeConfig(home, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

func connectedTo(n *Node, id common.Address) bool {
	for _, p := range n.net.tr.Peers() {
		if p.ID == id {
			return true
		}
	}
	return false
}

// TestPeerWithAnotherOrganizationsCertificateIsRefused: a node the
// registry lists for one organization without a certificate fingerprint
// is refused when it presents a (valid) certificate of another
// organization, with the reason in the log; the nodes of the network
// still connect to each other.
func TestPeerWithAnotherOrganizationsCertificateIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	dir := t.TempDir()
	_, inits, err := InitNetwork(InitOptions{Dir: dir, Validators: 3, Engine: "raft", BlockTimeMs: 200,
		RPCPort: freePortBase(t, 3), P2PPort: freePortBase(t, 3), MetricsPort: freePortBase(t, 3)})
	if err != nil {
		t.Fatal(err)
	}
	// node2 of org2 is registered without a fingerprint ...
	spec, err := chain.LoadSpec(filepath.Join(dir, GenesisFile))
	if err != nil {
		t.Fatal(err)
	}
	if g := spec.Governance.Nodes[2]; g.ID != inits[2].ID || g.Org != "org2" {
		t.Fatalf("genesis node 2 is %+v", g)
	}
	spec.Governance.Nodes[2].Fingerprint = common.Hash{}
	raw, err := spec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(dir, GenesisFile), filepath.Join(inits[0].Home, GenesisFile),
		filepath.Join(inits[1].Home, GenesisFile), filepath.Join(inits[2].Home, GenesisFile)} {
		if err := os.WriteFile(f, raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// ... and presents a certificate org0's CA issued it.
	org0, err := identity.LoadCA(filepath.Join(dir, "orgs", "org0", "ca.crt"), filepath.Join(dir, "orgs", "org0", "ca.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := org0.IssueNode("node2", []string{"127.0.0.1", "localhost"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	tlsKey, tlsCert := filepath.Join(inits[2].Home, "tls", "node.key"), filepath.Join(inits[2].Home, "tls", "node.crt")
	if err := os.Remove(tlsKey); err != nil {
		t.Fatal(err)
	}
	if err := identity.WriteKeyFile(tlsKey, key, nil); err != nil {
		t.Fatal(err)
	}
	if err := identity.WriteCertFile(tlsCert, cert, org0.Cert); err != nil {
		t.Fatal(err)
	}

	logs := []*syncBuffer{{}, {}, {}}
	nodes := make([]*Node, 3)
	for i := range nodes {
		nodes[i] = startHome(t, inits[i].Home, logs[i])
	}
	const why = "is registered to organization org2 but presents a certificate of organization org0"
	waitUntil(t, 20*time.Second, "node0 and node1 refuse node2, naming the organizations", func() bool {
		for i := 0; i < 2; i++ {
			if connectedTo(nodes[i], inits[2].ID) {
				t.Fatalf("node%d connected to node2, whose certificate is org0's", i)
			}
			if logs[i].lines(why) == 0 || nodes[i].net.tr.Stats().Refused[p2p.ReasonUnauthorized] == 0 {
				return false
			}
		}
		return true
	})
	waitUntil(t, 20*time.Second, "node0 and node1 connected", func() bool {
		return connectedTo(nodes[0], inits[1].ID) && connectedTo(nodes[1], inits[0].ID)
	})
	for i := 0; i < 2; i++ {
		if connectedTo(nodes[i], inits[2].ID) {
			t.Fatalf("node%d is connected to node2, whose certificate is org0's", i)
		}
	}
}

// TestRefusedHandshakeFloodIsCountedOnMetrics: a loop of connections that
// are not TLS costs the node one log line, and every one of them is on
// /metrics as charter_p2p_handshakes_refused_total{reason="tls"}.
func TestRefusedHandshakeFloodIsCountedOnMetrics(t *testing.T) {
	const flood = 200
	dir := t.TempDir()
	_, inits, err := InitNetwork(InitOptions{Dir: dir, Validators: 1, Engine: "raft",
		RPCPort: freePortBase(t, 1), P2PPort: freePortBase(t, 1), MetricsPort: freePortBase(t, 1)})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	n := startHome(t, inits[0].Home, logs)
	addr := n.P2PAddr()
	for i := 0; i < flood; i++ {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Read(make([]byte, 64)) // until the node closes it
		_ = c.Close()
	}
	var got float64
	waitUntil(t, 20*time.Second, "the flood on /metrics", func() bool {
		got = value(scrape(t, inits[0].Config.MetricsAddr)["charter_p2p_handshakes_refused_total"], "reason", p2p.ReasonTLS)
		return got >= flood
	})
	if got != flood {
		t.Fatalf("charter_p2p_handshakes_refused_total{reason=tls} = %v, want %d", got, flood)
	}
	if lines := logs.lines("connection refused"); lines != 1 {
		t.Fatalf("%d log lines for %d refused connections, want 1", lines, flood)
	}
}
