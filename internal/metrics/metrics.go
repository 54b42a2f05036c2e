// Package metrics defines the node's Prometheus metrics and serves them,
// with health checks, on a listener of its own. Nothing here is global:
// the node passes a registry in, so several nodes run in one process.
package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/charter-ledger/charter/internal/p2p"
)

// Metrics are the node's own instruments. All are goroutine-safe.
type Metrics struct {
	Height            prometheus.Gauge
	TxCommitted       prometheus.Counter
	BlocksCommitted   prometheus.Counter
	BlockBuild        prometheus.Histogram
	BlockExecution    prometheus.Histogram
	BlockCommit       prometheus.Histogram
	FinalityLatency   prometheus.Histogram
	RoundChanges      prometheus.Counter
	ConsensusTimeouts *prometheus.CounterVec
	LeaderChanges     prometheus.Counter
	Validators        prometheus.Gauge
	ConsensusRounds   prometheus.Histogram
	ConsensusMessages *prometheus.CounterVec // labels direction, type (bft message types)
	ConsensusBytes    *prometheus.CounterVec // labels direction, type
	CompactProposals  *prometheus.CounterVec // label outcome: rebuilt, fetched, full
	PacerPerTx        *prometheus.GaugeVec   // label work: build, verify
	BlockCap          prometheus.Gauge
	P2PPeers          prometheus.Gauge
	CertExpiry        prometheus.Gauge
	P2PMessages       *prometheus.CounterVec // labels direction, type
	P2PBytes          *prometheus.CounterVec // labels direction, type
	P2PRefused        *prometheus.CounterVec // label reason (p2p.RefusalReasons)
	TxPoolTransaction *prometheus.GaugeVec   // label state: pending, queued
	TxPoolBytes       *prometheus.GaugeVec   // label state: pending, queued
	TxPoolEvictions   *prometheus.CounterVec // label reason: full, expired
	PrivateSent       prometheus.Counter
	PrivateApplied    prometheus.Counter
	PrivacyHalted     prometheus.Counter
	PrivacyWaiting    prometheus.Gauge
	PrivacyLag        prometheus.Gauge
	PrivacyRefused    *prometheus.CounterVec // label reason

	seen firstSeen
	// the pool's drop totals last seen by TxPoolDropped
	dropped struct {
		sync.Mutex
		evicted, expired uint64
	}
}

