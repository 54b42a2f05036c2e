package rpc

import (
	"bytes"
	"context"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/filters"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/privacy/privstate"
)

// privFilters serves the private log filters and subscriptions of the
// priv namespace. They live in the eth filter system and share its
// bounds: a private filter counts against --rpc.filters-per-client and
// the node's filter total, expires as an idle eth filter does and goes
// with its WebSocket connection; a private subscription counts against
// --ws.max-subscriptions and the node's subscription total, and is
// dropped when it falls subscriptionChan events behind. Log queries have
// the eth bounds (blocks per query, logs per answer) on top of the
// private state's own.
//
// One goroutine reads the Privacy's log events and fans them out to the
// subscriptions and to the receipt waits without ever blocking.
type privFilters struct {
	b    Backend
	p    Privacy
	fs   *filterSystem
	hub  hub // PrivateLogsEvent, published as chain events
	quit chan struct{}
	wg   sync.WaitGroup
}

func newPrivFilters(b Backend, p Privacy, fs *filterSystem) *privFilters {
	pf := &privFilters{b: b, p: p, fs: fs, quit: make(chan struct{})}
	pf.hub.subs = make(map[*hubSub]struct{})
	pf.hub.queue = fs.lim.subscriptionChan
	ch := make(chan PrivateLogsEvent, 64)
	sub := p.SubscribeLogs(ch)
	pf.wg.Add(1)
	go func() {
		defer pf.wg.Done()
		defer sub.Unsubscribe()
		for {
			select {
			case ev := <-ch:
				pf.hub.publish(true, ev)
			case <-sub.Err():
				return
			case <-pf.quit:
				return
			}
		}
	}()
	return pf
}

func (pf *privFilters) stop() {
	close(pf.quit)
	pf.wg.Wait()
}

// privateMarkerSelector is the selector of the registry's
// privateMarker(bytes32 group, bytes32 payloadHash, string[] members).
var privateMarkerSelector = crypto.Keccak256([]byte("privateMarker(bytes32,bytes32,string[])"))[:4]

