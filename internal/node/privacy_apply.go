package node

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/blockchain"
	"github.com/charter-ledger/charter/internal/privacy"
	"github.com/charter-ledger/charter/internal/privacy/privstate"
	"github.com/charter-ledger/charter/internal/privacy/privtx"
	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
)

// The applier follows committed blocks on its own goroutine: the public
// chain never waits for private execution. For each block it finds the
// markers of the groups this node's organization may read, gathers their
// payloads (fetching those it lacks), opens them and applies them to the
// groups' private states (privstate.ApplyBlock, exactly once per group
// and block), then carries out the block's purges.
//
// Its progress is a cursor file beside the private state: the last public
// block done. It is written after the block's groups are durable, without
// a sync: a cursor that lags after a crash only makes the applier apply
// blocks again, which privstate answers from its records.
//
// A group whose payloads this node lacks does not hold up the others: the
// applier asks the members' nodes once, briefly (fetchFirstWait, for a
// payload merely late), and if they are still missing the group waits at
// that block (await: the payloads are fetched in the background, at most
// maxGroupFetches groups at once) while the applier goes on with the
// other groups, skipping the waiting one in later blocks. When the
// payloads arrive the group is replayed from that block (a backfill
// file, as for a group joined late); when the rounds are exhausted it
// halts (an error line naming the payload, its marker and its block, the
// halted metric). A waiting or halted group is written down (halted/)
// and a restart tries it again from its block; the public chain and the
// other groups go on throughout.

const (
	// cursorEvery: the cursor file is written every cursorEvery blocks
	// and at the end of a pass (a lagging cursor only replays blocks).
	cursorEvery = 32
	cursorFile  = "applied"
	haltedDir   = "halted"
	backfillDir = "backfill"
)

// marker is a committed marker transaction as its registry log tells it.
type marker struct {
	Tx      common.Hash
	Group   common.Hash
	Payload common.Hash
	Org     string
}

// parseMarkerLog reads a registry PrivateMarker log.
func parseMarkerLog(l *types.Log) (marker, bool) {
	ev := system.Registry.Events["PrivateMarker"]
	if l.Address != system.RegistryAddress || len(l.Topics) != 2 || l.Topics[0] != ev.ID {
		return marker{}, false
	}
	vals, err := ev.Inputs.NonIndexed().Unpack(l.Data)
	if err != nil || len(vals) != 2 {
		return marker{}, false
	}
	payload, ok1 := vals[0].([32]byte)
	org, ok2 := vals[1].(string)
	if !ok1 || !ok2 {
		return marker{}, false
	}
	return marker{Tx: l.TxHash, Group: l.Topics[1], Payload: payload, Org: org}, true
}

// parsePurgeLog reads a registry GroupPurged log: the group.
func parsePurgeLog(l *types.Log) (common.Hash, bool) {
	ev := system.Registry.Events["GroupPurged"]
	if l.Address != system.RegistryAddress || len(l.Topics) < 2 || l.Topics[0] != ev.ID {
		return common.Hash{}, false
	}
	return l.Topics[1], true
}

// Bounds of the background fetches of payloads (await).
const (
	// maxGroupFetches bounds the groups whose payloads are fetched at
	// once; the others wait their turn, oldest first.
	maxGroupFetches = 4
	// maxWaitingGroups bounds the groups waiting (fetching or in turn);
	// past it a group lacking payloads halts at once, and a restart tries
	// it again.
	maxWaitingGroups = 256
)

type applier struct {
	p       *privacyService
	retried bool // the groups halted before this start were tried again
	wake    chan struct{}
	done    chan struct{}

	// filesMu orders the writes and removals of the halted/ and
	// backfill/ files between the applier and the background fetches.
	filesMu sync.Mutex

	// fetches are the groups waiting for payloads: one job per group,
	// at most maxWaitingGroups, maxGroupFetches of them running.
	fetches struct {
		sync.Mutex
		jobs    map[common.Hash]*fetchJob
		queue   []*fetchJob // waiting their turn, oldest first
		running int
	}

	// afterBlock, when set (tests), is called after each block a pass
	// applies, with the groups it was limited to (nil: all).
	afterBlock atomic.Pointer[func(number uint64, only map[common.Hash]bool)]
}

