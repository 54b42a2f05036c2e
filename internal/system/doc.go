// Package system is Charter's native system contracts: the registry of
// organizations, nodes, accounts and privacy groups (at 0x…0400; the
// groups in groups.go, what the chain does for private transactions in
// privacy.go: markers, purges, auditor grants, the disclosure log, and
// the node addresses that may send those calls) and governance, its
// proposals and votes (at 0x…0401), and the contract registry of named,
// versioned contracts and their ABI documents (at 0x…0402, contracts.go).
// Each keeps its records in the storage of its account in the world state, so that every node computes them,
// the state root covers them and a block's certificate commits to them.
//
// Who uses it, and how:
//
//   - Block execution opens a State on the block's StateDB (Open), runs
//     BeginBlock before the transactions (expiry and execution of
//     proposals due at the height), installs the precompiles in the EVM
//     (Install, SetCall for each message) and meters usage (AddUsage).
//   - The pool and block validation ask CheckTx (permit.go) whether an
//     account (or a node, privacy calls only) may send a transaction; the node asks AllowedNode whether a
//     peer may connect, and DueAt whether a block must be made for
//     governance alone.
//   - JSON-RPC, the CLI and Solidity contracts read it through views
//     (Read) and the Solidity ABI (ICharter.sol; abi_gen.go is generated
//     from it by gen.js).
//   - The genesis seeds it (BuildGenesis checks the governance section,
//     Seed writes it).
//
// Governance actions are typed: each is one struct (actions_members.go,
// actions_policy.go) whose tagged fields are its ABI arguments with their
// bounds, with Validate (the arguments alone), check (against the state)
// and apply (the effect). actions.go registers them once; the Solidity
// interface ICharterActions, the CLI's flags and the JSON of a proposal's
// arguments are derived from those types.
//
// Everything here runs inside consensus: it must be deterministic (no
// clock, no map iteration in an order that reaches the state, no
// goroutines), and its work per block is bounded by what is due at that
// block, not by how many proposals are open (gov.go). A call that is
// refused reverts with a reason (the revert type) and changes nothing; a
// record that does not decode is a broken state and panics.
package system
