package e2e

import (
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
	dto "github.com/prometheus/client_model/go"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/system"
)

// This file is the adversarial sweep as a multi-process test: the attacks
// that once slowed a chain 40-80x (an organization admin's flood of large
// proposals), grew a node's memory without bound (a pool bounded by count
// only) or could stop it are run against a 4-node bft network of
// processes, and honest transfers must keep their finality.
//
// Accounts (the development accounts of the test mnemonic, funded with
// write in org0 by init): 0-3 the honest senders, one per node; 4-11 the
// flood of valid transfers; 12-13 the flood of valid 120 KB transactions;
// 16 the gapped flood. The organizations' admin accounts propose.

const (
	// sweepPhase is how long each phase's honest load runs.
	sweepPhase = 15 * time.Second
	// honestEvery is each honest sender's interval: 4 senders, 20
	// transfers/s in all, 300 a phase, so that the p99 is the 3rd largest
	// latency and not one outlier.
	honestEvery = 200 * time.Millisecond
	// A sender of the valid flood sends validBatch transfers every
	// validEvery: 8 senders at 25/s are 200/s, 10x the honest stream.
	validSenders = 8
	validBatch   = 5
	validEvery   = 200 * time.Millisecond
	// The gapped flood is the report's: 1,024 transactions of 120 KB
	// behind a nonce gap from one account to one node (a pool that keeps
	// them grows by 123 MB), from gappedSenders goroutines, each sending
	// as soon as its previous one is answered.
	gappedCount   = 1024
	gappedSenders = 4
	bigTxData     = 120 << 10
	// Two senders of valid 120 KB transactions, one every bigEvery each:
	// 2.4 MB/s, which a few rounds turn into more than one block can carry
	// under the consensus message bound (10 MiB).
	bigSenders = 2
	bigEvery   = 100 * time.Millisecond
	// Each organization admin tries proposalsPerAdmin proposals, one every
	// proposalEvery: beyond the bound of open proposals per organization
	// (16 by default) and, in all, more than the report's 100.
	proposalsPerAdmin = 30
	proposalEvery     = 350 * time.Millisecond
	// rssBoundMB bounds every node's resident memory in every phase. The
	// nodes run with GOGC=100 (their default is 400, which lets RSS reach
	// several times the live heap) and under a soft memory limit of
	// rssLimit, far below their default (a quarter of the machine's
	// memory), so that their RSS follows what they keep, not the
	// collector's slack: under the defaults, the valid 120 KB phase
	// reached 760-840 MB of RSS, and with GOGC=400 under rssLimit the
	// pool flood's garbage (120 MB of requests) alone grew node0 by
	// 144-161 MB, at the growth bound below.
	rssBoundMB = 500
	rssLimit   = "384MiB"
	// rssPoolGrowthMB bounds how much a node's RSS may grow in the pool
	// flood over its quiet peak. The pool keeps at most 4 MiB of one
	// account's gapped transactions (30-80 MB growth measured, the
	// transfers' included); a pool that keeps all 1,024 grows the node
	// they are sent to by about 260 MB (measured on the pool before its
	// byte bounds; the report saw 38 -> 328 MB).
	rssPoolGrowthMB = 150
	// latencyFloor and the quiet phase after: a flood phase's honest p99
	// may reach 2x the quiet p99, or 2x latencyFloor when the quiet p99 is
	// below it; when it does not, a quiet phase runs right after the flood
	// and the bound is 2x the larger of the two quiet p99s. The 4 nodes,
	// the flood's client and the honest load share 2 cores with other
	// builds and tests: there a descheduled node stalls a round for a few
	// hundred ms whatever the chain does, the p99 of 300 transfers is the
	// worst such stall in 15 s, and the background load can double within
	// a phase. Measured with the load average between 8 and 20: quiet p99
	// 0.3-0.9 s; under the pool flood, whose admission work (1,024
	// transactions of 120 KB decoded and refused, 200 transfers/s on every
	// node) doubles the nodes' CPU, 0.5-1.5 s. The attacks this guards
	// against cost seconds or stop the chain (the report's proposal flood:
	// 0.11 s -> 4.8-8.7 s), and they end with the flood, so a quiet phase
	// after does not excuse them.
	latencyFloor = time.Second
)

