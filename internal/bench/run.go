package bench

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
)

// workersPerEndpoint is how many submitting connections each node gets.
const workersPerEndpoint = 4

// maxInFlight bounds the transactions submitted and not yet seen in a
// block (about 100 bytes each): when the chain falls this far behind, the
// submitters wait, and the run stops being open loop.
const maxInFlight = 256 * 1024

// chunkTxs is how many of its transactions a submitter lines up at a time.
const chunkTxs = 4096

// sendRec is what the run keeps of a transaction between its submission
// and its block.
type sendRec struct {
	sent int64 // unix nanos
	kind uint8
}

// inflight is the set of submitted transactions not yet seen in a block,
// at most maxInFlight: a submitter adds before its request leaves (add
// blocks while the set is full), the watcher takes on inclusion, a
// submitter drops on refusal. Goroutine-safe.
type inflight struct {
	slots chan struct{} // one token per entry: the bound
	mu    struct {
		sync.Mutex
		m map[common.Hash]sendRec
	}
}

func newInflight(limit int) *inflight {
	f := &inflight{slots: make(chan struct{}, limit)}
	f.mu.m = make(map[common.Hash]sendRec)
	return f
}

// add records h; false if ctx ended while the set was full.
func (f *inflight) add(ctx context.Context, h common.Hash, rec sendRec) bool {
	select {
	case f.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	f.mu.Lock()
	f.mu.m[h] = rec
	f.mu.Unlock()
	return true
}

// take removes h and returns what was kept of it.
func (f *inflight) take(h common.Hash) (sendRec, bool) {
	f.mu.Lock()
	rec, ok := f.mu.m[h]
	if ok {
		delete(f.mu.m, h)
	}
	f.mu.Unlock()
	if ok {
		<-f.slots
	}
	return rec, ok
}

func (f *inflight) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.mu.m)
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	var startHead hexutil.Uint64
	if err := r.call(ctx, &startHead, "eth_blockNumber"); err != nil {
		return nil, err
	}
	r.flight = newInflight(min(r.total, maxInFlight))
	workers := min(len(r.senders), workersPerEndpoint*len(r.clients))
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout+time.Duration(float64(r.total)/max(r.cfg.Rate, 1)*float64(time.Second)))
	defer cancel()

	var sc *scraper
	scrapeDone := make(chan struct{})
	scrapeCtx, stopScrape := context.WithCancel(ctx)
	if len(r.cfg.Metrics) > 0 {
		sc = newScraper(r.cfg.Metrics)
		sc.scrapeAll(scrapeCtx) // the baseline, before any load
		go func() { defer close(scrapeDone); sc.run(scrapeCtx) }()
	} else {
		close(scrapeDone)
	}

	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r.submit(ctx, w, workers, start)
		}(w)
	}
	submitted := make(chan struct{})
	go func() { wg.Wait(); close(submitted) }()

	rec := newRecorder(uint64(start.UnixNano()))
	first, lastBlock, blocks, last, err := r.watch(ctx, uint64(startHead), start, submitted, rec, sc)
	cancel() // a watch that ended early stops the submitters
	<-submitted
	if sc != nil {
		sc.scrapeAll(context.Background()) // the final values
	}
	stopScrape()
	<-scrapeDone
	if err != nil {
		return nil, err
	}
	res := &Result{Kind: r.cfg.Kind, Endpoints: len(r.clients), Senders: len(r.senders), Rate: r.cfg.Rate, Blocks: blocks,
		TargetS: r.cfg.Duration.Seconds()}
	// Receipt status, checked after the measurement so as not to load the
	// nodes during it: a reverted transaction is a failure.
	var reverted [numTxKinds]int
	if first > 0 {
		if reverted, err = r.countReverted(context.Background(), first, lastBlock); err != nil {
			return nil, err
		}
	}
	for k := range numTxKinds {
		sent := int(r.sentN[k].Load())
		conf := rec.perKind[k] - reverted[k]
		res.Sent += sent
		res.Confirmed += conf
		if r.cfg.Kind == KindMixed {
			if res.ByKind == nil {
				res.ByKind = map[string]*KindRun{}
			}
			res.ByKind[txKindNames[k]] = &KindRun{Sent: sent, Confirmed: conf, Failed: sent - conf, Latency: latencyOf(rec.kinds[k])}
		}
	}
	if r.cfg.Duration == 0 {
		res.Sent = r.total // unsent ones count as failed
	}
	res.Failed = res.Sent - res.Confirmed
	if r.cfg.Kind == KindMixed {
		res.Mix = r.cfg.mix().String()
	}
	res.Points = rec.points
	res.Series = rec.series
	res.Latency = latencyOf(rec.all)
	if sc != nil {
		res.Consensus = sc.summary()
	}
	res.DurationS = last.Sub(start).Seconds()
	if res.DurationS > 0 {
		res.TPS = float64(res.Confirmed) / res.DurationS
	}
	r.errMu.Lock()
	for e := range r.errs {
		res.Errors = append(res.Errors, e)
	}
	r.errMu.Unlock()
	sort.Strings(res.Errors)
	return res, nil
}

