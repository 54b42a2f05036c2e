package natssink

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/charter-ledger/charter/internal/chaindata"
)

const (
	prefix = "charter.events"
	stream = "CHARTER_EVENTS"
)

func events(n int) []chaindata.Event {
	out := make([]chaindata.Event, n)
	for i := range out {
		block := uint64(10 + i/3)
		ev := chaindata.Event{
			ID:          fmt.Sprintf("1337-%d-%d", block, i%3),
			Stream:      "transfers",
			ChainID:     1337,
			BlockNumber: block,
			LogIndex:    uint(i % 3),
			Address:     common.HexToAddress(fmt.Sprintf("0xAbCdEf00000000000000000000000000000000%02x", i%2)),
			Topics:      []common.Hash{common.BigToHash(common.Big3)},
			Data:        []byte{byte(i)},
		}
		if i%2 == 0 {
			ev.Contract, ev.Version, ev.Event = "Token.v2", 1, "Transfer"
			ev.Args = map[string]any{"value": fmt.Sprint(i)}
		}
		out[i] = ev
	}
	return out
}

func embedded(t *testing.T) (*server.Server, string) {
	t.Helper()
	s, url, err := StartEmbedded(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("embedded server at %s", url)
	}
	return s, url
}

func newSink(t *testing.T, url string) *Sink {
	t.Helper()
	s, err := New(Config{URL: url, Subject: prefix, Stream: stream, CreateStream: true, Timeout: 5 * time.Second, MaxBatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// stored reads every message of the stream.
func stored(t *testing.T, url string) []jetstream.RawStreamMsg {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get %d: %v", seq, err)
		}
		out = append(out, *m)
	}
	if uint64(len(out)) != info.State.Msgs {
		t.Fatalf("read %d messages, stream holds %d", len(out), info.State.Msgs)
	}
	return out
}

func TestDeliverStoresEachEventOnce(t *testing.T) {
	_, url := embedded(t)
	sink := newSink(t, url)
	evs := events(11)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sink.Deliver(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// A retried batch, overlapping and whole: JetStream drops the repeats.
	if err := sink.Deliver(ctx, evs[5:]); err != nil {
		t.Fatal(err)
	}
	if err := sink.Deliver(ctx, evs); err != nil {
		t.Fatal(err)
	}
	msgs := stored(t, url)
	if len(msgs) != len(evs) {
		t.Fatalf("stream holds %d messages, want %d", len(msgs), len(evs))
	}
	for i, m := range msgs {
		ev := evs[i]
		if got := m.Header.Get(jetstream.MsgIDHeader); got != ev.ID {
			t.Fatalf("message %d has Nats-Msg-Id %q, want %q", i, got, ev.ID)
		}
		if got := m.Header.Get(HeaderEventID); got != ev.ID {
			t.Fatalf("message %d has %s %q", i, HeaderEventID, got)
		}
		want, _ := json.Marshal(ev)
		if string(m.Data) != string(want) {
			t.Fatalf("message %d\n got %s\nwant %s", i, m.Data, want)
		}
		if m.Subject != Subject(prefix, &ev) {
			t.Fatalf("message %d on %s, want %s", i, m.Subject, Subject(prefix, &ev))
		}
	}
	// Named and unnamed contracts, decoded and raw logs.
	if s := Subject(prefix, &evs[0]); s != "charter.events.Token_v2.Transfer" {
		t.Fatalf("subject %s", s)
	}
	if s := Subject(prefix, &evs[1]); s != "charter.events."+strings.ToLower(evs[1].Address.Hex())+".log" {
		t.Fatalf("subject %s", s)
	}
}

func TestIDsStableAcrossSinks(t *testing.T) {
	_, url := embedded(t)
	evs := events(6)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A node restart: a new sink (a new connection) redelivers the same
	// events, rebuilt from the chain with the same IDs.
	if err := newSink(t, url).Deliver(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := newSink(t, url).Deliver(ctx, events(6)); err != nil {
		t.Fatal(err)
	}
	if n := len(stored(t, url)); n != len(evs) {
		t.Fatalf("stream holds %d messages after a redelivery by a new sink, want %d", n, len(evs))
	}
	for i, ev := range events(6) {
		m, _ := Msg(prefix, &ev)
		if m.Header.Get(HeaderEventID) != evs[i].ID {
			t.Fatalf("event %d id changed", i)
		}
	}
}

func TestDeliverStoppedServerFails(t *testing.T) {
	srv, url := embedded(t)
	sink := newSink(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sink.Deliver(ctx, events(2)); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	start := time.Now()
	err := sink.Deliver(ctx, events(3))
	if err == nil {
		t.Fatal("Deliver to a stopped server succeeded")
	}
	t.Log(err)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Deliver took %v with a 5s timeout", d)
	}
}

func TestDeliverNoStreamFails(t *testing.T) {
	_, url := embedded(t)
	s, err := New(Config{URL: url, Subject: "other.events", Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Deliver(ctx, events(1)); err == nil {
		t.Fatal("Deliver with no stream on the subject succeeded")
	} else if !strings.Contains(err.Error(), "1337-10-0") {
		t.Fatalf("error does not name the event: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"no url", `{"subject":"a"}`, "no url"},
		{"bad url", `{"url":"http://127.0.0.1:4222","subject":"a"}`, "bad url"},
		{"no host", `{"url":"nats://","subject":"a"}`, "no host"},
		{"empty subject", `{"url":"nats://127.0.0.1:4222"}`, "empty subject"},
		{"wildcard subject", `{"url":"nats://127.0.0.1:4222","subject":"a.*"}`, "subject"},
		{"create without stream", `{"url":"nats://127.0.0.1:4222","subject":"a","createStream":true}`, "stream name"},
		{"creds and token", `{"url":"nats://127.0.0.1:4222","subject":"a","credsFile":"x","token":"y"}`, "not both"},
		{"bad timeout", `{"url":"nats://127.0.0.1:4222","subject":"a","timeout":"later"}`, "timeout"},
		{"unknown field", `{"url":"nats://127.0.0.1:4222","subject":"a","acks":1}`, "unknown field"},
		{"big batch", `{"url":"nats://127.0.0.1:4222","subject":"a","maxBatch":1000000}`, "maxBatch"},
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
	_, url := embedded(t)
	raw := fmt.Sprintf(`{"url":%q,"subject":"charter.events","stream":%q,"createStream":true,"duplicates":"1h","timeout":"5s","maxBatch":8}`, url, stream)
	s, err := Factory(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := s.(*Sink).cfg
	if cfg.Duplicates != time.Hour || cfg.Timeout != 5*time.Second || cfg.MaxBatch != 8 || cfg.Replicas != 1 {
		t.Fatalf("config %+v", cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The first Deliver connects and creates the stream.
	if err := s.Deliver(ctx, events(1)); err != nil {
		t.Fatal(err)
	}
	st, err := s.(*Sink).js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if d := st.CachedInfo().Config.Duplicates; d != time.Hour {
		t.Fatalf("stream duplicate window %v", d)
	}
}

// TestServerDownAtStart: building a sink does not wait for its server; a
// Deliver while the server is down fails, and one after it comes up
// connects, creates the stream and succeeds.
func TestServerDownAtStart(t *testing.T) {
	dir := t.TempDir()
	srv, url, err := StartEmbedded(dir, "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	port := srv.Addr().(*net.TCPAddr).Port
	srv.Shutdown()
	srv.WaitForShutdown()

	start := time.Now()
	sink := newSink(t, url)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("New took %v with the server down", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sink.Deliver(ctx, events(1)); err == nil {
		t.Fatal("Deliver with the server down succeeded")
	} else {
		t.Log(err)
	}
	srv, _, err = StartEmbedded(dir, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if err := sink.Deliver(ctx, events(2)); err != nil {
		t.Fatalf("Deliver once the server is up: %v", err)
	}
	if got := stored(t, url); len(got) != 2 {
		t.Fatalf("stream holds %d messages, want 2", len(got))
	}
}
