package chain

import (
	"encoding/json"
	"testing"
)

// FuzzParseSpec: no input panics; an accepted spec round-trips.
func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(`{"config":{"chainId":7},"alloc":{}}`))
	f.Add([]byte(`{"config":{"chainId":1},"gasLimit":"0x3b9aca00","baseFeePerGas":"0x0","consensus":{"engine":"bft","validators":["0x0000000000000000000000000000000000000001"]}}`))
	f.Add([]byte(`{"config":{"chainId":1,"londonBlock":5}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := ParseSpec(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted a spec that is not one JSON document: %q", data)
		}
		out, err := spec.Marshal()
		if err != nil {
			t.Fatalf("marshal an accepted spec: %v", err)
		}
		if _, err := ParseSpec(out); err != nil {
			t.Fatalf("an accepted spec does not parse again: %v\n%s", err, out)
		}
	})
}