// TestFloodKeepsHonestFinality runs a 4-node bft network of processes
// through four phases of the same honest load (transfers from four
// accounts, one per node, each timed from its submission to its block
// being final on the node it was sent to):
//
//  1. quiet;
//  2. the pool flood: 1,024 gapped transactions of 120 KB from one
//     account, and valid transfers at 10x the honest rate from eight;
//  3. the proposal flood: every organization admin proposes with the
//     largest arguments the chain accepts, beyond the number it accepts;
//  4. valid 120 KB transactions from two accounts (last: a chain that
//     cannot carry them would stay stopped).
//
// Each flood phase's honest p99 must stay within 2x the quiet one (see
// latencyFloor), every honest transfer must be confirmed, each flood
// must meet its bound (the pool's on queued bytes, the chain's on open
// proposals) and every refusal must name it, every node's RSS must stay
// below rssBoundMB and grow at most rssPoolGrowthMB in the pool flood,
// and at the end every node has the same block at every height. A phase
// that leaves honest transfers unconfirmed ends the run: the phases after
// it would measure a stopped chain.
func TestFloodKeepsHonestFinality(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process network test")
	}
	const n = 4
	dir := initNetwork(t, "bft", n, "--block-time", "200ms")
	t.Setenv("GOMEMLIMIT", rssLimit) // the nodes' (charter testnet passes its environment on)
	t.Setenv("GOGC", "100")
	tn := runTestnet(t, dir)
	waitFor(t, 30*time.Second, "every node connected to every other", func() bool {
		for i := 0; i < n; i++ {
			if c, err := peerCount(tn.url(i)); err != nil || c != n-1 {
				return false
			}
		}
		return true
	})
	tn.waitAllReach(1, 30*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			tn.logWarnings(t)
		}
	})
	accts, err := chain.DevAccounts(chain.DevAccountCount)
	if err != nil {
		t.Fatal(err)
	}
	admins := make([]*ecdsa.PrivateKey, n)
	for k := range admins {
		admins[k] = mustKey(t, filepath.Join(dir, "orgs", "org"+strconv.Itoa(k), "admin-account.key"))
	}
	// The proposal's shape is found before any load, by calls only.
	shape := largestProposal(t, tn.url(0), admins[0])

	rss := watchRSS(tn)
	fin := newFinality(tn)
	honest := newHonest(t, tn, accts[:n], fin)
	var floods []floodReport
	var results []*phaseResult
	run := func(name string, start func() []floodReport) {
		if len(results) > 0 && !results[len(results)-1].ok() {
			t.Logf("phase %s not run: the phase before it left honest transfers unconfirmed", name)
			return
		}
		rss.phase(name)
		before := readChainCounters(t, tn)
		var started []floodReport
		if start != nil {
			started = start()
		}
		r := honest.phase(name, sweepPhase)
		for _, f := range started {
			f.stop()
		}
		r.rss = rss.phase("")
		r.chain = readChainCounters(t, tn).since(before)
		results = append(results, r)
		floods = append(floods, started...)
		if quiet := results[0]; r != quiet && r.ok() && r.p99 > 2*max(quiet.p99, latencyFloor) {
			r.quietAfter = honest.phase("quiet after "+name, sweepPhase)
		}
	}
	run("quiet", nil)
	run("pool flood", func() []floodReport {
		return []floodReport{startGappedFlood(t, tn, accts[16]), startTransferFlood(t, tn, accts[4:4+validSenders])}
	})
	run("proposal flood", func() []floodReport { return []floodReport{startProposalFlood(t, tn, admins, shape)} })
	run("valid 120 KB", func() []floodReport { return []floodReport{startBigFlood(t, tn, accts[12:12+bigSenders])} })
	fin.close()
	rss.stop()

	// Every node at the same hash at every height.
	head := tn.waitConverged(60 * time.Second)
	checkHashes(t, tn, head)

	// Figures first, then verdicts, so that a failing run still reports
	// what it measured.
	quiet := results[0]
	limit := func(p *phaseResult) time.Duration {
		base := max(quiet.p99, latencyFloor)
		if q := p.quietAfter; q != nil && q.ok() {
			base = max(base, q.p99)
		}
		return 2 * base
	}
	for _, p := range results {
		t.Logf("%-15s %4d honest transfers, %4d confirmed: p50 %v, p99 %v, max %v; peak RSS (MB) %v; %s", p.name, p.sent, p.confirmed,
			p.p50.Round(time.Millisecond), p.p99.Round(time.Millisecond), p.max.Round(time.Millisecond), p.rss, p.chain)
		if q := p.quietAfter; q != nil {
			t.Logf("%-15s %4d honest transfers, %4d confirmed: p50 %v, p99 %v, max %v", "  quiet after", q.sent, q.confirmed,
				q.p50.Round(time.Millisecond), q.p99.Round(time.Millisecond), q.max.Round(time.Millisecond))
		}
	}
	t.Logf("bound on a flood phase's p99: 2 x max(quiet p99, %v, the p99 of a quiet phase after it if one ran)", latencyFloor)
	for _, f := range floods {
		f.report(t)
	}
	t.Logf("%d blocks agree on every node", head+1)

	for _, p := range results {
		if !p.ok() {
			t.Errorf("%s: %d of %d honest transfers confirmed (first error: %v)", p.name, p.confirmed, p.sent, p.firstErr)
		}
		if p.sent < 200 {
			t.Errorf("%s: only %d honest transfers sent; too few for a p99", p.name, p.sent)
		}
		if p != quiet && p.p99 > limit(p) {
			after := "none"
			if q := p.quietAfter; q != nil {
				after = q.p99.Round(time.Millisecond).String()
			}
			t.Errorf("%s: honest p99 %v above %v (quiet p99 %v before, %s after)", p.name, p.p99.Round(time.Millisecond),
				limit(p).Round(time.Millisecond), quiet.p99.Round(time.Millisecond), after)
		}
		for i, mb := range p.rss {
			if mb > rssBoundMB {
				t.Errorf("%s: node%d's RSS reached %d MB, above %d MB", p.name, i, mb, rssBoundMB)
			}
			if p.name == "pool flood" && mb > quiet.rss[i]+rssPoolGrowthMB {
				t.Errorf("%s: node%d's RSS grew from %d MB (quiet) to %d MB, more than %d MB", p.name, i, quiet.rss[i], mb, rssPoolGrowthMB)
			}
		}
	}
	if len(results) < 4 {
		t.Errorf("%d of 4 phases run", len(results))
	}
	for _, f := range floods {
		f.check(t)
	}
}

// floodReport is what a phase needs of a running flood.
type floodReport interface {
	stop()               // end it; when it returns, nothing more is sent
	report(t *testing.T) // log what it sent and what was refused, by reason
	check(t *testing.T)  // fail t unless every refusal names an expected bound
}

