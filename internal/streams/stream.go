package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/chaindata"
	"github.com/charter-ledger/charter/internal/durable"
)

const (
	stateSuffix = ".stream"
	dlqSuffix   = ".dlq"
)

// persisted is a stream's state file.
type persisted struct {
	Definition Definition `json:"definition"`
	Cursor     Cursor     `json:"cursor"`
	Paused     bool       `json:"paused"`
	DLQDropped uint64     `json:"dlqDropped"`
}

// stream is one stream. ops serializes the Manager's operations on it
// (each stops the goroutine, changes the state, restarts it); mu guards
// st, dlq and sinkErr, which the goroutine also changes.
type stream struct {
	m         *Manager
	def       Definition
	sink      chaindata.Sink // nil if sinkErr
	stateFile durable.StateFile
	dlqFile   durable.StateFile

	ops sync.Mutex

	mu       sync.Mutex
	st       persisted
	dlq      []DLQEntry
	dlqBytes int
	sinkErr  string

	delivered  atomic.Uint64
	failures   atomic.Uint64
	readErrors atomic.Uint64 // failed reads of the chain (a block not there yet, a closed store)
	readErr    string        // the last read's error until a read succeeds; under mu

	// run is the goroutine's handle; set and cleared under ops (and
	// m.mu at Start).
	cancel context.CancelFunc
	done   chan struct{}
}

func (m *Manager) newStream(def Definition, sink chaindata.Sink) *stream {
	return &stream{
		m:         m,
		def:       def,
		sink:      sink,
		stateFile: durable.StateFile{FS: m.cfg.FS, Path: filepath.Join(m.cfg.Dir, def.Name+stateSuffix)},
		dlqFile:   durable.StateFile{FS: m.cfg.FS, Path: filepath.Join(m.cfg.Dir, def.Name+dlqSuffix)},
		st:        persisted{Definition: def},
	}
}

func (m *Manager) load(name string) (*stream, error) {
	f := durable.StateFile{FS: m.cfg.FS, Path: filepath.Join(m.cfg.Dir, name+stateSuffix)}
	raw, err := f.Load()
	if err != nil {
		return nil, fmt.Errorf("streams: load %q: %w", name, err)
	}
	var st persisted
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("streams: load %q: %s: %w", name, f.Path, err)
	}
	if st.Definition.Name != name {
		return nil, fmt.Errorf("streams: load %q: %s names stream %q", name, f.Path, st.Definition.Name)
	}
	sink, serr := newSink(st.Definition.Sink)
	s := m.newStream(st.Definition, sink)
	s.st = st
	if serr != nil {
		s.sinkErr = serr.Error()
		m.cfg.Log.Error("stream cannot run", "stream", name, "err", serr)
	}
	raw, err = s.dlqFile.Load()
	if err != nil {
		return nil, fmt.Errorf("streams: load %q: %w", name, err)
	}
	if raw != nil {
		if err := json.Unmarshal(raw, &s.dlq); err != nil {
			return nil, fmt.Errorf("streams: load %q: %s: %w", name, s.dlqFile.Path, err)
		}
		s.dlqBytes = entriesSize(s.dlq)
	}
	return s, nil
}

func (s *stream) saveState(st persisted) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("save stream %q: %w", s.def.Name, err)
	}
	if err := s.stateFile.Save(raw); err != nil {
		return fmt.Errorf("save stream %q: %w", s.def.Name, err)
	}
	return nil
}

func (s *stream) saveDLQ(q []DLQEntry) error {
	if q == nil {
		q = []DLQEntry{}
	}
	raw, err := json.Marshal(q)
	if err != nil {
		return fmt.Errorf("save dead-letter queue of %q: %w", s.def.Name, err)
	}
	if err := s.dlqFile.Save(raw); err != nil {
		return fmt.Errorf("save dead-letter queue of %q: %w", s.def.Name, err)
	}
	return nil
}

func (s *stream) info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Info{Definition: cloneDef(s.def), Cursor: s.st.Cursor, Paused: s.st.Paused, Error: s.sinkErr}
}

// start runs the goroutine unless paused, broken or running. Called
// with ops or m.mu held.
func (s *stream) start() {
	s.mu.Lock()
	paused := s.st.Paused
	s.mu.Unlock()
	if s.done != nil || paused || s.sink == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		s.run(ctx)
	}(s.done)
}

