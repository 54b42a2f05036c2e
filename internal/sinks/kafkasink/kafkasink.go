// Package kafkasink delivers Charter's chain events to a Kafka topic.
//
// Each event becomes one record: the key is the emitting contract's address
// in lowercase 0x hex, so one contract's events land in one partition in
// block order; the value is the event's JSON (chaindata.Event); the headers
// charter-event-id, charter-stream and charter-event carry the event's
// stable ID, its stream and its decoded name (empty when the log was not
// decoded). Consumers deduplicate redeliveries by charter-event-id.
//
// The producer is idempotent and waits for every in-sync replica (acks=all),
// and Deliver returns only once the broker has acknowledged every record of
// the batch, so a nil error means the events are durable in Kafka.
//
// Settings for a real cluster:
//
//   - Create the topic ahead of time (the sink never creates topics and
//     turns off auto-creation): replication factor 3,
//     min.insync.replicas=2, so an acknowledged record survives the loss of
//     one broker and a produce fails rather than landing on one replica.
//   - Keep unclean.leader.election.enable=false on the topic or broker.
//   - The producer runs with acks=all and enable.idempotence=true (the
//     idempotent producer needs the IDEMPOTENT_WRITE permission on the
//     cluster when ACLs are on, or WRITE on the topic on Kafka 3.0 and
//     later).
//   - Choose enough partitions for the consumers' parallelism; the ordering
//     guarantee is per contract, not across contracts.
//   - ProduceTimeout bounds one Deliver; set it above the time the cluster
//     needs to elect a new leader (tens of seconds), or Deliver fails and
//     the stream retries the same events (delivery is at least once).
//
// A configuration as JSON (see Factory):
//
//	{"brokers": ["kafka-1:9093", "kafka-2:9093"], "topic": "charter.events",
//	 "clientId": "charter-node-1",
//	 "tls": {"caFile": "/etc/charter/kafka-ca.pem",
//	         "certFile": "/etc/charter/kafka.crt", "keyFile": "/etc/charter/kafka.key"},
//	 "sasl": {"mechanism": "scram-sha-512", "user": "charter", "password": "..."},
//	 "produceTimeout": "30s", "maxBatch": 500}
package kafkasink

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/charter-ledger/charter/internal/chaindata"
)

// Kind is the sink kind this package registers under with the streams.
const Kind = "kafka"

// Record header names.
const (
	HeaderEventID = "charter-event-id"
	HeaderStream  = "charter-stream"
	HeaderEvent   = "charter-event"
)

// Defaults and limits.
const (
	DefaultProduceTimeout = 30 * time.Second
	DefaultMaxBatch       = 500
	// MaxMaxBatch caps MaxBatch: events are produced in slices of at most
	// MaxBatch records, so this bounds what one Deliver holds in flight.
	MaxMaxBatch = 10000
	// DefaultMaxEventBytes is the largest event value the sink produces,
	// just under Kafka's default message.max.bytes (1 MiB).
	DefaultMaxEventBytes = 1000000
	// abortWait bounds the wait for buffered records to fail once a
	// Deliver's time is up.
	abortWait = 2 * time.Second
)

// Config is a Kafka sink's configuration. Its JSON form uses the names in
// the json tags; durations are Go duration strings ("30s").
type Config struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string `json:"brokers"`
	// Topic receives every event. Required; it must exist.
	Topic string `json:"topic"`
	// ClientID names this producer to the brokers; "charter" when empty.
	ClientID string `json:"clientId,omitempty"`
	// TLS, when set, encrypts the connections.
	TLS *TLSConfig `json:"tls,omitempty"`
	// SASL, when set, authenticates the connections.
	SASL *SASLConfig `json:"sasl,omitempty"`
	// ProduceTimeout bounds one Deliver (and each record's delivery);
	// DefaultProduceTimeout when zero.
	ProduceTimeout time.Duration `json:"produceTimeout,omitempty"`
	// MaxBatch is how many records Deliver produces at once; a longer
	// slice of events goes out in consecutive slices. DefaultMaxBatch when
	// zero, at most MaxMaxBatch.
	MaxBatch int `json:"maxBatch,omitempty"`
	// MaxEventBytes is the largest record value accepted;
	// DefaultMaxEventBytes when zero. Keep it at or below the topic's
	// max.message.bytes.
	MaxEventBytes int `json:"maxEventBytes,omitempty"`
}

