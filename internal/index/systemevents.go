package index

import (
	"sort"
	"sync"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/system"
)

// The other events of the system contracts, one decoded table each, named
// system_<event> (system_roles_changed, system_contract_registered,
// system_group_created, system_private_marker, ...), with the columns of
// a decoded event table: block_number, log_index, tx_hash, address, then
// the event's arguments. Governance's own events have the typed tables of
// governance.go instead. Their names, and the typed tables', are reserved:
// a registered contract whose decoded table would take one of them gets
// the name with its version appended.

func buildSystemEventTables(d dialect) map[evKey]*eventTable {
	out := map[evKey]*eventTable{}
	for _, c := range []struct {
		addr common.Address
		abi  *abi.ABI
	}{{system.RegistryAddress, &system.Registry}, {system.ContractsAddress, &system.ContractRegistry}} {
		for _, ev := range c.abi.Events {
			out[evKey{c.addr, ev.ID}] = newEventTable("system_"+snake(ev.Name), ev, d)
		}
	}
	return out
}

var systemEventTablesOf = map[string]func() map[evKey]*eventTable{
	sqliteDialect{}.name(): sync.OnceValue(func() map[evKey]*eventTable { return buildSystemEventTables(sqliteDialect{}) }),
	pgDialect{}.name():     sync.OnceValue(func() map[evKey]*eventTable { return buildSystemEventTables(pgDialect{}) }),
}

// systemEventTables are the decoded tables of the system contracts'
// events, by address and topic0.
func (ix *Index) systemEventTables() map[evKey]*eventTable {
	return systemEventTablesOf[ix.d.name()]()
}

// systemEventTableList is systemEventTables by name.
func (ix *Index) systemEventTableList() []*eventTable {
	var out []*eventTable
	for _, t := range ix.systemEventTables() {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// reservedTables are the names a registered contract's decoded table may
// not take.
var reservedTables = func() map[string]bool {
	m := map[string]bool{"event_tables": true, "governance_proposals": true, "governance_votes": true, "table_coverage": true}
	for _, t := range buildSystemEventTables(sqliteDialect{}) {
		m[t.name] = true
	}
	return m
}()