// stop ends the goroutine and waits for it. Called with ops held.
func (s *stream) stop() {
	if s.done == nil {
		return
	}
	s.cancel()
	<-s.done
	s.cancel, s.done = nil, nil
}

func (s *stream) restartLocked(m *Manager) {
	m.mu.Lock()
	ok := m.running()
	m.mu.Unlock()
	if ok {
		s.start()
	}
}

func (s *stream) closeSink() {
	if s.sink != nil {
		if err := s.sink.Close(); err != nil {
			s.m.cfg.Log.Warn("close stream sink", "stream", s.def.Name, "err", err)
		}
	}
}

// run is the stream's goroutine: it fills a batch from the cursor,
// offers it to the sink until accepted or MaxAttempts refusals (then
// dead-letters it), moves the cursor and saves it, and waits for new
// blocks when caught up.
func (s *stream) run(ctx context.Context) {
	cfg := &s.m.cfg
	log := cfg.Log.With("stream", s.def.Name)
	match := newMatcher(s.def.Filter, cfg.Contracts)
	maxAttempts := s.def.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = defaultMaxAttempts
	}
	s.mu.Lock()
	cur := s.st.Cursor
	s.mu.Unlock()
	saved := cur
	lastSave := time.Now()
	poll := time.NewTicker(cfg.PollInterval)
	defer poll.Stop()
	readFails := 0 // consecutive failed reads
	for ctx.Err() == nil {
		wake := cfg.Heads.Changed()
		batch, next, err := s.fill(cur, match)
		if err != nil {
			// The same failure again is logged at debug level and waited
			// out with a growing pause (up to RetryMax); the stream's
			// stats count it and show it until a read succeeds.
			readFails++
			s.readErrors.Add(1)
			msg := err.Error()
			s.mu.Lock()
			repeated := s.readErr == msg
			s.readErr = msg
			s.mu.Unlock()
			if repeated {
				log.Debug("read blocks", "attempt", readFails, "err", err)
			} else {
				log.Warn("read blocks: retrying", "err", err)
			}
			if !sleepCtx(ctx, min(cfg.RetryMax, cfg.RetryBase<<min(readFails-1, 16))) {
				return
			}
			continue
		}
		if readFails > 0 {
			readFails = 0
			s.mu.Lock()
			s.readErr = ""
			s.mu.Unlock()
			log.Info("read blocks: recovered")
		}
		if len(batch) > 0 {
			if !s.deliver(ctx, log, batch, maxAttempts) {
				return // stopped
			}
		}
		cur = next
		if cur != saved && (len(batch) > 0 || time.Since(lastSave) >= time.Second || !s.behind(cur)) {
			s.mu.Lock()
			st := s.st
			s.mu.Unlock()
			st.Cursor = cur
			if err := s.saveState(st); err != nil {
				log.Error("save cursor", "err", err)
				if !sleepCtx(ctx, cfg.RetryBase) {
					return
				}
			} else {
				saved, lastSave = cur, time.Now()
			}
			s.mu.Lock()
			s.st.Cursor = cur
			s.mu.Unlock()
		}
		if len(batch) > 0 || s.behind(cur) {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-poll.C:
		}
	}
}

// behind says whether blocks at or after cur are final.
func (s *stream) behind(cur Cursor) bool {
	h := s.m.cfg.Source.Head()
	return h != nil && h.Number.Uint64() >= cur.Block
}