// fetchJob is a group waiting at block for the payloads of items, asked
// of the connected nodes of orgs. Its fields are guarded by fetches.
// items are the payloads missing at the block it waits at (and at an
// earlier block a replay met meanwhile): at most the markers of a block
// or two, which the block gas limit bounds; each request asks for at
// most maxFetchItems of them.
type fetchJob struct {
	group common.Hash
	block uint64
	items []fetchItem
	orgs  []string
}

func (a *applier) init(p *privacyService) {
	a.p = p
	a.wake = make(chan struct{}, 1)
	a.done = make(chan struct{})
	a.fetches.jobs = make(map[common.Hash]*fetchJob)
}

// poke wakes the applier (a commit, a payload arrived).
func (a *applier) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// onCommit is the chain's subscriber: quick, it only wakes the applier.
func (a *applier) onCommit(*blockchain.Committed) error {
	a.poke()
	return nil
}

func (a *applier) start() error {
	for _, d := range []string{haltedDir, backfillDir} {
		if err := os.MkdirAll(filepath.Join(a.p.dir, d), 0o700); err != nil {
			return fmt.Errorf("private state: %w", err)
		}
	}
	a.p.n.wg.Add(1)
	go a.loop()
	return nil
}

func (a *applier) stop() {}

func (a *applier) cursorPath() string { return filepath.Join(a.p.dir, cursorFile) }

func (a *applier) cursor() uint64 {
	b, err := os.ReadFile(a.cursorPath())
	if err != nil {
		return 0
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0
	}
	return v
}

func (a *applier) setCursor(v uint64) {
	tmp := a.cursorPath() + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(v, 10)+"\n"), 0o600); err != nil {
		return
	}
	_ = os.Rename(tmp, a.cursorPath())
}

// haltedFrom lists groups halted before a restart: group → the block to
// try again from.
func (a *applier) haltedFrom() map[common.Hash]uint64 { return a.readBlockFiles(haltedDir) }

// readBlockFiles reads a folder of files named by group, each starting
// with a block number.
func (a *applier) readBlockFiles(dir string) map[common.Hash]uint64 {
	out := map[common.Hash]uint64{}
	entries, _ := os.ReadDir(filepath.Join(a.p.dir, dir))
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(a.p.dir, dir, e.Name()))
		if err != nil {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		v, err := strconv.ParseUint(first, 10, 64)
		if err != nil {
			continue
		}
		out[common.HexToHash(e.Name())] = v
	}
	return out
}

// writeHalted writes down that group stopped at number (halted or
// waiting): a restart tries it again from there.
func (a *applier) writeHalted(group common.Hash, number uint64, reason string) {
	a.filesMu.Lock()
	defer a.filesMu.Unlock()
	path := filepath.Join(a.p.dir, haltedDir, group.Hex())
	_ = os.WriteFile(path, []byte(fmt.Sprintf("%d %s\n", number, reason)), 0o600)
}

func (a *applier) markHalted(group common.Hash, number uint64, reason string) {
	a.writeHalted(group, number, reason)
	a.p.halt(group, number, fmt.Sprintf("block %d: %s", number, reason))
}

// markWaiting holds group at number while its payloads are fetched.
func (a *applier) markWaiting(group common.Hash, number uint64, reason string) {
	a.writeHalted(group, number, "waiting: "+reason)
	a.p.wait(group, number, reason)
}

func (a *applier) clearHalted(group common.Hash) {
	if _, ok := a.p.stopped(group); !ok {
		return
	}
	a.filesMu.Lock()
	_ = os.Remove(filepath.Join(a.p.dir, haltedDir, group.Hex()))
	a.filesMu.Unlock()
	a.p.resume(group)
}

func (a *applier) loop() {
	n := a.p.n
	defer n.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if !a.pass() {
			return
		}
		select {
		case <-n.quit:
			return
		case <-a.wake:
		case <-tick.C:
		}
	}
}