// submit sends the transactions of worker w's senders in order, batching
// those whose scheduled time has come, chunkTxs at a time.
func (r *runner) submit(ctx context.Context, w, workers int, start time.Time) {
	var hashes [chunkTxs]common.Hash // of the chunk's transactions, by position
	pos := map[int]int{}             // index in the run → position in the chunk
	chunk := make([]int, 0, chunkTxs)
	spec := submitSpec{
		client: r.clients[w%len(r.clients)], method: "eth_sendRawTransaction", rate: r.cfg.Rate, batch: r.cfg.Batch, start: start,
		raw: func(i int) []byte {
			tx := r.signed(i)
			hashes[pos[i]] = tx.Hash()
			raw, _ := tx.MarshalBinary()
			return raw
		},
		sent: func(i int, at int64) {
			k := r.kindOf(i)
			r.sentN[k].Add(1)
			r.flight.add(ctx, hashes[pos[i]], sendRec{sent: at, kind: uint8(k)})
		},
		result: func(i int, _ common.Hash, err error) {
			if err != nil {
				if _, ok := r.flight.take(hashes[pos[i]]); ok {
					r.refused[r.kindOf(i)].Add(1)
				}
				r.noteError(err)
			}
		},
	}
	for i := 0; i < r.total && ctx.Err() == nil; {
		chunk = chunk[:0]
		clear(pos)
		for ; i < r.total && len(chunk) < chunkTxs; i++ {
			if (i%len(r.senders))%workers == w {
				pos[i] = len(chunk)
				chunk = append(chunk, i)
			}
		}
		submitLoop(ctx, spec, chunk)
	}
}

// signed is transaction i: pre-signed, or signed now.
func (r *runner) signed(i int) *types.Transaction {
	if r.txs != nil {
		return r.txs[i]
	}
	return r.txAt(i)
}

// submitSpec is what submitLoop sends and where it reports.
type submitSpec struct {
	client *gethrpc.Client
	method string  // eth_sendRawTransaction or eea_sendRawTransaction
	rate   float64 // transactions per second over the whole run; 0: as fast as possible
	batch  int     // requests per JSON-RPC batch
	start  time.Time
	raw    func(i int) []byte
	sent   func(i int, unixNanos int64)             // before the request leaves
	result func(i int, hash common.Hash, err error) // once per transaction, after its answer
}

// submitLoop sends transactions mine (indices into the run, in the order
// they must arrive) through one connection: with a rate, transaction i is
// due at start + i/rate and a batch holds only those already due; without,
// full batches back to back. It returns when all are sent or ctx ends.
func submitLoop(ctx context.Context, s submitSpec, mine []int) {
	due := func(i int) time.Time { return s.start.Add(time.Duration(float64(i) / s.rate * float64(time.Second))) }
	for len(mine) > 0 {
		if ctx.Err() != nil {
			return
		}
		n := 0
		if s.rate > 0 {
			if wait := time.Until(due(mine[0])); wait > 0 {
				time.Sleep(wait)
			}
			now := time.Now()
			for n < len(mine) && n < s.batch && !due(mine[n]).After(now) {
				n++
			}
		} else {
			n = min(s.batch, len(mine))
		}
		batch := make([]gethrpc.BatchElem, n)
		for k := 0; k < n; k++ {
			batch[k] = gethrpc.BatchElem{Method: s.method, Args: []any{hexutil.Encode(s.raw(mine[k]))}, Result: new(common.Hash)}
		}
		sent := time.Now().UnixNano()
		for k := 0; k < n; k++ {
			s.sent(mine[k], sent)
		}
		var err error
		if n == 1 {
			err = s.client.CallContext(ctx, batch[0].Result, batch[0].Method, batch[0].Args...)
			batch[0].Error = err
		} else {
			err = s.client.BatchCallContext(ctx, batch)
		}
		for k := 0; k < n; k++ {
			e := batch[k].Error
			if e == nil {
				e = err
			}
			s.result(mine[k], *batch[k].Result.(*common.Hash), e)
		}
		mine = mine[n:]
	}
}

