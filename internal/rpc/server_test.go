package rpc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	gethrpc "github.com/ethereum/go-ethereum/rpc"
)

// heavyBatch sends n eth_calls to the looping contract in one batch over
// c and returns the items once answered (or fails at the deadline).
func heavyBatch(t *testing.T, c *gethrpc.Client, n int, deadline time.Duration) []gethrpc.BatchElem {
	t.Helper()
	batch := make([]gethrpc.BatchElem, n)
	for i := range batch {
		batch[i] = gethrpc.BatchElem{Method: "eth_call", Args: []any{map[string]any{"to": loopAddr}, "latest"}, Result: new(string)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := c.BatchCallContext(ctx, batch); err != nil {
		t.Fatalf("batch of %d heavy calls not answered within %s: %v", n, deadline, err)
	}
	return batch
}

// A 1,000-call batch of heavy eth_calls stops at its gas budget: the calls
// the budget allowed run, every other one answers -32005 without running.
func TestBatchStopsAtItsGasBudget(t *testing.T) {
	for _, transport := range []string{"http", "ws"} {
		t.Run(transport, func(t *testing.T) {
			f := newFake(t)
			ts := serve(t, f, Config{GasCap: 1_000_000, BatchGas: 5_000_000})
			c := ts.http
			if transport == "ws" {
				c = ts.ws(t)
			}
			batch := heavyBatch(t, c, 1000, 60*time.Second)
			for i, el := range batch {
				if i < 5 {
					rpcError(t, el.Error, -32000, "out of gas")
					continue
				}
				rpcError(t, el.Error, -32005, "batch gas budget exhausted: the calls of this batch used 5000000 gas (--rpc.batch-gascap); request not run")
			}
			// The next batch has a budget of its own.
			batch = heavyBatch(t, c, 2, 10*time.Second)
			rpcError(t, batch[1].Error, -32000, "out of gas")
		})
	}
}

// ... and at its wall-clock budget.
func TestBatchStopsAtItsTimeBudget(t *testing.T) {
	for _, transport := range []string{"http", "ws"} {
		t.Run(transport, func(t *testing.T) {
			f := newFake(t)
			ts := serve(t, f, Config{GasCap: 1 << 40, BatchGas: 1 << 41, EVMTimeout: 100 * time.Millisecond, BatchTimeout: 350 * time.Millisecond})
			c := ts.http
			if transport == "ws" {
				c = ts.ws(t)
			}
			start := time.Now()
			batch := heavyBatch(t, c, 1000, 30*time.Second)
			took := time.Since(start)
			// Each call runs until the EVM timeout cuts it, until the
			// batch's 350 ms are spent (about three calls; fewer on a
			// loaded machine); every later call answers the budget.
			aborted := 0
			for aborted < len(batch) && batch[aborted].Error != nil && strings.Contains(batch[aborted].Error.Error(), "execution aborted") {
				aborted++
			}
			if aborted == 0 || aborted > 4 {
				t.Fatalf("%d calls ran to the EVM timeout, want 1 to 4 (first answer %v)", aborted, batch[0].Error)
			}
			for _, el := range batch[aborted:] {
				rpcError(t, el.Error, -32005, "batch time budget exhausted: the requests of this batch ran for 350ms (--rpc.batch-timeout); request not run")
			}
			if took > 10*time.Second {
				t.Fatalf("the batch took %s", took)
			}
		})
	}
}

// A client that sends its headers and then trickles (or stops) its body is
// cut at the read timeout.
func TestSlowBodyIsCutAtTheReadTimeout(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{ReadTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"jsonrpc\"")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(conn) // ends when the server closes the connection
	took := time.Since(start)
	if os.IsTimeout(err) {
		t.Fatalf("the connection was still open after %s", took)
	}
	if took < 250*time.Millisecond || took > 5*time.Second {
		t.Fatalf("cut after %s, want about 300ms", took)
	}
}

// rawRequest writes a complete JSON-RPC request on conn.
func rawRequest(conn net.Conn, body string) {
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// With N connections open the N+1th waits, and is served once one closes.
func TestConnectionCap(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{MaxConns: 2})
	var holders []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\n") // a request that has not finished its headers
		holders = append(holders, c)
	}
	waitFor(t, "two connections open", 5*time.Second, func() bool { return ts.openConns() == 2 })
	third, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	rawRequest(third, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`)
	third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	r := bufio.NewReader(third)
	if line, err := r.ReadString('\n'); !os.IsTimeout(err) {
		t.Fatalf("the third connection was served while two were open: %q, %v", line, err)
	}
	holders[0].Close()
	third.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("the third connection was not served once one closed: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"0x539"`) {
		t.Fatalf("answer %d %s", resp.StatusCode, body)
	}
}

// At the cap, a keep-alive connection idle between requests is closed to
// make room for a new client, which is then served at once.
func TestConnectionCapClosesIdleKeepAlives(t *testing.T) {
	f := newFake(t)
	ts := serve(t, f, Config{MaxConns: 1, IdleTimeout: time.Minute})
	call := func(client *http.Client) error {
		resp, err := client.Post("http://"+ts.addr, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), `"0x539"`) {
			return fmt.Errorf("answer %s", body)
		}
		return nil
	}
	a := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	defer a.CloseIdleConnections()
	if err := call(a); err != nil {
		t.Fatal(err)
	}
	b := &http.Client{Transport: &http.Transport{}, Timeout: 3 * time.Second}
	defer b.CloseIdleConnections()
	if err := call(b); err != nil {
		t.Fatalf("a new client while another's keep-alive connection idles: %v", err)
	}
}

