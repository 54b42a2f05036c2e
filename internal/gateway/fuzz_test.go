package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
)

// fuzzABI has functions of every kind of argument the gateway decodes.
const fuzzABI = `[
 {"type":"function","name":"ints","inputs":[{"name":"a","type":"uint8"},{"name":"b","type":"int64"},{"name":"c","type":"uint256"},{"name":"d","type":"int256"},{"name":"e","type":"uint24"}]},
 {"type":"function","name":"misc","inputs":[{"name":"a","type":"address"},{"name":"b","type":"bool"},{"name":"c","type":"string"},{"name":"d","type":"bytes"},{"name":"e","type":"bytes4"},{"name":"f","type":"function"}]},
 {"type":"function","name":"lists","inputs":[{"name":"a","type":"uint16[]"},{"name":"b","type":"string[2]"},{"name":"c","type":"bytes[][]"},{"name":"d","type":"address[3][]"}]},
 {"type":"function","name":"tuples","inputs":[{"name":"o","type":"tuple","components":[{"name":"id","type":"uint256"},{"name":"tags","type":"string[]"},
   {"name":"inner","type":"tuple[]","components":[{"name":"x","type":"int8"},{"name":"y","type":"bytes32"}]}]}]}
]`

var fuzzParsed = func() abi.ABI {
	a, err := parseABI([]byte(fuzzABI))
	if err != nil {
		panic(err)
	}
	return a
}()

var fuzzMethods = []string{"ints", "misc", "lists", "tuples"}

// FuzzPackArgs feeds JSON arguments to the decoder of each function of
// fuzzABI. What decodes must pack; what packs must unpack, render as
// JSON and decode again to the very same encoding; what does not decode
// is a 400 naming the argument.
func FuzzPackArgs(f *testing.F) {
	f.Add(uint8(0), []byte(`["255","-9223372036854775808","0x10",-5,16777215]`))
	f.Add(uint8(0), []byte(`{"a":1,"b":"2","c":"115792089237316195423570985008687907853269984665640564039457584007913129639935","d":"-1","e":0}`))
	f.Add(uint8(0), []byte(`["256",0,0,0,0]`))
	f.Add(uint8(1), []byte(`["0x000000000000000000000000000000000000bA01",true,"héllo","0x","0x01020304","0x`+"00112233445566778899aabbccddeeff0011223344556677"+`"]`))
	f.Add(uint8(1), []byte(`{"a":"0x1","b":false,"c":"","d":"0xff","e":"0x01","f":"0x"}`))
	f.Add(uint8(2), []byte(`[["1",2],["a","b"],[["0x01"],[]],[["0x0000000000000000000000000000000000000001","0x0000000000000000000000000000000000000002","0x0000000000000000000000000000000000000003"]]]`))
	f.Add(uint8(3), []byte(`[{"id":"1","tags":["x","y"],"inner":[{"x":-1,"y":"0x`+"11"+`"},[2,"0x`+string(bytes.Repeat([]byte("22"), 32))+`"]]}]`))
	f.Add(uint8(3), []byte(`{"o":["7",[],[]]}`))
	f.Add(uint8(2), []byte(`null`))
	f.Add(uint8(0), []byte(`[1e3,1.5,"x",null,{}]`))
	f.Fuzz(func(t *testing.T, which uint8, raw []byte) {
		m := fuzzParsed.Methods[fuzzMethods[int(which)%len(fuzzMethods)]]
		if err := checkTypes(m.Inputs); err != nil {
			t.Fatal(err)
		}
		vals, err := packArgs(m.Inputs, raw)
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) || p.Status != http.StatusBadRequest || p.Field == "" {
				t.Fatalf("error %v (%T) is not a 400 naming the argument", err, err)
			}
			return
		}
		packed, err := m.Inputs.Pack(vals...)
		if err != nil {
			t.Fatalf("decoded arguments do not pack: %v", err)
		}
		if err := measureOutputs(m.Inputs, packed, 1<<24); err != nil {
			t.Fatalf("an encoding go-ethereum made does not measure: %v", err)
		}
		back, err := m.Inputs.Unpack(packed)
		if err != nil {
			t.Fatalf("packed arguments do not unpack: %v", err)
		}
		outs := outputsJSON(m.Inputs, back)
		list := make([]any, len(outs))
		for i, o := range outs {
			list[i] = o.Value
		}
		again, err := json.Marshal(list)
		if err != nil {
			t.Fatal(err)
		}
		vals2, err := packArgs(m.Inputs, again)
		if err != nil {
			t.Fatalf("rendered outputs %s do not decode: %v", again, err)
		}
		packed2, err := m.Inputs.Pack(vals2...)
		if err != nil || !bytes.Equal(packed, packed2) {
			t.Fatalf("round trip through %s changed the encoding (%v)", again, err)
		}
	})
}

// FuzzParseABI feeds uploaded ABIs and function names: parsing,
// choosing the function and bounding its types never panic.
func FuzzParseABI(f *testing.F) {
	f.Add([]byte(fuzzABI), "tuples")
	f.Add([]byte(testABI), "over(address)")
	f.Add([]byte(`[{"type":"function","name":"f","inputs":[{"name":"a","type":"uint256[4611686018427387904][4]"}]}]`), "f")
	f.Add([]byte(`[{"type":"function","name":"f","inputs":[{"name":"a","type":"tuple","components":[{"name":"b","type":"uint8[99999999]"}]}]}]`), "f")
	f.Add([]byte(`[{"type":"function","name":"f","inputs":[{"name":"a","type":"fixed128x18"}]}]`), "f")
	f.Add([]byte(`{}`), "f")
	f.Fuzz(func(t *testing.T, raw []byte, method string) {
		parsed, err := parseABI(raw)
		if err != nil {
			return
		}
		m, err := selectMethod(&parsed, method)
		if err != nil {
			return
		}
		if checkTypes(m.Inputs) != nil || checkTypes(m.Outputs) != nil {
			return
		}
		// A bounded function decodes arguments without blowing up.
		_, _ = packArgs(m.Inputs, []byte(`[]`))
	})
}

