package rpc

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"

	"github.com/ethereum/go-ethereum/common/hexutil"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
)

// sendRawMethod is the call a client makes for every transaction it submits.
const sendRawMethod = "eth_sendRawTransaction"

// sendRawCall is one JSON-RPC call as go-ethereum's server reads it, with
// the params of eth_sendRawTransaction.
type sendRawCall struct {
	Version string            `json:"jsonrpc"`
	ID      json.RawMessage   `json:"id"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
	Error   json.RawMessage   `json:"error"`
	Result  json.RawMessage   `json:"result"`
}

// sendRawAnswer is a JSON-RPC answer to one call.
type sendRawAnswer struct {
	Version string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *sendRawError   `json:"error,omitempty"`
}

type sendRawError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// serveSendRaw answers an HTTP request whose body is one well-formed
// eth_sendRawTransaction call, as go-ethereum's server would, and tells
// whether it did. A client submits one transaction a request: go-ethereum's
// generic server (a codec, a handler and a goroutine per request, the
// method called by reflection) costs about three times the call itself
// there. Anything else (a batch, another method, a malformed call, params
// that do not decode) goes on to go-ethereum's server with its body
// unchanged, so that its answers, errors included, stay the same.
func (s *Server) serveSendRaw(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost || r.ContentLength <= 0 || r.ContentLength > int64(s.cfg.BodyBytes) ||
		s.halted.Load() || !jsonContent(r.Header.Get("Content-Type")) {
		return false
	}
	body := make([]byte, r.ContentLength)
	n, err := io.ReadFull(r.Body, body)
	// Whatever happens next, the body goes on as it was read.
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body[:n]), r.Body))
	if err != nil || !bytes.Contains(body, []byte(sendRawMethod)) {
		return false
	}
	var call sendRawCall
	if json.Unmarshal(body, &call) != nil || call.Version != "2.0" || call.Method != sendRawMethod ||
		len(call.ID) == 0 || call.ID[0] == '{' || call.ID[0] == '[' ||
		call.Error != nil || call.Result != nil || len(call.Params) != 1 {
		return false
	}
	var raw hexutil.Bytes // what json.Unmarshal calls, without validating the string again
	if raw.UnmarshalJSON(call.Params[0]) != nil {
		return false
	}
	answer := sendRawAnswer{Version: "2.0", ID: call.ID}
	hash, err := s.eth.SendRawTransaction(raw)
	if err != nil {
		answer.Error = &sendRawError{Code: -32000, Message: err.Error()}
		if ec, ok := err.(gethrpc.Error); ok {
			answer.Error.Code = ec.ErrorCode()
		}
		if de, ok := err.(gethrpc.DataError); ok {
			answer.Error.Data = de.ErrorData()
		}
	} else {
		answer.Result = hash
	}
	out, err := json.Marshal(answer)
	if err != nil { // an error's data that does not encode
		out, _ = json.Marshal(sendRawAnswer{Version: "2.0", ID: call.ID,
			Error: &sendRawError{Code: -32603, Message: "answer does not encode: " + err.Error()}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
	return true
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
