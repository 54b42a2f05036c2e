package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/gorilla/websocket"

	"github.com/charter-ledger/charter/internal/auth"
)

// The WebSocket transport: every WebSocket connection is served through
// it.
//
// It checks each message, as the HTTP handler checks each request, against
// the caller of the upgrade request (roles.go) and its rate limit
// (auth.Admit): a message with a call the caller may not make is answered
// on the socket with its errors and none of its calls runs; the others are
// handed to go-ethereum in the canonical form that was checked. Without an
// identity (no auth middleware) messages pass as they are.
//
// On a node that serves the priv namespace it also bridges Besu's shapes:
// Besu's priv_subscribe takes the privacy group first
// (["<group>", "logs", {filter}]) and priv_unsubscribe takes it too
// (["<group>", "<id>"]), where go-ethereum's server reads the subscription
// name, or the id, first. Besu's priv_subscription notification carries
// the group beside the result. This transport puts the name first in a
// priv_subscribe and drops the group of a priv_unsubscribe (as Besu
// without multi-tenancy, it does not check it: a subscription id is the
// connection's own), and it moves the group of a priv_subscription
// notification out of the result. Every other message passes unchanged.
//
// go-ethereum serves the connection as a stream of JSON messages (its
// stream codec), so bounds, batches and subscriptions are the server's as
// on any connection. The codec writes from its own goroutines (one at a
// time) while the read side writes refusals: writes hold wmu.
//
// Bounds: a message is at most Config.BodyBytes (the read limit); a
// connection that answers no ping for wsPongWait is closed.
const (
	wsPingInterval = 30 * time.Second
	wsPongWait     = 60 * time.Second
	wsWriteWait    = 10 * time.Second
	wsBufferBytes  = 4096
)

// serveWS upgrades r and serves it until the connection closes.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{
		ReadBufferSize:  wsBufferBytes,
		WriteBufferSize: wsBufferBytes,
		CheckOrigin:     func(*http.Request) bool { return true }, // Handler checked the origin
	}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		s.log.Debug("WebSocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	conn.SetReadLimit(int64(s.cfg.BodyBytes))
	c := newWSStream(conn, r.RemoteAddr, s.priv != nil)
	if id := auth.FromContext(r.Context()); id != nil {
		c.screen = &wsScreen{s: s, id: id, ctx: r.Context()}
		defer c.screen.note(auth.EntryOf(r.Context()))
	}
	s.rpc.ServeCodec(gethrpc.NewCodec(c), 0)
}

// wsStream presents a WebSocket connection as the byte stream go-ethereum's
// stream codec reads and writes: one JSON message per WebSocket message
// each way (the codec writes each message, a newline after it, in one
// Write).
type wsStream struct {
	conn   *websocket.Conn
	remote string
	priv   bool      // rewrite Besu's priv_ shapes
	screen *wsScreen // nil: no caller to check (no auth middleware)
	rbuf   []byte    // what is left of the message being read

	wmu      sync.Mutex // one writer at a time: the codec, or Read refusing a message
	deadline time.Time  // the codec's write deadline, under wmu

	once sync.Once
	quit chan struct{}
	wg   sync.WaitGroup
}

func newWSStream(conn *websocket.Conn, remote string, priv bool) *wsStream {
	c := &wsStream{conn: conn, remote: remote, priv: priv, quit: make(chan struct{})}
	conn.SetReadDeadline(time.Now().Add(wsPongWait))
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(wsPongWait))
	})
	c.wg.Add(1)
	go c.pingLoop()
	return c
}

func (c *wsStream) pingLoop() {
	defer c.wg.Done()
	t := time.NewTicker(wsPingInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			// WriteControl may be called concurrently with the writes.
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteWait)); err != nil {
				c.conn.Close()
				return
			}
		case <-c.quit:
			return
		}
	}
}

// RemoteAddr names the connection's client for per-client bounds
// (clientOf).
func (c *wsStream) RemoteAddr() string { return c.remote }