// pass applies the blocks up to the head. Groups to replay (halted before
// a restart, or joined late: replayFrom) are replayed first, alone, from
// their block up to the cursor; then every group goes on past it. A pass
// that finds a group to replay ends early, and the next one starts with
// it. It returns false when the node stops.
func (a *applier) pass() bool {
	n := a.p.n
	replays, files := a.replayFrom()
	cursor := a.cursor()
	next := cursor + 1
	for _, from := range replays {
		next = min(next, from)
	}
	head := n.ledger.Head().Number.Uint64()
	for ; next <= head; next++ {
		select {
		case <-n.quit:
			return false
		default:
		}
		var only map[common.Hash]bool
		if next <= cursor {
			only = map[common.Hash]bool{}
			for g, from := range replays {
				if from <= next {
					only[g] = true
				}
			}
		} else if len(replays) > 0 {
			a.clearBackfills(files)
			replays = nil
		}
		joined, err := a.applyBlock(next, only)
		if err != nil {
			if errors.Is(err, errStopping) {
				return false
			}
			n.log.Error("Private transactions of a block could not be applied; trying again", "block", next, "err", err)
			return true
		}
		if next > cursor {
			n.ins.m.PrivacyLag.Set(float64(n.ledger.Head().Number.Uint64() - next))
		}
		if f := a.afterBlock.Load(); f != nil {
			(*f)(next, only)
		}
		if next > cursor {
			cursor = next
			if next%cursorEvery == 0 || next == head {
				a.setCursor(next)
			}
		}
		if joined {
			a.setCursor(cursor)
			a.poke() // replay the groups joined, from their start
			return true
		}
	}
	a.setCursor(cursor)
	if len(replays) > 0 && next > cursor {
		a.clearBackfills(files)
	}
	return true
}

// replayFrom lists the groups to replay and from which block: halted or
// waiting ones from where they stopped, joined ones from where their
// history starts, those whose payloads arrived from where they waited.
// files are the backfill files it read, by name, as they read: the ones
// the replay will have done (clearBackfills).
func (a *applier) replayFrom() (from map[common.Hash]uint64, files map[string][]byte) {
	out := map[common.Hash]uint64{}
	if !a.retried {
		// Halted groups are tried again once, on the first pass after a
		// start (a pass that retried them at every commit would hold up
		// the other groups for the fetch rounds each time).
		out = a.haltedFrom()
		a.retried = true
		for g, at := range out {
			// Until the replay reaches at, the group stays stopped there
			// (later blocks skip it, the API says so).
			a.p.restore(g, at, "stopped there before this node started; being tried again")
		}
	}
	a.filesMu.Lock()
	defer a.filesMu.Unlock()
	files = map[string][]byte{}
	entries, _ := os.ReadDir(filepath.Join(a.p.dir, backfillDir))
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(a.p.dir, backfillDir, e.Name()))
		if err != nil {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		v, err := strconv.ParseUint(first, 10, 64)
		if err != nil {
			continue
		}
		files[e.Name()] = b
		g := common.HexToHash(e.Name())
		if cur, ok := out[g]; !ok || v < cur {
			out[g] = v
		}
	}
	return out, files
}

// backfill schedules a replay of group from block from: this node's
// organization became a member (from the group's start) or an auditor
// (from its grant) after the group began.
func (a *applier) backfill(group common.Hash, from uint64) {
	a.scheduleReplay(group, from)
	a.p.log.Info("This node's organization may read a privacy group's history: applying it from its start", "group", group, "from", from)
}

// scheduleReplay writes down a replay of group from block from, done by
// the next pass (any goroutine may call it). The file's second field
// tells one writing from another, so that clearBackfills keeps one
// written after the pass read it.
func (a *applier) scheduleReplay(group common.Hash, from uint64) {
	a.filesMu.Lock()
	defer a.filesMu.Unlock()
	path := filepath.Join(a.p.dir, backfillDir, group.Hex())
	if b, err := os.ReadFile(path); err == nil {
		// A replay already asked for from an earlier block covers this one.
		first, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		if v, err := strconv.ParseUint(first, 10, 64); err == nil && v <= from {
			from = v
		}
	}
	_ = os.WriteFile(path, []byte(fmt.Sprintf("%d %d\n", from, time.Now().UnixNano())), 0o600)
}

