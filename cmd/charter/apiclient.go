package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"

	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/gorilla/websocket"

	"github.com/charter-ledger/charter/internal/identity"
)

// How a command reaches a node's API: the bearer token it sends and the
// certificates it trusts and presents over TLS. Every command that talks
// to a node takes these flags (addAccessFlags) and dials through the
// apiAccess they give, so that a node that requires a credential or
// serves https:// and wss:// is reached the same way by all of them.
//
// There is deliberately no flag to skip verifying the node's certificate:
// a client that trusts any certificate sends its token to whoever answers.
// The fix for an unknown authority is --tls.ca.

// TokenEnv holds the bearer token when neither --token nor --token-file
// is given.
const TokenEnv = "CHARTER_TOKEN"

const (
	// maxTokenFileBytes bounds what is read of --token-file: a JWT with
	// many claims is a few KiB.
	maxTokenFileBytes = 64 << 10
	// maxIdleConnsPerHost is how many idle connections to one node are
	// kept for reuse: more than charter bench's submitting workers and
	// watcher per endpoint, so that a run over TLS does not pay a new
	// handshake per request (net/http keeps 2 by default).
	maxIdleConnsPerHost = 16
	// maxRefusalBodyBytes bounds what is read of a refusal's body.
	maxRefusalBodyBytes = 64 << 10
	// maxReasonRunes bounds the node's reason quoted in a refusal.
	maxReasonRunes = 300
)

// accessFlags are the flags of the token and the TLS configuration.
type accessFlags struct {
	token, tokenFile          *string
	caFile, certFile, keyFile *string
	keyPwFile                 *string
	// defaultCAs are certificate files trusted when --tls.ca is not given
	// (charter bench --net: the network's organization CAs); none: the
	// system's roots.
	defaultCAs []string
}

// addAccessFlags adds --token, --token-file, --tls.ca, --tls.cert,
// --tls.key and --tls.key-password-file to fs.
func addAccessFlags(fs *flag.FlagSet) *accessFlags {
	return &accessFlags{
		token:     fs.String("token", "", "bearer token for the node's API (other users of this machine may see it in the process list: prefer --token-file or "+TokenEnv+")"),
		tokenFile: fs.String("token-file", "", "file (mode 0600) whose first line is the bearer token for the node's API; without --token and --token-file, the environment variable "+TokenEnv+" is used"),
		caFile:    fs.String("tls.ca", "", "PEM certificates to trust for an https:// or wss:// node: its organization's CA certificate (e.g. NET/orgs/ORG/ca.crt) or the network's CA bundle; default: the system's roots"),
		certFile:  fs.String("tls.cert", "", "client certificate (PEM, leaf first) to present to the node, from 'charter ca issue --client'"),
		keyFile:   fs.String("tls.key", "", "the key file of --tls.cert"),
		keyPwFile: fs.String("tls.key-password-file", "", "password of --tls.key, on this file's first line (when the key is encrypted)"),
	}
}

// access reads the files the flags name (and CHARTER_TOKEN) and returns
// the access they give.
func (f *accessFlags) access() (*apiAccess, error) { return f.accessEnv(os.Getenv) }