// New registers the node's metrics and the Go runtime and process
// collectors with reg.
func New(reg prometheus.Registerer) *Metrics {
	durations := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	m := &Metrics{
		Height: prometheus.NewGauge(prometheus.GaugeOpts{Name: "charter_chain_height", Help: "Height of the newest committed block."}),
		TxCommitted: prometheus.NewCounter(prometheus.CounterOpts{Name: "charter_transactions_committed_total",
			Help: "Transactions in committed blocks."}),
		BlocksCommitted: prometheus.NewCounter(prometheus.CounterOpts{Name: "charter_blocks_committed_total", Help: "Committed blocks."}),
		BlockBuild: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "charter_block_build_seconds",
			Help: "Time to build a block from the pool (execution included).", Buckets: durations}),
		BlockExecution: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "charter_block_execution_seconds",
			Help: "Time to execute a block's transactions and compute its state root.", Buckets: durations}),
		BlockCommit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "charter_block_commit_seconds",
			Help: "Time to write and sync a block, its receipts and state.", Buckets: durations}),
		FinalityLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "charter_finality_latency_seconds",
			Help:    "From the moment this node first saw a transaction to the moment its block was final here.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		RoundChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "charter_consensus_round_changes_total",
			Help: "Round (view) changes of the consensus engine."}),
		ConsensusTimeouts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "charter_consensus_timeouts_total",
			Help: "Consensus timeouts that fired here, by step (bft: propose, prevote, precommit, and propose_extended: a propose timeout put off once because the proposal was still being verified; poa: round): which wait ends the rounds that change."}, []string{"step"}),
		Validators: prometheus.NewGauge(prometheus.GaugeOpts{Name: "charter_consensus_validators",
			Help: "Validators in force (raft: voters of the configuration applied; of the outgoing one while a joint configuration is in force)."}),
		LeaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "charter_consensus_leader_changes_total",
			Help: "Leader changes seen by the consensus engine."}),
		ConsensusRounds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "charter_consensus_rounds_per_height",
			Help: "Rounds the engine needed to decide a height.", Buckets: []float64{1, 2, 3, 4, 6, 8, 12, 16}}),
		ConsensusMessages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "charter_consensus_messages_total",
			Help: "Consensus messages by direction (in, out) and type (proposal, prevote, precommit, ...); per block: divide by the rate of blocks."}, []string{"direction", "type"}),
		CompactProposals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "charter_consensus_compact_proposals_total",
			Help: "Compact proposals (bft) received, by outcome: rebuilt from transactions this node held, fetched (missing transactions asked of the proposer), full (the whole proposal asked for after a fetch timed out)."}, []string{"outcome"}),
		PacerPerTx: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "charter_consensus_pacer_seconds_per_transaction",
			Help: "This node's moving estimate of the time building and verifying a block takes per transaction (work: build, verify), from which it caps the blocks it proposes; 0 while unknown."}, []string{"work"}),
		BlockCap: prometheus.NewGauge(prometheus.GaugeOpts{Name: "charter_consensus_block_cap_transactions",
			Help: "Most transactions this node allowed in the last block it built as proposer: what it estimates the validators verify within the round's timeout (0: none built yet)."}),
		ConsensusBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "charter_consensus_bytes_total",
			Help: "Consensus message bytes by direction (in, out) and type."}, []string{"direction", "type"}),
		P2PPeers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "charter_p2p_peers", Help: "Connected peers."}),
		CertExpiry: prometheus.NewGauge(prometheus.GaugeOpts{Name: "charter_tls_certificate_expiry_timestamp_seconds",
			Help: "When this node's TLS certificate (its identity on the p2p links) expires, in Unix seconds; absent without a network."}),
		P2PMessages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "charter_p2p_messages_total",
			Help: "Peer-to-peer messages by direction (in, out) and type."}, []string{"direction", "type"}),
		P2PBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "charter_p2p_bytes_total",
			Help: "Peer-to-peer payload bytes by direction (in, out) and type."}, []string{"direction", "type"}),
		P2PRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "charter_p2p_handshakes_refused_total",
			Help: "Connections, inbound and outbound, that did not become peers, by reason (unknown_ca, expired, tls, unauthorized, ...)."}, []string{"reason"}),
		TxPoolTransaction: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "charter_txpool_transactions",
			Help: "Transactions waiting in the pool, by state (pending: executable; queued: waiting for a nonce gap)."}, []string{"state"}),
		TxPoolBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "charter_txpool_bytes",
			Help: "Encoded size of the transactions waiting in the pool, by state (pending, queued)."}, []string{"state"}),
		TxPoolEvictions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "charter_txpool_evictions_total",
			Help: "Transactions the pool dropped to stay bounded, by reason (full: evicted for a sender within its share of a full pool; expired: queued past their lifetime)."}, []string{"reason"}),
		PrivateSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "charter_private_transactions_sent_total",
			Help: "Private transactions this node sealed, distributed and ordered with a marker (eea_sendRawTransaction)."}),
		PrivateApplied: prometheus.NewCounter(prometheus.CounterOpts{Name: "charter_private_transactions_applied_total",
			Help: "Private transactions applied (executed or rejected) to the private state of this node's privacy groups."}),
		PrivacyHalted: prometheus.NewCounter(prometheus.CounterOpts{Name: "charter_privacy_groups_halted_total",
			Help: "Times a privacy group's private state halted on this node (a payload no member node could supply, or a store failure)."}),
		PrivacyWaiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "charter_privacy_groups_waiting",
			Help: "Privacy groups whose private state waits on this node for payloads being fetched from the members' nodes (the other groups go on)."}),
		PrivacyLag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "charter_privacy_applier_lag_blocks",
			Help: "Blocks between the head and the last block whose private transactions this node applied (every group that does not wait or halt)."}),
		PrivacyRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "charter_privacy_payloads_refused_total",
			Help: "Private payload messages from peers this node refused, by reason (sender_not_member, sent_to_non_member, not_sealed_to_this_node, fetch_not_entitled, malformed, ...)."}, []string{"reason"}),
	}
	m.seen.at = make(map[[32]byte]time.Time)
	for _, reason := range []string{"full", "expired"} {
		m.TxPoolEvictions.WithLabelValues(reason) // shown at 0 from the start
	}
	for _, o := range []string{"rebuilt", "fetched", "full"} {
		m.CompactProposals.WithLabelValues(o) // shown at 0 from the start
	}
	for _, w := range []string{"build", "verify"} {
		m.PacerPerTx.WithLabelValues(w)
	}
	for _, reason := range p2p.RefusalReasons() {
		m.P2PRefused.WithLabelValues(reason) // shown at 0 from the start
	}
	reg.MustRegister(m.Height, m.TxCommitted, m.BlocksCommitted, m.BlockBuild, m.BlockExecution, m.BlockCommit,
		m.FinalityLatency, m.RoundChanges, m.ConsensusTimeouts, m.LeaderChanges, m.Validators, m.ConsensusRounds, m.ConsensusMessages, m.ConsensusBytes, m.CompactProposals, m.PacerPerTx, m.BlockCap, m.P2PPeers, m.CertExpiry, m.P2PMessages, m.P2PBytes, m.P2PRefused, m.TxPoolTransaction,
		m.TxPoolBytes, m.TxPoolEvictions, m.PrivateSent, m.PrivateApplied, m.PrivacyHalted, m.PrivacyWaiting, m.PrivacyLag, m.PrivacyRefused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// maxTracked bounds the transactions whose first sighting is remembered;
// beyond it new ones are not timed (the histogram then undercounts, it
// never grows memory without bound).
const maxTracked = 200_000

type firstSeen struct {
	mu sync.Mutex
	at map[[32]byte]time.Time
}

// Seen records when this node first saw a transaction (admitted to its
// pool from a client or a peer). Later sightings are ignored.
func (m *Metrics) Seen(hash [32]byte, now time.Time) {
	m.seen.mu.Lock()
	defer m.seen.mu.Unlock()
	if _, ok := m.seen.at[hash]; !ok && len(m.seen.at) < maxTracked {
		m.seen.at[hash] = now
	}
}

// Final observes the finality latency of transactions in a final block.
func (m *Metrics) Final(hashes [][32]byte, now time.Time) {
	m.seen.mu.Lock()
	defer m.seen.mu.Unlock()
	for _, h := range hashes {
		if t, ok := m.seen.at[h]; ok {
			m.FinalityLatency.Observe(now.Sub(t).Seconds())
			delete(m.seen.at, h)
		}
	}
}

// Forget drops transactions that left the pool without being committed.
func (m *Metrics) Forget(hashes [][32]byte) {
	m.seen.mu.Lock()
	defer m.seen.mu.Unlock()
	for _, h := range hashes {
		delete(m.seen.at, h)
	}
}

// TxPoolDropped advances charter_txpool_evictions_total to the pool's
// totals since it started: evicted (reason "full") and expired.
func (m *Metrics) TxPoolDropped(evicted, expired uint64) {
	m.dropped.Lock()
	defer m.dropped.Unlock()
	if evicted > m.dropped.evicted {
		m.TxPoolEvictions.WithLabelValues("full").Add(float64(evicted - m.dropped.evicted))
	}
	if expired > m.dropped.expired {
		m.TxPoolEvictions.WithLabelValues("expired").Add(float64(expired - m.dropped.expired))
	}
	m.dropped.evicted, m.dropped.expired = evicted, expired
}
