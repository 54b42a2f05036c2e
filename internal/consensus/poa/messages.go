package poa

import (
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
)

// Wire format: one kind byte, then the RLP of the message body.
const (
	kindBlock  byte = 1 // a sealed block, broadcast by its sealer
	kindVote   byte = 2 // a vote for a ballot, naming the voter's chain tip
	kindFetch  byte = 3 // a request for blocks (catch-up)
	kindBlocks byte = 4 // the answer to a fetch
	kindTip    byte = 5 // a validator's adopted tip, when it cannot vote
)

// ErrMessage reports an undecodable message.
var ErrMessage = errors.New("poa: bad message")

// sealedRLP is the wire form of a SealedBlock.
type sealedRLP struct {
	Block         *types.Block
	Height, Round uint64 // the ballot
	Sig           []byte
}

// voteMsg is a validator's vote for Ballot. It promises not to accept any
// block sealed at a lower ballot, and names the voter's chain tip (the
// block it accepted last): the sealer of Ballot extends the highest tip of
// a quorum of votes, and a quorum of votes naming one tip commits it.
// Votes are not signed: the transport authenticates the sender (mTLS), and
// votes are never relayed.
type voteMsg struct {
	Height, Round uint64 // the ballot
	Tip           tipMsg
}

func (v voteMsg) ballot() Ballot { return Ballot{v.Height, v.Round} }

// tipMsg announces the block a validator adopted, when its tip is at the
// lookahead limit and it cannot vote for the next height. It is commit
// evidence like the tip named in a vote, without a promise.
type tipMsg struct {
	Height           uint64 // block number
	BallotH, BallotR uint64 // the ballot it was sealed (and adopted) at
	Hash             common.Hash
}

func (t tipMsg) ballot() Ballot { return Ballot{t.BallotH, t.BallotR} }

func (t tipMsg) valid() bool {
	return t.BallotH >= t.Height && t.BallotR < maxRound
}

// fetchMsg asks a peer for blocks: its final blocks from height From on,
// and the chain up to Tip (or its own tip if Tip is zero or unknown).
type fetchMsg struct {
	From uint64
	Tip  common.Hash
}

// blocksMsg answers a fetch. Final are blocks final at the sender, in
// height order; Chain are blocks above the sender's final block, parents
// first. A receiver trusts Final as final only from an authority.
type blocksMsg struct {
	Final []sealedRLP
	Chain []sealedRLP
}

func encode(kind byte, body any) []byte {
	b, err := rlp.EncodeToBytes(body)
	if err != nil {
		// Every body is a fixed struct of encodable fields.
		panic(fmt.Sprintf("poa: encode message kind %d: %v", kind, err))
	}
	return append([]byte{kind}, b...)
}

func encodeBlock(s SealedBlock) []byte { return encode(kindBlock, toRLP1(s)) }

func toRLP1(s SealedBlock) sealedRLP {
	return sealedRLP{s.Block, s.Ballot.Height, s.Ballot.Round, s.Sig}
}

func toRLP(bs []SealedBlock) []sealedRLP {
	out := make([]sealedRLP, len(bs))
	for i, s := range bs {
		out[i] = toRLP1(s)
	}
	return out
}

func fromRLP(s sealedRLP) (SealedBlock, error) {
	if s.Block == nil || s.Block.Header() == nil {
		return SealedBlock{}, fmt.Errorf("%w: block missing", ErrMessage)
	}
	if len(s.Sig) != 65 {
		return SealedBlock{}, fmt.Errorf("%w: signature of %d bytes", ErrMessage, len(s.Sig))
	}
	if s.Round >= maxRound {
		return SealedBlock{}, fmt.Errorf("%w: round %d", ErrMessage, s.Round)
	}
	if s.Block.Number() == nil || !s.Block.Number().IsUint64() || s.Block.NumberU64() == 0 {
		return SealedBlock{}, fmt.Errorf("%w: block number", ErrMessage)
	}
	if s.Height < s.Block.NumberU64() {
		return SealedBlock{}, fmt.Errorf("%w: ballot height %d below block %d", ErrMessage, s.Height, s.Block.NumberU64())
	}
	return SealedBlock{Block: s.Block, Ballot: Ballot{s.Height, s.Round}, Sig: s.Sig}, nil
}

// message is a decoded message: exactly one field is set.
type message struct {
	block  *SealedBlock
	vote   *voteMsg
	tip    *tipMsg
	fetch  *fetchMsg
	blocks *blocksMsg
}

// decode parses a message. It checks shape only (sizes, ranges), never
// state; it never panics on any input.
func decode(payload []byte, maxBytes int) (message, error) {
	if len(payload) == 0 {
		return message{}, fmt.Errorf("%w: empty", ErrMessage)
	}
	if len(payload) > maxBytes {
		return message{}, fmt.Errorf("%w: %d bytes over limit %d", ErrMessage, len(payload), maxBytes)
	}
	body := payload[1:]
	switch payload[0] {
	case kindBlock:
		var s sealedRLP
		if err := rlp.DecodeBytes(body, &s); err != nil {
			return message{}, fmt.Errorf("%w: block: %v", ErrMessage, err)
		}
		sb, err := fromRLP(s)
		if err != nil {
			return message{}, err
		}
		return message{block: &sb}, nil
	case kindVote:
		var v voteMsg
		if err := rlp.DecodeBytes(body, &v); err != nil {
			return message{}, fmt.Errorf("%w: vote: %v", ErrMessage, err)
		}
		if v.Height == 0 || v.Round >= maxRound || !v.Tip.valid() || !v.Tip.ballot().Less(v.ballot()) {
			return message{}, fmt.Errorf("%w: vote %d/%d tip %d", ErrMessage, v.Height, v.Round, v.Tip.Height)
		}
		return message{vote: &v}, nil
	case kindTip:
		var m tipMsg
		if err := rlp.DecodeBytes(body, &m); err != nil {
			return message{}, fmt.Errorf("%w: tip: %v", ErrMessage, err)
		}
		if m.Height == 0 || !m.valid() {
			return message{}, fmt.Errorf("%w: tip %d", ErrMessage, m.Height)
		}
		return message{tip: &m}, nil
	case kindFetch:
		var f fetchMsg
		if err := rlp.DecodeBytes(body, &f); err != nil {
			return message{}, fmt.Errorf("%w: fetch: %v", ErrMessage, err)
		}
		return message{fetch: &f}, nil
	case kindBlocks:
		var b blocksMsg
		if err := rlp.DecodeBytes(body, &b); err != nil {
			return message{}, fmt.Errorf("%w: blocks: %v", ErrMessage, err)
		}
		for _, s := range append(append([]sealedRLP(nil), b.Final...), b.Chain...) {
			if _, err := fromRLP(s); err != nil {
				return message{}, err
			}
		}
		return message{blocks: &b}, nil
	default:
		return message{}, fmt.Errorf("%w: kind %d", ErrMessage, payload[0])
	}
}
