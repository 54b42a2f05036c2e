package privtx

import (
	"crypto/ecdsa"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

var (
	// secp256k1HalfN is secp256k1n/2, the largest s a signature may carry
	// (EIP-2).
	secp256k1HalfN, _ = new(big.Int).SetString("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0", 16)
	big35             = big.NewInt(35)
)

// SigningHash is the hash a sender signs for chainID: keccak256 of the
// twelve items with v replaced by chainID and r and s empty (EIP-155).
// A nil or non-positive chainID gives Besu's hash of a transaction
// without a chain id, which leaves v, r and s out; Sender accepts no
// such signature.
func (t *Tx) SigningHash(chainID *big.Int) common.Hash {
	if chainID == nil {
		chainID = new(big.Int)
	}
	return crypto.Keccak256Hash(t.encode(chainID))
}

// ChainID is the chain id that v carries (EIP-155: v = recovery id +
// chain id × 2 + 35), or nil when v carries none (27 or 28, or not set).
func (t *Tx) ChainID() *big.Int {
	if t.V == nil || t.V.Cmp(big.NewInt(37)) < 0 {
		return nil
	}
	id := new(big.Int).Sub(t.V, big35)
	return id.Rsh(id, 1)
}

// Sender recovers the address that signed t for chainID. It refuses a
// transaction Encode refuses, a signature without a chain id or for
// another chain (ErrChainID), and one with s above secp256k1n/2, r or s
// out of range, or from which no key recovers (ErrSignature).
func (t *Tx) Sender(chainID *big.Int) (common.Address, error) {
	if chainID == nil || chainID.Sign() <= 0 {
		return common.Address{}, fmt.Errorf("%w: %v: want a positive chain id", ErrChainID, chainID)
	}
	if err := t.validate(); err != nil {
		return common.Address{}, err
	}
	signed := t.ChainID()
	if signed == nil {
		return common.Address{}, fmt.Errorf("%w: v: %v carries no chain id (not EIP-155); sign for chain %v", ErrChainID, t.V, chainID)
	}
	if signed.Cmp(chainID) != 0 {
		return common.Address{}, fmt.Errorf("%w: v: signed for chain %v, this chain is %v", ErrChainID, signed, chainID)
	}
	// v - chainID*2 - 35 is 0 or 1: ChainID rounded the odd part away.
	recID := byte(new(big.Int).Sub(t.V, new(big.Int).Add(new(big.Int).Lsh(chainID, 1), big35)).Uint64())
	if t.S.Cmp(secp256k1HalfN) > 0 {
		return common.Address{}, fmt.Errorf("%w: s: above secp256k1n/2 (EIP-2); the signer must normalize s", ErrSignature)
	}
	if !crypto.ValidateSignatureValues(recID, t.R, t.S, true) {
		return common.Address{}, fmt.Errorf("%w: r, s: zero or not below the curve order", ErrSignature)
	}
	sig := make([]byte, crypto.SignatureLength)
	t.R.FillBytes(sig[:32])
	t.S.FillBytes(sig[32:64])
	sig[crypto.RecoveryIDOffset] = recID
	hash := t.SigningHash(chainID)
	pub, err := crypto.SigToPub(hash[:], sig)
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: no public key recovers: %v", ErrSignature, err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}

// SignTx signs t for chainID with key, setting V, R and S as
// web3js-quorum does (deterministic RFC 6979 signature, low s,
// v = recovery id + chainID × 2 + 35). It refuses a transaction whose
// other fields Encode would refuse, and leaves t unchanged then.
func SignTx(t *Tx, chainID *big.Int, key *ecdsa.PrivateKey) error {
	if chainID == nil || chainID.Sign() <= 0 {
		return fmt.Errorf("%w: %v: want a positive chain id", ErrChainID, chainID)
	}
	if key == nil {
		return fmt.Errorf("sign private transaction: no key")
	}
	if err := t.validateBody(); err != nil {
		return err
	}
	hash := t.SigningHash(chainID)
	sig, err := crypto.Sign(hash[:], key)
	if err != nil {
		return fmt.Errorf("sign private transaction: %w", err)
	}
	signed := *t
	signed.R = new(big.Int).SetBytes(sig[:32])
	signed.S = new(big.Int).SetBytes(sig[32:64])
	signed.V = new(big.Int).Lsh(chainID, 1)
	signed.V.Add(signed.V, big.NewInt(35+int64(sig[crypto.RecoveryIDOffset])))
	if _, err := signed.Encode(); err != nil {
		return err
	}
	*t = signed
	return nil
}
