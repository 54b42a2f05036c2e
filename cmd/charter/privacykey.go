package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/node"
	"github.com/charter-ledger/charter/internal/privacy"
)

// caPrivacyKey makes an organization's privacy key pair, for a rotation
// (set-privacy-key) or an organization that joined without one.
func caPrivacyKey(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ca privacy-key", stderr)
	out := fs.String("out", "", "folder to write privacy.key (0600) and privacy.pub to (created 0700)")
	org := fs.String("org", "ORG", "organization name, for the proposal printed")
	pwFile := fs.String("password-file", "", "encrypt privacy.key with the password on this file's first line (the node's key password)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out is required: the folder to write privacy.key and privacy.pub to")
	}
	pw, err := readPassword("password-file", *pwFile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	keyPath, pubPath := filepath.Join(*out, node.PrivacyKeyFile), filepath.Join(*out, node.PrivacyPublicKeyFile)
	if _, err := os.Stat(pubPath); err == nil {
		return fmt.Errorf("%s exists already; choose another --out", pubPath)
	}
	key, err := privacy.GenerateKey()
	if err != nil {
		return err
	}
	if err := identity.SavePrivacyKey(keyPath, key, pw); err != nil {
		return err
	}
	if err := identity.WritePrivacyPublicKey(pubPath, key.Public()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, `Privacy key %s written to %s, its public key to %s.

Make it the organization's key (the members vote as for any proposal):

  charter gov propose set-privacy-key --org %s --privacy-key %s --key MEMBER_ADMIN_KEY --rpc MEMBER_RPC

Once it passes, copy %s into the home of each of the organization's nodes and restart them.
`, key.Public().Identity(), keyPath, pubPath, *org, pubPath, keyPath)
	return nil
}

// loadOrCreateDevPrivacyKey reads DIR/privacy.key, the development
// organization's privacy key, creating it when the data directory is new
// (fresh). A data directory made before privacy keys has none: its
// genesis names none, so the chain goes on without (nil key, said once).
func loadOrCreateDevPrivacyKey(dir string, fresh bool, logger *slog.Logger) (*privacy.PrivateKey, error) {
	path := filepath.Join(dir, node.PrivacyKeyFile)
	key, err := identity.LoadPrivacyKey(path, nil)
	switch {
	case err == nil:
		return key, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("privacy key: %w", err)
	case !fresh:
		logger.Info("This data directory predates privacy keys: the development organization has none", "file", path)
		return nil, nil
	}
	if key, err = privacy.GenerateKey(); err != nil {
		return nil, err
	}
	if err := identity.SavePrivacyKey(path, key, nil); err != nil {
		return nil, fmt.Errorf("privacy key: %w", err)
	}
	return key, nil
}

// privacyKeyText shows a privacy public key argument (base64 of its
// bytes) by its identity, as privateFrom and privateFor name it.
func privacyKeyText(s string) (string, bool) {
	if base64.StdEncoding.DecodedLen(len(s)) < privacy.PublicKeySize || len(s) > 2*privacy.PublicKeySize {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != privacy.PublicKeySize {
		return "", false
	}
	var id privacy.Identity
	copy(id[:], raw)
	return fmt.Sprintf("privacy identity %s (with its ML-KEM-768 key, %d bytes in all)", id, len(raw)), true
}
