package identity

import (
	"errors"
	"fmt"

	"github.com/charter-ledger/charter/internal/privacy"
)

// PEMPrivacyKey is an unencrypted organization privacy key: the 96 bytes
// of privacy.PrivateKey.Bytes (X25519 scalar, ML-KEM-768 seed). With a
// password it is the Content of a PEMEncryptedKey block instead, like a
// node key.
const PEMPrivacyKey = "CHARTER PRIVACY KEY"

// EncodePrivacyKeyPEM encodes a privacy key as a PEMPrivacyKey block, or
// as a PEMEncryptedKey block when password is not empty.
func EncodePrivacyKeyPEM(key *privacy.PrivateKey, password []byte) ([]byte, error) {
	if key == nil {
		return nil, fmt.Errorf("%w: no privacy key", ErrBadKeyFile)
	}
	raw := key.Bytes()
	defer clear(raw)
	return encodeSecret(PEMPrivacyKey, raw, password)
}

// DecodePrivacyKeyPEM decodes a key written by EncodePrivacyKeyPEM.
// Errors: ErrPasswordRequired, ErrWrongPassword, ErrBadKeyFile (another
// kind of key, or not a privacy key).
func DecodePrivacyKeyPEM(data, password []byte) (*privacy.PrivateKey, error) {
	content, raw, err := decodeSecret(data, password)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	if content != PEMPrivacyKey {
		return nil, fmt.Errorf("%w: PEM block %q is not a privacy key", ErrBadKeyFile, content)
	}
	key, err := privacy.NewPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	}
	return key, nil
}

// SavePrivacyKey writes a privacy key to path with mode 0600, encrypted
// when password is not empty. It never overwrites an existing file (an
// error wrapping fs.ErrExist).
func SavePrivacyKey(path string, key *privacy.PrivateKey, password []byte) error {
	data, err := EncodePrivacyKeyPEM(key, password)
	if err != nil {
		return fmt.Errorf("write privacy key %s: %w", path, err)
	}
	return writeKeyBytes(path, data)
}

// LoadPrivacyKey reads a privacy key file. A wrong password gives "wrong
// password for key file PATH" (errors.Is ErrWrongPassword); a file group
// or others may access is refused (ErrKeyFileMode, see ReadPrivateFile);
// a missing file wraps fs.ErrNotExist.
func LoadPrivacyKey(path string, password []byte) (*privacy.PrivateKey, error) {
	data, err := ReadPrivateFile(path, MaxKeyFileBytes)
	if errors.Is(err, ErrKeyFileMode) || errors.Is(err, ErrBadKeyFile) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read privacy key: %w", err)
	}
	key, err := DecodePrivacyKeyPEM(data, password)
	if err != nil {
		return nil, keyFileError(path, err)
	}
	return key, nil
}

// WritePrivacyPublicKey writes a privacy public key file (a
// privacy.PEMPublicKey block, public) to path with mode 0644, replacing
// the file atomically.
func WritePrivacyPublicKey(path string, key *privacy.PublicKey) error {
	if key == nil {
		return fmt.Errorf("write privacy public key %s: no key", path)
	}
	return writeFileAtomic(path, key.EncodePEM(), 0o644)
}
