package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/chaindata"
	"github.com/charter-ledger/charter/internal/system"
)

// The system tables: governance's proposals and votes, decoded from the
// logs of the governance contract (system.GovernanceAddress, 0x…0401),
// each organization's usage per UTC day (usage.go), and the other events
// of the system contracts (systemevents.go).
//
//	governance_proposals  one row per proposal, from its ProposalCreated log
//	  id             the proposal's id (1, 2, ...)
//	  block_number, tx_hash, log_index   where it was proposed
//	  action         the action's number (system.Action)
//	  action_name    its name: AddOrganization, SetParameter, ...
//	  class          its class, whose rule decides it: membership, ...
//	  org, proposer  the proposing organization and admin account
//	  expires        the last height at which it may be voted
//	  memo
//	  status         open, passed, executed, rejected, expired, cancelled, failed
//	  decided_block  the height it passed, was rejected, cancelled or expired
//	  activates_at   the height at whose start a passed proposal executes
//	  result         why it failed, when it did
//
//	governance_votes  one row per organization's vote, from VoteCast logs
//	  proposal_id, org (the key), block_number, tx_hash, log_index,
//	  voter (the admin account), support, weight (the organization's
//	  weight when it voted)
//
// Logs tell proposed, voted, passed and rejected by a vote, and cancelled.
// Expiry needs no log: a proposal still open after its expires height is
// marked expired at expires+1, as the chain does. What happens at the start
// of a block, outside any transaction, emits no log: execution (executed
// or failed, with result) and a decision by the recount that follows a
// change of the electorate. Those come from a Source that is also a
// chaindata.SystemSource; without one, a passed proposal stays passed
// and one the recount decided shows as expired once its expires height is
// past. The same holds for blocks whose state the source no longer holds.
//
// Every row is written in the transaction of its block and the checkpoint.

func systemSchema(d dialect) []string {
	b := d.boolType()
	return []string{
		`CREATE TABLE IF NOT EXISTS governance_proposals (id BIGINT PRIMARY KEY, block_number BIGINT NOT NULL, tx_hash TEXT NOT NULL,
			log_index INTEGER NOT NULL, action INTEGER NOT NULL, action_name TEXT NOT NULL, class TEXT NOT NULL, org TEXT NOT NULL,
			proposer TEXT NOT NULL, expires BIGINT NOT NULL, memo TEXT NOT NULL, status TEXT NOT NULL, decided_block BIGINT,
			activates_at BIGINT, result TEXT)`,
		`CREATE INDEX IF NOT EXISTS governance_proposals_status ON governance_proposals (status, expires)`,
		`CREATE INDEX IF NOT EXISTS governance_proposals_org ON governance_proposals (org, block_number)`,
		`CREATE TABLE IF NOT EXISTS governance_votes (proposal_id BIGINT NOT NULL, org TEXT NOT NULL, block_number BIGINT NOT NULL,
			tx_hash TEXT NOT NULL, log_index INTEGER NOT NULL, voter TEXT NOT NULL, support ` + b + ` NOT NULL, weight BIGINT NOT NULL,
			PRIMARY KEY (proposal_id, org))`,
		`CREATE INDEX IF NOT EXISTS governance_votes_org ON governance_votes (org, block_number)`,
		usageDDL,
		// The first block each system table covers: 0, unless the
		// database was indexed before the table existed. Usage cannot be
		// rebuilt from the database: it starts after the checkpoint.
		// Governance and system_<event> are rebuilt from the indexed logs
		// (proposals executed before then show as passed).
		`CREATE TABLE IF NOT EXISTS table_coverage (table_name TEXT PRIMARY KEY, from_block BIGINT NOT NULL)`,
	}
}

var govEvents = struct {
	created, vote, passed, rejected, cancelled common.Hash
}{
	created:   system.Governance.Events["ProposalCreated"].ID,
	vote:      system.Governance.Events["VoteCast"].ID,
	passed:    system.Governance.Events["ProposalPassed"].ID,
	rejected:  system.Governance.Events["ProposalRejected"].ID,
	cancelled: system.Governance.Events["ProposalCancelled"].ID,
}

