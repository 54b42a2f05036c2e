package rpc

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config bounds what clients may ask of the server and names the browser
// origins it answers. Zero fields take the defaults of DefaultConfig;
// Validate reports the first bad field by the flag that sets it.
type Config struct {
	// HTTP transport (WebSocket connections are upgraded HTTP ones and
	// count against MaxConns while they are open).
	ReadHeaderTimeout time.Duration // --http.read-header-timeout: request line and headers
	ReadTimeout       time.Duration // --http.read-timeout: a whole request, body included (a slow body is cut here)
	WriteTimeout      time.Duration // --http.write-timeout: a response; longer than BatchTimeout
	IdleTimeout       time.Duration // --http.idle-timeout: a keep-alive connection between requests
	MaxConns          int           // --http.max-conns: connections open at once, WebSockets included

	// Requests.
	BatchItems    int // --rpc.batch-request-limit: requests in one batch
	ResponseBytes int // --rpc.batch-response-max-size: bytes of one batch response
	BodyBytes     int // --rpc.max-request-bytes: bytes of one HTTP request or WebSocket message

	// Execution: every eth_call and eth_estimateGas gets at most GasCap gas
	// and EVMTimeout; the calls of one batch (or one single request) share
	// BatchTimeout of wall-clock time and BatchGas gas, after which the
	// batch's remaining heavy requests answer -32005 without running.
	GasCap       uint64        // --rpc.gascap
	EVMTimeout   time.Duration // --rpc.evmtimeout
	BatchTimeout time.Duration // --rpc.batch-timeout
	BatchGas     uint64        // --rpc.batch-gascap

	// Per client: installed filters (a client is a WebSocket connection,
	// or over HTTP the remote IP address) and subscriptions per WebSocket
	// connection. The node-wide bounds (maxFilters, maxSubscriptions) hold
	// whatever these say.
	FiltersPerClient     int // --rpc.filters-per-client
	SubscriptionsPerConn int // --ws.max-subscriptions

	// Browser origins: CORSDomains may read HTTP answers, WSOrigins may
	// open a WebSocket. Each entry is "*" or an origin such as
	// "https://console.example.org:8443". A request whose Origin header is
	// not listed is refused (403), so a web page cannot use the node
	// through the browser of someone who can reach it. Empty: no browser
	// origin at all (requests without an Origin header are served).
	CORSDomains []string // --http.corsdomain
	WSOrigins   []string // --ws.origins

	// Org is the node's organization. Behind auth.Middleware, the priv
	// and eea methods (private transactions and groups) serve only callers
	// of this organization; empty: no authenticated caller may use them.
	Org string

	// query bounds eth_getLogs and filters; tests make them small.
	query queryLimits
	// now is the clock of filter expiry (nil: time.Now); tests move it.
	now func() time.Time
}

// queryLimits bound log queries, filters and subscriptions node-wide.
type queryLimits struct {
	logRange         uint64        // blocks one eth_getLogs may span
	logs             int           // logs one answer may hold
	filters          int           // installed filters, all clients together
	subscriptions    int           // open subscriptions, all connections together
	filterTimeout    time.Duration // a filter not polled for this long is removed
	filterJanitor    time.Duration // how often expired filters are looked for
	pendingHashes    int           // hashes one pending-transaction poll returns at most
	subscriptionChan int           // events queued per subscription before it is dropped
	privReceiptWait  time.Duration // priv_getTransactionReceipt waits this long at most for a committed marker's group to be applied
}

var defaultQuery = queryLimits{
	logRange:         10_000,
	logs:             10_000,
	filters:          1_000,
	subscriptions:    10_000,
	filterTimeout:    5 * time.Minute,
	filterJanitor:    time.Minute,
	pendingHashes:    10_000,
	subscriptionChan: 1_024,
	privReceiptWait:  5 * time.Second,
}

// DefaultConfig is what a node serves with unless told otherwise.
func DefaultConfig() Config {
	return Config{
		ReadHeaderTimeout:    10 * time.Second,
		ReadTimeout:          30 * time.Second,
		WriteTimeout:         30 * time.Second,
		IdleTimeout:          120 * time.Second,
		MaxConns:             512,
		BatchItems:           1_000,
		ResponseBytes:        25 << 20,
		BodyBytes:            5 << 20,
		GasCap:               50_000_000,
		EVMTimeout:           5 * time.Second,
		BatchTimeout:         10 * time.Second,
		BatchGas:             500_000_000,
		FiltersPerClient:     100,
		SubscriptionsPerConn: 128,
		query:                defaultQuery,
	}
}

