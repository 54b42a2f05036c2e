package txpool

import (
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// FuzzAdmit feeds arbitrary bytes through the decoding and admission of
// eth_sendRawTransaction: nothing may panic, and what is admitted must
// decode to the same hash again.
func FuzzAdmit(f *testing.F) {
	k, _ := crypto.GenerateKey()
	for _, x := range []*types.Transaction{tx(k, 0, 1), txValue(k, 1, 5, 7)} {
		raw, _ := x.MarshalBinary()
		f.Add(raw)
	}
	f.Add([]byte{0x02})
	f.Add([]byte{0xf8, 0x00})
	f.Add([]byte{0x04, 0xc0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, _ := newTestPool(Config{}, k)
		var x types.Transaction
		if err := x.UnmarshalBinary(raw); err != nil {
			return
		}
		if err := p.Add(&x); err != nil {
			return
		}
		again, _ := x.MarshalBinary()
		var y types.Transaction
		if err := y.UnmarshalBinary(again); err != nil || y.Hash() != x.Hash() {
			t.Fatalf("admitted transaction does not round-trip: %v", err)
		}
	})
}
