package auth

import (
	"container/list"
	"fmt"
	"math"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is what one caller may ask of a node: a token bucket (Rate
// requests per second, Burst at once) and a number of requests per UTC
// day. Zero fields do not limit.
type Limit struct {
	Rate  float64 // requests per second, sustained; 0: no rate limit
	Burst int     // requests at once; 0 with a Rate: Rate rounded up (at least 1)
	Quota int64   // requests per UTC day; 0: no quota
}

// LimitConfig is the rate limit of a node's client APIs. Every caller
// (Identity.Name: "org/subject") has a bucket of its own; anonymous
// callers have one per IP address (per /64 for IPv6, which a client gets
// whole). One request is one HTTP request, or one message of a WebSocket
// connection (Admit); a batch counts once.
type LimitConfig struct {
	// Default applies to every caller whose organization Orgs does not
	// name, anonymous callers included.
	Default Limit
	// Orgs overrides Default for the callers of an organization.
	Orgs map[string]Limit
	// MaxKeys bounds the callers remembered at once (default 100,000):
	// past it the one that made no request for the longest time is
	// forgotten, and starts afresh (a full bucket, its quota unused) when
	// it comes back.
	MaxKeys int
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

// DefaultMaxKeys is the default of LimitConfig.MaxKeys.
const DefaultMaxKeys = 100_000

// LimitError is a request refused by a rate limit or a daily quota: 429
// over HTTP (Retry-After: RetryAfter in whole seconds), JSON-RPC error
// -32005.
type LimitError struct {
	Who        string // Identity.Name of the caller
	Limit      Limit  // the limit that refused it
	Quota      bool   // the daily quota, rather than the rate, is spent
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	if e.Quota {
		return fmt.Sprintf("daily quota exceeded: %s may make %d requests a day (UTC); retry in %s",
			e.Who, e.Limit.Quota, time.Duration(e.RetryAfterSeconds())*time.Second)
	}
	return fmt.Sprintf("rate limit exceeded: %s may make %s requests per second (burst %d); retry in %ds",
		e.Who, strconv.FormatFloat(e.Limit.Rate, 'f', -1, 64), e.Limit.Burst, e.RetryAfterSeconds())
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up, at least 1:
// the value of the Retry-After header.
func (e *LimitError) RetryAfterSeconds() int {
	s := int(math.Ceil(e.RetryAfter.Seconds()))
	return max(s, 1)
}

// Limiter keeps the buckets of a LimitConfig. It is safe for concurrent
// use.
type Limiter struct {
	def     Limit
	orgs    map[string]Limit
	maxKeys int
	now     func() time.Time

	mu struct {
		sync.Mutex
		keys map[string]*list.Element // of *bucket; at most maxKeys
		lru  list.List                // most recently used first
	}
}

// bucket is one caller's state.
type bucket struct {
	key   string
	lim   *rate.Limiter // nil: no rate limit
	day   int64         // the UTC day count counts requests of
	count int64
}

// NewLimiter checks cfg and returns its limiter. Errors name the field.
func NewLimiter(cfg LimitConfig) (*Limiter, error) {
	def, err := checkLimit("Default", cfg.Default)
	if err != nil {
		return nil, err
	}
	l := &Limiter{def: def, orgs: make(map[string]Limit, len(cfg.Orgs)), maxKeys: cfg.MaxKeys, now: cfg.Now}
	for org, lim := range cfg.Orgs {
		if l.orgs[org], err = checkLimit("Orgs["+org+"]", lim); err != nil {
			return nil, err
		}
	}
	switch {
	case l.maxKeys < 0:
		return nil, fmt.Errorf("limits: MaxKeys %d: must not be negative (0: %d)", cfg.MaxKeys, DefaultMaxKeys)
	case l.maxKeys == 0:
		l.maxKeys = DefaultMaxKeys
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.mu.keys = make(map[string]*list.Element)
	return l, nil
}

func checkLimit(field string, lim Limit) (Limit, error) {
	switch {
	case lim.Rate < 0 || math.IsNaN(lim.Rate) || math.IsInf(lim.Rate, 0):
		return lim, fmt.Errorf("limits: %s.Rate %v: must be a number of requests per second, 0 or more", field, lim.Rate)
	case lim.Burst < 0:
		return lim, fmt.Errorf("limits: %s.Burst %d: must not be negative", field, lim.Burst)
	case lim.Quota < 0:
		return lim, fmt.Errorf("limits: %s.Quota %d: must not be negative", field, lim.Quota)
	case lim.Rate == 0 && lim.Burst > 0:
		return lim, fmt.Errorf("limits: %s.Burst %d: needs a Rate", field, lim.Burst)
	}
	if lim.Rate > 0 && lim.Burst == 0 {
		lim.Burst = max(1, int(math.Ceil(lim.Rate)))
	}
	return lim, nil
}

// limitOf is the limit of org's callers.
func (l *Limiter) limitOf(org string) Limit {
	if lim, ok := l.orgs[org]; ok {
		return lim
	}
	return l.def
}

// Allow counts one request of the caller named who (of organization org,
// "" for anonymous callers) and returns nil, or a *LimitError when its
// bucket is empty or its day's quota spent; a refused request is not
// counted.
func (l *Limiter) Allow(who, org string) error {
	lim := l.limitOf(org)
	if lim.Rate == 0 && lim.Quota == 0 {
		return nil
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketLocked(who, lim)
	day := now.Unix() / 86400
	if lim.Quota > 0 {
		if b.day != day {
			b.day, b.count = day, 0
		}
		if b.count >= lim.Quota {
			next := time.Unix((day+1)*86400, 0)
			return &LimitError{Who: who, Limit: lim, Quota: true, RetryAfter: next.Sub(now)}
		}
	}
	if b.lim != nil {
		r := b.lim.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			return &LimitError{Who: who, Limit: lim, RetryAfter: d}
		}
	}
	b.count++
	return nil
}

// Check is Allow without spending: whether who may make a request now.
func (l *Limiter) Check(who, org string) error {
	lim := l.limitOf(org)
	if lim.Rate == 0 && lim.Quota == 0 {
		return nil
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.mu.keys[who]
	if !ok {
		return nil // a fresh caller has a full bucket
	}
	b := e.Value.(*bucket)
	if lim.Quota > 0 && b.day == now.Unix()/86400 && b.count >= lim.Quota {
		next := time.Unix((now.Unix()/86400+1)*86400, 0)
		return &LimitError{Who: who, Limit: lim, Quota: true, RetryAfter: next.Sub(now)}
	}
	if b.lim != nil {
		r := b.lim.ReserveN(now, 1)
		d := r.DelayFrom(now)
		r.CancelAt(now)
		if d > 0 {
			return &LimitError{Who: who, Limit: lim, RetryAfter: d}
		}
	}
	return nil
}

// bucketLocked finds or makes who's bucket, most recently used from now
// on, forgetting the least recently used one past maxKeys.
func (l *Limiter) bucketLocked(who string, lim Limit) *bucket {
	if e, ok := l.mu.keys[who]; ok {
		l.mu.lru.MoveToFront(e)
		return e.Value.(*bucket)
	}
	b := &bucket{key: who}
	if lim.Rate > 0 {
		b.lim = rate.NewLimiter(rate.Limit(lim.Rate), lim.Burst)
	}
	l.mu.keys[who] = l.mu.lru.PushFront(b)
	for len(l.mu.keys) > l.maxKeys {
		old := l.mu.lru.Back()
		l.mu.lru.Remove(old)
		delete(l.mu.keys, old.Value.(*bucket).key)
	}
	return b
}

// Len is the number of callers remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.mu.keys)
}

// limitKey names the bucket of id calling from remote (a host:port): its
// Name, or for an anonymous caller its IP address (the /64 network of an
// IPv6 address).
func limitKey(id *Identity, remote string) string {
	if id != nil && id.Kind != KindAnonymous {
		return id.Name()
	}
	return "anonymous@" + clientNet(remote)
}

// clientNet is the IP address of remote (host:port, or a bare host), or
// its /64 network for IPv6.
func clientNet(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return host
	case ip.To4() != nil:
		return ip.To4().String()
	}
	return (&net.IPNet{IP: ip.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}