// initSystem creates the system tables, and on a database indexed before
// they existed, fills governance from the indexed logs and records where
// usage starts.
func (ix *Index) initSystem() error {
	ctx := context.Background()
	schema := systemSchema(ix.d)
	for _, t := range ix.systemEventTableList() {
		schema = append(schema, t.ddl()...)
	}
	for _, s := range schema {
		if _, err := ix.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("index: schema: %w", err)
		}
	}
	tx, err := ix.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM table_coverage`).Scan(&n); err != nil {
		return fmt.Errorf("index: read table coverage: %w", err)
	}
	if n > 0 {
		return nil
	}
	usageFrom := int64(0)
	if ix.has.Load() {
		last := ix.indexed.Load()
		usageFrom = int64(last) + 1
		if err := ix.backfillSystem(ctx, tx, last); err != nil {
			return err
		}
	}
	type coverage struct {
		name string
		from int64
	}
	covers := []coverage{{"governance_proposals", 0}, {"governance_votes", 0}, {"usage", usageFrom}}
	for _, t := range ix.systemEventTableList() {
		covers = append(covers, coverage{t.name, 0})
	}
	for _, c := range covers {
		if _, err := tx.ExecContext(ctx, ix.d.rebind(`INSERT INTO table_coverage (table_name, from_block) VALUES (?, ?) ON CONFLICT (table_name) DO NOTHING`), c.name, c.from); err != nil {
			return fmt.Errorf("index: record table coverage: %w", err)
		}
	}
	return tx.Commit()
}

// backfillSystem decodes the system contracts' logs already indexed, up
// to block last, page by page.
func (ix *Index) backfillSystem(ctx context.Context, tx *sql.Tx, last uint64) error {
	type sysLog struct {
		block, index uint64
		txHash       common.Hash
		addr         common.Address
		topics       []common.Hash
		data         []byte
	}
	const page = 5000
	lastB, lastI := int64(-1), int64(-1)
	tables := ix.systemEventTables()
	for {
		logs, err := func() ([]sysLog, error) {
			rows, err := tx.QueryContext(ctx, ix.d.rebind(`SELECT block_number, log_index, tx_hash, address, topic0, topic1, topic2, topic3, data FROM logs
				WHERE address IN (?, ?, ?) AND block_number <= ? AND (block_number > ? OR (block_number = ? AND log_index > ?))
				ORDER BY block_number, log_index LIMIT `+fmt.Sprint(page)),
				hexAddr(system.RegistryAddress), hexAddr(system.GovernanceAddress), hexAddr(system.ContractsAddress), int64(last), lastB, lastB, lastI)
			if err != nil {
				return nil, fmt.Errorf("index: read system logs: %w", err)
			}
			defer rows.Close()
			var out []sysLog
			for rows.Next() {
				var b, li int64
				var txh, addr, data string
				var t [4]*string
				if err := rows.Scan(&b, &li, &txh, &addr, &t[0], &t[1], &t[2], &t[3], &data); err != nil {
					return nil, err
				}
				l := sysLog{block: uint64(b), index: uint64(li), txHash: common.HexToHash(txh), addr: common.HexToAddress(addr), data: common.FromHex(data)}
				for _, s := range t {
					if s != nil {
						l.topics = append(l.topics, common.HexToHash(*s))
					}
				}
				out = append(out, l)
				lastB, lastI = b, li
			}
			return out, rows.Err()
		}()
		if err != nil {
			return err
		}
		dec := newEventRows()
		for _, l := range logs {
			if len(l.topics) == 0 {
				continue
			}
			if l.addr == system.GovernanceAddress {
				if err := ix.governanceLog(ctx, tx, l.block, l.index, l.txHash, l.topics, l.data); err != nil {
					return err
				}
			} else if t := tables[evKey{l.addr, l.topics[0]}]; t != nil {
				dec.add(t, l.block, l.index, l.txHash, &types.Log{Address: l.addr, Topics: l.topics, Data: l.data})
			}
		}
		if err := dec.write(ctx, ix, tx); err != nil {
			return err
		}
		if len(logs) < page {
			break
		}
	}
	return ix.expireProposals(ctx, tx, last)
}

// governanceLog applies one log of the governance contract.
func (ix *Index) governanceLog(ctx context.Context, tx *sql.Tx, block, logIndex uint64, txHash common.Hash, topics []common.Hash, data []byte) error {
	if len(topics) < 2 {
		return nil
	}
	idBig := new(big.Int).SetBytes(topics[1][:])
	if !idBig.IsUint64() {
		return nil
	}
	id := u64(idBig.Uint64())
	exec := func(q string, args ...any) error {
		if _, err := tx.ExecContext(ctx, ix.d.rebind(q), args...); err != nil {
			return fmt.Errorf("index: governance at block %d: %w", block, err)
		}
		return nil
	}
	g := system.Governance.Events
	switch topics[0] {
	case govEvents.created:
		v, err := g["ProposalCreated"].Inputs.NonIndexed().Unpack(data)
		if err != nil || len(v) != 4 || len(topics) != 3 {
			ix.log.Warn("index: undecodable ProposalCreated log", "block", block, "logIndex", logIndex)
			return nil
		}
		action, _ := v[0].(uint8)
		org, _ := v[1].(string)
		expires, _ := v[2].(uint64)
		memo, _ := v[3].(string)
		a := system.Action(action)
		return exec(`INSERT INTO governance_proposals (id, block_number, tx_hash, log_index, action, action_name, class, org, proposer, expires, memo, status)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open')`,
			id, int64(block), hexHash(txHash), int64(logIndex), int64(action), a.String(), a.Class().String(), org,
			hexAddr(common.BytesToAddress(topics[2][:])), u64(expires), memo)
	case govEvents.vote:
		v, err := g["VoteCast"].Inputs.NonIndexed().Unpack(data)
		if err != nil || len(v) != 3 || len(topics) != 3 {
			ix.log.Warn("index: undecodable VoteCast log", "block", block, "logIndex", logIndex)
			return nil
		}
		org, _ := v[0].(string)
		support, _ := v[1].(bool)
		weight, _ := v[2].(uint64)
		return exec(`INSERT INTO governance_votes (proposal_id, org, block_number, tx_hash, log_index, voter, support, weight)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			id, org, int64(block), hexHash(txHash), int64(logIndex), hexAddr(common.BytesToAddress(topics[2][:])), support, u64(weight))
	case govEvents.passed:
		v, err := g["ProposalPassed"].Inputs.NonIndexed().Unpack(data)
		if err != nil || len(v) != 1 {
			ix.log.Warn("index: undecodable ProposalPassed log", "block", block, "logIndex", logIndex)
			return nil
		}
		at, _ := v[0].(uint64)
		return exec(`UPDATE governance_proposals SET status = 'passed', decided_block = ?, activates_at = ? WHERE id = ?`, int64(block), u64(at), id)
	case govEvents.rejected:
		return exec(`UPDATE governance_proposals SET status = 'rejected', decided_block = ? WHERE id = ?`, int64(block), id)
	case govEvents.cancelled:
		return exec(`UPDATE governance_proposals SET status = 'cancelled', decided_block = ? WHERE id = ?`, int64(block), id)
	}
	return nil
}

// proposalStates sets proposals as the system state has them at the end
// of a block.
func (ix *Index) proposalStates(ctx context.Context, tx *sql.Tx, block uint64, ps []chaindata.ProposalState) error {
	for _, p := range ps {
		var decided, activates, result any
		if p.Decided != 0 {
			decided = u64(p.Decided)
		}
		if p.ActivatesAt != 0 {
			activates = u64(p.ActivatesAt)
		}
		if p.Result != "" {
			result = p.Result
		}
		if _, err := tx.ExecContext(ctx, ix.d.rebind(`UPDATE governance_proposals SET status = ?, decided_block = ?, activates_at = ?, result = ? WHERE id = ?`),
			p.Status, decided, activates, result, u64(p.ID)); err != nil {
			return fmt.Errorf("index: proposal %d at block %d: %w", p.ID, block, err)
		}
	}
	return nil
}

// expireProposals marks expired the proposals still open after their
// last height to vote, up to block last: the chain expires them at the
// start of block expires+1.
func (ix *Index) expireProposals(ctx context.Context, tx *sql.Tx, last uint64) error {
	if _, err := tx.ExecContext(ctx, ix.d.rebind(`UPDATE governance_proposals SET status = 'expired', decided_block = expires + 1
		WHERE status = 'open' AND expires < ?`), u64(last)); err != nil {
		return fmt.Errorf("index: expire proposals: %w", err)
	}
	return nil
}

// readSystem reads, before the batch's transaction, what the source's
// system state says of each block; nil for a block when the source has
// no system state or not that block's.
func (ix *Index) readSystem(ctx context.Context, batch []blockData) ([]*chaindata.BlockSystem, error) {
	src, ok := ix.cfg.Source.(chaindata.SystemSource)
	if !ok {
		return nil, nil
	}
	out := make([]*chaindata.BlockSystem, len(batch))
	missing := 0
	for i, bd := range batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := bd.block.NumberU64()
		bs, err := src.BlockSystem(n)
		if errors.Is(err, chaindata.ErrNoSystemState) {
			missing++
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("index: system state of block %d: %w", n, err)
		}
		out[i] = &bs
	}
	if missing > 0 {
		ix.log.Warn("index: the source holds no state for some blocks: their usage and start-of-block governance are missing",
			"blocks", missing, "from", batch[0].block.NumberU64(), "to", batch[len(batch)-1].block.NumberU64())
	}
	return out, nil
}

// writeSystem writes the batch's governance and usage rows, in the
// batch's transaction: block by block, its governance logs, then the
// proposals as the state has them at its end.
func (ix *Index) writeSystem(ctx context.Context, tx *sql.Tx, batch []blockData, sys []*chaindata.BlockSystem) error {
	err := ix.writeSystemRows(ctx, tx, batch, sys)
	if err != nil && ctx.Err() != nil {
		// The transaction was rolled back as ctx ended: say so, rather
		// than what a statement of the closed transaction answered.
		return ctx.Err()
	}
	return err
}

func (ix *Index) writeSystemRows(ctx context.Context, tx *sql.Tx, batch []blockData, sys []*chaindata.BlockSystem) error {
	u := newUsageRows()
	dec := newEventRows()
	tables := ix.systemEventTables()
	for i, bd := range batch {
		n := bd.block.NumberU64()
		for k, r := range bd.receipts {
			for _, l := range r.Logs {
				if !system.IsSystem(l.Address) || len(l.Topics) == 0 {
					continue
				}
				txHash := bd.block.Transactions()[k].Hash()
				if l.Address == system.GovernanceAddress {
					if err := ix.governanceLog(ctx, tx, n, uint64(l.Index), txHash, l.Topics, l.Data); err != nil {
						return err
					}
				} else if t := tables[evKey{l.Address, l.Topics[0]}]; t != nil {
					dec.add(t, n, uint64(l.Index), txHash, l)
				}
			}
		}
		if sys != nil && sys[i] != nil {
			if err := ix.proposalStates(ctx, tx, n, sys[i].Proposals); err != nil {
				return err
			}
			u.add(n, sys[i].Usage)
		}
	}
	if err := ix.expireProposals(ctx, tx, batch[len(batch)-1].block.NumberU64()); err != nil {
		return err
	}
	if err := dec.write(ctx, ix, tx); err != nil {
		return err
	}
	return u.write(ctx, ix, tx)
}
