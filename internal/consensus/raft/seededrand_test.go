package raft

import (
	"bytes"
	crand "crypto/rand"
	"errors"
	"io"
	"math/rand"
	"runtime"
	"strconv"
	"sync"
)

// seededRand replaces crypto/rand.Reader during simulations. etcd raft
// draws its randomized election timeout from crypto/rand (raft.go,
// lockedRand), which would make a seed unreplayable. Reads from a
// goroutine bound to a seed come from that seed's math/rand source; other
// goroutines get real randomness. Simulations of different seeds run on
// different goroutines (simnet.RunSeeds workers), each bound while it runs
// its seed.
type seededRand struct {
	mu       sync.Mutex
	bound    map[uint64]*rand.Rand
	fallback io.Reader
}

var simRand = &seededRand{bound: make(map[uint64]*rand.Rand)}

// installSeededRand swaps crypto/rand.Reader; the returned func restores it.
// Call it before starting worker goroutines.
func installSeededRand() (restore func()) {
	simRand.fallback = crand.Reader
	crand.Reader = simRand
	return func() { crand.Reader = simRand.fallback }
}

func (s *seededRand) bind(seed int64) (unbind func()) {
	id := goid()
	s.mu.Lock()
	s.bound[id] = rand.New(rand.NewSource(seed ^ 0x5eed))
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.bound, id)
		s.mu.Unlock()
	}
}

func (s *seededRand) Read(p []byte) (int, error) {
	s.mu.Lock()
	r := s.bound[goid()]
	s.mu.Unlock()
	if r == nil {
		return s.fallback.Read(p)
	}
	return r.Read(p)
}

func goid() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	s := bytes.TrimPrefix(buf[:n], []byte("goroutine "))
	i := bytes.IndexByte(s, ' ')
	if i < 0 {
		panic(errors.New("cannot parse goroutine id"))
	}
	id, err := strconv.ParseUint(string(s[:i]), 10, 64)
	if err != nil {
		panic(err)
	}
	return id
}
