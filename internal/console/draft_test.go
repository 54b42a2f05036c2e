package console

import (
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/charter-ledger/charter/internal/system"
)

// A draft is the calldata of Governance.propose with the action's
// arguments encoded as the chain reads them; what the chain's own checks
// refuse, the draft refuses with their words.
func TestDraftIsTheProposeCall(t *testing.T) {
	target := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	d, err := buildDraft(DraftRequest{Action: "freeze", Args: map[string]string{"target": target.Hex()}, Memo: "lost key"}, 1337)
	if err != nil {
		t.Fatal(err)
	}
	if d.To != system.GovernanceAddress.Hex() || d.Value != "0x0" || d.ChainID != "0x539" {
		t.Fatalf("draft: %+v", d)
	}
	data := hexutil.MustDecode(d.Data)
	m, err := system.Governance.MethodById(data[:4])
	if err != nil || m.Name != "propose" {
		t.Fatalf("method %v: %v", m, err)
	}
	vals, err := m.Inputs.Unpack(data[4:])
	if err != nil {
		t.Fatal(err)
	}
	want, _ := system.Encode(&system.Freeze{Target: target})
	if vals[0].(uint8) != uint8(system.ActFreeze) || string(vals[1].([]byte)) != string(want) || vals[2].(string) != "lost key" {
		t.Fatalf("propose(%v, %x, %q), want args %x", vals[0], vals[1], vals[2], want)
	}
	for _, c := range []struct {
		req  DraftRequest
		want string
	}{
		{DraftRequest{Action: "explode", Memo: "x"}, "unknown action"},
		{DraftRequest{Action: "freeze", Memo: "x"}, "--target is required"},
		{DraftRequest{Action: "freeze", Args: map[string]string{"target": "0x12"}, Memo: "x"}, "not an address"},
		{DraftRequest{Action: "freeze", Args: map[string]string{"target": target.Hex(), "colour": "red"}, Memo: "x"}, "takes no --colour"},
		{DraftRequest{Action: "freeze", Args: map[string]string{"target": target.Hex()}}, "memo"},
		{DraftRequest{Action: "set-parameter", Args: map[string]string{"name": "maxOpenProposals", "value": "many"}, Memo: "x"}, "--value"},
	} {
		if _, err := buildDraft(c.req, 1); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error with %q", c.req, err, c.want)
		}
	}
}
