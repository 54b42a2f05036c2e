package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/system"
)

// Who may call what.
//
// Every method the server registers is listed in methodTable with the
// role it needs (TestRoleTableCoversEveryMethod fails when one is missing,
// so that no method is served without a role). A caller's identity comes
// from the auth middleware in the request's context; without one (charter
// dev, or a server without the middleware) every call is allowed, as
// before roles existed.
//
// Over HTTP the body is read (within Config.BodyBytes, the bound the
// server already enforces), every call of it checked, and a canonical copy
// of it, rebuilt from what was checked, is what go-ethereum reads: so the
// server runs exactly the methods the check saw, however the body spells
// its keys. Over WebSocket the transport (privws.go) does the same for
// every message. A request or message with any call the caller may not
// make runs none of its calls: each call is answered with an error (code
// -32003), the denied ones with why, the others with which call stopped
// them. Methods not in the table pass on, and go-ethereum answers them
// "method not found".

const (
	codeDenied  = auth.CodeDenied // -32003: the caller lacks a role, or is of another organization
	codeInvalid = -32600
)

// methodAccess is what calling a method needs of its caller.
type methodAccess struct {
	need system.Role
	// ownOrg: the method reads or acts on what belongs to the node's
	// organization (private transactions, its privacy groups): the
	// caller's organization must be the node's (Config.Org).
	ownOrg bool
	// private: the method reads private data; the request is marked for
	// the node's disclosure log (auth.Entry.Private).
	private bool
}

var (
	read     = methodAccess{need: system.RoleRead}
	write    = methodAccess{need: system.RoleWrite}
	ownRead  = methodAccess{need: system.RoleRead, ownOrg: true}
	ownWrite = methodAccess{need: system.RoleWrite, ownOrg: true}
	privRead = methodAccess{need: system.RoleRead, ownOrg: true, private: true}
)

// methodTable is the access of every method served. Subscriptions are
// checked by their namespace's _subscribe method.
var methodTable = map[string]methodAccess{
	// eth: chain reads and calls.
	"eth_chainId":                             read,
	"eth_blockNumber":                         read,
	"eth_syncing":                             read,
	"eth_mining":                              read,
	"eth_coinbase":                            read,
	"eth_accounts":                            read,
	"eth_getBalance":                          read,
	"eth_getTransactionCount":                 read,
	"eth_getCode":                             read,
	"eth_getStorageAt":                        read,
	"eth_getBlockByNumber":                    read,
	"eth_getBlockByHash":                      read,
	"eth_getBlockTransactionCountByNumber":    read,
	"eth_getBlockTransactionCountByHash":      read,
	"eth_getUncleCountByBlockNumber":          read,
	"eth_getUncleCountByBlockHash":            read,
	"eth_getBlockReceipts":                    read,
	"eth_getTransactionByHash":                read,
	"eth_getTransactionByBlockNumberAndIndex": read,
	"eth_getTransactionByBlockHashAndIndex":   read,
	"eth_getTransactionReceipt":               read,
	"eth_gasPrice":                            read,
	"eth_maxPriorityFeePerGas":                read,
	"eth_blobBaseFee":                         read,
	"eth_feeHistory":                          read,
	"eth_call":                                read,
	"eth_estimateGas":                         read,
	"eth_getProof":                            read,
	"eth_getLogs":                             read,
	"eth_newFilter":                           read,
	"eth_newBlockFilter":                      read,
	"eth_newPendingTransactionFilter":         read,
	"eth_uninstallFilter":                     read,
	"eth_getFilterChanges":                    read,
	"eth_getFilterLogs":                       read,
	"eth_subscribe":                           read, // newHeads, logs, newPendingTransactions
	"eth_unsubscribe":                         read,
	// eth: sending and signing (eth_sendTransaction and the signing
	// methods use the development accounts of charter dev).
	"eth_sendRawTransaction": write,
	"eth_sendTransaction":    write,
	"eth_signTransaction":    write,
	"eth_sign":               write,
	"personal_sign":          write,

	"net_version":        read,
	"net_listening":      read,
	"net_peerCount":      read,
	"web3_clientVersion": read,
	"web3_sha3":          read,
	"txpool_status":      read,
	"txpool_content":     read,
	"rpc_modules":        read, // go-ethereum's own

	"charter_members":   read,
	"charter_head":      read,
	"charter_account":   read,
	"charter_proposal":  read,
	"charter_proposals": read,
	"charter_history":   read,
	"charter_usage":     read,
	"charter_policy":    read,
	"charter_group":     read,
	"charter_groups":    read,

	// Besu's privacy API: the node's organization's private transactions.
	"eea_sendRawTransaction":           ownWrite,
	"priv_distributeRawTransaction":    ownWrite,
	"priv_createPrivacyGroup":          ownWrite,
	"priv_deletePrivacyGroup":          ownWrite,
	"priv_getPrivacyPrecompileAddress": ownRead,
	"priv_findPrivacyGroup":            privRead,
	"priv_getTransactionCount":         privRead,
	"priv_getEeaTransactionCount":      privRead,
	"priv_getTransactionReceipt":       privRead,
	"priv_getPrivateTransaction":       privRead,
	"priv_call":                        privRead,
	"priv_getCode":                     privRead,
	"priv_debugGetStateRoot":           privRead,
	"priv_getLogs":                     privRead,
	"priv_newFilter":                   privRead,
	"priv_getFilterChanges":            privRead,
	"priv_getFilterLogs":               privRead,
	"priv_uninstallFilter":             ownRead,
	"priv_subscribe":                   privRead, // logs
	"priv_unsubscribe":                 ownRead,
}

