// Package natssink delivers Charter's chain events to a NATS JetStream
// stream.
//
// Each event is published to "<subject>.<contract>.<event>", where
// <contract> is the registered contract name (or the emitting address in
// lowercase 0x hex when the contract is not registered) and <event> is the
// decoded event name (or "log" when the log was not decoded); characters a
// NATS subject token cannot hold become "_". The payload is the event's
// JSON (chaindata.Event); the headers Nats-Msg-Id (the event's stable ID),
// Charter-Event-Id, Charter-Stream and Charter-Event go with it. JetStream
// drops a message whose Nats-Msg-Id it has already stored within the
// stream's duplicate window, so a stream retrying a batch does not store
// its events twice.
//
// Deliver publishes the batch asynchronously, then waits for every
// JetStream ack; a nil error means the stream stored (or had already
// stored) every event.
//
// Settings for a real cluster:
//
//   - Stream replicas 3 (file storage), so an ack means a quorum of servers
//     holds the message.
//   - A duplicate window (the stream's "duplicate_window", Duplicates here)
//     at least as long as the span over which Charter may redeliver the same
//     events: the streams' retry horizon plus a node restart. Beyond the
//     window a redelivered event is stored again and consumers must
//     deduplicate by Charter-Event-Id.
//   - The stream's subjects must cover "<subject>.>". With CreateStream the
//     sink creates the stream with those subjects if it is missing (it never
//     changes an existing stream); otherwise create it ahead of time.
//   - Give the sink's user publish rights on "<subject>.>" and on
//     "$JS.API.>" only when it creates the stream.
//
// A configuration as JSON (see Factory):
//
//	{"url": "tls://nats-1:4222,tls://nats-2:4222", "subject": "charter.events",
//	 "stream": "CHARTER_EVENTS", "createStream": true, "replicas": 3,
//	 "duplicates": "24h", "credsFile": "/etc/charter/nats.creds",
//	 "caFile": "/etc/charter/nats-ca.pem", "timeout": "30s", "maxBatch": 500}
//
// A node may run its own JetStream server with StartEmbedded, for a single
// machine or a test setup; a production deployment runs a NATS cluster.
package natssink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/charter-ledger/charter/internal/chaindata"
)

// Kind is the sink kind this package registers under with the streams.
const Kind = "nats"

// Header names besides JetStream's Nats-Msg-Id.
const (
	HeaderEventID = "Charter-Event-Id"
	HeaderStream  = "Charter-Stream"
	HeaderEvent   = "Charter-Event"
)

// Defaults and limits.
const (
	DefaultTimeout  = 30 * time.Second
	DefaultMaxBatch = 500
	// MaxMaxBatch caps MaxBatch, the number of unacknowledged publishes
	// one Deliver holds.
	MaxMaxBatch = 10000
	// DefaultDuplicates is the duplicate window of a stream the sink
	// creates.
	DefaultDuplicates = 24 * time.Hour
	// maxDialTimeout bounds one attempt to reach a server.
	maxDialTimeout = 10 * time.Second
)

// Config is a NATS JetStream sink's configuration. Its JSON form uses the
// names in the json tags; durations are Go duration strings ("30s") or
// milliseconds.
type Config struct {
	// URL is one NATS server URL or several separated by commas
	// (nats://, tls://). Required.
	URL string `json:"url"`
	// Subject is the prefix events are published under. Required.
	Subject string `json:"subject"`
	// Stream is the JetStream stream expected to store the events. When
	// set, every publish must be acknowledged by that stream.
	Stream string `json:"stream,omitempty"`
	// CreateStream creates Stream (subjects "<Subject>.>") if it is
	// missing. Needs Stream.
	CreateStream bool `json:"createStream,omitempty"`
	// Replicas and Duplicates shape a stream the sink creates; 1 and
	// DefaultDuplicates when zero.
	Replicas   int           `json:"replicas,omitempty"`
	Duplicates time.Duration `json:"duplicates,omitempty"`
	// CredsFile (a NATS .creds file) or Token authenticates; at most one.
	CredsFile string `json:"credsFile,omitempty"`
	Token     string `json:"token,omitempty"`
	// CAFile holds the certificates that sign the servers' certificates.
	CAFile string `json:"caFile,omitempty"`
	// Timeout bounds connecting and one Deliver; DefaultTimeout when zero.
	Timeout time.Duration `json:"timeout,omitempty"`
	// MaxBatch is how many publishes Deliver has awaiting acks at once;
	// DefaultMaxBatch when zero, at most MaxMaxBatch.
	MaxBatch int `json:"maxBatch,omitempty"`
}

