package rpc

import (
	"net"
	"net/http"
	"sync"
)

// limitListener keeps at most max connections open at once. When max are
// open, Accept takes the next connection from the kernel's backlog (one,
// so at most max+1 descriptors are held) and waits to hand it to the
// server until one closes; connections the kernel has not handed over yet
// wait in its backlog. While a connection waits, keep-alive connections
// that sit idle between requests are closed (as soon as they are idle) to
// make room, so that idle pools of some clients do not lock others out.
//
// Accept is called by one goroutine (http.Server.Serve); ConnState and the
// connections' Close by any.
type limitListener struct {
	net.Listener
	slots chan struct{} // one token per open connection
	done  chan struct{} // closed by Close

	closeOnce sync.Once
	mu        struct {
		sync.Mutex
		idle    map[net.Conn]struct{} // keep-alive connections between requests
		waiting bool                  // Accept holds a connection and waits for a slot
	}
}

func newLimitListener(ln net.Listener, max int) *limitListener {
	l := &limitListener{Listener: ln, slots: make(chan struct{}, max), done: make(chan struct{})}
	l.mu.idle = make(map[net.Conn]struct{})
	return l
}

func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	select {
	case l.slots <- struct{}{}:
	default:
		l.mu.Lock()
		l.mu.waiting = true
		idle := make([]net.Conn, 0, len(l.mu.idle))
		for ic := range l.mu.idle {
			idle = append(idle, ic)
		}
		l.mu.Unlock()
		for _, ic := range idle {
			ic.Close()
		}
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			c.Close()
			return nil, net.ErrClosed
		}
		l.mu.Lock()
		l.mu.waiting = false
		l.mu.Unlock()
	}
	return &limitConn{Conn: c, l: l}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// connState is the http.Server's ConnState hook: it tracks the idle
// keep-alive connections, and closes one that goes idle while a new
// connection waits for its slot.
func (l *limitListener) connState(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	if st != http.StateIdle {
		delete(l.mu.idle, c)
		l.mu.Unlock()
		return
	}
	if l.mu.waiting {
		l.mu.Unlock()
		c.Close()
		return
	}
	l.mu.idle[c] = struct{}{}
	l.mu.Unlock()
}

// limitConn gives its slot back when closed (once, whoever closes it: the
// server, a WebSocket handler that hijacked it, or the idle reaper).
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.mu.idle, c)
		c.l.mu.Unlock()
		<-c.l.slots
	})
	return err
}
