package p2p

import "time"

// tokenBucket is a token bucket that may go into debt: reserve always
// takes the tokens and says how long the caller must wait before acting,
// so a frame larger than the remaining tokens is delayed, never refused.
// The per-connection reader owns its buckets; they are not goroutine-safe.
type tokenBucket struct {
	rate   float64 // tokens per second; <= 0 means unlimited
	burst  float64 // bucket capacity
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int, now time.Time) *tokenBucket {
	return &tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// reserve takes n tokens at time now and returns how long to wait until
// the debt is paid. n above the burst is charged as the burst, so that one
// maximal message passes after at most burst/rate.
func (b *tokenBucket) reserve(now time.Time, n int) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens += elapsed.Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
		b.last = now
	}
	cost := float64(n)
	if cost > b.burst {
		cost = b.burst
	}
	b.tokens -= cost
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}
