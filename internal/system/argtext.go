package system

import (
	"encoding"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/identity"
)

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// ParseArgText reads one value of type t (the field's type, or its
// element type for a list) of field f from its text, as the CLI's flag
// and the console's draft form give it (a file's content for a File
// field). Errors name the flag.
func ParseArgText(f Field, t reflect.Type, s string) (any, error) {
	name := "--" + f.Flag
	switch t {
	case reflect.TypeFor[common.Address]():
		if !common.IsHexAddress(s) {
			return nil, fmt.Errorf("%s %q is not an address: want 0x and 40 hex digits", name, s)
		}
		return common.HexToAddress(s), nil
	case reflect.TypeFor[common.Hash]():
		fp, err := identity.ParseFingerprint(s)
		if err != nil {
			return nil, fmt.Errorf("%s %q: want 64 hex digits, optionally 0x (a certificate's SHA-256 as 'charter ca show' prints it)", name, s)
		}
		return common.Hash(fp), nil
	case reflect.TypeFor[*big.Int]():
		v, ok := new(big.Int).SetString(strings.TrimSpace(s), 0)
		if !ok || v.Sign() < 0 {
			return nil, fmt.Errorf("%s %q: want a non-negative whole number", name, s)
		}
		return v, nil
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		p := reflect.New(t)
		u, ok := p.Interface().(encoding.TextUnmarshaler)
		if !ok {
			return nil, fmt.Errorf("%s: %s cannot be read from text", name, t)
		}
		if err := u.UnmarshalText([]byte(s)); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		return p.Elem().Interface(), nil
	}
	switch t.Kind() {
	case reflect.String:
		return s, nil
	case reflect.Uint8, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 0, t.Bits())
		if err != nil {
			return nil, fmt.Errorf("%s %q: want a whole number below 2^%d", name, s, t.Bits())
		}
		return reflect.ValueOf(n).Convert(t).Interface(), nil
	}
	return nil, fmt.Errorf("%s: a %s cannot be read from text", name, t)
}
