package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/sinks/natssink"
	"github.com/charter-ledger/charter/internal/streams"
	"github.com/charter-ledger/charter/internal/system"
)

// streamsCall sends a request to the node's /api/v1/streams API and
// decodes the JSON answer (nil for an empty one).
func streamsCall(t *testing.T, tn *testNode, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+tn.RPCAddr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %d, undecodable answer %q: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode, out
}

// webhookReceiver is a webhook endpoint on 127.0.0.1 that checks every
// POST's signature and records the events by ID.
type webhookReceiver struct {
	srv    *httptest.Server
	secret []byte

	mu       sync.Mutex
	received map[string]int // event ID → times delivered
	events   map[string]map[string]any
	badSigs  int
}

func newWebhookReceiver(t *testing.T, secret string) *webhookReceiver {
	w := &webhookReceiver{secret: []byte(secret), received: map[string]int{}, events: map[string]map[string]any{}}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, 8<<20))
		if err != nil {
			http.Error(rw, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		if err := streams.VerifySignature(w.secret, r.Header.Get(streams.SignatureHeader), body, 5*time.Minute); err != nil {
			w.mu.Lock()
			w.badSigs++
			w.mu.Unlock()
			http.Error(rw, err.Error(), http.StatusUnauthorized)
			return
		}
		var batch struct {
			Stream string           `json:"stream"`
			Events []map[string]any `json:"events"`
		}
		if err := json.Unmarshal(body, &batch); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		for _, ev := range batch.Events {
			id, _ := ev["id"].(string)
			w.received[id]++
			w.events[id] = ev
		}
		w.mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// got returns how many times the event was delivered and its last copy.
func (w *webhookReceiver) got(id string) (int, map[string]any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.received[id], w.events[id]
}

// logCreation is a contract creation whose init code emits one LOG1 with
// topic and no data, and deploys nothing.
func logCreation(nonce uint64, topic [32]byte) *types.DynamicFeeTx {
	code := append([]byte{0x7f}, topic[:]...)               // PUSH32 topic
	code = append(code, 0x60, 0x00, 0x60, 0x00, 0xa1, 0x00) // PUSH1 0 (size), PUSH1 0 (offset), LOG1, STOP
	return &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce, Gas: 100_000,
		GasFeeCap: big.NewInt(2e9), GasTipCap: big.NewInt(1), Data: code}
}

// TestStreamsOfANode runs a development node with a webhook stream: a log
// of a final block reaches the receiver signed, the stream's figures are
// on /metrics, and after a restart on the same data directory the stream
// goes on from its cursor without delivering the first event again.
func TestStreamsOfANode(t *testing.T) {
	dir := t.TempDir()
	withMetrics := func(c *Config) { c.MetricsAddr = "127.0.0.1:0" }
	tn := startNodeWith(t, dir, withMetrics)
	const secret = "a webhook secret of the test"
	recv := newWebhookReceiver(t, secret)

	def := fmt.Sprintf(`{"name":"logs","sink":{"kind":"webhook","config":{"url":%q,"secret":%q,"timeoutMs":5000}}}`, recv.srv.URL, secret)
	status, out := streamsCall(t, tn, http.MethodPost, "/api/v1/streams", def)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, out)
	}
	if cfg := fmt.Sprint(out["sink"]); strings.Contains(cfg, secret) {
		t.Fatalf("the created stream shows its secret: %v", out)
	}
	status, out = streamsCall(t, tn, http.MethodPost, "/api/v1/streams", def)
	if status != http.StatusConflict {
		t.Fatalf("create twice: %d %v, want 409", status, out)
	}
	for _, bad := range []string{
		`{"name":"x","sink":{"kind":"carrier-pigeon"}}`,
		`{"name":"bad name","sink":{"kind":"webhook","config":{"url":"https://example.com","secret":"0123456789abcdef"}}}`,
		`{"name":"y","sink":{"kind":"webhook","config":{"url":"http://example.com","secret":"0123456789abcdef"}}}`,
		`{"name":"z","sink":{"kind":"kafka","config":{"brokers":[],"topic":"t"}}}`,
		`{"name":"n","sink":{"kind":"nats","config":{}}}`,
		`not json`,
	} {
		if status, out := streamsCall(t, tn, http.MethodPost, "/api/v1/streams", bad); status != http.StatusBadRequest || out["detail"] == "" {
			t.Errorf("create %s: %d %v, want 400 with a detail", bad, status, out)
		}
	}

	topic := crypto.Keccak256Hash([]byte("Ping(uint256)"))
	tx := tn.sign(t, tn.accts[0].Key, logCreation(0, topic))
	if err := tn.client.SendTransaction(t.Context(), tx); err != nil {
		t.Fatal(err)
	}
	rec := tn.waitReceipt(t, tx.Hash())
	if rec.Status != types.ReceiptStatusSuccessful || len(rec.Logs) != 1 {
		t.Fatalf("the logging creation: status %d, %d logs", rec.Status, len(rec.Logs))
	}
	first := fmt.Sprintf("1337-%d-%d", rec.BlockNumber.Uint64(), rec.Logs[0].Index)
	waitUntil(t, 20*time.Second, "the receiver has the event "+first, func() bool {
		n, _ := recv.got(first)
		return n > 0
	})
	_, ev := recv.got(first)
	if ev["stream"] != "logs" || !strings.EqualFold(fmt.Sprint(ev["transactionHash"]), tx.Hash().Hex()) ||
		!strings.EqualFold(fmt.Sprint(ev["address"]), rec.ContractAddress.Hex()) ||
		fmt.Sprint(ev["topics"]) != fmt.Sprint([]any{topic.Hex()}) {
		t.Fatalf("event %v: want stream logs, transaction %s, address %s, topics [%s]", ev, tx.Hash().Hex(), rec.ContractAddress.Hex(), topic.Hex())
	}

	waitUntil(t, 10*time.Second, "/metrics shows the stream's lag and deliveries", func() bool {
		fams := scrape(t, tn.MetricsAddr())
		lag := fams["charter_stream_lag_blocks"]
		if lag == nil || len(lag.GetMetric()) != 1 || lag.GetMetric()[0].GetLabel()[0].GetValue() != "logs" {
			return false
		}
		return value(fams["charter_stream_delivered_total"], "stream", "logs") >= 1
	})
	// The cursor is on disk past the event before the node stops.
	waitUntil(t, 10*time.Second, "the stream's cursor passes the event's block", func() bool {
		info, err := tn.Streams().Get("logs")
		return err == nil && info.Cursor.Block > rec.BlockNumber.Uint64()
	})
	status, out = streamsCall(t, tn, http.MethodGet, "/api/v1/streams/logs", "")
	if status != http.StatusOK || out["name"] != "logs" || out["stats"] == nil {
		t.Fatalf("get: %d %v", status, out)
	}

	tn.rpc.Close()
	tn.Stop()
	tn = startNodeWith(t, dir, withMetrics)
	status, out = streamsCall(t, tn, http.MethodGet, "/api/v1/streams", "")
	if list, _ := out["streams"].([]any); status != http.StatusOK || len(list) != 1 {
		t.Fatalf("list after restart: %d %v, want the one stream", status, out)
	}
	tx2 := tn.sign(t, tn.accts[0].Key, logCreation(1, topic))
	if err := tn.client.SendTransaction(t.Context(), tx2); err != nil {
		t.Fatal(err)
	}
	rec2 := tn.waitReceipt(t, tx2.Hash())
	second := fmt.Sprintf("1337-%d-%d", rec2.BlockNumber.Uint64(), rec2.Logs[0].Index)
	waitUntil(t, 20*time.Second, "the receiver has the event "+second, func() bool {
		n, _ := recv.got(second)
		return n > 0
	})
	// Delivery is in order: a redelivery of the first event would have
	// come before the second.
	if n, _ := recv.got(first); n != 1 {
		t.Fatalf("event %s delivered %d times across the restart, want once", first, n)
	}
	recv.mu.Lock()
	bad := recv.badSigs
	recv.mu.Unlock()
	if bad != 0 {
		t.Fatalf("%d POSTs with a bad signature", bad)
	}

	if status, out := streamsCall(t, tn, http.MethodPost, "/api/v1/streams/logs/replay", `{"fromBlock":`+rec.BlockNumber.String()+`}`); status != http.StatusNoContent {
		t.Fatalf("replay: %d %v", status, out)
	}
	waitUntil(t, 20*time.Second, "the replay delivers the first event again, same ID", func() bool {
		n, _ := recv.got(first)
		return n == 2
	})
	if status, out := streamsCall(t, tn, http.MethodDelete, "/api/v1/streams/logs", ""); status != http.StatusNoContent {
		t.Fatalf("delete: %d %v", status, out)
	}
	if status, _ := streamsCall(t, tn, http.MethodGet, "/api/v1/streams/logs", ""); status != http.StatusNotFound {
		t.Fatalf("get after delete: %d, want 404", status)
	}
}