// accessOf is what calling method needs; ok false for a method this
// server does not serve (go-ethereum answers it).
func (s *Server) accessOf(method string) (methodAccess, bool) {
	ns, _, _ := strings.Cut(method, "_")
	if !s.namespaces[ns] {
		return methodAccess{}, false
	}
	if a, ok := methodTable[method]; ok {
		return a, true
	}
	if strings.HasSuffix(method, "_unsubscribe") {
		// go-ethereum ends a subscription of the connection by its id
		// under any namespace's _unsubscribe.
		return read, true
	}
	return methodAccess{}, false
}

// permit checks one call of id's: nil, or the error to answer with.
func (s *Server) permit(id *auth.Identity, method string) (methodAccess, error) {
	a, ok := s.accessOf(method)
	if !ok {
		return a, nil
	}
	if err := auth.Allow(id, method, a.need); err != nil {
		return a, err
	}
	if a.ownOrg {
		if err := auth.AllowOrg(id, method, s.cfg.Org); err != nil {
			return a, err
		}
	}
	return a, nil
}

// ---- requests: parsing, checking, answering ----

// rpcCall is one call of a JSON-RPC request, as checked and handed on.
// Raw fields hold valid JSON as it came, nil when absent.
type rpcCall struct {
	object  bool // the element is a JSON object (anything else is an invalid request)
	method  string
	version json.RawMessage
	id      json.RawMessage
	params  json.RawMessage
	errv    json.RawMessage
	result  json.RawMessage
}

// errBatchTooLarge is parseRequest's answer to a batch of more than the
// server takes.
var errBatchTooLarge = errors.New("batch too large")

// parseRequest reads a JSON-RPC request: one call, or a batch of at most
// maxBatch calls (more: errBatchTooLarge, having read no more than
// maxBatch+1 of them). Any other error means msg is not one valid JSON
// value. msg is untrusted: the work is a few passes over it, and memory
// proportional to it (a batch's calls are counted as they are read).
func parseRequest(msg []byte, maxBatch int) (calls []rpcCall, batch bool, err error) {
	t := bytes.TrimLeft(msg, " \t\r\n")
	if len(t) == 0 {
		return nil, false, io.ErrUnexpectedEOF
	}
	if !json.Valid(t) {
		return nil, false, errors.New("invalid JSON")
	}
	if t[0] != '[' {
		return []rpcCall{parseCall(t)}, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	if _, err := dec.Token(); err != nil { // [
		return nil, true, err
	}
	for dec.More() {
		if len(calls) == maxBatch {
			return calls, true, errBatchTooLarge
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, true, err
		}
		calls = append(calls, parseCall(raw))
	}
	return calls, true, nil
}

// parseCall reads one call; raw is valid JSON.
func parseCall(raw []byte) rpcCall {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return rpcCall{} // not an object (null, a number, an array, ...)
	}
	c := rpcCall{object: true, version: m["jsonrpc"], id: m["id"], params: m["params"], errv: m["error"], result: m["result"]}
	if mv, ok := m["method"]; ok {
		_ = json.Unmarshal(mv, &c.method) // not a string: no method
	}
	return c
}

