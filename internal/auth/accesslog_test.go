package auth

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAccessLogFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "access.log")
	l, err := OpenAccessLog(AccessLogConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if l.file.MaxSize != DefaultAccessLogMB || l.file.MaxBackups != DefaultAccessLogBackups {
		t.Fatalf("rotation %d MB, %d kept; want the defaults", l.file.MaxSize, l.file.MaxBackups)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		l.Write(AccessRecord{Time: at, Who: "org1/app", Org: "org1", Kind: KindToken, Method: "POST", Path: "/",
			What: "eth_call", Result: "ok", Status: 200, BytesIn: int64(i), Duration: 1500 * time.Microsecond})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("access log mode %v, want 0600", st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), data)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["time"] != "2026-03-01T12:00:00Z" || rec["bytes_in"] != float64(2) || rec["duration_ms"] != 1.5 || rec["what"] != "eth_call" {
		t.Fatalf("record %v", rec)
	}
}

func TestAccessLogConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  AccessLogConfig
		want string
	}{
		{AccessLogConfig{}, "no Path"},
		{AccessLogConfig{Path: "x", MaxSizeMB: -1}, "MaxSizeMB"},
		{AccessLogConfig{Path: "x", MaxBackups: -1}, "MaxBackups"},
		{AccessLogConfig{Path: filepath.Join(t.TempDir(), "file", "access.log")}, ""},
	} {
		if tc.want == "" {
			// A directory that cannot be made is reported at open.
			dir := filepath.Dir(tc.cfg.Path)
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenAccessLog(tc.cfg); err == nil {
				t.Errorf("%+v: opened under a file", tc.cfg)
			}
			continue
		}
		if _, err := OpenAccessLog(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestRedactQuery(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"access_token=abc", ""},
		{"a=1&access_token=abc&b=2", "a=1&b=2"},
		{"ACCESS_TOKEN=abc&b=2", "b=2"},
		{"access%5Ftoken=abc&b=2", "b=2"},
		{"client_secret=x&id_token=y&password=z&apikey=k&code=c&sig=s&page=3", "page=3"},
		{"from=1&to=9", "from=1&to=9"},
		{"a=1&%zz=2", ""},
		{"&&a", "a"},
	} {
		if got := RedactQuery(tc.in); got != tc.want {
			t.Errorf("RedactQuery(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
