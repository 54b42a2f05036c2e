package rpc

import (
	"context"
	"net"
	"sync"
	"time"

	gethrpc "github.com/ethereum/go-ethereum/rpc"
)

// clientOf names the client a request comes from, for per-client bounds:
// a WebSocket connection is one client; over HTTP, where one client opens
// many connections, the remote IP address is (so clients behind one proxy
// or NAT share their bounds). In-process callers are one client.
func clientOf(ctx context.Context) string {
	info := gethrpc.PeerInfoFromContext(ctx)
	switch info.Transport {
	case "ws":
		return wsClient(info.RemoteAddr)
	case "http":
		host, _, err := net.SplitHostPort(info.RemoteAddr)
		if err != nil {
			host = info.RemoteAddr
		}
		return "http " + host
	case "ipc":
		// The WebSocket transport of the priv namespace (privws.go) is
		// served through go-ethereum's stream codec, which names every
		// transport it carries ipc; the server has no IPC endpoint.
		if info.RemoteAddr != "" {
			return wsClient(info.RemoteAddr)
		}
	}
	return info.Transport + " " + info.RemoteAddr
}

func wsClient(remoteAddr string) string { return "ws " + remoteAddr }

// budgets holds the shared wall-clock and gas budget of each batch being
// served. A batch is recognized by its context: go-ethereum runs the
// requests of one batch one after the other under one cancellable context
// (and each single request under its own), which it cancels when the batch
// is answered; the budget is dropped then.
type budgets struct {
	timeout time.Duration
	gas     uint64

	mu sync.Mutex
	m  map[<-chan struct{}]*budget // batches in flight, at most maxBudgets
}

// maxBudgets bounds the batches whose budget is tracked at once; past it
// (a flood no node serves anyway) a request gets a budget of its own.
const maxBudgets = 100_000

// budget is what is left to one batch. Its requests run one at a time,
// but the mutex keeps concurrent use (a caller that ignores that) safe.
type budget struct {
	deadline time.Time
	timeout  time.Duration
	total    uint64

	mu      sync.Mutex
	gasLeft uint64
}

func newBudgets(timeout time.Duration, gas uint64) *budgets {
	return &budgets{timeout: timeout, gas: gas, m: make(map[<-chan struct{}]*budget)}
}

// of returns the budget of the batch ctx belongs to, starting it on its
// first heavy request.
func (bs *budgets) of(ctx context.Context) *budget {
	fresh := func() *budget {
		return &budget{deadline: time.Now().Add(bs.timeout), timeout: bs.timeout, total: bs.gas, gasLeft: bs.gas}
	}
	done := ctx.Done()
	if done == nil {
		return fresh() // a context that never ends: a budget per request
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if b, ok := bs.m[done]; ok {
		return b
	}
	b := fresh()
	if len(bs.m) >= maxBudgets {
		return b
	}
	bs.m[done] = b
	context.AfterFunc(ctx, func() {
		bs.mu.Lock()
		delete(bs.m, done)
		bs.mu.Unlock()
	})
	return b
}

// begin admits one heavy request (now is the wall clock): it fails with -32005 once the batch's
// time or gas is spent, and otherwise returns a context that ends at the
// batch's deadline or after perCall, whichever is first.
func (b *budget) begin(ctx context.Context, now time.Time, perCall time.Duration, needGas bool) (context.Context, context.CancelFunc, error) {
	if !now.Before(b.deadline) {
		return nil, nil, b.timeError()
	}
	if needGas && b.gas() == 0 {
		return nil, nil, b.gasError()
	}
	deadline := b.deadline
	if perCall > 0 && now.Add(perCall).Before(deadline) {
		deadline = now.Add(perCall)
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	return ctx, cancel, nil
}

func (b *budget) timeError() error {
	return limitError("batch time budget exhausted: the requests of this batch ran for %s (--rpc.batch-timeout); request not run", b.timeout)
}

func (b *budget) gasError() error {
	return limitError("batch gas budget exhausted: the calls of this batch used %d gas (--rpc.batch-gascap); request not run", b.total)
}

// expired tells whether the batch's time is over (a call cut by it
// reports the budget rather than its own abort).
func (b *budget) expired(now time.Time) bool { return !now.Before(b.deadline) }

func (b *budget) gas() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.gasLeft
}

// charge takes gas used by one call off the budget.
func (b *budget) charge(used uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if used >= b.gasLeft {
		b.gasLeft = 0
	} else {
		b.gasLeft -= used
	}
}

// counter bounds things held per client and in all: subscriptions of a
// WebSocket connection, filters of a client.
type counter struct {
	perClient, total int
	what, flag       string // for errors: "subscriptions", "--ws.max-subscriptions"
	scope            string // "on this WebSocket connection", "for this client"

	mu  sync.Mutex
	by  map[string]int // bounded by total
	all int
}

func newCounter(perClient, total int, what, flag, scope string) *counter {
	return &counter{perClient: perClient, total: total, what: what, flag: flag, scope: scope, by: make(map[string]int)}
}

// acquire takes one slot for client, or says which bound is reached.
func (c *counter) acquire(client string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by[client] >= c.perClient {
		return limitError("too many %s %s: %d open (%s); remove one first", c.what, c.scope, c.by[client], c.flag)
	}
	if c.all >= c.total {
		return limitError("too many %s on this node: %d open in all; try again later", c.what, c.all)
	}
	c.by[client]++
	c.all++
	return nil
}

func (c *counter) release(client string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by[client] <= 1 {
		delete(c.by, client)
	} else {
		c.by[client]--
	}
	c.all--
}

func (c *counter) count(client string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.by[client]
}