// watch follows the chain on the first endpoint until every submitted
// transaction is in a block (or refused) and submission has ended, or ctx
// ends; it records latencies in rec, prints a progress line and closes a
// second of rec's series every second. It returns the first and last
// blocks that hold transactions of the run (0 if none), how many blocks
// did, and when the last was seen.
func (r *runner) watch(ctx context.Context, from uint64, start time.Time, submitted <-chan struct{}, rec *recorder, sc *scraper) (first, lastBlock uint64, blocks int, last time.Time, err error) {
	next := from + 1
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var confirmed, confirmedLastTick, sentLastTick, roundsLastTick int
	last = start
	sentTotal := func() int {
		n := 0
		for k := range r.sentN {
			n += int(r.sentN[k].Load())
		}
		return n
	}
	refusedTotal := func() int {
		n := 0
		for k := range r.refused {
			n += int(r.refused[k].Load())
		}
		return n
	}
	closeSecond := func() {
		sent := sentTotal()
		var d *int
		if sc != nil {
			rounds := sc.rounds()
			d = new(int)
			*d, roundsLastTick = rounds-roundsLastTick, rounds
		}
		s := rec.tick(time.Since(start).Seconds(), sent-sentLastTick, next-1, d)
		if r.cfg.Progress != nil {
			fmt.Fprintf(r.cfg.Progress, "bench: %6.1fs  confirmed %d/%d  %d tx/s  height %d  refused %d\n",
				s.T, confirmed, r.total, confirmed-confirmedLastTick, next-1, refusedTotal())
		}
		sentLastTick, confirmedLastTick = sent, confirmed
	}
	var done atomic.Bool
	go func() { <-submitted; done.Store(true) }()
	for !done.Load() || r.flight.len() > 0 {
		select {
		case <-ctx.Done():
			return first, lastBlock, blocks, last, nil // what is not in by now counts as failed
		case <-tick.C:
			closeSecond()
		default:
		}
		var head hexutil.Uint64
		if err := r.call(ctx, &head, "eth_blockNumber"); err != nil {
			if ctx.Err() != nil {
				return first, lastBlock, blocks, last, nil
			}
			return 0, 0, 0, last, fmt.Errorf("follow the chain: %w", err)
		}
		if uint64(head) < next {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		blks, err := r.readBlocks(ctx, next, uint64(head))
		if err != nil {
			if ctx.Err() != nil {
				return first, lastBlock, blocks, last, nil
			}
			return 0, 0, 0, last, err
		}
		seen := time.Now()
		for _, txs := range blks {
			ours := false
			for _, h := range txs {
				sr, ok := r.flight.take(h)
				if !ok {
					continue
				}
				ours = true
				confirmed++
				rec.add(int(sr.kind), float64(sr.sent-start.UnixNano())/1e6, float64(seen.UnixNano()-sr.sent)/1e6)
				last = seen
			}
			if ours {
				blocks++
				if first == 0 {
					first = next
				}
				lastBlock = next
			}
			next++
		}
	}
	if len(rec.series) == 0 || rec.series[len(rec.series)-1].T < time.Since(start).Seconds()-0.5 {
		closeSecond() // the last, partial second
	}
	return first, lastBlock, blocks, last, nil
}

// followBatch bounds the blocks the follower reads in one request.
const followBatch = 64

// readBlocks reads the transaction hashes of blocks from to to, or of the
// first of them: as many as one request gives (at most followBatch). A
// fast chain makes several blocks between two reads of the head, and a
// request's round trip for each would count in their transactions'
// latency. A block past the node's bound of a batch's answer is read
// alone in the next call.
func (r *runner) readBlocks(ctx context.Context, from, to uint64) ([][]common.Hash, error) {
	blks := make([]struct {
		Transactions []common.Hash `json:"transactions"`
	}, min(to, from+followBatch-1)-from+1)
	batch := make([]gethrpc.BatchElem, len(blks))
	for i := range batch {
		batch[i] = gethrpc.BatchElem{Method: "eth_getBlockByNumber", Args: []any{hexutil.Uint64(from + uint64(i)), false}, Result: &blks[i]}
	}
	if err := r.clients[0].BatchCallContext(ctx, batch); err != nil {
		return nil, fmt.Errorf("block %d: %w", from, err)
	}
	got := len(batch)
	for i := range batch {
		if batch[i].Error != nil {
			got = i
			break
		}
	}
	if got == 0 { // the first block alone: it comes, or its error is told
		if err := r.call(ctx, &blks[0], "eth_getBlockByNumber", hexutil.Uint64(from), false); err != nil {
			return nil, fmt.Errorf("block %d: %w", from, err)
		}
		got = 1
	}
	out := make([][]common.Hash, got)
	for i := range out {
		out[i] = blks[i].Transactions
	}
	return out, nil
}

// summarize is the latency summary of lats (milliseconds; sorted in place).
func summarize(lats []float64) Latency {
	sort.Float64s(lats)
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return lats[min(len(lats)-1, int(p*float64(len(lats))))]
	}
	return Latency{P50: pct(0.50), P95: pct(0.95), P99: pct(0.99), Max: pct(1)}
}