// logWarnings logs each node's last warnings and errors.
func (tn *testnet) logWarnings(t *testing.T) {
	for i := range tn.ep.Nodes {
		var lines []string
		for _, l := range strings.Split(tn.logOf(i), "\n") {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				lines = append(lines, l)
			}
		}
		t.Logf("node%d logged %d warnings and errors; the last ones:\n%s", i, len(lines), strings.Join(lines[max(0, len(lines)-8):], "\n"))
	}
}

// --- honest load and its finality ---

// honestTx is one honest transfer: the node it was sent to, when, and
// when its block was first seen final there.
type honestTx struct {
	node  int
	sent  time.Time
	final time.Time
	err   error
}

// finality follows every node's final blocks and stamps the honest
// transactions sent to that node when their block appears there. Only
// registered (honest) transactions are kept: the map is bounded by the
// honest load, at most a few thousand.
type finality struct {
	mu   sync.Mutex
	txs  map[common.Hash]*honestTx
	quit chan struct{}
	wg   sync.WaitGroup
}

func newFinality(tn *testnet) *finality {
	f := &finality{txs: map[common.Hash]*honestTx{}, quit: make(chan struct{})}
	for i := range tn.ep.Nodes {
		from, err := height(tn.url(i))
		if err != nil {
			tn.t.Fatalf("node%d height: %v", i, err)
		}
		f.wg.Add(1)
		go f.follow(i, tn.url(i), from)
	}
	return f
}

// register records tx before it is sent, so that its block cannot be seen
// before the record exists.
func (f *finality) register(hash common.Hash, tx *honestTx) {
	f.mu.Lock()
	f.txs[hash] = tx
	f.mu.Unlock()
}

// follow stamps the honest transactions of each block final on one node
// with the moment the node announced the block (a newHeads subscription
// over WebSocket); it also polls the height every 250 ms, in case the
// subscription is dropped. It ends when close is called; each call has a
// deadline.
func (f *finality) follow(node int, url string, from uint64) {
	defer f.wg.Done()
	rc, err := gethrpc.Dial("ws" + strings.TrimPrefix(url, "http"))
	if err != nil {
		return
	}
	defer rc.Close()
	call := func(res any, method string, args ...any) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return rc.CallContext(ctx, res, method, args...)
	}
	type head struct {
		Number hexutil.Uint64 `json:"number"`
	}
	heads := make(chan head, 64)
	var dropped <-chan error
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	sub, err := rc.Subscribe(ctx, "eth", heads, "newHeads")
	cancel()
	if err == nil {
		defer sub.Unsubscribe()
		dropped = sub.Err()
	}
	next := from + 1
	for k := 0; k < int(10*time.Minute/(250*time.Millisecond)); k++ {
		var top uint64
		seen := time.Now()
		select {
		case <-f.quit:
			return
		case h := <-heads:
			top, seen = uint64(h.Number), time.Now()
		case <-dropped:
			dropped = nil // polling only from now on
			continue
		case <-time.After(250 * time.Millisecond):
			var h hexutil.Uint64
			if call(&h, "eth_blockNumber") != nil {
				continue
			}
			top, seen = uint64(h), time.Now()
		}
		for ; next <= top; next++ {
			var b struct {
				Transactions []common.Hash `json:"transactions"`
			}
			if call(&b, "eth_getBlockByNumber", hexutil.Uint64(next), false) != nil {
				break // this height again at the next head or poll
			}
			f.mu.Lock()
			for _, hash := range b.Transactions {
				if tx := f.txs[hash]; tx != nil && tx.node == node && tx.final.IsZero() {
					tx.final = seen
				}
			}
			f.mu.Unlock()
		}
	}
}

func (f *finality) close() {
	close(f.quit)
	f.wg.Wait()
}

// honest is the steady honest load: one sender per node, each a funded
// development account, sending a transfer every honestEvery to its node.
type honest struct {
	t       *testing.T
	fin     *finality
	accts   []chain.DevAccount
	nonces  []uint64
	clients []*gethrpc.Client
	signer  types.Signer
}

