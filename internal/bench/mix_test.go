package bench

import (
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/vm/runtime"
)

func TestParseMix(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want [numTxKinds]int
		err  string
	}{
		{in: "transfer=50,erc20=30,create=5,hot=15", want: [numTxKinds]int{50, 30, 5, 15}},
		{in: " hot=100 ", want: [numTxKinds]int{0, 0, 0, 100}},
		{in: "erc20=40, transfer=60", want: [numTxKinds]int{60, 40, 0, 0}},
		{in: "", err: "--mix is empty"},
		{in: "transfer=50,erc20=30", err: "add up to 80, want 100"},
		{in: "transfer=50,nft=50", err: `unknown kind "nft"`},
		{in: "transfer=50,transfer=50", err: "transfer is given twice"},
		{in: "transfer=fifty,hot=50", err: `share "fifty" of transfer is not a whole percent`},
		{in: "transfer=-5,hot=105", err: `share "-5" of transfer`},
		{in: "transfer=50,hot", err: `"hot" is not KIND=PERCENT`},
	} {
		m, err := ParseMix(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseMix(%q): %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || m.Shares != tc.want {
			t.Errorf("ParseMix(%q) = %v, %v; want %v", tc.in, m.Shares, err, tc.want)
		}
	}
	if m, err := ParseMix(DefaultMix.String()); err != nil || m != DefaultMix {
		t.Fatalf("the default mix does not read back: %v %v", m, err)
	}
}

// Every 100 consecutive transactions hold exactly the shares, and in the
// default and an even mix each kind is spread out: no kind of share s has a
// run longer than ceil(s/(100-s))+1.
func TestMixPatternSharesAndSpread(t *testing.T) {
	for _, m := range []Mix{DefaultMix, {Shares: [numTxKinds]int{0, 0, 0, 100}}, {Shares: [numTxKinds]int{1, 1, 1, 97}}, {Shares: [numTxKinds]int{25, 25, 25, 25}}} {
		p := m.pattern()
		var count [numTxKinds]int
		for _, k := range p {
			count[k]++
		}
		if count != m.Shares {
			t.Fatalf("mix %s: pattern holds %v", m, count)
		}
		for k, s := range m.Shares {
			if s == 0 || s == 100 || m.Shares[txTransfer] == 1 {
				continue
			}
			longest, cur := 0, 0
			for i := 0; i < 200; i++ { // twice round: runs across the wrap
				if int(p[i%100]) == k {
					cur++
					longest = max(longest, cur)
				} else {
					cur = 0
				}
			}
			if limit := (s+(100-s)-1)/(100-s) + 1; longest > limit {
				t.Fatalf("mix %s: %s comes %d in a row, want at most %d", m, txKindNames[k], longest, limit)
			}
		}
	}
}

// The hand-assembled hot contract: its creation code returns the runtime,
// and each call increments slot 0.
func TestHotContract(t *testing.T) {
	cfg := &runtime.Config{}
	code, addr, _, err := runtime.Create(hotInitCode, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if common.Bytes2Hex(code) != hotRuntimeHex {
		t.Fatalf("deployed code %x, want %s", code, hotRuntimeHex)
	}
	for i := 0; i < 3; i++ {
		if _, _, err := runtime.Call(addr, []byte{byte(i)}, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if got := cfg.State.GetState(addr, common.Hash{}).Big(); got.Cmp(big.NewInt(3)) != 0 {
		t.Fatalf("counter after 3 calls: %v", got)
	}
}