// accessEnv is access with the environment read through getenv.
func (f *accessFlags) accessEnv(getenv func(string) string) (*apiAccess, error) {
	token, err := f.readToken(getenv)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	a := &apiAccess{token: token}
	caFiles, caFlag := f.defaultCAs, "--net"
	if *f.caFile != "" {
		caFiles, caFlag, a.tlsFlag = []string{*f.caFile}, "--tls.ca", "--tls.ca"
	}
	for _, file := range caFiles {
		certs, err := identity.ReadCertFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", caFlag, err)
		}
		if cfg.RootCAs == nil {
			cfg.RootCAs = x509.NewCertPool()
		}
		for _, c := range certs {
			cfg.RootCAs.AddCert(c)
		}
	}
	switch {
	case *f.certFile == "" && *f.keyFile == "":
		if *f.keyPwFile != "" {
			return nil, errors.New("--tls.key-password-file goes with --tls.cert and --tls.key")
		}
	case *f.certFile == "" || *f.keyFile == "":
		return nil, errors.New("--tls.cert and --tls.key go together: give the client certificate and its key")
	default:
		pw, err := readPassword("tls.key-password-file", *f.keyPwFile)
		if err != nil {
			return nil, err
		}
		cert, err := identity.LoadTLSCertificate(*f.certFile, *f.keyFile, pw)
		if err != nil {
			if errors.Is(err, identity.ErrPasswordRequired) {
				return nil, fmt.Errorf("--tls.key: %w; give --tls.key-password-file", err)
			}
			return nil, fmt.Errorf("--tls.cert, --tls.key: %w", err)
		}
		if now := time.Now(); now.After(cert.Leaf.NotAfter) {
			return nil, fmt.Errorf("--tls.cert %s expired %s; issue a new one with 'charter ca issue --client'",
				*f.certFile, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		cfg.Certificates = []tls.Certificate{cert}
		a.certFile, a.tlsFlag = *f.certFile, "--tls.cert"
	}
	a.build(cfg)
	return a, nil
}

// readToken gives the bearer token: --token, else --token-file's first
// line, else CHARTER_TOKEN; "" when none is given. Its errors never hold
// the token.
func (f *accessFlags) readToken(getenv func(string) string) (string, error) {
	var token, from string
	switch {
	case *f.token != "" && *f.tokenFile != "":
		return "", errors.New("--token and --token-file both give the token; give one")
	case *f.token != "":
		token, from = *f.token, "--token"
	case *f.tokenFile != "":
		data, err := identity.ReadPrivateFile(*f.tokenFile, maxTokenFileBytes)
		if err != nil {
			if errors.Is(err, identity.ErrKeyFileMode) {
				// The message of ErrKeyFileMode speaks of key files.
				return "", fmt.Errorf("--token-file %s may be read by group or others; run chmod 600 %s", *f.tokenFile, *f.tokenFile)
			}
			return "", fmt.Errorf("--token-file: %w", err)
		}
		line, _, _ := bytes.Cut(data, []byte("\n"))
		token, from = string(line), "--token-file "+*f.tokenFile
		if strings.TrimSpace(token) == "" {
			return "", fmt.Errorf("%s: the first line is empty", from)
		}
	default:
		token, from = getenv(TokenEnv), TokenEnv
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", nil
	}
	if err := checkToken(token); err != nil {
		return "", fmt.Errorf("%s: %v", from, err)
	}
	return token, nil
}

// checkToken accepts the characters of an RFC 6750 bearer token (which a
// JWT's are): anything else would change the Authorization header.
func checkToken(token string) error {
	if strings.HasPrefix(token, "Bearer ") || strings.HasPrefix(token, "bearer ") {
		return errors.New("give the token alone, without the word Bearer")
	}
	for _, r := range token {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("-._~+/=", r):
		default:
			return errors.New("not a bearer token: it may hold only letters, digits and - . _ ~ + / =")
		}
	}
	return nil
}

// apiAccess is how a command reaches nodes: the bearer token sent with
// every request and WebSocket handshake, and the TLS configuration of
// https:// and wss://, with the HTTP client and WebSocket dialer built
// from them once. It holds no per-connection state and is safe for
// concurrent use (charter bench dials every endpoint through one).
type apiAccess struct {
	token    string // "" none; never printed
	tlsFlag  string // the first TLS flag given ("" none), named when the URL is not https:// or wss://
	certFile string // --tls.cert, named when the node refuses it
	http     *http.Client
	ws       websocket.Dialer
}

// noAccess is the access of a command given no token and no TLS flag.
func noAccess() *apiAccess {
	a := &apiAccess{}
	a.build(&tls.Config{MinVersion: tls.VersionTLS12})
	return a
}

