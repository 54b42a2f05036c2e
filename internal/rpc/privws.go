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
)

// The WebSocket transport of a node that serves the priv namespace.
//
// Besu's priv_subscribe takes the privacy group first
// (["<group>", "logs", {filter}]) and priv_unsubscribe takes it too
// (["<group>", "<id>"]), where go-ethereum's server reads the subscription
// name, or the id, first. Besu's priv_subscription notification carries
// the group beside the result. This transport bridges both ways: it reads
// each WebSocket message, puts the name first in a priv_subscribe and
// drops the group of a priv_unsubscribe (as Besu without multi-tenancy,
// it does not check it: a subscription id is the connection's own), and
// it moves the group of a priv_subscription notification out of the
// result. Every other message passes unchanged. go-ethereum serves the
// connection as a stream of JSON messages (its stream codec), so bounds,
// batches and subscriptions are the server's as on any connection.
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
	s.rpc.ServeCodec(gethrpc.NewCodec(newPrivWSConn(conn, r.RemoteAddr)), 0)
}

// privWSConn presents a WebSocket connection as the byte stream
// go-ethereum's stream codec reads and writes: one JSON message per
// WebSocket message each way (the codec writes each message, a newline
// after it, in one Write).
type privWSConn struct {
	conn   *websocket.Conn
	remote string
	rbuf   []byte // what is left of the message being read

	once sync.Once
	quit chan struct{}
	wg   sync.WaitGroup
}

func newPrivWSConn(conn *websocket.Conn, remote string) *privWSConn {
	c := &privWSConn{conn: conn, remote: remote, quit: make(chan struct{})}
	conn.SetReadDeadline(time.Now().Add(wsPongWait))
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(wsPongWait))
	})
	c.wg.Add(1)
	go c.pingLoop()
	return c
}

func (c *privWSConn) pingLoop() {
	defer c.wg.Done()
	t := time.NewTicker(wsPingInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
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
func (c *privWSConn) RemoteAddr() string { return c.remote }

func (c *privWSConn) Read(p []byte) (int, error) {
	for len(c.rbuf) == 0 {
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			return 0, err
		}
		c.conn.SetReadDeadline(time.Now().Add(wsPongWait))
		if !json.Valid(msg) {
			return 0, errors.New("invalid JSON in a WebSocket message")
		}
		c.rbuf = append(rewritePrivRequest(msg), '\n')
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

func (c *privWSConn) Write(p []byte) (int, error) {
	msg := rewritePrivNotification(bytes.TrimSuffix(p, []byte{'\n'}))
	if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *privWSConn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

func (c *privWSConn) Close() error {
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
