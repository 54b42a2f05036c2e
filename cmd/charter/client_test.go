package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charter-ledger/charter/internal/auth/issuer"
	"github.com/charter-ledger/charter/internal/node"
)

// clientHomeDir writes a node home whose config names organization org1
// and the data directory "data".
func clientHomeDir(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	cfg := node.HomeConfig{Name: "node0", Org: "org1", Genesis: "genesis.json", DataDir: "data", NodeKey: "nodekey",
		TLSCert: "node0.crt", TLSKey: "node0.key", RPCAddr: "127.0.0.1:8545", P2PAddr: "127.0.0.1:30303"}
	if err := cfg.Write(home); err != nil {
		t.Fatal(err)
	}
	return home
}

// TestClientCommands: 'charter client add' registers a client in the
// home's data directory and prints its secret once, which then gets a
// token from the node's issuer; list never shows a hash; revoke marks it
// once; errors name the flag.
func TestClientCommands(t *testing.T) {
	home := clientHomeDir(t)
	out := mustRun(t, "client", "add", "--home", home, "--name", "billing", "--roles", "read,write", "--keys", "k1,k2", "--json")
	var added clientView
	if err := json.Unmarshal([]byte(out), &added); err != nil {
		t.Fatalf("add --json: %v\n%s", err, out)
	}
	if !strings.HasPrefix(added.ID, "org1-billing-") || added.Org != "org1" || strings.Join(added.Roles, ",") != "read,write" ||
		strings.Join(added.Keys, ",") != "k1,k2" || len(added.Secret) < 40 || added.Revoked != nil {
		t.Fatalf("added %+v", added)
	}
	path := filepath.Join(home, "data", issuer.AccessDir, issuer.ClientsFile)
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v", path, err)
	}

	// The secret printed gets a token from the node's issuer.
	iss, err := issuer.New(issuer.Config{URL: "https://127.0.0.1:8545", DataDir: filepath.Join(home, "data")})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, issuer.TokenPath, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(added.ID, added.Secret)
	w := httptest.NewRecorder()
	iss.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"access_token"`) {
		t.Fatalf("token request with the printed secret: %d %s", w.Code, w.Body)
	}

	text := mustRun(t, "client", "add", "--home", home, "--name", "audit", "--roles", "auditor", "--org", "regulator")
	for _, want := range []string{"Client regulator-audit-", " of regulator added to " + path, "roles  auditor", "keys   none", "shown this once"} {
		if !strings.Contains(text, want) {
			t.Fatalf("add does not say %q:\n%s", want, text)
		}
	}

	list := mustRun(t, "client", "list", "--home", home)
	if !strings.Contains(list, added.ID) || !strings.Contains(list, "regulator-audit-") || strings.Contains(list, "argon2") ||
		strings.Contains(list, added.Secret) {
		t.Fatalf("list:\n%s", list)
	}
	raw := mustRun(t, "client", "list", "--home", home, "--json")
	var views []clientView
	if err := json.Unmarshal([]byte(raw), &views); err != nil || len(views) != 2 || strings.Contains(raw, "argon2") ||
		strings.Contains(raw, "secret") {
		t.Fatalf("list --json: %v\n%s", err, raw)
	}

	if out := mustRun(t, "client", "revoke", "--home", home, added.ID); !strings.Contains(out, "Client "+added.ID+" of org1 revoked") {
		t.Fatalf("revoke: %s", out)
	}
	if out := mustRun(t, "client", "revoke", added.ID, "--home", home); !strings.Contains(out, "was revoked already") {
		t.Fatalf("second revoke: %s", out)
	}
	raw = mustRun(t, "client", "list", "--home", home, "--json")
	json.Unmarshal([]byte(raw), &views)
	if views[0].Revoked == nil || views[1].Revoked != nil {
		t.Fatalf("after revoke: %s", raw)
	}

	mustFail(t, "--home is required", "client", "list")
	mustFail(t, "--home: "+filepath.Join(home, "nope", "config.json")+" does not exist", "client", "list", "--home", filepath.Join(home, "nope"))
	mustFail(t, "--name is required", "client", "add", "--home", home, "--roles", "read")
	mustFail(t, "--roles is required", "client", "add", "--home", home, "--name", "x")
	mustFail(t, `--roles: unknown role "root"`, "client", "add", "--home", home, "--name", "x", "--roles", "read,root")
	mustFail(t, "--name: name \"a b\"", "client", "add", "--home", home, "--name", "a b", "--roles", "read")
	mustFail(t, "--keys: keys[1]", "client", "add", "--home", home, "--name", "x", "--roles", "read", "--keys", "k,k")
	mustFail(t, `no client "org1-none-00"`, "client", "revoke", "--home", home, "org1-none-00")
	mustFail(t, "missing arguments; usage: charter client revoke --home HOME ID", "client", "revoke", "--home", home)
	mustFail(t, `unknown subcommand "remove"`, "client", "remove")
}
