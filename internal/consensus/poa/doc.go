// Package poa is Charter's proof-of-authority engine: round-robin sealing
// by a set of authorities (crash faults, not Byzantine ones), with
// N-confirmation finality. Height h is sealed in turn by the authority of
// ballot (h, 0); a silent one is replaced, after a timeout, by the next
// authority at ballot (h, 1), and so on. Sealing needs the votes of a
// majority, and a block is final once a majority named it (or a block on
// top of it) as its tip and FinalityDepth blocks are sealed on top, which
// keeps every authority on one chain (see docs/design/poa.md).
//
// Core is the engine, a consensus.Core run by the consensus Driver like
// every engine (New, FromSpec). Its PersistentState (the promise and the
// accepted chain above the final block) is saved, in the engine's state
// file, before the votes that make the promise leave.
package poa
