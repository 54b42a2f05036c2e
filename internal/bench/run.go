package bench

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
)

// workersPerEndpoint is how many submitting connections each node gets.
const workersPerEndpoint = 4

func (r *runner) run(ctx context.Context) (*Result, error) {
	var startHead hexutil.Uint64
	if err := r.call(ctx, &startHead, "eth_blockNumber"); err != nil {
		return nil, err
	}
	workers := min(len(r.senders), workersPerEndpoint*len(r.clients))
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout+time.Duration(float64(len(r.txs))/max(r.cfg.Rate, 1)*float64(time.Second)))
	defer cancel()

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

	res := &Result{Kind: r.cfg.Kind, Endpoints: len(r.clients), Senders: len(r.senders), Rate: r.cfg.Rate, Sent: len(r.txs)}
	blocks, last, err := r.watch(ctx, uint64(startHead), start, submitted)
	if err != nil {
		return nil, err
	}
	<-submitted
	res.Blocks = len(blocks)
	var lats []float64
	for _, st := range r.txs {
		if !st.done {
			continue
		}
		res.Confirmed++
	}
	res.Failed = len(r.txs) - res.Confirmed
	// Receipt status, checked after the measurement so as not to load the
	// nodes during it: a reverted transaction is a failure.
	reverted, err := r.countReverted(context.Background(), blocks)
	if err != nil {
		return nil, err
	}
	res.Confirmed -= reverted
	res.Failed += reverted
	for _, p := range r.points {
		lats = append(lats, p.LatencyMs)
	}
	res.Points = r.points
	res.Latency = summarize(lats)
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
// those whose scheduled time has come.
func (r *runner) submit(ctx context.Context, w, workers int, start time.Time) {
	var mine []int
	for i := range r.txs {
		if (i%len(r.senders))%workers == w {
			mine = append(mine, i)
		}
	}
	submitLoop(ctx, submitSpec{
		client: r.clients[w%len(r.clients)], method: "eth_sendRawTransaction", rate: r.cfg.Rate, batch: r.cfg.Batch, start: start,
		raw:  func(i int) []byte { raw, _ := r.txs[i].tx.MarshalBinary(); return raw },
		sent: func(i int, at int64) { r.txs[i].sent.Store(at) },
		result: func(i int, _ common.Hash, err error) {
			if err != nil {
				r.txs[i].sent.Store(-1)
				r.noteError(err)
			}
		},
	}, mine)
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
// transaction is in a block (or refused), recording latencies.
func (r *runner) watch(ctx context.Context, from uint64, start time.Time, submitted <-chan struct{}) (blocks []uint64, last time.Time, err error) {
	next := from + 1
	remaining := len(r.txs)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var confirmedLastTick, confirmed int
	last = start
	for remaining > int(r.refused.Load()) {
		select {
		case <-ctx.Done():
			return blocks, last, nil // what is not in by now counts as failed
		case <-tick.C:
			if r.cfg.Progress != nil {
				fmt.Fprintf(r.cfg.Progress, "bench: %6.1fs  confirmed %d/%d  %d tx/s  height %d  refused %d\n",
					time.Since(start).Seconds(), confirmed, len(r.txs), confirmed-confirmedLastTick, next-1, r.refused.Load())
			}
			confirmedLastTick = confirmed
		default:
		}
		var head hexutil.Uint64
		if err := r.call(ctx, &head, "eth_blockNumber"); err != nil {
			if ctx.Err() != nil {
				return blocks, last, nil
			}
			return nil, last, fmt.Errorf("follow the chain: %w", err)
		}
		if uint64(head) < next {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		for ; next <= uint64(head); next++ {
			var blk struct {
				Transactions []common.Hash `json:"transactions"`
			}
			if err := r.call(ctx, &blk, "eth_getBlockByNumber", hexutil.Uint64(next), false); err != nil {
				return nil, last, fmt.Errorf("block %d: %w", next, err)
			}
			seen := time.Now()
			ours := false
			for _, h := range blk.Transactions {
				st := r.byHash[h]
				if st == nil || st.done {
					continue
				}
				st.done, ours = true, true
				remaining--
				confirmed++
				if sent := st.sent.Load(); sent > 0 {
					r.points = append(r.points, Point{
						SentMs:    float64(sent-start.UnixNano()) / 1e6,
						LatencyMs: float64(seen.UnixNano()-sent) / 1e6,
					})
				}
				last = seen
			}
			if ours {
				blocks = append(blocks, next)
			}
		}
	}
	return blocks, last, nil
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

// countReverted counts our transactions with status 0 in the given blocks.
func (r *runner) countReverted(ctx context.Context, blocks []uint64) (int, error) {
	reverted := 0
	for _, n := range blocks {
		var receipts []struct {
			TxHash common.Hash    `json:"transactionHash"`
			Status hexutil.Uint64 `json:"status"`
		}
		if err := r.call(ctx, &receipts, "eth_getBlockReceipts", hexutil.Uint64(n)); err != nil {
			return 0, fmt.Errorf("receipts of block %d: %w", n, err)
		}
		for _, rc := range receipts {
			if r.byHash[rc.TxHash] != nil && rc.Status == 0 {
				reverted++
			}
		}
	}
	return reverted, nil
}
