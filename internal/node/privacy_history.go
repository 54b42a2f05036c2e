package node

import (
	"fmt"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/system"
)

// systemAt is the registry as of block: the groups, their members and
// auditors, the organizations' keys and accounts the applier checks a
// block's private transactions against. It is the one place the applier
// reads the registry of a block that may be old (a replay of a group
// that waited for payloads, halted, or was joined late starts at its
// block, however far behind the head).
//
// For now it reads the block's whole public state, which a path-scheme
// ledger keeps for its last --state.history blocks only: past them it
// fails, naming the block. A registry kept as a history of the system
// accounts' storage (ledger.SystemStateAt) answers for any block; this
// function is where it goes.
func (a *applier) systemAt(block *types.Block) (*system.State, error) {
	st, err := a.p.n.ledger.StateAt(block.Root())
	if err != nil {
		return nil, fmt.Errorf("state of block %d: %w", block.NumberU64(), err)
	}
	return system.Read(st), nil
}
