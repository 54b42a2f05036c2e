// Package streams delivers the logs of a node's final blocks to sinks
// (webhooks, and any kind registered with RegisterSink), durably: each
// stream keeps a cursor on disk that moves only once its sink has
// accepted the events before it, so delivery is at least once and in
// order per stream, and every event keeps one ID across restarts and
// replays.
//
// Each stream runs in its own goroutine and reads blocks from the
// ledger (chaindata.Source) at its own pace, woken by chaindata.Heads;
// the node never waits for a stream, so one that falls behind only
// grows its lag.
package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/chaindata"
	"github.com/charter-ledger/charter/internal/durable"
)

// Errors of the Manager's operations; wrapped with detail.
var (
	ErrNotFound  = errors.New("no such stream")
	ErrExists    = errors.New("stream already exists")
	ErrBadInput  = errors.New("bad stream definition")
	ErrStopped   = errors.New("stream manager stopped")
	ErrSinkKind  = errors.New("unknown sink kind")
	ErrDLQReplay = errors.New("dead-letter replay failed")
)

// Definition is what a stream's creator chooses.
type Definition struct {
	// Name identifies the stream: 1 to 64 of [A-Za-z0-9._-], starting
	// with a letter or digit.
	Name string     `json:"name"`
	Sink SinkConfig `json:"sink"`
	// Filter selects the logs delivered; the zero Filter selects all.
	Filter Filter `json:"filter"`
	// StartHeight is the first block read.
	StartHeight uint64 `json:"startHeight"`
	// MaxAttempts is how many times a batch is offered to the sink
	// before its events go to the dead-letter queue; 0 means 8.
	MaxAttempts int `json:"maxAttempts,omitempty"`
}

// SinkConfig names a sink kind ("webhook", or one given to RegisterSink)
// and the settings its factory interprets.
type SinkConfig struct {
	Kind   string          `json:"kind"`
	Config json.RawMessage `json:"config,omitempty"`
}

// Filter selects logs. Every non-empty part must match (and); within a
// part any entry may match (or).
type Filter struct {
	// Addresses and Contracts together: the emitting address is one of
	// Addresses or of any version of a registered contract in
	// Contracts. Both empty: any address.
	Addresses []common.Address `json:"addresses,omitempty"`
	Contracts []string         `json:"contracts,omitempty"`
	// Events: the log's first topic is one of these, each given as an
	// event name ("Transfer", matched against the registry's decoding),
	// a signature ("Transfer(address,address,uint256)") or a 0x topic.
	Events []string `json:"events,omitempty"`
	// Topics[i] lists the values allowed for topic i+1; an empty list
	// allows any. At most 3 entries.
	Topics [][]common.Hash `json:"topics,omitempty"`
}

// Cursor is the position of the next log a stream delivers: the log at
// LogIndex of block Block, or a later one.
type Cursor struct {
	Block    uint64 `json:"block"`
	LogIndex uint   `json:"logIndex"`
}

// Info is a stream as List and Get show it.
type Info struct {
	Definition
	Cursor Cursor `json:"cursor"`
	Paused bool   `json:"paused"`
	// Error is why the stream cannot run (its sink kind is not
	// registered, or its sink failed to start); empty if it can.
	Error string `json:"error,omitempty"`
}

// DLQEntry is an event that its sink refused MaxAttempts times.
type DLQEntry struct {
	Event    chaindata.Event `json:"event"`
	Error    string          `json:"error"`
	Attempts int             `json:"attempts"`
	FailedAt time.Time       `json:"failedAt"`
}

