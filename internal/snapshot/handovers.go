package snapshot

import (
	"fmt"
	"path/filepath"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/charter-ledger/charter/internal/durable"
)

// HandoversFile is where a data directory keeps the handovers its node
// recorded or imported (one RLP list, replaced whole).
const HandoversFile = "handovers"

func handoversFile(dataDir string) *durable.StateFile {
	return &durable.StateFile{FS: durable.OSFS{}, Path: filepath.Join(dataDir, HandoversFile)}
}

// LoadHandovers reads a data directory's handovers (none: nil, no error).
func LoadHandovers(dataDir string) ([]Handover, error) {
	raw, err := handoversFile(dataDir).Load()
	if err != nil || raw == nil {
		return nil, err
	}
	var list []Handover
	if err := rlp.DecodeBytes(raw, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dataDir, HandoversFile), err)
	}
	return list, nil
}

// AddHandovers adds to a data directory's handovers the ones it lacks
// (by block), keeping at most MaxHandovers, in block order of arrival.
// It returns how many were added.
func AddHandovers(dataDir string, add []Handover) (int, error) {
	list, err := LoadHandovers(dataDir)
	if err != nil {
		return 0, err
	}
	have := map[string]bool{}
	for _, h := range list {
		have[string(h.Header)] = true
	}
	n := 0
	for _, h := range add {
		if have[string(h.Header)] {
			continue
		}
		if len(list) >= MaxHandovers {
			return n, fmt.Errorf("%d validator set handovers kept already, at most %d: the handover of block %s is not kept", len(list), MaxHandovers, blockOf(h))
		}
		have[string(h.Header)] = true
		list = append(list, h)
		n++
	}
	if n == 0 {
		return 0, nil
	}
	raw, err := rlp.EncodeToBytes(list)
	if err != nil {
		return 0, err
	}
	return n, handoversFile(dataDir).Save(raw)
}

func blockOf(h Handover) string {
	hdr := new(types.Header)
	if rlp.DecodeBytes(h.Header, hdr) != nil {
		return "?"
	}
	return hdr.Number.String()
}
