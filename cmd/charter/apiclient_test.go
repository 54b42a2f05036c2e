package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/identity"
)

// goodToken is the token the test node accepts. Its refusal of any other
// token quotes the token it was given, as a careless node might: the
// client must not print it.
const goodToken = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhcHAifQ.c2lnbmF0dXJl"

// testNode is an https:// and wss:// JSON-RPC endpoint on 127.0.0.1 with
// a certificate from its organization's CA, requiring the bearer token
// goodToken and, if asked, a client certificate from clientCA.
type testNode struct {
	url    string // https://127.0.0.1:PORT
	caFile string // its organization's CA certificate
	// requests with the right token and without it
	authorized, refused atomic.Int64
}

type testEth struct{}

func (testEth) ChainId() *hexutil.Big       { return (*hexutil.Big)(big.NewInt(4242)) }
func (testEth) BlockNumber() hexutil.Uint64 { return 7 }

func startTestNode(t *testing.T, clientCA *identity.CA) *testNode {
	t.Helper()
	dir := t.TempDir()
	ca, err := identity.NewRootCA("org1", identity.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.IssueNode("node0", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := identity.TLSCertificate(key, cert, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{caFile: filepath.Join(dir, "ca.crt")}
	if err := identity.WriteCertFile(n.caFile, ca.Cert); err != nil {
		t.Fatal(err)
	}
	srv := gethrpc.NewServer()
	if err := srv.RegisterName("eth", testEth{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	ws := srv.WebsocketHandler([]string{"*"})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer "+goodToken {
			n.refused.Add(1)
			desc := "no bearer token"
			if got != "" {
				desc = "token " + strings.TrimPrefix(got, "Bearer ") + " is not valid"
			}
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+desc+`"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"`+desc+`"}}`)
			return
		}
		n.authorized.Add(1)
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			ws.ServeHTTP(w, r)
			return
		}
		srv.ServeHTTP(w, r)
	})
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{tc}, MinVersion: tls.VersionTLS12}
	if clientCA != nil {
		pool := x509.NewCertPool()
		pool.AddCert(clientCA.Cert)
		ts.TLS.ClientAuth, ts.TLS.ClientCAs = tls.RequireAndVerifyClientCert, pool
	}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	n.url = ts.URL
	return n
}

// wsURL is the node's wss:// address.
func (n *testNode) wsURL() string { return "wss://" + strings.TrimPrefix(n.url, "https://") }

