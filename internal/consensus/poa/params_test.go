package poa

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/charter-ledger/charter/internal/consensus"
)

func poaSpec(params string) consensus.Spec {
	return consensus.Spec{Engine: "poa", ChainID: 7, Validators: ids(4), Params: json.RawMessage(params), BlockTime: time.Second}
}

func TestParamsRefusedNamingTheField(t *testing.T) {
	for _, tc := range []struct{ params, want string }{
		{`{"period":"5ms"}`, "consensus.params.period: must be between 100ms and 1h0m0s, got 5ms"},
		{`{"turnTimeout":"1h"}`, "consensus.params.turnTimeout: must be between 100ms and 10m0s, got 1h0m0s"},
		{`{"confirmations":6}`, "consensus.params.confirmations: must be an integer between 0 and 5, got 6"},
		{`{"confirmations":-1}`, "consensus.params.confirmations: must be an integer between 0 and 5, got -1"},
		{`{"confirmations":"2"}`, `consensus.params.confirmations: must be an integer between 0 and 5, got "2"`},
		{`{"period":1000}`, `consensus.params.period: want a duration string`},
		{`{"blockTime":"1s"}`, `consensus.params: unknown field "blockTime": the poa engine takes period, turnTimeout, confirmations`},
	} {
		_, err := ConfigFromSpec(poaSpec(tc.params))
		if err == nil || !errors.Is(err, consensus.ErrBadParams) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one with %q", tc.params, err, tc.want)
		}
		if _, _, err := FromSpec(poaSpec(tc.params), consensus.Env{Key: testKey(0)}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("FromSpec %s: err = %v, want one with %q", tc.params, err, tc.want)
		}
	}
}

// Without parameters the engine runs as it always did: the genesis block
// time is the period, the defaults the rest.
func TestParamsDefaultsUnchanged(t *testing.T) {
	for _, params := range []string{``, `{}`} {
		cfg, err := ConfigFromSpec(poaSpec(params))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Key = testKey(0)
		cfg.EnsureDefaults()
		if cfg.PeriodTicks != 10 || cfg.TimeoutTicks != DefaultTimeoutTicks || cfg.FinalityDepth != DefaultFinalityDepth ||
			cfg.Lookahead != DefaultFinalityDepth+4 || cfg.MaxTimeoutTicks != DefaultMaxTimeoutTicks || cfg.BackoffTicks != DefaultBackoffTicks {
			t.Fatalf("%q: config %+v", params, cfg)
		}
	}
	cfg, err := ConfigFromSpec(poaSpec(`{"period":"3s","turnTimeout":"500ms","confirmations":0}`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Key = testKey(0)
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.PeriodTicks != 30 || cfg.TimeoutTicks != 5 || cfg.FinalityDepth != 0 || cfg.Lookahead != 4 {
		t.Fatalf("config %+v", cfg)
	}
}

// The genesis confirmations are the finality depth: a block is final once
// that many sealed blocks are on top of it, and no sooner.
func TestConfirmationsHonoured(t *testing.T) {
	lag := map[uint64]uint64{}
	for _, conf := range []uint64{0, 1, 3, 5} {
		spec, err := ConfigFromSpec(poaSpec(`{"confirmations":` + string(rune('0'+conf)) + `}`))
		if err != nil {
			t.Fatal(err)
		}
		cl := newCluster(t, 4, func(i int, c *Config) { c.FinalityDepth, c.Lookahead = spec.FinalityDepth, spec.Lookahead })
		cl.settle()
		cl.tick(60)
		for i, c := range cl.cores {
			st := c.Status()
			if st.Final < 10 || st.Tip.Height < st.Final+conf {
				t.Fatalf("confirmations %d: node %d final %d, tip %d", conf, i, st.Final, st.Tip.Height)
			}
			if i == 0 {
				lag[conf] = st.Tip.Height - st.Final
			}
			// A block with conf blocks on top is the head of that depth.
			if h := c.Head(conf); h.Header == nil && h.Number > st.Final {
				t.Fatalf("confirmations %d: Head(%d) = %+v beyond final %d", conf, conf, h, st.Final)
			}
		}
	}
	if !(lag[0] < lag[1] && lag[1] < lag[3] && lag[3] < lag[5]) {
		t.Fatalf("tip above the final block by confirmations: %v", lag)
	}
}

// Governance's period and turn timeout apply from their height on.
func TestSetParamsTiming(t *testing.T) {
	cl := newCluster(t, 4, nil)
	c := cl.cores[0]
	if err := c.SetParams(3, map[string]uint64{"poa.period": 1000}); !errors.Is(err, ErrTooLate) {
		t.Fatalf("a change within the lookahead: %v", err)
	}
	from := c.cfg.Lookahead + 5
	if err := c.SetParams(from, map[string]uint64{"poa.period": 1000, "poa.turnTimeout": 800, "bft.blockTime": 9}); err != nil {
		t.Fatal(err)
	}
	if tm := c.timingAt(from - 1); tm.period != 1 || tm.timeout != 3 {
		t.Fatalf("timing before the change %+v", tm)
	}
	if tm := c.timingAt(from); tm.period != 10 || tm.timeout != 8 {
		t.Fatalf("timing from the change %+v (100ms ticks)", tm)
	}
}