// clearBackfills removes the backfill files a pass replayed: those it
// read (files), if they still read the same. One written since (a fetch
// that completed, a replay asked for meanwhile) stays for the next pass.
func (a *applier) clearBackfills(files map[string][]byte) {
	a.filesMu.Lock()
	defer a.filesMu.Unlock()
	for name, was := range files {
		path := filepath.Join(a.p.dir, backfillDir, name)
		if now, err := os.ReadFile(path); err == nil && bytes.Equal(now, was) {
			_ = os.Remove(path)
		}
	}
}

var errStopping = errors.New("node stopping")

// groupWork is what one block holds for one group.
type groupWork struct {
	group   system.Group
	markers []marker
}

// applyBlock applies block number's private transactions for the groups
// this node reads (only: just these groups, nil: all), then its purges.
//
// In a replay (only non-nil) the groups named are applied whatever this
// node's organization was at that block: they are groups it may read now
// from their start (a member added late) or from the block their replay
// begins (an auditor's grant). Otherwise a block where the organization
// joins a group, or is granted one, schedules the group's replay and
// leaves it out of this block: joined is true.
func (a *applier) applyBlock(number uint64, only map[common.Hash]bool) (joined bool, err error) {
	p := a.p
	n := p.n
	block := n.ledger.BlockByNumber(number)
	if block == nil {
		return false, fmt.Errorf("block %d not found", number)
	}
	receipts, err := n.ledger.Receipts(number)
	if err != nil {
		return false, err
	}
	var (
		order  []common.Hash
		work   = map[common.Hash]*groupWork{}
		purges []common.Hash
		joins  = map[common.Hash]bool{}
	)
	reg, err := a.systemAt(block)
	if err != nil {
		if only == nil {
			return false, err
		}
		// A replay that cannot read its block's registry halts the groups
		// it replays there, saying why; the others go on.
		for id := range only {
			if at, stopped := p.haltedAt(id); stopped && at < number {
				continue
			}
			a.markHalted(id, number, fmt.Sprintf("replaying the group from this block: its registry could not be read: %v", err))
		}
		return false, nil
	}
	me := p.myOrg(reg)
	for _, r := range receipts {
		if r.Status != types.ReceiptStatusSuccessful {
			continue
		}
		for _, l := range r.Logs {
			if g, ok := parsePurgeLog(l); ok {
				purges = append(purges, g)
				continue
			}
			if only == nil && me != "" {
				if id, from, ok := parseJoinLog(l, me); ok {
					if g, ok := reg.Group(id); ok && !joins[id] {
						joins[id] = true
						a.backfill(id, max(from, g.Created))
					}
					continue
				}
			}
			m, ok := parseMarkerLog(l)
			if ok {
				p.rememberMarker(m, number)
			}
			if !ok || (only != nil && !only[m.Group]) || joins[m.Group] {
				continue
			}
			w := work[m.Group]
			if w == nil {
				g, ok := reg.Group(m.Group)
				if !ok || (only == nil && !readable(g, me, number)) {
					continue
				}
				w = &groupWork{group: g}
				work[m.Group] = w
				order = append(order, m.Group)
			}
			w.markers = append(w.markers, m)
		}
	}
	for id := range only {
		// A group stopped at this block with nothing of its own here (its
		// replay could not read the registry of the block) goes on.
		if h, stopped := p.stopped(id); stopped && !h.waiting && h.block == number && work[id] == nil {
			a.clearHalted(id)
		}
	}
	memo := newRegMemo(reg, block.Header(), &p.keys)
	for _, id := range order {
		if joins[id] {
			continue
		}
		if at, halted := p.haltedAt(id); halted && at < number {
			continue // halted at an earlier block: nothing later applies
		}
		if _, purged := p.store.Purged(id); purged {
			continue
		}
		if err := a.applyGroup(block.Header(), memo, work[id]); err != nil {
			return false, err
		}
	}
	// Purges decided by governance emit no event: the groups this node
	// holds whose record says purged are purged too. Looked for every
	// cursorEvery blocks and at the head: after a purge no marker of the
	// group can be ordered, so a later purge changes nothing else.
	var local []common.Hash
	if number%cursorEvery == 0 || number == n.ledger.Head().Number.Uint64() {
		local = a.localGroups()
	}
	for _, id := range local {
		if g, ok := reg.Group(id); ok && g.Status == system.GroupPurged && !slices.Contains(purges, id) {
			purges = append(purges, id)
		}
	}
	for _, id := range purges {
		p.kept.forget(id)
		if _, purged := p.store.Purged(id); purged {
			continue
		}
		if err := p.store.Purge(id, number); err != nil {
			return false, fmt.Errorf("purge privacy group %s: %w", id.Hex(), err)
		}
		a.clearHalted(id)
		p.log.Info("Privacy group purged: its payloads and private state are deleted from this node", "group", id, "block", number)
	}
	return len(joins) > 0, nil
}

