package gateway

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// Bounds of the ABI types the gateway packs and unpacks: an uploaded ABI
// is untrusted, and a fixed-size array type of 2^40 elements would have
// go-ethereum allocate it whole before looking at the data.
const (
	maxTypeDepth   = 16      // nesting of arrays and tuples
	maxStaticWords = 1 << 16 // 32-byte words of one fixed-size value
	maxIntDigits   = 80      // characters of an integer argument (2^256 has 78 digits)
)

// parseABI reads a contract's JSON ABI. go-ethereum builds Go types of
// the ABI's types as it reads it, and panics on some it cannot build
// (arrays past the address space): those are errors here.
func parseABI(raw []byte) (parsed abi.ABI, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unusable type: %v", r)
		}
	}()
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return abi.ABI{}, errors.New("want the JSON array a Solidity compiler writes")
	}
	return abi.JSON(bytes.NewReader(trimmed))
}

// checkTypes bounds the types of args: their depth and the size of their
// fixed-size parts; fixed-point numbers (which Solidity does not
// implement) are refused.
func checkTypes(args abi.Arguments) error {
	for i, a := range args {
		if _, err := staticWords(&a.Type, 0); err != nil {
			return fmt.Errorf("%s (%s): %v", argName(a, i), a.Type, err)
		}
	}
	return nil
}

// staticWords is the number of 32-byte words t takes in place (1 for
// the offset of a dynamic type), checking t and its parts.
func staticWords(t *abi.Type, depth int) (int, error) {
	if depth > maxTypeDepth {
		return 0, fmt.Errorf("nested more than %d deep", maxTypeDepth)
	}
	switch t.T {
	case abi.FixedPointTy:
		return 0, errors.New("fixed-point types are not supported")
	case abi.SliceTy:
		if _, err := staticWords(t.Elem, depth+1); err != nil {
			return 0, err
		}
		return 1, nil
	case abi.ArrayTy:
		w, err := staticWords(t.Elem, depth+1)
		if err != nil {
			return 0, err
		}
		if t.Size < 0 || t.Size > maxStaticWords || w*t.Size > maxStaticWords {
			return 0, fmt.Errorf("fixed-size array of more than %d words", maxStaticWords)
		}
		if isDynamic(t) {
			return 1, nil
		}
		return w * t.Size, nil
	case abi.TupleTy:
		sum := 0
		for _, e := range t.TupleElems {
			w, err := staticWords(e, depth+1)
			if err != nil {
				return 0, err
			}
			if sum += w; sum > maxStaticWords {
				return 0, fmt.Errorf("tuple of more than %d words", maxStaticWords)
			}
		}
		if isDynamic(t) {
			return 1, nil
		}
		return sum, nil
	}
	return 1, nil
}

func isDynamic(t *abi.Type) bool {
	switch t.T {
	case abi.StringTy, abi.BytesTy, abi.SliceTy:
		return true
	case abi.ArrayTy:
		return isDynamic(t.Elem)
	case abi.TupleTy:
		return slices.ContainsFunc(t.TupleElems, isDynamic)
	}
	return false
}

// headWords is how many words t takes in the head of its tuple.
func headWords(t *abi.Type) int {
	if isDynamic(t) {
		return 1
	}
	w, _ := staticWords(t, 0) // checked by checkTypes
	return w
}

func argName(a abi.Argument, i int) string {
	if a.Name != "" {
		return a.Name
	}
	return "#" + strconv.Itoa(i)
}

// packArgs turns the JSON arguments of a function call into the Go
// values go-ethereum packs for its inputs. raw is a JSON array (the
// arguments in order) or object (by input name); absent or null: no
// arguments. Errors name the argument: "args[1]", "args.to",
// "args.orders[2].price".
func packArgs(inputs abi.Arguments, raw json.RawMessage) ([]any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		if len(inputs) > 0 {
			return nil, argErr("args", "the function takes %d arguments (%s)", len(inputs), typeList(inputs))
		}
		return nil, nil
	}
	vals := make([]any, len(inputs))
	switch raw[0] {
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, argErr("args", "%v", err)
		}
		if len(items) != len(inputs) {
			return nil, argErr("args", "%d given, the function takes %d (%s)", len(items), len(inputs), typeList(inputs))
		}
		for i, in := range inputs {
			v, err := jsonValue(&in.Type, items[i], fmt.Sprintf("args[%d]", i))
			if err != nil {
				return nil, err
			}
			vals[i] = v.Interface()
		}
	case '{':
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			return nil, argErr("args", "%v", err)
		}
		for i, in := range inputs {
			if in.Name == "" {
				return nil, argErr("args", "input %d of the function has no name: give the arguments as an array", i)
			}
			item, found := members[in.Name]
			if !found {
				return nil, argErr("args."+in.Name, "missing (%s)", in.Type)
			}
			v, err := jsonValue(&in.Type, item, "args."+in.Name)
			if err != nil {
				return nil, err
			}
			vals[i] = v.Interface()
			delete(members, in.Name)
		}
		for name := range members {
			return nil, argErr("args."+name, "the function has no such input (it takes %s)", typeList(inputs))
		}
	default:
		return nil, argErr("args", "want an array of the arguments in order, or an object of them by name")
	}
	return vals, nil
}

