package node

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/p2p"
)

// The served-chunk budgets are bounded in peers: a full table refuses a new
// peer while every remembered one is fetching, and makes room by
// forgetting the idle ones, without resetting a busy peer's budget.
func TestServeBudgetBoundedInPeers(t *testing.T) {
	s := &snapshotStore{}
	id := func(i int) p2p.NodeID {
		var a common.Address
		a[0], a[1] = byte(i>>8), byte(i)
		return p2p.NodeID(a)
	}
	for i := 0; i < serveMaxPeers; i++ {
		if !s.allow(id(i), serveBurst) {
			t.Fatalf("peer %d refused its first chunk", i)
		}
	}
	if s.allow(id(0), serveBurst) {
		t.Fatal("a peer that used its burst was sent more at once")
	}
	newcomer := id(serveMaxPeers)
	if s.allow(newcomer, 1) {
		t.Fatal("a new peer was admitted while every remembered peer is fetching")
	}
	if len(s.limits) != serveMaxPeers {
		t.Fatalf("%d peers remembered, want %d", len(s.limits), serveMaxPeers)
	}
	waitUntil(t, 10*time.Second, "the idle peers' budgets to refill", func() bool { return s.allow(newcomer, 1) })
	if len(s.limits) > serveMaxPeers {
		t.Fatalf("%d peers remembered, bound %d", len(s.limits), serveMaxPeers)
	}
}
