package identity

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/charter-ledger/charter/internal/privacy"
)

// TestPrivacyKeyFileRoundTrip: a privacy key written with and without a
// password reads back as the same key, 0600; the encrypted file names its
// content and does not hold the key in the clear; a wrong or missing
// password, another kind of key and an existing file are refused.
func TestPrivacyKeyFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	key, err := privacy.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range [][]byte{nil, []byte("correct horse")} {
		path := filepath.Join(dir, "privacy-"+string(pw)+".key")
		if err := SavePrivacyKey(path, key, pw); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
			t.Fatalf("privacy key written with mode %#o, want 0600", st.Mode().Perm())
		}
		got, err := LoadPrivacyKey(path, pw)
		if err != nil {
			t.Fatalf("password %q: %v", pw, err)
		}
		if !got.Equal(key) || !got.Public().Equal(key.Public()) {
			t.Fatalf("password %q: read another key", pw)
		}
		data, _ := os.ReadFile(path)
		if len(pw) == 0 {
			if !strings.Contains(string(data), "BEGIN "+PEMPrivacyKey) {
				t.Fatalf("unencrypted file is not a %s block:\n%s", PEMPrivacyKey, data)
			}
			continue
		}
		if !strings.Contains(string(data), "BEGIN "+PEMEncryptedKey) || !strings.Contains(string(data), "Content: "+PEMPrivacyKey) {
			t.Fatalf("encrypted file is not a %s block of content %s:\n%s", PEMEncryptedKey, PEMPrivacyKey, data)
		}
		if _, err := LoadPrivacyKey(path, []byte("wrong")); !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), path) {
			t.Fatalf("wrong password: %v, want ErrWrongPassword naming the file", err)
		}
		if _, err := LoadPrivacyKey(path, nil); !errors.Is(err, ErrPasswordRequired) || !strings.Contains(err.Error(), path) {
			t.Fatalf("no password: %v, want ErrPasswordRequired naming the file", err)
		}
		if err := SavePrivacyKey(path, key, pw); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("overwrite: %v, want fs.ErrExist", err)
		}
	}
	// A node key is not a privacy key, and a privacy key not a node key.
	nk, _ := GenerateNodeKey()
	nodeKey := filepath.Join(dir, "nodekey")
	if err := SaveNodeKey(nodeKey, nk, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivacyKey(nodeKey, nil); !errors.Is(err, ErrBadKeyFile) || !strings.Contains(err.Error(), "not a privacy key") {
		t.Fatalf("node key read as a privacy key: %v", err)
	}
	if _, err := LoadNodeKey(filepath.Join(dir, "privacy-.key"), nil); !errors.Is(err, ErrBadKeyFile) {
		t.Fatalf("privacy key read as a node key: %v", err)
	}
	if _, err := LoadPrivacyKey(filepath.Join(dir, "missing.key"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
	}
	// The public key file reads back.
	pubPath := filepath.Join(dir, "privacy.pub")
	if err := WritePrivacyPublicKey(pubPath, key.Public()); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(pubPath)
	if pub, err := privacy.ParsePublicKeyText(data); err != nil || !pub.Equal(key.Public()) {
		t.Fatalf("public key file does not read back: %v", err)
	}
}

// TestPrivacyKeyFileModeRefused: a privacy key file group or others may
// access is refused in one line naming the file and the fix, as node keys
// are, and read once it is 0600.
func TestPrivacyKeyFileModeRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes do not express access on Windows")
	}
	path := filepath.Join(t.TempDir(), "privacy.key")
	key, _ := privacy.GenerateKey()
	if err := SavePrivacyKey(path, key, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadPrivacyKey(path, []byte("pw"))
		if !errors.Is(err, ErrKeyFileMode) || !strings.Contains(err.Error(), "chmod 600 "+path) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("mode %#o: %v, want one line with the fix", mode, err)
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivacyKey(path, []byte("pw")); err != nil {
		t.Fatalf("mode 0600: %v", err)
	}
}