// EnsureDefaults fills the zero fields from DefaultConfig.
func (c *Config) EnsureDefaults() {
	d := DefaultConfig()
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setU64 := func(v *uint64, def uint64) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&c.ReadHeaderTimeout, d.ReadHeaderTimeout)
	setDur(&c.ReadTimeout, d.ReadTimeout)
	setDur(&c.WriteTimeout, d.WriteTimeout)
	setDur(&c.IdleTimeout, d.IdleTimeout)
	setInt(&c.MaxConns, d.MaxConns)
	setInt(&c.BatchItems, d.BatchItems)
	setInt(&c.ResponseBytes, d.ResponseBytes)
	setInt(&c.BodyBytes, d.BodyBytes)
	setU64(&c.GasCap, d.GasCap)
	setDur(&c.EVMTimeout, d.EVMTimeout)
	setDur(&c.BatchTimeout, d.BatchTimeout)
	setU64(&c.BatchGas, d.BatchGas)
	setInt(&c.FiltersPerClient, d.FiltersPerClient)
	setInt(&c.SubscriptionsPerConn, d.SubscriptionsPerConn)
	if c.query == (queryLimits{}) {
		c.query = d.query
	}
	if c.now == nil {
		c.now = time.Now
	}
}

// Validate reports the first field that is wrong, by its flag.
func (c *Config) Validate() error {
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"--http.read-header-timeout", c.ReadHeaderTimeout}, {"--http.read-timeout", c.ReadTimeout},
		{"--http.write-timeout", c.WriteTimeout}, {"--http.idle-timeout", c.IdleTimeout},
		{"--rpc.evmtimeout", c.EVMTimeout}, {"--rpc.batch-timeout", c.BatchTimeout},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%s %s: must be positive", d.flag, d.v)
		}
	}
	for _, n := range []struct {
		flag string
		v    int
		min  int
	}{
		{"--http.max-conns", c.MaxConns, 1}, {"--rpc.batch-request-limit", c.BatchItems, 1},
		{"--rpc.batch-response-max-size", c.ResponseBytes, 1024}, {"--rpc.max-request-bytes", c.BodyBytes, 1024},
		{"--rpc.filters-per-client", c.FiltersPerClient, 1}, {"--ws.max-subscriptions", c.SubscriptionsPerConn, 1},
	} {
		if n.v < n.min {
			return fmt.Errorf("%s %d: must be at least %d", n.flag, n.v, n.min)
		}
	}
	if c.GasCap < 21_000 {
		return fmt.Errorf("--rpc.gascap %d: must be at least 21000", c.GasCap)
	}
	if c.BatchGas < c.GasCap {
		return fmt.Errorf("--rpc.batch-gascap %d: must be at least --rpc.gascap (%d)", c.BatchGas, c.GasCap)
	}
	if c.WriteTimeout <= c.BatchTimeout {
		// The batch budget must run out first, so that its remaining
		// requests get their error before the server drops the response.
		return fmt.Errorf("--http.write-timeout %s: must be longer than --rpc.batch-timeout (%s)", c.WriteTimeout, c.BatchTimeout)
	}
	if c.FiltersPerClient > c.query.filters && c.query.filters > 0 {
		return fmt.Errorf("--rpc.filters-per-client %d: at most %d (the node-wide bound)", c.FiltersPerClient, c.query.filters)
	}
	if _, err := parseOrigins("--http.corsdomain", c.CORSDomains); err != nil {
		return err
	}
	if _, err := parseOrigins("--ws.origins", c.WSOrigins); err != nil {
		return err
	}
	return nil
}

// origins is a parsed allow-list of browser origins.
type origins struct {
	any  bool
	list map[string]bool // normalized scheme://host[:port]
}

// ParseOriginList splits a comma-separated flag value ("*", or origins).
func ParseOriginList(s string) []string {
	var out []string
	for _, o := range strings.Split(s, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// CheckOrigins validates an allow-list; name is the flag or field
// reported in the error.
func CheckOrigins(name string, list []string) error {
	_, err := parseOrigins(name, list)
	return err
}

func parseOrigins(name string, list []string) (origins, error) {
	o := origins{list: map[string]bool{}}
	for _, e := range list {
		if e == "*" {
			o.any = true
			continue
		}
		n, err := normalizeOrigin(e)
		if err != nil {
			return origins{}, fmt.Errorf("%s: %q is not \"*\" or an origin such as https://app.example.org[:port]: %v", name, e, err)
		}
		o.list[n] = true
	}
	return o, nil
}

func normalizeOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSpace(s), "/"))
	if err != nil {
		return "", err
	}
	switch {
	case u.Scheme == "":
		return "", fmt.Errorf("no scheme")
	case u.Host == "":
		return "", fmt.Errorf("no host")
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "", fmt.Errorf("an origin has no path, query or user")
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// allows tells whether a request's Origin header value is allowed.
func (o origins) allows(origin string) bool {
	if o.any {
		return true
	}
	n, err := normalizeOrigin(origin)
	return err == nil && o.list[n]
}
