package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/privacy"
)

// initPrivacyNetwork writes a network of 3 validators in 2 organizations
// (org0: node0 and node2, org1: node1) with free ports.
func initPrivacyNetwork(t *testing.T, password []byte) (string, *chain.Spec, []InitNode) {
	t.Helper()
	dir := t.TempDir()
	spec, inits, err := InitNetwork(InitOptions{Dir: dir, Validators: 3, Orgs: 2, Engine: "raft", Password: password,
		RPCPort: freePortBase(t, 3), P2PPort: freePortBase(t, 3), MetricsPort: freePortBase(t, 3)})
	if err != nil {
		t.Fatal(err)
	}
	return dir, spec, inits
}

// loadHome loads a node home as `charter node` does.
func loadHome(t *testing.T, home string, password []byte, logger *slog.Logger) (Config, error) {
	t.Helper()
	hc, err := LoadHomeConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	return hc.Load(home, LoadOptions{Password: password, Logger: logger})
}

// TestInitWritesPrivacyKeys: init makes one privacy key per organization,
// puts its public key in the genesis (and orgs/ORG/privacy.pub) and its
// private key, encrypted with the password, 0600, in every node home of
// the organization; each node loads its organization's key, and the node
// starts with it.
func TestInitWritesPrivacyKeys(t *testing.T) {
	pw := []byte("privacy password")
	dir, spec, inits := initPrivacyNetwork(t, pw)
	genesis := map[string]*privacy.PublicKey{}
	for _, o := range spec.Organizations {
		pub, err := o.PrivacyPublicKey()
		if err != nil || pub == nil {
			t.Fatalf("genesis organization %s: privacy key %v, %v", o.Name, pub, err)
		}
		genesis[o.Name] = pub
		text, err := os.ReadFile(filepath.Join(dir, orgsDir, o.Name, PrivacyPublicKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if file, err := privacy.ParsePublicKeyText(text); err != nil || !file.Equal(pub) {
			t.Fatalf("%s: privacy.pub is not the genesis key (%v)", o.Name, err)
		}
	}
	if genesis["org0"].Equal(genesis["org1"]) {
		t.Fatal("two organizations have one privacy key")
	}
	// The genesis written to disk carries them too.
	onDisk, err := chain.LoadSpec(filepath.Join(dir, GenesisFile))
	if err != nil {
		t.Fatal(err)
	}
	if onDisk.Org("org1").PrivacyKey != genesis["org1"].Identity().String() || onDisk.Org("org1").PrivacyKEM != genesis["org1"].KEMString() {
		t.Fatal("genesis.json does not carry org1's privacy key")
	}
	for _, in := range inits {
		path := filepath.Join(in.Home, PrivacyKeyFile)
		data, err := os.ReadFile(path)
		if err != nil || !bytes.HasPrefix(data, []byte("-----BEGIN "+identity.PEMEncryptedKey+"-----")) || !bytes.Contains(data, []byte("Content: "+identity.PEMPrivacyKey)) {
			t.Fatalf("%s is not an encrypted privacy key (%v)", path, err)
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %#o, want 0600", path, st.Mode().Perm())
		}
		cfg, err := loadHome(t, in.Home, pw, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.PrivacyKey == nil || !cfg.PrivacyKey.Public().Equal(genesis[in.Org]) || cfg.PrivacyKeyFile != path {
			t.Fatalf("%s (%s) loads privacy key %v from %s, not its organization's", in.Name, in.Org, cfg.PrivacyKey, cfg.PrivacyKeyFile)
		}
		if _, err := loadHome(t, in.Home, nil, nil); !errors.Is(err, identity.ErrPasswordRequired) {
			t.Fatalf("%s without the password: %v", in.Name, err)
		}
	}
	cfg, err := loadHome(t, inits[0].Home, pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("node with its organization's privacy key: %v", err)
	}
	defer n.Stop()
	if !n.PrivacyKey().Equal(cfg.PrivacyKey) {
		t.Fatal("the node does not hold its privacy key")
	}
}

// TestNodeRefusesMismatchedPrivacyKey: a node whose privacy key is not
// its organization's key in the registry does not start, in one line
// naming the file and the fix; another organization's key is refused the
// same way.
func TestNodeRefusesMismatchedPrivacyKey(t *testing.T) {
	_, _, inits := initPrivacyNetwork(t, nil)
	home := inits[0].Home // org0
	path := filepath.Join(home, PrivacyKeyFile)
	other, err := identity.LoadPrivacyKey(filepath.Join(inits[1].Home, PrivacyKeyFile), nil) // org1's
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := privacy.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]*privacy.PrivateKey{"fresh key": fresh, "org1's key": other} {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := identity.SavePrivacyKey(path, key, nil); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadHome(t, home, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := New(cfg)
		if err == nil {
			n.Stop()
			t.Fatalf("%s: the node started", name)
		}
		msg := err.Error()
		for _, want := range []string{path, key.Public().Identity().String(), "is not organization org0's privacy key in the registry at height 0", "install the organization's current privacy key"} {
			if !strings.Contains(msg, want) {
				t.Fatalf("%s: error %q does not say %q", name, msg, want)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Fatalf("%s: error of several lines: %q", name, msg)
		}
	}
	// The data directory stays usable: with the right key the node starts.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	right, err := identity.LoadPrivacyKey(filepath.Join(inits[2].Home, PrivacyKeyFile), nil) // node2 is org0's too
	if err != nil {
		t.Fatal(err)
	}
	if err := identity.SavePrivacyKey(path, right, nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadHome(t, home, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("with org0's key after refusals: %v", err)
	}
	n.Stop()
}

// TestNodeWithoutPrivacyKey: with no privacy.key and config.json naming
// none, the node starts and says once that it takes no part in private
// transactions; a privacy key file config.json names must exist, and one
// others may read is refused.
func TestNodeWithoutPrivacyKey(t *testing.T) {
	_, _, inits := initPrivacyNetwork(t, nil)
	home := inits[0].Home
	path := filepath.Join(home, PrivacyKeyFile)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadHome(t, home, nil, nil); !errors.Is(err, identity.ErrKeyFileMode) || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Fatalf("privacy key of mode 0644: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := loadHome(t, home, nil, nil); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "privacyKey: ") {
		t.Fatalf("config.json names a missing privacy key: %v", err)
	}
	// config.json naming none: the default file may be missing.
	hc, err := LoadHomeConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	hc.PrivacyKey = ""
	if err := hc.Write(home); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(home, ConfigFile))
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m["privacyKey"] != nil {
		t.Fatalf("config.json still names a privacy key: %s", raw)
	}
	var logs bytes.Buffer
	cfg, err := loadHome(t, home, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PrivacyKey != nil {
		t.Fatal("a privacy key from nowhere")
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("node without a privacy key: %v", err)
	}
	n.Stop()
	if c := strings.Count(logs.String(), "takes no part in private transactions"); c != 1 {
		t.Fatalf("the node said %d times that it takes no part in private transactions:\n%s", c, logs.String())
	}
}

// TestJoinWritesPrivacyKey: join makes the newcomer's privacy key: its
// public key file and identity in join.json for the AddOrganization
// proposal, the private key in the node home, which loads it.
func TestJoinWritesPrivacyKey(t *testing.T) {
	dir, _, _ := initPrivacyNetwork(t, nil)
	ports := freePortBase(t, 2)
	jr, err := Join(JoinOptions{Genesis: filepath.Join(dir, GenesisFile), Peers: filepath.Join(dir, PeersFile), Org: "newco",
		Dir: filepath.Join(dir, "newco"), RPCPort: ports, P2PPort: ports + 1, Password: []byte("pw")})
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(jr.PrivacyKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := privacy.ParsePublicKeyText(text)
	if err != nil || pub.Identity().String() != jr.PrivacyKey {
		t.Fatalf("privacy.pub %v, identity %s, join says %s", err, pub.Identity(), jr.PrivacyKey)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "newco", "join.json"))
	var j JoinResult
	if err := json.Unmarshal(raw, &j); err != nil || j.PrivacyKey != jr.PrivacyKey || j.PrivacyKeyFile != jr.PrivacyKeyFile {
		t.Fatalf("join.json %s: %v", raw, err)
	}
	cfg, err := loadHome(t, jr.Home, []byte("pw"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PrivacyKey == nil || !cfg.PrivacyKey.Public().Equal(pub) {
		t.Fatal("the new node does not load its organization's privacy key")
	}
	// Not admitted yet: the node's registry does not know it, and it starts.
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("a joining node with its privacy key: %v", err)
	}
	n.Stop()
}
