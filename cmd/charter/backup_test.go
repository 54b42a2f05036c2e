package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// charter backup of a running node over its API, then charter restore
// --verify of the backup; a backup without its manifest and a home of
// another kind are refused in one line.
func TestBackupCommandAndRestoreRefusals(t *testing.T) {
	d := startPrivateDevNode(t)
	dir := filepath.Join(t.TempDir(), "backup")
	out := mustRun(t, "backup", "--to", dir, "--rpc", d.url)
	if !strings.Contains(out, "Backup of node (charter dev)") || !strings.Contains(out, dir) {
		t.Fatalf("charter backup printed %q", out)
	}
	if out := mustRun(t, "restore", "--from", dir, "--verify"); !strings.Contains(out, "is whole") {
		t.Fatalf("charter restore --verify printed %q", out)
	}
	mustFail(t, "not empty", "backup", "--to", dir, "--rpc", d.url)
	mustFail(t, "--to is required", "backup", "--rpc", d.url)

	// A home that is not a node's: refused, untouched.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "notes.txt"), []byte("x"), 0o600)
	mustFail(t, "neither empty nor a node's home", "restore", "--from", dir, "--home", other)

	// Half-written: no manifest.
	if err := os.Remove(filepath.Join(dir, "manifest.json")); err != nil {
		t.Fatal(err)
	}
	mustFail(t, "has no manifest.json", "restore", "--from", dir, "--home", filepath.Join(t.TempDir(), "home"))
	mustFail(t, "has no manifest.json", "restore", "--from", dir, "--verify")
}
