package bft

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/consensus"
)

// ErrBadValidators is wrapped by every error about a validator list.
var ErrBadValidators = errors.New("bft: invalid validator set")

// MaxValidators bounds the size of a validator set. Certificates, vote sets
// and per-validator maps are all bounded by it.
const MaxValidators = 1024

// ValidatorSet is an immutable set of validators with equal voting power.
// The ids are kept sorted, so the proposer order does not depend on the
// order in which the chain spec or governance listed them.
type ValidatorSet struct {
	ids   []consensus.NodeID
	index map[consensus.NodeID]int
}

// NewValidatorSet checks and sorts ids. It fails on an empty list, a zero
// address, a duplicate, or more than MaxValidators ids.
func NewValidatorSet(ids []consensus.NodeID) (*ValidatorSet, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadValidators)
	}
	if len(ids) > MaxValidators {
		return nil, fmt.Errorf("%w: %d validators, at most %d", ErrBadValidators, len(ids), MaxValidators)
	}
	s := &ValidatorSet{
		ids:   append([]consensus.NodeID(nil), ids...),
		index: make(map[consensus.NodeID]int, len(ids)),
	}
	sort.Slice(s.ids, func(i, j int) bool { return bytes.Compare(s.ids[i][:], s.ids[j][:]) < 0 })
	for i, id := range s.ids {
		if id == (common.Address{}) {
			return nil, fmt.Errorf("%w: zero address", ErrBadValidators)
		}
		if _, dup := s.index[id]; dup {
			return nil, fmt.Errorf("%w: %s listed twice", ErrBadValidators, id)
		}
		s.index[id] = i
	}
	return s, nil
}

// Size is the number of validators n.
func (s *ValidatorSet) Size() int { return len(s.ids) }

// IDs returns the validators in proposer order. The caller owns the slice.
func (s *ValidatorSet) IDs() []consensus.NodeID { return append([]consensus.NodeID(nil), s.ids...) }

// Contains reports whether id is a validator.
func (s *ValidatorSet) Contains(id consensus.NodeID) bool {
	_, ok := s.index[id]
	return ok
}

// Faulty is f, the number of Byzantine validators tolerated: the largest f
// with n >= 3f+1.
func (s *ValidatorSet) Faulty() int { return (len(s.ids) - 1) / 3 }

// Quorum is the number of votes that make a decision: more than two thirds
// of n (2f+1 when n = 3f+1). Any two quorums share more than n/3
// validators, so at least one correct validator.
func (s *ValidatorSet) Quorum() int { return 2*len(s.ids)/3 + 1 }

// Weak is more than a third of n (f+1 when n = 3f+1): any Weak validators
// include at least one correct validator.
func (s *ValidatorSet) Weak() int { return len(s.ids)/3 + 1 }

// Proposer is the validator that proposes at (height, round). The role
// rotates with both, so a silent proposer costs one round, and the next
// height starts with the next validator.
func (s *ValidatorSet) Proposer(height uint64, round int64) consensus.NodeID {
	n := uint64(len(s.ids))
	return s.ids[(height%n+uint64(round)%n)%n]
}

// Equal reports whether two sets hold the same validators.
func (s *ValidatorSet) Equal(o *ValidatorSet) bool {
	if len(s.ids) != len(o.ids) {
		return false
	}
	for i := range s.ids {
		if s.ids[i] != o.ids[i] {
			return false
		}
	}
	return true
}

// schedule maps heights to validator sets: entry i is in force from
// entries[i].from up to the next entry. Entries are sorted by from, and the
// first one starts at or below every height the core asks about.
type schedule struct {
	entries []scheduleEntry
}

type scheduleEntry struct {
	from uint64
	set  *ValidatorSet
}

// maxScheduleEntries bounds pending set changes.
const maxScheduleEntries = 64

func (s *schedule) at(height uint64) *ValidatorSet {
	for i := len(s.entries) - 1; i >= 0; i-- {
		if s.entries[i].from <= height {
			return s.entries[i].set
		}
	}
	return s.entries[0].set
}

// set makes vs the set from height on, dropping entries that started at or
// after from (a later decision replaces an earlier pending one).
func (s *schedule) set(from uint64, vs *ValidatorSet) error {
	keep := s.entries[:0:0]
	for _, e := range s.entries {
		if e.from < from {
			keep = append(keep, e)
		}
	}
	if len(keep) >= maxScheduleEntries {
		return fmt.Errorf("%w: more than %d pending changes", ErrBadValidators, maxScheduleEntries)
	}
	s.entries = append(keep, scheduleEntry{from: from, set: vs})
	return nil
}

// prune forgets entries that no height >= height can use.
func (s *schedule) prune(height uint64) {
	i := 0
	for i+1 < len(s.entries) && s.entries[i+1].from <= height {
		i++
	}
	s.entries = s.entries[i:]
}
