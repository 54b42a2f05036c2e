package rpc

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
)

// engineFake is a fake whose engine sees blocks beyond the committed head
// (as poa holds sealed blocks until they are final).
type engineFake struct {
	*fakeBackend
	tip *types.Header // the engine's newest block
}

func (e *engineFake) EngineHead(conf uint64) *types.Header {
	n := e.tip.Number.Uint64()
	if conf >= n {
		return e.fakeBackend.HeaderByNumber(0)
	}
	if h := e.fakeBackend.HeaderByNumber(n - conf); h != nil {
		return h
	}
	return &types.Header{Number: new(big.Int).SetUint64(n - conf), Extra: []byte("sealed, not final")}
}

func callHead(t *testing.T, ts *testServer, args ...any) HeadInfo {
	t.Helper()
	var h HeadInfo
	if err := ts.http.Call(&h, "charter_head", args...); err != nil {
		t.Fatalf("charter_head(%v): %v", args, err)
	}
	return h
}

// TestCharterHeadLevels: latest is the committed head, safe and finalized
// what the engine holds final (never above the committed head), and a
// number of confirmations the engine's answer, flagged when this node has
// not committed that block.
func TestCharterHeadLevels(t *testing.T) {
	f := newFake(t)
	for i := 0; i < 3; i++ {
		f.addBlock(nil, nil)
	}
	f.setFinalized(1)
	ts := serve(t, f, Config{})
	head := f.CurrentHeader()
	if h := callHead(t, ts); h.Level != "latest" || uint64(h.Number) != 3 || h.Hash != head.Hash() || !h.Committed {
		t.Fatalf("charter_head(): %+v, want block 3 %s", h, head.Hash())
	}
	for _, lvl := range []string{"safe", "finalized"} {
		if h := callHead(t, ts, lvl); h.Level != lvl || uint64(h.Number) != 1 || h.Hash != f.HeaderByNumber(1).Hash() || !h.Committed {
			t.Fatalf("charter_head(%s): %+v, want block 1", lvl, h)
		}
	}
	// Without an engine of its own, the backend has instant finality:
	// every number of confirmations is the committed head.
	for _, arg := range []any{0, 7, "2", "0x2"} {
		if h := callHead(t, ts, arg); uint64(h.Number) != 3 || !h.Committed {
			t.Fatalf("charter_head(%v): %+v, want the head", arg, h)
		}
	}
	// A finalized header above the committed head is never answered.
	f.mu.Lock()
	f.finalized = &types.Header{Number: big.NewInt(9)}
	f.mu.Unlock()
	if h := callHead(t, ts, "finalized"); uint64(h.Number) != 3 {
		t.Fatalf("finalized above the head: %+v", h)
	}
	var blk map[string]any
	if err := ts.http.Call(&blk, "eth_getBlockByNumber", "finalized", false); err != nil || blk["number"] != "0x3" {
		t.Fatalf("eth_getBlockByNumber(finalized) above the head: %v %v", blk["number"], err)
	}
	for _, bad := range []any{"soon", -1, "0x", "1e3", 1 << 40, map[string]int{"n": 1}, true} {
		var h HeadInfo
		rpcError(t, ts.http.Call(&h, "charter_head", bad), codeInvalidParams, "level")
	}

	// With the engine's view: 0 confirmations is its newest block, sealed
	// and not committed here; 2 is the committed head.
	f.setFinalized(3)
	es := serveBackend(t, &engineFake{fakeBackend: f, tip: &types.Header{Number: big.NewInt(5)}}, f, Config{})
	if h := callHead(t, es, 0); uint64(h.Number) != 5 || h.Committed || h.Level != "0" {
		t.Fatalf("charter_head(0) with a sealed tip: %+v", h)
	}
	if h := callHead(t, es, "0x2"); uint64(h.Number) != 3 || !h.Committed || h.Hash != head.Hash() || h.Level != "2" {
		t.Fatalf("charter_head(2): %+v, want the committed head", h)
	}
	if h := callHead(t, es, 100); uint64(h.Number) != 0 || !h.Committed {
		t.Fatalf("charter_head(100): %+v, want the genesis", h)
	}
	if h := callHead(t, es, "latest"); uint64(h.Number) != 3 {
		t.Fatalf("latest with a sealed tip: %+v", h)
	}
}