// hasID tells whether the call is answered (it is not a notification).
func (c *rpcCall) hasID() bool { return c.id != nil }

// answerID is the id an answer to c carries: its own when it is a valid
// one (not an object or array), null otherwise.
func (c *rpcCall) answerID() json.RawMessage {
	if len(c.id) == 0 || c.id[0] == '{' || c.id[0] == '[' {
		return json.RawMessage("null")
	}
	return c.id
}

// encodeRequest writes calls back as the request go-ethereum reads: one
// object per call with only the members it reads, a non-object as {}.
func encodeRequest(calls []rpcCall, batch bool) []byte {
	var b bytes.Buffer
	if batch {
		b.WriteByte('[')
	}
	for i := range calls {
		if i > 0 {
			b.WriteByte(',')
		}
		c := &calls[i]
		b.WriteByte('{')
		first := true
		member := func(key string, v []byte) {
			if v == nil {
				return
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.WriteString(`"` + key + `":`)
			b.Write(v)
		}
		if c.object {
			member("jsonrpc", c.version)
			member("id", c.id)
			if c.method != "" {
				member("method", jsonString(c.method))
			}
			member("params", c.params)
			member("error", c.errv)
			member("result", c.result)
		}
		b.WriteByte('}')
	}
	if batch {
		b.WriteByte(']')
	}
	return b.Bytes()
}

// jsonString encodes s as a JSON string, without HTML escaping.
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

// screened is what checking a request decided.
type screened struct {
	forward []byte // the canonical request to hand on; nil when answer is set
	answer  []byte // the answer to send instead (no call runs); may be empty: nothing to send
	methods methodSet
	private bool // an allowed call reads private data
	denied  bool
	limited bool
}

// screen checks every call of msg against id. limit, when set, is asked
// first whether the message may be served at all (a WebSocket message's
// rate limit). msg that is not valid JSON is handed on as it is
// (go-ethereum refuses it without running anything).
func (s *Server) screen(id *auth.Identity, msg []byte, limit func() error) screened {
	calls, batch, err := parseRequest(msg, s.cfg.BatchItems)
	var out screened
	switch {
	case errors.Is(err, errBatchTooLarge):
		// As go-ethereum answers it: one error, with the first call's id.
		id := json.RawMessage("null")
		for i := range calls {
			if calls[i].object && calls[i].method != "" && calls[i].hasID() {
				id = calls[i].answerID()
				break
			}
		}
		out.answer = append(append([]byte{'['}, errorObject(id, codeInvalid, "batch too large")...), ']')
		return out
	case err != nil:
		out.forward = msg
		return out
	}
	for i := range calls {
		out.methods.add(calls[i].method)
	}
	if limit != nil {
		if err := limit(); err != nil {
			out.limited = true
			out.answer = answerAll(calls, batch, func(*rpcCall) (int, string) { return codeLimit, err.Error() })
			return out
		}
	}
	errs := make([]error, len(calls))
	var first error
	for i := range calls {
		if !calls[i].object || calls[i].method == "" {
			continue
		}
		a, err := s.permit(id, calls[i].method)
		if err != nil {
			errs[i] = err
			if first == nil {
				first = err
			}
			continue
		}
		out.private = out.private || a.private
	}
	if first == nil {
		out.forward = encodeRequest(calls, batch)
		return out
	}
	out.denied, out.private = true, false
	i := 0
	out.answer = answerAll(calls, batch, func(c *rpcCall) (int, string) {
		err := errs[i]
		i++
		switch {
		case err != nil:
			return codeDenied, err.Error()
		case !c.object || c.method == "":
			return codeInvalid, "invalid request"
		}
		return codeDenied, "not run: " + first.Error()
	})
	return out
}

// answerAll answers every call that expects an answer (not a
// notification) with the error errOf gives: one error object for a
// single call, an array for a batch; nil when no call expects one.
// errOf is called for every call, in order.
func answerAll(calls []rpcCall, batch bool, errOf func(*rpcCall) (int, string)) []byte {
	var parts [][]byte
	for i := range calls {
		c := &calls[i]
		code, msg := errOf(c)
		if c.object && c.method != "" && !c.hasID() {
			continue // a notification gets no answer
		}
		parts = append(parts, errorObject(c.answerID(), code, msg))
	}
	switch {
	case len(parts) == 0:
		return nil
	case !batch:
		return parts[0]
	}
	return append(append([]byte{'['}, bytes.Join(parts, []byte{','})...), ']')
}

func errorObject(id json.RawMessage, code int, msg string) []byte {
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{JSONRPC: "2.0", ID: id, Error: struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg}})
	return b
}

