package chain

import (
	"crypto/ecdsa"
	"fmt"
	"math/big"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/tyler-smith/go-bip39"
)

// DevMnemonic is the widely used development mnemonic (Hardhat, Anvil,
// Foundry). Its keys are public: never use them for anything of value.
const DevMnemonic = "test test test test test test test test test test test junk"

// DevAccountCount is how many development accounts are prefunded.
const DevAccountCount = 20

// DevBalance is each development account's starting balance: 10,000 ETH.
var DevBalance = new(big.Int).Mul(big.NewInt(10_000), big.NewInt(params.Ether))

// DevAccount is one development key.
type DevAccount struct {
	Index   int
	Address common.Address
	Key     *ecdsa.PrivateKey
}

// DevAccounts derives the first n accounts of DevMnemonic on the path
// m/44'/60'/0'/0/i (BIP-39 seed, BIP-32 derivation).
func DevAccounts(n int) ([]DevAccount, error) {
	return DeriveAccounts(DevMnemonic, n)
}

// DeriveAccounts derives the first n accounts of a BIP-39 mnemonic on the
// Ethereum path m/44'/60'/0'/0/i.
func DeriveAccounts(mnemonic string, n int) ([]DevAccount, error) {
	seed, err := bip39.NewSeedWithErrorChecking(mnemonic, "")
	if err != nil {
		return nil, fmt.Errorf("mnemonic: %w", err)
	}
	master, err := hdkeychain.NewMaster(seed, &chaincfg.MainNetParams)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	// m/44'/60'/0'/0
	parent := master
	for _, i := range []uint32{hdkeychain.HardenedKeyStart + 44, hdkeychain.HardenedKeyStart + 60, hdkeychain.HardenedKeyStart, 0} {
		if parent, err = parent.Derive(i); err != nil {
			return nil, fmt.Errorf("derive: %w", err)
		}
	}
	out := make([]DevAccount, n)
	for i := range out {
		child, err := parent.Derive(uint32(i))
		if err != nil {
			return nil, fmt.Errorf("derive account %d: %w", i, err)
		}
		priv, err := child.ECPrivKey()
		if err != nil {
			return nil, fmt.Errorf("account %d key: %w", i, err)
		}
		key, err := crypto.ToECDSA(priv.Serialize())
		if err != nil {
			return nil, fmt.Errorf("account %d key: %w", i, err)
		}
		out[i] = DevAccount{Index: i, Address: crypto.PubkeyToAddress(key.PublicKey), Key: key}
	}
	return out, nil
}
