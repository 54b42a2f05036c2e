package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
)

// TestEncryptedNodeKeysLoadWithThePassword: a network written with a
// password has every private key encrypted; its node loads with the
// password, and without it (or with a wrong one) stops naming the key.
func TestEncryptedNodeKeysLoadWithThePassword(t *testing.T) {
	dir := t.TempDir()
	pw := []byte("correct horse battery staple")
	_, inits, err := InitNetwork(InitOptions{Dir: dir, Validators: 1, Engine: "raft", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	home := inits[0].Home
	for _, f := range []string{filepath.Join(home, nodeKeyFile), filepath.Join(home, "tls", "node.key"),
		filepath.Join(dir, "orgs", "org0", "ca.key"), filepath.Join(dir, "orgs", "org0", "admin.key"),
		filepath.Join(dir, "orgs", "org0", AdminAccountFile)} {
		data, err := os.ReadFile(f)
		if err != nil || !strings.HasPrefix(string(data), "-----BEGIN "+identity.PEMEncryptedKey+"-----") {
			t.Fatalf("%s is not encrypted (%v):\n%s", f, err, data)
		}
	}
	hc, err := LoadHomeConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := hc.Load(home, LoadOptions{Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	if identity.NodeIDOf(cfg.NodeKey) != inits[0].ID || cfg.Network == nil || cfg.Network.Certificate.Leaf == nil {
		t.Fatalf("loaded node id %s, want %s; certificate %v", identity.NodeIDOf(cfg.NodeKey), inits[0].ID, cfg.Network)
	}
	if _, err := hc.NodeConfig(home, nil); !errors.Is(err, identity.ErrPasswordRequired) ||
		!strings.Contains(err.Error(), filepath.Join(home, nodeKeyFile)) {
		t.Fatalf("without the password: %v", err)
	}
	if _, err := hc.Load(home, LoadOptions{Password: []byte("guess")}); !errors.Is(err, identity.ErrWrongPassword) {
		t.Fatalf("with a wrong password: %v", err)
	}
	// The organization's CA and admin account open with it too.
	if _, err := identity.LoadCA(filepath.Join(dir, "orgs", "org0", "ca.crt"), filepath.Join(dir, "orgs", "org0", "ca.key"), pw); err != nil {
		t.Fatal(err)
	}
	if _, err := identity.LoadNodeKey(filepath.Join(dir, "orgs", "org0", AdminAccountFile), pw); err != nil {
		t.Fatal(err)
	}
}

// TestNodeRefusesKeyFilesOthersMayRead: a node key or TLS key that group
// or others may read stops the node in one line naming the file and the
// fix.
func TestNodeRefusesKeyFilesOthersMayRead(t *testing.T) {
	dir := t.TempDir()
	_, inits, err := InitNetwork(InitOptions{Dir: dir, Validators: 1, Engine: "raft"})
	if err != nil {
		t.Fatal(err)
	}
	home := inits[0].Home
	hc, err := LoadHomeConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(home, nodeKeyFile), filepath.Join(home, "tls", "node.key")} {
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := hc.NodeConfig(home, nil)
		if !errors.Is(err, identity.ErrKeyFileMode) || !strings.Contains(err.Error(), "chmod 600 "+f) {
			t.Fatalf("%s mode 0644: %v", f, err)
		}
		if err := os.Chmod(f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := hc.NodeConfig(home, nil); err != nil {
		t.Fatal(err)
	}
}

// TestDevKeysOnlyOnLoopback: a genesis that funds the development
// accounts or gives them roles keeps JSON-RPC on loopback unless the
// operator allows otherwise; init refuses to write such a network for a
// host beyond loopback, and a genesis without them may serve anywhere.
func TestDevKeysOnlyOnLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8545": true, "127.0.0.2:1": true, "localhost:8545": true, "[::1]:8545": true,
		"0.0.0.0:8545": false, ":8545": false, "[::]:8545": false, "10.1.2.3:8545": false, "node0.example:8545": false, "127.0.0.1": true} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
	dir := t.TempDir()
	_, inits, err := InitNetwork(InitOptions{Dir: filepath.Join(dir, "dev"), Validators: 1, Engine: "raft", DevAccounts: true})
	if err != nil {
		t.Fatal(err)
	}
	_, plain, err := InitNetwork(InitOptions{Dir: filepath.Join(dir, "plain"), Validators: 1, Engine: "raft"})
	if err != nil {
		t.Fatal(err)
	}
	open := func(in InitNode, rpc string, allow bool) error {
		hc, err := LoadHomeConfig(in.Home)
		if err != nil {
			t.Fatal(err)
		}
		hc.RPCAddr = rpc
		_, err = hc.Load(in.Home, LoadOptions{AllowDevKeys: allow})
		return err
	}
	if err := open(inits[0], "0.0.0.0:8545", false); !errors.Is(err, ErrDevKeysExposed) ||
		!strings.Contains(err.Error(), "rpcAddr: 0.0.0.0:8545 is reachable from other machines while the genesis prefunds and grants roles to the 20 development accounts") {
		t.Fatalf("dev keys on 0.0.0.0: %v", err)
	}
	for _, c := range []struct {
		in    InitNode
		rpc   string
		allow bool
	}{{inits[0], "127.0.0.1:8545", false}, {inits[0], "0.0.0.0:8545", true}, {plain[0], "0.0.0.0:8545", false}} {
		if err := open(c.in, c.rpc, c.allow); err != nil {
			t.Fatalf("%s on %s (allowed %v): %v", c.in.Home, c.rpc, c.allow, err)
		}
	}
	// The genesis tells how: funds, roles, or both.
	spec, err := chain.LoadSpec(filepath.Join(dir, "dev", GenesisFile))
	if err != nil {
		t.Fatal(err)
	}
	spec.Governance.Accounts = nil
	if how, _ := DevKeysInGenesis(spec); how != "prefunds" {
		t.Fatalf("funds only: %q", how)
	}
	if how, _ := DevKeysInGenesis(mustSpec(t, filepath.Join(dir, "plain", GenesisFile))); how != "" {
		t.Fatalf("plain genesis: %q", how)
	}
	// init refuses the development accounts for a host beyond loopback.
	_, _, err = InitNetwork(InitOptions{Dir: filepath.Join(dir, "wide"), Validators: 1, Engine: "raft", DevAccounts: true, Host: "0.0.0.0"})
	if !errors.Is(err, ErrDevKeysExposed) || !strings.Contains(err.Error(), "--host 0.0.0.0") {
		t.Fatalf("init --dev-accounts --host 0.0.0.0: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "wide")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused init wrote %s: %v", filepath.Join(dir, "wide"), err)
	}
	if _, _, err := InitNetwork(InitOptions{Dir: filepath.Join(dir, "wide"), Validators: 1, Engine: "raft", DevAccounts: true,
		Host: "0.0.0.0", AllowDevKeys: true}); err != nil {
		t.Fatal(err)
	}
	// join, too, on a network whose genesis has them.
	_, err = Join(JoinOptions{Genesis: filepath.Join(dir, "dev", GenesisFile), Peers: filepath.Join(dir, "dev", PeersFile),
		Org: "newco", Dir: filepath.Join(dir, "newco"), Host: "0.0.0.0", RPCPort: 8600, P2PPort: 30400})
	if !errors.Is(err, ErrDevKeysExposed) {
		t.Fatalf("join --host 0.0.0.0 onto a dev-funded network: %v", err)
	}
}

func mustSpec(t *testing.T, path string) *chain.Spec {
	t.Helper()
	spec, err := chain.LoadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}