// TLSConfig names PEM files for a TLS connection.
type TLSConfig struct {
	// CAFile holds the certificates that sign the brokers' certificates;
	// the system roots when empty.
	CAFile string `json:"caFile,omitempty"`
	// CertFile and KeyFile, both or neither, are the client certificate.
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
	// ServerName overrides the name checked in the brokers' certificates.
	ServerName string `json:"serverName,omitempty"`
}

// SASLConfig is a SASL login.
type SASLConfig struct {
	// Mechanism is "plain", "scram-sha-256" or "scram-sha-512".
	Mechanism string `json:"mechanism"`
	User      string `json:"user"`
	Password  string `json:"password"`
}

// UnmarshalJSON reads a Config, taking produceTimeout as a Go duration
// string ("30s") or a number of milliseconds.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plainConfig Config
	var aux struct {
		plainConfig
		ProduceTimeout json.RawMessage `json:"produceTimeout,omitempty"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return fmt.Errorf("kafka sink config: %w", err)
	}
	*c = Config(aux.plainConfig)
	d, err := parseDuration(aux.ProduceTimeout)
	if err != nil {
		return fmt.Errorf("kafka sink config: produceTimeout: %w", err)
	}
	c.ProduceTimeout = d
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
	if len(c.Brokers) == 0 {
		return errors.New("kafka sink: no brokers")
	}
	for _, b := range c.Brokers {
		if strings.TrimSpace(b) == "" || !strings.Contains(b, ":") {
			return fmt.Errorf("kafka sink: broker %q is not host:port", b)
		}
	}
	if strings.TrimSpace(c.Topic) == "" {
		return errors.New("kafka sink: empty topic")
	}
	if c.ProduceTimeout < 0 {
		return errors.New("kafka sink: negative produceTimeout")
	}
	if c.MaxBatch < 0 || c.MaxBatch > MaxMaxBatch {
		return fmt.Errorf("kafka sink: maxBatch %d outside 0..%d", c.MaxBatch, MaxMaxBatch)
	}
	if c.MaxEventBytes < 0 {
		return errors.New("kafka sink: negative maxEventBytes")
	}
	if t := c.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("kafka sink: tls needs both certFile and keyFile, or neither")
	}
	if s := c.SASL; s != nil {
		switch strings.ToLower(s.Mechanism) {
		case "plain", "scram-sha-256", "scram-sha-512":
		default:
			return fmt.Errorf("kafka sink: sasl mechanism %q (want plain, scram-sha-256 or scram-sha-512)", s.Mechanism)
		}
		if s.User == "" {
			return errors.New("kafka sink: sasl needs a user")
		}
	}
	return nil
}

// Sink produces events to a Kafka topic. Safe for concurrent use, though a
// stream calls Deliver from one goroutine at a time.
type Sink struct {
	cfg  Config
	opts []kgo.Opt

	mu     sync.Mutex
	client *kgo.Client // replaced when records are stuck in it (see produce)
	closed bool
}

var _ chaindata.Sink = (*Sink)(nil)

// Factory builds a Sink from its JSON configuration (Config's json tags),
// in the shape the streams take sink factories in.
func Factory(raw json.RawMessage) (chaindata.Sink, error) {
	var cfg Config
	if len(raw) == 0 {
		return nil, errors.New("kafka sink: no configuration")
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, err
	}
	return New(cfg)
}

// New checks cfg and builds a Sink. It does not dial: the first Deliver
// connects, and fails if the brokers cannot be reached.
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "charter"
	}
	if cfg.ProduceTimeout == 0 {
		cfg.ProduceTimeout = DefaultProduceTimeout
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxEventBytes == 0 {
		cfg.MaxEventBytes = DefaultMaxEventBytes
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence stays on (franz-go's default)
		kgo.RecordDeliveryTimeout(cfg.ProduceTimeout),
		kgo.ProduceRequestTimeout(cfg.ProduceTimeout),
		kgo.MaxBufferedRecords(cfg.MaxBatch),
		kgo.MaxBufferedBytes(cfg.MaxBatch * (cfg.MaxEventBytes + 1024)),
		kgo.ProducerBatchMaxBytes(int32(min(cfg.MaxEventBytes+1024, 1<<20))),
		kgo.DialTimeout(10 * time.Second),
		kgo.RetryTimeout(cfg.ProduceTimeout),
	}
	if cfg.TLS != nil {
		tc, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if cfg.SASL != nil {
		opts = append(opts, kgo.SASL(saslMechanism(cfg.SASL)))
	}
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka sink: %w", err)
	}
	return &Sink{cfg: cfg, opts: opts, client: client}, nil
}

// current is the client Deliver produces through; nil once closed.
func (s *Sink) current() *kgo.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	return s.client
}

// replace swaps a client that holds records it can neither deliver nor
// fail for a new one, and closes the old one in the background (closing
// ends its connections, which fails those records).
func (s *Sink) replace(old *kgo.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.client != old {
		return
	}
	fresh, err := kgo.NewClient(s.opts...)
	if err != nil {
		// The options were accepted once; keep the old client.
		return
	}
	s.client = fresh
	go old.Close()
}

func tlsConfig(t *TLSConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka sink: tls caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka sink: tls caFile %s: no PEM certificates", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka sink: tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func saslMechanism(s *SASLConfig) sasl.Mechanism {
	switch strings.ToLower(s.Mechanism) {
	case "scram-sha-256":
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha256Mechanism()
	case "scram-sha-512":
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha512Mechanism()
	default:
		return plain.Auth{User: s.User, Pass: s.Password}.AsMechanism()
	}
}

// Key is the record key of an event: its contract address, lowercase 0x hex.
func Key(ev *chaindata.Event) []byte {
	return []byte(strings.ToLower(ev.Address.Hex()))
}

// Record builds the Kafka record for one event.
func Record(ev *chaindata.Event) (*kgo.Record, error) {
	value, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	return &kgo.Record{
		Key:   Key(ev),
		Value: value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderEventID, Value: []byte(ev.ID)},
			{Key: HeaderStream, Value: []byte(ev.Stream)},
			{Key: HeaderEvent, Value: []byte(ev.Event)},
		},
	}, nil
}

// Deliver produces events in order and returns once the brokers have
// acknowledged all of them (nil), or with an error naming the first event
// that failed. Events go out in slices of at most MaxBatch records; ctx and
// ProduceTimeout bound the whole call.
func (s *Sink) Deliver(ctx context.Context, events []chaindata.Event) error {
	if len(events) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProduceTimeout)
	defer cancel()
	for start := 0; start < len(events); start += s.cfg.MaxBatch {
		end := min(start+s.cfg.MaxBatch, len(events))
		if err := s.produce(ctx, events[start:end]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sink) produce(ctx context.Context, events []chaindata.Event) error {
	records := make([]*kgo.Record, len(events))
	for i := range events {
		r, err := Record(&events[i])
		if err != nil {
			return fmt.Errorf("kafka sink: %w", err)
		}
		if len(r.Value) > s.cfg.MaxEventBytes {
			return fmt.Errorf("kafka sink: event %s is %d bytes, above maxEventBytes %d", events[i].ID, len(r.Value), s.cfg.MaxEventBytes)
		}
		records[i] = r
	}
	cl := s.current()
	if cl == nil {
		return errors.New("kafka sink: closed")
	}
	// Each record's promise writes its own slot; done closes after the
	// last one, which orders those writes before the reads below.
	errs := make([]error, len(records))
	var pending atomic.Int64
	pending.Store(int64(len(records)))
	done := make(chan struct{})
	for i, r := range records {
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			errs[i] = err
			if pending.Add(-1) == 0 {
				close(done)
			}
		})
	}
	select {
	case <-done:
	case <-ctx.Done():
		// The client retries a record while no broker answers, and an
		// idempotent producer never fails a record whose request went
		// out unanswered (its sequence numbers would be wrong). Fail what
		// is only buffered; if records remain, give up on this client.
		// The stream retries the events later (at least once).
		abortCtx, cancel := context.WithTimeout(context.Background(), abortWait)
		_ = cl.AbortBufferedRecords(abortCtx)
		cancel()
		select {
		case <-done:
		default:
			s.replace(cl)
			return fmt.Errorf("kafka sink: topic %s: %d of %d events (from %s) not acknowledged in time: %w",
				s.cfg.Topic, pending.Load(), len(events), events[0].ID, ctx.Err())
		}
	}
	first, failed := -1, 0
	var firstErr error
	for i, err := range errs {
		if err == nil {
			continue
		}
		failed++
		if first < 0 {
			first, firstErr = i, err
		}
	}
	if failed > 0 {
		return fmt.Errorf("kafka sink: topic %s: event %s (and %d more of %d) not acknowledged: %w",
			s.cfg.Topic, events[first].ID, failed-1, len(events), firstErr)
	}
	return nil
}

// Close flushes nothing (Deliver waits for its records) and closes the
// connections.
func (s *Sink) Close() error {
	s.mu.Lock()
	cl := s.client
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if !already {
		cl.Close()
	}
	return nil
}
