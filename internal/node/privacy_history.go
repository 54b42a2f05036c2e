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
// Within the ledger's window of kept states it reads the block's state;
// beyond it, the ledger's history of the system accounts' storage
// (ledger.SystemStateAt), which a path-scheme node keeps from its genesis
// (or from the block its history started: an older data directory, a
// snapshot import) and which does not answer usage records — the applier
// reads none. Before that start it fails, naming the block.
func (a *applier) systemAt(block *types.Block) (*system.State, error) {
	st, err := a.p.n.ledger.SystemStateAt(block.NumberU64())
	if err != nil {
		return nil, fmt.Errorf("registry of block %d: %w", block.NumberU64(), err)
	}
	return system.Read(st), nil
}
