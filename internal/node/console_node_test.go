package node

import (
	"bytes"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/charter-ledger/charter/internal/p2p"
)

// The status book keeps one report per peer, at most maxStatusPeers, drops
// oversized or undecodable reports, cuts a long reason, and forgets the
// peers that are gone.
func TestStatusBookIsBounded(t *testing.T) {
	var b statusBook
	enc := func(w statusWire) []byte {
		p, err := rlp.EncodeToBytes(w)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, c := common.Address{1}, common.Address{2}
	b.handle(a, enc(statusWire{Ready: true, Head: 7}))
	if e, ok := b.get(a); !ok || !e.Ready || e.Head != 7 {
		t.Fatalf("report of a: %+v %v", e, ok)
	}
	b.handle(a, []byte{0xff, 0x01})
	b.handle(a, bytes.Repeat([]byte{0x80}, maxStatusBytes+1))
	if e, _ := b.get(a); e.Head != 7 {
		t.Fatalf("a bad report replaced a good one: %+v", e)
	}
	b.handle(c, enc(statusWire{Reason: string(bytes.Repeat([]byte("x"), 300))}))
	if e, ok := b.get(c); !ok || len(e.Reason) != maxReasonBytes {
		t.Fatalf("long reason: %d bytes, %v", len(e.Reason), ok)
	}
	for i := 0; i < maxStatusPeers+10; i++ {
		var n p2p.NodeID
		n[0], n[1], n[2] = 9, byte(i>>8), byte(i)
		b.handle(n, enc(statusWire{Head: uint64(i)}))
	}
	b.mu.Lock()
	size := len(b.mu.by)
	b.mu.Unlock()
	if size != maxStatusPeers {
		t.Fatalf("%d reports kept, want at most %d", size, maxStatusPeers)
	}
	b.prune(map[p2p.NodeID]bool{a: true})
	if _, ok := b.get(c); ok {
		t.Fatal("a gone peer's report kept")
	}
	if _, ok := b.get(a); !ok {
		t.Fatal("a connected peer's report pruned")
	}
}
