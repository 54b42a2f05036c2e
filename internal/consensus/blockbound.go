package consensus

import "fmt"

// MaxBlockBytes is the largest block the chain rules allow, in encoded
// bytes (header and body, as types.Block.Size counts them): the top of the
// range of the chain parameter maxBlockBytes (internal/system), which
// governance may set anywhere below it. A block larger than the parameter
// in force is invalid, and the builder never makes one.
//
// Every engine must carry a block of this size, with its own framing, seal
// or certificate, in each message that holds one (a bft proposal or
// catch-up block, a poa block or catch-up answer, a raft entry or block
// transfer), and its message bound must not exceed the p2p frame bound
// (10 MiB by default). Each engine's config validation calls
// CheckMessageBound, so a node whose bounds could not carry the largest
// block refuses to start rather than stall the chain the day blocks grow.
const MaxBlockBytes = 6 << 20

// CheckMessageBound returns an error, in one line naming field, when an
// engine's message bound of messageBytes cannot carry a block of
// MaxBlockBytes plus overhead bytes of the engine's own around it.
func CheckMessageBound(field string, messageBytes, overhead int) error {
	if need := MaxBlockBytes + overhead; messageBytes < need {
		return fmt.Errorf("%s %d cannot carry the largest block the chain rules allow (%d bytes, the top of maxBlockBytes) and %d bytes of framing and seal: it must be at least %d",
			field, messageBytes, MaxBlockBytes, overhead, need)
	}
	return nil
}
