// Package token holds the ERC-20 contract that benchmarks and tests deploy,
// and helpers to encode its calls.
package token

import (
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
)

//go:generate node gen.js

var parsed = func() abi.ABI {
	a, err := abi.JSON(strings.NewReader(ABI))
	if err != nil {
		panic("token ABI: " + err.Error())
	}
	return a
}()

// DeployData is the creation code with the supply minted to the deployer.
func DeployData(supply *big.Int) []byte {
	args, err := parsed.Pack("", supply)
	if err != nil {
		panic(err)
	}
	return append(common.FromHex(Bytecode), args...)
}

// TransferData encodes transfer(to, value).
func TransferData(to common.Address, value *big.Int) []byte {
	data, err := parsed.Pack("transfer", to, value)
	if err != nil {
		panic(err)
	}
	return data
}

// BalanceOfData encodes balanceOf(owner).
func BalanceOfData(owner common.Address) []byte {
	data, err := parsed.Pack("balanceOf", owner)
	if err != nil {
		panic(err)
	}
	return data
}

// TransferEvent is the topic of Transfer(address,address,uint256).
var TransferEvent = parsed.Events["Transfer"].ID

// Parsed returns the parsed ABI.
func Parsed() abi.ABI { return parsed }
