package kafkasink

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/charter-ledger/charter/internal/chaindata"
)

const topic = "charter.events"

// events makes n events from three contracts, in block order.
func events(n int) []chaindata.Event {
	contracts := []common.Address{
		common.HexToAddress("0xAbCdEf0000000000000000000000000000000001"),
		common.HexToAddress("0xAbCdEf0000000000000000000000000000000002"),
		common.HexToAddress("0xAbCdEf0000000000000000000000000000000003"),
	}
	out := make([]chaindata.Event, n)
	for i := range out {
		block := uint64(10 + i/4)
		out[i] = chaindata.Event{
			ID:          fmt.Sprintf("1337-%d-%d", block, i%4),
			Stream:      "transfers",
			ChainID:     1337,
			BlockNumber: block,
			BlockHash:   common.BigToHash(common.Big1),
			Timestamp:   1700000000 + block,
			TxHash:      common.BigToHash(common.Big2),
			LogIndex:    uint(i % 4),
			Address:     contracts[i%len(contracts)],
			Topics:      []common.Hash{common.BigToHash(common.Big3)},
			Data:        []byte{byte(i), 0xff},
			Contract:    "Token",
			Version:     1,
			Event:       "Transfer",
			Signature:   "Transfer(address,address,uint256)",
			Args:        map[string]any{"value": fmt.Sprint(i)},
		}
	}
	return out
}

func cluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for _, a := range c.ListenAddrs() {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Fatalf("fake cluster listens on %s", a)
		}
	}
	return c
}