// Config is what a Manager needs. Dir, Source and Heads are required.
type Config struct {
	// Dir holds one state file per stream and one per dead-letter queue.
	Dir       string
	Source    chaindata.Source
	Heads     *chaindata.Heads
	Contracts chaindata.Contracts // nil: no decoding, no contract names in filters
	ChainID   uint64
	Log       *slog.Logger // nil: discard

	// FS is where state files are written; nil means the OS.
	FS durable.FS

	// MaxBatchEvents and MaxBatchBytes bound one Deliver call (bytes as
	// the events' JSON); defaults 100 and 1 MiB. A single event larger
	// than MaxBatchBytes goes alone.
	MaxBatchEvents int
	MaxBatchBytes  int
	// MaxBlocksPerBatch bounds the blocks read while filling one batch,
	// so that a stream whose filter matches little still saves its
	// progress; default 1000.
	MaxBlocksPerBatch int
	// RetryBase and RetryMax shape the wait before retrying a batch:
	// a uniform draw in [0, min(RetryMax, RetryBase·2^attempt)) ("full
	// jitter"); defaults 200ms and 30s.
	RetryBase time.Duration
	RetryMax  time.Duration
	// DeliverTimeout bounds one Deliver call; default 30s.
	DeliverTimeout time.Duration
	// DLQMaxEvents and DLQMaxBytes bound each dead-letter queue; when
	// over, the oldest entries are dropped and counted. Defaults 10,000
	// and 32 MiB.
	DLQMaxEvents int
	DLQMaxBytes  int
	// MaxStreams bounds the streams a Manager holds; default 256.
	MaxStreams int
	// PollInterval is how often a stream looks at the head even without
	// a wake-up; default 2s.
	PollInterval time.Duration
}

func (c *Config) ensureDefaults() {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	defD := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.MaxBatchEvents, 100)
	def(&c.MaxBatchBytes, 1<<20)
	def(&c.MaxBlocksPerBatch, 1000)
	def(&c.DLQMaxEvents, 10_000)
	def(&c.DLQMaxBytes, 32<<20)
	def(&c.MaxStreams, 256)
	defD(&c.RetryBase, 200*time.Millisecond)
	defD(&c.RetryMax, 30*time.Second)
	defD(&c.DeliverTimeout, 30*time.Second)
	defD(&c.PollInterval, 2*time.Second)
	if c.FS == nil {
		c.FS = durable.OSFS{}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	switch {
	case c.Dir == "":
		return errors.New("streams config: Dir is empty")
	case c.Source == nil:
		return errors.New("streams config: Source is nil")
	case c.Heads == nil:
		return errors.New("streams config: Heads is nil")
	}
	return nil
}

const defaultMaxAttempts = 8

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Manager holds the streams of a node. Safe for concurrent use.
type Manager struct {
	cfg Config

	mu struct {
		sync.Mutex
		streams map[string]*stream
		started bool
		stopped bool
	}
}

// NewManager loads the streams saved in cfg.Dir (creating it if needed).
// They start running at Start.
func NewManager(cfg Config) (*Manager, error) {
	cfg.ensureDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := cfg.FS.MkdirAll(cfg.Dir); err != nil {
		return nil, fmt.Errorf("streams: make %s: %w", cfg.Dir, err)
	}
	m := &Manager{cfg: cfg}
	m.mu.streams = make(map[string]*stream)
	names, err := cfg.FS.List(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("streams: list %s: %w", cfg.Dir, err)
	}
	for _, n := range names {
		base := filepath.Base(n)
		if !strings.HasSuffix(base, stateSuffix) {
			continue
		}
		s, err := m.load(strings.TrimSuffix(base, stateSuffix))
		if err != nil {
			return nil, err
		}
		m.mu.streams[s.def.Name] = s
	}
	return m, nil
}

// Start runs every stream that is not paused. Call once.
func (m *Manager) Start() {
	m.mu.Lock()
	if m.mu.started || m.mu.stopped {
		m.mu.Unlock()
		return
	}
	m.mu.started = true
	all := make([]*stream, 0, len(m.mu.streams))
	for _, s := range m.mu.streams {
		all = append(all, s)
	}
	m.mu.Unlock()
	for _, s := range all {
		s.ops.Lock()
		s.restartLocked(m)
		s.ops.Unlock()
	}
}

