package chaindata

import "errors"

// SystemSource is optional on a Source: what a final block changed in the
// system state that its logs do not tell, or not fully. The usage metered
// per organization is in no log at all, and governance decides some
// proposals at the start of a block, outside any transaction (expiry,
// execution, failure, a recount after the electorate changed), where no
// log is emitted. A reader finds it with a type assertion on its Source;
// without it, what only the state holds stays unknown to it.
type SystemSource interface {
	// BlockSystem is what block number changed in the system state. It
	// returns ErrNoSystemState when the source no longer holds the state
	// of that block or of its parent.
	BlockSystem(number uint64) (BlockSystem, error)
}

// ErrNoSystemState says the source holds no state for a block.
var ErrNoSystemState = errors.New("chaindata: the state of the block is not held")

// BlockSystem is what one final block changed in the system state.
type BlockSystem struct {
	// Usage is what each organization's transactions used in the block, as
	// the system state meters it (system.State.AddUsage): transactions,
	// gas used, and bytes of state written by those that succeeded. One
	// entry per organization that sent a transaction; Org "" gathers the
	// accounts of no organization. Empty for a block without transactions.
	Usage []OrgUsage
	// Proposals are the governance proposals the block touched (every one
	// its part of the governance audit trail names: proposed, voted,
	// passed, rejected, cancelled, expired, executed, failed), as they
	// stand at the block's end, in id order.
	Proposals []ProposalState
}

// OrgUsage is what one organization used in one block.
type OrgUsage struct {
	Org        string
	Day        uint64 // UTC day of the block: its time / 86400
	Txs        uint64
	Gas        uint64
	StateBytes uint64
}

// ProposalState is where a proposal stands at the end of a block.
type ProposalState struct {
	ID          uint64
	Status      string // open, passed, executed, rejected, expired, cancelled, failed
	Decided     uint64 // height it passed, was rejected, cancelled or expired; 0 while open
	ActivatesAt uint64 // height at whose start a passed proposal executes; 0 if it has not passed
	Result      string // why it failed, when it did
}