// TestStreamsRoles: with the access middleware's identities, reading the
// streams needs the read role and changing them the admin role, both in
// the node's own organization.
func TestStreamsRoles(t *testing.T) {
	tn := startNodeWith(t, t.TempDir(), func(c *Config) { c.Org = "org0" }) // as a node of an init network
	h := tn.streamsHandler()
	call := func(id *auth.Identity, method, path, body string) int {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req = req.WithContext(auth.NewContext(context.Background(), id))
		rw := httptest.NewRecorder()
		h.ServeHTTP(rw, req)
		return rw.Code
	}
	reader := &auth.Identity{Kind: auth.KindToken, Subject: "app", Org: "org0", Roles: system.RoleRead}
	admin := &auth.Identity{Kind: auth.KindToken, Subject: "ops", Org: "org0", Roles: system.RoleRead | system.RoleAdmin}
	otherAdmin := &auth.Identity{Kind: auth.KindToken, Subject: "ops", Org: "org1", Roles: system.RoleRead | system.RoleAdmin}
	anon := &auth.Identity{Kind: auth.KindAnonymous, Roles: system.RoleRead | system.RoleAdmin}
	def := `{"name":"s","sink":{"kind":"webhook","config":{"url":"http://127.0.0.1:1/hook","secret":"0123456789abcdef"}}}`

	for _, c := range []struct {
		id           *auth.Identity
		method, path string
		body         string
		want         int
	}{
		{reader, http.MethodGet, "/api/v1/streams", "", http.StatusOK},
		{reader, http.MethodPost, "/api/v1/streams", def, http.StatusForbidden},
		{otherAdmin, http.MethodGet, "/api/v1/streams", "", http.StatusForbidden},
		{otherAdmin, http.MethodPost, "/api/v1/streams", def, http.StatusForbidden},
		{anon, http.MethodPost, "/api/v1/streams", def, http.StatusForbidden},
		{admin, http.MethodPost, "/api/v1/streams", def, http.StatusCreated},
		{reader, http.MethodGet, "/api/v1/streams/s/dlq", "", http.StatusOK},
		{reader, http.MethodPost, "/api/v1/streams/s/replay", `{"fromBlock":0}`, http.StatusForbidden},
		{reader, http.MethodDelete, "/api/v1/streams/s", "", http.StatusForbidden},
		{admin, http.MethodPost, "/api/v1/streams/s/pause", "", http.StatusNoContent},
		{admin, http.MethodDelete, "/api/v1/streams/s", "", http.StatusNoContent},
	} {
		if got := call(c.id, c.method, c.path, c.body); got != c.want {
			t.Errorf("%s %s %s as %s/%s with roles %v: %d, want %d", c.method, c.path, c.body, c.id.Org, c.id.Subject, c.id.Roles, got, c.want)
		}
	}
	if got := streamsRoute("/api/v1/streams/s/dlq/replay"); got != "/api/v1/streams/{name}/dlq/replay" {
		t.Errorf("streamsRoute: %s", got)
	}
}