// argErr is a bad argument: a 400 naming it.
func argErr(field, format string, args ...any) error { return badInput(field, format, args...) }

func typeList(args abi.Arguments) string {
	if len(args) == 0 {
		return "none"
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a.Type.String()
		if a.Name != "" {
			out[i] += " " + a.Name
		}
	}
	return strings.Join(out, ", ")
}

// jsonValue reads raw as a value of type t, as the Go value go-ethereum
// packs for t: integers as decimal strings, JSON integers or 0x hex
// strings; addresses, bytes and fixed-size bytes as 0x hex strings;
// arrays as JSON arrays; tuples as JSON objects by component name or as
// arrays.
func jsonValue(t *abi.Type, raw json.RawMessage, field string) (reflect.Value, error) {
	raw = bytes.TrimSpace(raw)
	bad := func(format string, args ...any) (reflect.Value, error) {
		return reflect.Value{}, argErr(field, format, args...)
	}
	switch t.T {
	case abi.IntTy, abi.UintTy:
		n, err := jsonInteger(raw)
		if err != nil {
			return bad("%v (%s)", err, t)
		}
		if err := intFits(n, t); err != nil {
			return bad("%v", err)
		}
		gt := t.GetType()
		switch gt.Kind() {
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			return reflect.ValueOf(n.Uint64()).Convert(gt), nil
		case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return reflect.ValueOf(n.Int64()).Convert(gt), nil
		}
		return reflect.ValueOf(n), nil
	case abi.BoolTy:
		switch string(raw) {
		case "true":
			return reflect.ValueOf(true), nil
		case "false":
			return reflect.ValueOf(false), nil
		}
		return bad("want true or false (bool)")
	case abi.StringTy:
		var s string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return bad("want a JSON string (string)")
		}
		return reflect.ValueOf(s), nil
	case abi.AddressTy:
		s, isStr := jsonString(raw)
		if !isStr {
			return bad("not a 20-byte hex address (0x and 40 hex digits)")
		}
		a, err := parseAddress(field, s)
		if err != nil {
			return reflect.Value{}, err
		}
		return reflect.ValueOf(a), nil
	case abi.BytesTy:
		b, err := jsonBytes(raw)
		if err != nil {
			return bad("%v (bytes)", err)
		}
		return reflect.ValueOf(b), nil
	case abi.FixedBytesTy, abi.FunctionTy, abi.HashTy:
		b, err := jsonBytes(raw)
		size := t.Size
		if t.T == abi.FunctionTy {
			size = 24
		} else if t.T == abi.HashTy {
			size = 32
		}
		if err != nil || len(b) != size {
			return bad("want %d bytes in hex, 0x and %d hex digits (%s)", size, 2*size, t)
		}
		v := reflect.New(t.GetType()).Elem()
		reflect.Copy(v, reflect.ValueOf(b))
		return v, nil
	case abi.SliceTy, abi.ArrayTy:
		if len(raw) == 0 || raw[0] != '[' {
			return bad("want a JSON array (%s)", t)
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return bad("want a JSON array (%s)", t)
		}
		var v reflect.Value
		if t.T == abi.ArrayTy {
			// The length is checked before the array is made.
			if len(items) != t.Size {
				return bad("%d items, want %d (%s)", len(items), t.Size, t)
			}
			v = reflect.New(t.GetType()).Elem()
		} else {
			v = reflect.MakeSlice(t.GetType(), len(items), len(items))
		}
		for i, item := range items {
			e, err := jsonValue(t.Elem, item, fmt.Sprintf("%s[%d]", field, i))
			if err != nil {
				return reflect.Value{}, err
			}
			v.Index(i).Set(e)
		}
		return v, nil
	case abi.TupleTy:
		return jsonTuple(t, raw, field)
	}
	return bad("type %s is not supported", t)
}

