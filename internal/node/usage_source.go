package node

import (
	"errors"
	"fmt"
	"sort"

	"github.com/charter-ledger/charter/internal/chaindata"
	"github.com/charter-ledger/charter/internal/ledger"
	"github.com/charter-ledger/charter/internal/system"
)

// systemSource is the ledger as the SQL index reads it: its final blocks,
// and what each block changed in the system state (chaindata.SystemSource),
// read by comparing the state after the block with the state after its
// parent. The ledger keeps the state of every block; a block whose state
// (or its parent's) it lacks answers chaindata.ErrNoSystemState.
type systemSource struct {
	*ledger.Ledger
}

// maxTrailPerBlock bounds what one block's governance audit trail may
// hand over: a block holds at most maxBlockGovTxs governance transactions
// and the proposals due at its height, far fewer than this.
const maxTrailPerBlock = 1 << 16

// BlockSystem implements chaindata.SystemSource.
func (s systemSource) BlockSystem(number uint64) (chaindata.BlockSystem, error) {
	var out chaindata.BlockSystem
	if number == 0 {
		return out, nil // the genesis runs no transaction and decides nothing
	}
	b := s.BlockByNumber(number)
	parent := s.HeaderByNumber(number - 1)
	if b == nil || parent == nil {
		return out, fmt.Errorf("block %d is not in the ledger", number)
	}
	// No write of the head's state to disk (which would make these
	// states read zeros) while they are read.
	defer s.HoldStates()()
	after, err := s.StateAt(b.Root())
	if err != nil {
		return out, errors.Join(chaindata.ErrNoSystemState, err)
	}
	before, err := s.StateAt(parent.Root)
	if err != nil {
		return out, errors.Join(chaindata.ErrNoSystemState, err)
	}
	cur, prev := system.Read(after), system.Read(before)

	// Usage: only transactions are metered, each under its sender's
	// organization, into the day of the block's time.
	if len(b.Transactions()) > 0 {
		day := b.Time() / 86400
		orgs := append([]string{""}, cur.OrgNames()...)
		sort.Strings(orgs)
		for _, o := range orgs {
			c, p := cur.Usage(o, day), prev.Usage(o, day)
			if c == p {
				continue
			}
			if c.Txs < p.Txs || c.Gas < p.Gas || c.StateBytes < p.StateBytes {
				return out, fmt.Errorf("usage of %q on day %d went down in block %d", o, day, number)
			}
			out.Usage = append(out.Usage, chaindata.OrgUsage{Org: o, Day: day, Txs: c.Txs - p.Txs, Gas: c.Gas - p.Gas, StateBytes: c.StateBytes - p.StateBytes})
		}
	}

	// Governance: the proposals the block's part of the audit trail names,
	// as they stand after it.
	from, to := prev.EventCount(), cur.EventCount()
	if to < from || to-from > maxTrailPerBlock {
		return out, fmt.Errorf("governance audit trail of block %d: %d to %d entries", number, from, to)
	}
	seen := map[uint64]bool{}
	var ids []uint64
	for _, e := range cur.Events(from, to-from) {
		if e.Proposal != 0 && !seen[e.Proposal] {
			seen[e.Proposal] = true
			ids = append(ids, e.Proposal)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		p, ok := cur.Proposal(id)
		if !ok {
			continue
		}
		out.Proposals = append(out.Proposals, chaindata.ProposalState{ID: id, Status: p.Status.String(), Decided: p.Decided,
			ActivatesAt: p.ActivatesAt, Result: p.Result})
	}
	// go-ethereum's StateDB answers a failed read with a zero value.
	if err := errors.Join(after.Error(), before.Error()); err != nil {
		return chaindata.BlockSystem{}, fmt.Errorf("system state of block %d: %w", number, err)
	}
	return out, nil
}
