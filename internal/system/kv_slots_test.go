package system

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// dataSlot is the i-th data slot of the record whose head slot is head
// (the stores compute it from the key's remembered slots, slotsOf).
func dataSlot(head common.Hash, i int) common.Hash {
	return dataSlotAt(crypto.Keccak256Hash(head[:]), i)
}

// refDataSlot is the layout's definition: keccak(head) + i as a big
// number, truncated to 256 bits.
func refDataSlot(head common.Hash, i int) common.Hash {
	base := new(big.Int).SetBytes(crypto.Keccak256(head[:]))
	return common.BigToHash(base.Add(base, big.NewInt(int64(i))))
}

func TestDataSlotMatchesLayout(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	for n := 0; n < 2000; n++ {
		var head common.Hash
		for j := range head {
			head[j] = byte(r.Uint32())
		}
		i := r.IntN(300)
		if got, want := dataSlot(head, i), refDataSlot(head, i); got != want {
			t.Fatalf("dataSlot(%x, %d) = %x, want %x", head, i, got, want)
		}
	}
	// A carry through every byte, and the wrap at 2^256.
	var all common.Hash
	for j := range all {
		all[j] = 0xff
	}
	for _, i := range []int{1, 2, 255} {
		want := common.BigToHash(new(big.Int).Add(new(big.Int).SetBytes(all[:]), big.NewInt(int64(i))))
		if got := dataSlotAt(all, i); got != want {
			t.Fatalf("dataSlotAt(ff..ff, %d) = %x, want %x", i, got, want)
		}
	}
}

func TestSlotsOfIsStableAndBounded(t *testing.T) {
	for i := 0; i < slotCacheEntries+100; i++ {
		key := acctKey(common.BigToAddress(big.NewInt(int64(i))))
		ks := slotsOf(key)
		want := crypto.Keccak256Hash([]byte("charter.system."), []byte(key))
		if ks.head != want || ks.base != crypto.Keccak256Hash(want[:]) {
			t.Fatalf("slots of %q: %x %x", key, ks.head, ks.base)
		}
	}
	if n := slotCache.Len(); n > slotCacheEntries {
		t.Fatalf("slot cache holds %d keys, bound %d", n, slotCacheEntries)
	}
	// A key read again after eviction answers the same slots.
	key := acctKey(common.BigToAddress(big.NewInt(0)))
	if slotsOf(key).head != crypto.Keccak256Hash([]byte("charter.system."), []byte(key)) {
		t.Fatal("slots changed after eviction")
	}
}

// BenchmarkCheckSender is the registry check every transaction passes in
// the pool and again in its block: the sender's account, organization and
// node records.
func BenchmarkCheckSender(b *testing.B) {
	f := newFixture(b)
	to := testAddr("contract", 1)
	s := f.at(1)
	from := writerOf(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.CheckSender(from, &to); err != nil {
			b.Fatal(err)
		}
	}
}