// parseJoinLog reads a registry log by which org joins a group late:
// GroupMembersAdded naming it (from: the group's start), or
// AuditorGranted to it (from: the grant's height).
func parseJoinLog(l *types.Log, org string) (group common.Hash, from uint64, ok bool) {
	if l.Address != system.RegistryAddress || len(l.Topics) < 2 {
		return group, 0, false
	}
	switch l.Topics[0] {
	case system.Registry.Events["GroupMembersAdded"].ID:
		vals, err := system.Registry.Events["GroupMembersAdded"].Inputs.NonIndexed().Unpack(l.Data)
		if err != nil || len(vals) < 2 {
			return group, 0, false
		}
		added, _ := vals[1].([]string)
		return l.Topics[1], 0, slices.Contains(added, org)
	case system.Registry.Events["AuditorGranted"].ID:
		vals, err := system.Registry.Events["AuditorGranted"].Inputs.NonIndexed().Unpack(l.Data)
		if err != nil || len(vals) < 2 {
			return group, 0, false
		}
		o, _ := vals[0].(string)
		from, _ := vals[1].(uint64)
		return l.Topics[1], from, o == org
	}
	return group, 0, false
}

// localGroups are the groups with a folder in this node's private state.
func (a *applier) localGroups() []common.Hash {
	entries, _ := os.ReadDir(filepath.Join(a.p.dir, "groups"))
	var out []common.Hash
	for _, e := range entries {
		if b, err := hex.DecodeString(e.Name()); err == nil && len(b) == common.HashLength && e.IsDir() {
			out = append(out, common.BytesToHash(b))
		}
	}
	return out
}

// applyGroup gathers, opens, checks and applies one group's private
// transactions of a block.
func (a *applier) applyGroup(header *types.Header, memo *regMemo, w *groupWork) error {
	p := a.p
	number := header.Number.Uint64()
	id := w.group.ID
	envelopes := make(map[common.Hash][]byte, len(w.markers))
	var missing []fetchItem
	for _, m := range w.markers {
		if _, ok := envelopes[m.Payload]; ok {
			continue
		}
		if env, ok := p.kept.take(id, m.Payload); ok {
			envelopes[m.Payload] = env
			continue
		}
		env, err := p.store.Payload(id, m.Payload)
		switch {
		case err == nil:
			envelopes[m.Payload] = env
		case errors.Is(err, privstate.ErrNotFound) || errors.Is(err, privstate.ErrUnknownGroup):
			missing = append(missing, fetchItem{Marker: m.Tx, Payload: m.Payload})
		default:
			return err
		}
	}
	if len(missing) > 0 {
		// A payload merely late (its push still in a queue) comes within
		// one short round; otherwise the group waits at this block while
		// the payloads are fetched in the background.
		askOrgs := a.askOrgs(w.group)
		var err error
		if missing, err = a.fetchNow(id, missing, askOrgs, envelopes); err != nil {
			return err
		}
		if len(missing) > 0 {
			a.await(id, number, missing, askOrgs)
			return nil
		}
	}
	opened := a.openAll(w.markers, envelopes)
	txs := make([]privstate.Tx, len(w.markers))
	for i, m := range w.markers {
		raw, from, reject := a.check(memo, id, m, &opened[i])
		txs[i] = privstate.Tx{Raw: raw, Marker: m.Tx, Reject: reject, Sender: from}
	}
	res, err := p.store.ApplyBlock(id, header, txs)
	if err != nil {
		a.markHalted(id, number, err.Error())
		return nil
	}
	a.clearHalted(id)
	if !res.Replayed {
		p.n.ins.m.PrivateApplied.Add(float64(len(txs)))
	}
	var logs []*types.Log
	for _, r := range res.Receipts {
		for _, l := range r.Logs {
			c := *l
			p.markLog(&c, r.Marker)
			logs = append(logs, &c)
		}
	}
	p.logs.Send(rpc.PrivateLogsEvent{Group: id, Number: number, Logs: logs})
	return nil
}

