package node

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/charter-ledger/charter/internal/ledger"
)

func TestStateHistoryValues(t *testing.T) {
	for in, want := range map[string]uint64{"all": ledger.StateArchive, "ALL": ledger.StateArchive, "1": 1, " 128 ": 128} {
		if got, err := ParseStateHistory(in); err != nil || got != want {
			t.Fatalf("ParseStateHistory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-1", "x", "", "129", "18446744073709551615"} {
		if _, err := ParseStateHistory(in); err == nil {
			t.Fatalf("ParseStateHistory(%q) accepted", in)
		}
	}
	var s HomeState
	for in, want := range map[string]uint64{`{"history":"all"}`: ledger.StateArchive, `{"history":64}`: 64, `{"history":"64"}`: 64, `{}`: 0} {
		s = HomeState{}
		if err := json.Unmarshal([]byte(in), &s); err != nil || s.history() != want {
			t.Fatalf("%s: history %d, %v; want %d", in, s.history(), err, want)
		}
	}
	if err := json.Unmarshal([]byte(`{"history":0}`), &s); err == nil || !strings.Contains(err.Error(), "state.history") {
		t.Fatalf("history 0: %v", err)
	}
	if (*HomeState)(nil).history() != 0 {
		t.Fatal("absent section is not 0")
	}
}