// TestStuckStreamDoesNotSlowTheNode: a webhook that never answers holds
// its stream at the first event while blocks go on being committed; the
// stream's lag grows on /metrics.
func TestStuckStreamDoesNotSlowTheNode(t *testing.T) {
	tn := startNodeWith(t, t.TempDir(), func(c *Config) { c.MetricsAddr = "127.0.0.1:0" })
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	def := fmt.Sprintf(`{"name":"stuck","sink":{"kind":"webhook","config":{"url":%q,"secret":"0123456789abcdef","timeoutMs":300000}}}`, srv.URL)
	if status, out := streamsCall(t, tn, http.MethodPost, "/api/v1/streams", def); status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, out)
	}
	topic := crypto.Keccak256Hash([]byte("Ping(uint256)"))
	var last *types.Receipt
	for nonce := uint64(0); nonce < 4; nonce++ {
		tx := tn.sign(t, tn.accts[1].Key, logCreation(nonce, topic))
		if err := tn.client.SendTransaction(t.Context(), tx); err != nil {
			t.Fatal(err)
		}
		last = tn.waitReceipt(t, tx.Hash())
	}
	waitUntil(t, 10*time.Second, "/metrics shows the stuck stream lagging", func() bool {
		info, err := tn.Streams().Get("stuck")
		if err != nil || info.Cursor.Block >= last.BlockNumber.Uint64() {
			return false
		}
		return value(scrape(t, tn.MetricsAddr())["charter_stream_lag_blocks"], "stream", "stuck") >= 1
	})
}

