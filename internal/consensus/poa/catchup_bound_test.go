package poa

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/charter-ledger/charter/internal/consensus"
)

// An answer to a catch-up request holds the final blocks that fit one
// message, not a count of them: with blocks of 3 MB, a count of 32 would
// make a message of about 100 MB that the transport refuses, and the node
// asking would never catch up.
func TestFetchAnswerFitsOneMessage(t *testing.T) {
	const final = 12
	l := &blockList{blocks: []*types.Block{testGenesis()}, seals: [][]byte{nil}}
	data := make([]byte, 3<<20)
	for h := uint64(1); h <= final; h++ {
		parent := l.blocks[len(l.blocks)-1]
		tx := types.NewTx(&types.LegacyTx{Nonce: h, Data: data})
		blk := types.NewBlock(&types.Header{Number: new(big.Int).SetUint64(h), ParentHash: parent.Hash(), Difficulty: new(big.Int)},
			&types.Body{Transactions: []*types.Transaction{tx}}, nil, trie.NewStackTrie(nil))
		sb, err := Seal(blk, Ballot{Height: h}, testKey(int(h)%3))
		if err != nil {
			t.Fatal(err)
		}
		l.blocks, l.seals = append(l.blocks, blk), append(l.seals, sb.Seal())
	}
	cfg := testConfig(0, 3)
	c, err := NewCore(cfg, l.blocks[final], l.seals[final], PersistentState{})
	if err != nil {
		t.Fatal(err)
	}
	c.Ready() // whatever the start asks for
	c.Advance()
	asker := ids(3)[1]
	c.Step(asker, encode(kindFetch, fetchMsg{From: 1}))
	rd := c.Ready()
	c.Advance()
	if len(rd.Serve) != 1 {
		t.Fatalf("%d serve requests for one fetch, want 1", len(rd.Serve))
	}
	c.Served(rd.Serve[0], consensus.ServeFrom(l, rd.Serve[0]))
	var answer []byte
	for _, m := range c.Ready().Messages {
		if m.To == asker && len(m.Payload) > 0 && m.Payload[0] == kindBlocks {
			answer = m.Payload
		}
	}
	if answer == nil {
		t.Fatal("no answer to the fetch")
	}
	max := cfg.EnsureDefaults().MaxMessageBytes
	m, err := decode(answer, max)
	if err != nil {
		t.Fatalf("answer of %d bytes, bound %d: %v", len(answer), max, err)
	}
	if n := len(m.blocks.Final); n == 0 || n >= final {
		t.Fatalf("answer holds %d of %d final blocks", n, final)
	}
	t.Logf("answer of %d bytes (bound %d) holds %d blocks of %d bytes", len(answer), max, len(m.blocks.Final), l.blocks[1].Size())
	if consensus.MaxBlockBytes+blockMessageOverhead > max {
		t.Fatalf("the default bound %d cannot carry the largest block", max)
	}
}

// blockList is a chain of committed blocks for the core to serve from.
type blockList struct {
	blocks []*types.Block
	seals  [][]byte
}

func (l *blockList) BlockByNumber(n uint64) (*types.Block, []byte) {
	if n >= uint64(len(l.blocks)) {
		return nil, nil
	}
	return l.blocks[n], l.seals[n]
}
