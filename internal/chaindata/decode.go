package chaindata

import (
	"fmt"
	"math/big"
	"reflect"
	"strconv"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// DecodeEvent decodes l by c's ABI: the event its first topic names and
// its arguments by name, JSON-ready (integers as decimal strings,
// addresses, hashes and bytes as 0x hex, arrays and tuples recursively;
// an indexed argument of a dynamic type is the hash its topic holds). ok
// is false when c has no ABI, l has no topics, no event of the ABI has
// l's first topic, or l's topics or data do not fit that event.
func DecodeEvent(c Contract, l *types.Log) (ev *abi.Event, args map[string]any, ok bool) {
	if c.ABI == nil || l == nil || len(l.Topics) == 0 {
		return nil, nil, false
	}
	ev, err := c.ABI.EventByID(l.Topics[0])
	if err != nil || ev.Anonymous {
		return nil, nil, false
	}
	raw := make(map[string]any, len(ev.Inputs))
	if err := ev.Inputs.NonIndexed().UnpackIntoMap(raw, l.Data); err != nil {
		return nil, nil, false
	}
	var indexed abi.Arguments
	for _, in := range ev.Inputs {
		if in.Indexed {
			indexed = append(indexed, in)
		}
	}
	if len(indexed) != len(l.Topics)-1 {
		return nil, nil, false
	}
	if err := abi.ParseTopicsIntoMap(raw, indexed, l.Topics[1:]); err != nil {
		return nil, nil, false
	}
	args = make(map[string]any, len(raw))
	for k, v := range raw {
		args[k] = JSONValue(v)
	}
	return ev, args, true
}

var (
	bigIntType  = reflect.TypeFor[*big.Int]()
	addressType = reflect.TypeFor[common.Address]()
	hashType    = reflect.TypeFor[common.Hash]()
)

// JSONValue turns a value unpacked by go-ethereum's abi package into one
// that encoding/json writes without loss: integers as decimal strings,
// addresses as checksummed 0x hex, byte arrays and slices as 0x hex,
// tuples as objects keyed by the ABI's component names, other arrays
// and slices element by element.
func JSONValue(v any) any {
	if v == nil {
		return nil
	}
	return jsonValue(reflect.ValueOf(v))
}

func jsonValue(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	switch v.Type() {
	case bigIntType:
		if v.IsNil() {
			return nil
		}
		return v.Interface().(*big.Int).String()
	case addressType:
		return v.Interface().(common.Address).Hex()
	case hashType:
		return v.Interface().(common.Hash).Hex()
	}
	switch v.Kind() {
	case reflect.Bool:
		return v.Bool()
	case reflect.String:
		return v.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return jsonValue(v.Elem())
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(b), v)
			return hexutil.Bytes(b).String()
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = jsonValue(v.Index(i))
		}
		return out
	case reflect.Struct:
		t := v.Type()
		out := make(map[string]any, t.NumField())
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := f.Tag.Get("json")
			if name == "" {
				name = f.Name
			}
			out[name] = jsonValue(v.Field(i))
		}
		return out
	default:
		return fmt.Sprint(v.Interface())
	}
}
