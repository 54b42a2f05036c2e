package rpc

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"
)

func TestSameOrigin(t *testing.T) {
	for _, c := range []struct {
		host, origin string
		tls, want    bool
	}{
		{"127.0.0.1:8545", "http://127.0.0.1:8545", false, true},
		{"[::1]:8545", "http://[::1]:8545", false, true},
		{"localhost:8545", "http://localhost:8545", false, true},
		{"10.0.0.5:8545", "https://10.0.0.5:8545", true, true},
		{"127.0.0.1:8545", "https://127.0.0.1:8545", false, false}, // scheme differs
		{"127.0.0.1:8545", "http://127.0.0.1:8546", false, false},  // port differs
		{"evil.example:8545", "http://evil.example:8545", false, false},
		{"127.0.0.1:8545", "http://127.0.0.1:8545/x", false, false},
		{"127.0.0.1:8545", "null", false, false},
		{"127.0.0.1:8545", "", false, false},
	} {
		r := httptest.NewRequest("POST", "/", nil)
		r.Host = c.host
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := SameOrigin(r); got != c.want {
			t.Errorf("host %s origin %q tls %v: %v, want %v", c.host, c.origin, c.tls, got, c.want)
		}
	}
}