// consume reads n records from the topic's start, failing at the deadline.
func consume(t *testing.T, addrs []string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", len(out), n)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		out = append(out, fs.Records()...)
	}
	if len(out) != n {
		t.Fatalf("consumed %d records, want %d", len(out), n)
	}
	return out
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func TestDeliverArrivesKeyedAndOrdered(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(3, topic))
	sink, err := New(Config{Brokers: c.ListenAddrs(), Topic: topic, ProduceTimeout: 20 * time.Second, MaxBatch: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()

	evs := events(40)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Two Deliver calls, the first split into slices of MaxBatch.
	if err := sink.Deliver(ctx, evs[:25]); err != nil {
		t.Fatal(err)
	}
	if err := sink.Deliver(ctx, evs[25:]); err != nil {
		t.Fatal(err)
	}

	want := make(map[string]chaindata.Event, len(evs))
	order := make(map[string]int, len(evs)) // id -> position in evs
	for i, ev := range evs {
		want[ev.ID] = ev
		order[ev.ID] = i
	}
	recs := consume(t, c.ListenAddrs(), len(evs))
	seen := make(map[string]bool)
	lastByKey := make(map[string]int)
	partByKey := make(map[string]int32)
	for _, r := range recs {
		id, ok := header(r, HeaderEventID)
		if !ok {
			t.Fatalf("record at %d/%d has no %s header", r.Partition, r.Offset, HeaderEventID)
		}
		ev, ok := want[id]
		if !ok {
			t.Fatalf("record with unknown id %q", id)
		}
		if seen[id] {
			t.Fatalf("event %s arrived twice", id)
		}
		seen[id] = true
		wantValue, _ := json.Marshal(ev)
		if string(r.Value) != string(wantValue) {
			t.Fatalf("event %s value\n got %s\nwant %s", id, r.Value, wantValue)
		}
		var back chaindata.Event
		if err := json.Unmarshal(r.Value, &back); err != nil || back.ID != id {
			t.Fatalf("event %s value does not decode to its event: %v", id, err)
		}
		key := string(r.Key)
		if key != strings.ToLower(ev.Address.Hex()) || !strings.HasPrefix(key, "0x") || key != strings.ToLower(key) {
			t.Fatalf("event %s key %q, want lowercase address %s", id, key, ev.Address.Hex())
		}
		if s, _ := header(r, HeaderStream); s != ev.Stream {
			t.Fatalf("event %s stream header %q", id, s)
		}
		if s, _ := header(r, HeaderEvent); s != ev.Event {
			t.Fatalf("event %s event header %q", id, s)
		}
		if p, ok := partByKey[key]; ok && p != r.Partition {
			t.Fatalf("key %s in partitions %d and %d", key, p, r.Partition)
		}
		partByKey[key] = r.Partition
		if last, ok := lastByKey[key]; ok && order[id] < last {
			t.Fatalf("key %s: event %s arrived after a later event", key, id)
		}
		lastByKey[key] = order[id]
	}
	if len(seen) != len(evs) {
		t.Fatalf("got %d distinct events, want %d", len(seen), len(evs))
	}
}

func TestDeliverUnknownTopicFails(t *testing.T) {
	c := cluster(t) // no topics, auto-creation off
	sink, err := New(Config{Brokers: c.ListenAddrs(), Topic: "missing", ProduceTimeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	evs := events(3)
	err = sink.Deliver(ctx, evs)
	if err == nil {
		t.Fatal("Deliver to a missing topic succeeded")
	}
	if !strings.Contains(err.Error(), evs[0].ID) {
		t.Fatalf("error does not name the first event %s: %v", evs[0].ID, err)
	}
	t.Log(err)
}

func TestDeliverStoppedClusterFails(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(1, topic))
	sink, err := New(Config{Brokers: c.ListenAddrs(), Topic: topic, ProduceTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sink.Deliver(ctx, events(2)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	start := time.Now()
	if err := sink.Deliver(ctx, events(2)); err == nil {
		t.Fatal("Deliver to a stopped cluster succeeded")
	} else {
		t.Log(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Deliver took %v with a 3s produce timeout", d)
	}
}

func TestDeliverHonorsContext(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(1, topic))
	addrs := c.ListenAddrs() // a closed cluster answers no more calls
	c.Close()                // nothing answers
	sink, err := New(Config{Brokers: addrs, Topic: topic, ProduceTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := sink.Deliver(ctx, events(1)); err == nil {
		t.Fatal("Deliver succeeded with no cluster")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Deliver took %v past a 500ms context", d)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"no brokers", `{"topic":"t"}`, "no brokers"},
		{"bad broker", `{"brokers":["nohost"],"topic":"t"}`, "host:port"},
		{"empty topic", `{"brokers":["127.0.0.1:9092"]}`, "empty topic"},
		{"unknown field", `{"brokers":["127.0.0.1:9092"],"topic":"t","acks":0}`, "unknown field"},
		{"bad timeout", `{"brokers":["127.0.0.1:9092"],"topic":"t","produceTimeout":"soon"}`, "produceTimeout"},
		{"big batch", `{"brokers":["127.0.0.1:9092"],"topic":"t","maxBatch":100000}`, "maxBatch"},
		{"half cert", `{"brokers":["127.0.0.1:9092"],"topic":"t","tls":{"certFile":"c.pem"}}`, "keyFile"},
		{"missing ca", `{"brokers":["127.0.0.1:9092"],"topic":"t","tls":{"caFile":"/nonexistent/ca.pem"}}`, "caFile"},
		{"bad sasl", `{"brokers":["127.0.0.1:9092"],"topic":"t","sasl":{"mechanism":"gssapi","user":"u"}}`, "mechanism"},
		{"empty", ``, "no configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Factory(json.RawMessage(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestFactory(t *testing.T) {
	raw := `{"brokers":["127.0.0.1:9092"],"topic":"t","clientId":"n1","produceTimeout":"5s","maxBatch":10,
		"sasl":{"mechanism":"scram-sha-512","user":"u","password":"p"}}`
	s, err := Factory(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := s.(*Sink).cfg
	if cfg.ProduceTimeout != 5*time.Second || cfg.MaxBatch != 10 || cfg.ClientID != "n1" || cfg.SASL.User != "u" {
		t.Fatalf("config %+v", cfg)
	}
	var ms Config
	if err := json.Unmarshal([]byte(`{"brokers":["h:1"],"topic":"t","produceTimeout":1500}`), &ms); err != nil || ms.ProduceTimeout != 1500*time.Millisecond {
		t.Fatalf("millisecond timeout: %v %v", ms.ProduceTimeout, err)
	}
}