// fill reads from cur up to the head and returns the matching events
// (bounded by MaxBatchEvents, MaxBatchBytes and MaxBlocksPerBatch) and
// the cursor just after what it read.
func (s *stream) fill(cur Cursor, match *matcher) ([]chaindata.Event, Cursor, error) {
	cfg := &s.m.cfg
	h := cfg.Source.Head()
	if h == nil {
		return nil, cur, nil
	}
	head := h.Number.Uint64()
	var batch []chaindata.Event
	bytes := 0
	match.refresh()
	for blocks := 0; cur.Block <= head && blocks < cfg.MaxBlocksPerBatch; blocks++ {
		b := cfg.Source.BlockByNumber(cur.Block)
		if b == nil {
			if base := chaindata.BaseOf(cfg.Source); cur.Block > 0 && cur.Block < base {
				return batch, cur, fmt.Errorf("block %d is not on this node: it started from a snapshot of block %d; start the stream at %d or later, or read it from a node holding the whole chain", cur.Block, base, base)
			}
			return batch, cur, fmt.Errorf("block %d missing below head %d", cur.Block, head)
		}
		receipts, err := cfg.Source.Receipts(cur.Block)
		if err != nil {
			return batch, cur, fmt.Errorf("receipts of block %d: %w", cur.Block, err)
		}
		for _, r := range receipts {
			for _, l := range r.Logs {
				if l.Index < cur.LogIndex {
					continue
				}
				ev, ok := match.event(l)
				if !ok {
					continue
				}
				ev.ID = fmt.Sprintf("%d-%d-%d", cfg.ChainID, cur.Block, l.Index)
				ev.Stream = s.def.Name
				ev.ChainID = cfg.ChainID
				ev.BlockNumber = cur.Block
				ev.BlockHash = b.Hash()
				ev.Timestamp = b.Time()
				ev.TxHash = l.TxHash
				ev.TxIndex = l.TxIndex
				ev.LogIndex = l.Index
				ev.Address = l.Address
				ev.Topics = append([]common.Hash(nil), l.Topics...)
				ev.Data = append([]byte(nil), l.Data...)
				n := eventSize(&ev)
				if len(batch) > 0 && (len(batch) >= cfg.MaxBatchEvents || bytes+n > cfg.MaxBatchBytes) {
					return batch, cur, nil // cur names this log: the next batch starts with it
				}
				batch = append(batch, ev)
				bytes += n
				cur.LogIndex = l.Index + 1
			}
		}
		cur = Cursor{Block: cur.Block + 1}
		if len(batch) >= cfg.MaxBatchEvents {
			break
		}
	}
	return batch, cur, nil
}

// deliver offers batch until the sink accepts it or maxAttempts
// refusals, then dead-letters it. False if ctx ended first (the batch
// is neither accepted nor dead-lettered: it is read again at restart).
func (s *stream) deliver(ctx context.Context, log interface {
	Warn(string, ...any)
}, batch []chaindata.Event, maxAttempts int) bool {
	cfg := &s.m.cfg
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			ceil := cfg.RetryBase << min(attempt-1, 30)
			if ceil > cfg.RetryMax || ceil <= 0 {
				ceil = cfg.RetryMax
			}
			if !sleepCtx(ctx, rand.N(ceil)+1) {
				return false
			}
		}
		dctx, cancel := context.WithTimeout(ctx, cfg.DeliverTimeout)
		err = s.sink.Deliver(dctx, batch)
		cancel()
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			s.delivered.Add(uint64(len(batch)))
			return true
		}
		s.failures.Add(1)
		log.Warn("deliver", "attempt", attempt+1, "events", len(batch), "first", batch[0].ID, "err", err)
	}
	s.deadLetter(batch, err, maxAttempts)
	return true
}

