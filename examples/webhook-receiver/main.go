// Command webhook-receiver is a minimal receiver of a Charter event
// stream: it checks each batch's signature, appends the events it has not
// seen to a JSON-lines file (synced before it answers), and prints the
// decoded ones. Stopped and started again, it loses nothing: the node
// retries a batch until a 2xx answer, and the file's ids drop the
// redelivered events.
//
//	go run ./examples/webhook-receiver --secret-file hook.secret --out events.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/charter-ledger/charter/internal/streams"
)

type event struct {
	ID          string         `json:"id"`
	BlockNumber uint64         `json:"blockNumber"`
	Contract    string         `json:"contract"`
	Event       string         `json:"event"`
	Args        map[string]any `json:"args"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	secretFile := flag.String("secret-file", "", "file whose first line is the stream's secret")
	out := flag.String("out", "events.jsonl", "JSON-lines file of the events received")
	flag.Parse()
	raw, err := os.ReadFile(*secretFile)
	if err != nil {
		log.Fatalf("webhook-receiver: --secret-file: %v", err)
	}
	secret := []byte(strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0]))

	// The ids already stored: a redelivered event is dropped.
	seen := map[string]bool{}
	if f, err := os.Open(*out); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 8<<20)
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				seen[e.ID] = true
			}
		}
		f.Close()
	}
	f, err := os.OpenFile(*out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		log.Fatalf("webhook-receiver: --out: %v", err)
	}
	var mu sync.Mutex
	http.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := streams.VerifySignature(secret, r.Header.Get(streams.SignatureHeader), body, 5*time.Minute); err != nil {
			http.Error(w, "bad signature: "+err.Error(), http.StatusUnauthorized)
			return
		}
		var batch struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(body, &batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		var fresh []event
		for _, raw := range batch.Events {
			var e event
			if err := json.Unmarshal(raw, &e); err != nil || seen[e.ID] {
				continue
			}
			if _, err := f.Write(append(raw, '\n')); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			fresh = append(fresh, e)
		}
		if err := f.Sync(); err != nil { // stored before the 2xx answer
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for _, e := range fresh {
			seen[e.ID] = true
			if e.Event != "" {
				fmt.Printf("%s block %d %s.%s %v\n", e.ID, e.BlockNumber, e.Contract, e.Event, e.Args)
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	log.Printf("webhook-receiver: listening on http://%s, %d events stored in %s", *addr, len(seen), *out)
	log.Fatal(srv.ListenAndServe())
}