// waitApplied waits, until ctx ends or the private receipt wait passes,
// for the group of a committed marker to be applied up to the marker's
// block on this node. It returns false at once when there is nothing to
// wait for: the hash is not a committed marker, or of a group this node
// may not read, or its group is applied that far already.
func (pf *privFilters) waitApplied(ctx context.Context, marker common.Hash) bool {
	number, index, ok := pf.b.GetTransaction(marker)
	if !ok {
		return false
	}
	blk := pf.b.BlockByNumber(number)
	if blk == nil || index < 0 || index >= len(blk.Transactions()) {
		return false
	}
	tx := blk.Transactions()[index]
	data := tx.Data()
	if tx.To() == nil || *tx.To() != pf.p.MarkerAddress() || len(data) < 4+32 || !bytes.Equal(data[:4], privateMarkerSelector) {
		return false
	}
	group := common.BytesToHash(data[4 : 4+32])
	if _, ok := pf.p.Group(group); !ok {
		return false
	}
	s := pf.hub.subscribe(true) // before reading the head: no event is missed
	defer s.close()
	timer := time.NewTimer(pf.fs.lim.privReceiptWait)
	defer timer.Stop()
	for {
		if head, err := pf.p.Head(group); err != nil || head >= number {
			return err == nil
		}
		select {
		case <-s.ch:
		case <-s.gone:
			return false
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// appliedHead is the newest public block whose private logs of group a
// poll may report: the public head, or the group's last applied block
// if that is lower (a block the node has not applied yet is reported by a
// later poll).
func (pf *privFilters) appliedHead(group common.Hash) (uint64, error) {
	head := pf.b.CurrentHeader().Number.Uint64()
	applied, err := pf.p.Head(group)
	if err != nil {
		return 0, privError(err)
	}
	return min(head, applied), nil
}

// logs runs one private log query within the eth bounds.
func (pf *privFilters) logs(group common.Hash, crit *filters.FilterCriteria, from, to uint64) ([]map[string]any, error) {
	logs, err := pf.query(group, crit, from, to)
	if err != nil {
		return nil, err
	}
	if len(logs) > pf.fs.lim.logs {
		return nil, tooManyLogs(pf.fs.lim.logs)
	}
	return marshalPrivLogs(logs), nil
}

// query reads the private logs of the blocks from from to to that crit
// selects, in block order, within the eth bound on blocks per query.
func (pf *privFilters) query(group common.Hash, crit *filters.FilterCriteria, from, to uint64) ([]*types.Log, error) {
	if from > to {
		return []*types.Log{}, nil
	}
	if to-from+1 > pf.fs.lim.logRange {
		return nil, serverError("query spans %d blocks, at most %d allowed", to-from+1, pf.fs.lim.logRange)
	}
	logs, err := pf.p.Logs(group, privstate.LogQuery{From: from, To: to, Addresses: crit.Addresses, Topics: crit.Topics})
	if err != nil {
		return nil, privError(err)
	}
	return logs, nil
}

// GetLogs is priv_getLogs: the group's private logs the filter selects.
func (api *PrivAPI) GetLogs(ctx context.Context, group groupParam, crit filters.FilterCriteria) ([]map[string]any, error) {
	g := common.Hash(group)
	if err := api.readable(g); err != nil {
		return nil, err
	}
	_, done, err := api.eth.heavy(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if crit.BlockHash != nil {
		blk := api.b.BlockByHash(*crit.BlockHash)
		if blk == nil {
			return nil, invalidParams("invalid argument 1: unknown block %s", crit.BlockHash.Hex())
		}
		return api.pf.logs(g, &crit, blk.NumberU64(), blk.NumberU64())
	}
	from, to, err := api.pf.fs.resolveRange(crit.FromBlock, crit.ToBlock)
	if err != nil {
		return nil, err
	}
	if crit.FromBlock == nil {
		// Besu's priv_getLogs without fromBlock reads the group from its
		// start (web3js-quorum's getLogs(id, {}) expects every log).
		if pg, ok := api.p.Group(g); ok {
			from = pg.Created
		} else {
			from = 0
		}
	}
	if crit.FromBlock != nil && crit.ToBlock != nil && from > to {
		return nil, invalidParams("invalid argument 1: fromBlock %d is after toBlock %d", from, to)
	}
	return api.pf.logs(g, &crit, from, to)
}

// NewFilter is priv_newFilter: a log filter on the group's private logs.
func (api *PrivAPI) NewFilter(ctx context.Context, group groupParam, crit filters.FilterCriteria) (gethrpc.ID, error) {
	g := common.Hash(group)
	if crit.BlockHash != nil {
		return "", invalidParams("invalid argument 1: blockHash is not allowed in a filter")
	}
	if err := api.readable(g); err != nil {
		return "", err
	}
	return api.pf.fs.install(ctx, &filter{kind: privLogsFilter, crit: crit, group: g})
}

// privFilter finds a private filter of group, marking it polled.
func (api *PrivAPI) privFilter(g common.Hash, id gethrpc.ID) (*filter, error) {
	fs := api.pf.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f, ok := fs.all[id]
	if !ok || f.kind != privLogsFilter || f.group != g {
		return nil, errFilterNotFound
	}
	f.lastPoll = fs.now()
	return f, nil
}

// GetFilterChanges is priv_getFilterChanges: the logs of the blocks
// applied since the last poll, at most the eth block range per poll.
func (api *PrivAPI) GetFilterChanges(ctx context.Context, group groupParam, id gethrpc.ID) ([]map[string]any, error) {
	g := common.Hash(group)
	if _, err := api.privFilter(g, id); err != nil {
		return nil, err
	}
	if err := api.readable(g); err != nil {
		return nil, err
	}
	head, err := api.pf.appliedHead(g)
	if err != nil {
		return nil, err
	}
	fs := api.pf.fs
	fs.mu.Lock()
	f, ok := fs.all[id]
	if !ok || f.kind != privLogsFilter || f.group != g {
		fs.mu.Unlock()
		return nil, errFilterNotFound
	}
	from, to := f.next, head
	if to >= from && to-from+1 > fs.lim.logRange {
		to = from + fs.lim.logRange - 1
	}
	if to >= from {
		f.next = to + 1
	}
	crit := f.crit
	fs.mu.Unlock()
	_, done, err := api.eth.heavy(ctx)
	if err != nil {
		fs.rewind(id, f, to, from)
		return nil, err
	}
	defer done()
	logs, next, err := api.pf.changes(g, &crit, from, to)
	switch {
	case err != nil:
		fs.rewind(id, f, to, from) // the next poll asks for these blocks again
		return nil, err
	case next <= to:
		fs.rewind(id, f, to, next) // the blocks from next on did not fit: the next poll
	}
	return logs, nil
}

// rewind moves filter f's next block back from claimed+1, which a poll
// set, to next, unless another poll moved it since.
func (fs *filterSystem) rewind(id gethrpc.ID, f *filter, claimed, next uint64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.all[id] == f && f.next == claimed+1 {
		f.next = next
	}
}

// changes is logs for a filter's poll: when the blocks from from to to
// hold more logs than one answer may, the answer ends with the last whole
// block that fits, and next is the block after it (to+1 when all fit). A
// single block with more logs than that is an error.
func (pf *privFilters) changes(group common.Hash, crit *filters.FilterCriteria, from, to uint64) (logs []map[string]any, next uint64, err error) {
	lim := pf.fs.lim
	got, err := pf.query(group, crit, from, to)
	if err != nil {
		return nil, 0, err
	}
	if len(got) <= lim.logs {
		return marshalPrivLogs(got), to + 1, nil
	}
	// got is in block order: cut before the block of the first log past
	// the limit.
	cut := lim.logs
	for cut > 0 && got[cut-1].BlockNumber == got[lim.logs].BlockNumber {
		cut--
	}
	if cut == 0 {
		return nil, 0, serverError("block %d holds more than %d logs the filter selects; read it with priv_getLogs and a narrower filter", got[0].BlockNumber, lim.logs)
	}
	return marshalPrivLogs(got[:cut]), got[cut].BlockNumber, nil
}

// GetFilterLogs is priv_getFilterLogs: every log the filter selects.
func (api *PrivAPI) GetFilterLogs(ctx context.Context, group groupParam, id gethrpc.ID) ([]map[string]any, error) {
	g := common.Hash(group)
	f, err := api.privFilter(g, id)
	if err != nil {
		return nil, err
	}
	if err := api.readable(g); err != nil {
		return nil, err
	}
	_, done, err := api.eth.heavy(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	from, to, err := api.pf.fs.resolveRange(f.crit.FromBlock, f.crit.ToBlock)
	if err != nil {
		return nil, err
	}
	return api.pf.logs(g, &f.crit, from, to)
}

// UninstallFilter is priv_uninstallFilter: false when the group has no
// such filter.
func (api *PrivAPI) UninstallFilter(group groupParam, id gethrpc.ID) bool {
	fs := api.pf.fs
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f, ok := fs.all[id]
	if !ok || f.kind != privLogsFilter || f.group != common.Hash(group) {
		return false
	}
	fs.removeLocked(id, f)
	return true
}

// blockBound is a subscription's fromBlock or toBlock: a number, or none
// (a tag: every block).
func blockBound(v *big.Int) (uint64, bool) {
	if v == nil || v.Sign() < 0 || !v.IsUint64() {
		return 0, false
	}
	return v.Uint64(), true
}

// Logs is priv_subscribe(privacyGroupId, "logs", filter) over WebSocket:
// each private log of the group the filter selects, as the node applies
// its block, in a priv_subscription notification. As Besu, fromBlock and
// toBlock (numbers) bound the blocks whose logs are sent; no past log is.
// The WebSocket transport puts the subscription name first for
// go-ethereum's dispatch (privws.go).
func (api *PrivAPI) Logs(ctx context.Context, group groupParam, crit *filters.FilterCriteria) (*gethrpc.Subscription, error) {
	notifier, ok := gethrpc.NotifierFromContext(ctx)
	if !ok {
		return nil, gethrpc.ErrNotificationsUnsupported
	}
	g := common.Hash(group)
	if crit == nil {
		crit = &filters.FilterCriteria{}
	}
	if crit.BlockHash != nil {
		return nil, invalidParams("invalid argument 2: blockHash is not allowed in a subscription")
	}
	if err := api.readable(g); err != nil {
		return nil, err
	}
	c := *crit
	from, hasFrom := blockBound(c.FromBlock)
	to, hasTo := blockBound(c.ToBlock)
	client := clientOf(ctx)
	subs := api.pf.fs.subs
	if err := subs.acquire(client); err != nil {
		return nil, err
	}
	rpcSub := notifier.CreateSubscription()
	hs := api.pf.hub.subscribe(true)
	groupID := b64(g[:])
	go func() {
		defer subs.release(client)
		defer hs.close()
		for {
			select {
			case v := <-hs.ch:
				ev := v.(PrivateLogsEvent)
				if ev.Group != g || (hasFrom && ev.Number < from) || (hasTo && ev.Number > to) {
					continue
				}
				for _, l := range ev.Logs {
					if logMatches(l, &c) {
						notifier.Notify(rpcSub.ID, privLogNote(l, groupID))
					}
				}
			case <-hs.gone:
				return // too slow to keep up: the subscription ends
			case <-rpcSub.Err():
				return // unsubscribed, or the connection closed
			}
		}
	}()
	return rpcSub, nil
}

// privLogNote is the result of a priv_subscription notification: the
// log, and the group under noteGroupKey, which the WebSocket transport
// moves beside the result as Besu sends it.
func privLogNote(l *types.Log, groupID string) map[string]any {
	m := marshalPrivLog(l)
	m[noteGroupKey] = groupID
	return m
}

const noteGroupKey = "privacyGroupId"
