package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
)

// readBody reads a POST body of JSON, at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, problemf(http.StatusUnsupportedMediaType, "Content-Type", "Content-Type: %q: the body must be application/json", ct)
		}
	} else {
		return nil, problemf(http.StatusUnsupportedMediaType, "Content-Type", "Content-Type: missing: the body must be application/json")
	}
	if r.ContentLength > int64(limit) {
		return nil, problemf(http.StatusRequestEntityTooLarge, "body", "body: %d bytes, at most %d", r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, problemf(http.StatusRequestEntityTooLarge, "body", "body: more than %d bytes", limit)
	case err != nil:
		return nil, badInput("body", "cannot be read: %v", err)
	}
	return body, nil
}

// maxIdempotencyKey bounds an Idempotency-Key's length.
const maxIdempotencyKey = 255

// idempotencyKey reads the Idempotency-Key header ("" when there is none):
// a string of 1 to 255 visible ASCII characters, bare or quoted as a
// structured-field string.
func idempotencyKey(r *http.Request) (string, error) {
	vals := r.Header.Values("Idempotency-Key")
	if len(vals) == 0 {
		return "", nil
	}
	if len(vals) > 1 {
		return "", badInput("Idempotency-Key", "given %d times, want once", len(vals))
	}
	k := strings.TrimSpace(vals[0])
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	if k == "" || len(k) > maxIdempotencyKey {
		return "", badInput("Idempotency-Key", "want 1 to %d visible ASCII characters", maxIdempotencyKey)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e || k[i] == '"' || k[i] == '\\' {
			return "", badInput("Idempotency-Key", "want 1 to %d visible ASCII characters (no quotes or backslashes)", maxIdempotencyKey)
		}
	}
	return k, nil
}

// fingerprint identifies a request for the idempotency store: its
// method, path and body.
func fingerprint(r *http.Request, body []byte) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%d\n", r.Method, r.URL.EscapedPath(), len(body))
	h.Write(body)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// decodeBody decodes a JSON body into v strictly: one JSON object, no
// unknown members, nothing after it. Errors name the member.
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badInput("body", "empty: want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badInput("body", "more than one JSON value")
	}
	return nil
}

// maxFieldName bounds the name of an unknown member or query parameter
// that a problem names as its field.
const maxFieldName = 64

// jsonProblem names the member of a JSON decoding error.
func jsonProblem(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badInput("body", "not valid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return badInput("body", "want a JSON object, not %s", typ.Value)
		}
		return badInput(field, "want %s, not %s", jsonTypeName(typ.Type.String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return badInput("body", "truncated JSON")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		if name == "" || len(name) > maxFieldName {
			return badInput("body", "unknown member %.64q", name)
		}
		return badInput(name, "unknown member")
	}
	return badInput("body", "%v", err)
}

// jsonTypeName says a Go type of a request member in JSON's words.
func jsonTypeName(goType string) string {
	switch {
	case strings.Contains(goType, "int"), goType == "json.Number":
		return "a number"
	case goType == "string", strings.HasSuffix(goType, "*string"):
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "a JSON " + goType
}

// parseAddress reads a 20-byte hex address (0x and 40 hex digits); one in
// mixed case must carry a valid EIP-55 checksum.
func parseAddress(field, s string) (common.Address, error) {
	if !common.IsHexAddress(s) || !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		return common.Address{}, badInput(field, "not a 20-byte hex address (0x and 40 hex digits)")
	}
	a := common.HexToAddress(s)
	hexPart := s[2:]
	if hexPart != strings.ToLower(hexPart) && hexPart != strings.ToUpper(hexPart) && a.Hex() != "0x"+hexPart {
		return common.Address{}, badInput(field, "mixed-case address with a wrong EIP-55 checksum (want %s)", a.Hex())
	}
	return a, nil
}

// parseHash reads a 32-byte hex hash.
func parseHash(field, s string) (common.Hash, error) {
	if len(s) != 66 || (s[:2] != "0x" && s[:2] != "0X") {
		return common.Hash{}, badInput(field, "not a 32-byte hex hash (0x and 64 hex digits)")
	}
	b, err := hex.DecodeString(s[2:])
	if err != nil {
		return common.Hash{}, badInput(field, "not a 32-byte hex hash (0x and 64 hex digits)")
	}
	return common.BytesToHash(b), nil
}

// parseUint64 reads a decimal number of at most 64 bits.
func parseUint64(field, s string) (uint64, error) {
	if s == "" || len(s) > 20 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, badInput(field, "not a decimal number")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, badInput(field, "%s is more than 64 bits", s)
	}
	return n, nil
}

// parseWei reads an amount of wei: a decimal string of at most 256 bits.
func parseWei(field, s string) (*big.Int, error) {
	if s == "" || len(s) > 78 || strings.TrimLeft(s, "0123456789") != "" {
		return nil, badInput(field, "want a decimal string of wei")
	}
	n, _ := new(big.Int).SetString(s, 10)
	if n.BitLen() > 256 {
		return nil, badInput(field, "more than 256 bits")
	}
	return n, nil
}

// Pagination bounds.
const (
	defaultLimit = 20
	maxLimit     = 100
)

// parseLimit reads ?limit= (default 20, at most 100).
func parseLimit(q url.Values) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit || strings.TrimLeft(s, "0123456789") != "" {
		return 0, badInput("limit", "want a whole number from 1 to %d", maxLimit)
	}
	return n, nil
}

// Cursors are opaque to clients: base64url of the list's name and the
// position the next page starts at ("blocks:117").

func encodeCursor(list string, pos uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(list + ":" + strconv.FormatUint(pos, 10)))
}

// decodeCursor reads ?cursor= of list; ok false when there is none.
func decodeCursor(q url.Values, list string) (pos uint64, ok bool, err error) {
	s := q.Get("cursor")
	if s == "" {
		return 0, false, nil
	}
	bad := badInput("cursor", "not a cursor of this list (use the next cursor of a previous page)")
	if len(s) > 64 {
		return 0, false, bad
	}
	raw, derr := base64.RawURLEncoding.DecodeString(s)
	if derr != nil {
		return 0, false, bad
	}
	num, found := strings.CutPrefix(string(raw), list+":")
	if !found {
		return 0, false, bad
	}
	pos, perr := strconv.ParseUint(num, 10, 64)
	if perr != nil || strconv.FormatUint(pos, 10) != num {
		return 0, false, bad
	}
	return pos, true, nil
}

// page is the body of a list: its items and the cursor of the next page
// (absent on the last).
type page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// pageReply answers a page with a Link header to the next one.
func pageReply[T any](r *http.Request, items []T, next string, limit int) *reply {
	rep := okReply(page[T]{Items: items, Next: next})
	if next != "" {
		q := url.Values{"cursor": {next}, "limit": {strconv.Itoa(limit)}}
		rep.header = http.Header{"Link": {fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.Path, q.Encode())}}
	}
	return rep
}