func (a *apiAccess) build(cfg *tls.Config) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	tr.MaxIdleConnsPerHost = maxIdleConnsPerHost
	a.http = &http.Client{Transport: &refusalTransport{base: tr, scrub: a.scrub}}
	// The buffers go-ethereum's own dialer uses.
	a.ws = websocket.Dialer{
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
		WriteBufferPool: new(sync.Pool),
		Proxy:           http.ProxyFromEnvironment,
		TLSClientConfig: cfg,
	}
}

// options are the go-ethereum client options of this access: the token
// is one header, set once and copied into each request.
func (a *apiAccess) options() []gethrpc.ClientOption {
	opts := []gethrpc.ClientOption{gethrpc.WithHTTPClient(a.http), gethrpc.WithWebsocketDialer(a.ws)}
	if a.token != "" {
		opts = append(opts, gethrpc.WithHeader("Authorization", "Bearer "+a.token))
	}
	return opts
}

// Dial connects to the JSON-RPC of the node at rawURL (http, https, ws or
// wss). A WebSocket is opened here, so a refusal of it is reported here;
// over HTTP the first call is the first request. Errors of access and
// trust come back as the one line accessError gives.
func (a *apiAccess) Dial(ctx context.Context, rawURL string) (*gethrpc.Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %v", rawURL, err)
	}
	switch u.Scheme {
	case "https", "wss":
	case "http", "ws":
		if a.tlsFlag != "" {
			return nil, fmt.Errorf("%s is for https:// and wss:// nodes; %s is not one", a.tlsFlag, u.Redacted())
		}
	default:
		return nil, fmt.Errorf("%s: want an http://, https://, ws:// or wss:// URL", u.Redacted())
	}
	c, err := gethrpc.DialOptions(ctx, rawURL, a.options()...)
	if err != nil {
		if errors.Is(err, websocket.ErrBadHandshake) {
			if e := a.handshakeRefusal(ctx, rawURL); e != nil {
				return nil, e
			}
		}
		if e := a.accessError(rawURL, err); e != nil {
			return nil, e
		}
		return nil, errors.New(a.scrub(err.Error()))
	}
	return c, nil
}

// handshakeRefusal opens the WebSocket once more to read why the node
// refused it: go-ethereum keeps the status of a refused handshake but not
// its headers. nil when the node does not refuse again, or refuses for
// another reason.
func (a *apiAccess) handshakeRefusal(ctx context.Context, rawURL string) error {
	h := http.Header{}
	if a.token != "" {
		h.Set("Authorization", "Bearer "+a.token)
	}
	conn, resp, err := a.ws.DialContext(ctx, rawURL, h)
	if err == nil {
		conn.Close()
		return nil
	}
	if resp == nil {
		return nil
	}
	defer resp.Body.Close()
	return refusal(rawURL, resp, a.scrub)
}

// accessError gives the one line for an error of access or trust met
// talking to the node at rawURL: the node refused the credential (401)
// or the organization (403), its certificate is not trusted or not for
// its name, it wants a client certificate, or the URL's scheme does not
// match TLS. nil for any other error, which the caller reports its way.
func (a *apiAccess) accessError(rawURL string, err error) error {
	where := redactURL(rawURL)
	var refused *refusedError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var op *net.OpError
	var record tls.RecordHeaderError
	var httpErr gethrpc.HTTPError
	switch {
	case errors.As(err, &refused):
		return refused
	case errors.As(err, &unknown):
		issuer := "an unknown issuer"
		if unknown.Cert != nil {
			issuer = fmt.Sprintf("%q", unknown.Cert.Issuer.CommonName)
		}
		return trustErrorf("the node at %s presents a certificate issued by %s, which this client does not trust; pass --tls.ca with the organization's CA certificate", where, issuer)
	case errors.As(err, &host):
		return trustErrorf("the certificate of the node at %s is not for that address (%v); give a name or address the certificate lists", where, host.Error())
	case errors.As(err, &invalid):
		return trustErrorf("the certificate of the node at %s is not valid: %v", where, invalid.Error())
	case errors.As(err, &op) && op.Op == "remote error":
		// crypto/tls reports an alert from the node so; the alert's type
		// is unexported, its text is fixed (RFC 8446 §6.2 names).
		return a.alertError(where, op.Err.Error())
	case errors.As(err, &record), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return trustErrorf("the node at %s does not answer TLS; use http:// or ws:// if it serves plain HTTP", where)
	case errors.As(err, &httpErr) && httpErr.StatusCode == http.StatusBadRequest && bytes.Contains(httpErr.Body, []byte("HTTPS server")):
		return trustErrorf("the node at %s serves TLS; use https:// (or wss://) and, if its CA is not a system root, --tls.ca", where)
	}
	return nil
}

