// Package bft is Charter's Byzantine-fault-tolerant consensus engine:
// Tendermint's algorithm (propose, prevote, precommit, with locks and
// valid values) for 3f+1 validators of equal weight, instant finality, a
// commit certificate (2f+1 precommit signatures) as the seal of every
// block, round changes on a silent or faulty proposer, and validator set
// changes at heights governance decides (see docs/design/bft.md).
//
// Core is the engine, a consensus.Core run by the consensus Driver like
// every engine (New, FromSpec): it signs with the node key and keeps what
// it signed in its SavedState (the engine's state file, saved before the
// messages that carry the signatures leave), so that a restarted
// validator re-sends the very messages it signed and never equivocates.
// A node without a key is an observer: it follows decisions and
// certificates and never signs. Evidence records equivocations seen.
package bft
