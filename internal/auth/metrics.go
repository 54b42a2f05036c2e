package auth

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a request, as the access log and the metrics name them.
const (
	ResultOK              = "ok"
	ResultDenied          = "denied"          // a role or the organization is missing (403, JSON-RPC -32003)
	ResultUnauthenticated = "unauthenticated" // no valid credential (401)
	ResultLimited         = "limited"         // rate limit or quota (429, JSON-RPC -32005)
)

// maxOrgLabels bounds the organizations the metrics name; past it (a
// consortium never has that many) requests count under "other".
const maxOrgLabels = 256

// metrics are the client API's instruments. The zero value (nil
// pointers) counts nothing.
type metrics struct {
	requests *prometheus.CounterVec   // org, kind, result
	limited  *prometheus.CounterVec   // org, limit (rate, quota)
	authTime *prometheus.HistogramVec // kind

	mu   sync.Mutex
	orgs map[string]bool // org label values in use, at most maxOrgLabels
}

// newMetrics registers the instruments with reg (nil: none). Instruments
// already registered (a second middleware on the same registry) are
// shared.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{orgs: make(map[string]bool)}
	if reg == nil {
		return m
	}
	m.requests = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "charter_api_requests_total",
		Help: "Client API requests (JSON-RPC, REST, WebSocket upgrades) by the caller's organization, how it authenticated (anonymous, token, certificate) and result (ok, denied, unauthenticated, limited)."},
		[]string{"org", "kind", "result"}))
	m.limited = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "charter_api_limited_total",
		Help: "Client API requests and WebSocket messages refused by a rate limit or a daily quota, by organization and limit (rate, quota)."},
		[]string{"org", "limit"}))
	m.authTime = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "charter_api_auth_seconds",
		Help:    "Time to check a presented credential (token or client certificate).",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1}},
		[]string{"kind"}))
	return m
}

// register registers c with reg, or returns the collector already
// registered under its name; on any other error c counts unregistered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
	}
	return c
}

// org is the label value of an organization.
func (m *metrics) org(org string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.orgs[org] {
		return org
	}
	if len(m.orgs) >= maxOrgLabels {
		return "other"
	}
	m.orgs[org] = true
	return org
}

func (m *metrics) request(id *Identity, kind Kind, result string) {
	if m.requests == nil {
		return
	}
	org := ""
	if id != nil {
		org = id.Org
	}
	m.requests.WithLabelValues(m.org(org), string(kind), result).Inc()
}

func (m *metrics) limit(org string, e *LimitError) {
	if m.limited == nil {
		return
	}
	l := "rate"
	if e.Quota {
		l = "quota"
	}
	m.limited.WithLabelValues(m.org(org), l).Inc()
}

func (m *metrics) authenticated(kind Kind, d time.Duration) {
	if m.authTime == nil {
		return
	}
	m.authTime.WithLabelValues(string(kind)).Observe(d.Seconds())
}
