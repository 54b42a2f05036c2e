package system

// Bounds of one block, chain parameters (see Params): its encoded size,
// and the governance work its transactions may carry. Both are rules of
// block validity: the builder stops taking what would exceed them (a
// transaction that does not fit waits in the pool for a later block), and
// a block that exceeds them is invalid, whoever built it.
const (
	// DefaultMaxBlockBytes is maxBlockBytes while unset: 1 MiB, below
	// consensus.MaxBlockBytes (the top of its range, which every engine's
	// messages carry) and well inside what 4 validators on 2 shared cores
	// execute, send and commit within a bft round (about 9,000 transfers,
	// or 8 transactions of 120 KB: 22 ms executed, 27 ms committed per
	// block under the adversarial test's 120 KB flood, where 4 MiB blocks
	// overran the round and the chain halted).
	DefaultMaxBlockBytes = 1 << 20
	// MinMaxBlockBytes is the lowest maxBlockBytes: room for a
	// transaction of the default maxTxBytes (128 KiB) and more.
	MinMaxBlockBytes = 256 << 10
	// BlockFramingBytes is the room in maxBlockBytes the builder keeps for
	// the header and the body's list framing (an empty block of every
	// fork's fields is about 600 bytes); a transaction larger than
	// maxBlockBytes less this fits no block.
	BlockFramingBytes = 1 << 10

	// DefaultMaxBlockGovBytes and DefaultMaxBlockGovTxs are the governance
	// budget of a block while unset; see docs/design/governance.md,
	// "Limits", for how they were chosen.
	DefaultMaxBlockGovBytes = 32 << 10
	DefaultMaxBlockGovTxs   = 64
)

// BlockLimits are the bounds of one block in force.
type BlockLimits struct {
	// Bytes bounds the block's encoded size (types.Block.Size).
	Bytes uint64
	// GovBytes bounds the system-contract storage its transactions write,
	// 32 bytes per storage slot changed, counted as they run. The first
	// transaction of a block that writes any is taken whatever it writes,
	// so that no governance transaction waits for ever.
	GovBytes uint64
	// GovTxs bounds its transactions that call a system contract (the
	// only ones that can write its storage: a write runs only when the
	// transaction itself calls it).
	GovTxs uint64
}

// BlockLimits returns the bounds of a block in force in this state.
func (s *State) BlockLimits() BlockLimits {
	v := func(name string) uint64 { x, _ := s.ParamValue(name); return x }
	return BlockLimits{Bytes: v(ParamMaxBlockBytes), GovBytes: v(ParamMaxBlockGovBytes), GovTxs: v(ParamMaxBlockGovTxs)}
}
