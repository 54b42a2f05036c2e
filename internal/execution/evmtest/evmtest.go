// Package evmtest holds the contracts that tests of the permission rules
// at every EVM frame deploy (a counter to freeze, a forwarder that calls
// in each of the four ways, an EIP-7702 sweeper, a self-destructor and a
// factory), compiled from Contracts.sol by gen.js, and helpers to encode
// their calls. Only tests import it.
package evmtest

import (
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
)

//go:generate node gen.js

// Contract is one compiled contract of Contracts.sol.
type Contract struct {
	Name string
	ABI  abi.ABI
	// Code is the creation code (no constructor takes arguments).
	Code []byte
	// Runtime is the code a deployment leaves at the contract's address.
	Runtime []byte
}

func newContract(name, abiJSON, code, runtime string) Contract {
	a, err := abi.JSON(strings.NewReader(abiJSON))
	if err != nil {
		panic(fmt.Sprintf("evmtest: ABI of %s: %v", name, err))
	}
	return Contract{Name: name, ABI: a, Code: common.FromHex(code), Runtime: common.FromHex(runtime)}
}

// Pack encodes a call of method with args; a mistake in a test's call
// panics.
func (c Contract) Pack(method string, args ...any) []byte {
	data, err := c.ABI.Pack(method, args...)
	if err != nil {
		panic(fmt.Sprintf("evmtest: %s.%s: %v", c.Name, method, err))
	}
	return data
}