// alertError explains a TLS alert from the node about the client's
// certificate. A Go client presents its certificate only when the node
// lists the certificate's CA among those it accepts, so "certificate
// required" with --tls.cert given means the node does not accept its CA.
func (a *apiAccess) alertError(where, alert string) error {
	const fix = "pass --tls.cert and --tls.key (from 'charter ca issue --client')"
	switch {
	case strings.HasSuffix(alert, "certificate required") && a.certFile == "":
		return trustErrorf("the node at %s requires a client certificate; %s", where, fix)
	case strings.HasSuffix(alert, "certificate required"):
		return trustErrorf("the node at %s refused the client certificate %s: its CA is not one the node accepts; use one issued by the CA of a member organization", where, a.certFile)
	case strings.Contains(alert, "certificate") && a.certFile == "":
		return trustErrorf("the node at %s requires a client certificate (%s); %s", where, alert, fix)
	case strings.Contains(alert, "certificate"):
		return trustErrorf("the node at %s refused the client certificate %s (%s); use one from the CA of a member organization, valid and not revoked", where, a.certFile, alert)
	}
	return trustErrorf("the node at %s ended the TLS handshake: %s", where, alert)
}

// runError is the error a command prints for err, met somewhere in a
// run against one or more nodes: a refusal or a failure of trust as its
// one line (the node named by the request that met it), anything else as
// it is, without the token.
func (a *apiAccess) runError(err error) error {
	var refused *refusedError
	var trust *trustError
	var ue *url.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &refused):
		return refused
	case errors.As(err, &trust):
		return trust
	case errors.As(err, &ue):
		if e := a.accessError(ue.URL, err); e != nil {
			return e
		}
	}
	if s := a.scrub(err.Error()); s != err.Error() {
		return errors.New(s)
	}
	return err
}

// scrub removes the token from text that may come back from the node or
// from a library, before it is printed.
func (a *apiAccess) scrub(s string) string {
	if a.token == "" {
		return s
	}
	return strings.ReplaceAll(s, a.token, "[token]")
}

// trustError is a failure of TLS between the client and the node, as
// the one line that says what to change.
type trustError struct{ line string }

func (e *trustError) Error() string { return e.line }

func trustErrorf(format string, args ...any) error {
	return &trustError{line: fmt.Sprintf(format, args...)}
}

// isAccessError tells whether err is a refusal by the node or a failure
// of trust, already the one line a command prints.
func isAccessError(err error) bool {
	var refused *refusedError
	var trust *trustError
	return errors.As(err, &refused) || errors.As(err, &trust)
}

// refusedError is a node's refusal of a request: of its credential (HTTP
// 401) or of the caller's organization (403).
type refusedError struct {
	url    string // without user information
	status int
	reason string // the node's words, printable and bounded
}

func (e *refusedError) Error() string {
	if e.status == http.StatusForbidden {
		return fmt.Sprintf("the node at %s refused access: %s", e.url, e.reason)
	}
	return fmt.Sprintf("the node at %s refused the credential: %s; pass --token or --token-file", e.url, e.reason)
}

