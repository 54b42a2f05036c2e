package bft

import (
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/charter-ledger/charter/internal/consensus"
)

// ErrBadCertificate is wrapped by every reason VerifyCertificate rejects a
// seal.
var ErrBadCertificate = errors.New("bft: invalid commit certificate")

// Certificate is a commit certificate: the precommit signatures of a
// quorum of the validators of a height, all for one block hash in one
// round. Encoded with EncodeCertificate, it is the seal stored with the
// block (Host.CommitBlock), and any node that knows the validator set of
// the height can check it (VerifyCertificate).
type Certificate struct {
	Round int64
	Sigs  [][]byte // 65-byte precommit signatures, distinct signers
}

type certificateWire struct {
	Version uint64
	Round   uint64
	Sigs    [][]byte
}

const certificateVersion = 1

// EncodeCertificate returns the seal bytes of c.
func EncodeCertificate(c Certificate) []byte {
	b, err := rlp.EncodeToBytes(&certificateWire{Version: certificateVersion, Round: uint64(c.Round), Sigs: c.Sigs})
	if err != nil {
		panic(fmt.Sprintf("bft: encode certificate: %v", err))
	}
	return b
}

// DecodeCertificate parses seal bytes. It checks only the form; use
// VerifyCertificate to check the signatures.
func DecodeCertificate(seal []byte) (Certificate, error) {
	var w certificateWire
	if err := rlp.DecodeBytes(seal, &w); err != nil {
		return Certificate{}, fmt.Errorf("%w: %v", ErrBadCertificate, err)
	}
	if w.Version != certificateVersion {
		return Certificate{}, fmt.Errorf("%w: version %d", ErrBadCertificate, w.Version)
	}
	if w.Round > MaxRound {
		return Certificate{}, fmt.Errorf("%w: round %d", ErrBadCertificate, w.Round)
	}
	if len(w.Sigs) > MaxValidators {
		return Certificate{}, fmt.Errorf("%w: %d signatures", ErrBadCertificate, len(w.Sigs))
	}
	return Certificate{Round: int64(w.Round), Sigs: w.Sigs}, nil
}

// VerifyCertificate checks that seal is a commit certificate for the block
// hash at height under chainID, signed by a quorum of validators: every
// signature is a precommit of (height, round, hash), from a distinct member
// of validators. It returns the signers. It needs nothing but the validator
// set of the height, so observers and catching-up nodes use it as they are.
func VerifyCertificate(chainID uint64, validators []consensus.NodeID, height uint64, hash common.Hash, seal []byte) ([]consensus.NodeID, error) {
	vs, err := NewValidatorSet(validators)
	if err != nil {
		return nil, err
	}
	return verifyCertificate(chainID, vs, vs.Quorum(), RecoverSigner, height, hash, seal)
}

func verifyCertificate(chainID uint64, vs *ValidatorSet, quorum int, recover Recoverer, height uint64, hash common.Hash, seal []byte) ([]consensus.NodeID, error) {
	if hash == (common.Hash{}) {
		return nil, fmt.Errorf("%w: zero block hash", ErrBadCertificate)
	}
	c, err := DecodeCertificate(seal)
	if err != nil {
		return nil, err
	}
	if len(c.Sigs) > vs.Size() {
		return nil, fmt.Errorf("%w: %d signatures for %d validators", ErrBadCertificate, len(c.Sigs), vs.Size())
	}
	digest := Digest(chainID, MsgPrecommit, height, c.Round, hash, -1)
	signers := make([]consensus.NodeID, 0, len(c.Sigs))
	seen := make(map[consensus.NodeID]struct{}, len(c.Sigs))
	for i, sig := range c.Sigs {
		id, err := recover(digest, sig)
		if err != nil {
			return nil, fmt.Errorf("%w: signature %d: %v", ErrBadCertificate, i, err)
		}
		if !vs.Contains(id) {
			return nil, fmt.Errorf("%w: signature %d by %s, not a validator", ErrBadCertificate, i, id)
		}
		if _, dup := seen[id]; dup {
			return nil, fmt.Errorf("%w: %s signed twice", ErrBadCertificate, id)
		}
		seen[id] = struct{}{}
		signers = append(signers, id)
	}
	if len(signers) < quorum {
		return nil, fmt.Errorf("%w: %d signatures, quorum is %d", ErrBadCertificate, len(signers), quorum)
	}
	return signers, nil
}
