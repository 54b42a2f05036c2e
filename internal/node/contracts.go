package node

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"sort"
	"sync"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/chaindata"
	"github.com/charter-ledger/charter/internal/system"
)

// registryContracts is the contract registry (0x…0402) as of the final
// head, for the indexer, the event streams and the REST gateway
// (chaindata.Contracts). It rereads the registry at most once per head, and
// only when asked; parsed ABIs are kept by their hash.
type registryContracts struct {
	system func() (*system.State, *types.Header, error)
	log    *slog.Logger

	mu     sync.Mutex
	head   *types.Header
	digest common.Hash
	gen    uint64
	all    []chaindata.Contract
	byName map[string]chaindata.Contract
	byAddr map[common.Address]chaindata.Contract
	abis   map[common.Hash]*abi.ABI // bounded by the registry's own size
}

func newRegistryContracts(sys func() (*system.State, *types.Header, error), log *slog.Logger) *registryContracts {
	return &registryContracts{system: sys, log: log, abis: map[common.Hash]*abi.ABI{}}
}

// refresh rereads the registry if the head moved; the caller holds mu.
func (r *registryContracts) refresh() {
	st, head, err := r.system()
	if err != nil || head == r.head {
		if err != nil {
			r.log.Warn("Contract registry not readable at the head", "err", err)
		}
		return
	}
	recs := st.Contracts()
	var h bytes.Buffer
	for _, c := range recs {
		h.WriteString(c.Name)
		h.Write(binary.BigEndian.AppendUint64(nil, c.Version))
		h.Write(c.Address[:])
		h.Write(c.ABIHash[:])
		if c.Deprecated {
			h.WriteByte(1)
		}
		h.WriteByte(0)
	}
	r.head = head
	digest := crypto.Keccak256Hash(h.Bytes())
	if digest == r.digest && r.byName != nil {
		return
	}
	r.digest = digest
	r.gen++
	all := make([]chaindata.Contract, 0, len(recs))
	byName := map[string]chaindata.Contract{}
	byAddr := map[common.Address]chaindata.Contract{}
	for _, rec := range recs {
		c := chaindata.Contract{Name: rec.Name, Version: rec.Version, Address: rec.Address, CodeHash: rec.CodeHash,
			ABIHash: rec.ABIHash, Org: rec.Org, Deprecated: rec.Deprecated}
		if doc, ok := st.ContractABI(rec.Name, rec.Version); ok {
			c.ABIJSON = doc
			parsed, ok := r.abis[rec.ABIHash]
			if !ok {
				if p, err := abi.JSON(bytes.NewReader(doc)); err == nil {
					parsed = &p
				} else {
					r.log.Warn("Registered ABI does not parse; its events stay undecoded", "contract", rec.Name, "version", rec.Version, "err", err)
				}
				r.abis[rec.ABIHash] = parsed
			}
			c.ABI = parsed
		}
		all = append(all, c)
		if old, ok := byName[c.Name]; !ok || old.Version < c.Version {
			byName[c.Name] = c
		}
		if old, ok := byAddr[c.Address]; !ok || old.Version < c.Version {
			byAddr[c.Address] = c
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].Name != all[j].Name {
			return all[i].Name < all[j].Name
		}
		return all[i].Version < all[j].Version
	})
	r.all, r.byName, r.byAddr = all, byName, byAddr
}

func (r *registryContracts) ByAddress(addr common.Address) (chaindata.Contract, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refresh()
	c, ok := r.byAddr[addr]
	return c, ok
}

func (r *registryContracts) ByName(name string) (chaindata.Contract, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refresh()
	c, ok := r.byName[name]
	return c, ok
}

func (r *registryContracts) All() []chaindata.Contract {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refresh()
	return r.all
}

func (r *registryContracts) Generation() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refresh()
	return r.gen
}

// Lookup serves the REST gateway's contracts by name (gateway.ContractABIs).
func (r *registryContracts) Lookup(name string) (common.Address, []byte, bool) {
	c, ok := r.ByName(name)
	if !ok || c.ABIJSON == nil {
		return common.Address{}, nil, false
	}
	return c.Address, c.ABIJSON, true
}
