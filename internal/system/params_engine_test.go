package system

import (
	"math/big"
	"reflect"
	"testing"
)

// An engine parameter is checked against the engine's range, and once
// executed it is scheduled at the next epoch boundary far enough ahead,
// with every engine parameter set so far; the block's effects carry it.
func TestEngineParameterScheduledAtEpoch(t *testing.T) {
	f := newFixture(t)
	_, err := f.at(5).Propose(adminOf(1), ActSetParameter, f.args(ActSetParameter, "bft.timeoutVote", big.NewInt(5)), "")
	wantRevert(t, err, "bft.timeoutVote 5 outside [100, 30000]")
	_, err = f.at(5).Propose(adminOf(1), ActSetParameter, f.args(ActSetParameter, "bft.emptyBlockPeriod", big.NewInt(50)), "")
	wantRevert(t, err, "bft.emptyBlockPeriod 50: 0 or at least 100")
	_, err = f.at(5).Propose(adminOf(1), ActSetParameter, f.args(ActSetParameter, "poa.confirmations", big.NewInt(3)), "")
	if err == nil {
		t.Fatal("poa.confirmations is not governable, yet the proposal was taken")
	}

	_, at, fx := f.enact(10, ActSetParameter, "bft.timeoutPropose", big.NewInt(3000))
	epoch := Read(f.st).Policy().EpochLength
	from := (at + validatorLead + epoch - 1) / epoch * epoch
	want := ParamChange{From: from, Names: []string{"bft.timeoutPropose"}, Values: []uint64{3000}}
	if len(fx.ParamChanges) != 1 || !reflect.DeepEqual(fx.ParamChanges[0], want) {
		t.Fatalf("effects %+v, want %+v", fx.ParamChanges, want)
	}
	if got := Read(f.st).ParamChanges(); !reflect.DeepEqual(got, []ParamChange{want}) {
		t.Fatalf("scheduled %+v", got)
	}
	if from%epoch != 0 || from < at+validatorLead {
		t.Fatalf("from %d: not an epoch boundary %d blocks ahead of %d", from, validatorLead, at)
	}
	// A later change keeps the earlier values.
	_, at2, fx := f.enact(from+5, ActSetParameter, "bft.emptyBlockPeriod", big.NewInt(0))
	from2 := (at2 + validatorLead + epoch - 1) / epoch * epoch
	want2 := ParamChange{From: from2, Names: []string{"bft.emptyBlockPeriod", "bft.timeoutPropose"}, Values: []uint64{0, 3000}}
	if len(fx.ParamChanges) != 1 || !reflect.DeepEqual(fx.ParamChanges[0], want2) {
		t.Fatalf("effects %+v, want %+v", fx.ParamChanges, want2)
	}
	// The first change is in force at at2 and stays listed until the second is.
	if got := Read(f.st).ParamChanges(); !reflect.DeepEqual(got, []ParamChange{want, want2}) {
		t.Fatalf("scheduled %+v", got)
	}
	if m := want2.Map(); m["bft.timeoutPropose"] != 3000 || len(m) != 2 {
		t.Fatalf("map %v", m)
	}
	// A chain parameter is no engine parameter: nothing scheduled.
	_, _, fx = f.enact(from2+5, ActSetParameter, ParamGasLimit, big.NewInt(30_000_000))
	if len(fx.ParamChanges) != 0 {
		t.Fatalf("gasLimit scheduled an engine change: %+v", fx.ParamChanges)
	}
	// Once the second is in force, the history before it is dropped.
	_, _, _ = f.enact(from2+20, ActSetParameter, "poa.period", big.NewInt(2000))
	if got := Read(f.st).ParamChanges(); len(got) != 2 || got[0].From != from2 {
		t.Fatalf("scheduled %+v, want the one in force from %d and the new one", got, from2)
	}
}