func newHonest(t *testing.T, tn *testnet, accts []chain.DevAccount, fin *finality) *honest {
	h := &honest{t: t, fin: fin, accts: accts, signer: types.LatestSignerForChainID(big.NewInt(int64(tn.ep.ChainID)))}
	for i, a := range accts {
		rc, err := gethrpc.Dial(tn.url(i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rc.Close)
		var nonce hexutil.Uint64
		if err := rpcCall(tn.url(i), &nonce, "eth_getTransactionCount", a.Address, "pending"); err != nil {
			t.Fatalf("nonce of honest sender %d: %v", i, err)
		}
		h.clients = append(h.clients, rc)
		h.nonces = append(h.nonces, uint64(nonce))
	}
	return h
}

type phaseResult struct {
	name            string
	sent, confirmed int
	p50, p99, max   time.Duration
	firstErr        error
	rss             []int         // each node's peak RSS in the phase, MB
	chain           chainCounters // what the nodes did in the phase
	quietAfter      *phaseResult  // a quiet phase run right after, if one was
}

// ok: every honest transfer of the phase was confirmed.
func (r *phaseResult) ok() bool { return r.sent > 0 && r.confirmed == r.sent }

// phase runs the honest load for d, then waits (at most 30 s) until every
// transfer it sent is final on its node, and returns the latencies. A
// transfer never confirmed counts with the time it waited.
func (h *honest) phase(name string, d time.Duration) *phaseResult {
	var (
		mu  sync.Mutex
		txs []*honestTx
		wg  sync.WaitGroup
	)
	for i := range h.accts {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			tick := time.NewTicker(honestEvery)
			defer tick.Stop()
			end := time.Now().Add(d)
			for k := 0; k < int(d/honestEvery)+1 && time.Now().Before(end); k++ {
				to := recipients[(i+k)%len(recipients)]
				tx := types.MustSignNewTx(h.accts[i].Key, h.signer, &types.DynamicFeeTx{ChainID: h.signer.ChainID(), Nonce: h.nonces[i],
					Gas: 21000, GasFeeCap: big.NewInt(1_000_000_000), GasTipCap: big.NewInt(1), To: &to, Value: big.NewInt(1)})
				raw, _ := tx.MarshalBinary()
				rec := &honestTx{node: i, sent: time.Now()}
				h.fin.register(tx.Hash(), rec)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := h.clients[i].CallContext(ctx, nil, "eth_sendRawTransaction", hexutil.Bytes(raw))
				cancel()
				if err != nil {
					rec.err = fmt.Errorf("sender %d nonce %d: %w", i, h.nonces[i], err)
				} else {
					h.nonces[i]++
				}
				mu.Lock()
				txs = append(txs, rec)
				mu.Unlock()
				<-tick.C
			}
		}(i)
	}
	wg.Wait()
	r := &phaseResult{name: name, sent: len(txs)}
	deadline := time.Now().Add(30 * time.Second)
	for {
		h.fin.mu.Lock()
		done := 0
		for _, tx := range txs {
			if !tx.final.IsZero() || tx.err != nil {
				done++
			}
		}
		h.fin.mu.Unlock()
		if done == len(txs) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	now := time.Now()
	var lat []time.Duration
	h.fin.mu.Lock()
	for _, tx := range txs {
		switch {
		case tx.err != nil:
			if r.firstErr == nil {
				r.firstErr = tx.err
			}
			lat = append(lat, now.Sub(tx.sent))
		case tx.final.IsZero():
			if r.firstErr == nil {
				r.firstErr = errors.New("not final within 30 s of the phase's end")
			}
			lat = append(lat, now.Sub(tx.sent))
		default:
			r.confirmed++
			lat = append(lat, tx.final.Sub(tx.sent))
		}
	}
	h.fin.mu.Unlock()
	slices.Sort(lat)
	if len(lat) > 0 {
		r.p50, r.p99, r.max = percentile(lat, 0.50), percentile(lat, 0.99), lat[len(lat)-1]
	}
	h.t.Logf("phase %s: %d honest transfers, %d confirmed, p50 %v, p99 %v", name, r.sent, r.confirmed, r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond))
	return r
}

// percentile of sorted values: the smallest value at or above fraction q
// of them.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// --- refusals ---

// refusals counts a flood's refused submissions by reason: the message up
// to its first colon (the pool's and the EVM's errors put the kind first,
// the detail after), with one full message kept per reason.
type refusals struct {
	mu     sync.Mutex
	count  map[string]int
	sample map[string]string
}

func newRefusals() *refusals {
	return &refusals{count: map[string]int{}, sample: map[string]string{}}
}

func (r *refusals) add(msg string) {
	reason := msg
	if i := strings.Index(msg, ": "); i >= 0 {
		reason = msg[:i]
	}
	if reason == "execution reverted" && strings.Contains(msg, "open proposals") {
		reason = "execution reverted: open proposals at the bound"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.count[reason] == 0 {
		r.sample[reason] = msg
	}
	r.count[reason]++
}

func (r *refusals) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.count {
		n += c
	}
	return n
}

func (r *refusals) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.count) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(r.count))
	for k := range r.count {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString("; ")
		}
		s := r.sample[k]
		if len(s) > 200 {
			s = s[:200] + "..."
		}
		fmt.Fprintf(&b, "%d x %q (e.g. %q)", r.count[k], k, s)
	}
	return b.String()
}

// unexpected returns the reasons not among want.
func (r *refusals) unexpected(want ...string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for k := range r.count {
		if !slices.Contains(want, k) {
			out = append(out, fmt.Sprintf("%d x %q (e.g. %q)", r.count[k], k, r.sample[k]))
		}
	}
	sort.Strings(out)
	return out
}

// --- the pool floods ---

// flood is one kind of pool flood: its senders, each on its own
// goroutine, bounded in count and stopped by stop.
type flood struct {
	name     string
	expect   []string // the reasons a refusal may give
	mustMeet bool     // the flood must meet a bound (be refused at least once)
	refused  *refusals
	mu       sync.Mutex
	sent     int
	bytes    int
	quit     chan struct{}
	wg       sync.WaitGroup
}

// poolBounds are the reasons of the pool's refusals for bounds
// (txpool.ErrAccountLimit, txpool.ErrPoolFull).
var poolBounds = []string{"account limit exceeded", "txpool is full"}

func newFlood(name string, mustMeet bool, expect ...string) *flood {
	return &flood{name: name, expect: expect, mustMeet: mustMeet, refused: newRefusals(), quit: make(chan struct{})}
}

// goEvery runs step(k) for k = 0, 1, ... on a goroutine of its own, one
// every interval, at most count times, until stop.
func (f *flood) goEvery(every time.Duration, count int, step func(k int)) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for k := 0; k < count; k++ {
			select {
			case <-f.quit:
				return
			case <-tick.C:
			}
			step(k)
		}
	}()
}

// record counts submissions of b bytes each and their refusals.
func (f *flood) record(b int, errs []error) {
	f.mu.Lock()
	f.sent += len(errs)
	f.bytes += b * len(errs)
	f.mu.Unlock()
	for _, err := range errs {
		if err != nil {
			f.refused.add(err.Error())
		}
	}
}