// Stop stops every stream, waits for their goroutines (an in-flight
// Deliver is cancelled) and closes their sinks. The cursors on disk are
// those of the last accepted batches.
func (m *Manager) Stop() {
	m.mu.Lock()
	if m.mu.stopped {
		m.mu.Unlock()
		return
	}
	m.mu.stopped = true
	all := make([]*stream, 0, len(m.mu.streams))
	for _, s := range m.mu.streams {
		all = append(all, s)
	}
	m.mu.Unlock()
	for _, s := range all {
		s.ops.Lock()
		s.stop()
		s.closeSink()
		s.ops.Unlock()
	}
}

func (m *Manager) get(name string) (*stream, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.stopped {
		return nil, ErrStopped
	}
	s, ok := m.mu.streams[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return s, nil
}

func (m *Manager) running() bool {
	return m.mu.started && !m.mu.stopped
}

// Validate checks def without creating anything: its name, sink kind
// and settings (by building the sink and closing it), filter (contract
// names must be registered) and attempts.
func (m *Manager) Validate(def Definition) error {
	sink, err := m.check(def)
	if sink != nil {
		_ = sink.Close()
	}
	return err
}

func (m *Manager) check(def Definition) (chaindata.Sink, error) {
	if !nameRE.MatchString(def.Name) {
		return nil, fmt.Errorf("%w: name %q: want 1 to 64 of A-Z a-z 0-9 . _ - starting with a letter or digit", ErrBadInput, def.Name)
	}
	if def.MaxAttempts < 0 || def.MaxAttempts > 100 {
		return nil, fmt.Errorf("%w: maxAttempts %d: want 0 (default 8) to 100", ErrBadInput, def.MaxAttempts)
	}
	if err := m.checkFilter(def.Filter); err != nil {
		return nil, err
	}
	sink, err := newSink(def.Sink)
	if err != nil {
		return nil, err
	}
	return sink, nil
}

const (
	maxFilterEntries = 1000
)

func (m *Manager) checkFilter(f Filter) error {
	if len(f.Addresses)+len(f.Contracts)+len(f.Events) > maxFilterEntries {
		return fmt.Errorf("%w: filter: more than %d addresses, contracts and events", ErrBadInput, maxFilterEntries)
	}
	if len(f.Topics) > 3 {
		return fmt.Errorf("%w: filter.topics: %d entries, at most 3 (topics 1 to 3)", ErrBadInput, len(f.Topics))
	}
	for i, t := range f.Topics {
		if len(t) > maxFilterEntries {
			return fmt.Errorf("%w: filter.topics[%d]: more than %d values", ErrBadInput, i, maxFilterEntries)
		}
	}
	for _, name := range f.Contracts {
		if m.cfg.Contracts == nil {
			return fmt.Errorf("%w: filter.contracts: %q: this node has no contract registry", ErrBadInput, name)
		}
		if _, ok := m.cfg.Contracts.ByName(name); !ok {
			return fmt.Errorf("%w: filter.contracts: %q is not a registered contract", ErrBadInput, name)
		}
	}
	for _, e := range f.Events {
		if _, _, err := parseEventSel(e); err != nil {
			return fmt.Errorf("%w: filter.events: %v", ErrBadInput, err)
		}
	}
	return nil
}

// Create adds a stream and, once the Manager is started, runs it. Its
// cursor starts at (def.StartHeight, 0).
func (m *Manager) Create(def Definition) (Info, error) {
	def = cloneDef(def)
	sink, err := m.check(def)
	if err != nil {
		return Info{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.stopped {
		_ = sink.Close()
		return Info{}, ErrStopped
	}
	if _, ok := m.mu.streams[def.Name]; ok {
		_ = sink.Close()
		return Info{}, fmt.Errorf("%w: %q", ErrExists, def.Name)
	}
	if len(m.mu.streams) >= m.cfg.MaxStreams {
		_ = sink.Close()
		return Info{}, fmt.Errorf("%w: at most %d streams", ErrBadInput, m.cfg.MaxStreams)
	}
	s := m.newStream(def, sink)
	s.st.Cursor = Cursor{Block: def.StartHeight}
	if err := s.saveState(s.st); err != nil {
		_ = sink.Close()
		return Info{}, err
	}
	m.mu.streams[def.Name] = s
	if m.running() {
		s.start()
	}
	return s.info(), nil
}

// List is every stream, by name.
func (m *Manager) List() []Info {
	m.mu.Lock()
	all := make([]*stream, 0, len(m.mu.streams))
	for _, s := range m.mu.streams {
		all = append(all, s)
	}
	m.mu.Unlock()
	out := make([]Info, 0, len(all))
	for _, s := range all {
		out = append(out, s.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get is one stream.
func (m *Manager) Get(name string) (Info, error) {
	s, err := m.get(name)
	if err != nil {
		return Info{}, err
	}
	return s.info(), nil
}

// Delete stops a stream, closes its sink and removes its state and
// dead-letter queue.
func (m *Manager) Delete(name string) error {
	s, err := m.get(name)
	if err != nil {
		return err
	}
	s.ops.Lock()
	defer s.ops.Unlock()
	m.mu.Lock()
	if m.mu.streams[name] != s {
		m.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	delete(m.mu.streams, name)
	m.mu.Unlock()
	s.stop()
	s.closeSink()
	var errs []error
	for _, p := range []string{s.stateFile.Path, s.dlqFile.Path} {
		if err := m.cfg.FS.Remove(p); err != nil && !isNotExist(err) {
			errs = append(errs, err)
		}
	}
	if err := m.cfg.FS.SyncDir(m.cfg.Dir); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("delete stream %q: %w", name, errors.Join(errs...))
	}
	return nil
}

// Pause stops a stream until Resume; the pause survives restarts.
func (m *Manager) Pause(name string) error {
	return m.update(name, func(st *persisted) error {
		st.Paused = true
		return nil
	})
}

// Resume runs a paused stream again from its cursor.
func (m *Manager) Resume(name string) error {
	return m.update(name, func(st *persisted) error {
		st.Paused = false
		return nil
	})
}

// ReplayFrom moves a stream's cursor to the first log of block height
// (back or forward); the events from there are delivered again, with
// the same IDs.
func (m *Manager) ReplayFrom(name string, height uint64) error {
	return m.update(name, func(st *persisted) error {
		st.Cursor = Cursor{Block: height}
		return nil
	})
}

// update stops the stream, changes its saved state and restarts it.
func (m *Manager) update(name string, change func(*persisted) error) error {
	s, err := m.get(name)
	if err != nil {
		return err
	}
	s.ops.Lock()
	defer s.ops.Unlock()
	s.stop()
	s.mu.Lock()
	st := s.st
	s.mu.Unlock()
	if err := change(&st); err != nil {
		s.restartLocked(m)
		return err
	}
	if err := s.saveState(st); err != nil {
		s.restartLocked(m)
		return err
	}
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
	s.restartLocked(m)
	return nil
}

// DLQ lists a stream's dead-letter queue, oldest first.
func (m *Manager) DLQ(name string) ([]DLQEntry, error) {
	s, err := m.get(name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.dlq), nil
}

// ReplayDLQ offers a stream's dead-letter events to its sink again, in
// order and in batches (each tried once, with the stream stopped
// meanwhile), removing each accepted batch from the queue. It returns
// how many events were accepted; on a refusal the rest stay queued and
// the error wraps ErrDLQReplay.
func (m *Manager) ReplayDLQ(ctx context.Context, name string) (int, error) {
	s, err := m.get(name)
	if err != nil {
		return 0, err
	}
	s.ops.Lock()
	defer s.ops.Unlock()
	if s.sink == nil {
		return 0, fmt.Errorf("%w: stream %q: %s", ErrDLQReplay, name, s.sinkErr)
	}
	s.stop()
	defer s.restartLocked(m)
	done := 0
	for {
		s.mu.Lock()
		queue := slices.Clone(s.dlq)
		s.mu.Unlock()
		if len(queue) == 0 {
			return done, nil
		}
		batch := make([]chaindata.Event, 0, m.cfg.MaxBatchEvents)
		bytes := 0
		for _, e := range queue {
			n := eventSize(&e.Event)
			if len(batch) > 0 && (len(batch) >= m.cfg.MaxBatchEvents || bytes+n > m.cfg.MaxBatchBytes) {
				break
			}
			batch = append(batch, e.Event)
			bytes += n
		}
		dctx, cancel := context.WithTimeout(ctx, m.cfg.DeliverTimeout)
		err := s.sink.Deliver(dctx, batch)
		cancel()
		if err != nil {
			return done, fmt.Errorf("%w: stream %q: %v", ErrDLQReplay, name, err)
		}
		s.delivered.Add(uint64(len(batch)))
		s.mu.Lock()
		rest := slices.Clone(s.dlq[len(batch):])
		s.mu.Unlock()
		if err := s.saveDLQ(rest); err != nil {
			return done, err
		}
		s.mu.Lock()
		s.dlq = rest
		s.dlqBytes = entriesSize(rest)
		s.mu.Unlock()
		done += len(batch)
	}
}

// StreamStats is one stream's figures.
type StreamStats struct {
	Name   string `json:"name"`
	Cursor Cursor `json:"cursor"`
	// Lag is head − cursor block (0 when caught up).
	Lag        uint64 `json:"lagBlocks"`
	Delivered  uint64 `json:"delivered"`  // events accepted by the sink
	Failures   uint64 `json:"failures"`   // refused Deliver calls
	ReadErrors uint64 `json:"readErrors"` // failed reads of the chain, retried
	DLQEvents  int    `json:"dlqEvents"`  // in the dead-letter queue now
	DLQDropped uint64 `json:"dlqDropped"` // dropped from a full queue
	Paused     bool   `json:"paused"`
	Error      string `json:"error,omitempty"`
}

// Stats gives every stream's figures, by name.
func (m *Manager) Stats() []StreamStats {
	var head uint64
	if h := m.cfg.Source.Head(); h != nil {
		head = h.Number.Uint64()
	}
	m.mu.Lock()
	all := make([]*stream, 0, len(m.mu.streams))
	for _, s := range m.mu.streams {
		all = append(all, s)
	}
	m.mu.Unlock()
	out := make([]StreamStats, 0, len(all))
	for _, s := range all {
		s.mu.Lock()
		st := StreamStats{
			Name:       s.def.Name,
			Cursor:     s.st.Cursor,
			Delivered:  s.delivered.Load(),
			Failures:   s.failures.Load(),
			ReadErrors: s.readErrors.Load(),
			DLQEvents:  len(s.dlq),
			DLQDropped: s.st.DLQDropped,
			Paused:     s.st.Paused,
			Error:      s.sinkErr,
		}
		if st.Error == "" && s.readErr != "" {
			st.Error = "reading the chain: " + s.readErr
		}
		s.mu.Unlock()
		if head > st.Cursor.Block {
			st.Lag = head - st.Cursor.Block
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func cloneDef(d Definition) Definition {
	d.Sink.Config = slices.Clone(d.Sink.Config)
	d.Filter.Addresses = slices.Clone(d.Filter.Addresses)
	d.Filter.Contracts = slices.Clone(d.Filter.Contracts)
	d.Filter.Events = slices.Clone(d.Filter.Events)
	topics := make([][]common.Hash, len(d.Filter.Topics))
	for i, t := range d.Filter.Topics {
		topics[i] = slices.Clone(t)
	}
	if d.Filter.Topics != nil {
		d.Filter.Topics = topics
	}
	return d
}
