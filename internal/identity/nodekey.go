package identity

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// GenerateNodeKey makes a new secp256k1 node key. Its address
// (NodeIDOf) is the node's consensus identity, listed in the genesis.
func GenerateNodeKey() (*ecdsa.PrivateKey, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generate node key: %w", err)
	}
	return key, nil
}

// NodeIDOf is the consensus NodeID of a node key: its Ethereum address.
func NodeIDOf(key *ecdsa.PrivateKey) common.Address {
	return crypto.PubkeyToAddress(key.PublicKey)
}

// EncodeNodeKeyPEM encodes a secp256k1 node key as a PEMNodeKey block, or
// as a PEMEncryptedKey block when password is not empty.
func EncodeNodeKeyPEM(key *ecdsa.PrivateKey, password []byte) ([]byte, error) {
	if key == nil || key.Curve != crypto.S256() {
		return nil, fmt.Errorf("%w: node keys are secp256k1", ErrBadKeyFile)
	}
	raw := crypto.FromECDSA(key)
	defer clear(raw)
	return encodeSecret(PEMNodeKey, raw, password)
}

// DecodeNodeKeyPEM decodes a node key written by EncodeNodeKeyPEM. It also
// reads go-ethereum's nodekey format (64 hex characters), so a key made by
// geth tools can be used as is.
func DecodeNodeKeyPEM(data, password []byte) (*ecdsa.PrivateKey, error) {
	if trimmed := bytes.TrimSpace(data); len(trimmed) == 64 && !bytes.HasPrefix(trimmed, []byte("-----")) {
		raw := make([]byte, 32)
		defer clear(raw)
		if _, err := hex.Decode(raw, trimmed); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
		}
		key, err := crypto.ToECDSA(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
		}
		return key, nil
	}
	content, raw, err := decodeSecret(data, password)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	if content != PEMNodeKey {
		return nil, fmt.Errorf("%w: PEM block %q is not a node key", ErrBadKeyFile, content)
	}
	key, err := crypto.ToECDSA(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	}
	return key, nil
}

// SaveNodeKey writes a node key to path with mode 0600, encrypted when
// password is not empty. It never overwrites an existing file.
func SaveNodeKey(path string, key *ecdsa.PrivateKey, password []byte) error {
	data, err := EncodeNodeKeyPEM(key, password)
	if err != nil {
		return fmt.Errorf("write node key %s: %w", path, err)
	}
	return writeKeyBytes(path, data)
}

// LoadNodeKey reads a node key file (or an account key file: the same
// format). A wrong password gives "wrong password for key file PATH"
// (errors.Is ErrWrongPassword); a file group or others may access is
// refused (ErrKeyFileMode, see ReadPrivateFile).
func LoadNodeKey(path string, password []byte) (*ecdsa.PrivateKey, error) {
	data, err := ReadPrivateFile(path, MaxKeyFileBytes)
	if errors.Is(err, ErrKeyFileMode) || errors.Is(err, ErrBadKeyFile) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read node key: %w", err)
	}
	key, err := DecodeNodeKeyPEM(data, password)
	if err != nil {
		return nil, keyFileError(path, err)
	}
	return key, nil
}
