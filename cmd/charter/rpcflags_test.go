package main

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// charter dev answers * on loopback unless told otherwise; listening
// further, it allows no browser origin unless told.
func TestDevOrigins(t *testing.T) {
	for _, c := range []struct {
		host     string
		args     []string
		cors, ws []string
	}{
		{"127.0.0.1", nil, []string{"*"}, []string{"*"}},
		{"localhost", nil, []string{"*"}, []string{"*"}},
		{"::1", nil, []string{"*"}, []string{"*"}},
		{"0.0.0.0", nil, nil, nil},
		{"192.168.1.5", []string{"--http.corsdomain", "https://app.example.org"}, []string{"https://app.example.org"}, nil},
		{"127.0.0.1", []string{"--http.corsdomain", "https://a.example, https://b.example", "--ws.origins", ""}, []string{"https://a.example", "https://b.example"}, nil},
	} {
		fs := newFlagSet("dev", io.Discard)
		rf := addRPCFlags(fs, "")
		if err := parse(fs, c.args); err != nil {
			t.Fatal(err)
		}
		cfg, corsSet, wsSet := rf.config()
		devOrigins(&cfg, corsSet, wsSet, c.host)
		if !reflect.DeepEqual(cfg.CORSDomains, c.cors) || !reflect.DeepEqual(cfg.WSOrigins, c.ws) {
			t.Errorf("%s %v: cors %q ws %q, want %q %q", c.host, c.args, cfg.CORSDomains, cfg.WSOrigins, c.cors, c.ws)
		}
	}
}

func TestRPCFlags(t *testing.T) {
	fs := newFlagSet("node", io.Discard)
	rf := addRPCFlags(fs, "")
	if err := parse(fs, []string{"--rpc.batch-timeout", "2s", "--http.max-conns", "64", "--rpc.gascap", "100"}); err != nil {
		t.Fatal(err)
	}
	cfg, _, _ := rf.config()
	if cfg.BatchTimeout != 2*time.Second || cfg.MaxConns != 64 || cfg.ReadTimeout != 30*time.Second {
		t.Fatalf("config %+v", cfg)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--rpc.gascap 100") {
		t.Fatalf("validation: %v", err)
	}
}

// charter dev signs with the public development keys, so it refuses an
// --http.addr other machines can reach unless told --allow-dev-keys; the
// refusal comes before anything is opened or bound.
func TestDevRefusesReachableAddress(t *testing.T) {
	var stderr strings.Builder
	err := runDev([]string{"--http.addr", "0.0.0.0", "--http.port", "0"}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "pass --allow-dev-keys") || !strings.Contains(err.Error(), "0.0.0.0 is reachable") {
		t.Fatalf("charter dev on 0.0.0.0: %v, want a refusal naming --allow-dev-keys", err)
	}
}
