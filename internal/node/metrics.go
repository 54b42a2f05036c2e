package node

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/metrics"
)

// instruments holds the node's metrics and what is needed to turn the
// parts' cumulative counters into Prometheus counters.
type instruments struct {
	reg *prometheus.Registry
	m   *metrics.Metrics
	srv *metrics.Server

	mu struct {
		sync.Mutex
		lastCommit time.Time
	}
	// last values of cumulative counters read from the parts
	p2p                        map[string]uint64
	roundChanges, leaderChange uint64
	commitRounds               [consensus.RoundBuckets]uint64
}

func newInstruments() *instruments {
	reg := prometheus.NewRegistry()
	ins := &instruments{reg: reg, m: metrics.New(reg), p2p: make(map[string]uint64)}
	ins.mu.lastCommit = time.Now()
	return ins
}

// committed notes the time of the last commit (readiness).
func (ins *instruments) committed(t time.Time) {
	ins.mu.Lock()
	defer ins.mu.Unlock()
	ins.mu.lastCommit = t
}

// p2pTypeNames names the message types on the charter_p2p_* labels.
var p2pTypeNames = map[byte]string{0: "handshake", 1: "ping", msgConsensus: "consensus", msgTxs: "transactions", msgStatus: "status"}

// startMetrics serves /metrics, /healthz and /readyz when an address is set.
func (n *Node) startMetrics() error {
	if n.cfg.MetricsAddr == "" {
		return nil
	}
	srv, err := metrics.Listen(n.cfg.MetricsAddr, n.ins.reg, n.readiness, n.log)
	if err != nil {
		return err
	}
	n.ins.srv = srv
	n.wg.Add(1)
	go n.sampleLoop()
	return nil
}

// MetricsAddr is the address metrics are served on; "" without.
func (n *Node) MetricsAddr() string {
	if n.ins.srv == nil {
		return ""
	}
	return n.ins.srv.Addr()
}

// readiness: a network node is ready when it has peers and its chain
// moves whenever transactions wait.
func (n *Node) readiness() (bool, string) {
	if n.net != nil && n.PeerCount() == 0 {
		return false, "no peers connected"
	}
	pending, _ := n.pool.Stats()
	if since := time.Since(n.lastCommit()); pending > 0 && since > 10*time.Second {
		return false, fmt.Sprintf("consensus not making progress: %d transactions pending, last block %s ago", pending, since.Round(time.Second))
	}
	return true, ""
}

func (n *Node) lastCommit() time.Time {
	n.ins.mu.Lock()
	defer n.ins.mu.Unlock()
	return n.ins.mu.lastCommit
}

// sampleLoop copies the parts' counters into the metrics every second.
func (n *Node) sampleLoop() {
	defer n.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.quit:
			return
		case <-t.C:
			n.sample()
		}
	}
}

func (n *Node) sample() {
	m := n.ins.m
	pending, queued := n.pool.Stats()
	m.TxPoolTransaction.WithLabelValues("pending").Set(float64(pending))
	m.TxPoolTransaction.WithLabelValues("queued").Set(float64(queued))
	u := n.pool.Usage()
	m.TxPoolBytes.WithLabelValues("pending").Set(float64(u.PendingBytes))
	m.TxPoolBytes.WithLabelValues("queued").Set(float64(u.QueuedBytes))
	m.TxPoolDropped(u.Evicted, u.Expired)
	m.P2PPeers.Set(float64(n.PeerCount()))
	if n.net != nil {
		for typ, s := range n.net.tr.Stats().Types {
			name, ok := p2pTypeNames[typ]
			if !ok {
				name = fmt.Sprintf("type_%d", typ)
			}
			n.addDelta(m.P2PMessages, "in", name, "msgs", s.MsgsIn)
			n.addDelta(m.P2PMessages, "out", name, "msgs", s.MsgsOut)
			n.addDelta(m.P2PBytes, "in", name, "bytes", s.BytesIn)
			n.addDelta(m.P2PBytes, "out", name, "bytes", s.BytesOut)
		}
		for reason, v := range n.net.tr.Stats().Refused {
			if last := n.ins.p2p["refused/"+reason]; v > last {
				m.P2PRefused.WithLabelValues(reason).Add(float64(v - last))
				n.ins.p2p["refused/"+reason] = v
			}
		}
	}
	st := n.engine.Stats()
	m.Validators.Set(float64(st.Validators))
	rounds, leaders := st.RoundChanges, st.LeaderChanges
	// Heights decided, by the round of their decision (the last bucket:
	// that round or later); a height decided in round r took r+1 rounds.
	for r, c := range st.DecidedInRound {
		for ; n.ins.commitRounds[r] < c; n.ins.commitRounds[r]++ {
			m.ConsensusRounds.Observe(float64(r + 1))
		}
	}
	for _, ms := range st.Messages {
		n.addDelta(m.ConsensusMessages, "in", ms.Type, "cmsgs", ms.MsgsIn)
		n.addDelta(m.ConsensusMessages, "out", ms.Type, "cmsgs", ms.MsgsOut)
		n.addDelta(m.ConsensusBytes, "in", ms.Type, "cbytes", ms.BytesIn)
		n.addDelta(m.ConsensusBytes, "out", ms.Type, "cbytes", ms.BytesOut)
	}
	for _, c := range []struct {
		outcome string
		v       uint64
	}{{"rebuilt", st.CompactRebuilt}, {"fetched", st.CompactFetched}, {"full", st.CompactFull}} {
		key := "compact/" + c.outcome
		if last := n.ins.p2p[key]; c.v > last {
			m.CompactProposals.WithLabelValues(c.outcome).Add(float64(c.v - last))
		}
		n.ins.p2p[key] = c.v
	}
	for _, t := range st.Timeouts {
		key := "timeout/" + t.Step
		c := m.ConsensusTimeouts.WithLabelValues(t.Step) // shown at 0 before the first
		if last := n.ins.p2p[key]; t.Count > last {
			c.Add(float64(t.Count - last))
		}
		n.ins.p2p[key] = t.Count
	}
	m.PacerPerTx.WithLabelValues("build").Set(st.BuildPerTx.Seconds())
	m.PacerPerTx.WithLabelValues("verify").Set(st.VerifyPerTx.Seconds())
	m.BlockCap.Set(float64(st.BlockCap))
	if rounds > n.ins.roundChanges {
		m.RoundChanges.Add(float64(rounds - n.ins.roundChanges))
		n.ins.roundChanges = rounds
	}
	if leaders > n.ins.leaderChange {
		m.LeaderChanges.Add(float64(leaders - n.ins.leaderChange))
		n.ins.leaderChange = leaders
	}
}

func (n *Node) addDelta(c *prometheus.CounterVec, dir, typ, unit string, v uint64) {
	key := dir + "/" + typ + "/" + unit
	if last := n.ins.p2p[key]; v > last {
		c.WithLabelValues(dir, typ).Add(float64(v - last))
	}
	n.ins.p2p[key] = v
}