// note writes what a screened request did into the access-log entry.
func (sc *screened) note(e *auth.Entry) {
	e.What = sc.methods.String()
	switch {
	case sc.denied:
		e.Result = auth.ResultDenied
	case sc.limited:
		e.Result = auth.ResultLimited
	}
	e.Private = e.Private || sc.private
}

// checkHTTP checks the calls of a JSON-RPC request over HTTP by the
// caller id. It answers a request it refuses and returns false; otherwise
// it gives r the canonical body to serve and returns true.
func (s *Server) checkHTTP(w http.ResponseWriter, r *http.Request, id *auth.Identity) bool {
	if r.Method == http.MethodGet && r.ContentLength == 0 && r.URL.RawQuery == "" {
		return true // go-ethereum's health answer: no call
	}
	switch {
	case r.ContentLength > int64(s.cfg.BodyBytes), r.Method == http.MethodPut, r.Method == http.MethodDelete:
		return true // go-ethereum refuses it before reading the body
	}
	// go-ethereum reads no more than BodyBytes either.
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.cfg.BodyBytes)))
	if err != nil {
		http.Error(w, "reading the request body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	sc := s.screen(id, body, nil)
	sc.note(auth.EntryOf(r.Context()))
	if sc.forward == nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(sc.answer)))
		w.WriteHeader(http.StatusOK)
		w.Write(sc.answer)
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(sc.forward))
	r.ContentLength = int64(len(sc.forward))
	return true
}

// wsScreen is the check of a WebSocket connection's messages: the caller
// of its upgrade request, and what its messages did, for the access log.
type wsScreen struct {
	s   *Server
	id  *auth.Identity
	ctx context.Context // the upgrade request's: auth.Admit counts each message

	mu      sync.Mutex
	methods methodSet
	denied  int
	limited int
	private bool
}

// check screens one message: the message to hand on, or the answer to
// send (empty: none).
func (ws *wsScreen) check(msg []byte) (forward, answer []byte) {
	sc := ws.s.screen(ws.id, msg, func() error { return auth.Admit(ws.ctx) })
	ws.mu.Lock()
	for _, m := range sc.methods.names {
		ws.methods.add(m)
	}
	ws.methods.more += sc.methods.more
	if sc.denied {
		ws.denied++
	}
	if sc.limited {
		ws.limited++
	}
	ws.private = ws.private || sc.private
	ws.mu.Unlock()
	if sc.forward != nil {
		return sc.forward, nil
	}
	return nil, sc.answer
}

// note writes what the connection's messages did into the upgrade
// request's access-log entry.
func (ws *wsScreen) note(e *auth.Entry) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	e.What = ws.methods.String()
	switch {
	case ws.denied > 0:
		e.Result = fmt.Sprintf("%s (%d messages)", auth.ResultDenied, ws.denied)
	case ws.limited > 0:
		e.Result = fmt.Sprintf("%s (%d messages)", auth.ResultLimited, ws.limited)
	}
	e.Private = e.Private || ws.private
}

// maxNoted bounds the method names an access-log entry lists.
const maxNoted = 16

// methodSet is the distinct methods of a request, in first-seen order, at
// most maxNoted of them named.
type methodSet struct {
	names []string
	more  int // calls of methods past maxNoted
}

func (m *methodSet) add(method string) {
	if method == "" {
		method = "(none)"
	}
	for _, n := range m.names {
		if n == method {
			return
		}
	}
	if len(m.names) == maxNoted {
		m.more++
		return
	}
	m.names = append(m.names, method)
}

func (m *methodSet) String() string {
	s := strings.Join(m.names, ",")
	if m.more > 0 {
		s += fmt.Sprintf(",+%d more", m.more)
	}
	return s
}