// UnmarshalJSON reads a Config, rejecting unknown fields and taking the
// durations as Go duration strings or milliseconds.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plainConfig Config
	var aux struct {
		plainConfig
		Duplicates json.RawMessage `json:"duplicates,omitempty"`
		Timeout    json.RawMessage `json:"timeout,omitempty"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return fmt.Errorf("nats sink config: %w", err)
	}
	*c = Config(aux.plainConfig)
	var err error
	if c.Duplicates, err = parseDuration(aux.Duplicates); err != nil {
		return fmt.Errorf("nats sink config: duplicates: %w", err)
	}
	if c.Timeout, err = parseDuration(aux.Timeout); err != nil {
		return fmt.Errorf("nats sink config: timeout: %w", err)
	}
	return nil
}

func parseDuration(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return time.ParseDuration(s)
	}
	var ms int64
	if err := json.Unmarshal(raw, &ms); err != nil {
		return 0, errors.New("want a duration string such as \"30s\" or milliseconds")
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.URL) == "" {
		return errors.New("nats sink: no url")
	}
	for _, u := range strings.Split(c.URL, ",") {
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil {
			return fmt.Errorf("nats sink: bad url %q: %w", u, err)
		}
		switch p.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("nats sink: bad url %q: scheme must be nats, tls, ws or wss", u)
		}
		if p.Host == "" {
			return fmt.Errorf("nats sink: bad url %q: no host", u)
		}
	}
	if c.Subject == "" {
		return errors.New("nats sink: empty subject")
	}
	for _, tok := range strings.Split(c.Subject, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return fmt.Errorf("nats sink: subject %q is not a plain dotted subject", c.Subject)
		}
	}
	if c.Stream != "" && strings.ContainsAny(c.Stream, " \t\r\n.*>/\\") {
		return fmt.Errorf("nats sink: bad stream name %q", c.Stream)
	}
	if c.CreateStream && c.Stream == "" {
		return errors.New("nats sink: createStream needs a stream name")
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("nats sink: replicas %d outside 0..5", c.Replicas)
	}
	if c.Duplicates < 0 || c.Timeout < 0 {
		return errors.New("nats sink: negative duration")
	}
	if c.CredsFile != "" && c.Token != "" {
		return errors.New("nats sink: set credsFile or token, not both")
	}
	if c.MaxBatch < 0 || c.MaxBatch > MaxMaxBatch {
		return fmt.Errorf("nats sink: maxBatch %d outside 0..%d", c.MaxBatch, MaxMaxBatch)
	}
	return nil
}

// Sink publishes events to JetStream. Safe for concurrent use, though a
// stream calls Deliver from one goroutine at a time.
type Sink struct {
	cfg  Config
	opts []nats.Option

	// mu guards the connection, made by the first Deliver that needs it
	// (so that building a sink never waits on the network), and closed.
	mu      sync.Mutex
	nc      *nats.Conn
	js      jetstream.JetStream
	ensured bool // CreateStream done
	closed  bool
}

var _ chaindata.Sink = (*Sink)(nil)

// Factory builds a Sink from its JSON configuration (Config's json tags),
// in the shape the streams take sink factories in.
func Factory(raw json.RawMessage) (chaindata.Sink, error) {
	if len(raw) == 0 {
		return nil, errors.New("nats sink: no configuration")
	}
	var cfg Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, err
	}
	return New(cfg)
}

// New checks cfg and builds a Sink without touching the network: the
// first Deliver connects (each dial bounded by Timeout, at most
// maxDialTimeout) and, with CreateStream, creates the stream if it is
// missing; a Deliver that cannot fails, and the next one tries again.
// Once connected, the connection reconnects by itself; a Deliver while it
// is down fails.
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Duplicates == 0 {
		cfg.Duplicates = DefaultDuplicates
	}
	opts := []nats.Option{
		nats.Name("charter"),
		nats.Timeout(min(cfg.Timeout, maxDialTimeout)),
		nats.MaxReconnects(-1),
		nats.ReconnectBufSize(-1), // a publish while disconnected fails at once
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	return &Sink{cfg: cfg, opts: opts}, nil
}

// conn connects on first use and ensures the stream; the caller holds
// no lock.
func (s *Sink) conn(ctx context.Context) (*nats.Conn, jetstream.JetStream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, errors.New("nats sink: closed")
	}
	if s.nc == nil {
		nc, err := nats.Connect(s.cfg.URL, s.opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("nats sink: connect %s: %w", redactURLs(s.cfg.URL), err)
		}
		js, err := jetstream.New(nc,
			jetstream.WithPublishAsyncMaxPending(s.cfg.MaxBatch),
			jetstream.WithPublishAsyncTimeout(s.cfg.Timeout),
			jetstream.WithDefaultTimeout(s.cfg.Timeout))
		if err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("nats sink: %w", err)
		}
		s.nc, s.js = nc, js
	}
	if s.cfg.CreateStream && !s.ensured {
		if err := s.ensureStream(ctx); err != nil {
			return nil, nil, err
		}
		s.ensured = true
	}
	return s.nc, s.js, nil
}

// redactURLs hides passwords in a comma-separated list of URLs.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

func (s *Sink) ensureStream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	_, err := s.js.Stream(ctx, s.cfg.Stream)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("nats sink: look up stream %s: %w", s.cfg.Stream, err)
	}
	_, err = s.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       s.cfg.Stream,
		Subjects:   []string{s.cfg.Subject + ".>"},
		Storage:    jetstream.FileStorage,
		Replicas:   s.cfg.Replicas,
		Duplicates: s.cfg.Duplicates,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("nats sink: create stream %s: %w", s.cfg.Stream, err)
	}
	return nil
}

// Subject is where an event is published under the prefix.
func Subject(prefix string, ev *chaindata.Event) string {
	contract := ev.Contract
	if contract == "" {
		contract = strings.ToLower(ev.Address.Hex())
	}
	event := ev.Event
	if event == "" {
		event = "log"
	}
	return prefix + "." + token(contract) + "." + token(event)
}

// token makes s one NATS subject token: no dots, wildcards or whitespace.
func token(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f:
			return '_'
		}
		return r
	}, s)
}

// Msg builds the NATS message for one event.
func Msg(prefix string, ev *chaindata.Event) (*nats.Msg, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	m := nats.NewMsg(Subject(prefix, ev))
	m.Data = data
	m.Header.Set(HeaderEventID, ev.ID)
	m.Header.Set(HeaderStream, ev.Stream)
	if ev.Event != "" {
		m.Header.Set(HeaderEvent, ev.Event)
	}
	return m, nil
}

// Deliver publishes events in order with their IDs as JetStream message
// IDs and returns once JetStream has acknowledged every one (nil), or with
// an error naming the first that failed. At most MaxBatch publishes await
// acks at once; ctx and Timeout bound the whole call.
func (s *Sink) Deliver(ctx context.Context, events []chaindata.Event) error {
	if len(events) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	nc, js, err := s.conn(ctx)
	if err != nil {
		return err
	}
	max := int(nc.MaxPayload())
	for start := 0; start < len(events); start += s.cfg.MaxBatch {
		end := min(start+s.cfg.MaxBatch, len(events))
		if err := s.publish(ctx, js, events[start:end], max); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sink) publish(ctx context.Context, js jetstream.JetStream, events []chaindata.Event, maxPayload int) error {
	var popts []jetstream.PublishOpt
	if s.cfg.Stream != "" {
		popts = append(popts, jetstream.WithExpectStream(s.cfg.Stream))
	}
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	for i := range events {
		ev := &events[i]
		m, err := Msg(s.cfg.Subject, ev)
		if err != nil {
			return fmt.Errorf("nats sink: %w", err)
		}
		if maxPayload > 0 && len(m.Data) > maxPayload {
			return fmt.Errorf("nats sink: event %s is %d bytes, above the server's max payload %d", ev.ID, len(m.Data), maxPayload)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("nats sink: event %s: %w", ev.ID, err)
		}
		f, err := js.PublishMsgAsync(m, append(popts, jetstream.WithMsgID(ev.ID))...)
		if err != nil {
			return fmt.Errorf("nats sink: publish event %s to %s: %w", ev.ID, m.Subject, err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if s.cfg.Stream != "" && ack.Stream != s.cfg.Stream {
				return fmt.Errorf("nats sink: event %s stored in stream %s, want %s", events[i].ID, ack.Stream, s.cfg.Stream)
			}
		case err := <-f.Err():
			return fmt.Errorf("nats sink: event %s (%d of %d) not acknowledged: %w", events[i].ID, i+1, len(events), err)
		case <-ctx.Done():
			return fmt.Errorf("nats sink: event %s (%d of %d) not acknowledged: %w", events[i].ID, i+1, len(events), ctx.Err())
		}
	}
	return nil
}

// Close closes the connection; publishes still awaiting acks fail.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.nc != nil {
		s.nc.Close()
	}
	return nil
}

// StartEmbedded runs a NATS server with JetStream inside this process,
// storing its streams under dir, listening on host:port (port -1 picks a
// free port). It returns the running server and its client URL; stop it
// with Shutdown then WaitForShutdown. It is a single server with no
// authentication: bind it to 127.0.0.1 unless something in front of it
// restricts access, and use a NATS cluster for production.
func StartEmbedded(dir string, host string, port int) (*server.Server, string, error) {
	if dir == "" {
		return nil, "", errors.New("nats embedded: no store directory")
	}
	if host == "" {
		host = "127.0.0.1"
	}
	opts := &server.Options{
		ServerName:    "charter-embedded",
		Host:          host,
		Port:          port,
		JetStream:     true,
		StoreDir:      dir,
		NoSigs:        true,
		NoLog:         true,
		HTTPPort:      0, // no monitoring listener
		MaxPayload:    1 << 20,
		MaxConn:       1024,
		WriteDeadline: 10 * time.Second,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, "", fmt.Errorf("nats embedded: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, "", errors.New("nats embedded: not ready within 10s")
	}
	return s, s.ClientURL(), nil
}
