package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/charter-ledger/charter/internal/auth/oidctest"
	"github.com/charter-ledger/charter/internal/node"
)

// TestAccess runs a node of an init network, as an operator would: its
// API requires a credential and serves TLS. An application of org0 gets
// a token from the node's built-in issuer, reads over JSON-RPC and REST,
// is refused what its role does not allow, and is cut off when revoked;
// a token of the organization's own OpenID Connect provider works too,
// and forged ones do not.
func TestAccess(t *testing.T) {
	dir := t.TempDir()
	base := freePortBase(t, 3)
	charter(t, false, "init", "--validators", "1", "--consensus", "raft", "--out", dir,
		"--rpc.port", strconv.Itoa(base), "--p2p.port", strconv.Itoa(base+1), "--metrics.port", strconv.Itoa(base+2))
	home := filepath.Join(dir, "node0")
	caFile := filepath.Join(dir, "orgs", "org0", "ca.crt")

	// The organization's identity provider, configured in the node's api
	// section.
	idp := oidctest.Start(t, oidctest.Options{Audience: "charter-api"})
	cfg, err := node.LoadHomeConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.API == nil || cfg.API.Auth != node.APIRequired || !cfg.API.TLS {
		t.Fatalf("init wrote api %+v, want authentication required over TLS", cfg.API)
	}
	cfg.API.OIDC = []node.HomeOIDC{{Org: "org0", Issuer: idp.URL, Audience: "charter-api", MaxRoles: []string{"read"}}}
	if err := cfg.Write(home); err != nil {
		t.Fatal(err)
	}

	logf, err := os.Create(filepath.Join(home, "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(charterBin, "node", "--home", home)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	api := "https://127.0.0.1:" + strconv.Itoa(base)

	do := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, api+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b)
	}
	rpcBody := func(method string, params ...any) string {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
		return string(b)
	}
	waitFor(t, 30*time.Second, "the node answers over TLS", func() bool {
		st, _ := do("POST", "/", "", rpcBody("eth_chainId"))
		return st == http.StatusUnauthorized
	})

	// No credential: refused, with the JSON-RPC error ethers shows.
	if st, body := do("POST", "/", "", rpcBody("eth_blockNumber")); st != 401 || !strings.Contains(body, "-32001") {
		t.Fatalf("no token: %d %s", st, body)
	}

	// The built-in issuer: an application with read only.
	var client struct{ ID, Secret string }
	if err := json.Unmarshal([]byte(charter(t, false, "client", "add", "--home", home, "--name", "reports", "--roles", "read", "--json")), &client); err != nil || client.ID == "" || client.Secret == "" {
		t.Fatalf("charter client add --json: %+v %v", client, err)
	}
	tokenOf := func(id, secret string) (int, string) {
		form := url.Values{"grant_type": {"client_credentials"}}
		req, _ := http.NewRequest("POST", api+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		raw, _ := io.ReadAll(resp.Body)
		json.Unmarshal(raw, &tr)
		if tr.AccessToken == "" {
			return resp.StatusCode, string(raw)
		}
		return resp.StatusCode, tr.AccessToken
	}
	// The node rereads its clients within a second of a change; until
	// then the client is unknown. Asked every half second, so that the
	// failures stay below the issuer's lockout.
	var tok string
	for i := 0; ; i++ {
		st, got := tokenOf(client.ID, client.Secret)
		if st == 200 {
			tok = got
			break
		}
		if i == 8 {
			t.Fatalf("no token for the new client after 4 s: %d %s", st, got)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if st, body := tokenOf(client.ID, client.Secret+"x"); st != 401 || !strings.Contains(body, "invalid_client") {
		t.Fatalf("wrong secret: %d %s", st, body)
	}
	if st, body := do("POST", "/", tok, rpcBody("eth_blockNumber")); st != 200 || !strings.Contains(body, `"result"`) {
		t.Fatalf("eth_blockNumber with a read token: %d %s", st, body)
	}
	if st, body := do("GET", "/api/v1/accounts/0x0000000000000000000000000000000000000400/balance", tok, ""); st != 200 || !strings.Contains(body, `"balance"`) {
		t.Fatalf("REST balance with a read token: %d %s", st, body)
	}
	if st, body := do("POST", "/", tok, rpcBody("eth_sendRawTransaction", "0x00")); st != 200 || !strings.Contains(body, "-32003") || !strings.Contains(body, "needs role write") {
		t.Fatalf("eth_sendRawTransaction with a read token: %d %s", st, body)
	}
	if st, body := do("POST", "/api/v1/transactions", tok, `{"raw":"0x00"}`); st != 403 || !strings.Contains(body, "needs role write") {
		t.Fatalf("REST submit with a read token: %d %s", st, body)
	}
	// The CLI with the token.
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := charter(t, false, "members", "--rpc", api, "--token-file", tokFile, "--tls.ca", caFile); !strings.Contains(out, "org0") {
		t.Fatalf("charter members with the token: %s", out)
	}
	if out := charter(t, true, "members", "--rpc", api, "--tls.ca", caFile); !strings.Contains(out, "refused the credential") {
		t.Fatalf("charter members without a token: %s", out)
	}

	// The organization's own provider.
	good := idp.Token(map[string]any{"roles": []string{"read"}})
	if st, body := do("POST", "/", good, rpcBody("eth_blockNumber")); st != 200 || !strings.Contains(body, `"result"`) {
		t.Fatalf("eth_blockNumber with the provider's token: %d %s", st, body)
	}
	for name, bad := range map[string]string{
		"wrong audience": idp.Token(map[string]any{"aud": "someone-else"}),
		"expired":        idp.Token(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}),
		"tampered":       good[:len(good)-4] + "AAAA",
		"alg none":       "eyJhbGciOiJub25lIn0." + strings.Split(good, ".")[1] + ".",
	} {
		if st, body := do("POST", "/", bad, rpcBody("eth_blockNumber")); st != 401 {
			t.Errorf("%s token: %d %s, want 401", name, st, body)
		}
	}

	// A read of private data goes to the private-reads log as well.
	if st, body := do("POST", "/", tok, rpcBody("priv_findPrivacyGroup", []string{})); st != 200 || strings.Contains(body, "-32003") {
		t.Fatalf("priv_findPrivacyGroup with a read token of the node's organization: %d %s", st, body)
	}

	// Revoked: its token stops working within a second or so.
	charter(t, false, "client", "revoke", "--home", home, client.ID)
	waitFor(t, 10*time.Second, "the revoked client's token is refused", func() bool {
		st, _ := do("POST", "/", tok, rpcBody("eth_blockNumber"))
		return st == http.StatusForbidden || st == http.StatusUnauthorized
	})

	// The access log names the caller and the method, never the token.
	logData, err := os.ReadFile(filepath.Join(home, "data", "logs", "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(logData, []byte(client.ID)) || !bytes.Contains(logData, []byte("eth_sendRawTransaction")) {
		t.Errorf("access log lacks the caller or the method:\n%s", logData)
	}
	if bytes.Contains(logData, []byte(tok)) || bytes.Contains(logData, []byte(client.Secret)) {
		t.Error("the access log holds a token or a secret")
	}
	privData, err := os.ReadFile(filepath.Join(home, "data", "logs", "private-reads.log"))
	if err != nil || !bytes.Contains(privData, []byte("priv_findPrivacyGroup")) || !bytes.Contains(privData, []byte(client.ID)) {
		t.Errorf("private-reads.log lacks the private read (%v):\n%s", err, privData)
	}
}