// countReverted counts, per kind, the transactions of the run's senders
// with status 0 in blocks first to last. A transaction's kind is read
// from its receipt: a creation has a contract address, a call to the
// token is an ERC-20 transfer, one to the hot contract a hot call.
func (r *runner) countReverted(ctx context.Context, first, last uint64) ([numTxKinds]int, error) {
	var reverted [numTxKinds]int
	ours := make(map[common.Address]bool, len(r.senders))
	for _, s := range r.senders {
		ours[s] = true
	}
	type receipt struct {
		From     common.Address  `json:"from"`
		To       *common.Address `json:"to"`
		Contract *common.Address `json:"contractAddress"`
		Status   hexutil.Uint64  `json:"status"`
	}
	// receiptBlocks blocks' receipts per batch request: a response of a
	// few MiB at most; a batch the node refuses (a response above its
	// bound, with blocks of thousands of transactions) is asked again in
	// halves, down to one block a request.
	const receiptBlocks = 20
	var read func(from, to uint64) ([]receipt, error)
	read = func(from, to uint64) ([]receipt, error) {
		receipts := make([][]receipt, to-from+1)
		batch := make([]gethrpc.BatchElem, len(receipts))
		for i := range batch {
			batch[i] = gethrpc.BatchElem{Method: "eth_getBlockReceipts", Args: []any{hexutil.Uint64(from + uint64(i))}, Result: &receipts[i]}
		}
		err := r.batchCall(ctx, batch)
		if err == nil {
			return slices.Concat(receipts...), nil
		}
		if from == to || ctx.Err() != nil {
			return nil, fmt.Errorf("receipts of blocks %d to %d: %w", from, to, err)
		}
		mid := from + (to-from)/2
		lo, err := read(from, mid)
		if err != nil {
			return nil, err
		}
		hi, err := read(mid+1, to)
		return append(lo, hi...), err
	}
	for from := first; from <= last; from += receiptBlocks {
		receipts, err := read(from, min(last, from+receiptBlocks-1))
		if err != nil {
			return reverted, err
		}
		for _, rc := range receipts {
			if !ours[rc.From] || rc.Status != 0 {
				continue
			}
			switch {
			case rc.To == nil:
				reverted[txCreate]++
			case *rc.To == r.token && r.token != (common.Address{}):
				reverted[txERC20]++
			case *rc.To == r.hot && r.hot != (common.Address{}):
				reverted[txHot]++
			default:
				reverted[txTransfer]++
			}
		}
	}
	return reverted, nil
}
