package streams_test

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/charter-ledger/charter/internal/streams"
)

// A webhook receiver checks each POST's signature over the raw body
// before trusting it, and drops event IDs it has already handled (a
// stream delivers at least once).
func ExampleVerifySignature() {
	secret := []byte("the stream's webhook secret")
	http.HandleFunc("/charter", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := streams.VerifySignature(secret, r.Header.Get(streams.SignatureHeader), body, 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var batch streams.WebhookBody
		if err := json.Unmarshal(body, &batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, ev := range batch.Events {
			_ = ev.ID // store ev, keyed by ev.ID, durably; then answer 2xx
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
