package node

import (
	"bytes"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

func TestSealedMemoTakeOnce(t *testing.T) {
	var m sealedMemo
	h := common.Hash{1}
	raw := []byte{0xc0, 1, 2}
	from := common.Address{9}
	m.put(h, raw, from)
	raw[0] = 0 // the memo keeps its own copy
	got, gotFrom, ok := m.take(h)
	if !ok || gotFrom != from || !bytes.Equal(got, []byte{0xc0, 1, 2}) {
		t.Fatalf("take = %x, %s, %v; want c00102, %s, true", got, gotFrom, ok, from)
	}
	if _, _, ok := m.take(h); ok {
		t.Fatal("a second take found the entry again")
	}
	if m.len() != 0 || m.bytes != 0 {
		t.Fatalf("after take: %d entries, %d bytes; want 0, 0", m.len(), m.bytes)
	}
}

func TestSealedMemoBounds(t *testing.T) {
	var m sealedMemo
	for i := 0; i < maxSealedMemo+100; i++ {
		m.put(common.Hash{byte(i), byte(i >> 8), byte(i >> 16), 3}, []byte{byte(i)}, common.Address{})
	}
	if m.len() != maxSealedMemo {
		t.Fatalf("%d entries; want the bound %d", m.len(), maxSealedMemo)
	}
	if _, _, ok := m.take(common.Hash{0, 0, 0, 3}); ok {
		t.Fatal("the oldest entry is still there past the bound")
	}
	// Bytes: entries of 1 MiB each, at most maxSealedMemoBytes of them.
	var b sealedMemo
	big := make([]byte, 1<<20)
	for i := 0; i < 2*maxSealedMemoBytes>>20; i++ {
		b.put(common.Hash{byte(i), 1}, big, common.Address{})
		if b.bytes > maxSealedMemoBytes {
			t.Fatalf("%d bytes kept, above the bound %d", b.bytes, maxSealedMemoBytes)
		}
	}
	// Taken entries leave their hashes in order; that list stays bounded.
	var c sealedMemo
	for i := 0; i < 5*maxSealedMemo; i++ {
		h := common.Hash{byte(i), byte(i >> 8), byte(i >> 16), 2}
		c.put(h, []byte{1}, common.Address{})
		if _, _, ok := c.take(h); !ok {
			t.Fatal("entry just put not found")
		}
	}
	if len(c.order) > 2*maxSealedMemo+1 {
		t.Fatalf("order holds %d hashes, above %d", len(c.order), 2*maxSealedMemo+1)
	}
}
