package system

import (
	"math"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
)

// slotWrites records the slots written.
type slotWrites struct {
	*state.StateDB
	slots map[common.Address][]common.Hash
}

func (w *slotWrites) SetState(addr common.Address, key, value common.Hash) common.Hash {
	w.slots[addr] = append(w.slots[addr], key)
	return w.StateDB.SetState(addr, key, value)
}

// TestUsageSlotsCoverUsage: every slot AddUsage writes, up to the
// largest record, is one of UsageSlots (the ledger's history leaves them
// out), and only the registry's.
func TestUsageSlotsCoverUsage(t *testing.T) {
	st, err := state.New(types.EmptyRootHash, state.NewDatabaseForTesting())
	if err != nil {
		t.Fatal(err)
	}
	const day = 20_000
	for _, org := range []string{"", "acme", "an-organization-with-a-long-name"} {
		w := &slotWrites{StateDB: st, slots: map[common.Address][]common.Hash{}}
		s := Open(w, 1, day*86400+86399)
		s.AddUsage(org, Usage{Txs: 1, Gas: 1})
		s.AddUsage(org, Usage{Txs: math.MaxUint64 - 1, Gas: math.MaxUint64 - 1, StateBytes: math.MaxUint64})
		allowed := UsageSlots(org, day)
		if len(w.slots) != 1 || len(w.slots[RegistryAddress]) == 0 {
			t.Fatalf("org %q: usage written to %v", org, w.slots)
		}
		for _, k := range w.slots[RegistryAddress] {
			if k != allowed[0] && k != allowed[1] && k != allowed[2] {
				t.Fatalf("org %q: usage wrote slot %x, not among UsageSlots", org, k)
			}
		}
		if got := Read(st).Usage(org, day); got.StateBytes != math.MaxUint64 {
			t.Fatalf("org %q: usage %+v", org, got)
		}
	}
}