// writeSecret writes a 0600 file.
func writeSecret(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// chainIDVia parses args as a command's node flags, dials and reads
// eth_chainId and eth_blockNumber.
func chainIDVia(args ...string) (uint64, error) {
	fs := newFlagSet("test", io.Discard)
	nf := addNodeFlags(fs)
	if err := parse(fs, args); err != nil {
		return 0, err
	}
	var id hexutil.Uint64
	if _, err := nf.query(&id, "eth_chainId"); err != nil {
		return 0, err
	}
	c, err := nf.dial()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	var height hexutil.Uint64
	if _, err := c.callInto(&height, "eth_blockNumber"); err != nil {
		return 0, err
	}
	if height != 7 {
		return 0, errUsage
	}
	return uint64(id), nil
}

// Over https:// and wss://, the right token and CA reach the node; a
// missing or wrong token, or no CA, give the one line that says what to
// pass, and the token is never in it.
func TestAPIAccessTokenAndCA(t *testing.T) {
	t.Setenv(TokenEnv, "")
	n := startTestNode(t, nil)
	tokenFile := writeSecret(t, "token", goodToken+"\n")
	wrongFile := writeSecret(t, "wrong", "wrong.token.value\n")
	for _, url := range []string{n.url, n.wsURL()} {
		t.Run(url[:strings.Index(url, ":")], func(t *testing.T) {
			id, err := chainIDVia("--rpc", url, "--tls.ca", n.caFile, "--token-file", tokenFile)
			if err != nil || id != 4242 {
				t.Fatalf("with token and CA: chain id %d, %v", id, err)
			}
			if _, err := chainIDVia("--rpc", url, "--tls.ca", n.caFile, "--token", goodToken); err != nil {
				t.Fatalf("with --token: %v", err)
			}
			for _, c := range []struct {
				name string
				args []string
				want string
			}{
				{"no token", []string{"--tls.ca", n.caFile},
					"the node at " + url + " refused the credential: no bearer token; pass --token or --token-file"},
				{"wrong token", []string{"--tls.ca", n.caFile, "--token-file", wrongFile},
					"the node at " + url + " refused the credential: token [token] is not valid; pass --token or --token-file"},
				{"no CA", []string{"--token-file", tokenFile},
					"the node at " + url + " presents a certificate issued by \"org1 Root CA\", which this client does not trust; pass --tls.ca with the organization's CA certificate"},
			} {
				_, err := chainIDVia(append([]string{"--rpc", url}, c.args...)...)
				if err == nil || err.Error() != c.want {
					t.Errorf("%s: %v\nwant %s", c.name, err, c.want)
				}
			}
		})
	}
	// The CLI prints the refusal as its one line, without the token.
	line := mustFail(t, "refused the credential", "members", "--rpc", n.url, "--tls.ca", n.caFile, "--token-file", wrongFile)
	if want := "charter members: the node at " + n.url + " refused the credential: token [token] is not valid; pass --token or --token-file"; line != want {
		t.Fatalf("stderr %q\nwant   %q", line, want)
	}
	if n.authorized.Load() == 0 || n.refused.Load() == 0 {
		t.Fatalf("the node saw %d authorized and %d refused requests", n.authorized.Load(), n.refused.Load())
	}
}

// The scheme must match what the node serves: http:// to a TLS node and
// https:// to a plain one each get the line that says which to use.
func TestAPIAccessSchemeMismatch(t *testing.T) {
	n := startTestNode(t, nil)
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	httpURL := "http://" + strings.TrimPrefix(n.url, "https://")
	if _, err := chainIDVia("--rpc", httpURL, "--token", goodToken); err == nil || !strings.Contains(err.Error(), "serves TLS; use https://") {
		t.Errorf("http:// to a TLS node: %v", err)
	}
	httpsURL := "https://" + strings.TrimPrefix(plain.URL, "http://")
	if _, err := chainIDVia("--rpc", httpsURL, "--token", goodToken); err == nil || !strings.Contains(err.Error(), "does not answer TLS; use http://") {
		t.Errorf("https:// to a plain node: %v", err)
	}
	// TLS flags with a plain URL are a mistake: the token would go in clear
	// to a node the user meant to verify.
	if _, err := chainIDVia("--rpc", httpURL, "--tls.ca", n.caFile); err == nil || !strings.Contains(err.Error(), "--tls.ca is for https:// and wss:// nodes") {
		t.Errorf("--tls.ca with http://: %v", err)
	}
}

// A node that requires a client certificate: none gives the line naming
// --tls.cert; one from another CA is refused; one from the trusted CA,
// with an encrypted key and its password file, gets through.
func TestAPIAccessClientCertificate(t *testing.T) {
	clientCA, err := identity.NewRootCA("org1", identity.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := identity.NewRootCA("stranger", identity.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := startTestNode(t, clientCA)
	dir := t.TempDir()
	issue := func(ca *identity.CA, name, password string) (certFile, keyFile string) {
		cert, key, err := ca.IssueClient(name, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		if err := identity.WriteKeyFile(keyFile, key, []byte(password)); err != nil {
			t.Fatal(err)
		}
		if err := identity.WriteCertFile(certFile, cert, ca.Cert); err != nil {
			t.Fatal(err)
		}
		return certFile, keyFile
	}
	goodCert, goodKey := issue(clientCA, "app", "s3cret")
	pwFile := writeSecret(t, "pw", "s3cret\n")
	badCert, badKey := issue(otherCA, "intruder", "")
	base := []string{"--tls.ca", n.caFile, "--token", goodToken}
	for _, url := range []string{n.url, n.wsURL()} {
		t.Run(url[:strings.Index(url, ":")], func(t *testing.T) {
			if _, err := chainIDVia(append([]string{"--rpc", url, "--tls.cert", goodCert, "--tls.key", goodKey, "--tls.key-password-file", pwFile}, base...)...); err != nil {
				t.Fatalf("with the client certificate: %v", err)
			}
			_, err := chainIDVia(append([]string{"--rpc", url}, base...)...)
			if err == nil || !strings.HasPrefix(err.Error(), "the node at "+url+" requires a client certificate") || !strings.Contains(err.Error(), "pass --tls.cert and --tls.key") {
				t.Errorf("without a client certificate: %v", err)
			}
			_, err = chainIDVia(append([]string{"--rpc", url, "--tls.cert", badCert, "--tls.key", badKey}, base...)...)
			if err == nil || !strings.HasPrefix(err.Error(), "the node at "+url+" refused the client certificate "+badCert) {
				t.Errorf("with a certificate of another CA: %v", err)
			}
		})
	}
	if _, err := chainIDVia(append([]string{"--rpc", n.url, "--tls.cert", goodCert, "--tls.key", goodKey}, base...)...); err == nil || !strings.Contains(err.Error(), "give --tls.key-password-file") {
		t.Errorf("encrypted key without its password: %v", err)
	}
	if _, err := chainIDVia(append([]string{"--rpc", n.url, "--tls.cert", goodCert}, base...)...); err == nil || !strings.Contains(err.Error(), "--tls.cert and --tls.key go together") {
		t.Errorf("--tls.cert alone: %v", err)
	}
}

// The token comes from --token, else --token-file's first line, else
// CHARTER_TOKEN; both flags at once, an empty first line, a file others
// may read or a value that is not a bearer token are refused, and no
// error quotes the value.
func TestAccessTokenSources(t *testing.T) {
	good := writeSecret(t, "good", "  file.token  \r\nsecond line\n")
	empty := writeSecret(t, "empty", "\nfile.token\n")
	bad := writeSecret(t, "bad", "has space inside\n")
	open := filepath.Join(t.TempDir(), "open")
	if err := os.WriteFile(open, []byte("open.token\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{TokenEnv: "env.token"}
	for _, c := range []struct {
		args    []string
		env     map[string]string
		token   string
		wantErr string
	}{
		{nil, nil, "", ""},
		{nil, env, "env.token", ""},
		{[]string{"--token", "flag.token"}, env, "flag.token", ""},
		{[]string{"--token-file", good}, env, "file.token", ""},
		{[]string{"--token", "flag.token", "--token-file", good}, env, "", "--token and --token-file both give the token; give one"},
		{[]string{"--token-file", empty}, env, "", "--token-file " + empty + ": the first line is empty"},
		{[]string{"--token-file", open}, env, "", "--token-file " + open + " may be read by group or others; run chmod 600 " + open},
		{[]string{"--token-file", bad}, nil, "", "--token-file " + bad + ": not a bearer token"},
		{[]string{"--token", "Bearer abc"}, nil, "", "--token: give the token alone, without the word Bearer"},
		{nil, map[string]string{TokenEnv: "a\"b"}, "", TokenEnv + ": not a bearer token"},
	} {
		fs := newFlagSet("test", io.Discard)
		af := addAccessFlags(fs)
		if err := parse(fs, c.args); err != nil {
			t.Fatal(err)
		}
		a, err := af.accessEnv(func(k string) string { return c.env[k] })
		switch {
		case c.wantErr != "":
			if err == nil || !strings.HasPrefix(err.Error(), c.wantErr) {
				t.Errorf("%q env %v: %v, want %q", c.args, c.env, err, c.wantErr)
			} else if strings.Contains(err.Error(), "has space") || strings.Contains(err.Error(), "abc") {
				t.Errorf("%q: the error quotes the value: %v", c.args, err)
			}
		case err != nil:
			t.Errorf("%q env %v: %v", c.args, c.env, err)
		case a.token != c.token:
			t.Errorf("%q env %v: token %q, want %q", c.args, c.env, a.token, c.token)
		}
	}
}

// The flags are the ones documented, and none turns verification off.
func TestAccessFlags(t *testing.T) {
	fs := newFlagSet("test", io.Discard)
	addNodeFlags(fs)
	for _, name := range []string{"rpc", "token", "token-file", "tls.ca", "tls.cert", "tls.key", "tls.key-password-file"} {
		if fs.Lookup(name) == nil {
			t.Errorf("no --%s", name)
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if strings.Contains(f.Name, "insecure") || strings.Contains(f.Name, "skip") {
			t.Errorf("--%s: verification of the node's certificate is not optional", f.Name)
		}
	})
	a, err := (&accessFlags{token: new(string), tokenFile: new(string), caFile: new(string), certFile: new(string), keyFile: new(string), keyPwFile: new(string)}).accessEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	tr := a.http.Transport.(*refusalTransport).base.(*http.Transport)
	if tr.TLSClientConfig.InsecureSkipVerify || a.ws.TLSClientConfig.InsecureSkipVerify || tr.MaxIdleConnsPerHost != maxIdleConnsPerHost {
		t.Fatalf("transport %+v", tr)
	}
}

// charter bench dials every endpoint with the token and the CA: the node
// sees only authorized requests; without the token the run stops at the
// first request with the refusal's line.
func TestBenchCarriesAccess(t *testing.T) {
	t.Setenv(TokenEnv, "")
	n := startTestNode(t, nil)
	tokenFile := writeSecret(t, "token", goodToken+"\n")
	bench := []string{"bench", "--rpc", n.url + "," + n.wsURL(), "--tls.ca", n.caFile, "--txs", "1", "--senders", "1", "--timeout", "5s"}
	code, _, stderr := charter(append(bench, "--token-file", tokenFile)...)
	// The test node answers eth_chainId only, so the run stops after it.
	if code == 0 || strings.Contains(stderr, "refused") || strings.Contains(stderr, "--tls.ca") {
		t.Fatalf("bench with the token: exit %d, %s", code, stderr)
	}
	if n.authorized.Load() < 2 || n.refused.Load() != 0 {
		t.Fatalf("the node saw %d authorized and %d refused requests", n.authorized.Load(), n.refused.Load())
	}
	// Every endpoint is dialed before any load: the WebSocket's handshake
	// is the first request.
	mustFail(t, "charter bench: the node at "+n.wsURL()+" refused the credential: no bearer token; pass --token or --token-file", bench...)
}

// charter bench --net DIR trusts the CAs of the network's organizations
// (NET/orgs/*/ca.crt) when --tls.ca is not given.
func TestBenchNetTrustsOrgCAs(t *testing.T) {
	t.Setenv(TokenEnv, "")
	n := startTestNode(t, nil)
	tokenFile := writeSecret(t, "token", goodToken+"\n")
	netDir := t.TempDir()
	ep, err := json.Marshal(Endpoints{ChainID: 4242, Nodes: []Endpoint{{Name: "node0", Org: "org1", RPC: n.url}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(netDir, EndpointsFile), ep, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"bench", "--net", netDir, "--token-file", tokenFile, "--txs", "1", "--senders", "1", "--timeout", "5s"}
	mustFail(t, "pass --tls.ca with the organization's CA certificate", args...)
	ca, err := os.ReadFile(n.caFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(netDir, "orgs", "org1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(netDir, "orgs", "org1", "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	before := n.authorized.Load()
	// The test node answers eth_chainId only, so the run stops after it.
	code, _, stderr := charter(args...)
	if code == 0 || strings.Contains(stderr, "--tls.ca") || strings.Contains(stderr, "refused") || n.authorized.Load() == before {
		t.Fatalf("bench --net with the organization's CA: exit %d, %s", code, stderr)
	}
}

// charter ca issue --client is --role client, and says what to give
// clients.
func TestCAIssueClient(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "ca", "init-org", "--org", "org1", "--out", dir)
	out := mustRun(t, "ca", "issue", "--ca", dir, "--client", "--name", "app")
	certFile, keyFile := filepath.Join(dir, "app.crt"), filepath.Join(dir, "app.key")
	if want := "--tls.cert " + certFile + " --tls.key " + keyFile + " --tls.ca " + filepath.Join(dir, "ca.crt"); !strings.Contains(out, want) {
		t.Fatalf("output %q does not say %q", out, want)
	}
	certs, err := identity.ReadCertFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if r := identity.RoleOf(certs[0]); r != identity.RoleClient {
		t.Fatalf("role %q", r)
	}
	mustFail(t, "--client and --role node disagree", "ca", "issue", "--ca", dir, "--client", "--role", "node", "--name", "x")
}

func TestAuthParam(t *testing.T) {
	for _, c := range []struct{ header, want string }{
		{`Bearer error="invalid_token", error_description="the token expired"`, "the token expired"},
		{`Bearer realm="charter",error_description="say \"hi\"\\",error="x"`, `say "hi"\`},
		{`Bearer error_description=bare_token, error=x`, "bare_token"},
		{`Basic realm="x", Bearer error_description = "spaced"`, "spaced"},
		{`Bearer error="invalid_token"`, ""},
		{`Bearer error_description="unterminated`, "unterminated"},
		{`Bearer abc==`, ""},
		{``, ""},
		{`error_description`, ""},
	} {
		if got := authParam(c.header, "error_description"); got != c.want {
			t.Errorf("%s: %q, want %q", c.header, got, c.want)
		}
	}
	if got := printable("a\x1b[31mred\n\tline" + strings.Repeat("x", 400)); strings.ContainsAny(got, "\x1b\n\t") || len([]rune(got)) != maxReasonRunes+1 {
		t.Fatalf("printable: %q", got)
	}
}

// FuzzAuthParam: any header from a node is read without a panic, in
// bounded time, into a value no longer than the header.
func FuzzAuthParam(f *testing.F) {
	for _, s := range []string{`Bearer error="invalid_token", error_description="expired"`, `Bearer x="\`, `=`, `"`, `a=b,c="d\"e"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		if v := authParam(header, "error_description"); len(v) > len(header) {
			t.Fatalf("%q gave %q", header, v)
		}
	})
}

// The refusal of a node that gives no WWW-Authenticate reason is its
// JSON-RPC error's message, else its status.
func TestRefusalReason(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		want   string
	}{
		{401, `{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"token expired"}}`, "the node at https://n:1 refused the credential: token expired; pass --token or --token-file"},
		{401, `not json`, "the node at https://n:1 refused the credential: 401 Unauthorized; pass --token or --token-file"},
		{403, `{"error":{"message":"organization org9 is not an active member"}}`, "the node at https://n:1 refused access: organization org9 is not an active member"},
		{403, `{"type":"urn:charter:problem:forbidden","title":"Not permitted","status":403,"detail":"not permitted: POST /api/v1/streams needs role admin"}`,
			"the node at https://n:1 refused access: not permitted: POST /api/v1/streams needs role admin"},
	} {
		resp := &http.Response{StatusCode: c.status, Status: strconv.Itoa(c.status) + " " + http.StatusText(c.status),
			Header: http.Header{}, Body: io.NopCloser(strings.NewReader(c.body))}
		err := refusal("https://n:1", resp, func(s string) string { return s })
		if err == nil || err.Error() != c.want {
			t.Errorf("%d %s: %v\nwant %s", c.status, c.body, err, c.want)
		}
	}
}