// askOrgs are the organizations whose nodes may hold group g's payloads:
// its members then (g) and now.
func (a *applier) askOrgs(g system.Group) []string {
	orgs := slices.Clone(g.Members)
	if headReg, _, err := a.p.registry(); err == nil {
		if now, ok := headReg.Group(g.ID); ok {
			for _, m := range now.Members {
				if !slices.Contains(orgs, m) {
					orgs = append(orgs, m)
				}
			}
		}
	}
	return orgs
}

// fetchNow asks for the missing payloads once, for at most the fetcher's
// firstWait, keeps those that arrive (and those a push brought
// meanwhile) in envelopes, and returns the ones still missing.
func (a *applier) fetchNow(group common.Hash, missing []fetchItem, orgs []string, envelopes map[common.Hash][]byte) ([]fetchItem, error) {
	p := a.p
	got := p.fetch.request(group, missing, orgs, p.fetch.firstWait)
	still := missing[:0]
	for _, it := range missing {
		if env, ok := got[it.Payload]; ok {
			if err := p.store.KeepPayload(group, it.Payload, env); err != nil {
				return nil, err
			}
			envelopes[it.Payload] = env
			continue
		}
		if env, err := p.store.Payload(group, it.Payload); err == nil {
			envelopes[it.Payload] = env
			continue
		}
		still = append(still, it)
	}
	return still, nil
}

// await holds group at block number while the payloads of missing are
// fetched in the background (runFetch); later blocks skip the group, the
// other groups go on. A group already waiting takes the new payloads into
// its fetch and waits at the earlier of the two blocks.
func (a *applier) await(group common.Hash, number uint64, missing []fetchItem, orgs []string) {
	a.fetches.Lock()
	job, busy := a.fetches.jobs[group]
	if !busy && len(a.fetches.jobs) >= maxWaitingGroups {
		a.fetches.Unlock()
		a.markHalted(group, number, fmt.Sprintf("payload %s of marker %s: %d privacy groups already wait for payloads on this node (the most there may be); a restart tries this one again",
			missing[0].Payload.Hex(), missing[0].Marker.Hex(), maxWaitingGroups))
		return
	}
	if busy {
		for _, it := range missing {
			if !slices.Contains(job.items, it) {
				job.items = append(job.items, it)
			}
		}
		job.block = min(job.block, number)
		number = job.block
	}
	a.fetches.Unlock()
	a.markWaiting(group, number, fmt.Sprintf("fetching payload %s of marker %s since block %d (%d missing; asking the connected nodes of %s)",
		missing[0].Payload.Hex(), missing[0].Marker.Hex(), number, len(missing), strings.Join(orgs, ", ")))
	if busy {
		return
	}
	a.fetches.Lock()
	defer a.fetches.Unlock()
	job = &fetchJob{group: group, block: number, items: slices.Clone(missing), orgs: orgs}
	a.fetches.jobs[group] = job
	a.fetches.queue = append(a.fetches.queue, job)
	a.startFetchesLocked()
}

