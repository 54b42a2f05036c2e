package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/keystore"
	"github.com/charter-ledger/charter/internal/node"
)

// keysHome writes a node home whose config.json names the data
// directory "data"; the other files are not read by charter keys.
func keysHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	cfg := node.HomeConfig{Name: "node0", Org: "org1", Genesis: "genesis.json", DataDir: "data", NodeKey: "nodekey",
		TLSCert: "tls/node.crt", TLSKey: "tls/node.key", RPCAddr: "127.0.0.1:8545", P2PAddr: "127.0.0.1:30303"}
	if err := cfg.Write(home); err != nil {
		t.Fatal(err)
	}
	return home
}

func writeSecretIn(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func listKeys(t *testing.T, home string) ([]keystore.Info, string) {
	t.Helper()
	out := mustRun(t, "keys", "list", "--home", home, "--json")
	var infos []keystore.Info
	decodeJSON(t, out, &infos)
	return infos, out
}

// storedKeyHex decrypts a key file's key, to check that no output holds it.
func storedKeyHex(t *testing.T, file string, pw []byte) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Key string }
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	key, err := identity.DecodeNodeKeyPEM([]byte(f.Key), pw)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(crypto.FromECDSA(key))
}

// TestKeysAddListRotate: charter keys add makes a key in DATA/keystore
// and says what its account needs; list shows it without key material;
// rotate makes version 2 current and keeps version 1 retired; the
// password comes from --password-file or the environment.
func TestKeysAddListRotate(t *testing.T) {
	t.Setenv(keystore.EnvPassword, "")
	home := keysHome(t)
	pwFile := writeSecretIn(t, t.TempDir(), "pw", "s3cret")
	dir := filepath.Join(home, "data", keystore.DirName)

	if out := mustRun(t, "keys", "list", "--home", home); !strings.Contains(out, "No keys in "+dir) {
		t.Fatalf("list of an empty keystore:\n%s", out)
	}
	if infos, _ := listKeys(t, home); len(infos) != 0 {
		t.Fatalf("list --json of an empty keystore: %+v", infos)
	}

	out := mustRun(t, "keys", "add", "payments", "--home", home, "--password-file", pwFile)
	infos, listed := listKeys(t, home)
	if len(infos) != 1 || infos[0].ID != "payments" || infos[0].Version != 1 || !infos[0].Current() ||
		infos[0].File != filepath.Join(dir, "payments.v1.json") {
		t.Fatalf("list after add: %+v", infos)
	}
	v1 := infos[0]
	for _, want := range []string{"New key payments (version 1): address " + v1.Address.Hex(),
		"charter members set-roles " + v1.Address.Hex() + " write", "restart"} {
		if !strings.Contains(out, want) {
			t.Fatalf("add does not say %q:\n%s", want, out)
		}
	}
	secret1 := storedKeyHex(t, v1.File, []byte("s3cret"))

	out = mustRun(t, "keys", "rotate", "payments", "--home", home, "--password-file", pwFile)
	infos, listed2 := listKeys(t, home)
	if len(infos) != 2 || infos[0].Address != v1.Address || infos[0].Current() || infos[1].Version != 2 || !infos[1].Current() ||
		!infos[0].Retired.Equal(infos[1].Created) {
		t.Fatalf("list after rotate: %+v", infos)
	}
	v2 := infos[1]
	for _, want := range []string{"version 2, address " + v2.Address.Hex() + ", is current",
		"Version 1, address " + v1.Address.Hex() + ", is retired", "charter members set-roles " + v2.Address.Hex() + " write"} {
		if !strings.Contains(out, want) {
			t.Fatalf("rotate does not say %q:\n%s", want, out)
		}
	}
	table := mustRun(t, "keys", "list", "--home", home)
	if !strings.Contains(table, "ID") || strings.Count(table, "payments") != 2 || !strings.Contains(table, v2.Address.Hex()) {
		t.Fatalf("list:\n%s", table)
	}
	secret2 := storedKeyHex(t, v2.File, []byte("s3cret"))
	for _, text := range []string{listed, listed2, table, out} {
		for _, secret := range []string{secret1, secret2} {
			if strings.Contains(strings.ToLower(text), secret) {
				t.Fatalf("output holds a private key:\n%s", text)
			}
		}
		if strings.Contains(text, "ENCRYPTED") {
			t.Fatalf("output holds a sealed key:\n%s", text)
		}
	}

	// The password from the environment; an imported key.
	t.Setenv(keystore.EnvPassword, "s3cret")
	src := t.TempDir()
	imported, _ := crypto.GenerateKey()
	keyFile := filepath.Join(src, "app.key")
	if err := identity.SaveNodeKey(keyFile, imported, []byte("filepw")); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, "keys", "add", "treasury", "--home", home, "--import", keyFile, "--import-password-file", writeSecretIn(t, src, "filepw", "filepw"))
	if addr := crypto.PubkeyToAddress(imported.PublicKey); !strings.Contains(out, "Imported key treasury (version 1): address "+addr.Hex()) {
		t.Fatalf("import:\n%s", out)
	}
	s, err := keystore.Open(dir, []byte("s3cret"), keystore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cur, ok := s.Current("payments"); !ok || cur.Address != v2.Address {
		t.Fatalf("current payments key %+v", cur)
	}
	if len(s.List()) != 3 {
		t.Fatalf("store: %+v", s.List())
	}
}

