package gateway

import (
	"container/list"
	"net/http"
	"sync"
	"time"
)

// idemStore keeps the answers of POST requests that carried an
// Idempotency-Key, so that a client that retries (after a timeout, a
// dropped connection) gets the first answer rather than a second
// transaction. Keys are scoped by the caller's identity: two callers may
// use the same key. An entry is made when a request begins (so that a
// concurrent retry is told the first is still running) and completed
// when it ends; it lives TTL from its beginning. The store holds at most
// MaxEntries entries and MaxBytes of keys and answers: the oldest go
// first, whether complete or not (a request whose entry went is answered
// but not kept). It is safe for concurrent use.
type idemStore struct {
	cfg IdempotencyConfig
	now func() time.Time

	mu struct {
		sync.Mutex
		byKey map[idemKey]*idemEntry
		order *list.List // of *idemEntry, oldest first (so also by expiry)
		bytes int
	}
}

type idemKey struct{ scope, key string }

type idemEntry struct {
	k       idemKey
	fp      [32]byte
	expires time.Time
	done    bool
	answer  *encoded // set when done
	size    int
	elem    *list.Element
}

// idemOverhead is what an entry costs beyond its key and answer: the
// map slot, list element and struct, roughly.
const idemOverhead = 256

func newIdemStore(cfg IdempotencyConfig, now func() time.Time) *idemStore {
	s := &idemStore{cfg: cfg, now: now}
	s.mu.byKey = map[idemKey]*idemEntry{}
	s.mu.order = list.New()
	return s
}

// begin looks key up for a request with fingerprint fp. It returns the
// first answer to replay, or a ticket to pass to finish once the request
// is answered, or a 409 problem: the key was used for a different
// request, or its first request is still running.
func (s *idemStore) begin(scope, key string, fp [32]byte) (ticket *idemEntry, replay *encoded, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expireLocked(now)
	k := idemKey{scope, key}
	if e, found := s.mu.byKey[k]; found {
		switch {
		case e.fp != fp:
			return nil, nil, problemf(http.StatusConflict, "Idempotency-Key", "Idempotency-Key: %q was used for a different request (another route or body); use a new key for a new request", key)
		case !e.done:
			return nil, nil, problemf(http.StatusConflict, "Idempotency-Key", "Idempotency-Key: the first request with %q is still being processed; retry once it is answered", key)
		}
		return nil, e.answer, nil
	}
	e := &idemEntry{k: k, fp: fp, expires: now.Add(s.cfg.TTL), size: idemOverhead + len(scope) + len(key)}
	e.elem = s.mu.order.PushBack(e)
	s.mu.byKey[k] = e
	s.mu.bytes += e.size
	s.evictLocked()
	return e, nil, nil
}

// finish completes ticket with the answer (keep) or forgets it (a retry
// runs again).
func (s *idemStore) finish(ticket *idemEntry, answer *encoded, keep bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.byKey[ticket.k] != ticket {
		return // evicted or expired while it ran
	}
	if !keep {
		s.removeLocked(ticket)
		return
	}
	ticket.done, ticket.answer = true, answer
	ticket.size += answer.size()
	s.mu.bytes += answer.size()
	s.evictLocked()
}

// expireLocked drops the entries past their time, oldest first.
func (s *idemStore) expireLocked(now time.Time) {
	for el := s.mu.order.Front(); el != nil; el = s.mu.order.Front() {
		e := el.Value.(*idemEntry)
		if now.Before(e.expires) {
			return
		}
		s.removeLocked(e)
	}
}

// evictLocked drops the oldest entries while the store is over its bounds.
func (s *idemStore) evictLocked() {
	for s.mu.order.Len() > 0 && (s.mu.order.Len() > s.cfg.MaxEntries || s.mu.bytes > s.cfg.MaxBytes) {
		s.removeLocked(s.mu.order.Front().Value.(*idemEntry))
	}
}

func (s *idemStore) removeLocked(e *idemEntry) {
	s.mu.order.Remove(e.elem)
	delete(s.mu.byKey, e.k)
	s.mu.bytes -= e.size
}

// stats reports the entries and bytes held.
func (s *idemStore) stats() (entries, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.order.Len(), s.mu.bytes
}
