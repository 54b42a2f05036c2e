package privtx

import (
	"bytes"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
)

// FuzzDecode feeds arbitrary bytes to Decode: it never panics; what it
// refuses wraps ErrMalformed; what it accepts is within the bounds,
// re-encodes to the same bytes, hashes to keccak256 of them, and answers
// GroupID, Legacy and Sender without panicking.
func FuzzDecode(f *testing.F) {
	f.Add(hexutil.MustDecode(vectorRLP))
	key := mustKey(f, vectorKey)
	for _, group := range []bool{false, true} {
		tx := newTx(nil, []byte{0x60, 0x00})
		if group {
			tx.PrivacyGroupID = bytes.Repeat([]byte{0x5c}, KeySize)
		} else {
			tx.PrivateFor = [][]byte{bytes.Repeat([]byte{1}, KeySize), bytes.Repeat([]byte{0xf0}, KeySize)}
		}
		if err := SignTx(tx, big.NewInt(1337), key); err != nil {
			f.Fatal(err)
		}
		raw, err := tx.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	items := vectorItems(f)
	f.Add(list(f, items[:11]...))
	f.Add(replace(f, 10, enc(f, [][]byte{})))
	f.Add([]byte{0xc0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("refusal does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if len(data) > MaxTxBytes || len(tx.PrivateFor) > MaxPrivateFor || len(tx.PrivateFrom) != KeySize {
			t.Fatalf("decoded out of bounds: %d bytes, %d privateFor keys", len(data), len(tx.PrivateFor))
		}
		if (tx.PrivateFor == nil) == (tx.PrivacyGroupID == nil) {
			t.Fatal("decoded both or neither of privateFor and privacyGroupId")
		}
		raw, err := tx.Encode()
		if err != nil {
			t.Fatalf("Encode of a decoded transaction: %v", err)
		}
		if !bytes.Equal(raw, data) {
			t.Fatalf("re-encodes to other bytes:\n got %x\nwant %x", raw, data)
		}
		if tx.Hash() != crypto.Keccak256Hash(data) {
			t.Fatal("Hash is not keccak256 of the bytes")
		}
		_ = tx.GroupID()
		_ = tx.Legacy()
		if id := tx.ChainID(); id != nil {
			_, _ = tx.Sender(id)
		}
	})
}
