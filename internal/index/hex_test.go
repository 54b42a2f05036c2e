package index

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// TestHexAddrIsLowercaseHex checks that hexAddr writes what the index has
// always stored, strings.ToLower(a.Hex()), for fixed and random addresses.
func TestHexAddrIsLowercaseHex(t *testing.T) {
	seed := rand.Int63()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewSource(seed))
	addrs := []common.Address{{}, common.HexToAddress("0xffffffffffffffffffffffffffffffffffffffff"),
		common.HexToAddress("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")}
	for i := 0; i < 1000; i++ {
		var a common.Address
		r.Read(a[:])
		addrs = append(addrs, a)
	}
	for _, a := range addrs {
		if got, want := hexAddr(a), strings.ToLower(a.Hex()); got != want {
			t.Fatalf("hexAddr(%x) = %s, want %s", a[:], got, want)
		}
	}
}
