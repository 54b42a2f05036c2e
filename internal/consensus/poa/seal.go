package poa

import (
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/consensus"
)

// Ballot orders sealing attempts: round r at height h is sealed by
// validators[(h+r) % n]. Round 0 is the in-turn authority; rounds 1, 2, ...
// are the next authorities in order, each after a longer timeout.
type Ballot struct {
	Height, Round uint64
}

// Less orders ballots by height, then round.
func (b Ballot) Less(o Ballot) bool {
	if b.Height != o.Height {
		return b.Height < o.Height
	}
	return b.Round < o.Round
}

func (b Ballot) String() string { return fmt.Sprintf("%d/%d", b.Height, b.Round) }

func maxBallot(a, b Ballot) Ballot {
	if a.Less(b) {
		return b
	}
	return a
}

// maxRound bounds rounds so that ballots stay small; a validator reaches it
// only after thousands of silent rounds at one height.
const maxRound = 1 << 32

// SealedBlock is a block with its sealer's signature and the ballot it was
// sealed at. Normally the ballot's height is the block's number; after a
// disturbance a block may be sealed at a ballot of a greater height (never
// smaller), see docs/design/poa.md.
type SealedBlock struct {
	Block  *types.Block
	Ballot Ballot
	Sig    []byte // 65-byte secp256k1 signature over SealHash(Block.Hash(), Ballot)
}

// sealLen is the length of the seal bytes: signature, ballot height, round.
const sealLen = crypto.SignatureLength + 16

// Seal is the byte form handed to Host.CommitBlock and returned by
// Host.BlockByNumber: the 65-byte signature, then the ballot's height and
// round as 8 big-endian bytes each.
func (s SealedBlock) Seal() []byte {
	out := make([]byte, sealLen)
	copy(out, s.Sig)
	binary.BigEndian.PutUint64(out[crypto.SignatureLength:], s.Ballot.Height)
	binary.BigEndian.PutUint64(out[crypto.SignatureLength+8:], s.Ballot.Round)
	return out
}

// ErrBadSeal reports seal bytes of the wrong shape.
var ErrBadSeal = errors.New("poa: malformed seal")

// ParseSeal splits seal bytes into ballot and signature.
func ParseSeal(seal []byte) (Ballot, []byte, error) {
	if len(seal) != sealLen {
		return Ballot{}, nil, fmt.Errorf("%w: %d bytes, want %d", ErrBadSeal, len(seal), sealLen)
	}
	b := Ballot{
		Height: binary.BigEndian.Uint64(seal[crypto.SignatureLength:]),
		Round:  binary.BigEndian.Uint64(seal[crypto.SignatureLength+8:]),
	}
	return b, common.CopyBytes(seal[:crypto.SignatureLength]), nil
}

// sealDomain separates poa seal digests from any other signed digest.
var sealDomain = []byte("charter/poa/seal/v1")

// SealHash is the digest a sealer signs: the header hash bound to the
// ballot, so that a relayed block cannot be replayed as a sealing at
// another ballot.
func SealHash(header common.Hash, b Ballot) common.Hash {
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], b.Height)
	binary.BigEndian.PutUint64(buf[8:], b.Round)
	return crypto.Keccak256Hash(sealDomain, header[:], buf[:])
}

// Seal signs block as sealed at ballot b with key.
func Seal(block *types.Block, b Ballot, key *ecdsa.PrivateKey) (SealedBlock, error) {
	h := SealHash(block.Hash(), b)
	sig, err := crypto.Sign(h[:], key)
	if err != nil {
		return SealedBlock{}, fmt.Errorf("sign seal: %w", err)
	}
	return SealedBlock{Block: block, Ballot: b, Sig: sig}, nil
}

// Signer recovers the address that sealed s.
func (s SealedBlock) Signer() (common.Address, error) {
	return recoverSigner(SealHash(s.Block.Hash(), s.Ballot), s.Sig)
}

func recoverSigner(hash common.Hash, sig []byte) (common.Address, error) {
	if len(sig) != crypto.SignatureLength {
		return common.Address{}, ErrBadSeal
	}
	pub, err := crypto.SigToPub(hash[:], sig)
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %v", ErrBadSeal, err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}

// epoch is one validator set and the height it starts at.
type epoch struct {
	from  uint64
	ids   []consensus.NodeID
	index map[consensus.NodeID]int
}

// schedule is the validator set as a function of height. Every node holds
// the same schedule: genesis validators plus the changes governance passed
// to SetValidators, in height order.
type schedule struct {
	epochs []epoch
}

func newEpoch(from uint64, ids []consensus.NodeID) epoch {
	e := epoch{from: from, ids: append([]consensus.NodeID(nil), ids...), index: make(map[consensus.NodeID]int, len(ids))}
	for i, id := range ids {
		e.index[id] = i
	}
	return e
}

func (s *schedule) at(h uint64) *epoch {
	i := sort.Search(len(s.epochs), func(i int) bool { return s.epochs[i].from > h })
	return &s.epochs[i-1]
}

// add schedules a set from height from on, replacing any later change.
func (s *schedule) add(from uint64, ids []consensus.NodeID) {
	i := sort.Search(len(s.epochs), func(i int) bool { return s.epochs[i].from >= from })
	s.epochs = append(s.epochs[:i], newEpoch(from, ids))
}

func (s *schedule) leader(b Ballot) consensus.NodeID {
	e := s.at(b.Height)
	return e.ids[(b.Height+b.Round)%uint64(len(e.ids))]
}

func (s *schedule) member(h uint64, id consensus.NodeID) bool {
	_, ok := s.at(h).index[id]
	return ok
}

func (s *schedule) size(h uint64) int { return len(s.at(h).ids) }

// nextChange is the first height after h with another set, 0 if none.
func (s *schedule) nextChange(h uint64) uint64 {
	i := sort.Search(len(s.epochs), func(i int) bool { return s.epochs[i].from > h })
	if i == len(s.epochs) {
		return 0
	}
	return s.epochs[i].from
}

// start is the first height of the set in force at h.
func (s *schedule) start(h uint64) uint64 { return s.at(h).from }

// changesAt reports whether the set at h differs from the set at h-1.
func (s *schedule) changesAt(h uint64) bool {
	if h == 0 {
		return false
	}
	return s.at(h) != s.at(h-1)
}
