package issuer

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
	"time"
)

// failures counts failed client authentications per key (a client id, or
// a remote address) and locks a key out with exponential backoff: the
// free-th failure locks it for base, each further one for twice as long
// as the one before, up to max. A key forgets its failures after forget without one. At
// most capacity keys are tracked; the least recently failed is dropped
// first. Safe for concurrent use.
type failures struct {
	free     int
	base     time.Duration
	max      time.Duration
	forget   time.Duration
	capacity int

	mu struct {
		sync.Mutex
		byKey map[string]*list.Element // of *failEntry
		lru   list.List                // front: most recent failure
	}
}

type failEntry struct {
	key   string
	count int
	last  time.Time // of the last failure
	until time.Time // locked until
}

func newFailures(free int, base, max time.Duration, capacity int) *failures {
	f := &failures{free: free, base: base, max: max, forget: 2*max + time.Hour, capacity: capacity}
	f.mu.byKey = make(map[string]*list.Element)
	return f
}

// locked returns how long key stays locked from now; 0: it is not.
func (f *failures) locked(key string, now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	el, ok := f.mu.byKey[key]
	if !ok {
		return 0
	}
	if d := el.Value.(*failEntry).until.Sub(now); d > 0 {
		return d
	}
	return 0
}

// fail notes a failure of key at now and returns its failure count and
// the lock it now has (0: none yet).
func (f *failures) fail(key string, now time.Time) (int, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var e *failEntry
	if el, ok := f.mu.byKey[key]; ok {
		e = el.Value.(*failEntry)
		f.mu.lru.MoveToFront(el)
		if now.Sub(e.last) > f.forget {
			*e = failEntry{key: key}
		}
	} else {
		for len(f.mu.byKey) >= f.capacity {
			old := f.mu.lru.Back()
			delete(f.mu.byKey, old.Value.(*failEntry).key)
			f.mu.lru.Remove(old)
		}
		e = &failEntry{key: key}
		f.mu.byKey[key] = f.mu.lru.PushFront(e)
	}
	e.count++
	e.last = now
	if e.count < f.free {
		return e.count, 0
	}
	lock := f.max
	if shift := e.count - f.free; shift < 32 {
		if d := f.base << shift; d > 0 && d < f.max {
			lock = d
		}
	}
	e.until = now.Add(lock)
	return e.count, lock
}

// reset forgets key's failures (a success).
func (f *failures) reset(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if el, ok := f.mu.byKey[key]; ok {
		delete(f.mu.byKey, key)
		f.mu.lru.Remove(el)
	}
}

// size is how many keys are tracked.
func (f *failures) size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.mu.byKey)
}

// remoteKey is the failure key of a remote address: the IPv4 address, or
// the /64 of an IPv6 one (one host commonly holds a whole /64).
func remoteKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return truncate(host)
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.WithZone("").Prefix(64)
	return p.String()
}