// FuzzMeasureOutputs feeds return data to the outputs of each function
// of fuzzABI: what the meter passes, go-ethereum unpacks within the
// budget (no panic), and the meter never lets more through than its
// budget.
func FuzzMeasureOutputs(f *testing.F) {
	for i, name := range fuzzMethods {
		m := fuzzParsed.Methods[name]
		var raw []byte
		switch name {
		case "ints":
			raw = []byte(`[1,2,3,4,5]`)
		case "misc":
			raw = []byte(`["0x0000000000000000000000000000000000000001",true,"s","0x01","0x01020304","0x` + string(bytes.Repeat([]byte("00"), 24)) + `"]`)
		case "lists":
			raw = []byte(`[[1],["a","b"],[["0x01","0x02"]],[]]`)
		case "tuples":
			raw = []byte(`[{"id":1,"tags":["t"],"inner":[{"x":1,"y":"0x` + string(bytes.Repeat([]byte("00"), 32)) + `"}]}]`)
		}
		vals, err := packArgs(m.Inputs, raw)
		if err != nil {
			f.Fatal(err)
		}
		data, err := m.Inputs.Pack(vals...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), data)
	}
	// bytes[][] whose items all point at the same item.
	f.Add(uint8(2), bombData(64))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		m := fuzzParsed.Methods[fuzzMethods[int(which)%len(fuzzMethods)]]
		const budget = 1 << 16
		if err := measureOutputs(m.Inputs, data, budget); err != nil {
			return
		}
		vals, err := m.Inputs.Unpack(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(outputsJSON(m.Inputs, vals))
		if err != nil {
			t.Fatal(err)
		}
		// Rendered, a 32-byte word is at most 80 characters of decimal or
		// 66 of hex and some punctuation.
		if len(out) > 4*budget+1024 {
			t.Fatalf("%d bytes of data rendered as %d bytes within a budget of %d", len(data), len(out), budget)
		}
	})
}

// bombData is the outputs of lists (uint16[], string[2], bytes[][],
// address[3][]) where c's n items each point at one list of n items
// that each point at one 32-byte bytes: about 12n words that decode into
// n*n byte strings.
func bombData(n int) []byte {
	w := func(v int) []byte {
		b := make([]byte, 32)
		for i := 31; i >= 0 && v > 0; i-- {
			b[i] = byte(v)
			v >>= 8
		}
		return b
	}
	var d []byte
	// Head: offsets of a, b, c, d.
	head := 4 * 32
	aAt, bAt := head, head+32
	cAt := bAt + 32*5
	dAt := cAt + 32 + 32*n + 32 + 32*n + 64
	d = append(d, w(aAt)...)
	d = append(d, w(bAt)...)
	d = append(d, w(cAt)...)
	d = append(d, w(dAt)...)
	d = append(d, w(0)...) // a: no items
	// b: string[2]: offsets 64 and 64 to one empty string.
	d = append(d, w(64)...)
	d = append(d, w(64)...)
	d = append(d, w(0)...)
	d = append(d, w(0)...)
	d = append(d, w(0)...)
	// c: n items, each the offset of the same inner list.
	d = append(d, w(n)...)
	for i := 0; i < n; i++ {
		d = append(d, w(32*n)...)
	}
	// the inner list: n items, each the offset of the same bytes.
	d = append(d, w(n)...)
	for i := 0; i < n; i++ {
		d = append(d, w(32*n)...)
	}
	d = append(d, w(32)...)
	d = append(d, make([]byte, 32)...)
	d = append(d, w(0)...) // d: no items
	return d
}

func TestMeasureStopsOffsetBombs(t *testing.T) {
	m := fuzzParsed.Methods["lists"]
	data := bombData(200)
	if _, err := m.Inputs.Unpack(data); err != nil {
		t.Fatalf("the bomb is not a valid encoding: %v", err)
	}
	// 200*200 byte strings of 32 bytes: 2.5 MB from 13 KB of data.
	if err := measureOutputs(m.Inputs, data, 1<<20); !errors.Is(err, errTooMuch) {
		t.Fatalf("measure: %v, want too large", err)
	}
	if err := measureOutputs(m.Inputs, data, 4<<20); err != nil {
		t.Fatalf("measure within a large enough budget: %v", err)
	}
}

// FuzzDecodeBodies feeds request bodies to the strict decoder of each
// POST route: no panic, and every refusal a 400 that names a field.
func FuzzDecodeBodies(f *testing.F) {
	f.Add([]byte(`{"raw":"0x02"}`))
	f.Add([]byte(`{"args":[1,"2"],"abi":[],"from":"0x0000000000000000000000000000000000000001","value":"1","gas":21000}`))
	f.Add([]byte(`{"key":"k1","args":{"a":1},"gas":0}`))
	f.Add([]byte(`{"raw":"0x"} {}`))
	f.Add([]byte(`{"gas":-1}`))
	f.Add([]byte(`{"unknown":1}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&submitRequest{}, &callRequest{}, &sendRequest{}} {
			err := decodeBody(body, v)
			if err == nil {
				continue
			}
			var p *Problem
			if !errors.As(err, &p) || p.Status != http.StatusBadRequest || p.Field == "" {
				t.Fatalf("body %q: error %v is not a 400 naming a field", body, err)
			}
		}
	})
}
