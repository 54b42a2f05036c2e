package chaindata

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

const testABI = `[
 {"type":"event","name":"Transfer","inputs":[
  {"name":"from","type":"address","indexed":true},
  {"name":"to","type":"address","indexed":true},
  {"name":"value","type":"uint256","indexed":false}]},
 {"type":"event","name":"Batch","inputs":[
  {"name":"ids","type":"uint64[]","indexed":false},
  {"name":"item","type":"tuple","indexed":false,"components":[
    {"name":"who","type":"address"},{"name":"blob","type":"bytes"}]},
  {"name":"note","type":"string","indexed":true},
  {"name":"tag","type":"bytes32","indexed":false},
  {"name":"delta","type":"int8","indexed":false}]}
]`

func TestDecodeEvent(t *testing.T) {
	a, err := abi.JSON(strings.NewReader(testABI))
	if err != nil {
		t.Fatal(err)
	}
	c := Contract{Name: "Token", Version: 1, ABI: &a}
	from := common.HexToAddress("0x1111111111111111111111111111111111111111")
	to := common.HexToAddress("0x2222222222222222222222222222222222222222")
	big1 := new(big.Int).Lsh(big.NewInt(1), 200)
	data, err := a.Events["Transfer"].Inputs.NonIndexed().Pack(big1)
	if err != nil {
		t.Fatal(err)
	}
	l := &types.Log{Topics: []common.Hash{a.Events["Transfer"].ID, common.BytesToHash(from[:]), common.BytesToHash(to[:])}, Data: data}
	ev, args, ok := DecodeEvent(c, l)
	if !ok || ev.Name != "Transfer" {
		t.Fatalf("not decoded: %v %v", ev, ok)
	}
	got, _ := json.Marshal(args)
	want := `{"from":"` + from.Hex() + `","to":"` + to.Hex() + `","value":"` + big1.String() + `"}`
	if string(got) != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}

	item := struct {
		Who  common.Address `json:"who"`
		Blob []byte         `json:"blob"`
	}{from, []byte{0xde, 0xad}}
	bev := a.Events["Batch"]
	data, err = bev.Inputs.NonIndexed().Pack([]uint64{1, 18446744073709551615}, item, [32]byte{0xab}, int8(-5))
	if err != nil {
		t.Fatal(err)
	}
	noteHash := common.HexToHash("0x99")
	l = &types.Log{Topics: []common.Hash{bev.ID, noteHash}, Data: data}
	_, args, ok = DecodeEvent(c, l)
	if !ok {
		t.Fatal("Batch not decoded")
	}
	got, _ = json.Marshal(args)
	want = `{"delta":"-5","ids":["1","18446744073709551615"],"item":{"blob":"0xdead","who":"` + from.Hex() + `"},"note":"` + noteHash.Hex() + `","tag":"0xab00000000000000000000000000000000000000000000000000000000000000"}`
	if string(got) != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}

	for name, bad := range map[string]*types.Log{
		"no topics":     {Data: data},
		"unknown event": {Topics: []common.Hash{common.HexToHash("0x01")}},
		"missing topic": {Topics: []common.Hash{a.Events["Transfer"].ID, common.BytesToHash(from[:])}, Data: data},
		"short data":    {Topics: []common.Hash{bev.ID, noteHash}, Data: data[:40]},
	} {
		if _, _, ok := DecodeEvent(c, bad); ok {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, _, ok := DecodeEvent(Contract{Name: "NoABI"}, l); ok {
		t.Error("decoded without an ABI")
	}
}
