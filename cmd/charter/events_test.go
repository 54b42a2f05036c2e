package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/streams"
)

// TestEventsCLI: create a webhook stream, see it in list and show (its
// secret not shown), its events arrive signed, replay, the dead-letter
// queue, delete; bad input is refused with one line.
func TestEventsCLI(t *testing.T) {
	d := startDevNode(t)
	dir := t.TempDir()
	const secret = "a secret of sixteen bytes or more"
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var delivered, badSig atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if streams.VerifySignature([]byte(secret), r.Header.Get(streams.SignatureHeader), body, time.Minute) != nil {
			badSig.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var b streams.WebhookBody
		if json.Unmarshal(body, &b) == nil {
			delivered.Add(int64(len(b.Events)))
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	rpc := []string{"--rpc", d.url}

	if out := mustRun(t, append([]string{"events", "list"}, rpc...)...); !strings.Contains(out, "no event streams") {
		t.Fatalf("list of none: %q", out)
	}
	out := mustRun(t, append([]string{"events", "create", "hook", "--webhook", srv.URL, "--secret-file", secretFile}, rpc...)...)
	if !strings.Contains(out, "stream hook created: webhook to "+srv.URL) {
		t.Fatalf("create: %q", out)
	}
	mustFail(t, `stream already exists: "hook"; choose another name`, append([]string{"events", "create", "hook", "--webhook", srv.URL, "--secret-file", secretFile}, rpc...)...)
	mustFail(t, "--webhook needs --secret-file", append([]string{"events", "create", "x", "--webhook", srv.URL}, rpc...)...)
	mustFail(t, `stream name "bad name"`, append([]string{"events", "create", "bad name", "--webhook", srv.URL, "--secret-file", secretFile}, rpc...)...)
	mustFail(t, "say where the events go", append([]string{"events", "create", "x"}, rpc...)...)
	mustFail(t, "--sink kafka needs --config FILE", append([]string{"events", "create", "x", "--sink", "kafka"}, rpc...)...)
	mustFail(t, `--address "0x12" is not an address`, append([]string{"events", "create", "x", "--webhook", srv.URL, "--secret-file", secretFile, "--address", "0x12"}, rpc...)...)
	kafkaCfg := filepath.Join(dir, "kafka.json")
	if err := os.WriteFile(kafkaCfg, []byte(`{"brokers":[],"topic":"t"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	mustFail(t, "the node refused (400): bad stream definition: sink.config: kafka sink: no brokers", append([]string{"events", "create", "k", "--sink", "kafka", "--config", kafkaCfg}, rpc...)...)
	mustFail(t, "http only to a loopback address", append([]string{"events", "create", "x", "--webhook", "http://example.com/hook", "--secret-file", secretFile}, rpc...)...)

	// A transfer makes no log; a logging creation does.
	d.deployLogger(t)
	waitFor(t, 20*time.Second, "the webhook receives an event", func() bool { return delivered.Load() > 0 })
	list := mustRun(t, append([]string{"events", "list"}, rpc...)...)
	if !regexp.MustCompile(`(?m)^hook\s+webhook\s+` + regexp.QuoteMeta(srv.URL) + `\s+\d+\s+\d+\s+\d+\s+0\s+0\s+running$`).MatchString(list) {
		t.Fatalf("list:\n%s", list)
	}
	show := mustRun(t, append([]string{"events", "show", "hook"}, rpc...)...)
	if strings.Contains(show, secret) || !strings.Contains(show, "REDACTED") || !strings.Contains(show, "Stream        hook (running)") {
		t.Fatalf("show:\n%s", show)
	}
	var v struct {
		Name  string `json:"name"`
		Stats struct {
			Delivered uint64 `json:"delivered"`
		} `json:"stats"`
	}
	decodeJSON(t, mustRun(t, append([]string{"events", "show", "hook", "--json"}, rpc...)...), &v)
	if v.Name != "hook" || v.Stats.Delivered == 0 {
		t.Fatalf("show --json: %+v", v)
	}
	before := delivered.Load()
	if out := mustRun(t, append([]string{"events", "replay", "hook", "--from-block", "0"}, rpc...)...); !strings.Contains(out, "delivers again from block 0") {
		t.Fatalf("replay: %q", out)
	}
	waitFor(t, 20*time.Second, "the replay delivers again", func() bool { return delivered.Load() > before })
	mustFail(t, "--from-block N is required", append([]string{"events", "replay", "hook"}, rpc...)...)
	if out := mustRun(t, append([]string{"events", "dlq", "hook"}, rpc...)...); !strings.Contains(out, "is empty") {
		t.Fatalf("dlq: %q", out)
	}
	if out := mustRun(t, append([]string{"events", "dlq", "hook", "--replay"}, rpc...)...); !strings.Contains(out, "0 dead-letter events") {
		t.Fatalf("dlq --replay: %q", out)
	}
	mustRun(t, append([]string{"events", "pause", "hook"}, rpc...)...)
	if out := mustRun(t, append([]string{"events", "list"}, rpc...)...); !strings.Contains(out, "paused") {
		t.Fatalf("list after pause:\n%s", out)
	}
	mustRun(t, append([]string{"events", "resume", "hook"}, rpc...)...)
	if out := mustRun(t, append([]string{"events", "delete", "hook"}, rpc...)...); out != "stream hook deleted\n" {
		t.Fatalf("delete: %q", out)
	}
	mustFail(t, `no such stream: "hook"; 'charter events list' shows the streams`, append([]string{"events", "show", "hook"}, rpc...)...)
	mustFail(t, `unknown subcommand "frob"`, "events", "frob")
	if badSig.Load() != 0 {
		t.Fatalf("%d POSTs with a bad signature", badSig.Load())
	}

	def := filepath.Join(dir, "def.json")
	if err := os.WriteFile(def, []byte(`{"name":"fromfile","sink":{"kind":"webhook","config":{"url":"`+srv.URL+`","secret":"`+secret+`"}},"startHeight":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, append([]string{"events", "add", "--file", def}, rpc...)...); !strings.Contains(out, "stream fromfile created") || !strings.Contains(out, "from block 1") {
		t.Fatalf("add --file: %q", out)
	}
	mustFail(t, "--file holds the whole definition; drop --webhook", append([]string{"events", "add", "--file", def, "--webhook", srv.URL}, rpc...)...)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deployLogger sends, from development account 2, a contract creation
// whose init code emits one LOG1, and waits for its receipt.
func (d *devNode) deployLogger(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	acct := d.accts[2]
	nonce, err := d.client.PendingNonceAt(ctx, acct.Address)
	if err != nil {
		t.Fatal(err)
	}
	head, err := d.client.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	topic := crypto.Keccak256([]byte("Ping()"))
	initCode := append(append([]byte{0x7f}, topic...), 0x60, 0x00, 0x60, 0x00, 0xa1, 0x00) // PUSH32 topic, PUSH1 0, PUSH1 0, LOG1, STOP
	id := big.NewInt(int64(chain.DefaultChainID))
	tx, err := types.SignNewTx(acct.Key, types.LatestSignerForChainID(id), &types.DynamicFeeTx{ChainID: id, Nonce: nonce, Gas: 200_000,
		GasFeeCap: new(big.Int).Mul(head.BaseFee, big.NewInt(2)), GasTipCap: new(big.Int), Data: initCode})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.client.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	for {
		r, err := d.client.TransactionReceipt(ctx, tx.Hash())
		if err == nil {
			if r.Status != types.ReceiptStatusSuccessful || len(r.Logs) != 1 {
				t.Fatalf("logging creation %s: status %d, %d logs", tx.Hash().Hex(), r.Status, len(r.Logs))
			}
			return
		} else if !errors.Is(err, ethereum.NotFound) {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no receipt for %s within the deadline", tx.Hash().Hex())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