// TestKeysErrors: each mistake is one line naming the flag or file and
// the fix.
func TestKeysErrors(t *testing.T) {
	t.Setenv(keystore.EnvPassword, "")
	home := keysHome(t)
	tmp := t.TempDir()
	pwFile := writeSecretIn(t, tmp, "pw", "s3cret")
	wrongPw := writeSecretIn(t, tmp, "wrong", "nope")
	mustRun(t, "keys", "add", "payments", "--home", home, "--password-file", pwFile)
	file := filepath.Join(home, "data", keystore.DirName, "payments.v1.json")
	keyFile := filepath.Join(tmp, "app.key")
	k, _ := crypto.GenerateKey()
	if err := identity.SaveNodeKey(keyFile, k, []byte("filepw")); err != nil {
		t.Fatal(err)
	}
	for want, args := range map[string][]string{
		"--password-file is required":                          {"keys", "add", "other", "--home", home},
		"wrong password for keystore file " + file:             {"keys", "add", "other", "--home", home, "--password-file", wrongPw},
		"wrong password for keystore file " + file + ": one p": {"keys", "rotate", "payments", "--home", home, "--password-file", wrongPw},
		"key exists":         {"keys", "add", "payments", "--home", home, "--password-file", pwFile},
		"--home is required": {"keys", "list"},
		"--home: " + filepath.Join(tmp, "config.json"): {"keys", "list", "--home", tmp},
		"invalid key id \"Pay\"":                       {"keys", "add", "Pay", "--home", home, "--password-file", pwFile},
		"no key \"other\"":                             {"keys", "rotate", "other", "--home", home, "--password-file", pwFile},
		"missing arguments":                            {"keys", "add", "--home", home},
		"--import " + keyFile + ": the file is encrypted; give its password with --import-password-file": {"keys", "add", "app", "--home", home, "--password-file", pwFile, "--import", keyFile},
		"--import " + keyFile + ": wrong password":                                                       {"keys", "add", "app", "--home", home, "--password-file", pwFile, "--import", keyFile, "--import-password-file", wrongPw},
		"--import-password-file is given without --import":                                               {"keys", "add", "app", "--home", home, "--password-file", pwFile, "--import-password-file", wrongPw},
		"unknown subcommand \"remove\"":                                                                  {"keys", "remove", "payments"},
	} {
		mustFail(t, want, args...)
	}
	if infos, _ := listKeys(t, home); len(infos) != 1 {
		t.Fatalf("a failed command changed the keystore: %+v", infos)
	}
}

// TestKeysMove: what a retired key's account holds is moved to the
// current version's account, all of it but the fee; the current version
// and versions that do not exist are refused.
func TestKeysMove(t *testing.T) {
	t.Setenv(keystore.EnvPassword, "s3cret")
	dn := startDevNode(t)
	home := keysHome(t)
	spec, err := chain.DevSpec(chain.DefaultChainID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	genesis, err := spec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "genesis.json"), genesis, 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "keys", "add", "payments", "--home", home)
	infos, _ := listKeys(t, home)
	v1 := infos[0].Address
	mustRun(t, "send", "--to", v1.Hex(), "--value", "2", "--key", dn.key, "--rpc", dn.url)
	mustRun(t, "keys", "rotate", "payments", "--home", home)
	infos, _ = listKeys(t, home)
	v2 := infos[1].Address

	mustFail(t, "--version 2 is key payments's current version", "keys", "move", "payments", "--version", "2", "--value", "all", "--home", home, "--rpc", dn.url)
	mustFail(t, "--version 3: key \"payments\" has no such version", "keys", "move", "payments", "--version", "3", "--value", "all", "--home", home, "--rpc", dn.url)
	mustFail(t, "--value is required", "keys", "move", "payments", "--version", "1", "--home", home, "--rpc", dn.url)

	out := mustRun(t, "keys", "move", "payments", "--version", "1", "--value", "all", "--home", home, "--rpc", dn.url)
	fee := new(big.Int).Mul(big.NewInt(21000), new(big.Int).Add(spec.BaseFeeWei(), spec.MinGasPriceWei()))
	want := new(big.Int).Sub(new(big.Int).Mul(big.NewInt(2), big.NewInt(params.Ether)), fee)
	if !strings.Contains(out, "moved "+want.String()+" wei from key payments version 1 ("+v1.Hex()+") to "+v2.Hex()) {
		t.Fatalf("move:\n%s", out)
	}
	ctx := context.Background()
	for addr, wantBal := range map[common.Address]*big.Int{v1: new(big.Int), v2: want} {
		bal, err := dn.client.BalanceAt(ctx, addr, nil)
		if err != nil || bal.Cmp(wantBal) != 0 {
			t.Fatalf("balance of %s: %v (%v), want %v", addr.Hex(), bal, err, wantBal)
		}
	}
	mustFail(t, "nothing to move", "keys", "move", "payments", "--version", "1", "--value", "all", "--home", home, "--rpc", dn.url)
}