func (f *flood) stop() {
	close(f.quit)
	f.wg.Wait()
}

func (f *flood) report(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	t.Logf("%s: %d sent (%d MB), %d refused: %s", f.name, f.sent, f.bytes>>20, f.refused.total(), f.refused)
}

func (f *flood) check(t *testing.T) {
	t.Helper()
	if f.mustMeet && f.refused.total() == 0 {
		t.Errorf("%s: all %d transactions taken; the flood met no bound", f.name, f.sent)
	}
	if bad := f.refused.unexpected(f.expect...); len(bad) > 0 {
		t.Errorf("%s refused for other reasons than %q: %s", f.name, f.expect, strings.Join(bad, "; "))
	}
}

// sender signs and sends one account's transactions to one node.
type sender struct {
	key    *ecdsa.PrivateKey
	signer types.Signer
	rc     *gethrpc.Client
}

func newSender(t *testing.T, url string, key *ecdsa.PrivateKey, chainID uint64) *sender {
	rc, err := gethrpc.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	return &sender{key: key, signer: types.LatestSignerForChainID(new(big.Int).SetUint64(chainID)), rc: rc}
}

// pendingNonce is the account's next nonce, counting the pool's.
func (s *sender) pendingNonce() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n hexutil.Uint64
	err := s.rc.CallContext(ctx, &n, "eth_getTransactionCount", crypto.PubkeyToAddress(s.key.PublicKey), "pending")
	return uint64(n), err
}

// nonce is pendingNonce on the test's goroutine.
func (s *sender) nonce(t *testing.T) uint64 {
	t.Helper()
	n, err := s.pendingNonce()
	if err != nil {
		t.Fatalf("nonce of %s: %v", crypto.PubkeyToAddress(s.key.PublicKey), err)
	}
	return n
}

// tx signs a transaction of data to `to` with just the gas its calldata
// needs at most (EIP-7623's floor: 10 gas a token, 4 tokens a non-zero
// byte, above the standard 16 a byte).
func (s *sender) tx(nonce uint64, to common.Address, data []byte) []byte {
	gas := uint64(21000 + 40*len(data))
	tx := types.MustSignNewTx(s.key, s.signer, &types.DynamicFeeTx{ChainID: s.signer.ChainID(), Nonce: nonce, Gas: gas,
		GasFeeCap: big.NewInt(1_000_000_000), GasTipCap: big.NewInt(1), To: &to, Value: big.NewInt(1), Data: data})
	raw, _ := tx.MarshalBinary()
	return raw
}

