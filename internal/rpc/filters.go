package rpc

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth/filters"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/events"
	"github.com/charter-ledger/charter/internal/txpool"
)

// hub receives committed blocks and new pending transactions once and
// fans them out to subscribers without ever blocking the publisher: a
// subscriber whose queue is full is dropped (its gone channel closes).
type hub struct {
	queue int // events queued per subscriber
	mu    sync.Mutex
	subs  map[*hubSub]struct{}
}

type hubSub struct {
	h     *hub
	chain bool // receives events.ChainEvent; otherwise []*types.Transaction
	ch    chan any
	gone  chan struct{}
	once  sync.Once
}

func (s *hubSub) close() {
	s.once.Do(func() {
		s.h.mu.Lock()
		delete(s.h.subs, s)
		s.h.mu.Unlock()
		close(s.gone)
	})
}

func (h *hub) subscribe(chain bool) *hubSub {
	s := &hubSub{h: h, chain: chain, ch: make(chan any, h.queue), gone: make(chan struct{})}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *hub) publish(chain bool, v any) {
	h.mu.Lock()
	var slow []*hubSub
	for s := range h.subs {
		if s.chain != chain {
			continue
		}
		select {
		case s.ch <- v:
		default:
			slow = append(slow, s)
		}
	}
	h.mu.Unlock()
	for _, s := range slow {
		s.close()
	}
}

type filterKind int

const (
	logsFilter filterKind = iota
	blocksFilter
	pendingFilter
	privLogsFilter // priv_newFilter: a privacy group's private logs (privfilters.go)
)

type filter struct {
	kind     filterKind
	crit     filters.FilterCriteria
	owner    string // the client that installed it (clientOf)
	next     uint64 // first block not yet reported
	lastPoll time.Time
	pending  *hubSub
	group    common.Hash // privLogsFilter: the privacy group
}

// filterSystem serves eth_getLogs, polled filters and subscriptions. It
// bounds installed filters per client and in all, and subscriptions per
// WebSocket connection and in all.
type filterSystem struct {
	b       Backend
	lim     queryLimits
	now     func() time.Time
	hub     hub
	filters *counter // installed filters by owner
	subs    *counter // open subscriptions by connection
	mu      sync.Mutex
	all     map[gethrpc.ID]*filter // bounded by filters.total
	quit    chan struct{}
	wg      sync.WaitGroup
}

func newFilterSystem(b Backend, cfg *Config) *filterSystem {
	lim := cfg.query
	fs := &filterSystem{b: b, lim: lim, now: cfg.now, all: make(map[gethrpc.ID]*filter), quit: make(chan struct{}),
		filters: newCounter(cfg.FiltersPerClient, lim.filters, "filters", "--rpc.filters-per-client", "for this client"),
		subs:    newCounter(cfg.SubscriptionsPerConn, lim.subscriptions, "subscriptions", "--ws.max-subscriptions", "on this WebSocket connection"),
	}
	fs.hub.subs = make(map[*hubSub]struct{})
	fs.hub.queue = lim.subscriptionChan
	chainCh := make(chan events.ChainEvent, 64)
	txCh := make(chan txpool.NewTxsEvent, 64)
	chainSub := b.SubscribeChainEvent(chainCh)
	txSub := b.SubscribeNewTxsEvent(txCh)
	fs.wg.Add(1)
	go func() {
		defer fs.wg.Done()
		defer chainSub.Unsubscribe()
		defer txSub.Unsubscribe()
		janitor := time.NewTicker(lim.filterJanitor)
		defer janitor.Stop()
		for {
			select {
			case ev := <-chainCh:
				fs.hub.publish(true, ev)
			case ev := <-txCh:
				fs.hub.publish(false, ev.Txs)
			case <-janitor.C:
				fs.expire()
			case <-fs.quit:
				return
			}
		}
	}()
	return fs
}

func (fs *filterSystem) stop() {
	close(fs.quit)
	fs.wg.Wait()
}

// expire removes the filters not polled for the filter timeout.
func (fs *filterSystem) expire() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	now := fs.now()
	for id, f := range fs.all {
		if now.Sub(f.lastPoll) > fs.lim.filterTimeout {
			fs.removeLocked(id, f)
		}
	}
}

// dropClient removes every filter a client installed (its WebSocket
// connection closed).
func (fs *filterSystem) dropClient(client string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for id, f := range fs.all {
		if f.owner == client {
			fs.removeLocked(id, f)
		}
	}
}

func (fs *filterSystem) removeLocked(id gethrpc.ID, f *filter) {
	if f.pending != nil {
		f.pending.close()
	}
	delete(fs.all, id)
	fs.filters.release(f.owner)
}

