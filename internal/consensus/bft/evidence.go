package bft

import (
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/consensus"
)

// Signed is the signed part of one proposal or vote: enough to recompute
// its digest and check its signature, without the block itself.
type Signed struct {
	Type       MsgType
	Height     uint64
	Round      int64
	Hash       common.Hash // block hash; zero for a nil vote
	ValidRound int64       // proposals only; -1 otherwise
	Sig        []byte
}

// Digest is what the signature covers.
func (s Signed) Digest(chainID uint64) common.Hash {
	return Digest(chainID, s.Type, s.Height, s.Round, s.Hash, s.ValidRound)
}

// Evidence proves that Validator equivocated: it signed two different
// messages of one type for one height and round. Anyone can check it with
// Verify; the node serves it over RPC and governance may act on it.
type Evidence struct {
	Validator     consensus.NodeID
	First, Second Signed
}

// ErrBadEvidence is wrapped by every reason Verify rejects evidence.
var ErrBadEvidence = errors.New("bft: invalid evidence")

// Verify checks that both messages are signed by Validator, for the same
// type, height and round, and differ.
func (e Evidence) Verify(chainID uint64) error {
	a, b := e.First, e.Second
	if a.Type != b.Type || a.Height != b.Height || a.Round != b.Round {
		return fmt.Errorf("%w: messages for different slots", ErrBadEvidence)
	}
	if a.Type != MsgProposal && a.Type != MsgPrevote && a.Type != MsgPrecommit {
		return fmt.Errorf("%w: type %s", ErrBadEvidence, a.Type)
	}
	da, db := a.Digest(chainID), b.Digest(chainID)
	if da == db {
		return fmt.Errorf("%w: identical messages", ErrBadEvidence)
	}
	for i, s := range []Signed{a, b} {
		id, err := RecoverSigner(s.Digest(chainID), s.Sig)
		if err != nil {
			return fmt.Errorf("%w: message %d: %v", ErrBadEvidence, i, err)
		}
		if id != e.Validator {
			return fmt.Errorf("%w: message %d signed by %s", ErrBadEvidence, i, id)
		}
	}
	return nil
}

func (e Evidence) String() string {
	return fmt.Sprintf("equivocation by %s: %s at height %d round %d: %x vs %x",
		e.Validator, e.First.Type, e.First.Height, e.First.Round, e.First.Hash[:4], e.Second.Hash[:4])
}

func signedOf(m *message) Signed {
	vr := int64(-1)
	if m.typ == MsgProposal {
		vr = m.validRound
	}
	return Signed{Type: m.typ, Height: m.height, Round: m.round, Hash: m.hash, ValidRound: vr, Sig: m.sig}
}