// send submits raw transactions in one batch and returns each one's
// error (the call's own error for all when the call failed).
func (s *sender) send(raws ...[]byte) []error {
	batch := make([]gethrpc.BatchElem, len(raws))
	for i, raw := range raws {
		batch[i] = gethrpc.BatchElem{Method: "eth_sendRawTransaction", Args: []any{hexutil.Bytes(raw)}, Result: new(common.Hash)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := s.rc.BatchCallContext(ctx, batch)
	cancel()
	errs := make([]error, len(raws))
	for i := range batch {
		if err != nil {
			errs[i] = fmt.Errorf("transport: %w", err)
		} else {
			errs[i] = batch[i].Error
		}
	}
	return errs
}

// bigData is 120 KB of non-zero bytes, the same in every large flood
// transaction (the nonce makes each one distinct).
var bigData = func() []byte {
	b := make([]byte, bigTxData)
	for i := range b {
		b[i] = byte(i%251) + 1
	}
	return b
}()

// startGappedFlood sends gappedCount transactions of 120 KB from acct to
// node 0, from nonce next+1 on so that none can execute, its nonces split
// over gappedSenders goroutines. The pool must refuse most of them on its
// bound of queued bytes per account.
func startGappedFlood(t *testing.T, tn *testnet, acct chain.DevAccount) *flood {
	f := newFlood(fmt.Sprintf("gapped flood (%d KB each)", bigTxData>>10), true, poolBounds...)
	first := newSender(t, tn.url(0), acct.Key, tn.ep.ChainID).nonce(t) + 1
	for g := 0; g < gappedSenders; g++ {
		s := newSender(t, tn.url(0), acct.Key, tn.ep.ChainID)
		f.goEvery(time.Millisecond, gappedCount/gappedSenders, func(k int) {
			raw := s.tx(first+uint64(gappedSenders*k+g), recipients[k%len(recipients)], bigData)
			f.record(len(raw), s.send(raw))
		})
	}
	return f
}

// startTransferFlood sends valid transfers, validBatch every validEvery
// from each account, to the nodes in turn.
func startTransferFlood(t *testing.T, tn *testnet, accts []chain.DevAccount) *flood {
	f := newFlood(fmt.Sprintf("valid transfers (%d/s)", len(accts)*validBatch*int(time.Second/validEvery)), false, poolBounds...)
	for v, acct := range accts {
		s := newSender(t, tn.url(v%len(tn.ep.Nodes)), acct.Key, tn.ep.ChainID)
		next := s.nonce(t)
		f.goEvery(validEvery, int(time.Minute/validEvery), func(k int) {
			raws := make([][]byte, validBatch)
			for j := range raws {
				raws[j] = s.tx(next+uint64(j), recipients[(k+j)%len(recipients)], nil)
			}
			errs := s.send(raws...)
			f.record(len(raws[0]), errs)
			if slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
				if n, err := s.pendingNonce(); err == nil {
					next = n
				}
			} else {
				next += uint64(len(raws))
			}
		})
	}
	return f
}

// startBigFlood sends valid 120 KB transactions, one every bigEvery from
// each account.
func startBigFlood(t *testing.T, tn *testnet, accts []chain.DevAccount) *flood {
	f := newFlood(fmt.Sprintf("valid %d KB transactions", bigTxData>>10), false, poolBounds...)
	for b, acct := range accts {
		s := newSender(t, tn.url((b+1)%len(tn.ep.Nodes)), acct.Key, tn.ep.ChainID)
		next := s.nonce(t)
		f.goEvery(bigEvery, int(time.Minute/bigEvery), func(k int) {
			raw := s.tx(next, recipients[k%len(recipients)], bigData)
			errs := s.send(raw)
			f.record(len(raw), errs)
			if errs[0] != nil {
				if n, err := s.pendingNonce(); err == nil {
					next = n
				}
			} else {
				next++
			}
		})
	}
	return f
}

// --- the proposal flood ---

// propShape is the size of a proposal to add an organization: a memo of
// memo bytes, a bundle of roots CA certificates, admins admin accounts,
// and nodes nodes, each with a fingerprint and validating.
type propShape struct {
	memo, roots, admins, nodes int
}

var (
	govABI     = func() abi.ABI { a, err := abi.JSON(strings.NewReader(system.GovernanceABI)); must(err); return a }()
	addOrgArgs = func() abi.Arguments {
		var out abi.Arguments
		for _, typ := range []string{"string", "string", "uint8", "uint64", "address[]", "address[]", "bytes32[]", "address[]", "bytes"} {
			ty, err := abi.NewType(typ, "", nil)
			must(err)
			out = append(out, abi.Argument{Type: ty})
		}
		return out
	}()
	// floodRoots are distinct CA certificates in PEM, made on first use.
	floodRootsMu sync.Mutex
	floodRoots   []string
)

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func rootsPEM(t *testing.T, n int) string {
	floodRootsMu.Lock()
	defer floodRootsMu.Unlock()
	for len(floodRoots) < n {
		ca, err := identity.NewRootCA("flood"+strconv.Itoa(len(floodRoots)), identity.CAOptions{})
		if err != nil {
			t.Fatal(err)
		}
		floodRoots = append(floodRoots, string(identity.EncodeCertsPEM(ca.Cert)))
	}
	return strings.Join(floodRoots[:n], "")
}

// addr derives a distinct address for proposal `seed`, list `what`, index i.
func addr(seed, what string, i int) common.Address {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return common.BytesToAddress(crypto.Keccak256([]byte(seed), []byte(what), b[:])[12:])
}

// calldata of propose(AddOrganization, args, memo) for a fresh
// organization named after seed.
func (s propShape) calldata(t *testing.T, seed string) []byte {
	admins := make([]common.Address, s.admins)
	for i := range admins {
		admins[i] = addr(seed, "admin", i)
	}
	nodes := make([]common.Address, s.nodes)
	fps := make([][32]byte, s.nodes)
	for i := range nodes {
		nodes[i] = addr(seed, "node", i)
		fps[i] = crypto.Keccak256Hash([]byte(seed), nodes[i][:])
	}
	args, err := addOrgArgs.Pack("flood-"+seed, rootsPEM(t, s.roots), uint8(3), uint64(1), admins, nodes, fps, nodes, []byte{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := govABI.Pack("propose", uint8(1), args, strings.Repeat("m", s.memo))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// callGov runs calldata from `from` on the governance contract at block
// `at` and returns the revert message, or "" when the call succeeds.
func callGov(url string, from common.Address, data []byte, at string) (string, error) {
	var out hexutil.Bytes
	err := rpcCall(url, &out, "eth_call", map[string]any{"from": from, "to": system.GovernanceAddress, "data": hexutil.Bytes(data)}, at)
	var de gethrpc.DataError
	if errors.As(err, &de) {
		return err.Error(), nil
	}
	if err != nil && strings.Contains(err.Error(), "reverted") {
		return err.Error(), nil
	}
	return "", err
}

// largestProposal finds, with calls only, the largest proposal the chain
// accepts from admin: a memo, then roots, admins and nodes, each the
// largest the chain takes given the ones before, within one transaction
// of the chain's maximum size. Whatever bounds the chain sets on
// arguments, this meets them; where it sets none, the transaction size is
// the bound.
func largestProposal(t *testing.T, url string, admin *ecdsa.PrivateKey) propShape {
	t.Helper()
	from := crypto.PubkeyToAddress(admin.PublicKey)
	s := &sender{key: admin, signer: types.LatestSignerForChainID(big.NewInt(chain.DefaultChainID))}
	probes := 0
	fits := func(sh propShape) bool {
		data := sh.calldata(t, "probe")
		if len(s.tx(0, system.GovernanceAddress, data)) > chain.DefaultMaxTxBytes {
			return false
		}
		probes++
		msg, err := callGov(url, from, data, "latest")
		if err != nil {
			t.Fatalf("probe a proposal: %v", err)
		}
		return msg == ""
	}
	sh := propShape{roots: 1, admins: 1}
	if !fits(sh) {
		t.Fatalf("the smallest proposal to add an organization is refused: %+v", sh)
	}
	grow := func(field *int) {
		lo, hi := *field, 2*(*field)+1
		at := func(v int) bool { old := *field; *field = v; ok := fits(sh); *field = old; return ok }
		for k := 0; k < 24 && at(hi); k++ {
			lo, hi = hi, 2*hi+1
		}
		for hi-lo > 1 {
			if mid := (lo + hi) / 2; at(mid) {
				lo = mid
			} else {
				hi = mid
			}
		}
		*field = lo
	}
	grow(&sh.memo)
	grow(&sh.roots)
	grow(&sh.admins)
	grow(&sh.nodes)
	t.Logf("largest proposal the chain accepts: memo %d bytes, %d roots, %d admins, %d nodes: %d bytes of calldata (%d calls to find it)",
		sh.memo, sh.roots, sh.admins, sh.nodes, len(sh.calldata(t, "probe")), probes)
	return sh
}

// proposalFlood is every organization admin proposing, each to its own
// node.
type proposalFlood struct {
	tn       *testnet
	shape    propShape
	admins   []common.Address
	refused  *refusals
	mu       sync.Mutex
	sent     map[common.Hash]propSent
	accepted map[int]int // by organization
	bytes    int
	quit     chan struct{}
	wg       sync.WaitGroup
}

type propSent struct {
	org  int
	data []byte
}

// startProposalFlood has every organization's admin send
// proposalsPerAdmin proposals of shape to its own node, one every
// proposalEvery, without waiting for the chain (an attacker does not
// wait). They are signed before the phase starts: the attacker's own
// work is not the nodes'.
func startProposalFlood(t *testing.T, tn *testnet, admins []*ecdsa.PrivateKey, shape propShape) *proposalFlood {
	f := &proposalFlood{tn: tn, shape: shape, refused: newRefusals(), sent: map[common.Hash]propSent{},
		accepted: map[int]int{}, quit: make(chan struct{})}
	for _, key := range admins {
		f.admins = append(f.admins, crypto.PubkeyToAddress(key.PublicKey))
	}
	var est hexutil.Uint64
	if err := rpcCall(tn.url(0), &est, "eth_estimateGas", map[string]any{"from": f.admins[0], "to": system.GovernanceAddress,
		"data": hexutil.Bytes(shape.calldata(t, "estimate"))}); err != nil {
		t.Fatalf("estimate a proposal's gas: %v", err)
	}
	gas := min(2*uint64(est), chain.DefaultTxGasLimit)
	gov := system.GovernanceAddress
	for k, key := range admins {
		s := newSender(t, tn.url(k), key, tn.ep.ChainID)
		next := s.nonce(t)
		txs := make([]*types.Transaction, proposalsPerAdmin)
		for i := range txs {
			txs[i] = types.MustSignNewTx(key, s.signer, &types.DynamicFeeTx{ChainID: s.signer.ChainID(), Nonce: next + uint64(i), Gas: gas,
				GasFeeCap: big.NewInt(1_000_000_000), GasTipCap: big.NewInt(1), To: &gov, Data: shape.calldata(t, fmt.Sprintf("o%dp%d", k, i))})
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			tick := time.NewTicker(proposalEvery)
			defer tick.Stop()
			for _, tx := range txs {
				raw, _ := tx.MarshalBinary()
				if err := s.send(raw)[0]; err != nil {
					f.refused.add(err.Error())
					return // the nonces after it would wait behind a gap
				}
				f.mu.Lock()
				f.sent[tx.Hash()] = propSent{org: k, data: tx.Data()}
				f.bytes += len(raw)
				f.mu.Unlock()
				select {
				case <-f.quit:
					return
				case <-tick.C:
				}
			}
		}()
	}
	return f
}

// stop ends the senders, waits (at most 30 s) for every sent proposal's
// receipt and sorts them into accepted and refused; the reason of a
// refusal is the revert of the same call replayed on the state after its
// block.
func (f *proposalFlood) stop() {
	close(f.quit)
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	pending := make(map[common.Hash]propSent, len(f.sent))
	for h, p := range f.sent {
		pending[h] = p
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(pending) > 0 && time.Now().Before(deadline) {
		for h, p := range pending {
			var r *types.Receipt
			if err := rpcCall(f.tn.url(p.org), &r, "eth_getTransactionReceipt", h); err != nil || r == nil {
				continue
			}
			delete(pending, h)
			if r.Status == types.ReceiptStatusSuccessful {
				f.accepted[p.org]++
				continue
			}
			msg, err := callGov(f.tn.url(p.org), f.admins[p.org], p.data, hexutil.EncodeBig(r.BlockNumber))
			switch {
			case err != nil:
				f.refused.add("replay: " + err.Error())
			case msg == "":
				f.refused.add("failed in its block, succeeds replayed after it (gas?)")
			default:
				f.refused.add(msg)
			}
		}
		if len(pending) > 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	for range pending {
		f.refused.add("no receipt within 30 s")
	}
}

func (f *proposalFlood) report(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	total := 0
	var per []string
	for k := 0; k < len(f.tn.ep.Nodes); k++ {
		total += f.accepted[k]
		per = append(per, fmt.Sprintf("org%d %d", k, f.accepted[k]))
	}
	t.Logf("proposal flood: %d proposals of %d KB (memo %d bytes, %d roots, %d admins, %d nodes) sent, %d accepted (%s); refusals: %s",
		len(f.sent), f.bytes/max(len(f.sent), 1)>>10, f.shape.memo, f.shape.roots, f.shape.admins, f.shape.nodes, total, strings.Join(per, ", "), f.refused)
}

// check: the flood met the bound on open proposals, and every refusal
// names it.
func (f *proposalFlood) check(t *testing.T) {
	t.Helper()
	if f.refused.total() == 0 {
		t.Errorf("proposal flood: all %d proposals accepted; the flood met no bound", len(f.sent))
	}
	if bad := f.refused.unexpected("execution reverted: open proposals at the bound"); len(bad) > 0 {
		t.Errorf("proposals refused for other reasons than the bound on open proposals: %s", strings.Join(bad, "; "))
	}
}

// --- whole-network checks ---

// checkHashes: every node has the same block hash at every height up to
// head, and each block links to the one before.
func checkHashes(t *testing.T, tn *testnet, head uint64) {
	t.Helper()
	var prev common.Hash
	for h := uint64(0); h <= head; h += 100 {
		top := min(h+99, head)
		var want []common.Hash
		for i := range tn.ep.Nodes {
			rc, err := gethrpc.Dial(tn.url(i))
			if err != nil {
				t.Fatal(err)
			}
			batch := make([]gethrpc.BatchElem, 0, top-h+1)
			hdrs := make([]*types.Header, top-h+1)
			for x := h; x <= top; x++ {
				batch = append(batch, gethrpc.BatchElem{Method: "eth_getBlockByNumber", Args: []any{hexutil.Uint64(x), false}, Result: &hdrs[x-h]})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err = rc.BatchCallContext(ctx, batch)
			cancel()
			rc.Close()
			if err != nil {
				t.Fatalf("node%d blocks %d-%d: %v", i, h, top, err)
			}
			for x, e := range batch {
				if e.Error != nil || hdrs[x] == nil {
					t.Fatalf("node%d block %d: %v", i, h+uint64(x), e.Error)
				}
				if i == 0 {
					want = append(want, hdrs[x].Hash())
					if h+uint64(x) > 0 && hdrs[x].ParentHash != prev {
						t.Fatalf("block %d does not link to block %d", h+uint64(x), h+uint64(x)-1)
					}
					prev = hdrs[x].Hash()
				} else if got := hdrs[x].Hash(); got != want[x] {
					t.Fatalf("block %d: node%d has %s, node0 %s", h+uint64(x), i, got, want[x])
				}
			}
		}
	}
}

// rssWatch samples every node's resident memory (VmRSS) every 250 ms and
// keeps each one's peak since the last call of phase.
type rssWatch struct {
	mu   sync.Mutex
	pids []int
	peak []int // MB
	quit chan struct{}
	done chan struct{}
}

func watchRSS(tn *testnet) *rssWatch {
	w := &rssWatch{pids: slices.Clone(tn.pids), peak: make([]int, len(tn.pids)), quit: make(chan struct{}), done: make(chan struct{})}
	w.sample()
	go func() {
		defer close(w.done)
		for k := 0; k < int(10*time.Minute/(250*time.Millisecond)); k++ {
			select {
			case <-w.quit:
				return
			case <-time.After(250 * time.Millisecond):
			}
			w.sample()
		}
	}()
	return w
}

func (w *rssWatch) sample() {
	for i, pid := range w.pids {
		if mb, err := rssMB(pid); err == nil {
			w.mu.Lock()
			w.peak[i] = max(w.peak[i], mb)
			w.mu.Unlock()
		}
	}
}

// phase returns each node's peak since the last call (sampling now too)
// and starts a new period.
func (w *rssWatch) phase(string) []int {
	w.sample()
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Clone(w.peak)
	clear(w.peak)
	return out
}

func (w *rssWatch) stop() {
	close(w.quit)
	<-w.done
}

// rssMB reads VmRSS of a process from /proc.
func rssMB(pid int) (int, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				return 0, fmt.Errorf("VmRSS of %d: %q", pid, line)
			}
			return kb >> 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}

// chainCounters are the nodes' counters that explain a phase, read from
// their metrics (sampled every second): blocks, transactions, round
// changes, and the time spent executing and committing blocks (summed
// over the nodes).
type chainCounters struct {
	height, txs, rounds                float64
	execSum, execN, commitSum, commitN float64
}

func readChainCounters(t *testing.T, tn *testnet) chainCounters {
	t.Helper()
	var c chainCounters
	hist := func(fams map[string]*dto.MetricFamily, name string) (sum, n float64) {
		if f := fams[name]; f != nil && len(f.GetMetric()) > 0 {
			h := f.GetMetric()[0].GetHistogram()
			return h.GetSampleSum(), float64(h.GetSampleCount())
		}
		return 0, 0
	}
	for i, node := range tn.ep.Nodes {
		fams := scrapeURL(t, node.Metrics)
		if i == 0 {
			c.height = gauge(fams, "charter_chain_height")
			c.txs = counter(fams, "charter_transactions_committed_total")
		}
		c.rounds += counter(fams, "charter_consensus_round_changes_total")
		es, en := hist(fams, "charter_block_execution_seconds")
		cs, cn := hist(fams, "charter_block_commit_seconds")
		c.execSum, c.execN, c.commitSum, c.commitN = c.execSum+es, c.execN+en, c.commitSum+cs, c.commitN+cn
	}
	return c
}

func (c chainCounters) since(b chainCounters) chainCounters {
	return chainCounters{c.height - b.height, c.txs - b.txs, c.rounds - b.rounds,
		c.execSum - b.execSum, c.execN - b.execN, c.commitSum - b.commitSum, c.commitN - b.commitN}
}

func (c chainCounters) String() string {
	ms := func(sum, n float64) float64 {
		if n == 0 {
			return 0
		}
		return 1000 * sum / n
	}
	return fmt.Sprintf("%.0f blocks, %.0f transactions, %.0f round changes; per block executed %.0f ms, committed %.0f ms",
		c.height, c.txs, c.rounds, ms(c.execSum, c.execN), ms(c.commitSum, c.commitN))
}
