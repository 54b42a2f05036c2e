package bft

// RoundBuckets is the number of buckets of Stats.CommitRounds: heights
// decided in round 0, 1, ..., RoundBuckets-2, and RoundBuckets-1 or later.
const RoundBuckets = 8

// Stats are the consensus counters of one core, plain values so that the
// node can export them however it exports metrics (the observability work
// maps them to Prometheus). All counters only grow, except Height, Round and
// LastCommitRound which are gauges.
type Stats struct {
	Height          uint64 // height in progress
	Round           int64  // round in progress
	LastCommitRound int64  // round in which the last height was decided

	Decided      uint64               // heights decided by this core's own vote counting
	Synced       uint64               // heights taken from certificates during catch-up
	CommitRounds [RoundBuckets]uint64 // decided heights by the round of their decision

	Rounds       uint64    // rounds started, round 0 included
	RoundChanges uint64    // rounds started after round 0 (timeouts or round skips)
	RoundSkips   uint64    // rounds entered because a weak quorum was ahead
	Timeouts     [3]uint64 // propose, prevote, precommit timeouts that fired
	ProposeWaits uint64    // propose timeouts put off for a proposal being verified

	MsgsIn   [numMsgTypes]uint64 // received messages, by MsgType
	BytesIn  [numMsgTypes]uint64
	MsgsOut  [numMsgTypes]uint64 // messages handed out in Ready (a broadcast counts once)
	BytesOut [numMsgTypes]uint64

	Dropped       uint64 // messages dropped for any reason (see Step's error)
	Duplicates    uint64 // of which exact duplicates
	BadSignatures uint64 // of which bad signatures or non-validator signers
	Stale         uint64 // of which for heights already decided
	Buffered      uint64 // future-height messages kept for later
	FutureDropped uint64 // future-height messages the buffer bound refused

	Equivocations uint64 // evidence records created
	SyncRequests  uint64 // catch-up requests sent
	SyncServed    uint64 // catch-up requests answered (Ready.Serve)
	BadSyncBlocks uint64 // catch-up blocks refused (parent, body or certificate)

	CompactRebuilt uint64 // compact proposals rebuilt from notified transactions alone
	TxFetches      uint64 // compact proposals that missed transactions, asked for
	FullFetches    uint64 // full proposals asked for after a fetch timed out
}
