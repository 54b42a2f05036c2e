package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/node"
	"github.com/charter-ledger/charter/internal/privacy"
)

// TestCAPrivacyKey: 'charter ca privacy-key' writes a key pair, the
// private key encrypted with --password-file and 0600, prints the
// identity and the proposal that makes it the organization's, and
// refuses to overwrite.
func TestCAPrivacyKey(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "keys")
	stdout := mustRun(t, "ca", "privacy-key", "--out", out, "--org", "org1", "--password-file", pwFile)
	key, err := identity.LoadPrivacyKey(filepath.Join(out, node.PrivacyKeyFile), []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(out, node.PrivacyPublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if pub, err := privacy.ParsePublicKeyText(text); err != nil || !pub.Equal(key.Public()) {
		t.Fatalf("privacy.pub is not the key's public key: %v", err)
	}
	for _, want := range []string{key.Public().Identity().String(),
		"charter gov propose set-privacy-key --org org1 --privacy-key " + filepath.Join(out, node.PrivacyPublicKeyFile)} {
		if !strings.Contains(stdout, want) {
			t.Fatalf("output does not say %q:\n%s", want, stdout)
		}
	}
	mustFail(t, "exists already", "ca", "privacy-key", "--out", out)
	mustFail(t, "--out is required", "ca", "privacy-key")
}

// TestNodeCommandRefusesMismatchedPrivacyKey: 'charter node' on a home
// whose privacy key is not its organization's stops in one line naming
// the file and the fix.
func TestNodeCommandRefusesMismatchedPrivacyKey(t *testing.T) {
	dir := t.TempDir()
	out := mustRun(t, "init", "--validators", "2", "--orgs", "2", "--out", dir)
	if !strings.Contains(out, "Privacy keys: one per organization") {
		t.Fatalf("init does not mention the privacy keys:\n%s", out)
	}
	path := filepath.Join(dir, "node0", node.PrivacyKeyFile)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	// node1's key: organization org1's, not node0's org0.
	other, err := identity.LoadPrivacyKey(filepath.Join(dir, "node1", node.PrivacyKeyFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := identity.SavePrivacyKey(path, other, nil); err != nil {
		t.Fatal(err)
	}
	mustFail(t, "privacy key "+path+" (identity "+other.Public().Identity().String()+") is not organization org0's privacy key in the registry at height 0",
		"node", "--home", filepath.Join(dir, "node0"), "--log.level", "error")
}

// TestDevPrivacyKey: the development organization's privacy key is made
// with a new data directory and read back after; a data directory made
// before privacy keys goes on without one.
func TestDevPrivacyKey(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	k, err := loadOrCreateDevPrivacyKey(dir, true, logger)
	if err != nil || k == nil {
		t.Fatalf("new data directory: %v, %v", k, err)
	}
	again, err := loadOrCreateDevPrivacyKey(dir, false, logger)
	if err != nil || !again.Equal(k) {
		t.Fatalf("restart: another key (%v)", err)
	}
	if st, _ := os.Stat(filepath.Join(dir, node.PrivacyKeyFile)); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %#o", st.Mode().Perm())
	}
	old := t.TempDir()
	if k, err := loadOrCreateDevPrivacyKey(old, false, logger); err != nil || k != nil {
		t.Fatalf("older data directory: %v, %v", k, err)
	}
	if _, err := os.Stat(filepath.Join(old, node.PrivacyKeyFile)); !os.IsNotExist(err) {
		t.Fatal("a key was made for a chain whose genesis names none")
	}
}
