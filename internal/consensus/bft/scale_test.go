package bft

// The scaling benchmark: bft with 4, 7, 10 and 16 validators in one
// process, on the simulation harness of sim_test.go, with real secp256k1
// signatures (every node signs with its key and checks every signature
// itself, no shared memo), blocks of realistic transfers, and a model of
// what the simulation does not have: links with latency and an uplink of
// limited bandwidth, and each validator's CPU.
//
// Time is the simulation's virtual time. Each validator has its own CPU
// clock: a signature it checks or makes, and a block it builds or
// verifies (a fixed cost per transaction: execution is stubbed), keep it
// busy, and what it sends leaves only when its CPU is free, then queues
// on its uplink. Heights per second and transactions per second are
// virtual; messages and bytes are counted on the wire (a broadcast to
// n-1 peers counts n-1 messages). The real CPU the process spends is
// measured too (ns/op is the real time per height of all validators
// together, on one goroutine).
//
//	go test ./internal/consensus/bft/ -run '^$' -bench BenchmarkScale -benchtime 20x -count 3

import (
	"fmt"
	"math/big"
	"math/rand"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

// scaleParams describe one scaling run.
type scaleParams struct {
	validators int
	txs        int     // transfers per block (the build cap)
	latMinUs   int64   // one-way link latency, uniform in [latMinUs, latMaxUs]
	latMaxUs   int64   //
	mbps       float64 // uplink bandwidth of every node, Mbit/s
	perTxUs    int64   // CPU to verify and execute one transfer (stubbed)
	seed       int64
	// Virtual CPU of one signature check and one signing.
	recoverUs, signUs int64
}

// defaultScale is the benchmark's network: 1–5 ms links, 1 Gbit/s
// uplinks, blocks of 1,000 transfers, 100 µs of one core per transfer
// (sender recovery and execution; Charter's single node does about
// 9,000 transfers/s end to end on two cores), 50 µs per signature check
// and 25 µs per signing (go-ethereum's secp256k1 on this machine: about
// 42 µs and 24 µs).
func defaultScale(n int) scaleParams {
	return scaleParams{validators: n, txs: 1000, latMinUs: 1000, latMaxUs: 5000, mbps: 1000, perTxUs: 100,
		recoverUs: 50, signUs: 25, seed: 1}
}

// scaleResult is what a run measured over its window of heights.
type scaleResult struct {
	heights       int
	txs           int
	virtualUs     int64             // virtual time from the first to the last height of the window
	msgs, bytes   [numMsgTypes]int  // on the wire, by type
	sigChecks     int               // signature recoveries, all validators
	signs         int               // signatures made, all validators
	roundChanges  uint64            // rounds after round 0, node 0
	cpuUs         []int64           // virtual CPU busy time per validator in the window
	realRun       time.Duration     // real time of the window (all validators)
	realRecover   time.Duration     // of which in signature recovery
	realSign      time.Duration     // of which in signing
	perType       map[string]string // printable breakdown
	commitSpreadU int64             // median, first to last validator committing a height (virtual µs)
}

func (r scaleResult) totalMsgs() (n int) {
	for _, v := range r.msgs {
		n += v
	}
	return n
}

func (r scaleResult) totalBytes() (n int) {
	for _, v := range r.bytes {
		n += v
	}
	return n
}

func (r scaleResult) blocksPerSec() float64 {
	return float64(r.heights) / (float64(r.virtualUs) / 1e6)
}

func (r scaleResult) txPerSec() float64 { return float64(r.txs) / (float64(r.virtualUs) / 1e6) }

// scaleTx is transfer n: a legacy transaction of the size of a signed
// transfer (about 110 bytes). Its signature values are filler: execution
// is stubbed (perTxUs), so nothing recovers its sender.
func scaleTx(n uint64) *types.Transaction {
	to := common.BytesToAddress([]byte{0xaa, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	rs := crypto.Keccak256([]byte(fmt.Sprintf("transfer %d", n)))
	rs2 := crypto.Keccak256(rs)
	return types.NewTx(&types.LegacyTx{
		Nonce: n, GasPrice: big.NewInt(1_000_000_000), Gas: 21000, To: &to, Value: big.NewInt(1_000_000_000_000_000),
		V: big.NewInt(2*simChainID + 35), R: new(big.Int).SetBytes(rs), S: new(big.Int).SetBytes(rs2[1:]),
	})
}

// scaleModel is the link and CPU model of a run.
type scaleModel struct {
	p       scaleParams
	w       *world
	rng     *rand.Rand
	recUs   int64
	signUs  int64
	idx     map[consensus.NodeID]int // network address -> node index
	cpu     []int64                  // per node: virtual µs until its CPU is free
	busy    []int64                  // per node: virtual µs of CPU used
	uplink  []int64                  // per node: virtual µs until its uplink is free
	charged []map[common.Hash]bool   // per node: blocks already built or verified

	counting    bool
	res         scaleResult
	realRecover time.Duration
	realSign    time.Duration
	// commits[h] are the virtual times validators committed height h.
	commits map[uint64][]int64
}

func (m *scaleModel) nowUs() int64 { return int64(m.w.net.Now()) * 1000 }

// work keeps node i's CPU busy for us from now (or from when it is free).
func (m *scaleModel) work(i int, us int64) {
	m.cpu[i] = max(m.cpu[i], m.nowUs()) + us
	m.busy[i] += us
}

// link is the network's delay: the message leaves when the sender's CPU
// is free, queues on its uplink, and arrives after the latency.
func (m *scaleModel) link(from, _ consensus.NodeID, size int, now uint64) uint64 {
	i := m.idx[from]
	nowUs := int64(now) * 1000
	start := max(nowUs, m.cpu[i], m.uplink[i])
	done := start + int64(float64(size)*8/m.p.mbps)
	m.uplink[i] = done
	arrive := done + m.p.latMinUs + m.rng.Int63n(m.p.latMaxUs-m.p.latMinUs+1)
	return uint64((arrive - nowUs + 999) / 1000)
}

// chargeBlock charges node i once for building or verifying a block.
func (m *scaleModel) chargeBlock(i int, payload []byte) {
	msg, err := decodeMessage(payload)
	if err != nil || msg.block == nil {
		return
	}
	seen := m.charged[i]
	if seen[msg.hash] {
		return
	}
	if len(seen) > 64 {
		clear(seen)
	}
	seen[msg.hash] = true
	m.work(i, int64(len(msg.block.Transactions()))*m.p.perTxUs)
}

// countingSigner signs with the node's key, charging its CPU.
type countingSigner struct {
	*KeySigner
	m *scaleModel
	i int
}

func (s countingSigner) Sign(d common.Hash) ([]byte, error) {
	t0 := time.Now()
	sig, err := s.KeySigner.Sign(d)
	s.m.realSign += time.Since(t0)
	s.m.work(s.i, s.m.signUs)
	if s.m.counting {
		s.m.res.signs++
	}
	return sig, err
}

// newScaleWorld builds the simulated network of p with the model wired in.
func newScaleWorld(p scaleParams) *scaleModel {
	recUs, signUs := p.recoverUs, p.signUs
	m := &scaleModel{p: p, rng: rand.New(rand.NewSource(p.seed + 7)), recUs: recUs, signUs: signUs,
		idx: map[consensus.NodeID]int{}, commits: map[uint64][]int64{}}
	m.cpu = make([]int64, p.validators)
	m.busy = make([]int64, p.validators)
	m.uplink = make([]int64, p.validators)
	for range p.validators {
		m.charged = append(m.charged, map[common.Hash]bool{})
	}
	const tick = tickLen * time.Millisecond
	ticks := func(d time.Duration) int { return int((d + tick - 1) / tick) }
	cfg := simConfig{
		validators: p.validators,
		faults:     simnet.Faults{MinDelay: 1, MaxDelay: 1},
		tune: func(n *simNode, c *Config) {
			// The engine's defaults (EngineConfig), in ticks of the
			// simulation, and each node checking signatures itself.
			c.ProposeTimeoutTicks = ticks(DefaultProposeTimeout)
			c.PrevoteTimeoutTicks = ticks(DefaultPrevoteTimeout)
			c.PrecommitTimeoutTicks = ticks(DefaultPrecommitTimeout)
			c.TimeoutDeltaTicks = ticks(DefaultTimeoutDelta)
			c.MaxTimeoutTicks = ticks(DefaultMaxTimeout)
			c.CommitWaitTicks = ticks(DefaultCommitWait)
			c.RebroadcastTicks = ticks(DefaultRebroadcast)
			c.SyncRetryTicks = ticks(DefaultSyncRetry)
			c.MaxMessageBytes = DefaultMaxMessageBytes
			i := n.Index
			c.Recover = func(d common.Hash, sig []byte) (consensus.NodeID, error) {
				t0 := time.Now()
				id, err := RecoverSigner(d, sig)
				m.realRecover += time.Since(t0)
				m.work(i, m.recUs)
				if m.counting {
					m.res.sigChecks++
				}
				return id, err
			}
			c.Signer = countingSigner{KeySigner: NewKeySigner(n.key), m: m, i: i}
		},
		sent: func(n *simNode, msg consensus.Message) {
			typ := PeekType(msg.Payload)
			if typ == MsgProposal {
				m.chargeBlock(n.Index, msg.Payload)
			}
			if !m.counting || int(typ) >= numMsgTypes {
				return
			}
			copies := 1
			if msg.Broadcast {
				copies = len(m.w.nodes) - 1
			}
			m.res.msgs[typ] += copies
			m.res.bytes[typ] += copies * len(msg.Payload)
		},
		inbound: func(n *simNode, payload []byte) {
			if PeekType(payload) == MsgProposal {
				m.chargeBlock(n.Index, payload)
			}
		},
		commit: func(n *simNode, b *types.Block) {
			h := b.NumberU64()
			m.commits[h] = append(m.commits[h], max(m.nowUs(), m.cpu[n.Index]))
		},
	}
	m.w = newWorld(p.seed, cfg)
	for _, n := range m.w.nodes {
		m.idx[n.Addr] = n.Index
		n.Chain.MaxTxs = p.txs // before the first build (after the commit wait)
	}
	m.w.net.SetLink(m.link)
	return m
}

// feed keeps every validator's pool at least two blocks deep, as clients
// that submit to every validator would.
func (m *scaleModel) feed() {
	if m.w.nodes[0].Chain.PoolSize() >= 2*m.p.txs {
		return
	}
	var to []*simnet.Node
	for _, n := range m.w.nodes {
		to = append(to, n.Node)
	}
	for range m.p.txs {
		m.w.txSeq++
		m.w.s.Submit(scaleTx(m.w.txSeq), to...)
	}
}

// runUntil steps the network until every validator committed height h.
func (m *scaleModel) runUntil(h uint64) error {
	limit := m.w.tick() + 100_000
	for m.w.s.MinHeight(m.w.s.Nodes) < h {
		if m.w.tick() > limit {
			return fmt.Errorf("height %d not reached by all validators in 100,000 ticks (at %d)", h, m.w.s.MinHeight(m.w.s.Nodes))
		}
		m.feed()
		m.w.step()
		if err := m.w.err(); err != nil {
			return err
		}
	}
	return nil
}

// runScale runs warm heights, then measures the next heights. start and
// stop, if set, bracket the measured window (a benchmark's timer).
func runScale(p scaleParams, warm, heights int, start, stop func()) (scaleResult, error) {
	m := newScaleWorld(p)
	if err := m.runUntil(uint64(warm)); err != nil {
		return scaleResult{}, err
	}
	// The window opens when the last validator committed height warm
	// and closes when the last validator committed warm+heights.
	first := uint64(warm)
	last := first + uint64(heights)
	busy0 := append([]int64(nil), m.busy...)
	rounds0 := m.w.nodes[0].core().Counters().RoundChanges
	m.counting = true
	m.realRecover, m.realSign = 0, 0
	if start != nil {
		start()
	}
	t0 := time.Now()
	if err := m.runUntil(last); err != nil {
		return scaleResult{}, err
	}
	real := time.Since(t0)
	if stop != nil {
		stop()
	}
	m.counting = false
	if err := m.w.finalCheck(); err != nil {
		return scaleResult{}, err
	}
	r := m.res
	r.heights = heights
	r.realRun, r.realRecover, r.realSign = real, m.realRecover, m.realSign
	r.roundChanges = m.w.nodes[0].core().Counters().RoundChanges - rounds0
	lastOf := func(h uint64) int64 { return slicesMax(m.commits[h]) }
	r.virtualUs = lastOf(last) - lastOf(first)
	var spreads []int64
	for h := first + 1; h <= last; h++ {
		b, _ := m.w.nodes[0].Chain.BlockByNumber(h)
		r.txs += len(b.Transactions())
		cs := m.commits[h]
		spreads = append(spreads, slicesMax(cs)-slicesMin(cs))
	}
	sort.Slice(spreads, func(i, j int) bool { return spreads[i] < spreads[j] })
	r.commitSpreadU = spreads[len(spreads)/2]
	for i := range m.busy {
		r.cpuUs = append(r.cpuUs, m.busy[i]-busy0[i])
	}
	r.perType = map[string]string{}
	for t := MsgProposal; int(t) < numMsgTypes; t++ {
		if r.msgs[t] > 0 {
			r.perType[t.String()] = fmt.Sprintf("%.0f msgs %.0f B", float64(r.msgs[t])/float64(heights), float64(r.bytes[t])/float64(heights))
		}
	}
	return r, nil
}

func slicesMax(v []int64) int64 {
	out := v[0]
	for _, x := range v {
		out = max(out, x)
	}
	return out
}

func slicesMin(v []int64) int64 {
	out := v[0]
	for _, x := range v {
		out = min(out, x)
	}
	return out
}

// scaleRuns counts the benchmark's runs: each takes the next seed, so
// -count 3 measures three different runs.
var scaleRuns atomic.Int64

// BenchmarkScale measures bft with 4, 7, 10 and 16 validators on 1 Gbit/s
// links; b.N is the number of heights measured (use -benchtime 20x).
func BenchmarkScale(b *testing.B) {
	for _, n := range []int{4, 7, 10, 16} {
		b.Run(fmt.Sprintf("validators=%d", n), func(b *testing.B) { benchScale(b, defaultScale(n)) })
	}
}

// BenchmarkScaleSlowLinks is BenchmarkScale on 100 Mbit/s uplinks.
func BenchmarkScaleSlowLinks(b *testing.B) {
	for _, n := range []int{4, 7, 10, 16} {
		p := defaultScale(n)
		p.mbps = 100
		b.Run(fmt.Sprintf("validators=%d", n), func(b *testing.B) { benchScale(b, p) })
	}
}

func benchScale(b *testing.B, p scaleParams) {
	p.seed = scaleRuns.Add(1)
	r, err := runScale(p, 3, max(b.N, 3), b.ResetTimer, b.StopTimer)
	if err != nil {
		b.Fatal(err)
	}
	n, h := p.validators, float64(r.heights)
	b.ReportMetric(float64(r.totalMsgs())/h, "msgs/block")
	b.ReportMetric(float64(r.totalBytes())/h, "bytes/block")
	b.ReportMetric(r.blocksPerSec(), "blocks/s")
	b.ReportMetric(r.txPerSec(), "tx/s")
	b.ReportMetric(float64(r.sigChecks)/h, "sigchecks/block")
	b.ReportMetric(float64(r.roundChanges)/h, "roundchanges/block")
	var cpu int64
	for _, c := range r.cpuUs {
		cpu += c
	}
	b.Logf("n=%d seed=%d: %v; per block: %.0f tx, %.0f sig checks, %.0f signs, virtual CPU per validator %.1f ms; "+
		"real time of all validators %.1f ms, of which signature recovery %.1f ms and signing %.1f ms; commit spread %.1f ms",
		n, p.seed, r.perType, float64(r.txs)/h, float64(r.sigChecks)/h, float64(r.signs)/h, float64(cpu)/float64(n)/h/1000,
		float64(r.realRun.Microseconds())/h/1000, float64(r.realRecover.Microseconds())/h/1000, float64(r.realSign.Microseconds())/h/1000,
		float64(r.commitSpreadU)/1000)
}

// TestScaleMessagesPerHeight bounds what a height costs on the wire with
// 7 validators: the proposal to every peer, and each validator's prevote,
// precommit and status to every peer, nothing more while the network is
// healthy: (n-1)(3n+1) messages and as many signature checks. A
// regression to re-sending (periodic rebroadcasts of healthy heights) or
// relaying votes fails it.
func TestScaleMessagesPerHeight(t *testing.T) {
	const n, heights = 7, 5
	p := defaultScale(n)
	p.txs, p.perTxUs = 50, 3000 // 150 ms to build or verify a block: heights longer than the rebroadcast interval
	r, err := runScale(p, 2, heights, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	bound := (n - 1) * (3*n + 1)
	perHeight := float64(r.totalMsgs()) / heights
	t.Logf("%d validators: %.1f messages per height (bound %d), %.1f signature checks, %v", n, perHeight, bound, float64(r.sigChecks)/heights, r.perType)
	if perHeight > float64(bound) {
		t.Errorf("%.1f messages per height, want at most (n-1)(3n+1) = %d: %v", perHeight, bound, r.perType)
	}
	if got := float64(r.sigChecks) / heights; got > float64(bound) {
		t.Errorf("%.1f signature checks per height, want at most %d", got, bound)
	}
	if r.msgs[MsgProposal] > (n-1)*heights {
		t.Errorf("%d proposals sent in %d heights, want %d: a block re-sent", r.msgs[MsgProposal], heights, (n-1)*heights)
	}
	if r.roundChanges != 0 {
		t.Errorf("%d round changes on a healthy network", r.roundChanges)
	}
}