// deadLetter appends batch to the queue, dropping the oldest entries
// past the bounds, and saves it. If the save fails the entries stay in
// memory (and the failure is logged): the cursor still moves on, as a
// sink that refuses for good must not stop the stream.
func (s *stream) deadLetter(batch []chaindata.Event, cause error, attempts int) {
	cfg := &s.m.cfg
	now := time.Now().UTC()
	s.mu.Lock()
	q := append(s.dlq[:len(s.dlq):len(s.dlq)], make([]DLQEntry, 0, len(batch))...)
	bytes := s.dlqBytes
	for _, ev := range batch {
		e := DLQEntry{Event: ev, Error: truncate(cause.Error(), 512), Attempts: attempts, FailedAt: now}
		q = append(q, e)
		bytes += entrySize(&e)
	}
	dropped := 0
	for len(q) > 0 && (len(q) > cfg.DLQMaxEvents || bytes > cfg.DLQMaxBytes) {
		bytes -= entrySize(&q[0])
		q = q[1:]
		dropped++
	}
	q = append([]DLQEntry(nil), q...)
	s.dlq, s.dlqBytes = q, bytes
	s.st.DLQDropped += uint64(dropped)
	s.mu.Unlock()
	if err := s.saveDLQ(q); err != nil {
		cfg.Log.Error("save dead-letter queue", "stream", s.def.Name, "err", err)
	}
	if dropped > 0 {
		cfg.Log.Warn("dead-letter queue full: oldest dropped", "stream", s.def.Name, "dropped", dropped)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func eventSize(e *chaindata.Event) int {
	raw, err := json.Marshal(e)
	if err != nil {
		return 0
	}
	return len(raw)
}

func entrySize(e *DLQEntry) int { return eventSize(&e.Event) + len(e.Error) + 64 }

func entriesSize(q []DLQEntry) int {
	n := 0
	for i := range q {
		n += entrySize(&q[i])
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// parseEventSel reads a filter's event entry: a 0x topic, a signature
// (hashed to its topic) or a bare name.
func parseEventSel(e string) (topic common.Hash, name string, err error) {
	switch {
	case strings.HasPrefix(e, "0x") || strings.HasPrefix(e, "0X"):
		if len(e) != 66 {
			return topic, "", fmt.Errorf("%q: a topic is 0x and 64 hex digits", e)
		}
		b, err := hexutil.Decode(e)
		if err != nil {
			return topic, "", fmt.Errorf("%q: %v", e, err)
		}
		return common.BytesToHash(b), "", nil
	case strings.Contains(e, "("):
		if !strings.HasSuffix(e, ")") || strings.ContainsAny(e, " \t") {
			return topic, "", fmt.Errorf("%q: a signature is Name(type,...) without spaces", e)
		}
		return crypto.Keccak256Hash([]byte(e)), "", nil
	case nameRE.MatchString(e) && !strings.ContainsAny(e, ".-"):
		return topic, e, nil
	}
	return topic, "", fmt.Errorf("%q: want an event name, a signature or a 0x topic", e)
}

// matcher applies a Filter and decodes what it selects. Used by one
// goroutine.
type matcher struct {
	f         Filter
	contracts chaindata.Contracts
	gen       uint64
	addrs     map[common.Address]bool // nil: any
	topics    map[common.Hash]bool
	names     map[string]bool
	anyEvent  bool
	loaded    bool
}

func newMatcher(f Filter, c chaindata.Contracts) *matcher {
	m := &matcher{f: f, contracts: c, topics: map[common.Hash]bool{}, names: map[string]bool{}}
	for _, e := range f.Events {
		t, n, err := parseEventSel(e)
		if err != nil {
			continue // checked at Create
		}
		if n != "" {
			m.names[n] = true
		} else {
			m.topics[t] = true
		}
	}
	m.anyEvent = len(f.Events) == 0
	return m
}

// refresh rebuilds the address set when the registry has changed.
func (m *matcher) refresh() {
	if len(m.f.Addresses) == 0 && len(m.f.Contracts) == 0 {
		m.addrs = nil
		return
	}
	var gen uint64
	if m.contracts != nil {
		gen = m.contracts.Generation()
	}
	if m.loaded && gen == m.gen {
		return
	}
	m.gen, m.loaded = gen, true
	m.addrs = make(map[common.Address]bool, len(m.f.Addresses))
	for _, a := range m.f.Addresses {
		m.addrs[a] = true
	}
	if len(m.f.Contracts) > 0 && m.contracts != nil {
		want := make(map[string]bool, len(m.f.Contracts))
		for _, n := range m.f.Contracts {
			want[n] = true
		}
		for _, c := range m.contracts.All() {
			if want[c.Name] {
				m.addrs[c.Address] = true
			}
		}
	}
}

// event is the Event for l (without its position fields) if l passes.
func (m *matcher) event(l *types.Log) (chaindata.Event, bool) {
	if m.addrs != nil && !m.addrs[l.Address] {
		return chaindata.Event{}, false
	}
	for i, allowed := range m.f.Topics {
		if len(allowed) == 0 {
			continue
		}
		if i+1 >= len(l.Topics) || !slices.Contains(allowed, l.Topics[i+1]) {
			return chaindata.Event{}, false
		}
	}
	var ev chaindata.Event
	decoded := false
	if m.contracts != nil {
		if c, ok := m.contracts.ByAddress(l.Address); ok {
			if abiEv, args, ok := chaindata.DecodeEvent(c, l); ok {
				ev.Contract, ev.Version = c.Name, c.Version
				ev.Event, ev.Signature, ev.Args = abiEv.RawName, abiEv.Sig, args
				decoded = true
			}
		}
	}
	if m.anyEvent {
		return ev, true
	}
	if len(l.Topics) > 0 && m.topics[l.Topics[0]] {
		return ev, true
	}
	if decoded && m.names[ev.Event] {
		return ev, true
	}
	return chaindata.Event{}, false
}
