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

func TestKeptMemo(t *testing.T) {
	var m keptMemo
	g1, g2 := common.Hash{1}, common.Hash{2}
	h := common.Hash{9}
	env := []byte("envelope")
	m.put(g1, h, env)
	if _, ok := m.take(g2, h); ok {
		t.Fatal("an envelope kept for one group was taken for another")
	}
	got, ok := m.take(g1, h)
	if !ok || !bytes.Equal(got, env) {
		t.Fatalf("take = %q, %v; want %q", got, ok, env)
	}
	if _, ok := m.take(g1, h); ok {
		t.Fatal("taken twice")
	}
	// A purge forgets the group's envelopes, not the others'.
	for i := range 10 {
		m.put(common.Hash{byte(i % 2)}, common.Hash{byte(i), 7}, []byte{byte(i)})
	}
	m.forget(common.Hash{0})
	if m.len() != 5 || m.bytes != 5 || len(m.order) != 5 {
		t.Fatalf("after forget: %d entries, %d bytes, %d in order; want 5, 5, 5", m.len(), m.bytes, len(m.order))
	}
	for i := range 10 {
		_, ok := m.take(common.Hash{byte(i % 2)}, common.Hash{byte(i), 7})
		if ok != (i%2 == 1) {
			t.Fatalf("envelope %d of group %d: taken %v", i, i%2, ok)
		}
	}
	// Bounds: count and bytes.
	var b keptMemo
	big := make([]byte, 1<<20)
	for i := range 2 * maxKeptMemoBytes >> 20 {
		b.put(g1, common.Hash{byte(i), byte(i >> 8), 1}, big)
		if b.bytes > maxKeptMemoBytes {
			t.Fatalf("%d bytes kept, above the bound %d", b.bytes, maxKeptMemoBytes)
		}
	}
	var c keptMemo
	for i := range maxKeptMemo + 10 {
		c.put(g1, common.Hash{byte(i), byte(i >> 8), byte(i >> 16), 2}, []byte{1})
	}
	if c.len() != maxKeptMemo {
		t.Fatalf("%d entries; want the bound %d", c.len(), maxKeptMemo)
	}
}
