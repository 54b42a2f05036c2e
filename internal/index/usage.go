package index

import (
	"context"
	"sort"
	"time"

	"github.com/charter-ledger/charter/internal/chaindata"
)

// The usage table: what each organization used per UTC day, as the system
// state meters it (system.State.Usage, the registry's usage(org, day)
// view): for every transaction, its sender's organization (the node's for
// a transaction a node sends; "" for accounts of no organization) counts
// one transaction and the gas it used, and, if it succeeded, the bytes of
// state it wrote (32 per storage slot changed, the size of code set).
//
//	usage
//	  day          UTC days since 1970 (block time / 86400), the key with org
//	  date         the day as YYYY-MM-DD
//	  org
//	  txs, gas, state_bytes   totals of the day's indexed blocks
//	  first_block, last_block the day's first and last block with usage of org
//
// Rows come from a Source that is also a chaindata.SystemSource (a node's
// is): the organization of a sender, and the state it wrote, are in no
// block or receipt. Without one the table stays empty. Once the index has
// reached the head, a day's row equals the state's usage(org, day); the
// table_coverage row of usage says from which block it counts.
const usageDDL = `CREATE TABLE IF NOT EXISTS usage (day BIGINT NOT NULL, date TEXT NOT NULL, org TEXT NOT NULL, txs BIGINT NOT NULL,
	gas BIGINT NOT NULL, state_bytes BIGINT NOT NULL, first_block BIGINT NOT NULL, last_block BIGINT NOT NULL, PRIMARY KEY (day, org))`

var usageCols = []string{"day", "date", "org", "txs", "gas", "state_bytes", "first_block", "last_block"}

type usageKey struct {
	day uint64
	org string
}

type usageSum struct {
	txs, gas, stateBytes uint64
	first, last          uint64
}

// usageRows sums a batch's usage per day and organization.
type usageRows struct {
	sums map[usageKey]*usageSum // at most days × organizations of one batch
}

func newUsageRows() *usageRows { return &usageRows{sums: map[usageKey]*usageSum{}} }

func (u *usageRows) add(block uint64, us []chaindata.OrgUsage) {
	for _, x := range us {
		k := usageKey{x.Day, x.Org}
		s := u.sums[k]
		if s == nil {
			s = &usageSum{first: block}
			u.sums[k] = s
		}
		s.txs += x.Txs
		s.gas += x.Gas
		s.stateBytes += x.StateBytes
		s.last = block
	}
}

func (u *usageRows) write(ctx context.Context, ix *Index, tx execer) error {
	if len(u.sums) == 0 {
		return nil
	}
	keys := make([]usageKey, 0, len(u.sums))
	for k := range u.sums {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].day != keys[j].day {
			return keys[i].day < keys[j].day
		}
		return keys[i].org < keys[j].org
	})
	rows := make([][]any, 0, len(keys))
	for _, k := range keys {
		s := u.sums[k]
		date := time.Unix(int64(min(k.day, 1<<40)*86400), 0).UTC().Format(time.DateOnly)
		rows = append(rows, []any{u64(k.day), date, k.org, u64(s.txs), u64(s.gas), u64(s.stateBytes), u64(s.first), u64(s.last)})
	}
	return ix.insert(ctx, tx, "usage", usageCols, rows, ` ON CONFLICT(day, org) DO UPDATE SET txs = "usage".txs + excluded.txs,
		gas = "usage".gas + excluded.gas, state_bytes = "usage".state_bytes + excluded.state_bytes, last_block = excluded.last_block`)
}
