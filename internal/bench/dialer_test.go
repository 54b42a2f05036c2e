package bench

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
)

// headerDialer dials with an Authorization header and records the URLs
// it was asked for.
type headerDialer struct {
	token string
	mu    sync.Mutex
	urls  []string
}

func (d *headerDialer) Dial(ctx context.Context, url string) (*gethrpc.Client, error) {
	d.mu.Lock()
	d.urls = append(d.urls, url)
	d.mu.Unlock()
	return gethrpc.DialOptions(ctx, url, gethrpc.WithHeader("Authorization", "Bearer "+d.token))
}

// requireBearer refuses any request without "Authorization: Bearer
// token" and counts both kinds.
func requireBearer(token string, ok, refused *atomic.Int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+token {
				refused.Add(1)
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				http.Error(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"no token"}}`, http.StatusUnauthorized)
				return
			}
			ok.Add(1)
			next.ServeHTTP(w, r)
		})
	}
}

// Every connection of a run goes through Config.Dialer: against nodes
// that require a bearer token, a run whose dialer sets it completes with
// not one request refused, and one without a dialer is refused at its
// first request.
func TestRunDialsThroughDialer(t *testing.T) {
	var ok, refused atomic.Int64
	_, group := startFakeGroupBehind(t, []string{"org0", "org1"}, 4, requireBearer("T0k3n", &ok, &refused))
	d := &headerDialer{token: "T0k3n"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Run(ctx, Config{Kind: KindPrivateERC20, Txs: 60, Senders: 4, Batch: 10, Group: group, Timeout: 10 * time.Second, Dialer: d})
	if err != nil {
		t.Fatal(err)
	}
	if res.Confirmed != 60 || res.Failed != 0 {
		t.Fatalf("result %+v", res)
	}
	if refused.Load() != 0 || ok.Load() < 60/10 {
		t.Fatalf("the nodes took %d requests with the token and refused %d", ok.Load(), refused.Load())
	}
	if len(d.urls) != 2 || d.urls[0] != group[0].Endpoints[0] || d.urls[1] != group[1].Endpoints[0] {
		t.Fatalf("dialed %q", d.urls)
	}

	_, err = Run(ctx, Config{Kind: KindPrivateERC20, Txs: 60, Senders: 4, Batch: 10, Group: group, Timeout: 10 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("without the dialer: %v, want the nodes' 401", err)
	}
	if refused.Load() == 0 {
		t.Fatal("the nodes refused nothing")
	}
}

// The public kinds dial every endpoint through the Dialer too, and accept
// https:// and wss:// endpoints.
func TestRunPublicDialsEveryEndpoint(t *testing.T) {
	d := &failDialer{}
	cfg := Config{Kind: KindTransfer, Txs: 1, Senders: 1, Batch: 1, Keys: keysN(t, 1), Dialer: d,
		Endpoints: []string{"https://127.0.0.1:1", "wss://127.0.0.1:2"}}
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "connect wss://127.0.0.1:2: dialer says no") {
		t.Fatalf("run: %v", err)
	}
	if strings.Join(d.urls, " ") != "https://127.0.0.1:1 wss://127.0.0.1:2" {
		t.Fatalf("dialed %q", d.urls)
	}
}

// failDialer refuses wss:// endpoints and gives a client that is never
// used for the others.
type failDialer struct{ urls []string }

func (d *failDialer) Dial(ctx context.Context, url string) (*gethrpc.Client, error) {
	d.urls = append(d.urls, url)
	if strings.HasPrefix(url, "wss://") {
		return nil, errors.New("dialer says no")
	}
	return gethrpc.DialContext(ctx, "http://127.0.0.1:1")
}

func keysN(t *testing.T, n int) []*ecdsa.PrivateKey {
	t.Helper()
	var keys []*ecdsa.PrivateKey
	for i := 0; i < n; i++ {
		k, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}