// startFetchesLocked starts the jobs in turn, up to maxGroupFetches at
// once.
func (a *applier) startFetchesLocked() {
	for a.fetches.running < maxGroupFetches && len(a.fetches.queue) > 0 {
		job := a.fetches.queue[0]
		a.fetches.queue[0] = nil
		a.fetches.queue = a.fetches.queue[1:]
		a.fetches.running++
		a.p.n.wg.Add(1)
		go a.runFetch(job)
	}
}

// runFetch fetches a waiting group's payloads: when they are all here,
// the group is replayed from the block it waits at; when the rounds are
// exhausted it halts there. A node stopping leaves it waiting: the next
// start tries it again.
func (a *applier) runFetch(job *fetchJob) {
	p := a.p
	defer p.n.wg.Done()
	done := a.fetchRounds(job)
	a.fetches.Lock()
	delete(a.fetches.jobs, job.group)
	a.fetches.running--
	a.startFetchesLocked()
	block, missing, orgs := job.block, job.items, job.orgs
	a.fetches.Unlock()
	select {
	case <-p.n.quit:
		return
	default:
	}
	if _, purged := p.store.Purged(job.group); purged {
		a.clearHalted(job.group)
		return
	}
	if done {
		p.log.Info("The payloads a privacy group waited for arrived: replaying it from the block it waits at", "group", job.group, "from", block)
		a.scheduleReplay(job.group, block)
		a.poke()
		return
	}
	reason := fmt.Sprintf("payload %s of marker %s: %v (asked the connected nodes of %s)",
		missing[0].Payload.Hex(), missing[0].Marker.Hex(), errFetchFailed, strings.Join(orgs, ", "))
	if p.haltWaiting(job.group, block, fmt.Sprintf("block %d: %s", block, reason)) {
		a.writeHalted(job.group, block, reason)
	}
}

// fetchRounds asks for a job's payloads for up to the fetcher's rounds,
// keeping those that arrive; true when none is missing any more.
func (a *applier) fetchRounds(job *fetchJob) bool {
	p := a.p
	f := &p.fetch
	for round := 0; ; round++ {
		a.fetches.Lock()
		items, orgs := slices.Clone(job.items), job.orgs
		a.fetches.Unlock()
		// A push may have brought some meanwhile.
		items = slices.DeleteFunc(items, func(it fetchItem) bool {
			_, err := p.store.Payload(job.group, it.Payload)
			return err == nil
		})
		if len(items) == 0 || round == f.rounds {
			// await may have added payloads meanwhile: the job's own list
			// decides.
			a.fetches.Lock()
			defer a.fetches.Unlock()
			job.items = slices.DeleteFunc(job.items, func(it fetchItem) bool {
				_, err := p.store.Payload(job.group, it.Payload)
				return err == nil
			})
			return len(job.items) == 0
		}
		if round > 0 {
			select {
			case <-p.n.quit:
				return false
			case <-time.After(time.Duration(round) * f.wait / 4):
			}
		}
		for chunk := range slices.Chunk(items, maxFetchItems) {
			got := f.request(job.group, chunk, orgs, f.wait)
			for h, env := range got {
				if err := p.store.KeepPayload(job.group, h, env); err != nil {
					p.log.Warn("Keeping a fetched private payload failed", "group", job.group, "payload", h, "err", err)
				}
			}
			select {
			case <-p.n.quit:
				return false
			default:
			}
		}
	}
}

// maxOpenWorkers bounds the goroutines that open one group's payloads
// of a block in parallel (GOMAXPROCS, at most this many).
const maxOpenWorkers = 8

// openedPayload is what opening one marker's payload gave: the private
// transaction's bytes (the envelope itself when it does not open), the
// decoded transaction and its sender, or why not.
type openedPayload struct {
	raw     []byte
	refusal string     // the envelope is not of the network's scheme: not opened
	openErr error      // the envelope does not open with this node's key
	tx      *privtx.Tx // nil: raw does not decode (privstate says why)
	from    common.Address
	fromErr error // no sender recovers from tx's signature
}