func TestOrigins(t *testing.T) {
	const console, evil = "https://console.example.org", "https://evil.example"
	request := func(t *testing.T, ts *testServer, method, origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+ts.addr, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`))
		req.Header.Set("Content-Type", "application/json")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	wsDial := func(ts *testServer, origin string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := gethrpc.DialWebsocket(ctx, "ws://"+ts.addr, origin)
		if err != nil {
			return err
		}
		defer c.Close()
		var id string
		return c.Call(&id, "eth_chainId")
	}
	cases := []struct {
		name           string
		cfg            Config
		origin         string
		status         int
		allowOrigin    string
		wsAllowed      bool
		preflightAllow string
	}{
		{"no origins (a node's default), a foreign page", Config{}, evil, 403, "", false, ""},
		{"no origins, no Origin header (curl, ethers in Node)", Config{}, "", 200, "", true, ""},
		{"listed origin", Config{CORSDomains: []string{console}, WSOrigins: []string{console}}, console, 200, console, true, console},
		{"listed origin, another page", Config{CORSDomains: []string{console}, WSOrigins: []string{console}}, evil, 403, "", false, ""},
		{"CORS for the console only, WebSocket for none", Config{CORSDomains: []string{console}}, console, 200, console, false, console},
		{"any origin (charter dev)", Config{CORSDomains: []string{"*"}, WSOrigins: []string{"*"}}, evil, 200, "*", true, "*"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := serve(t, newFake(t), c.cfg)
			resp := request(t, ts, http.MethodPost, c.origin)
			if resp.StatusCode != c.status || resp.Header.Get("Access-Control-Allow-Origin") != c.allowOrigin {
				t.Fatalf("POST from %q: %d, Access-Control-Allow-Origin %q; want %d, %q", c.origin, resp.StatusCode,
					resp.Header.Get("Access-Control-Allow-Origin"), c.status, c.allowOrigin)
			}
			if c.origin != "" {
				pre := request(t, ts, http.MethodOptions, c.origin)
				if pre.Header.Get("Access-Control-Allow-Origin") != c.preflightAllow {
					t.Fatalf("preflight from %q: %d, Access-Control-Allow-Origin %q", c.origin, pre.StatusCode, pre.Header.Get("Access-Control-Allow-Origin"))
				}
			}
			err := wsDial(ts, c.origin)
			if c.wsAllowed != (err == nil) {
				t.Fatalf("WebSocket from %q: %v (allowed: %v)", c.origin, err, c.wsAllowed)
			}
			if err != nil && !strings.Contains(err.Error(), "403") {
				t.Fatalf("WebSocket refused with %v, want 403", err)
			}
		})
	}
}

func TestConfigErrorsNameTheFlag(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{ReadTimeout: -time.Second}, "--http.read-timeout -1s: must be positive"},
		{Config{MaxConns: -1}, "--http.max-conns -1: must be at least 1"},
		{Config{BatchTimeout: time.Minute}, "--http.write-timeout 30s: must be longer than --rpc.batch-timeout (1m0s)"},
		{Config{GasCap: 100}, "--rpc.gascap 100: must be at least 21000"},
		{Config{GasCap: 10_000_000, BatchGas: 1_000_000}, "--rpc.batch-gascap 1000000: must be at least --rpc.gascap (10000000)"},
		{Config{FiltersPerClient: 5000}, "--rpc.filters-per-client 5000: at most 1000"},
		{Config{CORSDomains: []string{"console.example.org"}}, `--http.corsdomain: "console.example.org" is not "*" or an origin`},
		{Config{WSOrigins: []string{"https://a.example/path"}}, `--ws.origins: "https://a.example/path" is not "*" or an origin`},
	} {
		c.cfg.EnsureDefaults()
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
	ok := Config{CORSDomains: ParseOriginList(" https://A.example:8443/ , http://localhost:3000,"), WSOrigins: []string{"*"}}
	ok.EnsureDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	o, _ := parseOrigins("x", ok.CORSDomains)
	if !o.allows("https://a.example:8443") || !o.allows("HTTP://LOCALHOST:3000") || o.allows("https://a.example") || o.allows("null") {
		t.Fatalf("origin matching: %+v", o)
	}
}
