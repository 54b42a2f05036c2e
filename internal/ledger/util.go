package ledger

import (
	"math/big"

	"github.com/holiman/uint256"
)

func uint256FromBig(b *big.Int) *uint256.Int {
	u, _ := uint256.FromBig(b)
	return u
}
