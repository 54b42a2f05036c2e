package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/charter-ledger/charter/internal/chaindata"
)

const tokenABI = `[{"type":"event","name":"Transfer","inputs":[
  {"name":"from","type":"address","indexed":true},
  {"name":"to","type":"address","indexed":true},
  {"name":"value","type":"uint256","indexed":false}]},
 {"type":"event","name":"Approval","inputs":[
  {"name":"owner","type":"address","indexed":true},
  {"name":"value","type":"uint256","indexed":false}]}]`

var tokenAddr = common.HexToAddress("0x00000000000000000000000000000000000070c0")

type fakeContracts struct {
	mu  sync.Mutex
	all []chaindata.Contract
	gen atomic.Uint64
}

func (f *fakeContracts) ByAddress(a common.Address) (chaindata.Contract, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.all) - 1; i >= 0; i-- {
		if f.all[i].Address == a {
			return f.all[i], true
		}
	}
	return chaindata.Contract{}, false
}

func (f *fakeContracts) ByName(n string) (chaindata.Contract, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.all) - 1; i >= 0; i-- {
		if f.all[i].Name == n {
			return f.all[i], true
		}
	}
	return chaindata.Contract{}, false
}

func (f *fakeContracts) All() []chaindata.Contract {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]chaindata.Contract(nil), f.all...)
}

func (f *fakeContracts) Generation() uint64 { return f.gen.Load() }

// A filter naming a registered contract and an event by name delivers
// only those logs, decoded; the other events of the contract and the
// other addresses are left out.
func TestFilterByContractAndEvent(t *testing.T) {
	a, err := abi.JSON(strings.NewReader(tokenABI))
	if err != nil {
		t.Fatal(err)
	}
	reg := &fakeContracts{all: []chaindata.Contract{{Name: "Token", Version: 1, Address: tokenAddr, ABI: &a}}}
	to := common.HexToAddress("0x00000000000000000000000000000000000000cc")
	src := newFakeSourceWith(6, func(n uint64) []*types.Log {
		tr, _ := a.Events["Transfer"].Inputs.NonIndexed().Pack(big.NewInt(int64(n)))
		ap, _ := a.Events["Approval"].Inputs.NonIndexed().Pack(big.NewInt(7))
		return []*types.Log{
			{Address: tokenAddr, Topics: []common.Hash{a.Events["Transfer"].ID, common.BytesToHash(addrA[:]), common.BytesToHash(to[:])}, Data: tr},
			{Address: tokenAddr, Topics: []common.Hash{a.Events["Approval"].ID, common.BytesToHash(addrA[:])}, Data: ap},
			// Same event from an unregistered address.
			{Address: addrB, Topics: []common.Hash{a.Events["Transfer"].ID, common.BytesToHash(addrA[:]), common.BytesToHash(to[:])}, Data: tr},
		}
	})
	cfg := testConfig(t, t.TempDir(), src)
	cfg.Contracts = reg
	m := newTestManager(t, cfg)
	reg2 := prometheus.NewPedanticRegistry()
	if err := reg2.Register(m); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(Definition{Name: "x", Sink: webhookSink(t, "http://127.0.0.1:1/", secret), Filter: Filter{Contracts: []string{"Nope"}}}); err == nil || !strings.Contains(err.Error(), `"Nope" is not a registered contract`) {
		t.Fatalf("unknown contract: %v", err)
	}
	got := make(chan chaindata.Event, 100)
	RegisterSink("chan-"+t.Name(), func(json.RawMessage) (chaindata.Sink, error) { return chanSink(got), nil })
	def := Definition{Name: "tokens", Sink: SinkConfig{Kind: "chan-" + t.Name()}, Filter: Filter{
		Contracts: []string{"Token"}, Events: []string{"Transfer"},
		Topics: [][]common.Hash{{common.BytesToHash(addrA[:])}},
	}}
	if _, err := m.Create(def); err != nil {
		t.Fatal(err)
	}
	for n := range uint64(6) {
		select {
		case ev := <-got:
			if ev.Contract != "Token" || ev.Event != "Transfer" || ev.Signature != "Transfer(address,address,uint256)" ||
				ev.BlockNumber != n || ev.Args["value"] != big.NewInt(int64(n)).String() || ev.Args["to"] != to.Hex() || ev.Address != tokenAddr {
				t.Fatalf("event %d: %+v", n, ev)
			}
			if ev.ID != fmt.Sprintf("%d-%d-3", testChainID, n) {
				t.Fatalf("id %s", ev.ID)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d did not come", n)
		}
	}
	waitFor(t, 5*time.Second, "caught up", func() bool { return statsOf(m, "tokens").Cursor.Block == 6 })
	select {
	case ev := <-got:
		t.Fatalf("unwanted event %+v", ev)
	default:
	}
	mfs, err := reg2.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			if mt.GetLabel()[0].GetValue() != "tokens" {
				continue
			}
			v := mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
			values[mf.GetName()] = v
		}
	}
	if values["charter_stream_delivered_total"] != 6 || values["charter_stream_lag_blocks"] != 0 || len(values) != 5 {
		t.Fatalf("metrics %v", values)
	}
}

type chanSink chan chaindata.Event

func (c chanSink) Deliver(ctx context.Context, evs []chaindata.Event) error {
	for _, e := range evs {
		select {
		case c <- e:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (c chanSink) Close() error { return nil }
