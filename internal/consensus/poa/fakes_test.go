package poa

import (
	"crypto/ecdsa"
	"encoding/binary"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

// The poa tests run on the simulations' one fake chain (simnet.Chain).

func testGenesis() *types.Block { return simnet.Genesis }

func newChain(self consensus.NodeID) *simnet.Chain { return simnet.NewChain(self, self[:4], 4) }

func blockAt(c *simnet.Chain, h uint64) *types.Block {
	b, _ := c.BlockByNumber(h)
	return b
}

func sealAt(c *simnet.Chain, h uint64) []byte {
	_, s := c.BlockByNumber(h)
	return s
}

func headBlock(c *simnet.Chain) *types.Block { return blockAt(c, c.Height()) }

// testKey derives a deterministic key from an index.
func testKey(i int) *ecdsa.PrivateKey {
	var seed [32]byte
	binary.BigEndian.PutUint64(seed[24:], uint64(i)+1)
	seed[0] = 0x42
	k, err := crypto.ToECDSA(seed[:])
	if err != nil {
		panic(err)
	}
	return k
}

// sigMemo shares signature recovery between the simulated nodes of one
// run: recovery is a pure function, and it dominates the run time.
type sigMemo map[string]common.Address

func (m sigMemo) recover(hash common.Hash, sig []byte) (common.Address, error) {
	k := string(hash[:]) + string(sig)
	if a, ok := m[k]; ok {
		if a == (common.Address{}) {
			return a, ErrBadSeal
		}
		return a, nil
	}
	a, err := recoverSigner(hash, sig)
	if err != nil {
		m[k] = common.Address{}
		return a, err
	}
	m[k] = a
	return a, nil
}
