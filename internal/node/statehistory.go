package node

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/charter-ledger/charter/internal/ledger"
)

// ParseStateHistory reads a --state.history value: a number of past
// blocks whose state the node keeps (1 to ledger.MaxStateHistory), or "all" for every
// block's (an archive node). The result is a ledger.Options.StateHistory.
func ParseStateHistory(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "all") {
		return ledger.StateArchive, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || n > ledger.MaxStateHistory {
		return 0, fmt.Errorf("state history %q: give a number of blocks from 1 to %d, or all (every block's state, an archive node)", s, ledger.MaxStateHistory)
	}
	return n, nil
}

// HomeState is the state section of a node's config.json.
type HomeState struct {
	// History is how many past blocks' state the node keeps: a number,
	// or "all" (archive); absent: what the data directory records, else
	// ledger.DefaultStateHistory.
	History StateHistory `json:"history,omitempty"`
}

// StateHistory is a state history in config.json: a number or "all".
type StateHistory uint64

func (h *StateHistory) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		var n uint64
		if err := json.Unmarshal(data, &n); err != nil {
			return fmt.Errorf("state.history: give a number of blocks or \"all\"")
		}
		s = strconv.FormatUint(n, 10)
	}
	v, err := ParseStateHistory(s)
	if err != nil {
		return fmt.Errorf("state.history: %w", err)
	}
	*h = StateHistory(v)
	return nil
}

func (h StateHistory) MarshalJSON() ([]byte, error) {
	if uint64(h) == ledger.StateArchive {
		return json.Marshal("all")
	}
	return json.Marshal(uint64(h))
}

// history is the ledger option of the section (0: not set).
func (s *HomeState) history() uint64 {
	if s == nil {
		return 0
	}
	return uint64(s.History)
}
