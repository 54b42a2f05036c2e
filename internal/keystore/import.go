package keystore

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"

	gethkeystore "github.com/ethereum/go-ethereum/accounts/keystore"

	"github.com/charter-ledger/charter/internal/identity"
)

// Bounds of the key derivation of an imported go-ethereum keystore file,
// checked before any work, so that a crafted file cannot make the import
// spend minutes or gigabytes: the memory (128·N·r bytes) of go-ethereum's
// standard parameters (N 2^18, r 8: 256 MiB, about a second), and twice
// their work (N·r·p); its light ones (N 2^12, p 6) are well within.
const (
	maxImportScryptNR  = 1 << 21
	maxImportScryptNRP = 1 << 22
	maxImportPBKDF2    = 1 << 22
)

// readImport reads the key of a key file to import: a go-ethereum
// keystore (V3 JSON) file, or what identity.DecodeNodeKeyPEM reads (a
// Charter key file, encrypted or not, or 64 hex digits).
func readImport(path string, password []byte) (*ecdsa.PrivateKey, error) {
	data, err := identity.ReadPrivateFile(path, identity.MaxKeyFileBytes)
	if err != nil {
		if errors.Is(err, identity.ErrKeyFileMode) {
			return nil, err
		}
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		if err := checkV3Cost(trimmed); err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		k, err := gethkeystore.DecryptKey(trimmed, string(password))
		if err != nil {
			if errors.Is(err, gethkeystore.ErrDecrypt) {
				return nil, fmt.Errorf("import %s: %w", path, ErrWrongPassword)
			}
			return nil, fmt.Errorf("import %s: go-ethereum keystore file: %w", path, err)
		}
		return k.PrivateKey, nil
	}
	key, err := identity.DecodeNodeKeyPEM(data, password)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	return key, nil
}

// checkV3Cost bounds the key derivation a go-ethereum keystore file asks
// for.
func checkV3Cost(data []byte) error {
	var v struct {
		Crypto    *v3Crypto `json:"crypto"`
		CryptoOld *v3Crypto `json:"Crypto"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("not a go-ethereum keystore file: %v", err)
	}
	c := v.Crypto
	if c == nil {
		c = v.CryptoOld
	}
	if c == nil {
		return errors.New("not a go-ethereum keystore file: no crypto section")
	}
	switch c.KDF {
	case "scrypt":
		n, r, p := c.Params.N, c.Params.R, c.Params.P
		if n < 2 || r < 1 || p < 1 || n > maxImportScryptNR/r || n*r > maxImportScryptNRP/p {
			return fmt.Errorf("scrypt parameters n=%d r=%d p=%d out of bounds (at most n·r %d, n·r·p %d)", n, r, p, maxImportScryptNR, maxImportScryptNRP)
		}
	case "pbkdf2":
		if c.Params.C < 1 || c.Params.C > maxImportPBKDF2 {
			return fmt.Errorf("pbkdf2 iterations %d out of bounds (at most %d)", c.Params.C, maxImportPBKDF2)
		}
	default:
		return fmt.Errorf("unsupported key derivation %q", c.KDF)
	}
	return nil
}

type v3Crypto struct {
	KDF    string `json:"kdf"`
	Params struct {
		N int `json:"n"`
		R int `json:"r"`
		P int `json:"p"`
		C int `json:"c"`
	} `json:"kdfparams"`
}