// jsonTuple reads a tuple: an object with every component by name, or an
// array of them in order.
func jsonTuple(t *abi.Type, raw json.RawMessage, field string) (reflect.Value, error) {
	items := make([]json.RawMessage, len(t.TupleElems))
	switch {
	case len(raw) > 0 && raw[0] == '{':
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			return reflect.Value{}, argErr(field, "want a JSON object (%s)", t)
		}
		for i, name := range t.TupleRawNames {
			item, found := members[name]
			if !found {
				return reflect.Value{}, argErr(field+"."+name, "missing (%s)", t.TupleElems[i])
			}
			items[i] = item
			delete(members, name)
		}
		for name := range members {
			return reflect.Value{}, argErr(field+"."+name, "no such component (%s)", t)
		}
	case len(raw) > 0 && raw[0] == '[':
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil || len(list) != len(items) {
			return reflect.Value{}, argErr(field, "want an object of its components or an array of %d (%s)", len(items), t)
		}
		copy(items, list)
	default:
		return reflect.Value{}, argErr(field, "want an object of its components or an array of %d (%s)", len(items), t)
	}
	v := reflect.New(t.TupleType).Elem()
	for i, e := range t.TupleElems {
		name := field + "." + t.TupleRawNames[i]
		ev, err := jsonValue(e, items[i], name)
		if err != nil {
			return reflect.Value{}, err
		}
		v.Field(i).Set(ev)
	}
	return v, nil
}

// jsonString is raw's string when it is a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// jsonInteger reads an integer: a JSON integer, or a string of a decimal
// integer (optionally negative) or of 0x hex digits.
func jsonInteger(raw json.RawMessage) (*big.Int, error) {
	text := string(raw)
	if s, isStr := jsonString(raw); isStr {
		text = s
	} else if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return nil, errors.New("want an integer: a decimal string, a JSON integer or 0x hex")
	}
	if len(text) > maxIntDigits {
		return nil, fmt.Errorf("more than %d characters", maxIntDigits)
	}
	neg := strings.HasPrefix(text, "-")
	digits, base := strings.TrimPrefix(text, "-"), 10
	if h, isHex := strings.CutPrefix(digits, "0x"); isHex {
		digits, base = h, 16
	}
	allowed := "0123456789"
	if base == 16 {
		allowed = "0123456789abcdefABCDEF"
	}
	if digits == "" || strings.TrimLeft(digits, allowed) != "" {
		return nil, errors.New("want an integer: a decimal string, a JSON integer or 0x hex")
	}
	n, _ := new(big.Int).SetString(digits, base)
	if neg {
		n.Neg(n)
	}
	return n, nil
}

// intFits checks n against the range of t (intN or uintN).
func intFits(n *big.Int, t *abi.Type) error {
	if t.T == abi.UintTy {
		if n.Sign() < 0 || n.BitLen() > t.Size {
			return fmt.Errorf("%s out of range of %s", n, t)
		}
		return nil
	}
	limit := new(big.Int).Lsh(big.NewInt(1), uint(t.Size-1))
	if n.Cmp(limit) >= 0 || n.Cmp(new(big.Int).Neg(limit)) < 0 {
		return fmt.Errorf("%s out of range of %s", n, t)
	}
	return nil
}

// jsonBytes reads a JSON string of 0x hex bytes.
func jsonBytes(raw json.RawMessage) ([]byte, error) {
	s, isStr := jsonString(raw)
	if !isStr {
		return nil, errors.New("want a JSON string of 0x hex bytes")
	}
	h, has0x := strings.CutPrefix(s, "0x")
	if !has0x {
		return nil, errors.New("want 0x and an even number of hex digits")
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, errors.New("want 0x and an even number of hex digits")
	}
	return b, nil
}