// openAll opens the payloads of markers (their envelopes by payload hash)
// and recovers their senders: the decryptions and signature recoveries,
// which depend on nothing but the bytes, run on up to maxOpenWorkers
// goroutines; the result is in the markers' order. A payload this node
// sealed itself is taken from the sealed memo instead.
func (a *applier) openAll(markers []marker, envelopes map[common.Hash][]byte) []openedPayload {
	out := make([]openedPayload, len(markers))
	chainID := a.p.n.cfg.Spec.Config.ChainID
	scheme := a.p.n.cfg.Spec.PrivacyScheme()
	one := func(i int) {
		m, o := markers[i], &out[i]
		if o.refusal = schemeRefusal(scheme, envelopes[m.Payload]); o.refusal != "" {
			o.raw = envelopes[m.Payload]
			return
		}
		if raw, from, ok := a.p.sealed.take(m.Payload); ok {
			if tx, err := privtx.Decode(raw); err == nil {
				o.raw, o.tx, o.from = raw, tx, from
				return
			}
		}
		o.raw, o.openErr = privacy.Open(a.p.key, envelopes[m.Payload])
		if o.openErr != nil {
			o.raw = envelopes[m.Payload]
			return
		}
		tx, err := privtx.Decode(o.raw)
		if err != nil {
			return
		}
		o.tx = tx
		o.from, o.fromErr = tx.Sender(chainID)
	}
	workers := min(runtime.GOMAXPROCS(0), maxOpenWorkers, len(markers))
	if workers <= 1 {
		for i := range markers {
			one(i)
		}
		return out
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(markers); i = int(next.Add(1) - 1) {
				one(i)
			}
		}()
	}
	wg.Wait()
	return out
}

// schemeRefusal is why an envelope is refused on a network whose genesis
// chose scheme want ("" if it is not): sealed with another scheme. A
// member who seals without the ML-KEM half on a hybrid network (or the
// reverse) has its transaction rejected by every member alike.
func schemeRefusal(want privacy.Scheme, envelope []byte) string {
	if len(envelope) == 0 {
		return "" // Open says why
	}
	if got := privacy.Scheme(envelope[0]); got != want {
		return fmt.Sprintf("sealed with envelope scheme %s, the network's genesis requires %s", got, want)
	}
	return ""
}

// check decides, on what openAll gave for marker m, against the marker
// and the public state of its block: what the private transaction
// carries, its sender, and why it is refused ("" if it is not). Every
// member node decides the same.
func (a *applier) check(memo *regMemo, group common.Hash, m marker, o *openedPayload) ([]byte, common.Address, string) {
	raw := o.raw
	if o.refusal != "" {
		return raw, common.Address{}, fmt.Sprintf("payload %s: %s", m.Payload.Hex(), o.refusal)
	}
	if o.openErr != nil {
		return raw, common.Address{}, fmt.Sprintf("payload %s does not open: %v", m.Payload.Hex(), o.openErr)
	}
	tx := o.tx
	if tx == nil {
		return raw, common.Address{}, "" // privstate rejects what does not decode, with its reason
	}
	if tx.GroupID() != group {
		return raw, common.Address{}, fmt.Sprintf("private transaction is for privacy group %s, its marker for %s", system.GroupIDBase64(tx.GroupID()), system.GroupIDBase64(group))
	}
	key, err := memo.key(m.Org)
	if err != nil || key == nil {
		return raw, common.Address{}, fmt.Sprintf("organization %s of the marker has no privacy key", m.Org)
	}
	if id := key.Identity(); !bytes.Equal(tx.PrivateFrom, id[:]) {
		return raw, common.Address{}, fmt.Sprintf("privateFrom %s is not the privacy key of %s, which sent the marker", b64(tx.PrivateFrom), m.Org)
	}
	if o.fromErr != nil {
		return raw, common.Address{}, "" // privstate rejects it with the reason
	}
	from := o.from
	if reason := senderRefusal(memo.sender(from), from, m.Org, tx.To == nil); reason != "" {
		return raw, common.Address{}, reason
	}
	return raw, from, ""
}
