package poa

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

func fuzzSeeds() [][]byte {
	g := testGenesis()
	app := newChain(ids(3)[1])
	app.Add(simnet.Tx(1))
	app.Add(simnet.Tx(2))
	blk, _ := app.BuildBlock(g.Header(), 1, ids(3)[1])
	sb, _ := Seal(blk, Ballot{1, 0}, testKey(1))
	return [][]byte{
		encodeBlock(sb),
		encode(kindVote, voteMsg{Height: 2, Round: 1, Tip: tipMsg{Height: 1, BallotH: 1, Hash: blk.Hash()}}),
		encode(kindTip, tipMsg{Height: 1, BallotH: 2, BallotR: 1, Hash: blk.Hash()}),
		encode(kindFetch, fetchMsg{From: 1, Tip: blk.Hash()}),
		encode(kindBlocks, blocksMsg{Final: toRLP([]SealedBlock{sb}), Chain: toRLP([]SealedBlock{sb})}),
		{kindBlock},
		{kindVote, 0xc0},
		{0xff, 0x01},
	}
}

// FuzzDecode: no input makes the decoder panic, and what it accepts
// re-encodes to something it accepts again.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decode(data, DefaultMaxMessageBytes)
		if err != nil {
			return
		}
		var again []byte
		switch {
		case m.block != nil:
			again = encodeBlock(*m.block)
		case m.vote != nil:
			again = encode(kindVote, *m.vote)
		case m.tip != nil:
			again = encode(kindTip, *m.tip)
		case m.fetch != nil:
			again = encode(kindFetch, *m.fetch)
		case m.blocks != nil:
			again = encode(kindBlocks, *m.blocks)
		}
		if _, err := decode(again, DefaultMaxMessageBytes); err != nil {
			t.Fatalf("re-encoded message rejected: %v", err)
		}
	})
}

// FuzzStep: a core survives any message from any peer, authority or not.
func FuzzStep(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s, uint8(1))
	}
	g := testGenesis()
	f.Fuzz(func(t *testing.T, data []byte, from uint8) {
		c, err := NewCore(testConfig(0, 3), g, nil, PersistentState{})
		if err != nil {
			t.Fatal(err)
		}
		sender := common.Address{from}
		if from%2 == 1 {
			sender = ids(3)[from%3]
		}
		c.Step(sender, data)
		c.Tick()
		for c.HasReady() {
			rd := c.Ready()
			c.Advance()
			if rd.Build != nil {
				c.Built(*rd.Build, nil, errFuzzBuild)
			}
			for _, b := range rd.Verify {
				c.Verified(b.Hash(), nil)
			}
			for _, req := range rd.Serve {
				c.Served(req, nil)
			}
		}
	})
}

// FuzzDecodeState: a damaged state file is an error, never a panic.
func FuzzDecodeState(f *testing.F) {
	blk := types.NewBlockWithHeader(&types.Header{Number: big.NewInt(3), Difficulty: new(big.Int)})
	sb, _ := Seal(blk, Ballot{3, 1}, testKey(0))
	f.Add(EncodeState(PersistentState{Promise: Ballot{4, 2}, Chain: []SealedBlock{sb}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = DecodeState(data)
	})
}

type fuzzErr string

func (e fuzzErr) Error() string { return string(e) }

const errFuzzBuild = fuzzErr("fuzz: no build")
