package system

import (
	"encoding/binary"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/lru"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"
)

// StateReader is the part of the world state the system contracts read:
// go-ethereum's StateDB satisfies it.
type StateReader interface {
	GetState(addr common.Address, key common.Hash) common.Hash
}

// StateWriter adds writes.
type StateWriter interface {
	StateReader
	SetState(addr common.Address, key common.Hash, value common.Hash) common.Hash
}

// store keeps byte records under string keys in the storage of one
// account, so that every record is part of the state root. A record of n
// bytes takes one head slot (its length, plus one so that an empty record
// differs from none) and ceil(n/32) data slots after keccak(head slot).
type store struct {
	addr common.Address
	r    StateReader
	w    StateWriter // nil when read-only
}

func headSlot(key string) common.Hash { return slotsOf(key).head }

// keySlots are the slots of one key: its head slot and keccak(head), the
// first of its data slots.
type keySlots struct{ head, base common.Hash }

// slotCacheEntries bounds the keys whose slots are remembered: every
// transaction reads its sender's account, organization and node records,
// and hashing their keys again was a visible part of admission and block
// execution. Entries are a few dozen bytes, so the cache stays near 2 MB.
const slotCacheEntries = 16384

var slotCache = lru.NewCache[string, keySlots](slotCacheEntries)

// slotsOf returns key's slots (a pure function of key, so remembering them
// cannot go stale).
func slotsOf(key string) keySlots {
	if ks, ok := slotCache.Get(key); ok {
		return ks
	}
	ks := keySlots{head: crypto.Keccak256Hash([]byte("charter.system."), []byte(key))}
	ks.base = crypto.Keccak256Hash(ks.head[:])
	slotCache.Add(key, ks)
	return ks
}

// dataSlotAt is base + i as 256-bit numbers, base being keccak(head).
func dataSlotAt(base common.Hash, i int) common.Hash {
	if i == 0 {
		return base
	}
	var n uint256.Int
	n.SetBytes32(base[:])
	n.AddUint64(&n, uint64(i))
	return n.Bytes32()
}

// get returns the record under key, or nil when there is none.
func (s store) get(key string) []byte {
	ks := slotsOf(key)
	h := s.r.GetState(s.addr, ks.head)
	if h == (common.Hash{}) {
		return nil
	}
	n := int(binary.BigEndian.Uint64(h[24:]) - 1)
	out := make([]byte, 0, n)
	for i := 0; len(out) < n; i++ {
		v := s.r.GetState(s.addr, dataSlotAt(ks.base, i))
		out = append(out, v[:min(32, n-len(out))]...)
	}
	return out
}

// has reports whether key holds a record.
func (s store) has(key string) bool { return s.r.GetState(s.addr, headSlot(key)) != common.Hash{} }

// put writes the record under key (an empty value is a record too);
// slots the old value used beyond the new one are cleared.
func (s store) put(key string, value []byte) {
	ks := slotsOf(key)
	head := ks.head
	old := s.slots(head)
	var h common.Hash
	binary.BigEndian.PutUint64(h[24:], uint64(len(value))+1)
	s.w.SetState(s.addr, head, h)
	i := 0
	for ; i*32 < len(value); i++ {
		var v common.Hash
		copy(v[:], value[i*32:])
		s.w.SetState(s.addr, dataSlotAt(ks.base, i), v)
	}
	for ; i < old; i++ {
		s.w.SetState(s.addr, dataSlotAt(ks.base, i), common.Hash{})
	}
}

// del removes the record under key.
func (s store) del(key string) {
	ks := slotsOf(key)
	old := s.slots(ks.head)
	s.w.SetState(s.addr, ks.head, common.Hash{})
	for i := 0; i < old; i++ {
		s.w.SetState(s.addr, dataSlotAt(ks.base, i), common.Hash{})
	}
}

func (s store) slots(head common.Hash) int {
	h := s.r.GetState(s.addr, head)
	if h == (common.Hash{}) {
		return 0
	}
	return int((binary.BigEndian.Uint64(h[24:]) - 1 + 31) / 32)
}

func (s store) getUint(key string) uint64 {
	v := s.get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (s store) putUint(key string, v uint64) {
	s.put(key, binary.BigEndian.AppendUint64(nil, v))
}