// install adds a filter for the client of ctx, within its bounds.
func (fs *filterSystem) install(ctx context.Context, f *filter) (gethrpc.ID, error) {
	f.owner = clientOf(ctx)
	if err := fs.filters.acquire(f.owner); err != nil {
		return "", err
	}
	if f.kind == pendingFilter {
		f.pending = fs.hub.subscribe(false)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f.lastPoll = fs.now()
	f.next = fs.b.CurrentHeader().Number.Uint64() + 1
	id := gethrpc.NewID()
	fs.all[id] = f
	return id, nil
}

// resolveRange turns filter bounds into block numbers.
func (fs *filterSystem) resolveRange(from, to *big.Int) (uint64, uint64, error) {
	num := func(v *big.Int) (uint64, error) {
		if v == nil {
			return fs.b.CurrentHeader().Number.Uint64(), nil
		}
		if !v.IsInt64() {
			return 0, invalidParams("invalid argument 0: block number out of range")
		}
		n := gethrpc.BlockNumber(v.Int64())
		if n >= 0 {
			return uint64(n), nil
		}
		h, err := headerByNumber(fs.b, n)
		if err != nil {
			return 0, err
		}
		return h.Number.Uint64(), nil
	}
	f, err := num(from)
	if err != nil {
		return 0, 0, err
	}
	t, err := num(to)
	if err != nil {
		return 0, 0, err
	}
	if head := fs.b.CurrentHeader().Number.Uint64(); t > head {
		t = head
	}
	return f, t, nil
}

// logs returns the logs matching crit in blocks [from, to].
func (fs *filterSystem) logs(ctx context.Context, crit *filters.FilterCriteria, from, to uint64) ([]*types.Log, error) {
	out := []*types.Log{}
	if from > to {
		return out, nil
	}
	// The SQL index answers the blocks it holds, whatever the range; the
	// blocks past it (a head it has not reached yet) are walked, within
	// the range limit.
	walkFrom := from
	if logs, upTo, ok, err := fs.indexedLogs(ctx, crit, from, to); ok {
		if err != nil {
			return nil, err
		}
		if upTo >= to {
			return logs, nil
		}
		out, walkFrom = logs, upTo+1
	}
	if to-walkFrom+1 > fs.lim.logRange {
		return nil, serverError("query spans %d blocks, at most %d allowed (a node with --index answers longer ranges from its SQL index)", to-walkFrom+1, fs.lim.logRange)
	}
	for n := walkFrom; n <= to; n++ {
		if err := ctx.Err(); err != nil {
			return nil, serverError("query aborted: %v", err)
		}
		h := fs.b.HeaderByNumber(n)
		if h == nil {
			break
		}
		var err error
		if out, err = fs.blockLogs(h, crit, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// indexedLogs answers from the node's log index, when it has one, for
// the blocks from from up to to that it holds: the logs and the last
// block they cover (ok false: walk the headers instead). The answer and
// its limits are those of the walk. An index that fails for another
// reason than the end of ctx is passed by, not reported.
func (fs *filterSystem) indexedLogs(ctx context.Context, crit *filters.FilterCriteria, from, to uint64) ([]*types.Log, uint64, bool, error) {
	lb, ok := fs.b.(LogIndexBackend)
	if !ok || len(crit.Topics) > 4 {
		return nil, 0, false, nil
	}
	ix := lb.LogIndex()
	if ix == nil {
		return nil, 0, false, nil
	}
	n, has := ix.LogsIndexed()
	if !has || n < from {
		return nil, 0, false, nil
	}
	upTo := min(to, n)
	logs, err := ix.FilterLogs(ctx, from, upTo, crit.Addresses, crit.Topics, fs.lim.logs)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, true, serverError("query aborted: %v", ctx.Err())
		}
		return nil, 0, false, nil
	}
	if len(logs) > fs.lim.logs {
		return nil, 0, true, tooManyLogs(fs.lim.logs)
	}
	if logs == nil {
		logs = []*types.Log{}
	}
	return logs, upTo, true, nil
}

func (fs *filterSystem) blockLogs(h *types.Header, crit *filters.FilterCriteria, out []*types.Log) ([]*types.Log, error) {
	if !bloomMatches(h.Bloom, crit) {
		return out, nil
	}
	if err := bodyKept(fs.b, h.Number.Uint64()); err != nil {
		return nil, err
	}
	receipts, err := fs.b.GetReceipts(h.Number.Uint64())
	if err != nil {
		return nil, internalError(err)
	}
	for _, r := range receipts {
		for _, l := range r.Logs {
			if logMatches(l, crit) {
				if len(out) >= fs.lim.logs {
					return nil, tooManyLogs(fs.lim.logs)
				}
				out = append(out, l)
			}
		}
	}
	return out, nil
}

func bloomMatches(bloom types.Bloom, crit *filters.FilterCriteria) bool {
	if len(crit.Addresses) > 0 {
		any := false
		for _, a := range crit.Addresses {
			if bloom.Test(a.Bytes()) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	for _, alts := range crit.Topics {
		if len(alts) == 0 {
			continue
		}
		any := false
		for _, t := range alts {
			if bloom.Test(t.Bytes()) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	return true
}

func logMatches(l *types.Log, crit *filters.FilterCriteria) bool {
	if len(crit.Addresses) > 0 {
		found := false
		for _, a := range crit.Addresses {
			if a == l.Address {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if len(crit.Topics) > len(l.Topics) {
		return false
	}
	for i, alts := range crit.Topics {
		if len(alts) == 0 {
			continue
		}
		found := false
		for _, t := range alts {
			if t == l.Topics[i] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// GetLogs is eth_getLogs.
func (api *EthAPI) GetLogs(ctx context.Context, crit filters.FilterCriteria) ([]*types.Log, error) {
	fs := api.filters
	if crit.BlockHash != nil && (crit.FromBlock != nil || crit.ToBlock != nil) {
		return nil, invalidParams("invalid argument 0: blockHash excludes fromBlock and toBlock")
	}
	ctx, done, err := api.heavy(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if crit.BlockHash != nil {
		h := api.b.HeaderByHash(*crit.BlockHash)
		if h == nil {
			return nil, serverError("unknown block %s", crit.BlockHash.Hex())
		}
		return fs.blockLogs(h, &crit, []*types.Log{})
	}
	from, to, err := fs.resolveRange(crit.FromBlock, crit.ToBlock)
	if err != nil {
		return nil, err
	}
	if crit.FromBlock != nil && crit.ToBlock != nil && from > to {
		return nil, invalidParams("invalid argument 0: fromBlock %d is after toBlock %d", from, to)
	}
	return fs.logs(ctx, &crit, from, to)
}

// NewFilter is eth_newFilter.
func (api *EthAPI) NewFilter(ctx context.Context, crit filters.FilterCriteria) (gethrpc.ID, error) {
	if crit.BlockHash != nil {
		return "", invalidParams("invalid argument 0: blockHash is not allowed in a filter")
	}
	return api.filters.install(ctx, &filter{kind: logsFilter, crit: crit})
}

// NewBlockFilter is eth_newBlockFilter.
func (api *EthAPI) NewBlockFilter(ctx context.Context) (gethrpc.ID, error) {
	return api.filters.install(ctx, &filter{kind: blocksFilter})
}

// NewPendingTransactionFilter is eth_newPendingTransactionFilter.
func (api *EthAPI) NewPendingTransactionFilter(ctx context.Context) (gethrpc.ID, error) {
	return api.filters.install(ctx, &filter{kind: pendingFilter})
}

// UninstallFilter is eth_uninstallFilter. A private filter is not the
// eth namespace's: priv_uninstallFilter removes it.
func (api *EthAPI) UninstallFilter(id gethrpc.ID) bool {
	fs := api.filters
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f, ok := fs.all[id]
	if ok && f.kind != privLogsFilter {
		fs.removeLocked(id, f)
		return true
	}
	return false
}

var errFilterNotFound = &Error{Code: codeServer, Msg: "filter not found"}

// GetFilterChanges is eth_getFilterChanges: what happened since the last poll.
func (api *EthAPI) GetFilterChanges(ctx context.Context, id gethrpc.ID) (any, error) {
	fs := api.filters
	fs.mu.Lock()
	f, ok := fs.all[id]
	if !ok || f.kind == privLogsFilter {
		fs.mu.Unlock()
		return nil, errFilterNotFound
	}
	f.lastPoll = fs.now()
	head := fs.b.CurrentHeader().Number.Uint64()
	from := f.next
	to := head
	if to >= from && to-from+1 > fs.lim.logRange {
		to = from + fs.lim.logRange - 1
	}
	if to >= from {
		f.next = to + 1
	}
	kind, crit, pending := f.kind, f.crit, f.pending
	fs.mu.Unlock()

	switch kind {
	case blocksFilter:
		hashes := []common.Hash{}
		for n := from; n <= to; n++ {
			if h := fs.b.HeaderByNumber(n); h != nil {
				hashes = append(hashes, h.Hash())
			}
		}
		return hashes, nil
	case pendingFilter:
		hashes := []common.Hash{}
		for len(hashes) < fs.lim.pendingHashes {
			select {
			case v := <-pending.ch:
				for _, tx := range v.([]*types.Transaction) {
					hashes = append(hashes, tx.Hash())
				}
				continue
			case <-pending.gone:
				api.UninstallFilter(id)
				return nil, serverError("filter dropped: more than %d events were not polled", fs.lim.subscriptionChan)
			default:
			}
			break
		}
		return hashes, nil
	default:
		ctx, done, err := api.heavy(ctx)
		if err != nil {
			fs.rewind(id, f, to, from)
			return nil, err
		}
		defer done()
		// Blocks with more logs than one answer holds: the answer covers
		// fewer blocks (halving the range), the next poll the rest.
		end := to
		for {
			logs, err := fs.logs(ctx, &crit, from, end)
			if err == nil {
				if end < to {
					fs.rewind(id, f, to, end+1)
				}
				return logs, nil
			}
			if end == from || !isTooManyLogs(err) || ctx.Err() != nil {
				fs.rewind(id, f, to, from) // the next poll asks for these blocks again
				return nil, err
			}
			end = from + (end-from)/2
		}
	}
}

// tooManyLogsMsg begins the error of a log query whose answer would hold
// more logs than allowed.
const tooManyLogsMsg = "query returns more than"

func tooManyLogs(limit int) error {
	return serverError(tooManyLogsMsg+" %d logs; narrow the block range or the filter", limit)
}

// isTooManyLogs reports tooManyLogs' error.
func isTooManyLogs(err error) bool {
	var e *Error
	return errors.As(err, &e) && strings.HasPrefix(e.Msg, tooManyLogsMsg)
}

// GetFilterLogs is eth_getFilterLogs: every log matching a log filter.
func (api *EthAPI) GetFilterLogs(ctx context.Context, id gethrpc.ID) ([]*types.Log, error) {
	fs := api.filters
	fs.mu.Lock()
	f, ok := fs.all[id]
	if ok && f.kind == logsFilter {
		f.lastPoll = fs.now()
	}
	fs.mu.Unlock()
	if !ok || f.kind != logsFilter {
		return nil, errFilterNotFound
	}
	ctx, done, err := api.heavy(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	from, to, err := fs.resolveRange(f.crit.FromBlock, f.crit.ToBlock)
	if err != nil {
		return nil, err
	}
	return fs.logs(ctx, &f.crit, from, to)
}

// subscribe runs a notification loop for one subscription, within the
// bounds of the connection and of the node.
func (api *EthAPI) subscribe(ctx context.Context, chain bool, notify func(n *gethrpc.Notifier, id gethrpc.ID, v any)) (*gethrpc.Subscription, error) {
	notifier, ok := gethrpc.NotifierFromContext(ctx)
	if !ok {
		return nil, gethrpc.ErrNotificationsUnsupported
	}
	client := clientOf(ctx)
	if err := api.filters.subs.acquire(client); err != nil {
		return nil, err
	}
	rpcSub := notifier.CreateSubscription()
	hs := api.filters.hub.subscribe(chain)
	go func() {
		defer api.filters.subs.release(client)
		defer hs.close()
		for {
			select {
			case v := <-hs.ch:
				notify(notifier, rpcSub.ID, v)
			case <-hs.gone:
				return // too slow to keep up: the subscription ends
			case <-rpcSub.Err():
				return // unsubscribed, or the connection closed
			}
		}
	}()
	return rpcSub, nil
}

// NewHeads is eth_subscribe("newHeads").
func (api *EthAPI) NewHeads(ctx context.Context) (*gethrpc.Subscription, error) {
	return api.subscribe(ctx, true, func(n *gethrpc.Notifier, id gethrpc.ID, v any) {
		n.Notify(id, marshalHeader(v.(events.ChainEvent).Block.Header()))
	})
}

// Logs is eth_subscribe("logs", criteria).
func (api *EthAPI) Logs(ctx context.Context, crit *filters.FilterCriteria) (*gethrpc.Subscription, error) {
	if crit == nil {
		crit = &filters.FilterCriteria{}
	}
	if crit.BlockHash != nil || crit.FromBlock != nil || crit.ToBlock != nil {
		return nil, invalidParams("invalid argument 1: a logs subscription takes addresses and topics only")
	}
	c := *crit
	return api.subscribe(ctx, true, func(n *gethrpc.Notifier, id gethrpc.ID, v any) {
		for _, l := range v.(events.ChainEvent).Logs {
			if logMatches(l, &c) {
				n.Notify(id, l)
			}
		}
	})
}

// NewPendingTransactions is eth_subscribe("newPendingTransactions", full).
func (api *EthAPI) NewPendingTransactions(ctx context.Context, full *bool) (*gethrpc.Subscription, error) {
	fullTx := full != nil && *full
	signer := api.signer
	return api.subscribe(ctx, false, func(n *gethrpc.Notifier, id gethrpc.ID, v any) {
		for _, tx := range v.([]*types.Transaction) {
			if fullTx {
				n.Notify(id, marshalTx(tx, common.Hash{}, 0, 0, nil, signer))
			} else {
				n.Notify(id, tx.Hash())
			}
		}
	})
}
