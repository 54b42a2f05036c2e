package poa

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseSeal: the seal stored with a block, as a peer's block or the
// ledger gives it back. It parses or fails with ErrBadSeal; what parses
// writes back to the same bytes.
func FuzzParseSeal(f *testing.F) {
	f.Add(SealedBlock{Ballot: Ballot{Height: 3, Round: 1}, Sig: bytes.Repeat([]byte{1}, 65)}.Seal())
	f.Add([]byte{})
	f.Add(make([]byte, sealLen+1))
	f.Fuzz(func(t *testing.T, seal []byte) {
		b, sig, err := ParseSeal(seal)
		if err != nil {
			if !errors.Is(err, ErrBadSeal) {
				t.Fatalf("refusal %v does not wrap ErrBadSeal", err)
			}
			return
		}
		if !bytes.Equal(SealedBlock{Ballot: b, Sig: sig}.Seal(), seal) {
			t.Fatal("seal does not write back to its bytes")
		}
	})
}
