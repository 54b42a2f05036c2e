package auth

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLimiterRateAndBurst(t *testing.T) {
	clock := newClock()
	l, err := NewLimiter(LimitConfig{Default: Limit{Rate: 2, Burst: 3}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := l.Allow("org1/app", "org1"); err != nil {
			t.Fatalf("request %d of the burst: %v", i, err)
		}
	}
	err = l.Allow("org1/app", "org1")
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("fourth request: %v, want a *LimitError", err)
	}
	if le.RetryAfter != 500*time.Millisecond || le.RetryAfterSeconds() != 1 {
		t.Fatalf("retry after %s (%d s), want 500ms (1 s)", le.RetryAfter, le.RetryAfterSeconds())
	}
	if want := "rate limit exceeded: org1/app may make 2 requests per second (burst 3); retry in 1s"; err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	// A refused request takes no token: after 500 ms exactly one is back.
	clock.Add(500 * time.Millisecond)
	if err := l.Allow("org1/app", "org1"); err != nil {
		t.Fatalf("after 500 ms: %v", err)
	}
	if err := l.Allow("org1/app", "org1"); err == nil {
		t.Fatal("a second request after 500 ms passed")
	}
	// Slow rates round Retry-After up to whole seconds.
	l2, _ := NewLimiter(LimitConfig{Default: Limit{Rate: 0.1}, Now: clock.Now})
	l2.Allow("a", "")
	if err := l2.Allow("a", ""); !errors.As(err, &le) || le.RetryAfterSeconds() != 10 ||
		!strings.Contains(err.Error(), "may make 0.1 requests per second (burst 1); retry in 10s") {
		t.Fatalf("slow rate: %v", err)
	}
}

func TestLimiterOrgOverrides(t *testing.T) {
	clock := newClock()
	l, err := NewLimiter(LimitConfig{
		Default: Limit{Rate: 1, Burst: 1},
		Orgs:    map[string]Limit{"bank": {Rate: 1000, Burst: 5}, "free": {}},
		Now:     clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := l.Allow("bank/app", "bank"); err != nil {
			t.Fatalf("bank request %d: %v", i, err)
		}
	}
	if err := l.Allow("bank/app", "bank"); err == nil {
		t.Fatal("bank's sixth request passed its burst of 5")
	}
	for i := range 100 {
		if err := l.Allow("free/app", "free"); err != nil {
			t.Fatalf("an organization without limits, request %d: %v", i, err)
		}
	}
	if l.Len() != 1 {
		t.Fatalf("%d buckets, want 1 (callers without a limit keep none)", l.Len())
	}
	l.Allow("org1/app", "org1")
	if err := l.Allow("org1/app", "org1"); err == nil {
		t.Fatal("default limit not applied")
	}
}

func TestLimiterDailyQuota(t *testing.T) {
	clock := newClock() // 12:00 UTC
	l, err := NewLimiter(LimitConfig{Default: Limit{Quota: 3}, Orgs: map[string]Limit{"org2": {Quota: 1}}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := l.Allow("org1/app", "org1"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	err = l.Allow("org1/app", "org1")
	var le *LimitError
	if !errors.As(err, &le) || !le.Quota || le.RetryAfter != 12*time.Hour || le.RetryAfterSeconds() != 43200 {
		t.Fatalf("fourth request: %#v", err)
	}
	if want := "daily quota exceeded: org1/app may make 3 requests a day (UTC); retry in 12h0m0s"; err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	if err := l.Allow("org2/app", "org2"); err != nil {
		t.Fatal(err)
	}
	if err := l.Allow("org2/app", "org2"); err == nil {
		t.Fatal("org2's quota of 1 not applied")
	}
	clock.Add(12 * time.Hour) // the next UTC day
	if err := l.Allow("org1/app", "org1"); err != nil {
		t.Fatalf("next day: %v", err)
	}
}

func TestLimiterBoundInCount(t *testing.T) {
	clock := newClock()
	l, err := NewLimiter(LimitConfig{Default: Limit{Rate: 1, Burst: 1}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	// "hot" spends its token first, then stays among the most recently
	// used while more than DefaultMaxKeys others come and go.
	if err := l.Allow("hot", ""); err != nil {
		t.Fatal(err)
	}
	for i := range DefaultMaxKeys + 1000 {
		if i%1000 == 0 {
			if err := l.Allow("hot", ""); err == nil {
				t.Fatalf("after %d others, hot's empty bucket was forgotten", i)
			}
		}
		if err := l.Allow(fmt.Sprintf("anonymous@10.%d.%d.%d", i>>16&255, i>>8&255, i&255), ""); err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if n := l.Len(); n > DefaultMaxKeys {
			t.Fatalf("%d callers remembered, more than %d", n, DefaultMaxKeys)
		}
	}
	if n := l.Len(); n != DefaultMaxKeys {
		t.Fatalf("%d callers remembered, want %d", n, DefaultMaxKeys)
	}
	// The least recently used were forgotten: caller 0 starts afresh; the
	// newest is still held to its limit.
	if err := l.Allow("anonymous@10.0.0.0", ""); err != nil {
		t.Fatalf("the oldest caller, forgotten: %v", err)
	}
	last := DefaultMaxKeys + 999
	if err := l.Allow(fmt.Sprintf("anonymous@10.%d.%d.%d", last>>16&255, last>>8&255, last&255), ""); err == nil {
		t.Fatal("the newest caller's bucket was forgotten")
	}

	small, _ := NewLimiter(LimitConfig{Default: Limit{Quota: 5}, MaxKeys: 3, Now: clock.Now})
	for i := range 10 {
		small.Allow(fmt.Sprint(i), "")
	}
	if small.Len() != 3 {
		t.Fatalf("MaxKeys 3: %d remembered", small.Len())
	}
}

func TestLimitConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  LimitConfig
		want string
	}{
		{LimitConfig{Default: Limit{Rate: -1}}, "limits: Default.Rate -1"},
		{LimitConfig{Default: Limit{Burst: 3}}, "limits: Default.Burst 3: needs a Rate"},
		{LimitConfig{Orgs: map[string]Limit{"org1": {Rate: 1, Burst: -1}}}, "limits: Orgs[org1].Burst -1"},
		{LimitConfig{Orgs: map[string]Limit{"org1": {Quota: -1}}}, "limits: Orgs[org1].Quota -1"},
		{LimitConfig{MaxKeys: -1}, "limits: MaxKeys -1"},
	} {
		if _, err := NewLimiter(tc.cfg); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	l, err := NewLimiter(LimitConfig{Default: Limit{Rate: 2.5}})
	if err != nil || l.def.Burst != 3 {
		t.Fatalf("burst default: %v %+v", err, l)
	}
}

func TestLimitKey(t *testing.T) {
	for _, tc := range []struct {
		id     *Identity
		remote string
		want   string
	}{
		{&Identity{Kind: KindToken, Org: "org1", Subject: "app"}, "1.2.3.4:5", "org1/app"},
		{&Identity{Kind: KindAnonymous}, "1.2.3.4:5", "anonymous@1.2.3.4"},
		{nil, "[::ffff:1.2.3.4]:5", "anonymous@1.2.3.4"},
		{nil, "[2001:db8:1:2:3:4:5:6]:443", "anonymous@2001:db8:1:2::/64"},
		{nil, "unix", "anonymous@unix"},
	} {
		if got := limitKey(tc.id, tc.remote); got != tc.want {
			t.Errorf("limitKey(%v, %q) = %q, want %q", tc.id, tc.remote, got, tc.want)
		}
	}
}
