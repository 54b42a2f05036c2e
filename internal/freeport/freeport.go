// Package freeport hands tests runs of consecutive free TCP ports on
// 127.0.0.1 for networks whose nodes must know each other's ports before
// any of them listens.
//
// Ports are drawn at random below Linux's ephemeral range (32768 and up), so
// the kernel's own choices for port 0 and for outgoing connections, made by
// any process on the machine, never land on them; a port handed out once is
// never handed out again by the same process.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

const (
	low  = 20000
	high = 32000
)

var (
	mu       sync.Mutex
	reserved = map[int]bool{}
)

// Base returns p such that p, p+1, ..., p+n-1 are free on 127.0.0.1 now
// and were not returned before in this process.
func Base(n int) (int, error) {
	mu.Lock()
	defer mu.Unlock()
	for attempt := 0; attempt < 500; attempt++ {
		base := low + rand.IntN(high-low-n)
		ok := true
		for i := 0; i < n && ok; i++ {
			if reserved[base+i] {
				ok = false
				break
			}
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)))
			if ok = err == nil; ok {
				l.Close()
			}
		}
		if ok {
			for i := 0; i < n; i++ {
				reserved[base+i] = true
			}
			return base, nil
		}
	}
	return 0, fmt.Errorf("freeport: no run of %d free ports between %d and %d", n, low, high)
}
