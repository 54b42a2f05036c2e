package solo

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus"
)

func child(parent *types.Header, txs int) *types.Block {
	var list []*types.Transaction
	for i := 0; i < txs; i++ {
		list = append(list, types.NewTx(&types.LegacyTx{Nonce: uint64(i), GasPrice: new(big.Int)}))
	}
	return types.NewBlockWithHeader(&types.Header{ParentHash: parent.Hash(), Number: new(big.Int).Add(parent.Number, common.Big1),
		Difficulty: new(big.Int)}).WithBody(types.Body{Transactions: list})
}

// The sealer asks for a block when notified and every tick; a block with
// transactions is committed and followed at once by the next request; an
// empty answer ends the run; a notification during a build is not lost.
func TestCoreSeals(t *testing.T) {
	genesis := types.NewBlockWithHeader(&types.Header{Number: new(big.Int), Difficulty: new(big.Int)})
	c := NewCore(Config{}, genesis.Header())
	c.Notify(nil)
	rd := c.Ready()
	if rd.Build == nil || rd.Build.Empty || rd.Build.Parent.Hash() != genesis.Hash() {
		t.Fatalf("notify: %+v", rd.Build)
	}
	req := *rd.Build
	c.Notify(nil) // while building
	b1 := child(genesis.Header(), 2)
	c.Built(req, b1, nil)
	rd = c.Ready()
	if len(rd.Commits) != 1 || rd.Commits[0].Block != b1 || rd.Build == nil || rd.Build.Parent.Hash() != b1.Hash() {
		t.Fatalf("after a full block: %+v", rd)
	}
	c.Built(req, child(genesis.Header(), 1), nil) // stale answer
	if c.HasReady() {
		t.Fatal("an answer to an old request was used")
	}
	c.Built(*rd.Build, nil, nil) // nothing waits
	if c.HasReady() {
		t.Fatalf("asked again after an empty answer: %+v", c.Ready())
	}
	c.Tick()
	if rd := c.Ready(); rd.Build == nil || rd.Build.Empty {
		t.Fatalf("tick without ForceEmpty: %+v", rd.Build)
	}
	f := NewCore(Config{ForceEmpty: true}, genesis.Header())
	f.Tick()
	if rd := f.Ready(); rd.Build == nil || !rd.Build.Empty {
		t.Fatalf("tick with ForceEmpty: %+v", rd.Build)
	}
	if got := c.Head(5); !got.Latest {
		t.Fatalf("head: %+v", got)
	}
	var _ consensus.Core = c
}