// refusalTransport turns a node's 401 or 403 into a refusedError, which
// keeps the reason the node gives in its WWW-Authenticate header: the
// go-ethereum client keeps only the body of a failed request. Any other
// answer passes as it is; the cost on success is a status check.
type refusalTransport struct {
	base  http.RoundTripper
	scrub func(string) string
}

func (t *refusalTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden) {
		return resp, err
	}
	defer resp.Body.Close()
	return nil, refusal(req.URL.String(), resp, t.scrub)
}

// refusal reads a 401 or 403 response into a refusedError (nil for any
// other status). The reason is the error_description of the
// WWW-Authenticate header, else the message of a JSON-RPC error body or
// the detail of a problem document, else the status.
func refusal(rawURL string, resp *http.Response, scrub func(string) string) error {
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		return nil
	}
	reason := ""
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		if reason = authParam(h, "error_description"); reason != "" {
			break
		}
	}
	if reason == "" && resp.Body != nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxRefusalBodyBytes))
		var msg struct {
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
			Detail string `json:"detail"` // a REST problem document's
		}
		if json.Unmarshal(body, &msg) == nil {
			if msg.Error != nil {
				reason = msg.Error.Message
			} else {
				reason = msg.Detail
			}
		}
	}
	if reason = printable(scrub(reason)); reason == "" {
		reason = resp.Status
	}
	return &refusedError{url: redactURL(rawURL), status: resp.StatusCode, reason: reason}
}

// authParam returns the value of the auth-param name in a
// WWW-Authenticate header (RFC 9110 §11.6.1: challenges of a scheme and
// comma-separated name=value pairs, values a token or a quoted string),
// "" when it is not there. It reads the header once, left to right: each
// turn of the loop consumes at least one byte.
func authParam(header, name string) string {
	s := header
	for len(s) > 0 {
		s = strings.TrimLeft(s, " \t,")
		i := strings.IndexAny(s, " \t,=\"")
		if i < 0 {
			return ""
		}
		key := s[:i]
		s = strings.TrimLeft(s[i:], " \t")
		if !strings.HasPrefix(s, "=") {
			if key == "" {
				s = s[1:] // a stray quote: step over it
			}
			continue // a scheme name
		}
		s = strings.TrimLeft(s[1:], " \t")
		var value string
		if strings.HasPrefix(s, "\"") {
			var b strings.Builder
			j := 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			value, s = b.String(), s[min(j+1, len(s)):]
		} else {
			j := strings.IndexAny(s, " \t,")
			if j < 0 {
				j = len(s)
			}
			value, s = s[:j], s[j:]
		}
		if key != "" && strings.EqualFold(key, name) {
			return value
		}
	}
	return ""
}

// printable keeps text from a node fit for one line of a terminal: no
// control characters or escapes, spaces collapsed, at most
// maxReasonRunes runes.
func printable(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range strings.Join(strings.Fields(s), " ") {
		if n == maxReasonRunes {
			b.WriteString("…")
			break
		}
		if !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// redactURL is rawURL without the password of its user information.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	return u.Redacted()
}

// nodeFlags are --rpc and the access flags: the flags of a command that
// talks to one node.
type nodeFlags struct {
	rpc *string
	*accessFlags
}

func addNodeFlags(fs *flag.FlagSet) *nodeFlags {
	return &nodeFlags{
		rpc:         fs.String("rpc", defaultRPC, "the node's JSON-RPC URL: http://, https://, ws:// or wss://"),
		accessFlags: addAccessFlags(fs),
	}
}

// dial connects to --rpc with the access the flags give.
func (nf *nodeFlags) dial() (*client, error) {
	a, err := nf.access()
	if err != nil {
		return nil, err
	}
	return dial(*nf.rpc, a)
}

// query dials --rpc, calls method into out and hangs up.
func (nf *nodeFlags) query(out any, method string, args ...any) (json.RawMessage, error) {
	c, err := nf.dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.callInto(out, method, args...)
}
