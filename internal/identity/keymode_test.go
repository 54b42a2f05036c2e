package identity

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestKeyFilesOthersMayReadAreRefused: every reader of private keys
// refuses a file group or others may access, naming the file and the fix
// in one line, and reads it once it is 0600.
func TestKeyFilesOthersMayReadAreRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes do not express access on Windows")
	}
	dir := t.TempDir()
	ca := mustCA(t, "org")
	caCrt, caKey := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if err := SaveCA(ca, caCrt, caKey, nil); err != nil {
		t.Fatal(err)
	}
	cert, tlsKey, _ := ca.IssueNode("n", []string{"127.0.0.1"}, 0)
	crt, keyPath := filepath.Join(dir, "n.crt"), filepath.Join(dir, "n.key")
	if err := WriteCertFile(crt, cert); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(keyPath, tlsKey, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	nk, _ := GenerateNodeKey()
	nodeKey := filepath.Join(dir, "nodekey")
	if err := SaveNodeKey(nodeKey, nk, nil); err != nil {
		t.Fatal(err)
	}
	reads := []struct {
		name, path string
		read       func() error
	}{
		{"CA key", caKey, func() error { _, err := LoadCA(caCrt, caKey, nil); return err }},
		{"TLS key", keyPath, func() error { _, err := LoadTLSCertificate(crt, keyPath, []byte("pw")); return err }},
		{"node key", nodeKey, func() error { _, err := LoadNodeKey(nodeKey, nil); return err }},
		{"private file", nodeKey, func() error { _, err := ReadPrivateFile(nodeKey, MaxKeyFileBytes); return err }},
	}
	for _, r := range reads {
		for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
			if err := os.Chmod(r.path, mode); err != nil {
				t.Fatal(err)
			}
			err := r.read()
			if !errors.Is(err, ErrKeyFileMode) || !strings.Contains(err.Error(), "chmod 600 "+r.path) ||
				strings.Contains(err.Error(), "\n") {
				t.Fatalf("%s with mode %#o: %v, want one line with the fix", r.name, mode, err)
			}
		}
		if err := os.Chmod(r.path, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := r.read(); err != nil {
			t.Fatalf("%s with mode 0600: %v", r.name, err)
		}
	}
	t.Log(func() error { os.Chmod(nodeKey, 0o644); _, err := LoadNodeKey(nodeKey, nil); return err }())
}