// TestStreamsToNATSAndKafka: a node offers the nats and kafka sink kinds;
// a log reaches an embedded JetStream server and a fake Kafka cluster,
// each message under the event's ID.
func TestStreamsToNATSAndKafka(t *testing.T) {
	tn := startNode(t, t.TempDir())
	ns, natsURL, err := natssink.StartEmbedded(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "charter.events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	brokers, _ := json.Marshal(kc.ListenAddrs())

	for _, def := range []string{
		fmt.Sprintf(`{"name":"to-nats","sink":{"kind":"nats","config":{"url":%q,"subject":"charter.events","stream":"CHARTER","createStream":true,"timeout":"5s"}}}`, natsURL),
		fmt.Sprintf(`{"name":"to-kafka","sink":{"kind":"kafka","config":{"brokers":%s,"topic":"charter.events","produceTimeout":"5s"}}}`, brokers),
	} {
		if status, out := streamsCall(t, tn, http.MethodPost, "/api/v1/streams", def); status != http.StatusCreated {
			t.Fatalf("create %s: %d %v", def, status, out)
		}
	}
	topic := crypto.Keccak256Hash([]byte("Ping(uint256)"))
	tx := tn.sign(t, tn.accts[2].Key, logCreation(0, topic))
	if err := tn.client.SendTransaction(t.Context(), tx); err != nil {
		t.Fatal(err)
	}
	rec := tn.waitReceipt(t, tx.Hash())
	id := fmt.Sprintf("1337-%d-%d", rec.BlockNumber.Uint64(), rec.Logs[0].Index)
	waitUntil(t, 20*time.Second, "both streams pass the event's block", func() bool {
		for _, name := range []string{"to-nats", "to-kafka"} {
			if info, err := tn.Streams().Get(name); err != nil || info.Cursor.Block <= rec.BlockNumber.Uint64() {
				return false
			}
		}
		return true
	})

	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "CHARTER")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, "charter.events.>")
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get(natssink.HeaderEventID); got != id {
		t.Fatalf("NATS message %s carries event %q, want %s", msg.Subject, got, id)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.ConsumeTopics("charter.events"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for len(recs) == 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no Kafka record before the deadline")
		}
		recs = append(recs, fs.Records()...)
	}
	r := recs[0]
	if string(r.Key) != strings.ToLower(rec.ContractAddress.Hex()) {
		t.Fatalf("Kafka record key %s, want the contract %s", r.Key, rec.ContractAddress.Hex())
	}
	var ev struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.Value, &ev); err != nil || ev.ID != id {
		t.Fatalf("Kafka record %s: event %q (%v), want %s", r.Value, ev.ID, err, id)
	}
}
