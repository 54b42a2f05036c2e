package bench

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
)

// KindMixed is a load of plain transfers, ERC-20 transfers, contract
// creations and calls to one hot contract, in the shares of Config.Mix.
const KindMixed = "mixed"

// The kinds of transaction of a mixed load, in the order of Mix.
const (
	txTransfer = iota
	txERC20
	txCreate
	txHot
	numTxKinds
)

// txKindNames are the names of the transaction kinds in --mix, the
// results and the chart.
var txKindNames = [numTxKinds]string{"transfer", "erc20", "create", "hot"}

// Mix is the share in percent of each kind of transaction of a mixed load:
// Shares[txTransfer] plain transfers, Shares[txERC20] ERC-20 transfers,
// Shares[txCreate] contract creations, Shares[txHot] calls to the hot
// contract. The shares add up to 100.
type Mix struct {
	Shares [numTxKinds]int
}

// DefaultMix is the mix of --kind mixed without --mix.
var DefaultMix = Mix{Shares: [numTxKinds]int{50, 30, 5, 15}}

// String is the mix in the syntax of --mix.
func (m Mix) String() string {
	var parts []string
	for k, s := range m.Shares {
		parts = append(parts, fmt.Sprintf("%s=%d", txKindNames[k], s))
	}
	return strings.Join(parts, ",")
}

// ParseMix reads "transfer=50,erc20=30,create=5,hot=15": integer percent
// shares of the kinds named, which add up to 100; a kind left out has
// share 0.
func ParseMix(s string) (Mix, error) {
	var m Mix
	if strings.TrimSpace(s) == "" {
		return m, errors.New("--mix is empty: want e.g. transfer=50,erc20=30,create=5,hot=15")
	}
	seen := [numTxKinds]bool{}
	sum := 0
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return m, fmt.Errorf("--mix %q: %q is not KIND=PERCENT", s, part)
		}
		k := -1
		for i, n := range txKindNames {
			if n == strings.TrimSpace(name) {
				k = i
			}
		}
		if k < 0 {
			return m, fmt.Errorf("--mix %q: unknown kind %q (want transfer, erc20, create or hot)", s, name)
		}
		if seen[k] {
			return m, fmt.Errorf("--mix %q: %s is given twice", s, name)
		}
		seen[k] = true
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 0 || n > 100 {
			return m, fmt.Errorf("--mix %q: share %q of %s is not a whole percent in [0, 100]", s, val, name)
		}
		m.Shares[k] = n
		sum += n
	}
	if sum != 100 {
		return m, fmt.Errorf("--mix %q: the shares add up to %d, want 100", s, sum)
	}
	return m, nil
}

// pattern is the order of kinds over 100 consecutive transactions: smooth
// weighted round robin, so every kind is spread evenly over the run (a
// 15% share is one transaction in about every 7, not 15 in a row) and any
// 100 consecutive transactions hold exactly the shares.
func (m Mix) pattern() [100]uint8 {
	var p [100]uint8
	var cur [numTxKinds]int
	for i := range p {
		best := -1
		for k := range cur {
			cur[k] += m.Shares[k]
			if m.Shares[k] > 0 && (best < 0 || cur[k] > cur[best]) {
				best = k
			}
		}
		cur[best] -= 100
		p[i] = uint8(best)
	}
	return p
}

// hotInitCode creates the hot contract: every call to it, whatever its
// data, increments the word in its storage slot 0, so all calls to it
// write the same slot and conflict with each other. Assembled by hand:
//
//	runtime (10 bytes, at offset 12 of the creation code):
//	  60 00   PUSH1 0      slot
//	  54      SLOAD        counter
//	  60 01   PUSH1 1
//	  01      ADD          counter+1
//	  60 00   PUSH1 0      slot
//	  55      SSTORE       slot 0 = counter+1
//	  00      STOP
//
//	creation (12 bytes): copy the runtime to memory 0 and return it
//	  60 0a   PUSH1 10     length
//	  60 0c   PUSH1 12     offset of the runtime in this code
//	  60 00   PUSH1 0      memory offset
//	  39      CODECOPY
//	  60 0a   PUSH1 10     length
//	  60 00   PUSH1 0      memory offset
//	  f3      RETURN
var hotInitCode = common.FromHex("600a600c600039600a6000f3" + hotRuntimeHex)

// hotRuntimeHex is the hot contract's code on chain (see hotInitCode).
const hotRuntimeHex = "60005460010160005500"

// Gas of each kind of transaction: enough with margin (a hot call that
// sets the slot from zero costs 21000 + 2100 + 20000 + a few).
var txKindGas = [numTxKinds]uint64{txTransfer: 21_000, txERC20: 60_000, txCreate: 100_000, txHot: 60_000}