// Output is one decoded output of a call.
type Output struct {
	Name  string `json:"name"` // "" for an unnamed output
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// outputsJSON renders decoded outputs: integers as decimal strings,
// addresses checksummed, bytes in 0x hex, tuples as objects by component
// name.
func outputsJSON(outs abi.Arguments, vals []any) []Output {
	res := make([]Output, len(outs))
	for i, o := range outs {
		res[i] = Output{Name: o.Name, Type: o.Type.String(), Value: valueJSON(&o.Type, reflect.ValueOf(vals[i]))}
	}
	return res
}

func valueJSON(t *abi.Type, v reflect.Value) any {
	switch t.T {
	case abi.IntTy, abi.UintTy:
		switch x := v.Interface().(type) {
		case *big.Int:
			return x.String()
		}
		if v.CanInt() {
			return strconv.FormatInt(v.Int(), 10)
		}
		return strconv.FormatUint(v.Uint(), 10)
	case abi.BoolTy:
		return v.Bool()
	case abi.StringTy:
		return v.String()
	case abi.AddressTy:
		return v.Interface().(common.Address).Hex()
	case abi.BytesTy:
		return hexutil.Encode(v.Bytes())
	case abi.FixedBytesTy, abi.FunctionTy, abi.HashTy:
		b := make([]byte, v.Len())
		reflect.Copy(reflect.ValueOf(b), v)
		return hexutil.Encode(b)
	case abi.SliceTy, abi.ArrayTy:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = valueJSON(t.Elem, v.Index(i))
		}
		return out
	case abi.TupleTy:
		obj := make(object, len(t.TupleElems))
		for i, e := range t.TupleElems {
			obj[i] = member{t.TupleRawNames[i], valueJSON(e, v.Field(i))}
		}
		return obj
	}
	return fmt.Sprint(v.Interface())
}

// object is a JSON object that keeps its members' order.
type object []member

type member struct {
	name  string
	value any
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(m.value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// measureOutputs walks return data as the encoding of outs, without
// decoding it, and fails when the decoded values would take more than
// budget bytes (each word 32, each string or bytes its length) or when
// an offset or length points outside data. go-ethereum decodes every
// offset it meets, so data whose offsets point many times at the same
// bytes would decode into far more than its size.
func measureOutputs(outs abi.Arguments, data []byte, budget int) error {
	types := make([]*abi.Type, len(outs))
	for i := range outs {
		types[i] = &outs[i].Type
	}
	m := &meter{data: data, left: budget}
	return m.seq(func(i int) *abi.Type { return types[i] }, len(types), 0, 0)
}

type meter struct {
	data []byte
	left int
}

var errTooMuch = errors.New("too large")

func (m *meter) charge(n int) error {
	if n < 0 || n > m.left {
		return errTooMuch
	}
	m.left -= n
	return nil
}

// word reads the word at pos as a non-negative int within the data's
// length.
func (m *meter) word(pos int) (int, error) {
	if pos < 0 || pos > len(m.data)-32 {
		return 0, fmt.Errorf("word at %d past the end (%d bytes)", pos, len(m.data))
	}
	w := new(big.Int).SetBytes(m.data[pos : pos+32])
	if !w.IsInt64() || w.Int64() > int64(len(m.data)) {
		return 0, fmt.Errorf("offset or length %s at %d past the end (%d bytes)", w, pos, len(m.data))
	}
	return int(w.Int64()), nil
}

// seq walks n values laid out as a tuple whose head starts at base.
func (m *meter) seq(elem func(int) *abi.Type, n, base, depth int) error {
	if depth > maxTypeDepth+1 {
		return errors.New("nested too deep")
	}
	head := base
	for i := 0; i < n; i++ {
		t := elem(i)
		if isDynamic(t) {
			off, err := m.word(head)
			if err != nil {
				return err
			}
			if err := m.value(t, base+off, depth); err != nil {
				return err
			}
			head += 32
			continue
		}
		if err := m.value(t, head, depth); err != nil {
			return err
		}
		head += 32 * headWords(t)
	}
	return nil
}

// value walks one value of t whose encoding starts at pos.
func (m *meter) value(t *abi.Type, pos, depth int) error {
	switch t.T {
	case abi.StringTy, abi.BytesTy:
		n, err := m.word(pos)
		if err != nil {
			return err
		}
		if pos+32+n > len(m.data) {
			return fmt.Errorf("%d bytes at %d past the end (%d bytes)", n, pos+32, len(m.data))
		}
		return m.charge(32 + n)
	case abi.SliceTy:
		n, err := m.word(pos)
		if err != nil {
			return err
		}
		if n > (len(m.data)-pos-32)/32 {
			return fmt.Errorf("%d items at %d past the end (%d bytes)", n, pos+32, len(m.data))
		}
		if err := m.charge(32); err != nil {
			return err
		}
		return m.seq(func(int) *abi.Type { return t.Elem }, n, pos+32, depth+1)
	case abi.ArrayTy:
		return m.seq(func(int) *abi.Type { return t.Elem }, t.Size, pos, depth+1)
	case abi.TupleTy:
		return m.seq(func(i int) *abi.Type { return t.TupleElems[i] }, len(t.TupleElems), pos, depth+1)
	}
	if pos < 0 || pos > len(m.data)-32 {
		return fmt.Errorf("word at %d past the end (%d bytes)", pos, len(m.data))
	}
	return m.charge(32)
}
