package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
)

// The calls a client makes for every transaction it submits: public
// (eth_sendRawTransaction) and private (eea_sendRawTransaction).
const (
	sendRawMethod    = "eth_sendRawTransaction"
	sendRawEeaMethod = "eea_sendRawTransaction"
)

// sendRawCall is one JSON-RPC call as go-ethereum's server reads it, with
// the params of eth_sendRawTransaction or eea_sendRawTransaction.
type sendRawCall struct {
	Version string            `json:"jsonrpc"`
	ID      json.RawMessage   `json:"id"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
	Error   json.RawMessage   `json:"error"`
	Result  json.RawMessage   `json:"result"`
}

// sendRawKeys are the keys of sendRawCall's fields, quoted.
var sendRawKeys = [][]byte{[]byte(`"jsonrpc"`), []byte(`"id"`), []byte(`"method"`), []byte(`"params"`), []byte(`"error"`), []byte(`"result"`)}

// exactKeys reports whether encoding/json reads body's keys into
// sendRawCall as go-ethereum's server reads them: go-ethereum matches a key
// exactly, encoding/json in any case (Unicode folding included: "jſonrpc"
// is "jsonrpc" to it). Conservative: a body with an escape or a byte
// beyond ASCII, or with one of the keys spelled in another case, is not
// taken.
func exactKeys(body []byte) bool {
	if bytes.IndexByte(body, '\\') >= 0 {
		return false // an escaped key may spell a field in another case
	}
	for _, c := range body {
		if c >= 0x80 {
			return false
		}
	}
	lower := bytes.ToLower(body)
	for _, k := range sendRawKeys {
		if bytes.Count(lower, k) != bytes.Count(body, k) {
			return false
		}
	}
	return true
}

// sendRawAnswer is a JSON-RPC answer to one call.
type sendRawAnswer struct {
	Version string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  *common.Hash    `json:"result,omitempty"`
	Error   *sendRawError   `json:"error,omitempty"`
}

type sendRawError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// serveSendRaw answers an HTTP request whose body is one well-formed
// eth_sendRawTransaction or eea_sendRawTransaction call, or a batch of
// nothing else, as go-ethereum's server would, and tells whether it did. A
// client submits a transaction a request, or a batch of them (ethers
// batches what it sends within 10 ms): go-ethereum's generic server (a
// codec, a handler and a goroutine a request, each method called by
// reflection, a tracing span a call) costs more than the call itself
// there. Anything else (another method, a malformed call, params that do
// not decode, a batch over the limit, eea_ on a node that does not serve
// it) goes on to go-ethereum's server with its body unchanged, so that its
// answers, errors included, stay the same.
//
// The calls of a batch run one after the other, in order, as go-ethereum
// runs them; an eea_ call gets the request's context (go-ethereum's adds
// its own values, which no method here reads).
func (s *Server) serveSendRaw(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost || r.ContentLength <= 0 || r.ContentLength > int64(s.cfg.BodyBytes) ||
		s.halted.Load() || !jsonContent(r.Header.Get("Content-Type")) {
		return false
	}
	body := make([]byte, r.ContentLength)
	n, err := io.ReadFull(r.Body, body)
	// Whatever happens next, the body goes on as it was read.
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body[:n]), r.Body))
	if err != nil || !bytes.Contains(body, []byte("_sendRawTransaction")) || !exactKeys(body) {
		return false
	}
	ctx := r.Context()
	var out []byte
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
		var calls []sendRawCall
		if json.Unmarshal(body, &calls) != nil || len(calls) == 0 || len(calls) > s.cfg.BatchItems {
			return false
		}
		raws := make([][]byte, len(calls))
		for i := range calls {
			if raws[i] = s.rawOf(&calls[i]); raws[i] == nil {
				return false
			}
		}
		answers := make([]sendRawAnswer, len(calls))
		size := 0
		for i := range calls {
			answers[i] = s.sendRaw(ctx, &calls[i], raws[i])
			// go-ethereum's bound of a batch's answer: the calls after
			// the one that passes it are answered with an error.
			size += answers[i].size()
			if size > s.cfg.ResponseBytes {
				for j := i + 1; j < len(calls); j++ {
					answers[j] = sendRawAnswer{Version: "2.0", ID: calls[j].ID,
						Error: &sendRawError{Code: -32003, Message: "response too large"}}
				}
				break
			}
		}
		out = encodeAnswer(answers)
	} else {
		var call sendRawCall
		if json.Unmarshal(body, &call) != nil {
			return false
		}
		raw := s.rawOf(&call)
		if raw == nil {
			return false
		}
		out = encodeAnswer(s.sendRaw(ctx, &call, raw))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
	return true
}

// rawOf is the call's transaction, or nil if the call is not one
// go-ethereum's server would hand to eth_sendRawTransaction, or to
// eea_sendRawTransaction of this server, as it is.
func (s *Server) rawOf(c *sendRawCall) []byte {
	if c.Version != "2.0" || len(c.ID) == 0 || c.ID[0] == '{' || c.ID[0] == '[' ||
		c.Error != nil || c.Result != nil || len(c.Params) != 1 {
		return nil
	}
	switch c.Method {
	case sendRawMethod:
		var raw hexutil.Bytes // what json.Unmarshal calls, without validating the string again
		if raw.UnmarshalJSON(c.Params[0]) != nil {
			return nil
		}
		if raw == nil {
			raw = hexutil.Bytes{}
		}
		return raw
	case sendRawEeaMethod:
		// Only a string: go-ethereum's answers to anything else (null
		// among them) come from its own argument decoding.
		if s.eea == nil || len(c.Params[0]) == 0 || c.Params[0][0] != '"' {
			return nil
		}
		var raw rawTxParam
		if raw.UnmarshalJSON(c.Params[0]) != nil {
			return nil
		}
		if raw == nil {
			raw = rawTxParam{}
		}
		return raw
	}
	return nil
}

// sendRaw submits one transaction and makes the call's answer.
func (s *Server) sendRaw(ctx context.Context, c *sendRawCall, raw []byte) sendRawAnswer {
	answer := sendRawAnswer{Version: "2.0", ID: c.ID}
	var hash common.Hash
	var err error
	if c.Method == sendRawEeaMethod {
		hash, err = s.eea.SendRawTransaction(ctx, raw)
	} else {
		hash, err = s.eth.SendRawTransaction(raw)
	}
	if err == nil {
		answer.Result = &hash
		return answer
	}
	answer.Error = &sendRawError{Code: -32000, Message: err.Error()}
	if ec, ok := err.(gethrpc.Error); ok {
		answer.Error.Code = ec.ErrorCode()
	}
	if de, ok := err.(gethrpc.DataError); ok {
		answer.Error.Data = de.ErrorData()
	}
	return answer
}

// size is what go-ethereum counts of an answer against a batch's bound:
// the encoded result or error.
func (a *sendRawAnswer) size() int {
	if a.Result != nil {
		return len(`"0x"`) + 2*len(a.Result)
	}
	b, err := json.Marshal(a.Error)
	if err != nil {
		return 0
	}
	return len(b)
}

// encodeAnswer encodes an answer or a batch's answers.
func encodeAnswer(v any) []byte {
	out, err := json.Marshal(v)
	if err != nil { // an error's data that does not encode
		out, _ = json.Marshal(sendRawAnswer{Version: "2.0", ID: json.RawMessage("null"),
			Error: &sendRawError{Code: -32603, Message: "answer does not encode: " + err.Error()}})
	}
	return out
}

// jsonContent tells whether go-ethereum's server takes a request body of
// this content type.
func jsonContent(ct string) bool {
	if ct == "application/json" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || mt == "application/json-rpc" || mt == "application/jsonrequest")
}