func (c *wsStream) Read(p []byte) (int, error) {
	for len(c.rbuf) == 0 {
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			return 0, err
		}
		c.conn.SetReadDeadline(time.Now().Add(wsPongWait))
		if !json.Valid(msg) {
			return 0, errors.New("invalid JSON in a WebSocket message")
		}
		if c.screen != nil {
			forward, answer := c.screen.check(msg)
			if forward == nil {
				if len(answer) > 0 {
					if err := c.write(answer, time.Now().Add(wsWriteWait)); err != nil {
						return 0, err
					}
				}
				continue
			}
			msg = forward
		}
		if c.priv {
			msg = rewritePrivRequest(msg)
		}
		c.rbuf = append(msg, '\n')
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

func (c *wsStream) Write(p []byte) (int, error) {
	msg := bytes.TrimSuffix(p, []byte{'\n'})
	if c.priv {
		msg = rewritePrivNotification(msg)
	}
	c.wmu.Lock()
	deadline := c.deadline
	c.wmu.Unlock()
	if err := c.write(msg, deadline); err != nil {
		return 0, err
	}
	return len(p), nil
}

// write sends one text message within deadline (zero: none).
func (c *wsStream) write(msg []byte, deadline time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(deadline)
	return c.conn.WriteMessage(websocket.TextMessage, msg)
}

// SetWriteDeadline sets the deadline of the codec's next writes.
func (c *wsStream) SetWriteDeadline(t time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.deadline = t
	return nil
}

func (c *wsStream) Close() error {
	var err error
	c.once.Do(func() {
		close(c.quit)
		c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
			time.Now().Add(wsWriteWait))
		err = c.conn.Close()
		c.wg.Wait()
	})
	return err
}

// rewritePrivRequest puts the subscription name of each priv_subscribe
// first and drops the group of each priv_unsubscribe, in a request or a
// batch; any other message, or one it cannot read, is returned as it is
// (the server answers it). msg is untrusted: the work is one parse of a
// message the read limit bounds.
func rewritePrivRequest(msg []byte) []byte {
	if !bytes.Contains(msg, []byte("priv_")) {
		return msg
	}
	t := bytes.TrimSpace(msg)
	if len(t) == 0 {
		return msg
	}
	if t[0] != '[' {
		if out, ok := rewritePrivCall(t); ok {
			return out
		}
		return msg
	}
	var batch []json.RawMessage
	if err := json.Unmarshal(t, &batch); err != nil {
		return msg
	}
	changed := false
	for i, m := range batch {
		if out, ok := rewritePrivCall(m); ok {
			batch[i], changed = out, true
		}
	}
	if !changed {
		return msg
	}
	out, err := json.Marshal(batch)
	if err != nil {
		return msg
	}
	return out
}

// rewritePrivCall rewrites one request object; ok false leaves it as it is.
func rewritePrivCall(raw []byte) ([]byte, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, false
	}
	var method string
	if err := json.Unmarshal(m["method"], &method); err != nil {
		return nil, false
	}
	var params []json.RawMessage
	switch method {
	case "priv_subscribe":
		if err := json.Unmarshal(m["params"], &params); err != nil || len(params) < 2 {
			return nil, false
		}
		params[0], params[1] = params[1], params[0] // [type, group, filter]
	case "priv_unsubscribe":
		if err := json.Unmarshal(m["params"], &params); err != nil || len(params) != 2 {
			return nil, false
		}
		params = params[1:] // [id]
	default:
		return nil, false
	}
	p, err := json.Marshal(params)
	if err != nil {
		return nil, false
	}
	m["params"] = p
	out, err := json.Marshal(m)
	if err != nil {
		return nil, false
	}
	return out, true
}

// notePrefix begins every priv_subscription notification go-ethereum
// writes.
var notePrefix = []byte(`{"jsonrpc":"2.0","method":"priv_subscription","params":`)

// rewritePrivNotification moves the group of a priv_subscription
// notification from its result to its params, as Besu sends it:
// {"subscription": id, "privacyGroupId": group, "result": log}. Other
// messages pass unchanged.
func rewritePrivNotification(msg []byte) []byte {
	if !bytes.HasPrefix(msg, notePrefix) {
		return msg
	}
	var note struct {
		Params struct {
			Subscription json.RawMessage            `json:"subscription"`
			Result       map[string]json.RawMessage `json:"result"`
		} `json:"params"`
	}
	if err := json.Unmarshal(msg, &note); err != nil {
		return msg
	}
	group, ok := note.Params.Result[noteGroupKey]
	if !ok {
		return msg
	}
	delete(note.Params.Result, noteGroupKey)
	out, err := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		Params  struct {
			Subscription   json.RawMessage            `json:"subscription"`
			PrivacyGroupID json.RawMessage            `json:"privacyGroupId"`
			Result         map[string]json.RawMessage `json:"result"`
		} `json:"params"`
	}{"2.0", "priv_subscription", struct {
		Subscription   json.RawMessage            `json:"subscription"`
		PrivacyGroupID json.RawMessage            `json:"privacyGroupId"`
		Result         map[string]json.RawMessage `json:"result"`
	}{note.Params.Subscription, group, note.Params.Result}})
	if err != nil {
		return msg
	}
	return out
}
